//! The UserID batches of `account_check` and `account_delete` (`{"CheckItem":[{"UserID":..},
//! ..]}`): one parser and one `account_check` response writer, for the server's one path.
//!
//! Parsing tries the borrowed scanner ([`crate::fast`]) first: it reads the plain bodies real
//! clients send without copying a byte. Anything it declines goes to serde, which stays the
//! reference for every error and edge case; both give the same items, which tests and a fuzz
//! target check.

use std::borrow::Cow;

use crate::error::{ApiError, ErrorCode};
use crate::request::{parse_body, AccountCheckRequest, AccountDeleteRequest};
use crate::user_id::{UserIdError, UserIdRef};
use crate::MAX_BATCH;

/// Which batch a body carries, and so under which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// `account_check`: `CheckItem`.
    Check,
    /// `account_delete`: `DeleteItem`.
    Delete,
}

impl BatchKind {
    /// The body's key.
    pub const fn key(self) -> &'static str {
        match self {
            BatchKind::Check => "CheckItem",
            BatchKind::Delete => "DeleteItem",
        }
    }
}

/// The UserIDs a batch names, in request order, borrowed from the body where possible.
#[derive(Debug)]
pub struct UserIdBatch<'a> {
    ids: Ids<'a>,
}

#[derive(Debug)]
enum Ids<'a> {
    /// From the scanner: every ID is valid.
    Scanned(Vec<UserIdRef<'a>>),
    /// From serde: as sent, each still to be checked.
    Parsed(Vec<String>),
}

/// One entry of a batch: a valid UserID, or the raw text and why it is not one.
pub type BatchItem<'s> = Result<UserIdRef<'s>, (&'s str, UserIdError)>;

impl<'a> UserIdBatch<'a> {
    /// Parse a batch body: 1 to 100 entries (70402 otherwise, naming the field and the
    /// count), each an object with a string `UserID`. Invalid UserIDs are not an error here:
    /// they fail on their own, per item.
    pub fn parse(body: &'a [u8], kind: BatchKind) -> Result<UserIdBatch<'a>, ApiError> {
        if let Some(ids) = crate::fast::scan_user_id_items(body, kind.key(), MAX_BATCH) {
            return Ok(UserIdBatch {
                ids: Ids::Scanned(ids),
            });
        }
        let items = match kind {
            BatchKind::Check => parse_body::<AccountCheckRequest>(body)?.check_item,
            BatchKind::Delete => parse_body::<AccountDeleteRequest>(body)?.delete_item,
        };
        check_batch_len(kind.key(), items.len())?;
        Ok(UserIdBatch {
            ids: Ids::Parsed(items.into_iter().map(|i| i.user_id).collect()),
        })
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        match &self.ids {
            Ids::Scanned(ids) => ids.len(),
            Ids::Parsed(raw) => raw.len(),
        }
    }

    /// Whether there are none (never, for a batch that parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in request order.
    pub fn items(&self) -> Vec<BatchItem<'_>> {
        match &self.ids {
            Ids::Scanned(ids) => ids.iter().map(|id| Ok(*id)).collect(),
            Ids::Parsed(raw) => raw
                .iter()
                .map(|r| UserIdRef::parse(r).map_err(|e| (r.as_str(), e)))
                .collect(),
        }
    }

    /// The valid UserIDs, in request order: what the store is asked about.
    pub fn valid(&self) -> Cow<'_, [UserIdRef<'_>]> {
        match &self.ids {
            Ids::Scanned(ids) => Cow::Borrowed(ids.as_slice()),
            Ids::Parsed(_) => Cow::Owned(self.items().into_iter().flatten().collect()),
        }
    }
}

/// A batch must hold 1 to 100 entries; anything else rejects the whole request with 70402.
pub fn check_batch_len(field: &str, len: usize) -> Result<(), ApiError> {
    if len == 0 {
        return Err(ApiError::with_info(
            ErrorCode::InvalidParameter,
            format!("{field} is empty; send 1 to {MAX_BATCH} entries per request"),
        ));
    }
    if len > MAX_BATCH {
        return Err(ApiError::with_info(
            ErrorCode::InvalidParameter,
            format!("{field} has {len} entries; at most {MAX_BATCH} are allowed per request"),
        ));
    }
    Ok(())
}

/// The per-item `ResultInfo` of an entry that is not a valid UserID (with 70402).
pub fn invalid_user_id_info(raw: &str, e: UserIdError) -> String {
    format!("invalid UserID {raw:?}: {e}")
}

