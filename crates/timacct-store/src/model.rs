//! Domain types shared by every backend.

/// The UserID rule is the protocol's: one definition, which the request scanner shares.
pub use timacct_proto::{UserId, UserIdError, UserIdRef};

/// One account to import. A profile field that is `None` is left as it is on an existing
/// account (and empty on a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportItem {
    /// The account.
    pub user_id: UserId,
    /// New nickname, if given.
    pub nick: Option<String>,
    /// New avatar URL, if given.
    pub face_url: Option<String>,
}

impl ImportItem {
    /// An item with no profile fields.
    pub fn id_only(user_id: UserId) -> Self {
        ImportItem {
            user_id,
            nick: None,
            face_url: None,
        }
    }
}

/// The app's rules that decide whether a new account may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportPolicy {
    /// The most accounts the app may hold (70398 beyond).
    pub max_accounts: Option<u64>,
    /// How long, in seconds, a deleted UserID stays blocked from re-import (70399); `None`
    /// lets it be imported again at once.
    pub reimport_block_secs: Option<i64>,
    /// The current unix time, in seconds.
    pub now: i64,
}

/// What happened to one imported item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// A new account was created.
    Created,
    /// The account existed; given profile fields were overwritten.
    Updated,
    /// Not created: the app is at its `max_accounts` (70398).
    LimitReached,
    /// Not created: deleted too recently to be imported again (70399).
    ReimportBlocked,
}

impl ImportOutcome {
    /// Whether the account exists after the call because of this item.
    pub fn is_success(self) -> bool {
        matches!(self, ImportOutcome::Created | ImportOutcome::Updated)
    }
}

/// What happened to one account named in a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The account, its profile and sessions are gone.
    Deleted,
    /// There was no such account (or an earlier item of the same call deleted it).
    NotFound,
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The account.
    pub user_id: UserId,
    /// Nickname, `""` when never set.
    pub nick: String,
    /// Avatar URL, `""` when never set.
    pub face_url: String,
    /// Unix time of creation, in seconds.
    pub created_at: i64,
}

/// A platform of a user that stays PushOnline (offline push still delivered) until a time,
/// after a mobile session ended. Stored so that the state survives a restart and is shared
/// by every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOnline {
    /// The account.
    pub user_id: UserId,
    /// The platform's name as the sessions module spells it (e.g. `iPhone`); the store
    /// keeps it as given.
    pub platform: String,
    /// Unix time, in seconds, until which the platform is PushOnline.
    pub until: i64,
}
