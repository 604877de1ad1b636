//! Request bodies. Field names are Tencent's; unknown fields are ignored, as the contract says.

use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};

/// `account_import`: one account, with optional profile fields.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AccountImportRequest {
    /// The account to import.
    #[serde(rename = "UserID", default)]
    pub user_id: Option<String>,
    /// The same field under its pre-2022 name; `UserID` wins when both are present.
    #[serde(rename = "Identifier", default)]
    pub identifier: Option<String>,
    /// Nickname (`Tag_Profile_IM_Nick`).
    #[serde(rename = "Nick", default)]
    pub nick: Option<String>,
    /// Avatar URL (`Tag_Profile_IM_Image`).
    #[serde(rename = "FaceUrl", default)]
    pub face_url: Option<String>,
}

impl AccountImportRequest {
    /// The UserID the call names, by its current or its legacy field name.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.identifier.as_deref())
    }
}

/// `multiaccount_import`, in either of its two documented shapes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct MultiAccountImportRequest {
    /// The old shape: UserIDs only.
    #[serde(rename = "Accounts", default)]
    pub accounts: Option<Vec<String>>,
    /// The new shape: UserIDs with optional profile fields.
    #[serde(rename = "AccountList", default)]
    pub account_list: Option<Vec<AccountListEntry>>,
}

/// One entry of `AccountList`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AccountListEntry {
    /// The account to import.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// Nickname.
    #[serde(rename = "Nick", default)]
    pub nick: Option<String>,
    /// Avatar URL.
    #[serde(rename = "FaceUrl", default)]
    pub face_url: Option<String>,
}

/// `{"UserID": ...}`, the item of `CheckItem` and `DeleteItem`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct UserIdItem {
    /// The account.
    #[serde(rename = "UserID")]
    pub user_id: String,
}

/// `account_check`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AccountCheckRequest {
    /// The accounts to check, at most 100.
    #[serde(rename = "CheckItem")]
    pub check_item: Vec<UserIdItem>,
}

/// `account_delete`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AccountDeleteRequest {
    /// The accounts to delete, at most 100.
    #[serde(rename = "DeleteItem")]
    pub delete_item: Vec<UserIdItem>,
}

/// `kick`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct KickRequest {
    /// The account whose login state is invalidated.
    #[serde(rename = "UserID", default)]
    pub user_id: Option<String>,
    /// Legacy name of the same field.
    #[serde(rename = "Identifier", default)]
    pub identifier: Option<String>,
}

impl KickRequest {
    /// The UserID the call names, by its current or its legacy field name.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref().or(self.identifier.as_deref())
    }
}

/// `query_online_status`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct QueryOnlineStatusRequest {
    /// The accounts to query, at most 500.
    #[serde(rename = "To_Account")]
    pub to_account: Vec<String>,
    /// 1: return per-platform detail.
    #[serde(rename = "IsNeedDetail", default)]
    pub is_need_detail: Option<u32>,
}

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
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::with_info(
            ErrorCode::InvalidParameter,
            format!("invalid request body: {e}"),
        ),
        _ => ApiError::with_info(
            ErrorCode::JsonParse,
            format!("the request body is not valid JSON: {e}"),
        ),
    })
}
