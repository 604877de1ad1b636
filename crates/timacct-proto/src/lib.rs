//! Wire types of Tencent Cloud Chat's account-management REST API.
//!
//! Everything that crosses the wire lives here so that the server and the client share one
//! definition: the request bodies, the response bodies (with their documented key order), the
//! envelope, the one table of error codes, the APIs with their paths and rate limits, and the
//! batch limits. Nothing here does I/O.
#![deny(missing_docs)]

mod api;
mod batch;
mod error;
pub mod fast;
mod request;
mod response;
mod time;
mod user_id;

pub use api::{Api, ApiQuery, PerApi, QueryError};
pub use batch::{
    check_batch_len, invalid_user_id_info, write_check_response, BatchItem, BatchKind, UserIdBatch,
};
pub use error::{ApiError, ErrorCode, HasErrorCode};
pub use request::{
    parse_body, AccountCheckRequest, AccountDeleteRequest, AccountImportRequest, AccountListEntry,
    KickRequest, MultiAccountImportRequest, QueryOnlineStatusRequest, UserIdItem,
};
pub use response::{
    AccountCheckResponse, AccountDeleteResponse, AccountStatus, CheckResultItem, DeleteResultItem,
    Envelope, MultiAccountImportResponse, OnlineDetail, OnlineErrorItem, OnlineResultItem,
    QueryOnlineStatusResponse,
};
pub use time::unix_now;
pub use user_id::{
    is_user_id_byte, validate_user_id, UserId, UserIdError, UserIdRef, MAX_USER_ID_BYTES,
};

/// The most accounts one batch call may name (`multiaccount_import`, `account_check`,
/// `account_delete`), as documented on every batch API's page.
pub const MAX_BATCH: usize = 100;
/// The most accounts one `query_online_status` call may name.
pub const MAX_ONLINE_BATCH: usize = 500;
/// `Nick` and `FaceUrl` are profile fields limited to 500 bytes (error 40601 beyond).
pub const MAX_PROFILE_FIELD_BYTES: usize = 500;
/// The exact per-item `ResultInfo` Tencent returns for a missing account in `account_delete`.
pub const ACCOUNT_NOT_EXIST_INFO: &str = "Err_TLS_PT_Open_Login_Account_Not_Exist";