/// The `account_check` success body: one result per entry of `batch`, in order, with
/// `found` answering its [`UserIdBatch::valid`] IDs. Byte for byte what serializing
/// [`crate::AccountCheckResponse`] gives (key order as in the seed sample), written directly
/// because that serialization was a measurable share of the API's cost.
pub fn write_check_response(batch: &UserIdBatch<'_>, found: &[bool]) -> Vec<u8> {
    const HEAD: &[u8] = br#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","ResultItem":["#;
    const OPEN: &[u8] = br#"{"UserID":"#;
    const IMPORTED: &[u8] = br#","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"}"#;
    const NOT_IMPORTED: &[u8] =
        br#","ResultCode":0,"ResultInfo":"","AccountStatus":"NotImported"}"#;
    let status = |k: usize| {
        if found.get(k).copied().unwrap_or(false) {
            IMPORTED
        } else {
            NOT_IMPORTED
        }
    };
    let mut out =
        Vec::with_capacity(HEAD.len() + 2 + batch.len() * (OPEN.len() + NOT_IMPORTED.len() + 36));
    out.extend_from_slice(HEAD);
    match &batch.ids {
        // The hot path: the scanner accepted no byte that JSON escapes, so each ID is copied
        // as it is (checking for escapes was a third of the response's cost).
        Ids::Scanned(ids) => {
            for (k, id) in ids.iter().enumerate() {
                out.extend_from_slice(if k == 0 {
                    b"{\"UserID\":\""
                } else {
                    b",{\"UserID\":\""
                });
                out.extend_from_slice(id.as_str().as_bytes());
                out.push(b'"');
                out.extend_from_slice(status(k));
            }
        }
        Ids::Parsed(raw) => {
            let mut valid = 0;
            for (k, raw) in raw.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(OPEN);
                json_string(&mut out, raw);
                match UserIdRef::parse(raw) {
                    Ok(_) => {
                        out.extend_from_slice(status(valid));
                        valid += 1;
                    }
                    Err(e) => {
                        out.extend_from_slice(b",\"ResultCode\":");
                        out.extend_from_slice(
                            ErrorCode::InvalidParameter.code().to_string().as_bytes(),
                        );
                        out.extend_from_slice(b",\"ResultInfo\":");
                        json_string(&mut out, &invalid_user_id_info(raw, e));
                        out.extend_from_slice(br#","AccountStatus":"NotImported"}"#);
                    }
                }
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it (for IDs the serde path
/// read, which may hold anything).
fn json_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing to a Vec cannot fail; keep the body valid JSON regardless.
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{AccountCheckResponse, CheckResultItem};

    /// What the general path (serde types) writes for `body` with every valid ID `found`.
    fn reference(body: &[u8], found: impl Fn(&str) -> bool) -> String {
        let req: AccountCheckRequest = parse_body(body).unwrap();
        let items = req
            .check_item
            .into_iter()
            .map(|item| match UserIdRef::parse(&item.user_id) {
                Ok(id) => {
                    let f = found(id.as_str());
                    CheckResultItem::checked(item.user_id.clone(), f)
                }
                Err(e) => {
                    let info = invalid_user_id_info(&item.user_id, e);
                    CheckResultItem::failed(item.user_id, ErrorCode::InvalidParameter, info)
                }
            })
            .collect();
        String::from_utf8(serde_json::to_vec(&AccountCheckResponse::ok(items)).unwrap()).unwrap()
    }

    fn written(body: &[u8], found: impl Fn(&str) -> bool) -> String {
        let batch = UserIdBatch::parse(body, BatchKind::Check).unwrap();
        let answers: Vec<bool> = batch.valid().iter().map(|id| found(id.as_str())).collect();
        String::from_utf8(write_check_response(&batch, &answers)).unwrap()
    }

    #[test]
    fn the_seed_sample_exactly() {
        let request = br#"{"CheckItem":[{"UserID":"UserID_1"},{"UserID":"UserID_2"}]}"#;
        let sample = r#"{"ActionStatus": "OK","ErrorCode": 0,"ErrorInfo": "","ResultItem": [{"UserID": "UserID_1","ResultCode": 0,"ResultInfo": "","AccountStatus": "Imported"},{"UserID": "UserID_2","ResultCode": 0,"ResultInfo": "","AccountStatus": "NotImported"}]}"#;
        assert_eq!(
            written(request, |id| id == "UserID_1"),
            sample.replace("\": ", "\":")
        );
    }

    #[test]
    fn both_parsers_and_the_writer_agree_with_serde() {
        let bodies: &[&[u8]] = &[
            br#"{"CheckItem":[{"UserID":"alice"},{"UserID":"bob"},{"UserID":"a b/c<>&'"}]}"#,
            "{\"CheckItem\":[{\"UserID\":\"用户\"}]}".as_bytes(),
            // The serde path: escapes, extra whitespace, invalid IDs among valid ones.
            br#"{ "CheckItem" : [ {"UserID":"a\"b"}, {"UserID":""}, {"UserID":"ok"} ] }"#,
            br#"{"CheckItem":[{"UserID":"a\u0001b"},{"UserID":"123456789012345678901234567890123"}]}"#,
            br#"{"CheckItem":[{"UserID":"back\\slash"},{"UserID":"del\u007f"}]}"#,
        ];
        for body in bodies {
            let found = |id: &str| id.len() % 2 == 1;
            assert_eq!(
                written(body, found),
                reference(body, found),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn batch_length_errors_name_the_field_and_the_count() {
        let e = UserIdBatch::parse(br#"{"CheckItem":[]}"#, BatchKind::Check).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidParameter);
        assert_eq!(
            e.info,
            "CheckItem is empty; send 1 to 100 entries per request"
        );
        let many = format!(
            "{{\"DeleteItem\":[{}]}}",
            vec![r#"{"UserID":"a"}"#; 101].join(",")
        );
        let e = UserIdBatch::parse(many.as_bytes(), BatchKind::Delete).unwrap_err();
        assert_eq!(
            e.info,
            "DeleteItem has 101 entries; at most 100 are allowed per request"
        );
    }
}
