//! The store conformance suite: what every backend must do, written once.
//!
//! A backend's test file invokes [`conformance_suite!`](crate::conformance_suite) with an
//! expression that yields a fresh store (see [`Fresh`]); the macro expands to one
//! `#[tokio::test]` per case. Each case uses its own SDKAppIDs, so cases never see each other.
//!
//! Behind the `test-support` feature: test code, never part of what a server links.
// A failed expectation is the test failing: unwrap is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::{
    AccountStore, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, PushOnline, UserId,
    UserIdRef,
};

/// Expand to one test per conformance case for the backend `$make` builds: an async
/// expression yielding an `Arc<dyn AccountStore>`, or an `Option` of one whose `None` skips
/// the case (see [`Fresh`]).
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@cases $make;
            import_then_check, import_updates_profile_only_when_given, duplicates_in_one_import,
            delete_then_check, delete_repeats_are_not_found, apps_are_isolated,
            max_accounts_limit, reimport_block, reimport_allowed_without_block,
            userids_are_case_sensitive_and_bytewise, concurrent_imports_share_commits,
            account_count_tracks_imports_and_deletes, check_follows_every_write_at_once,
            concurrent_imports_of_the_same_ids_create_each_once,
            concurrent_imports_respect_max_accounts_exactly,
            concurrent_imports_keep_each_calls_outcomes,
            kick_sets_a_cutoff_only_for_existing_accounts, kick_cutoff_never_moves_back,
            push_online_is_kept_per_platform_for_existing_accounts,
            kick_clears_push_online, delete_sets_the_cutoff_and_clears_push_online,
            session_state_is_isolated_by_app);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $crate::conformance::Fresh::into_store($make.await) else {
                    return;
                };
                $crate::conformance::$case(store).await;
            }
        )*
    };
}

/// What a backend's `$make` in [`conformance_suite!`](crate::conformance_suite) may yield: a
/// store, or `None` when the backend's service is absent and its tests may be skipped (the
/// case then passes; it is the backend's job to say why, and to refuse to skip in CI).
pub trait Fresh {
    /// The store to test, if any.
    fn into_store(self) -> Option<Arc<dyn AccountStore>>;
}

impl Fresh for Arc<dyn AccountStore> {
    fn into_store(self) -> Option<Arc<dyn AccountStore>> {
        Some(self)
    }
}

impl Fresh for Option<Arc<dyn AccountStore>> {
    fn into_store(self) -> Option<Arc<dyn AccountStore>> {
        self
    }
}

fn id(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn ids(list: &[&str]) -> Vec<UserId> {
    list.iter().map(|s| id(s)).collect()
}

fn refs<'a>(list: &[&'a str]) -> Vec<UserIdRef<'a>> {
    list.iter().map(|s| UserIdRef::parse(s).unwrap()).collect()
}

fn plain(list: &[&str]) -> Vec<ImportItem> {
    list.iter().map(|s| ImportItem::id_only(id(s))).collect()
}

fn policy(now: i64) -> ImportPolicy {
    ImportPolicy {
        max_accounts: None,
        reimport_block_secs: None,
        now,
    }
}

/// Import creates what is new and updates what exists, and `check`, `account` see exactly
/// what was imported (a repeated id in `check` answers each time): the core of the API.
pub async fn import_then_check(store: Arc<dyn AccountStore>) {
    let out = store
        .import(101, plain(&["a", "b"]), policy(1000))
        .await
        .unwrap();
    assert_eq!(out, vec![ImportOutcome::Created, ImportOutcome::Created]);
    let out = store
        .import(101, plain(&["b", "c"]), policy(1001))
        .await
        .unwrap();
    assert_eq!(out, vec![ImportOutcome::Updated, ImportOutcome::Created]);
    let seen = store
        .check(101, &refs(&["a", "b", "c", "d", "a"]))
        .await
        .unwrap();
    assert_eq!(seen, vec![true, true, true, false, true]);
    let acct = store.account(101, id("a")).await.unwrap().unwrap();
    assert_eq!(
        (acct.nick.as_str(), acct.face_url.as_str(), acct.created_at),
        ("", "", 1000)
    );
    assert!(store.account(101, id("zz")).await.unwrap().is_none());
}

