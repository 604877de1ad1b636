//! Request bodies. Field names are Tencent's; unknown fields are ignored, as the contract says.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{ApiError, ErrorCode};

/// `account_import`: one account, with optional profile fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountImportRequest {
    /// The account to import.
    #[serde(rename = "UserID", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The same field under its pre-2022 name; `UserID` wins when both are present.
    #[serde(
        rename = "Identifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub identifier: Option<String>,
    /// Nickname (`Tag_Profile_IM_Nick`).
    #[serde(rename = "Nick", default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// Avatar URL (`Tag_Profile_IM_Image`).
    #[serde(rename = "FaceUrl", default, skip_serializing_if = "Option::is_none")]
    pub face_url: Option<String>,
}

impl AccountImportRequest {
    /// The UserID the call names, by its current or its legacy field name.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.identifier.as_deref())
    }
}

/// `multiaccount_import`, in either of its two documented shapes.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MultiAccountImportRequest {
    /// The old shape: UserIDs only.
    #[serde(rename = "Accounts", default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<String>>,
    /// The new shape: UserIDs with optional profile fields.
    #[serde(
        rename = "AccountList",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub account_list: Option<Vec<AccountListEntry>>,
}

/// One entry of `AccountList`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
// The derives make inherent functions; the trait impls below accept only JSON objects.
#[serde(remote = "Self")]
pub struct AccountListEntry {
    /// The account to import.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// Nickname.
    #[serde(rename = "Nick", default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    /// Avatar URL.
    #[serde(rename = "FaceUrl", default, skip_serializing_if = "Option::is_none")]
    pub face_url: Option<String>,
}

/// `{"UserID": ...}`, the item of `CheckItem` and `DeleteItem`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
// The derives make inherent functions; the trait impls below accept only JSON objects.
#[serde(remote = "Self")]
pub struct UserIdItem {
    /// The account.
    #[serde(rename = "UserID")]
    pub user_id: String,
}

/// `account_check`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountCheckRequest {
    /// The accounts to check, at most 100.
    #[serde(rename = "CheckItem")]
    pub check_item: Vec<UserIdItem>,
}

/// `account_delete`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccountDeleteRequest {
    /// The accounts to delete, at most 100.
    #[serde(rename = "DeleteItem")]
    pub delete_item: Vec<UserIdItem>,
}

/// `kick`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KickRequest {
    /// The account whose login state is invalidated.
    #[serde(rename = "UserID", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Legacy name of the same field.
    #[serde(
        rename = "Identifier",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub identifier: Option<String>,
}

impl KickRequest {
    /// The UserID the call names, by its current or its legacy field name.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.identifier.as_deref())
    }
}

/// `query_online_status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueryOnlineStatusRequest {
    /// The accounts to query, at most 500.
    #[serde(rename = "To_Account")]
    pub to_account: Vec<String>,
    /// 1: return per-platform detail.
    #[serde(
        rename = "IsNeedDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_need_detail: Option<u32>,
    /// 1: return each device's `Instid` (newer pages; the answer's field names are not
    /// documented).
    #[serde(
        rename = "IsReturnInstid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_return_instid: Option<u32>,
    /// 1: return the users' custom status (newer pages; the answer's field names are not
    /// documented).
    #[serde(
        rename = "IsReturnCustomStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub is_return_custom_status: Option<u32>,
}

/// Batch entries must be JSON objects. serde's derived struct parsing also takes a JSON array
/// of the field values (`[["alice"]]` for `[{"UserID":"alice"}]`), which the contract rejects
/// as a mistyped field (70402); these impls only accept a map.
macro_rules! object_only {
    ($ty:ident) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> Visitor<'de> for ObjectVisitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a JSON object (", stringify!($ty), ")"))
                    }
                    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $ty::deserialize(MapAccessDeserializer::new(map))
                    }
                }
                d.deserialize_map(ObjectVisitor)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, s)
            }
        }
    };
}

object_only!(AccountListEntry);
object_only!(UserIdItem);

/// Parse a request body into `T`.
///
/// An empty body, bytes that are not JSON, or JSON that is not an object is 60003; a JSON
/// object whose fields are missing or of the wrong type is 70402 (the caller may remap it).
pub fn parse_body<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let info = if first.is_none() {
            "the request body is empty; send a JSON object (at least {})"
        } else {
            "the request body must be a JSON object"
        };
        return Err(ApiError::with_info(ErrorCode::JsonParse, info));
    }
    // JSON text is UTF-8 (RFC 8259 §8.1). serde_json checks the strings it keeps but skips
    // ignored values (unknown fields) unchecked, so the whole body is checked here first.
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::with_info(
            ErrorCode::JsonParse,
            format!(
                "the request body is not valid UTF-8 (at byte {}); JSON must be UTF-8",
                e.valid_up_to()
            ),
        )
    })?;
    let not_json = |e: serde_json::Error| {
        ApiError::with_info(
            ErrorCode::JsonParse,
            format!("the request body is not valid JSON: {e}"),
        )
    };
    serde_json::from_str(text).map_err(|e| match e.classify() {
        // A field error found before a syntax error further on must not hide it: the body
        // is checked as a whole (only on this failure path, so valid requests parse once).
        serde_json::error::Category::Data => {
            match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(syntax) => not_json(syntax),
                Ok(_) => ApiError::with_info(
                    ErrorCode::InvalidParameter,
                    format!("invalid request body: {e}"),
                ),
            }
        }
        _ => not_json(e),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn absent_optional_fields_are_not_sent() {
        let req = AccountImportRequest {
            user_id: Some("a".into()),
            nick: Some("A".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"UserID":"a","Nick":"A"}"#
        );
        let multi = MultiAccountImportRequest {
            accounts: Some(vec!["a".into()]),
            account_list: None,
        };
        assert_eq!(
            serde_json::to_string(&multi).unwrap(),
            r#"{"Accounts":["a"]}"#
        );
        let online = QueryOnlineStatusRequest {
            to_account: vec!["a".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&online).unwrap(),
            r#"{"To_Account":["a"]}"#
        );
    }

    #[test]
    fn invalid_utf8_is_60003_even_in_an_ignored_field() {
        let code = |body: &[u8]| parse_body::<AccountCheckRequest>(body).map_err(|e| e.code);
        assert_eq!(
            code(b"{\"CheckItem\":[{\"UserID\":\"a\"}],\"x\":\"\xd0\"}"),
            Err(ErrorCode::JsonParse)
        );
        assert_eq!(
            code(b"{\"CheckItem\":5,\"x\":\"\xff\"}"),
            Err(ErrorCode::JsonParse)
        );
        assert_eq!(
            code(b"{\"CheckItem\":[{\"UserID\":\"a\"}],\"x\":\"\xc3\xa9\"}")
                .map(|r| r.check_item.len()),
            Ok(1)
        );
    }

    #[test]
    fn requests_round_trip_through_the_parser() {
        let req = AccountCheckRequest {
            check_item: vec![UserIdItem {
                user_id: "x".into(),
            }],
        };
        let bytes = serde_json::to_vec(&req).unwrap();
        assert_eq!(parse_body::<AccountCheckRequest>(&bytes).unwrap(), req);
    }
}
