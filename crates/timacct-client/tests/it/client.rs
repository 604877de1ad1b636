//! The client over real HTTP: retries and failover against a fault-injecting proxy
//! (`FaultProxy`, answering by itself or in front of the real server), and bulk jobs, pacing
//! and UserSig renewal against the real timacct server (in process, over a real SQLite file).

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};
use timacct_client::{
    AccountCheckRequest, AccountListEntry, AccountStatus, BulkOptions, CancelFlag, Client, Clock,
    Endpoint, Error, ErrorCode, ImportShape, ItemResult, KickRequest, Pacing, Progress,
    QueryOnlineStatusRequest, RetryPolicy, SigLifetime, Stopped, UserIdItem,
};
use timacct_proto::Api;
use timacct_server::RateLimitPolicy as ServerLimits;
use timacct_test_support::{app_config, closed_port, Fault, FaultProxy, TestServer};

use crate::common::success_body;

const APP: u32 = 1_400_000_123;
const KEY: &str = "client-test-key";

/// Retries fast, so the attempt counts are checked without waiting.
fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        rate_limited_backoff: Duration::from_millis(5),
    }
}

fn client(endpoint: Endpoint, retry: RetryPolicy) -> Client {
    Client::builder(endpoint, APP, KEY)
        .retry(retry)
        .pacing(Pacing::unlimited())
        .build()
        .unwrap()
}

fn check_one(id: &str) -> AccountCheckRequest {
    AccountCheckRequest {
        check_item: vec![UserIdItem {
            user_id: id.to_owned(),
        }],
    }
}

