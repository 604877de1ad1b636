//! Every number DECISIONS.md fixes, pinned so that a test fails if it changes: the 90 days a
//! `pro` app blocks a deleted UserID, 32 bytes of UserID, 500 bytes of profile field, 100
//! entries per batch (500 for `query_online_status`), and the documented rate limits.
//!
//! The numbers are written here as literals from DECISIONS.md and `docs/protocol.md`. Each is
//! compared with the constant the code uses, and its behaviour is shown where the server
//! serves it: the 90 days here, against the store and through the server; the UserID, profile
//! and batch limits at their boundaries in [`crate::api`] (`userid_rules_for_single_import`,
//! `profile_fields_are_limited_to_500_bytes`, `multiaccount_import_over_100_is_rejected_whole`,
//! `check_and_delete_batches_over_100_are_rejected_whole`); the rate limits in
//! [`crate::rate_limits`]. PushOnline's 7 days has no test: sessions are not implemented yet
//! (`docs/protocol.md` §11). Also here: the retry column of `docs/protocol.md` §9, as lists.

use serde_json::json;
use timacct_proto::Api;
use timacct_store::{
    AccountStore as _, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, SqliteStore, UserId,
};
use timacct_test_support::*;

/// 90 days, in seconds.
const NINETY_DAYS: i64 = 90 * 86_400;

#[test]
fn the_numbers_of_the_decisions_are_the_ones_the_code_uses() {
    assert_eq!(timacct_server::REIMPORT_BLOCK_SECS, NINETY_DAYS);
    assert_eq!(timacct_proto::MAX_USER_ID_BYTES, 32);
    assert_eq!(timacct_proto::MAX_PROFILE_FIELD_BYTES, 500);
    assert_eq!(timacct_proto::MAX_BATCH, 100);
    assert_eq!(timacct_proto::MAX_ONLINE_BATCH, 500);
    // DECISIONS, UserSig: a token that inflates past 64 KiB is 70003.
    assert_eq!(timacct_usersig::MAX_INFLATED, 64 * 1024);
    let documented = [
        (Api::AccountImport, 200),
        (Api::MultiAccountImport, 100),
        (Api::AccountDelete, 100),
        (Api::AccountCheck, 100),
        (Api::Kick, 200),
        (Api::QueryOnlineStatus, 200),
    ];
    assert_eq!(documented.len(), Api::ALL.len());
    for (api, limit) in documented {
        assert_eq!(api.documented_rate_limit(), limit, "{api:?}");
    }
}

/// The server's own defaults that `docs/protocol.md` states (§2.3 the body, §8 the server's
/// protection of itself).
#[test]
fn the_server_defaults_are_the_documented_ones() {
    use std::time::Duration;
    assert_eq!(timacct_server::DEFAULT_BODY_LIMIT, 1024 * 1024);
    let limits = timacct_server::ServerLimits::default();
    assert_eq!(limits.body_timeout, Duration::from_secs(10));
    assert_eq!(limits.max_concurrent_requests, 512);
    assert_eq!(limits.max_queued_requests, 2048);
    assert_eq!(limits.queue_timeout, Duration::from_secs(1));
    assert_eq!(limits.max_connections, 1024);
    assert_eq!(limits.max_usersig_age, None);
}

/// The "retry" column of `docs/protocol.md` §9, as lists: the codes a client should send
/// again, and the ones it should not. The table every crate maps its failures into (and the
/// client reads) says exactly this, and knows no other code.
#[test]
fn the_retryable_codes_are_the_documented_ones() {
    use timacct_proto::ErrorCode;
    // §9.1 (codes timacct answers) and §9.2 (codes it knows), "yes".
    let retry = [
        60007, 60008, 60018, 70500, // §9.1
        30006, 30007, 40006, 60004, 60011, 60019, 70050, 70169, 70202, 90992, 90994, 90995,
        91000, // §9.2
    ];
    // "no" (and 0, success, which is not retried either).
    let no_retry = [
        0, 40601, 60002, 60003, 60009, 60012, 60025, 70001, 70003, 70009, 70013, 70014, 70020,
        70107, 70398, 70399, 70402, 70403, 71000, // §9.1
        30008, 60006, 60010, 90001, 90003, 90009, 90011, // §9.2
    ];
    for code in retry {
        let known = ErrorCode::from_code(code).unwrap_or_else(|| panic!("{code} in the table"));
        assert!(known.is_retryable(), "{code} is retryable");
    }
    for code in no_retry {
        let known = ErrorCode::from_code(code).unwrap_or_else(|| panic!("{code} in the table"));
        assert!(!known.is_retryable(), "{code} is not retryable");
    }
    assert_eq!(ErrorCode::ALL.len(), retry.len() + no_retry.len());
}

