//! The client over real HTTP: retries and failover against a fault-injecting fixture, and
//! bulk jobs, pacing and UserSig renewal against the real timacct server (in process, over a
//! real SQLite file).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use timacct_client::{
    AccountCheckRequest, AccountListEntry, AccountStatus, BulkOptions, CancelFlag, Client, Clock,
    Endpoint, Error, ErrorCode, ImportShape, ItemResult, KickRequest, Progress,
    QueryOnlineStatusRequest, RateLimits, RetryPolicy, SigLifetime, Stopped, UserIdItem,
};
use timacct_proto::Api;
use timacct_server::{AppConfig, AppState, RateLimits as ServerLimits, SecretKey};
use timacct_store::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const APP: u32 = 1_400_000_123;
const KEY: &str = "client-test-key";

// ---------------------------------------------------------------------------------------
// The fault-injecting fixture: a tiny HTTP/1.1 server that answers each request with the
// next scripted action, and records what it received.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Action {
    /// A success body for the API called.
    Ok,
    /// HTTP 200 with this ErrorCode.
    Code(u32),
    /// Close the connection after reading the request, without answering.
    Drop,
    /// This HTTP status with a plain-text body.
    Status(u16),
}

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    query: String,
    body: String,
}

impl Hit {
    fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
    }
}

struct Fixture {
    base: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<Action>>>,
}

impl Fixture {
    async fn start(script: &[Action]) -> Fixture {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let (h, s) = (hits.clone(), script.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (h, s) = (h.clone(), s.clone());
                tokio::spawn(async move { serve_one(stream, h, s).await });
            }
        });
        Fixture {
            base: format!("http://{addr}"),
            hits,
            script,
        }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn remaining(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

async fn serve_one(
    mut stream: TcpStream,
    hits: Arc<Mutex<Vec<Hit>>>,
    script: Arc<Mutex<VecDeque<Action>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let target = head.split_whitespace().nth(1).unwrap_or("").to_owned();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let body = String::from_utf8_lossy(&buf[header_end..header_end + length]).into_owned();
    let hit = Hit {
        path: path.to_owned(),
        query: query.to_owned(),
        body,
    };
    hits.lock().unwrap().push(hit.clone());
    let action = script.lock().unwrap().pop_front().unwrap_or(Action::Ok);
    let (status, text) = match action {
        Action::Drop => return,
        Action::Status(s) => (s, "<html>bad gateway</html>".to_owned()),
        Action::Code(code) => (
            200,
            json!({"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": format!("injected {code}")})
                .to_string(),
        ),
        Action::Ok => (200, success_body(&hit)),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn success_body(hit: &Hit) -> String {
    let body: Value = serde_json::from_str(&hit.body).unwrap_or(Value::Null);
    let ids = |field: &str| -> Vec<String> {
        body[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["UserID"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut v = json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""});
    match hit.path.rsplit('/').next().unwrap_or("") {
        "account_check" => {
            v["ResultItem"] = ids("CheckItem")
                .into_iter()
                .map(|id| json!({"UserID": id, "ResultCode": 0, "ResultInfo": "", "AccountStatus": "Imported"}))
                .collect();
        }
        "account_delete" => {
            v["ResultItem"] = ids("DeleteItem")
                .into_iter()
                .map(|id| json!({"ResultCode": 0, "ResultInfo": "", "UserID": id}))
                .collect();
        }
        "multiaccount_import" => v["FailAccounts"] = json!([]),
        _ => {}
    }
    v.to_string()
}

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
        .rate_limits(RateLimits::unlimited())
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

/// A local port nothing listens on: connecting is refused at once.
async fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

#[tokio::test]
async fn retryable_code_is_retried_with_a_fresh_random_each_time() {
    let f = Fixture::start(&[Action::Code(70500), Action::Code(70500), Action::Ok]).await;
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    let r = c.account_check(&check_one("a")).await.unwrap();
    assert_eq!(r.result_item[0].account_status, AccountStatus::Imported);
    let hits = f.hits();
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
    let f = Fixture::start(&[Action::Code(70402)]).await;
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert_eq!(f.hits().len(), 1);
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
    let random = f.hits()[0].param("random").unwrap();
    assert_eq!(e.random().unwrap().to_string(), random);
    assert!(e.to_string().contains(&format!("random {random}")), "{e}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn dropped_connections_are_retried() {
    let f = Fixture::start(&[Action::Drop, Action::Drop, Action::Ok]).await;
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    c.account_check(&check_one("a")).await.unwrap();
    assert_eq!(f.hits().len(), 3);
    assert_eq!(c.stats().retries, 2);
}

#[tokio::test]
async fn a_60007_backs_off_then_retries_the_batch_once() {
    let f = Fixture::start(&[Action::Code(60007), Action::Ok]).await;
    let retry = RetryPolicy {
        rate_limited_backoff: Duration::from_millis(300),
        ..fast_retry(5)
    };
    let c = client(Endpoint::url(&f.base).unwrap(), retry);
    let t = Instant::now();
    c.account_check(&check_one("a")).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300), "backed off");
    assert_eq!(f.hits().len(), 2);
    let s = c.stats();
    assert_eq!((s.rate_limited, s.retries), (1, 1));
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let f = Fixture::start(&[Action::Code(70169); 10]).await;
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(3));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert_eq!(f.hits().len(), 3);
    assert_eq!((e.code(), e.attempts()), (Some(70169), 3));
    assert_eq!(f.remaining(), 7);
}

#[tokio::test]
async fn overload_statuses_are_retried_other_statuses_are_not() {
    let f = Fixture::start(&[Action::Status(502), Action::Status(503), Action::Ok]).await;
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    c.account_check(&check_one("a")).await.unwrap();
    assert_eq!(f.hits().len(), 3);

    let f = Fixture::start(&[Action::Status(404)]).await;
    let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(5));
    let e = c.account_check(&check_one("a")).await.unwrap_err();
    assert!(matches!(e, Error::Http { status: 404, .. }), "{e:?}");
    assert_eq!(f.hits().len(), 1);
}

#[tokio::test]
async fn every_code_in_the_table_is_retried_exactly_when_it_is_marked_retryable() {
    for code in ErrorCode::ALL {
        let n = code.code();
        // 70050 asks for a one-minute wait; its retryability is the table's, checked below.
        if n == 0 || n == 70050 {
            continue;
        }
        let f = Fixture::start(&[Action::Code(n), Action::Ok]).await;
        let c = client(Endpoint::url(&f.base).unwrap(), fast_retry(3));
        let result = c.account_check(&check_one("a")).await;
        let expected = if code.is_retryable() { 2 } else { 1 };
        assert_eq!(f.hits().len(), expected, "code {n}");
        assert_eq!(result.is_ok(), code.is_retryable(), "code {n}");
    }
    assert!(ErrorCode::from_code(70050).is_some_and(|c| c.is_retryable()));
}

#[tokio::test]
async fn connection_errors_fail_over_to_the_backup_host_and_stay_there() {
    let f = Fixture::start(&[]).await;
    let endpoint = Endpoint::url(&closed_port().await)
        .unwrap()
        .with_backup(&f.base)
        .unwrap();
    let c = client(endpoint, RetryPolicy::never());
    c.account_check(&check_one("a")).await.unwrap();
    c.account_check(&check_one("b")).await.unwrap();
    assert_eq!(f.hits().len(), 2);
    let s = c.stats();
    assert_eq!(
        s.failovers, 1,
        "the second call went to the backup directly"
    );
    assert_eq!(s.requests, 3);
}

#[tokio::test]
async fn an_answer_from_the_main_host_is_not_a_reason_to_fail_over() {
    let main = Fixture::start(&[Action::Code(70402)]).await;
    let backup = Fixture::start(&[]).await;
    let endpoint = Endpoint::url(&main.base)
        .unwrap()
        .with_backup(&backup.base)
        .unwrap();
    let c = client(endpoint, fast_retry(3));
    assert_eq!(
        c.account_check(&check_one("a")).await.unwrap_err().code(),
        Some(70402)
    );
    assert_eq!((main.hits().len(), backup.hits().len()), (1, 0));
}

#[tokio::test]
async fn errors_never_show_the_key_or_the_usersig() {
    let c = client(Endpoint::url(&closed_port().await).unwrap(), fast_retry(2));
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
    let f = Fixture::start(&[]).await;
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
    })
    .await
    .unwrap();
    let bodies: Vec<(String, String)> = f.hits().into_iter().map(|h| (h.path, h.body)).collect();
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