#[tokio::test]
async fn retryable_code_is_retried_with_a_fresh_random_each_time() {
    let f = FaultProxy::answering(
        &[Fault::Code(70500), Fault::Code(70500), Fault::Pass],
        success_body,
    );
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    let r = c.account_check(&check_one("a")).await.unwrap();
    assert_eq!(r.result_item[0].account_status, AccountStatus::Imported);
    let hits = f.seen();
    assert_eq!(hits.len(), 3, "two 70500s then OK: exactly three attempts");
    let randoms: HashSet<String> = hits.iter().map(|h| h.param("random").unwrap()).collect();
    assert_eq!(randoms.len(), 3, "a fresh random per attempt");
    for h in &hits {
        assert_eq!(h.path, "/v4/im_open_login_svc/account_check");
        assert_eq!(h.param("sdkappid").unwrap(), APP.to_string());
        assert_eq!(h.param("identifier").unwrap(), "administrator");
        assert_eq!(h.param("contenttype").unwrap(), "json");
        assert!(h.param("usersig").is_some_and(|s| !s.is_empty()));
        assert_eq!(h.body, r#"{"CheckItem":[{"UserID":"a"}]}"#);
    }
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn non_retryable_code_is_never_retried_and_reports_its_random() {
    let f = FaultProxy::answering(&[Fault::Code(70402)], success_body);
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert_eq!(f.seen().len(), 1);
    match &e {
        Error::Api {
            code,
            error_code,
            info,
            attempts,
            ..
        } => {
            assert_eq!(*code, 70402);
            assert_eq!(*error_code, Some(ErrorCode::InvalidParameter));
            assert_eq!(info, "injected 70402");
            assert_eq!(*attempts, 1);
        }
        other => panic!("{other:?}"),
    }
    let random = f.seen()[0].param("random").unwrap();
    assert_eq!(e.random().unwrap().to_string(), random);
    assert!(e.to_string().contains(&format!("random {random}")), "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let f = FaultProxy::answering(&[Fault::Drop, Fault::Drop, Fault::Pass], success_body);
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    c.account_check(&check_one("a")).await.unwrap();
    assert_eq!(f.seen().len(), 3);
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn a_60007_backs_off_then_retries_the_batch_once() {
    let f = FaultProxy::answering(&[Fault::Code(60007), Fault::Pass], success_body);
    let retry = RetryPolicy {
        rate_limited_backoff: Duration::from_millis(300),
        ..fast_retry(5)
    };
    let c = client(Endpoint::url(&f.base).unwrap(), retry);
    c.account_check(&check_one("a")).await.unwrap();
    // (How long it waits is the policy's: see `retry::tests`, which checks the computed
    // waits rather than a clock.)
    assert_eq!(f.seen().len(), 2);
    let s = c.stats();
    assert_eq!((s.rate_limited, s.retries), (1, 1));
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let f = FaultProxy::answering(&[Fault::Code(70169); 10], success_body);
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(3));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert_eq!(f.seen().len(), 3);
    assert_eq!((e.code(), e.attempts()), (Some(70169), 3));
    assert_eq!(f.remaining(), 7);
}

#[tokio::test]
async fn overload_statuses_are_retried_other_statuses_are_not() {
    let f = FaultProxy::answering(
        &[Fault::Status(502), Fault::Status(503), Fault::Pass],
        success_body,
    );
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    c.account_check(&check_one("a")).await.unwrap();
    assert_eq!(f.seen().len(), 3);

    let f = FaultProxy::answering(&[Fault::Status(404)], success_body);
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert!(matches!(e, Error::Http { status: 404, .. }), "{e:?}");
    assert_eq!(f.seen().len(), 1);
}

/// The codes the spec tells callers to retry (`docs/protocol.md` §9), as literals: the
/// client must retry exactly these, whatever the error table in the code says.
const RETRYABLE: [u32; 17] = [
    30006, 30007, 40006, 60004, 60007, 60008, 60011, 60018, 60019, 70050, 70169, 70202, 70500,
    90992, 90994, 90995, 91000,
];

#[tokio::test]
async fn every_code_in_the_table_is_retried_exactly_when_the_spec_says() {
    for code in ErrorCode::ALL {
        let n = code.code();
        // 70050 asks for a one-minute wait: its place in the list is checked below.
        if n == 0 || n == 70050 {
            continue;
        }
        let retryable = RETRYABLE.contains(&n);
        let f = FaultProxy::answering(&[Fault::Code(n), Fault::Pass], success_body);
        let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(3));
        let result = c.account_check(&check_one("a")).await;
        let expected = if retryable { 2 } else { 1 };
        assert_eq!(f.seen().len(), expected, "code {n}");
        assert_eq!(result.is_ok(), retryable, "code {n}");
    }
    // Every listed code is in the table, so none of them escapes the loop above.
    for n in RETRYABLE {
        assert!(
            ErrorCode::from_code(n).is_some(),
            "{n} is not in the error table"
        );
    }
    assert!(ErrorCode::from_code(70050).is_some_and(|c| c.is_retryable()));
}

#[tokio::test]
async fn connection_errors_fail_over_to_the_backup_host_and_stay_there() {
    let f = FaultProxy::answering(&[], success_body);
    let endpoint = Endpoint::url(&closed_port())
        .unwrap()
        .with_backup(&f.base)
        .unwrap();
    let c = client(endpoint, RetryPolicy::never());
    c.account_check(&check_one("a")).await.unwrap();
    c.account_check(&check_one("b")).await.unwrap();
    assert_eq!(f.seen().len(), 2);
    let s = c.stats();
    assert_eq!(
        s.failovers, 1,
        "the second call went to the backup directly"
    );
    assert_eq!(s.requests, 3);
}

#[tokio::test]
async fn an_answer_from_the_main_host_is_not_a_reason_to_fail_over() {
    let main = FaultProxy::answering(&[Fault::Code(70402)], success_body);
    let backup = FaultProxy::answering(&[], success_body);
    let endpoint = Endpoint::url(&main.base)
        .unwrap()
        .with_backup(&backup.base)
        .unwrap();
    let c = client(endpoint, fast_retry(3));
    assert_eq!(
        c.account_check(&check_one("a")).await.unwrap_err().code(),
        Some(70402)
    );
    assert_eq!((main.seen().len(), backup.seen().len()), (1, 0));
}

#[tokio::test]
async fn errors_never_show_the_key_or_the_usersig() {
    let c = client(Endpoint::url(&closed_port()).unwrap(), fast_retry(2));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert!(matches!(e, Error::Transport { attempts: 2, .. }), "{e:?}");
    let mut text = format!("{e} {e:?} {c:?}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(!text.contains(KEY), "{text}");
    assert!(!text.contains("usersig"), "{text}");
    assert!(text.contains("random"), "{text}");
}

#[tokio::test]
async fn both_import_shapes_and_kick_and_online_send_the_documented_bodies() {
    let f = FaultProxy::answering(&[], success_body);
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(1));
    let plain = vec![entry("a", None, None), entry("b", None, None)];
    let rich = vec![entry("c", Some("Nick, with comma"), Some("http://x/y.png"))];
    for (accounts, shape) in [
        (plain.clone(), ImportShape::Auto),
        (rich.clone(), ImportShape::Auto),
        (rich, ImportShape::Accounts),
        (plain, ImportShape::AccountList),
    ] {
        let results: Vec<_> = c
            .import_accounts(accounts, shape, BulkOptions::default())
            .collect()
            .await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().is_ok_and(|i| i.outcome.is_ok())));
    }
    c.kick(&KickRequest {
        user_id: Some("k".into()),
        identifier: None,
    })
    .await
    .unwrap();
    c.query_online_status(&QueryOnlineStatusRequest {
        to_account: vec!["o".into()],
        is_need_detail: Some(1),
        ..QueryOnlineStatusRequest::default()
    })
    .await
    .unwrap();
    let bodies: Vec<(String, String)> = f.seen().into_iter().map(|h| (h.path, h.body)).collect();
    let multi = "/v4/im_open_login_svc/multiaccount_import".to_owned();
    assert_eq!(
        bodies,
        vec![
            (multi.clone(), r#"{"Accounts":["a","b"]}"#.to_owned()),
            (
                multi.clone(),
                r#"{"AccountList":[{"UserID":"c","Nick":"Nick, with comma","FaceUrl":"http://x/y.png"}]}"#
                    .to_owned()
            ),
            (multi.clone(), r#"{"Accounts":["c"]}"#.to_owned()),
            (
                multi,
                r#"{"AccountList":[{"UserID":"a"},{"UserID":"b"}]}"#.to_owned()
            ),
            (
                "/v4/im_open_login_svc/kick".to_owned(),
                r#"{"UserID":"k"}"#.to_owned()
            ),
            (
                "/v4/openim/query_online_status".to_owned(),
                r#"{"To_Account":["o"],"IsNeedDetail":1}"#.to_owned()
            ),
        ]
    );
}

fn entry(id: &str, nick: Option<&str>, face: Option<&str>) -> AccountListEntry {
    AccountListEntry {
        user_id: id.to_owned(),
        nick: nick.map(str::to_owned),
        face_url: face.map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------------------
// Against the real server.
// ---------------------------------------------------------------------------------------

/// The real server hosting the test's app, with these rate limits, over a new SQLite file.
async fn real_server(limits: ServerLimits) -> TestServer {
    let mut app = app_config(APP, KEY);
    app.rate_limits = limits;
    TestServer::builder().apps(vec![app]).start().await
}

fn custom_limits(api: Api, rate: u32) -> ServerLimits {
    ServerLimits::Custom([(api, rate)].into_iter().collect())
}

async fn collect<T>(
    stream: timacct_client::BulkStream<T>,
) -> (Vec<ItemResult<T>>, Option<Stopped>) {
    let mut items = Vec::new();
    let mut stop = None;
    let mut stream = stream;
    while let Some(r) = stream.next().await {
        match r {
            Ok(i) => items.push(i),
            Err(s) => {
                assert!(stop.is_none(), "one stop at most");
                stop = Some(s);
            }
        }
    }
    (items, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_jobs_keep_order_and_every_item_under_tencent_limits() {
    let server = real_server(ServerLimits::Tencent).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .build()
        .unwrap();
    let mut ids: Vec<String> = (0..1050).map(|i| format!("bulk-{i:04}")).collect();
    // An invalid UserID (33 bytes) and a duplicate, to see per-item results land in place.
    ids[17] = "x".repeat(33);
    ids[500] = ids[499].clone();
    let seen = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let s = seen.clone();
    let options = BulkOptions {
        progress: Some(Arc::new(move |p| s.lock().unwrap().push(p))),
        ..BulkOptions::default()
    };
    let accounts = ids.iter().map(|id| entry(id, None, None)).collect();
    let (items, stop) = collect(c.import_accounts(accounts, ImportShape::Auto, options)).await;
    assert!(stop.is_none());
    assert_eq!(items.len(), 1050);
    for (i, item) in items.iter().enumerate() {
        assert_eq!((item.index, &item.user_id), (i, &ids[i]));
        assert_eq!(item.outcome.is_err(), i == 17, "{item:?}");
    }
    let progress = seen.lock().unwrap().clone();
    assert_eq!(progress.len(), 11, "one report per batch");
    assert_eq!(
        progress.last().copied(),
        Some(Progress {
            done: 1050,
            total: 1050,
            failed: 1
        })
    );

    let (items, _) = collect(c.check_accounts(ids.clone(), BulkOptions::default())).await;
    assert_eq!(items.len(), 1050);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.user_id, ids[i]);
        if i == 17 {
            assert_eq!(item.outcome.as_ref().unwrap_err().code, Some(70402));
        } else {
            assert_eq!(item.outcome, Ok(AccountStatus::Imported), "{i}");
        }
    }

    let (items, _) = collect(c.delete_accounts(ids.clone(), BulkOptions::default())).await;
    assert_eq!(items.len(), 1050);
    for (i, item) in items.iter().enumerate() {
        let code = item.outcome.as_ref().err().and_then(|f| f.code);
        match i {
            17 => assert_eq!(code, Some(70402)),
            // The repeat of an account deleted by the entry before it.
            500 => assert_eq!(code, Some(70107)),
            _ => assert_eq!(code, None, "{item:?}"),
        }
    }
    assert_eq!(c.stats().rate_limited, 0);
    assert_eq!(server.account_count(APP).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stricter_than_the_client_pace_is_absorbed_by_backing_off() {
    // The server allows 5 account_check calls per second; the client paces at Tencent's 100.
    let server = real_server(custom_limits(Api::AccountCheck, 5)).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .retry(RetryPolicy {
            max_attempts: 20,
            rate_limited_backoff: Duration::from_millis(250),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let ids: Vec<String> = (0..1000).map(|i| format!("strict-{i}")).collect();
    let (items, stop) = collect(c.check_accounts(ids, BulkOptions::default())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(items.len(), 1000);
    assert!(items
        .iter()
        .all(|i| i.outcome == Ok(AccountStatus::NotImported)));
    assert!(
        c.stats().rate_limited > 0,
        "the server did refuse some calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_at_the_servers_limit_never_provokes_60007() {
    let server = real_server(custom_limits(Api::AccountCheck, 20)).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .pacing(Pacing::documented().with(Api::AccountCheck, 20.0))
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let ids: Vec<String> = (0..3000).map(|i| format!("paced-{i}")).collect();
    let (items, stop) = collect(c.check_accounts(ids, BulkOptions::default())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(items.len(), 3000);
    // No retries allowed, so a single 60007 would have stopped the job: 30 calls, 30
    // answers, none refused.
    let s = c.stats();
    assert_eq!((s.requests, s.rate_limited), (30, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usersig_is_renewed_before_it_expires_on_a_long_job() {
    let server = real_server(ServerLimits::Off).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .sig_lifetime(SigLifetime {
            validity: Duration::from_secs(3),
            renew_after: 2.0 / 3.0,
        })
        .pacing(Pacing::unlimited().with(Api::AccountCheck, 2.0))
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    // 13 calls at 2/s: six seconds, twice the validity of one UserSig.
    let ids: Vec<String> = (0..1300).map(|i| format!("sig-{i}")).collect();
    let (items, stop) = collect(c.check_accounts(ids, BulkOptions::default())).await;
    assert!(stop.is_none(), "no 70001: {stop:?}");
    assert_eq!(items.len(), 1300);
    assert!(c.stats().usersigs_issued >= 3, "{:?}", c.stats());
}

#[derive(Debug)]
struct FrozenClock(AtomicI64);

impl Clock for FrozenClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_renewal_the_same_job_would_see_70001() {
    // The control for the test above: a clock that never moves never renews.
    let server = real_server(ServerLimits::Off).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .sig_lifetime(SigLifetime::new(Duration::from_secs(3)))
        .clock(Arc::new(FrozenClock(AtomicI64::new(now))))
        .retry(fast_retry(5))
        .build()
        .unwrap();
    c.account_check(&check_one("a")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert_eq!((e.code(), e.attempts()), (Some(70001), 1), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_lets_the_batch_in_flight_finish_and_says_how_far_it_got() {
    let server = real_server(ServerLimits::Tencent).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .pacing(Pacing::documented().with(Api::AccountCheck, 10.0))
        .build()
        .unwrap();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let options = BulkOptions {
        concurrency: 1,
        progress: Some(Arc::new(move |p: Progress| {
            if p.done >= 300 {
                flag.cancel();
            }
        })),
        cancel,
    };
    let ids: Vec<String> = (0..2000).map(|i| format!("cancel-{i}")).collect();
    let (items, stop) = collect(c.check_accounts(ids, options)).await;
    let Some(Stopped::Cancelled { processed, total }) = stop else {
        panic!("{stop:?}");
    };
    assert_eq!(total, 2000);
    assert_eq!(processed, items.len());
    assert_eq!(processed % 100, 0);
    assert!((300..=400).contains(&processed), "{processed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_sends_none_of_the_batches_still_waiting_for_their_pace() {
    let server = real_server(ServerLimits::Tencent).await;
    // Two calls per second: the whole job (10 batches) would take five seconds, and with
    // four batches in flight three or four are always waiting for their slot.
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .pacing(Pacing::documented().with(Api::MultiAccountImport, 2.0))
        .build()
        .unwrap();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    // From outside the job, as a Ctrl-C handler would: the job is then asleep waiting for
    // pacing slots, and must wake up to the cancel rather than sleep on into them.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        flag.cancel();
    });
    let options = BulkOptions {
        concurrency: 4,
        progress: None,
        cancel,
    };
    let ids = user_ids("paced-cancel-", 1000);
    let accounts = ids.iter().map(|id| entry(id, None, None)).collect();
    let job = collect(c.import_accounts(accounts, ImportShape::Accounts, options));
    let (items, stop) = tokio::time::timeout(Duration::from_secs(20), job)
        .await
        .expect("the job ends soon after the cancel");
    let Some(Stopped::Cancelled { processed, total }) = stop else {
        panic!("{stop:?}");
    };
    assert_eq!(total, 1000);
    // Slots at 0, 0.5, 1.0 s come before the cancel (one more if the cancel is late on a
    // busy machine); the three or four batches waiting for later slots were not sent.
    assert_eq!(processed % 100, 0, "{processed}");
    assert!(
        processed <= 500,
        "batches waiting for their pace were sent: {processed}"
    );
    assert_eq!(items.len(), processed);
    for (i, item) in items.iter().enumerate() {
        assert_eq!((item.index, &item.user_id), (i, &ids[i]));
        assert_eq!(item.outcome, Ok(()), "{item:?}");
    }
    // The server agrees: exactly the first `processed` accounts were imported, nothing
    // beyond them was sent.
    let checker = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .pacing(Pacing::unlimited())
        .build()
        .unwrap();
    let (checked, stop) =
        collect(checker.check_accounts(ids.clone(), BulkOptions::default())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(checked.len(), 1000);
    for (i, item) in checked.iter().enumerate() {
        let expected = if i < processed {
            AccountStatus::Imported
        } else {
            AccountStatus::NotImported
        };
        assert_eq!(item.outcome, Ok(expected), "{i} of {processed}");
    }
    assert_eq!(c.stats().requests, (processed / 100) as u64);
}

#[tokio::test]
async fn a_cancel_flag_wakes_whoever_awaits_it() {
    let flag = CancelFlag::new();
    let waiter = tokio::spawn({
        let flag = flag.clone();
        async move { flag.cancelled().await }
    });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    flag.cancel();
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    // Once raised, it stays raised.
    tokio::time::timeout(Duration::from_secs(5), flag.cancelled())
        .await
        .unwrap();
    assert!(flag.is_cancelled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_stops_the_job_at_the_first_batch() {
    let server = real_server(ServerLimits::Tencent).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, "not-the-key")
        .build()
        .unwrap();
    let ids: Vec<String> = (0..1000).map(|i| format!("k-{i}")).collect();
    let (items, stop) = collect(c.check_accounts(ids, BulkOptions::default())).await;
    assert!(items.is_empty());
    match stop {
        Some(Stopped::Failed {
            processed: 0,
            total: 1000,
            error,
        }) => assert_eq!((error.code(), error.attempts()), (Some(70009), 1)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_and_online_report_the_servers_answer() {
    let server = real_server(ServerLimits::Tencent).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .build()
        .unwrap();
    let e = c
        .kick(&KickRequest {
            user_id: Some("a".into()),
            identifier: None,
        })
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.attempts()), (Some(60009), 1));
    let (items, stop) =
        collect(c.online_status(vec!["a".into()], false, BulkOptions::default())).await;
    assert!(items.is_empty());
    assert!(
        matches!(&stop, Some(Stopped::Failed { error, .. }) if error.code() == Some(60009)),
        "{stop:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_fields_reach_the_store() {
    let server = real_server(ServerLimits::Tencent).await;
    let c = Client::builder(Endpoint::url(&server.base).unwrap(), APP, KEY)
        .build()
        .unwrap();
    let (items, _) = collect(c.import_accounts(
        vec![entry("p1", Some("Ann, the first"), Some("https://x/a.png"))],
        ImportShape::Auto,
        BulkOptions::default(),
    ))
    .await;
    assert!(items[0].outcome.is_ok());
    let account = server.account(APP, "p1").await.unwrap();
    assert_eq!(
        (account.nick.as_str(), account.face_url.as_str()),
        ("Ann, the first", "https://x/a.png")
    );
}

// ---------------------------------------------------------------------------------------
// Faults injected between the client and the real server, by a proxy that forwards to it.
// ---------------------------------------------------------------------------------------

fn user_ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_in_front_of_the_real_server_cost_retries_not_accounts() {
    let server = real_server(ServerLimits::Tencent).await;
    // One of each kind of retryable failure, then everything is passed to the server. The
    // lost answer (ForwardThenDrop) reaches the server: the retry imports the same batch
    // again, which the API allows.
    let faults = [
        Fault::Code(70500),
        Fault::Code(60008),
        Fault::Drop,
        Fault::Status(502),
        Fault::Code(70169),
        Fault::ForwardThenDrop,
        Fault::Code(60007),
        Fault::Code(30006),
    ];
    let proxy = FaultProxy::start(&server.base, &faults);
    let c = Client::builder(Endpoint::url(&proxy.base).unwrap(), APP, KEY)
        .retry(fast_retry(10))
        .build()
        .unwrap();
    let ids = user_ids("fault-", 1000);
    let accounts = ids.iter().map(|id| entry(id, None, None)).collect();
    let (items, stop) =
        collect(c.import_accounts(accounts, ImportShape::Auto, BulkOptions::default())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(items.len(), 1000);
    for (i, item) in items.iter().enumerate() {
        assert_eq!((item.index, &item.user_id), (i, &ids[i]));
        assert_eq!(item.outcome, Ok(()), "{item:?}");
    }
    assert_eq!(server.account_count(APP).await, 1000);

    // Ten batches, each fault cost exactly one retry, and nothing else was retried.
    let hits = proxy.seen();
    assert_eq!(hits.len(), 10 + faults.len());
    let s = c.stats();
    assert_eq!((s.requests, s.retries), (18, 8), "{s:?}");
    assert_eq!(s.rate_limited, 1);
    // Every attempt had its own random; all used the one cached UserSig.
    let randoms: HashSet<String> = hits.iter().map(|h| h.param("random").unwrap()).collect();
    assert_eq!(randoms.len(), hits.len());
    let sigs: HashSet<String> = hits.iter().map(|h| h.param("usersig").unwrap()).collect();
    assert_eq!(sigs.len(), 1);
    assert_eq!(s.usersigs_issued, 1);

    // And reading back through the (now healthy) proxy finds every account.
    let (items, stop) = collect(c.check_accounts(ids, BulkOptions::default())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert!(items
        .iter()
        .all(|i| i.outcome == Ok(AccountStatus::Imported)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retryable_answers_in_front_of_the_real_server_are_never_retried() {
    let server = real_server(ServerLimits::Tencent).await;
    let one_at_a_time = || BulkOptions {
        concurrency: 1,
        ..BulkOptions::default()
    };

    // A failure about the batch itself (70402): that batch's accounts fail with the code,
    // the job goes on, and nothing is sent twice.
    let proxy = FaultProxy::start(&server.base, &[Fault::Code(70402)]);
    let c = client(Endpoint::url(&proxy.base).unwrap(), fast_retry(5));
    let ids = user_ids("nr-", 300);
    let accounts = ids.iter().map(|id| entry(id, None, None)).collect();
    let (items, stop) =
        collect(c.import_accounts(accounts, ImportShape::Auto, one_at_a_time())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(items.len(), 300);
    let random = proxy.seen()[0].param("random").unwrap();
    for (i, item) in items.iter().enumerate() {
        if i < 100 {
            let failure = item.outcome.as_ref().unwrap_err();
            assert_eq!(failure.code, Some(70402));
            assert_eq!(failure.random.unwrap().to_string(), random);
        } else {
            assert_eq!(item.outcome, Ok(()), "{item:?}");
        }
    }
    assert_eq!(proxy.seen().len(), 3);
    assert_eq!(c.stats().retries, 0);
    assert_eq!(server.account_count(APP).await, 200);

    // A failure every later batch would meet too (70403, not an admin): the job stops at
    // once, after one request.
    let proxy = FaultProxy::start(&server.base, &[Fault::Code(70403)]);
    let c = client(Endpoint::url(&proxy.base).unwrap(), fast_retry(5));
    let (items, stop) = collect(c.check_accounts(ids, one_at_a_time())).await;
    assert!(items.is_empty());
    match stop {
        Some(Stopped::Failed {
            processed: 0,
            total: 300,
            error,
        }) => {
            assert_eq!((error.code(), error.attempts()), (Some(70403), 1));
            assert_eq!(
                error.random().unwrap().to_string(),
                proxy.seen()[0].param("random").unwrap()
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(proxy.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_fail_over_to_the_real_server_on_the_backup_host() {
    let server = real_server(ServerLimits::Tencent).await;
    // Nothing listens on the main host; the backup is the real server.
    let endpoint = Endpoint::url(&closed_port())
        .unwrap()
        .with_backup(&server.base)
        .unwrap();
    let c = Client::builder(endpoint, APP, KEY)
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let ids = user_ids("fo-", 300);
    let accounts = ids.iter().map(|id| entry(id, None, None)).collect();
    let options = BulkOptions {
        concurrency: 1,
        ..BulkOptions::default()
    };
    let (items, stop) = collect(c.import_accounts(accounts, ImportShape::Auto, options)).await;
    assert!(stop.is_none(), "{stop:?}");
    assert!(items.iter().all(|i| i.outcome.is_ok()));
    assert_eq!(server.account_count(APP).await, 300);
    // No retry was allowed: the failover happened inside the first attempt, and the later
    // batches went straight to the backup.
    let s = c.stats();
    assert_eq!((s.failovers, s.requests, s.retries), (1, 4, 0), "{s:?}");

    // With neither host reachable the error is a transport error naming the last host.
    let endpoint = Endpoint::url(&closed_port())
        .unwrap()
        .with_backup(&closed_port())
        .unwrap();
    let c = client(endpoint.clone(), RetryPolicy::never());
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.is_retryable());
    let backup_host = endpoint.bases()[1].trim_start_matches("http://").to_owned();
    assert!(e.to_string().contains(&backup_host), "{e}");
}

/// A log sink shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so that the thread-local subscriber sees every log line of the client and
// of reqwest/hyper under it.
#[tokio::test(flavor = "current_thread")]
async fn logs_at_trace_level_and_errors_never_show_the_key_or_the_usersig() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A failover (main host closed), retries of each kind, then a final non-retryable
    // failure: every path that logs or reports something.
    let f = FaultProxy::answering(
        &[
            Fault::Code(70500),
            Fault::Drop,
            Fault::Status(503),
            Fault::Code(70009),
        ],
        success_body,
    );
    let endpoint = Endpoint::url(&closed_port())
        .unwrap()
        .with_backup(&f.base)
        .unwrap();
    let c = client(endpoint, fast_retry(10));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert_eq!((e.code(), e.attempts()), (Some(70009), 4), "{e}");
    let e2 = client(Endpoint::url(&closed_port()).unwrap(), fast_retry(2))
        .account_check(&check_one("a"))
        .await
        .unwrap_err();

    let mut text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("retrying") && text.contains("failing over"),
        "{text}"
    );
    for e in [&e, &e2] {
        text.push_str(&format!("\n{e} {e:?}"));
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(&format!(" {s} {s:?}"));
            source = s.source();
        }
    }
    text.push_str(&format!("\n{c:?}"));
    let sigs: HashSet<String> = f
        .seen()
        .iter()
        .map(|h| h.param("usersig").unwrap())
        .collect();
    assert_eq!(sigs.len(), 1);
    for secret in sigs.iter().map(String::as_str).chain([KEY, "usersig="]) {
        assert!(!text.contains(secret), "{secret:?} in:\n{text}");
    }
    assert!(
        text.contains(&format!("random {}", e.random().unwrap())),
        "{text}"
    );
}

#[tokio::test]
async fn online_status_goes_500_per_call_and_kick_one_call_each_in_input_order() {
    let f = FaultProxy::answering(&[], success_body);
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(1));
    let mut ids = user_ids("on-", 1200);
    ids[3] = "gone-3".to_owned();
    ids[700] = "gone-700".to_owned();
    let (items, stop) = collect(c.online_status(ids.clone(), true, BulkOptions::default())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(items.len(), 1200);
    for (i, item) in items.iter().enumerate() {
        assert_eq!((item.index, &item.user_id), (i, &ids[i]));
        match &item.outcome {
            Ok(r) => {
                assert_eq!(
                    (r.to_account.as_str(), r.status.as_str()),
                    (ids[i].as_str(), "Online")
                );
                assert_eq!(r.detail.as_ref().map(Vec::len), Some(1));
            }
            Err(e) => {
                assert!(i == 3 || i == 700, "{item:?}");
                assert_eq!(e.code, Some(70107));
            }
        }
    }
    let sizes: Vec<(String, usize, Value)> = f
        .seen()
        .iter()
        .map(|h| {
            let body: Value = serde_json::from_str(&h.body).unwrap();
            (
                h.path.clone(),
                body["To_Account"].as_array().unwrap().len(),
                body["IsNeedDetail"].clone(),
            )
        })
        .collect();
    let online = "/v4/openim/query_online_status".to_owned();
    assert_eq!(
        sizes,
        vec![
            (online.clone(), 500, json!(1)),
            (online.clone(), 500, json!(1)),
            (online, 200, json!(1)),
        ]
    );

    let f = FaultProxy::answering(
        &[Fault::Pass, Fault::Code(70107), Fault::Pass],
        success_body,
    );
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(1));
    let options = BulkOptions {
        concurrency: 1,
        ..BulkOptions::default()
    };
    let ids = vec!["k1".to_owned(), "k2".to_owned(), "k3".to_owned()];
    let (items, stop) = collect(c.kick_accounts(ids, options)).await;
    assert!(stop.is_none(), "{stop:?}");
    let outcomes: Vec<Option<u32>> = items
        .iter()
        .map(|i| i.outcome.as_ref().err().and_then(|e| e.code))
        .collect();
    assert_eq!(outcomes, [None, Some(70107), None]);
    let bodies: Vec<(String, String)> = f.seen().into_iter().map(|h| (h.path, h.body)).collect();
    let kick = "/v4/im_open_login_svc/kick".to_owned();
    assert_eq!(
        bodies,
        [
            (kick.clone(), r#"{"UserID":"k1"}"#.to_owned()),
            (kick.clone(), r#"{"UserID":"k2"}"#.to_owned()),
            (kick, r#"{"UserID":"k3"}"#.to_owned()),
        ]
    );
}