/// A profile field left out of an import keeps its value, and an empty one clears it: the
/// difference between "not given" and "given empty" is the API's.
pub async fn import_updates_profile_only_when_given(store: Arc<dyn AccountStore>) {
    let item = |nick: Option<&str>, face: Option<&str>| ImportItem {
        user_id: id("p"),
        nick: nick.map(str::to_owned),
        face_url: face.map(str::to_owned),
    };
    store
        .import(102, vec![item(Some("n1"), Some("f1"))], policy(1))
        .await
        .unwrap();
    store
        .import(102, vec![item(Some("n2"), None)], policy(2))
        .await
        .unwrap();
    let a = store.account(102, id("p")).await.unwrap().unwrap();
    assert_eq!((a.nick.as_str(), a.face_url.as_str()), ("n2", "f1"));
    store
        .import(102, vec![item(None, Some(""))], policy(3))
        .await
        .unwrap();
    let a = store.account(102, id("p")).await.unwrap().unwrap();
    assert_eq!(
        (a.nick.as_str(), a.face_url.as_str(), a.created_at),
        ("n2", "", 1)
    );
}

/// A UserID twice in one batch is created once, then updated (the last nickname wins), and
/// counted once: items are applied in order.
pub async fn duplicates_in_one_import(store: Arc<dyn AccountStore>) {
    let items = vec![
        ImportItem {
            user_id: id("d"),
            nick: Some("first".into()),
            face_url: None,
        },
        ImportItem {
            user_id: id("d"),
            nick: Some("last".into()),
            face_url: None,
        },
    ];
    let out = store.import(103, items, policy(1)).await.unwrap();
    assert_eq!(out, vec![ImportOutcome::Created, ImportOutcome::Updated]);
    assert_eq!(
        store.account(103, id("d")).await.unwrap().unwrap().nick,
        "last"
    );
    assert_eq!(store.account_count(103).await.unwrap(), 1);
}

/// A deleted account is gone with its profile: a re-import starts empty.
pub async fn delete_then_check(store: Arc<dyn AccountStore>) {
    store
        .import(
            104,
            vec![ImportItem {
                user_id: id("x"),
                nick: Some("n".into()),
                face_url: None,
            }],
            policy(1),
        )
        .await
        .unwrap();
    let out = store.delete(104, ids(&["x", "y"]), 5).await.unwrap();
    assert_eq!(out, vec![DeleteOutcome::Deleted, DeleteOutcome::NotFound]);
    assert_eq!(store.check(104, &refs(&["x"])).await.unwrap(), vec![false]);
    // The profile went with the account: a re-import starts empty.
    store.import(104, plain(&["x"]), policy(6)).await.unwrap();
    assert_eq!(store.account(104, id("x")).await.unwrap().unwrap().nick, "");
}

/// A UserID twice in one delete is deleted by the first and not found by the second (70107
/// for that item), so outcomes add up to what changed.
pub async fn delete_repeats_are_not_found(store: Arc<dyn AccountStore>) {
    store.import(105, plain(&["r"]), policy(1)).await.unwrap();
    let out = store.delete(105, ids(&["r", "r"]), 2).await.unwrap();
    assert_eq!(out, vec![DeleteOutcome::Deleted, DeleteOutcome::NotFound]);
}

/// One app never sees, deletes or counts another app's accounts, even for the same UserID.
pub async fn apps_are_isolated(store: Arc<dyn AccountStore>) {
    store
        .import(106, plain(&["shared"]), policy(1))
        .await
        .unwrap();
    assert_eq!(
        store.check(107, &refs(&["shared"])).await.unwrap(),
        vec![false]
    );
    assert_eq!(
        store.delete(107, ids(&["shared"]), 2).await.unwrap(),
        vec![DeleteOutcome::NotFound]
    );
    assert_eq!(
        store.check(106, &refs(&["shared"])).await.unwrap(),
        vec![true]
    );
    assert_eq!(store.account_count(107).await.unwrap(), 0);
}

/// `max_accounts` refuses creation beyond it (70398) but never an update, and a delete makes
/// room again.
pub async fn max_accounts_limit(store: Arc<dyn AccountStore>) {
    let p = ImportPolicy {
        max_accounts: Some(2),
        reimport_block_secs: None,
        now: 1,
    };
    let out = store
        .import(108, plain(&["m1", "m2", "m3", "m1"]), p)
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![
            ImportOutcome::Created,
            ImportOutcome::Created,
            ImportOutcome::LimitReached,
            ImportOutcome::Updated
        ]
    );
    assert_eq!(store.check(108, &refs(&["m3"])).await.unwrap(), vec![false]);
    store.delete(108, ids(&["m1"]), 2).await.unwrap();
    let out = store.import(108, plain(&["m3"]), p).await.unwrap();
    assert_eq!(out, vec![ImportOutcome::Created]);
}

