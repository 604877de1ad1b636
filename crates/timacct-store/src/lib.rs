//! Account storage for timacct.
//!
//! The server talks to storage through one trait, [`AccountStore`], so that the embedded
//! SQLite backend and the networked PostgreSQL backend can be swapped without touching the
//! HTTP layer. [`open()`] opens either from one string (a `postgres://` URL or a file path) and
//! gives back what a server needs: the store, a description safe to print, and `close`.
//! Every backend must pass the same conformance suite: that suite, not any one backend,
//! defines what storing accounts means. Which items of an import are created, updated or
//! refused is decided once, for every backend, by one pure function (`import_policy`).
//!
//! Values reach this crate already parsed: a [`UserId`] can only be built by
//! [`UserId::parse`], so a backend never sees an invalid UserID.
//!
//! # Cargo features
//!
//! Each engine is a feature, so that a build compiles only the engines it serves:
//!
//! - `sqlite` (default): `SqliteStore`, one SQLite file (SQLite is bundled).
//! - `postgres`: `PostgresStore`, a PostgreSQL database shared by several instances
//!   (tokio-postgres, deadpool).
//! - `test-support`, for tests only: the `conformance` suite (`conformance_suite!`);
//!   with `postgres`, `postgres::TestDatabase`, which creates and drops throwaway databases;
//!   with `sqlite`, `SqliteStore::open_holding_index_load`, which holds the start-up index
//!   load so that a test can meet the path that answers from the file meanwhile.
//!
//! With no engine the crate still holds the trait and the domain types, which is all a
//! library that is handed a store (the HTTP server) needs.
#![deny(missing_docs)]

#[cfg(feature = "test-support")]
pub mod conformance;
// Used by every engine; without one there is nothing to plan.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod import_policy;
// The in-memory set of UserIDs `account_check` answers from, in both engines.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod index;
mod model;
mod open;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use model::{
    Account, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, PushOnline, UserId,
    UserIdError, UserIdRef,
};
pub use open::{open, OpenOptions, OpenedStore, PostgresOptions, Target};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(all(feature = "sqlite", feature = "test-support"))]
pub use sqlite::IndexLoadHold;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use async_trait::async_trait;

/// A storage failure. The server answers every one of these with 70500 (retryable): the
/// caller may try again, and nothing of the failed call was applied.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused the operation.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend stopped (e.g. during shutdown) before answering.
    #[error("storage is shutting down")]
    Closed,
}

impl timacct_proto::HasErrorCode for StoreError {
    /// Every storage failure is 70500, retryable: a connection lost during `COMMIT` leaves the
    /// outcome unknown, and retrying is safe because imports and deletes are idempotent.
    fn error_code(&self) -> timacct_proto::ErrorCode {
        timacct_proto::ErrorCode::Internal
    }

    fn error_info(&self) -> std::borrow::Cow<'static, str> {
        "internal storage error; retry the request (retrying is safe)".into()
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// The accounts of every app, isolated by SDKAppID.
///
/// Each write method applies its whole batch in one transaction and returns only after that
/// transaction is durable: an `Ok` from `import` or `delete` survives a crash or power loss.
/// Items in a batch are applied in order, so later items see earlier ones (a repeated UserID
/// in `delete` finds the account already gone).
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Import (create or update) accounts; one outcome per item, in order.
    async fn import(
        &self,
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
    ) -> Result<Vec<ImportOutcome>, StoreError>;

    /// Whether each account exists; one answer per id, in order.
    ///
    /// This is `account_check`'s hot path, so the IDs are borrowed from the request body and
    /// a backend that keeps every UserID in memory, in step with what is durable, answers
    /// from there without I/O (SQLite once its index has loaded).
    async fn check(&self, app: u32, ids: &[UserIdRef<'_>]) -> Result<Vec<bool>, StoreError>;

    /// Delete accounts and their profiles, leaving a tombstone dated `now`; one outcome per
    /// id, in order. A deleted account's kick cut-off becomes `now` (as [`Self::kick`] sets
    /// it), so UserSigs issued before the deletion never log in again, even after a
    /// re-import; its PushOnline times are cleared.
    async fn delete(
        &self,
        app: u32,
        ids: Vec<UserId>,
        now: i64,
    ) -> Result<Vec<DeleteOutcome>, StoreError>;

    /// One account with its profile, if it exists.
    async fn account(&self, app: u32, id: UserId) -> Result<Option<Account>, StoreError>;

    /// How many accounts the app has.
    async fn account_count(&self, app: u32) -> Result<u64, StoreError>;

    // What a user's sessions leave behind, durable so that it survives a restart and is
    // shared by every instance. Live sessions themselves are not stored: a restart ends them.

    /// Kick `id`: its cut-off becomes `at` (a later cut-off already stored stays), so every
    /// UserSig issued at or before `at` is refused from now on, and its PushOnline times are
    /// cleared. `false`, with nothing changed, when the account does not exist.
    async fn kick(&self, app: u32, id: UserId, at: i64) -> Result<bool, StoreError>;

    /// The user's cut-off (set by a kick or a deletion), if any.
    async fn cutoff(&self, app: u32, id: UserId) -> Result<Option<i64>, StoreError>;

    /// Every cut-off of the app, for an instance's start-up.
    async fn cutoffs(&self, app: u32) -> Result<Vec<(UserId, i64)>, StoreError>;

    /// Record that `platform` of `id` is PushOnline until `until`, or clear it (`None`).
    /// Nothing is recorded for an account that does not exist (it may have been deleted while
    /// its session was ending).
    async fn set_push_online(
        &self,
        app: u32,
        id: UserId,
        platform: String,
        until: Option<i64>,
    ) -> Result<(), StoreError>;

    /// Every PushOnline time of the app, expired ones included (the caller compares them with
    /// the app's clock), in byte order of UserID then platform.
    async fn push_online(&self, app: u32) -> Result<Vec<PushOnline>, StoreError>;
}
