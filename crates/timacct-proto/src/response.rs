//! Response bodies. Field order is the order of Tencent's documented samples: the envelope
//! (`ActionStatus`, `ErrorCode`, `ErrorInfo`) first, then the rest; `ResultItem` entries keep
//! the key order of the seed samples, which differs between `account_check` and
//! `account_delete`.
//!
//! The same types deserialize, so a client reads Tencent's answers into them. Deserializing is
//! lenient where Tencent's docs are: list fields that a reply may omit default to empty, and
//! unknown fields (such as a `RequestId`) are ignored.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, ErrorCode};

/// The bare envelope: what every call answers with, and all that a failed call or an
/// envelope-only API (`account_import`, `kick`) carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    /// `OK` or `FAIL`.
    #[serde(rename = "ActionStatus")]
    pub action_status: Cow<'static, str>,
    /// 0 on success.
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
    /// `""` on success, otherwise why it failed.
    #[serde(rename = "ErrorInfo", default)]
    pub error_info: Cow<'static, str>,
}

impl Envelope {
    /// `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""}`.
    pub fn ok() -> Self {
        Envelope {
            action_status: Cow::Borrowed("OK"),
            error_code: 0,
            error_info: Cow::Borrowed(""),
        }
    }

    /// The envelope of a failed call.
    pub fn fail(error: &ApiError) -> Self {
        Envelope {
            action_status: Cow::Borrowed("FAIL"),
            error_code: error.code.code(),
            error_info: error.info.clone(),
        }
    }

    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.error_code == 0
    }
}

impl From<&ApiError> for Envelope {
    fn from(e: &ApiError) -> Self {
        Envelope::fail(e)
    }
}

/// `&'static str` under another name. serde's derive recognises `&str` fields by their
/// spelling and then borrows them from the input, which would make the success bodies
/// readable only from `'static` input (not `DeserializeOwned`); the alias keeps the type and
/// avoids that.
type StaticText = &'static str;

macro_rules! ok_response {
    ($(#[$doc:meta])* $name:ident { $( $(#[$fdoc:meta])* $wire:literal $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$doc])*
        ///
        /// Deserializing reads a success body only (a client reads the [`Envelope`] first);
        /// list fields a reply omits come back empty.
        #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
        pub struct $name {
            /// `OK` (these bodies are only sent on success).
            #[serde(rename = "ActionStatus", deserialize_with = "ok_status")]
            pub action_status: StaticText,
            /// 0.
            #[serde(rename = "ErrorCode")]
            pub error_code: u32,
            /// `""`.
            #[serde(rename = "ErrorInfo", default, deserialize_with = "success_info")]
            pub error_info: StaticText,
            $( $(#[$fdoc])* #[serde(rename = $wire, default)] pub $field: $ty, )*
        }

        impl $name {
            /// A successful response carrying these results.
            pub fn ok($($field: $ty),*) -> Self {
                $name { action_status: "OK", error_code: 0, error_info: "", $($field),* }
            }
        }
    };
}

ok_response!(
    /// `multiaccount_import` response.
    MultiAccountImportResponse {
        /// UserIDs that were not imported; `[]` when all were.
        "FailAccounts" fail_accounts: Vec<String>,
    }
);

ok_response!(
    /// `account_check` response.
    AccountCheckResponse {
        /// One entry per requested account, in request order.
        "ResultItem" result_item: Vec<CheckResultItem>,
    }
);

ok_response!(
    /// `account_delete` response.
    AccountDeleteResponse {
        /// One entry per requested account, in request order.
        "ResultItem" result_item: Vec<DeleteResultItem>,
    }
);

ok_response!(
    /// `query_online_status` response.
    QueryOnlineStatusResponse {
        /// States of the accounts that exist.
        "QueryResult" query_result: Vec<OnlineResultItem>,
        /// Accounts whose state could not be fetched.
        "ErrorList" error_list: Vec<OnlineErrorItem>,
    }
);

/// Whether an account is imported.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum AccountStatus {
    /// The account exists.
    Imported,
    /// The account does not exist (also what an item that could not be checked carries).
    #[default]
    NotImported,
}

/// One `account_check` result; key order as in the seed sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckResultItem {
    /// The account, as requested.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// 0, or why this item could not be checked.
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    /// `""`, or the reason.
    #[serde(rename = "ResultInfo", default)]
    pub result_info: Cow<'static, str>,
    /// `Imported` or `NotImported`. Read as `NotImported` when absent: what a failed item
    /// carries is not documented.
    #[serde(rename = "AccountStatus", default)]
    pub account_status: AccountStatus,
}

/// One `account_delete` result; key order as in the seed sample.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeleteResultItem {
    /// 0 when deleted, otherwise why not.
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    /// `""`, or the reason.
    #[serde(rename = "ResultInfo", default)]
    pub result_info: Cow<'static, str>,
    /// The account, as requested.
    #[serde(rename = "UserID")]
    pub user_id: String,
}

/// One account's online state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnlineResultItem {
    /// The account.
    #[serde(rename = "To_Account")]
    pub to_account: String,
    /// `Online`, `PushOnline` or `Offline`. Read from `State` too, the name the English
    /// pages and the predecessor API `querystate` print.
    #[serde(rename = "Status", alias = "State")]
    pub status: String,
    /// Per-platform states, only with `IsNeedDetail: 1`.
    #[serde(rename = "Detail", skip_serializing_if = "Option::is_none")]
    pub detail: Option<Vec<OnlineDetail>>,
}

