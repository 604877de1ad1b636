//! The per-app rate limits (`docs/protocol.md` §8, DECISIONS "Rate limits"), pinned from both
//! sides against the real server: each API at its documented default, on by default; at most
//! what a bucket of one second's worth, refilled at that rate, can allow (`burst + rate ×
//! elapsed`), at least the burst, and 60007 beyond, changing nothing.
//!
//! Nothing here expects one call to fall into a given second. Every test floods the server
//! with far more calls than the limit, as fast as the machine sends them, measures the span
//! the calls were decided in, and counts: a slow or busy machine stretches the span and with
//! it the bound ([`bucket_ceiling`]), it never fails the test. The exact arithmetic of the
//! bucket (burst, refill, cap) is pinned with an injected clock by the unit tests of
//! `src/api/rate_limit.rs`.

use std::time::Duration;

use serde_json::json;
use timacct_proto::Api;
use timacct_server::{AppConfig, RateLimitPolicy, SecretKey};
use timacct_store::{AccountStore as _, ImportItem, ImportPolicy, UserId};
use timacct_test_support::*;

/// Concurrent clients of a flood: enough to outpace every limit on two cores.
const CLIENTS: usize = 8;

/// The pause between a pin's two rounds. The bucket refills meanwhile by less than a
/// second's worth, so the second round shows the refill rate with the cap out of the way.
const PAUSE: Duration = Duration::from_millis(500);

/// `ErrorCode` 60007: the call rate is over the API's limit.
const RATE_LIMITED: u64 = 60007;

