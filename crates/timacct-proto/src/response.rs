//! Response bodies. Field order is the order of Tencent's documented samples: the envelope
//! (`ActionStatus`, `ErrorCode`, `ErrorInfo`) first, then the rest; `ResultItem` entries keep
//! the key order of the seed samples, which differs between `account_check` and
//! `account_delete`.

use std::borrow::Cow;

use serde::Serialize;

use crate::error::{ApiError, ErrorCode};

/// The bare envelope: what every call answers with, and all that a failed call or an
/// envelope-only API (`account_import`, `kick`) carries.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Envelope {
    /// `OK` or `FAIL`.
    #[serde(rename = "ActionStatus")]
    pub action_status: Cow<'static, str>,
    /// 0 on success.
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
    /// `""` on success, otherwise why it failed.
    #[serde(rename = "ErrorInfo")]
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

macro_rules! ok_response {
    ($(#[$doc:meta])* $name:ident { $( $(#[$fdoc:meta])* $wire:literal $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Serialize, PartialEq, Eq)]
        pub struct $name {
            /// `OK` (these bodies are only sent on success).
            #[serde(rename = "ActionStatus")]
            pub action_status: &'static str,
            /// 0.
            #[serde(rename = "ErrorCode")]
            pub error_code: u32,
            /// `""`.
            #[serde(rename = "ErrorInfo")]
            pub error_info: &'static str,
            $( $(#[$fdoc])* #[serde(rename = $wire)] pub $field: $ty, )*
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
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum AccountStatus {
    /// The account exists.
    Imported,
    /// The account does not exist.
    NotImported,
}

/// One `account_check` result; key order as in the seed sample.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckResultItem {
    /// The account, as requested.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// 0, or why this item could not be checked.
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    /// `""`, or the reason.
    #[serde(rename = "ResultInfo")]
    pub result_info: Cow<'static, str>,
    /// `Imported` or `NotImported`.
    #[serde(rename = "AccountStatus")]
    pub account_status: AccountStatus,
}

/// One `account_delete` result; key order as in the seed sample.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeleteResultItem {
    /// 0 when deleted, otherwise why not.
    #[serde(rename = "ResultCode")]
    pub result_code: u32,
    /// `""`, or the reason.
    #[serde(rename = "ResultInfo")]
    pub result_info: Cow<'static, str>,
    /// The account, as requested.
    #[serde(rename = "UserID")]
    pub user_id: String,
}

/// One account's online state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OnlineResultItem {
    /// The account.
    #[serde(rename = "To_Account")]
    pub to_account: String,
    /// `Online`, `PushOnline` or `Offline`.
    #[serde(rename = "Status")]
    pub status: String,
    /// Per-platform states, only with `IsNeedDetail: 1`.
    #[serde(rename = "Detail", skip_serializing_if = "Option::is_none")]
    pub detail: Option<Vec<OnlineDetail>>,
}

/// One platform's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OnlineDetail {
    /// `iPhone`, `Android`, `Web`, `PC`, `iPad` or `Mac`.
    #[serde(rename = "Platform")]
    pub platform: String,
    /// That platform's state.
    #[serde(rename = "Status")]
    pub status: String,
}

/// An account whose state could not be fetched.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OnlineErrorItem {
    /// The account.
    #[serde(rename = "To_Account")]
    pub to_account: String,
    /// 70107 when it does not exist.
    #[serde(rename = "ErrorCode")]
    pub error_code: u32,
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