struct Server {
    base: String,
    store: SqliteStore,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn real_server(limits: ServerLimits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("timacct.db")).unwrap();
    let mut app = AppConfig::new(APP, SecretKey::new(KEY));
    app.rate_limits = limits;
    let state = AppState::new(vec![app], Arc::new(store.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(timacct_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Server {
        base,
        store,
        _dir: dir,
        _stop: stop,
    }
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
    let left = timacct_store::AccountStore::account_count(&server.store, APP)
        .await
        .unwrap();
    assert_eq!(left, 0);
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
        .rate_limits(RateLimits::documented().with(Api::AccountCheck, 20.0))
        .retry(RetryPolicy::never())
        .build()
        .unwrap();
    let t = Instant::now();
    let ids: Vec<String> = (0..3000).map(|i| format!("paced-{i}")).collect();
    let (items, stop) = collect(c.check_accounts(ids, BulkOptions::default())).await;
    assert!(stop.is_none(), "{stop:?}");
    assert_eq!(items.len(), 3000);
    // 30 calls at 20/s: the 30th leaves after 29/20 s.
    assert!(t.elapsed() >= Duration::from_millis(1400));
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
        .rate_limits(RateLimits::unlimited().with(Api::AccountCheck, 2.0))
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
        .rate_limits(RateLimits::documented().with(Api::AccountCheck, 10.0))
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
    let account = timacct_store::AccountStore::account(
        &server.store,
        APP,
        timacct_store::UserId::parse("p1").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        (account.nick.as_str(), account.face_url.as_str()),
        ("Ann, the first", "https://x/a.png")
    );
}