/// A deleted UserID is refused (70399) until `reimport_block_secs` after its deletion, and
/// accepted from that second on.
pub async fn reimport_block(store: Arc<dyn AccountStore>) {
    let day = 86_400;
    let p = |now| ImportPolicy {
        max_accounts: None,
        reimport_block_secs: Some(90 * day),
        now,
    };
    store.import(109, plain(&["t"]), p(0)).await.unwrap();
    store.delete(109, ids(&["t"]), 10).await.unwrap();
    assert_eq!(
        store.import(109, plain(&["t"]), p(11)).await.unwrap(),
        vec![ImportOutcome::ReimportBlocked]
    );
    assert_eq!(store.check(109, &refs(&["t"])).await.unwrap(), vec![false]);
    assert_eq!(
        store
            .import(109, plain(&["t"]), p(10 + 90 * day - 1))
            .await
            .unwrap(),
        vec![ImportOutcome::ReimportBlocked]
    );
    assert_eq!(
        store
            .import(109, plain(&["t"]), p(10 + 90 * day))
            .await
            .unwrap(),
        vec![ImportOutcome::Created]
    );
}

/// Without a re-import block a deleted UserID can be imported again at once.
pub async fn reimport_allowed_without_block(store: Arc<dyn AccountStore>) {
    store.import(110, plain(&["t"]), policy(0)).await.unwrap();
    store.delete(110, ids(&["t"]), 1).await.unwrap();
    assert_eq!(
        store.import(110, plain(&["t"]), policy(2)).await.unwrap(),
        vec![ImportOutcome::Created]
    );
}

/// UserIDs compare byte for byte: no case folding, no Unicode normalisation, no trimming.
pub async fn userids_are_case_sensitive_and_bytewise(store: Arc<dyn AccountStore>) {
    store
        .import(111, plain(&["Alice", "e\u{301}", "用户"]), policy(1))
        .await
        .unwrap();
    let seen = store
        .check(
            111,
            &refs(&["alice", "Alice", "\u{e9}", "e\u{301}", "用户", "用户 "]),
        )
        .await
        .unwrap();
    assert_eq!(seen, vec![false, true, false, true, true, false]);
}

/// Many concurrent imports all succeed and all land (a backend that groups commits must
/// not lose or mix up any).
pub async fn concurrent_imports_share_commits(store: Arc<dyn AccountStore>) {
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<String> = (0..50).map(|i| format!("c{t}-{i}")).collect();
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            store.import(112, plain(&refs), policy(1)).await.unwrap()
        }));
    }
    for t in tasks {
        assert!(t
            .await
            .unwrap()
            .iter()
            .all(|o| *o == ImportOutcome::Created));
    }
    assert_eq!(store.account_count(112).await.unwrap(), 800);
    let probe = refs(&["c0-0", "c15-49", "c16-0"]);
    assert_eq!(
        store.check(112, &probe).await.unwrap(),
        vec![true, true, false]
    );
}

/// `account_count` follows creates and deletes exactly (duplicates and misses do not count),
/// since `max_accounts` is decided on it.
pub async fn account_count_tracks_imports_and_deletes(store: Arc<dyn AccountStore>) {
    store
        .import(113, plain(&["a", "b", "c", "a"]), policy(1))
        .await
        .unwrap();
    assert_eq!(store.account_count(113).await.unwrap(), 3);
    store.delete(113, ids(&["a", "zz", "a"]), 2).await.unwrap();
    assert_eq!(store.account_count(113).await.unwrap(), 2);
}

/// A check right after an acknowledged import or delete sees it, every time: a backend that
/// answers from memory must confirm it is up to date before answering, not merely soon.
pub async fn check_follows_every_write_at_once(store: Arc<dyn AccountStore>) {
    for round in 0..40 {
        let name = format!("f{}", round % 3);
        store
            .import(114, plain(&[name.as_str()]), policy(round))
            .await
            .unwrap();
        assert_eq!(
            store
                .check(114, &refs(&[name.as_str(), "never"]))
                .await
                .unwrap(),
            vec![true, false],
            "round {round}: an acknowledged import"
        );
        store
            .delete(114, ids(&[name.as_str()]), round)
            .await
            .unwrap();
        assert_eq!(
            store.check(114, &refs(&[name.as_str()])).await.unwrap(),
            vec![false],
            "round {round}: an acknowledged delete"
        );
    }
}

