//! Reading a token and checking it (the recommended verifier of `docs/protocol.md` §4.4).

use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use crate::codec::{inflate_token, STD_LENIENT};
use crate::sign::{hmac_sha256, sign_content};
use crate::VerifyError;
use base64::Engine as _;

/// The fields of a UserSig, as carried in its JSON.
///
/// Kept exactly as carried (notably the userbuf as its base64 string) because the HMAC is
/// computed over what the token says, not over a re-encoding of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedUserSig {
    /// `TLS.identifier`: the UserID the token was issued to.
    pub identifier: String,
    /// `TLS.sdkappid`: the application the token was issued for.
    pub sdkappid: u64,
    /// `TLS.time`: unix seconds at generation; validity is counted from here.
    pub time: i64,
    /// `TLS.expire`: validity in seconds after `time` (a duration, not a timestamp).
    pub expire: i64,
    /// `TLS.userbuf` exactly as carried (standard base64 string), if present. Signed as is.
    pub userbuf_b64: Option<String>,
    /// `TLS.sig` decoded from base64. Should be 32 bytes; any length is kept here, and a
    /// wrong length simply fails the HMAC comparison.
    pub sig: Vec<u8>,
}

impl DecodedUserSig {
    /// The last valid unix second, `time + expire`, computed in i128 because both values
    /// come from the client and may be anything up to `i64::MAX`.
    pub fn expires_at(&self) -> i128 {
        i128::from(self.time) + i128::from(self.expire)
    }

    /// Whether the token has expired at `now`: `now > time + expire`. The boundary second is
    /// still valid, as in Go and PHP.
    pub fn is_expired(&self, now: i64) -> bool {
        i128::from(now) > self.expires_at()
    }

    /// Recompute the HMAC with `key` over the fields as carried and compare it with
    /// `TLS.sig` in constant time, so response timing leaks nothing about the right sig.
    ///
    /// `key` is used exactly as given (no trimming), like every official library.
    pub fn hmac_matches(&self, key: &str) -> bool {
        let content = sign_content(
            &self.identifier,
            self.sdkappid,
            self.time,
            self.expire,
            self.userbuf_b64.as_deref(),
        );
        let expected = hmac_sha256(key.as_bytes(), content.as_bytes());
        expected.as_slice().ct_eq(&self.sig).into()
    }

    /// The userbuf as bytes, if present and decodable; `None` otherwise.
    ///
    /// ASCII whitespace inside the base64 is skipped: old Java generators wrapped long
    /// userbufs every 76 characters, and PHP's decoder ignores the breaks too.
    pub fn userbuf(&self) -> Option<Vec<u8>> {
        let carried = self.userbuf_b64.as_deref()?;
        let compact: String = carried
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        STD_LENIENT.decode(compact).ok()
    }
}

/// What the verifier expects of `TLS.userbuf`.
///
/// Plain UserSigs carry none; TRTC PrivateMapKeys carry a privilege map. Go's verifier insists
/// on one or the other, PHP's accepts both; the caller chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectUserbuf<'a> {
    /// Accept a token with or without a userbuf (PHP's behaviour; the usual choice).
    Any,
    /// The token must carry no userbuf (Go's `VerifyUserSig`).
    None,
    /// The token must carry exactly these userbuf bytes (Go's `VerifyUserSigWithBuf`).
    Exactly(&'a [u8]),
}