fn one(id: &str) -> Vec<ImportItem> {
    vec![ImportItem::id_only(UserId::parse(id).unwrap())]
}

/// The server's re-import block, applied by the store: a UserID deleted at `t` is still
/// refused at `t + 90 days - 1 s` and imported at `t + 90 days`.
#[tokio::test]
async fn the_reimport_block_lasts_exactly_90_days() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("timacct.db")).unwrap();
    let at = |now| ImportPolicy {
        max_accounts: None,
        reimport_block_secs: Some(timacct_server::REIMPORT_BLOCK_SECS),
        now,
    };
    let t = 1_700_000_000;
    assert_eq!(
        store.import(APP, one("gone"), at(t - 10)).await.unwrap(),
        [ImportOutcome::Created]
    );
    assert_eq!(
        store
            .delete(APP, vec![UserId::parse("gone").unwrap()], t)
            .await
            .unwrap(),
        [DeleteOutcome::Deleted]
    );
    for now in [t, t + 1, t + NINETY_DAYS / 2, t + NINETY_DAYS - 1] {
        assert_eq!(
            store.import(APP, one("gone"), at(now)).await.unwrap(),
            [ImportOutcome::ReimportBlocked],
            "{} s after the deletion",
            now - t
        );
    }
    assert_eq!(
        store
            .import(APP, one("gone"), at(t + NINETY_DAYS))
            .await
            .unwrap(),
        [ImportOutcome::Created]
    );
    store.close();
}

/// Through the server: on a `pro` app, a UserID deleted 90 days ago (to the second) is
/// imported again, one deleted a minute later than that is refused with 70399, by both
/// import APIs. The deletions are written to the store directly, dated in the past, since the
/// server reads the real clock.
#[tokio::test]
async fn a_pro_app_blocks_reimport_for_90_days() {
    let app = spawn_with(vec![pro_config(APP, KEY, true)]).await;
    app.import(APP, &["old", "recent", "old2", "recent2"]).await;
    let delete = |ids: &[&str], at| {
        let ids = ids.iter().map(|id| UserId::parse(*id).unwrap()).collect();
        let store = app.store.clone();
        async move { store.delete(APP, ids, at).await.unwrap() }
    };
    let t = now();
    delete(&["old", "old2"], t - NINETY_DAYS).await;
    delete(&["recent", "recent2"], t - NINETY_DAYS + 60).await;
    app.assert_not_imported(APP, &["old", "recent", "old2", "recent2"])
        .await;
    app.call(IMPORT, &json!({ "UserID": "recent" }))
        .await
        .assert_fail(70399);
    app.call(IMPORT, &json!({ "UserID": "old" }))
        .await
        .assert_ok();
    let r = app
        .call(MULTI, &json!({ "Accounts": ["recent2", "old2"] }))
        .await;
    assert_eq!(
        r.text,
        r#"{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":"","FailAccounts":["recent2"]}"#
    );
    assert_eq!(
        app.statuses(APP, &["old", "recent", "old2", "recent2"])
            .await,
        ["Imported", "NotImported", "Imported", "NotImported"]
    );
}

/// At most 500 accounts per `query_online_status`, 90011 beyond and 90001 for none.
#[tokio::test]
#[ignore = "query_online_status answers 60009 until it is implemented (docs/protocol.md §6.6): remove this line then"]
async fn query_online_status_takes_1_to_500_accounts() {
    let app = spawn_app().await;
    // One of them exists, so that the call has an entry that succeeds (DECISIONS: with none,
    // the answer is FAIL, 70107).
    app.import(APP, &["q000"]).await;
    let ids = |n: usize| (0..n).map(|i| format!("q{i:03}")).collect::<Vec<_>>();
    app.call(ONLINE, &json!({ "To_Account": ids(500) }))
        .await
        .assert_ok();
    app.call(ONLINE, &json!({ "To_Account": ids(501) }))
        .await
        .assert_fail(90011);
    app.call(ONLINE, &json!({ "To_Account": [] }))
        .await
        .assert_fail(90001);
}