/// Concurrent imports naming the same UserIDs (which a backend may fold into one
/// transaction) create each exactly once: one call gets `Created` for it, every other
/// `Updated`, and the count holds each once.
pub async fn concurrent_imports_of_the_same_ids_create_each_once(store: Arc<dyn AccountStore>) {
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Overlapping windows of 20 out of 40 UserIDs, in different orders.
            let batch: Vec<String> = (0..20)
                .map(|i| format!("o{}", (t * 3 + i * 7) % 40))
                .collect();
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let out = store.import(115, plain(&refs), policy(1)).await.unwrap();
            batch.into_iter().zip(out).collect::<Vec<_>>()
        }));
    }
    let mut created = std::collections::HashMap::new();
    let mut named = std::collections::HashSet::new();
    for t in tasks {
        for (user, outcome) in t.await.unwrap() {
            named.insert(user.clone());
            match outcome {
                ImportOutcome::Created => *created.entry(user).or_insert(0) += 1,
                ImportOutcome::Updated => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(created.values().all(|n| *n == 1), "{created:?}");
    assert_eq!(created.len(), named.len());
    assert_eq!(store.account_count(115).await.unwrap(), named.len() as u64);
}

/// Concurrent imports against `max_accounts` create exactly up to it, however they are
/// grouped: the limit is decided on the count that the calls before each one left.
pub async fn concurrent_imports_respect_max_accounts_exactly(store: Arc<dyn AccountStore>) {
    let limited = ImportPolicy {
        max_accounts: Some(37),
        reimport_block_secs: None,
        now: 1,
    };
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<String> = (0..5).map(|k| format!("l{t}-{k}")).collect();
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            store.import(116, plain(&refs), limited).await.unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        let out = t.await.unwrap();
        // Within one call, once the limit is reached nothing after it is created.
        let first_refused = out.iter().position(|o| *o == ImportOutcome::LimitReached);
        if let Some(k) = first_refused {
            assert!(
                out[k..].iter().all(|o| *o == ImportOutcome::LimitReached),
                "{out:?}"
            );
        }
        created += out.iter().filter(|o| **o == ImportOutcome::Created).count();
    }
    assert_eq!(created, 37);
    assert_eq!(store.account_count(116).await.unwrap(), 37);
}

/// Concurrent calls each get their own outcomes, in their own order, with their own clock:
/// a blocked re-import, a repeat within a call, a new account dated by its own call.
pub async fn concurrent_imports_keep_each_calls_outcomes(store: Arc<dyn AccountStore>) {
    let blocking = |now| ImportPolicy {
        max_accounts: None,
        reimport_block_secs: Some(1_000),
        now,
    };
    store
        .import(117, plain(&["gone"]), blocking(1))
        .await
        .unwrap();
    store.delete(117, ids(&["gone"]), 2).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..12i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let own = format!("k{t}");
            let items = plain(&[own.as_str(), "gone", own.as_str()]);
            let out = store.import(117, items, blocking(10 + t)).await.unwrap();
            (t, own, out)
        }));
    }
    for task in tasks {
        let (t, own, out) = task.await.unwrap();
        assert_eq!(
            out,
            vec![
                ImportOutcome::Created,
                ImportOutcome::ReimportBlocked,
                ImportOutcome::Updated
            ]
        );
        assert_eq!(
            store
                .account(117, id(&own))
                .await
                .unwrap()
                .unwrap()
                .created_at,
            10 + t
        );
    }
    assert_eq!(
        store.check(117, &refs(&["gone"])).await.unwrap(),
        vec![false]
    );
    assert_eq!(store.account_count(117).await.unwrap(), 12);
}

fn push(user: &str, platform: &str, until: i64) -> PushOnline {
    PushOnline {
        user_id: id(user),
        platform: platform.to_owned(),
        until,
    }
}

/// A kick of an account that exists stores its cut-off; a kick of one that does not is
/// refused (the API's 70107) and stores nothing.
pub async fn kick_sets_a_cutoff_only_for_existing_accounts(store: Arc<dyn AccountStore>) {
    store.import(140, plain(&["k"]), policy(1)).await.unwrap();
    assert_eq!(store.cutoff(140, id("k")).await.unwrap(), None);
    assert!(store.kick(140, id("k"), 5_000).await.unwrap());
    assert_eq!(store.cutoff(140, id("k")).await.unwrap(), Some(5_000));
    assert!(!store.kick(140, id("ghost"), 5_000).await.unwrap());
    assert_eq!(store.cutoff(140, id("ghost")).await.unwrap(), None);
    assert_eq!(store.cutoffs(140).await.unwrap(), vec![(id("k"), 5_000)]);
}

