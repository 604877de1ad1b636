//! The import policy, written once for every backend: which items of a batch create an
//! account, update one, or are refused (70398 `LimitReached`, 70399 `ReimportBlocked`), and
//! what the batch then writes.
//!
//! A backend gathers the facts inside its write transaction, where nothing else can change
//! them before the commit — the app's account count, which of the batch's UserIDs
//! ([`distinct_ids`]) have an account and, when the policy blocks re-imports
//! ([`needs_tombstones`]), when the others were deleted — then calls [`plan`] and writes the
//! plan's [`changes`](ImportPlan::changes) and [`count`](ImportPlan::count). The decision
//! itself does no I/O, so every backend answers a batch alike and the rules are tested here,
//! without a database.

use std::collections::{HashMap, HashSet};

use crate::{ImportItem, ImportOutcome, ImportPolicy};

/// The UserIDs of `items`, each once, in first-seen order: what a backend looks up before
/// planning.
pub(crate) fn distinct_ids(items: &[ImportItem]) -> Vec<&str> {
    let mut seen = HashSet::with_capacity(items.len());
    items
        .iter()
        .map(|i| i.user_id.as_str())
        .filter(|id| seen.insert(*id))
        .collect()
}

/// Whether [`plan`] will ask for tombstones: only a policy that blocks re-imports looks at
/// them, so a backend can skip reading them otherwise.
pub(crate) fn needs_tombstones(policy: &ImportPolicy) -> bool {
    policy.reimport_block_secs.is_some()
}

/// What an import batch does, decided before anything is written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ImportPlan<'a> {
    /// One outcome per item, in order.
    pub outcomes: Vec<ImportOutcome>,
    /// The net change to each UserID the batch creates or updates: one per UserID, in
    /// first-seen order, with the profile fields of all its items folded (a later item's
    /// field wins), so that a backend may write them in one statement per kind.
    pub changes: Vec<Change<'a>>,
    /// The app's account count once the plan is written.
    pub count: u64,
}

/// The net effect of a batch on one UserID.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Change<'a> {
    /// The account.
    pub user_id: &'a str,
    /// The batch creates the account (else it existed and is updated).
    pub created: bool,
    /// The nickname to write; `None` keeps it (empty on a new account).
    pub nick: Option<&'a str>,
    /// The avatar URL to write; `None` keeps it (empty on a new account).
    pub face_url: Option<&'a str>,
}

impl Change<'_> {
    /// Whether an update has anything to write: an existing account named without profile
    /// fields is `Updated` but left untouched.
    pub fn touches_profile(&self) -> bool {
        self.nick.is_some() || self.face_url.is_some()
    }
}

/// Decide each item's outcome, in order, so that later items see earlier ones (an account
/// the batch created is `Updated` by a repeat; a created account counts towards the limit).
///
/// The facts: `count` is the app's account count before the batch, `exists` whether a
/// UserID has an account, `deleted_at` when a UserID without one was deleted (only asked
/// when [`needs_tombstones`]). For each item:
///
/// 1. an account that exists (before or by an earlier item) is `Updated`;
/// 2. else, a UserID deleted less than `reimport_block_secs` before `now` is
///    `ReimportBlocked`;
/// 3. else, at `max_accounts` it is `LimitReached`;
/// 4. else it is `Created`.
pub(crate) fn plan<'a>(
    items: &'a [ImportItem],
    policy: ImportPolicy,
    count: u64,
    exists: impl Fn(&str) -> bool,
    deleted_at: impl Fn(&str) -> Option<i64>,
) -> ImportPlan<'a> {
    let mut count = count;
    let mut changes: Vec<Change<'a>> = Vec::new();
    // Where each UserID's change is in `changes`.
    let mut position: HashMap<&'a str, usize> = HashMap::new();
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let id = item.user_id.as_str();
        let nick = item.nick.as_deref();
        let face_url = item.face_url.as_deref();
        if let Some(change) = position.get(id).and_then(|&k| changes.get_mut(k)) {
            change.nick = nick.or(change.nick);
            change.face_url = face_url.or(change.face_url);
            outcomes.push(ImportOutcome::Updated);
            continue;
        }
        let created = if exists(id) {
            false
        } else if blocked(&policy, || deleted_at(id)) {
            outcomes.push(ImportOutcome::ReimportBlocked);
            continue;
        } else if policy.max_accounts.is_some_and(|max| count >= max) {
            outcomes.push(ImportOutcome::LimitReached);
            continue;
        } else {
            count += 1;
            true
        };
        position.insert(id, changes.len());
        changes.push(Change {
            user_id: id,
            created,
            nick,
            face_url,
        });
        outcomes.push(if created {
            ImportOutcome::Created
        } else {
            ImportOutcome::Updated
        });
    }
    ImportPlan {
        outcomes,
        changes,
        count,
    }
}

