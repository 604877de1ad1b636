//! The SQLite backend against the conformance suite, plus what only a file-backed store can
//! show: data survives reopening.

use std::sync::Arc;

use timacct_store::{
    AccountStore, ImportItem, ImportOutcome, ImportPolicy, OpenOptions, SqliteStore, StoreError,
    UserId,
};

use crate::common::{id, policy, refs};

async fn fresh() -> Arc<dyn AccountStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("timacct.db")).unwrap();
    // The directory must outlive the test; leak it (the OS cleans /tmp).
    std::mem::forget(dir);
    Arc::new(store)
}

mod sqlite_conformance {
    use super::*;
    timacct_store::conformance_suite!(fresh());
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timacct.db");
    let policy = ImportPolicy {
        max_accounts: None,
        reimport_block_secs: None,
        now: 1,
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        let items = vec![ImportItem {
            user_id: UserId::parse("keep").unwrap(),
            nick: Some("n".into()),
            face_url: None,
        }];
        store.import(1, items, policy).await.unwrap();
        store.close();
    }
    let store = SqliteStore::open(&path).unwrap();
    let acct = store
        .account(1, UserId::parse("keep").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acct.nick, "n");
    assert_eq!(store.account_count(1).await.unwrap(), 1);
}

/// Kick cut-offs and PushOnline times are durable: a reopened file still has them.
#[tokio::test]
async fn session_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timacct.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .import(1, vec![ImportItem::id_only(id("u"))], policy(1))
            .await
            .unwrap();
        assert!(store.kick(1, id("u"), 1_234).await.unwrap());
        store
            .set_push_online(1, id("u"), "Android".into(), Some(9_999))
            .await
            .unwrap();
        store.close();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.cutoff(1, id("u")).await.unwrap(), Some(1_234));
    let push = store.push_online(1).await.unwrap();
    assert_eq!(push.len(), 1);
    assert_eq!(
        (push[0].platform.as_str(), push[0].until),
        ("Android", 9_999)
    );
}

#[test]
fn userid_rules() {
    assert!(UserId::parse("").is_err());
    assert!(UserId::parse("a".repeat(32)).is_ok());
    assert!(UserId::parse("a".repeat(33)).is_err());
    // 11 three-byte characters = 33 bytes.
    assert!(UserId::parse("用".repeat(11)).is_err());
    assert!(UserId::parse("用".repeat(10)).is_ok());
    assert!(UserId::parse("a\u{0}b").is_err());
    assert!(UserId::parse("a\u{1f}").is_err());
    assert!(UserId::parse("a\u{7f}").is_err());
    assert!(UserId::parse("a b@#!").is_ok());
}

async fn wait_for_index(store: &SqliteStore) {
    for _ in 0..500 {
        if store.index_ready() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("index never became ready");
}

/// `account_check` is answered from memory once the index is loaded; the index must follow
/// every committed import and delete, and be rebuilt from the file on reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_index_follows_commits_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timacct.db");
    let policy = ImportPolicy {
        max_accounts: None,
        reimport_block_secs: None,
        now: 1,
    };
    let id = |s: &str| UserId::parse(s).unwrap();
    let items = |list: &[&str]| {
        list.iter()
            .map(|s| ImportItem::id_only(id(s)))
            .collect::<Vec<_>>()
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        wait_for_index(&store).await;
        store
            .import(7, items(&["a", "b", "c"]), policy)
            .await
            .unwrap();
        store.delete(7, vec![id("b")], 2).await.unwrap();
        let seen = store.check(7, &refs(&["a", "b", "c", "d"])).await.unwrap();
        assert_eq!(seen, vec![true, false, true, false]);
        // A write refused by max_accounts leaves no trace in the index.
        let capped = ImportPolicy {
            max_accounts: Some(2),
            ..policy
        };
        store.import(7, items(&["d"]), capped).await.unwrap();
        assert_eq!(store.check(7, &refs(&["d"])).await.unwrap(), vec![false]);
        store.close();
    }
    let store = SqliteStore::open(&path).unwrap();
    wait_for_index(&store).await;
    let seen = store.check(7, &refs(&["a", "b", "c", "d"])).await.unwrap();
    assert_eq!(seen, vec![true, false, true, false]);
    assert_eq!(store.check(8, &refs(&["a"])).await.unwrap(), vec![false]);
}

/// Until the writer has loaded the index, `account_check` is answered from the file, exactly
/// as from memory afterwards: held with the test hook, so that this path is always taken
/// (without it, it is taken only while a real start-up is loading). Writes wait meanwhile and
/// are served once the load is done, and the index then holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_answers_from_the_file_while_the_index_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timacct.db");
    let stored = ["Alice", "e\u{301}", "用户", "a b"];
    {
        let store = SqliteStore::open(&path).unwrap();
        let items = stored.iter().map(|s| ImportItem::id_only(id(s))).collect();
        store.import(7, items, policy(1)).await.unwrap();
        store
            .import(8, vec![ImportItem::id_only(id("other-app"))], policy(1))
            .await
            .unwrap();
        store.close();
    }
    let asked = [
        "Alice",
        "alice",
        "e\u{301}",
        "\u{e9}",
        "用户",
        "用户 ",
        "a b",
        "other-app",
    ];
    let want = vec![true, false, true, false, true, false, true, false];

    let (store, hold) = SqliteStore::open_holding_index_load(&path).unwrap();
    for _ in 0..3 {
        assert!(!store.index_ready());
        assert_eq!(store.check(7, &refs(&asked)).await.unwrap(), want);
        assert_eq!(
            store
                .check(8, &refs(&["other-app", "Alice"]))
                .await
                .unwrap(),
            [true, false]
        );
        assert_eq!(store.check(9, &refs(&["Alice"])).await.unwrap(), [false]);
    }
    // A write meanwhile waits for the load.
    let writer = store.clone();
    let late = tokio::spawn(async move {
        writer
            .import(7, vec![ImportItem::id_only(id("late"))], policy(2))
            .await
            .unwrap()
    });
    assert!(!store.index_ready());
    assert_eq!(store.check(7, &refs(&["late"])).await.unwrap(), [false]);

    hold.release();
    assert_eq!(late.await.unwrap(), [ImportOutcome::Created]);
    wait_for_index(&store).await;
    assert_eq!(store.check(7, &refs(&asked)).await.unwrap(), want);
    assert_eq!(store.check(7, &refs(&["late"])).await.unwrap(), [true]);
    store.close();
}

/// `timacct_store::open` on a `sqlite:` target opens that file (creating its directory),
/// describes it by its path, and closes it: writes then fail, and the next open finds what
/// was written.
#[tokio::test]
async fn open_opens_a_sqlite_file_by_path_or_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("timacct.db");
    let spec = format!("sqlite:{}", path.display());
    let opened = timacct_store::open(spec.as_str(), &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(opened.description(), path.display().to_string());
    let store = opened.store();
    let item = || vec![ImportItem::id_only(UserId::parse("o").unwrap())];
    store.import(1, item(), policy(1)).await.unwrap();
    opened.close();
    assert!(matches!(
        store.import(1, item(), policy(2)).await,
        Err(StoreError::Closed)
    ));
    let reopened = timacct_store::open(path.as_path(), &OpenOptions::default())
        .await
        .unwrap();
    assert_eq!(reopened.store().account_count(1).await.unwrap(), 1);
    reopened.close();
}
