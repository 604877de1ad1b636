//! Helpers every backend's tests use.

use timacct_store::{ImportPolicy, UserId, UserIdRef};

/// Borrowed UserIDs, as `check` takes them.
pub fn refs<'a>(list: &[&'a str]) -> Vec<UserIdRef<'a>> {
    list.iter().map(|s| UserIdRef::parse(s).unwrap()).collect()
}

/// One UserID.
pub fn id(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// A policy that allows every import, at `now`.
pub fn policy(now: i64) -> ImportPolicy {
    ImportPolicy {
        max_accounts: None,
        reimport_block_secs: None,
        now,
    }
}