/// Whether a UserID without an account is still blocked from re-import by its tombstone.
fn blocked(policy: &ImportPolicy, deleted_at: impl FnOnce() -> Option<i64>) -> bool {
    match policy.reimport_block_secs {
        Some(block) => deleted_at().is_some_and(|t| policy.now < t.saturating_add(block)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::UserId;
    use ImportOutcome::*;

    fn item(id: &str, nick: Option<&str>) -> ImportItem {
        ImportItem {
            user_id: UserId::parse(id).unwrap(),
            nick: nick.map(str::to_owned),
            face_url: None,
        }
    }

    fn plain(ids: &[&str]) -> Vec<ImportItem> {
        ids.iter().map(|id| item(id, None)).collect()
    }

    fn open(now: i64) -> ImportPolicy {
        ImportPolicy {
            max_accounts: None,
            reimport_block_secs: None,
            now,
        }
    }

    fn nothing(_: &str) -> bool {
        false
    }

    fn no_tombstones(_: &str) -> Option<i64> {
        None
    }

    #[test]
    fn plan_follows_item_order() {
        let items = vec![
            item("old", Some("n1")),
            item("new", None),
            item("new", Some("n2")),
            item("gone", None),
            item("over", None),
            item("old", Some("n3")),
        ];
        let policy = ImportPolicy {
            max_accounts: Some(2),
            reimport_block_secs: Some(50),
            now: 120,
        };
        let plan = plan(
            &items,
            policy,
            1,
            |id| id == "old",
            |id| (id == "gone").then_some(100),
        );
        assert_eq!(
            plan.outcomes,
            vec![
                Updated,
                Created,
                Updated,
                ReimportBlocked,
                LimitReached,
                Updated
            ]
        );
        assert_eq!(plan.count, 2);
        let folded: Vec<(&str, bool, Option<&str>)> = plan
            .changes
            .iter()
            .map(|c| (c.user_id, c.created, c.nick))
            .collect();
        assert_eq!(
            folded,
            vec![("old", false, Some("n3")), ("new", true, Some("n2"))]
        );
    }

    #[test]
    fn the_limit_counts_what_the_batch_created_and_spares_existing_accounts() {
        let policy = ImportPolicy {
            max_accounts: Some(3),
            ..open(1)
        };
        let items = plain(&["a", "b", "c", "x", "d"]);
        let under = plan(&items, policy, 1, |id| id == "x", no_tombstones);
        assert_eq!(
            under.outcomes,
            vec![Created, Created, LimitReached, Updated, LimitReached]
        );
        assert_eq!(under.count, 3);
        // Already over the limit (it was lowered): updates still pass, creates do not.
        let items = plain(&["x", "y"]);
        let lowered = ImportPolicy {
            max_accounts: Some(5),
            ..open(1)
        };
        let over = plan(&items, lowered, 10, |id| id == "x", no_tombstones);
        assert_eq!(over.outcomes, vec![Updated, LimitReached]);
        assert_eq!(over.count, 10);
    }

    #[test]
    fn a_tombstone_blocks_until_the_block_has_passed() {
        let policy = |now| ImportPolicy {
            reimport_block_secs: Some(100),
            ..open(now)
        };
        let items = plain(&["t", "t"]);
        let at = |now| plan(&items, policy(now), 0, nothing, |_| Some(1_000)).outcomes;
        assert_eq!(at(1_000), vec![ReimportBlocked, ReimportBlocked]);
        assert_eq!(at(1_099), vec![ReimportBlocked, ReimportBlocked]);
        assert_eq!(at(1_100), vec![Created, Updated]);
        // A block that would overflow the clock blocks for ever, it does not wrap.
        let forever = ImportPolicy {
            reimport_block_secs: Some(i64::MAX),
            ..open(i64::MAX - 1)
        };
        assert_eq!(
            plan(&items, forever, 0, nothing, |_| Some(1)).outcomes,
            vec![ReimportBlocked, ReimportBlocked]
        );
    }

    #[test]
    fn without_a_block_tombstones_are_not_asked_for() {
        let items = plain(&["t"]);
        let plan = plan(&items, open(5), 0, nothing, |_| -> Option<i64> {
            panic!("tombstones read although the policy does not block re-imports")
        });
        assert_eq!(plan.outcomes, vec![Created]);
        assert!(!needs_tombstones(&open(5)));
    }

    #[test]
    fn a_blocked_id_is_checked_before_the_limit() {
        let policy = ImportPolicy {
            max_accounts: Some(0),
            reimport_block_secs: Some(10),
            now: 5,
        };
        let items = plain(&["t", "n"]);
        let plan = plan(&items, policy, 0, nothing, |id| (id == "t").then_some(1));
        assert_eq!(plan.outcomes, vec![ReimportBlocked, LimitReached]);
        assert!(plan.changes.is_empty());
        assert_eq!(plan.count, 0);
    }

    #[test]
    fn profile_fields_fold_with_the_last_given_winning() {
        let items = vec![
            ImportItem {
                user_id: UserId::parse("p").unwrap(),
                nick: Some("n1".into()),
                face_url: Some("f1".into()),
            },
            item("p", None),
            ImportItem {
                user_id: UserId::parse("p").unwrap(),
                nick: None,
                face_url: Some("".into()),
            },
            item("q", None),
        ];
        let plan = plan(&items, open(1), 0, |id| id == "q", no_tombstones);
        assert_eq!(plan.outcomes, vec![Created, Updated, Updated, Updated]);
        assert_eq!(
            plan.changes,
            vec![
                Change {
                    user_id: "p",
                    created: true,
                    nick: Some("n1"),
                    face_url: Some(""),
                },
                Change {
                    user_id: "q",
                    created: false,
                    nick: None,
                    face_url: None,
                },
            ]
        );
        assert!(plan.changes[0].touches_profile());
        assert!(!plan.changes[1].touches_profile());
    }

    #[test]
    fn distinct_ids_keep_first_seen_order() {
        let items = plain(&["b", "a", "b", "c", "a"]);
        assert_eq!(distinct_ids(&items), vec!["b", "a", "c"]);
    }
}
