//! An async client for Tencent Cloud Chat's account-management REST API, for timacct or for
//! Tencent's own cloud alike.
//!
//! It speaks the wire types of [`timacct_proto`], so the client and the server can never
//! disagree on a field name. Around the six typed calls ([`Client::account_import`],
//! [`Client::multiaccount_import`], [`Client::account_check`], [`Client::account_delete`],
//! [`Client::kick`], [`Client::query_online_status`]) it does what every long-running caller
//! of this API otherwise rewrites by hand:
//!
//! - **Endpoints** ([`Endpoint`], [`Region`]): any base URL, or a Tencent region by name with
//!   its documented host and backup host; a connection error fails over to the backup.
//! - **UserSigs** ([`SigLifetime`]): made from the key, cached, and replaced before they
//!   expire, so a job that outlives one UserSig never sees 70001.
//! - **Pacing** ([`Pacing`]): never more calls per second than the API's documented
//!   limit, so a bulk job does not provoke 60007.
//! - **Retries** ([`RetryPolicy`]): exponential backoff with jitter on transport errors and
//!   on the codes the one error table of `timacct-proto` marks retryable; nothing else is
//!   ever retried.
//! - **Bulk jobs** ([`bulk`]): any number of UserIDs, chunked into batches of 100, results
//!   merged into one ordered stream, with progress reports and a cooperative stop.
//!
//! Every attempt carries a fresh `random`, and every [`Error`] reports it so a failed call
//! can be traced on the server. The key and the UserSigs are never printed or logged.
#![deny(missing_docs)]

pub mod bulk;
mod client;
mod endpoint;
mod error;
mod pacing;
mod retry;
mod usersig;

pub use bulk::{
    BulkOptions, BulkStream, CancelFlag, ImportShape, ItemFailure, ItemResult, Progress, Stopped,
};
pub use client::{Client, ClientBuilder, Stats};
pub use endpoint::{Endpoint, Region};
pub use error::Error;
pub use pacing::Pacing;
pub use retry::RetryPolicy;
pub use usersig::{Clock, SigLifetime, SystemClock};

// The wire types, re-exported so that users of the client need not depend on the proto
// crate separately.
pub use timacct_proto::{
    AccountCheckRequest, AccountCheckResponse, AccountDeleteRequest, AccountDeleteResponse,
    AccountImportRequest, AccountListEntry, AccountStatus, Api, CheckResultItem, DeleteResultItem,
    Envelope, ErrorCode, KickRequest, MultiAccountImportRequest, MultiAccountImportResponse,
    OnlineDetail, OnlineErrorItem, OnlineResultItem, QueryOnlineStatusRequest,
    QueryOnlineStatusResponse, UserIdItem,
};