/// One platform's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnlineDetail {
    /// `iPhone`, `Android`, `Web`, `PC`, `iPad` or `Mac`.
    #[serde(rename = "Platform")]
    pub platform: String,
    /// That platform's state (also read from `State`).
    #[serde(rename = "Status", alias = "State")]
    pub status: String,
}

/// An account whose state could not be fetched.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OnlineErrorItem {
    /// The account.
    #[serde(rename = "To_Account")]
    pub to_account: String,
    /// 70107 when it does not exist.
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
}

/// `ActionStatus` of a success body: only `"OK"` reads into the `&'static str` these bodies
/// hold; anything else is not a success body.
fn ok_status<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let status = Cow::<'de, str>::deserialize(d)?;
    if status == "OK" {
        Ok("OK")
    } else {
        Err(serde::de::Error::custom(format!(
            "ActionStatus is {status:?} in a success body; read the Envelope first"
        )))
    }
}

/// `ErrorInfo` of a success body. It is `""` in every documented success; whatever text a
/// service adds there is dropped here (the [`Envelope`] keeps it), as a `&'static str` cannot
/// hold it.
fn success_info<'de, D: Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    Cow::<'de, str>::deserialize(d)?;
    Ok("")
}

impl CheckResultItem {
    /// A successfully checked item.
    pub fn checked(user_id: String, imported: bool) -> Self {
        CheckResultItem {
            user_id,
            result_code: 0,
            result_info: Cow::Borrowed(""),
            account_status: if imported {
                AccountStatus::Imported
            } else {
                AccountStatus::NotImported
            },
        }
    }

    /// An item that could not be checked (e.g. an invalid UserID).
    pub fn failed(user_id: String, code: ErrorCode, info: impl Into<Cow<'static, str>>) -> Self {
        CheckResultItem {
            user_id,
            result_code: code.code(),
            result_info: info.into(),
            account_status: AccountStatus::NotImported,
        }
    }
}

impl DeleteResultItem {
    /// An item with this outcome.
    pub fn new(user_id: String, code: ErrorCode, info: impl Into<Cow<'static, str>>) -> Self {
        DeleteResultItem {
            result_code: code.code(),
            result_info: info.into(),
            user_id,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn documented_samples_deserialize() {
        let check: AccountCheckResponse = serde_json::from_str(
            r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"",
                "ResultItem":[{"UserID":"UserID_1","ResultCode":0,"ResultInfo":"","AccountStatus":"Imported"},
                              {"UserID":"UserID_2","ResultCode":0,"ResultInfo":"","AccountStatus":"NotImported"}]}"#,
        )
        .unwrap();
        assert_eq!(
            check.result_item[1].account_status,
            AccountStatus::NotImported
        );
        let delete: AccountDeleteResponse = serde_json::from_str(
            r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","RequestId":"Id-1",
                "ResultItem":[{"ResultCode":70107,"ResultInfo":"Err_TLS_PT_Open_Login_Account_Not_Exist","UserID":"UserID_2"}]}"#,
        )
        .unwrap();
        assert_eq!(delete.result_item[0].result_code, 70107);
        // FailAccounts may be omitted when nothing failed (UNCONFIRMED upstream): read as [].
        let multi: MultiAccountImportResponse =
            serde_json::from_str(r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}"#).unwrap();
        assert!(multi.fail_accounts.is_empty());
        let online: QueryOnlineStatusResponse = serde_json::from_str(
            r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0,
                "QueryResult":[{"To_Account":"id1","Status":"Offline"},
                               {"To_Account":"id2","Status":"Online","Detail":[{"Platform":"iPhone","Status":"PushOnline"}]}],
                "ErrorList":[{"To_Account":"id4","ErrorCode":70107}]}"#,
        )
        .unwrap();
        assert_eq!(
            online.query_result[1].detail.as_ref().unwrap()[0].platform,
            "iPhone"
        );
        assert_eq!(online.error_list[0].error_code, 70107);
        // The English pages' drift: `State` for `Status`.
        let english: QueryOnlineStatusResponse = serde_json::from_str(
            r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0,
                "QueryResult":[{"To_Account":"id1","State":"Online","Detail":[{"Platform":"IPhone","State":"PushOnline"}]}]}"#,
        )
        .unwrap();
        assert_eq!(english.query_result[0].status, "Online");
        assert_eq!(
            english.query_result[0].detail.as_ref().unwrap()[0].status,
            "PushOnline"
        );
        assert!(english.error_list.is_empty());
        let env: Envelope = serde_json::from_str(
            r#"{"ActionStatus":"FAIL","ErrorInfo":"Fail to Parse json data of body, Please check it","ErrorCode":90001}"#,
        )
        .unwrap();
        assert_eq!(env.error_code, 90001);
    }

    #[test]
    fn a_failure_body_is_not_a_success_body() {
        let r: Result<AccountCheckResponse, _> = serde_json::from_str(
            r#"{"ActionStatus":"FAIL","ErrorCode":70402,"ErrorInfo":"x","ResultItem":[]}"#,
        );
        assert!(r.is_err());
    }

    #[test]
    fn serialized_responses_read_back_unchanged() {
        let check = AccountCheckResponse::ok(vec![CheckResultItem::checked("a".into(), true)]);
        let text = serde_json::to_string(&check).unwrap();
        assert_eq!(
            serde_json::from_str::<AccountCheckResponse>(&text).unwrap(),
            check
        );
    }
}