/// A later kick moves the cut-off forward; an earlier one (a clock behind another
/// instance's) leaves it: a UserSig refused once is never accepted again.
pub async fn kick_cutoff_never_moves_back(store: Arc<dyn AccountStore>) {
    store.import(141, plain(&["k"]), policy(1)).await.unwrap();
    assert!(store.kick(141, id("k"), 5_000).await.unwrap());
    assert!(store.kick(141, id("k"), 6_000).await.unwrap());
    assert_eq!(store.cutoff(141, id("k")).await.unwrap(), Some(6_000));
    assert!(store.kick(141, id("k"), 4_000).await.unwrap());
    assert_eq!(store.cutoff(141, id("k")).await.unwrap(), Some(6_000));
}

/// PushOnline times are kept per user and platform, overwritten and cleared one platform at a
/// time, and never recorded for an account that does not exist.
pub async fn push_online_is_kept_per_platform_for_existing_accounts(store: Arc<dyn AccountStore>) {
    store
        .import(142, plain(&["a", "b"]), policy(1))
        .await
        .unwrap();
    let set = |user: &str, platform: &str, until: Option<i64>| {
        store.set_push_online(142, id(user), platform.to_owned(), until)
    };
    set("b", "iPhone", Some(100)).await.unwrap();
    set("a", "Android", Some(200)).await.unwrap();
    set("a", "iPad", Some(300)).await.unwrap();
    set("a", "Android", Some(250)).await.unwrap();
    set("ghost", "iPhone", Some(400)).await.unwrap();
    assert_eq!(
        store.push_online(142).await.unwrap(),
        vec![
            push("a", "Android", 250),
            push("a", "iPad", 300),
            push("b", "iPhone", 100)
        ]
    );
    set("a", "Android", None).await.unwrap();
    assert_eq!(
        store.push_online(142).await.unwrap(),
        vec![push("a", "iPad", 300), push("b", "iPhone", 100)]
    );
}

/// A kick leaves no platform of the user PushOnline, and other users' times alone.
pub async fn kick_clears_push_online(store: Arc<dyn AccountStore>) {
    store
        .import(143, plain(&["a", "b"]), policy(1))
        .await
        .unwrap();
    for (user, platform) in [("a", "iPhone"), ("a", "Android"), ("b", "iPad")] {
        store
            .set_push_online(143, id(user), platform.to_owned(), Some(99))
            .await
            .unwrap();
    }
    assert!(store.kick(143, id("a"), 50).await.unwrap());
    assert_eq!(
        store.push_online(143).await.unwrap(),
        vec![push("b", "iPad", 99)]
    );
}

/// A deletion sets the deleted users' cut-off to its time and clears their PushOnline times;
/// a re-import keeps the cut-off (sigs issued before the deletion stay refused).
pub async fn delete_sets_the_cutoff_and_clears_push_online(store: Arc<dyn AccountStore>) {
    store
        .import(144, plain(&["a", "b"]), policy(1))
        .await
        .unwrap();
    store
        .set_push_online(144, id("a"), "iPhone".to_owned(), Some(99))
        .await
        .unwrap();
    store
        .set_push_online(144, id("b"), "iPhone".to_owned(), Some(99))
        .await
        .unwrap();
    let out = store.delete(144, ids(&["a", "zz"]), 7_000).await.unwrap();
    assert_eq!(out, vec![DeleteOutcome::Deleted, DeleteOutcome::NotFound]);
    assert_eq!(store.cutoff(144, id("a")).await.unwrap(), Some(7_000));
    assert_eq!(store.cutoff(144, id("zz")).await.unwrap(), None);
    assert_eq!(
        store.push_online(144).await.unwrap(),
        vec![push("b", "iPhone", 99)]
    );
    store
        .import(144, plain(&["a"]), policy(8_000))
        .await
        .unwrap();
    assert_eq!(store.cutoff(144, id("a")).await.unwrap(), Some(7_000));
}

/// Cut-offs and PushOnline times of one app are invisible to another.
pub async fn session_state_is_isolated_by_app(store: Arc<dyn AccountStore>) {
    store.import(145, plain(&["u"]), policy(1)).await.unwrap();
    store.import(146, plain(&["u"]), policy(1)).await.unwrap();
    assert!(store.kick(145, id("u"), 10).await.unwrap());
    store
        .set_push_online(145, id("u"), "iPhone".to_owned(), Some(99))
        .await
        .unwrap();
    assert_eq!(store.cutoff(146, id("u")).await.unwrap(), None);
    assert!(store.cutoffs(146).await.unwrap().is_empty());
    assert!(store.push_online(146).await.unwrap().is_empty());
}
