//! Domain types shared by every backend.

use std::fmt;

/// A UserID: 1 to 32 bytes of UTF-8 without control characters. Case-sensitive, compared byte
/// for byte. Constructed only by [`UserId::parse`], so holding one proves it is valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

/// Why a string is not a valid UserID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserIdError {
    /// The empty string.
    #[error("UserID is empty")]
    Empty,
    /// More than 32 bytes.
    #[error("UserID is {0} bytes long; at most 32 bytes are allowed")]
    TooLong(usize),
    /// Contains U+0000–U+001F or U+007F.
    #[error("UserID contains a control character")]
    ControlCharacter,
}

impl UserId {
    /// The most bytes a UserID may have.
    pub const MAX_BYTES: usize = 32;

    /// Validate a UserID as the contract defines it.
    pub fn parse(raw: impl Into<String>) -> Result<UserId, UserIdError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(UserIdError::Empty);
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(UserIdError::TooLong(raw.len()));
        }
        if raw.chars().any(|c| c <= '\u{1f}' || c == '\u{7f}') {
            return Err(UserIdError::ControlCharacter);
        }
        Ok(UserId(raw))
    }

    /// The UserID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The UserID as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

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