/// The limit of the API at `path` is its documented default, `documented` calls per second,
/// on an app configured with nothing but its key.
///
/// Two rounds of calls with the body `{}`: the limiter decides before the body is read
/// (`docs/protocol.md` §3, steps 11 and 14), so an allowed call is answered `allowed_code`
/// (the API's code for a missing required field) and a refused one 60007, and none of them
/// writes. The first round is ten seconds' worth of calls, the second, after [`PAUSE`], three.
async fn pin_documented_limit(path: &str, documented: u32, allowed_code: u64) {
    let config = AppConfig::new(APP, SecretKey::new(KEY));
    assert_eq!(
        config.rate_limits,
        RateLimitPolicy::Tencent,
        "on by default"
    );
    let app = spawn_with(vec![config]).await;
    let url = app.url(path, &app.admin_query(APP));
    let body = |_| b"{}".to_vec();
    let n = documented as usize;
    let first = flood(&app.client, &url, 10 * n, CLIENTS, body).await;
    tokio::time::sleep(PAUSE).await;
    let second = flood(&app.client, &url, 3 * n, CLIENTS, body).await;

    let pause = second.first_sent() - first.last_answered();
    let span = second.last_answered() - first.first_sent();
    let report = format!(
        "{path} at {documented}/s: first round {:?} in {:?}, pause {pause:?}, second round {:?} in {:?}",
        first.codes(),
        first.span(),
        second.codes(),
        second.span()
    );
    eprintln!("{report}");
    for round in [&first, &second] {
        assert_eq!(
            round.count(allowed_code) + round.count(RATE_LIMITED),
            round.shots.len(),
            "only {allowed_code} or 60007: {report}"
        );
        assert!(
            round.count(RATE_LIMITED) > 0,
            "60007 beyond the limit: {report}"
        );
    }
    let allowed = first.count(allowed_code) + second.count(allowed_code);
    // From below: the bucket starts full, so the first second's worth passes at once.
    assert!(
        first.count(allowed_code) >= n,
        "at least the burst of {documented}: {report}"
    );
    // And it refills at the documented rate: from the last decision of the first round to
    // the last refusal of the second, every token the bucket gained was taken, save less
    // than one left at that refusal. The bucket starts the second round about half full and
    // eight clients drain it at once, so none is lost to its cap; should the pause have run
    // long enough to fill it, at least the burst plus the refill from the round's first
    // decision on.
    let last_refused = second
        .shots
        .iter()
        .filter(|s| s.code == RATE_LIMITED)
        .map(|s| s.sent)
        .max()
        .expect("a refusal");
    let first_answer = second
        .shots
        .iter()
        .map(|s| s.answered)
        .min()
        .expect("a call");
    let rate = f64::from(documented);
    let refilled = (rate * (last_refused - first.last_answered()).as_secs_f64()).min(
        rate + rate
            * last_refused
                .saturating_duration_since(first_answer)
                .as_secs_f64(),
    );
    assert!(
        second.count(allowed_code) + 2 >= refilled.floor() as usize,
        "at least {refilled:.1} in the second round: {report}"
    );
    // From above: never more than the burst plus the documented rate over the whole span.
    let ceiling = bucket_ceiling(documented, documented, span);
    assert!(
        allowed <= ceiling,
        "{allowed} allowed over {span:?}, at most {ceiling}: {report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_import_is_limited_to_200_per_second() {
    pin_documented_limit(IMPORT, 200, 70402).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiaccount_import_is_limited_to_100_per_second() {
    pin_documented_limit(MULTI, 100, 70402).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_check_is_limited_to_100_per_second() {
    pin_documented_limit(CHECK, 100, 70402).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_delete_is_limited_to_100_per_second() {
    pin_documented_limit(DELETE, 100, 70402).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "kick answers 60009 until it is implemented (docs/protocol.md §6.5): remove this line then"]
async fn kick_is_limited_to_200_per_second() {
    pin_documented_limit(KICK, 200, 70402).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "query_online_status answers 60009 until it is implemented (docs/protocol.md §6.6): remove this line then"]
async fn query_online_status_is_limited_to_200_per_second() {
    // A body without `To_Account` is 90001 on this API (DECISIONS, query_online_status).
    pin_documented_limit(ONLINE, 200, 90001).await;
}

/// The same limit holds for calls that do their work: account_check of a real account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_limit_holds_for_calls_that_succeed() {
    let app = spawn_with(vec![AppConfig::new(APP, SecretKey::new(KEY))]).await;
    app.import(APP, &["a"]).await;
    let url = app.url(CHECK, &app.admin_query(APP));
    let body = |_| {
        json!({ "CheckItem": [{ "UserID": "a" }] })
            .to_string()
            .into_bytes()
    };
    let f = flood(&app.client, &url, 1000, CLIENTS, body).await;
    let report = format!("{:?} in {:?}", f.codes(), f.span());
    assert_eq!(f.count(0) + f.count(RATE_LIMITED), 1000, "{report}");
    assert!(f.count(RATE_LIMITED) > 0, "{report}");
    assert!(f.count(0) >= 100, "{report}");
    assert!(f.count(0) <= bucket_ceiling(100, 100, f.span()), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_numbers_replace_the_documented_ones_for_the_apis_named() {
    let app = spawn_with(vec![limited_config(APP, KEY, &[(Api::AccountCheck, 5)])]).await;
    let url = app.url(CHECK, &app.admin_query(APP));
    let body = |_| {
        json!({ "CheckItem": [{ "UserID": "a" }] })
            .to_string()
            .into_bytes()
    };
    let f = flood(&app.client, &url, 50, 2, body).await;
    let report = format!("{:?} in {:?}", f.codes(), f.span());
    assert_eq!(f.count(0) + f.count(RATE_LIMITED), 50, "{report}");
    assert!(f.count(RATE_LIMITED) > 0, "{report}");
    assert!(f.count(0) >= 5, "{report}");
    assert!(f.count(0) <= bucket_ceiling(5, 5, f.span()), "{report}");
    // The 60007 names the API and its limit.
    for refused in f.shots.iter().filter(|s| s.code == RATE_LIMITED) {
        assert!(
            refused.info.contains("account_check") && refused.info.contains("5 calls per second"),
            "{}",
            refused.info
        );
    }
    // An API not named keeps its documented limit, in a bucket of its own: its first call
    // finds it full.
    app.call(IMPORT, &json!({ "UserID": "a" }))
        .await
        .assert_ok();
}

/// A write refused with 60007 changes nothing, and every allowed one does all it says: each
/// call names accounts of its own, and afterwards exactly the allowed calls' accounts are
/// imported (or deleted). At one call per second, the counts hold however long a write's
/// fsync takes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_change_nothing() {
    let app = spawn_with(vec![limited_config(
        APP,
        KEY,
        &[
            (Api::AccountImport, 1),
            (Api::MultiAccountImport, 1),
            (Api::AccountDelete, 1),
        ],
    )])
    .await;
    let query = app.admin_query(APP);
    let n = 20;
    let check_counts = |what: &str, f: &Flood| {
        let report = format!("{what}: {:?} in {:?}", f.codes(), f.span());
        assert_eq!(f.count(0) + f.count(RATE_LIMITED), n, "{report}");
        assert!(f.count(0) >= 1, "{report}");
        assert!(f.count(RATE_LIMITED) >= 1, "{report}");
        assert!(f.count(0) <= bucket_ceiling(1, 1, f.span()), "{report}");
    };
    let status = |allowed: bool, created: bool| match allowed == created {
        true => "Imported",
        false => "NotImported",
    };

    let f = flood(&app.client, &app.url(IMPORT, &query), n, 2, |k| {
        json!({ "UserID": format!("single-{k:02}") })
            .to_string()
            .into_bytes()
    })
    .await;
    check_counts("account_import", &f);
    let ids: Vec<String> = (0..n).map(|k| format!("single-{k:02}")).collect();
    let want: Vec<&str> = f.shots.iter().map(|s| status(s.code == 0, true)).collect();
    assert_eq!(app.statuses(APP, &as_strs(&ids)).await, want);

    let f = flood(&app.client, &app.url(MULTI, &query), n, 2, |k| {
        json!({ "Accounts": [format!("multi-{k:02}a"), format!("multi-{k:02}b")] })
            .to_string()
            .into_bytes()
    })
    .await;
    check_counts("multiaccount_import", &f);
    for shot in &f.shots {
        let pair = [
            format!("multi-{:02}a", shot.index),
            format!("multi-{:02}b", shot.index),
        ];
        let want = status(shot.code == 0, true);
        assert_eq!(app.statuses(APP, &as_strs(&pair)).await, [want, want]);
    }

    // Accounts to delete, put in behind the API's back (its import buckets are spent).
    let victims: Vec<String> = (0..n).map(|k| format!("victim-{k:02}")).collect();
    let items = victims
        .iter()
        .map(|id| ImportItem::id_only(UserId::parse(id.as_str()).unwrap()))
        .collect();
    let policy = ImportPolicy {
        max_accounts: None,
        reimport_block_secs: None,
        now: now(),
    };
    app.store.import(APP, items, policy).await.unwrap();
    let f = flood(&app.client, &app.url(DELETE, &query), n, 2, |k| {
        json!({ "DeleteItem": [{ "UserID": format!("victim-{k:02}") }] })
            .to_string()
            .into_bytes()
    })
    .await;
    check_counts("account_delete", &f);
    let want: Vec<&str> = f.shots.iter().map(|s| status(s.code == 0, false)).collect();
    assert_eq!(app.statuses(APP, &as_strs(&victims)).await, want);
}

/// Each app has buckets of its own: an app refused with 60007 leaves another app's bucket
/// full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_per_app() {
    const B: u32 = 1_400_000_002;
    let app = spawn_with(vec![
        limited_config(APP, KEY, &[(Api::AccountImport, 1)]),
        limited_config(B, "key-b", &[(Api::AccountImport, 1)]),
    ])
    .await;
    let url = app.url(IMPORT, &app.admin_query(APP));
    let f = flood(&app.client, &url, 20, 2, |k| {
        json!({ "UserID": format!("a{k}") })
            .to_string()
            .into_bytes()
    })
    .await;
    assert!(f.count(RATE_LIMITED) > 0, "{:?}", f.codes());
    app.call_app(B, IMPORT, &json!({ "UserID": "b" }))
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_off_never_refuse() {
    let app = spawn_app().await;
    assert_eq!(app.config(APP).rate_limits, RateLimitPolicy::Off);
    let url = app.url(CHECK, &app.admin_query(APP));
    let body = |_| {
        json!({ "CheckItem": [{ "UserID": "a" }] })
            .to_string()
            .into_bytes()
    };
    let f = flood(&app.client, &url, 1000, CLIENTS, body).await;
    assert_eq!(f.count(0), 1000, "{:?}", f.codes());
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