/// Decode a token into its fields without checking what they say.
///
/// Accepts everything the official generators produce: either base64 alphabet, with or
/// without padding, a space for `+`; zlib with stored or compressed blocks (inflation capped
/// at [`crate::MAX_INFLATED`]); any JSON key order, spacing and escapes. It is strict about
/// the rest, in this order: the document must be a JSON object with `TLS.ver` = `"2.0"`;
/// `TLS.identifier` a string; `TLS.sdkappid` a JSON integer fitting u64; `TLS.time` and
/// `TLS.expire` JSON integers fitting i64 (strings, floats and bools are refused); `TLS.sig`
/// a string of standard base64; `TLS.userbuf`, when present, a string.
pub fn decode(usersig: &str) -> Result<DecodedUserSig, VerifyError> {
    let document = inflate_token(usersig)?;
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&document) else {
        return Err(VerifyError::Json);
    };
    if fields.get("TLS.ver").and_then(Value::as_str) != Some("2.0") {
        return Err(VerifyError::Version);
    }
    let identifier = string_field(&fields, "TLS.identifier")?.to_owned();
    let sdkappid = integer_field(&fields, "TLS.sdkappid", Value::as_u64)?;
    let time = integer_field(&fields, "TLS.time", Value::as_i64)?;
    let expire = integer_field(&fields, "TLS.expire", Value::as_i64)?;
    let sig = STD_LENIENT
        .decode(string_field(&fields, "TLS.sig")?)
        .map_err(|_| VerifyError::BadType("TLS.sig"))?;
    let userbuf_b64 = match fields.get("TLS.userbuf") {
        None => None,
        Some(Value::String(carried)) => Some(carried.clone()),
        Some(_) => return Err(VerifyError::BadType("TLS.userbuf")),
    };
    Ok(DecodedUserSig {
        identifier,
        sdkappid,
        time,
        expire,
        userbuf_b64,
        sig,
    })
}

/// Check a token fully, for a given application, key, user and moment.
///
/// Order (`docs/protocol.md` §4.4): decode, version, fields and types, then sdkappid, identifier,
/// expiry (`now > time + expire` is [`VerifyError::Expired`]; the boundary second is still
/// valid), userbuf per `expect`, and last the HMAC, compared in constant time. The cheap
/// mismatches come first so the reported reason is the most useful one, as in Go.
///
/// `key` is used exactly as given; trim configured keys before calling.
pub fn verify(
    usersig: &str,
    sdkappid: u64,
    key: &str,
    identifier: &str,
    now: i64,
    expect: ExpectUserbuf<'_>,
) -> Result<DecodedUserSig, VerifyError> {
    let decoded = decode(usersig)?;
    if decoded.sdkappid != sdkappid {
        return Err(VerifyError::SdkAppIdMismatch);
    }
    if decoded.identifier != identifier {
        return Err(VerifyError::IdentifierMismatch);
    }
    if decoded.is_expired(now) {
        return Err(VerifyError::Expired);
    }
    match (expect, decoded.userbuf_b64.is_some()) {
        (ExpectUserbuf::Any, _) | (ExpectUserbuf::None, false) => {}
        (ExpectUserbuf::None, true) | (ExpectUserbuf::Exactly(_), false) => {
            return Err(VerifyError::UserbufTypeMismatch)
        }
        (ExpectUserbuf::Exactly(wanted), true) => {
            if decoded.userbuf().as_deref() != Some(wanted) {
                return Err(VerifyError::UserbufMismatch);
            }
        }
    }
    if !decoded.hmac_matches(key) {
        return Err(VerifyError::SigMismatch);
    }
    Ok(decoded)
}

/// A field that must be a JSON string.
fn string_field<'a>(
    fields: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, VerifyError> {
    match fields.get(name) {
        None => Err(VerifyError::MissingField(name)),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(VerifyError::BadType(name)),
    }
}

/// A field that must be a JSON integer in range; `convert` is `Value::as_u64` or
/// `Value::as_i64`, which return `None` for strings, bools, floats (even `1.0`) and integers
/// out of range.
fn integer_field<T>(
    fields: &Map<String, Value>,
    name: &'static str,
    convert: fn(&Value) -> Option<T>,
) -> Result<T, VerifyError> {
    let value = fields.get(name).ok_or(VerifyError::MissingField(name))?;
    convert(value).ok_or(VerifyError::BadType(name))
}
