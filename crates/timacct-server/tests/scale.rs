//! Several stateless instances on one PostgreSQL database and one Redis behave as one
//! service: read-your-writes across instances, concurrent conflicting writes, `max_accounts`
//! and tombstones across instances, one rate limit for the whole service, and outages of the
//! database or Redis that answer 70500 (never hang, never 5xx) and heal by themselves.
//!
//! Each test gets a fresh database (dropped at the end) and a fresh Redis key prefix (its keys
//! expire on their own within seconds). The instances are real servers on loopback ports,
//! each with its own connection pool and Redis connection, as separate processes would have.
//! Without PostgreSQL or Redis these tests skip with a message, unless
//! `TIMACCT_TEST_DATABASE_URL` / `TIMACCT_TEST_REDIS_URL` or `CI` is set: then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use timacct_proto::Api;
use timacct_server::{AppConfig, AppState, Plan, RateLimits, RedisRateLimiter, SecretKey};
use timacct_store::postgres::TestDatabase;
use timacct_store::{
    AccountStore, ImportItem, ImportOutcome, ImportPolicy, PostgresOptions, PostgresStore, UserId,
};
use timacct_usersig::UserSigGenerator;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const KEY: &str = "scale-test-key";
/// Rate limits off, trial plan.
const OPEN: u32 = 1_400_000_101;
/// `account_check` limited to [`LIMIT`] calls per second.
const LIMITED: u32 = 1_400_000_102;
const LIMIT: u32 = 10;
/// `pro` with deletion on: deleted UserIDs are blocked (70399).
const PRO: u32 = 1_400_000_103;
/// At most [`MAX`] accounts.
const CAPPED: u32 = 1_400_000_104;
const MAX: u64 = 30;

fn apps() -> Vec<AppConfig> {
    let base = |sdkappid| {
        let mut a = AppConfig::new(sdkappid, SecretKey::new(KEY));
        a.rate_limits = RateLimits::Off;
        a
    };
    let mut limited = base(LIMITED);
    limited.rate_limits = RateLimits::Custom(BTreeMap::from([(Api::AccountCheck, LIMIT)]));
    let mut pro = base(PRO);
    pro.plan = Plan::Pro;
    pro.account_deletion = true;
    let mut capped = base(CAPPED);
    capped.max_accounts = Some(MAX);
    vec![base(OPEN), limited, pro, capped]
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// The services a test needs, or `None` (after saying why) when it may be skipped.
struct Services {
    db: TestDatabase,
    redis_url: String,
    prefix: String,
}

async fn services() -> Option<Services> {
    let db = TestDatabase::create().await.unwrap()?;
    const VAR: &str = "TIMACCT_TEST_REDIS_URL";
    let given = std::env::var(VAR).ok().filter(|v| !v.trim().is_empty());
    let redis_url = given
        .clone()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("timacct_test_{:016x}:", rand::random::<u64>());
    if let Err(e) = RedisRateLimiter::connect(&redis_url, prefix.clone()).await {
        if given.is_none() && !in_ci() {
            eprintln!("skipping: no Redis at {redis_url} ({e}); set {VAR} to run this test");
            return None;
        }
        panic!("Redis tests must run here ({VAR} set or CI set) but Redis cannot be reached: {e}");
    }
    Some(Services {
        db,
        redis_url,
        prefix,
    })
}

/// One running `timacct serve`, in process.
struct Instance {
    base: String,
    store: PostgresStore,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Instance {
    async fn start(db_url: &str, redis: Option<(&str, &str)>) -> Instance {
        let options = PostgresOptions {
            max_connections: 8,
            ..PostgresOptions::default()
        };
        let store = PostgresStore::connect_with(db_url, options).await.unwrap();
        let mut state = AppState::new(apps(), Arc::new(store.clone()));
        if let Some((url, prefix)) = redis {
            state = state.with_redis(RedisRateLimiter::connect(url, prefix).await.unwrap());
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(timacct_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        Instance {
            base,
            store,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.store.close();
    }
}

/// Two instances on the services' database and Redis.
async fn pair(s: &Services) -> (Instance, Instance) {
    let url = s.db.url();
    let redis = Some((s.redis_url.as_str(), s.prefix.as_str()));
    (
        Instance::start(&url, redis).await,
        Instance::start(&url, redis).await,
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Call an API; every answer must be HTTP 200 with the envelope.
async fn call(http: &reqwest::Client, base: &str, app: u32, command: &str, body: Value) -> Value {
    let usersig =
        UserSigGenerator::new(u64::from(app), KEY).gen("administrator", 86_400, unix_now());
    let service = "im_open_login_svc";
    let url = format!(
        "{base}/v4/{service}/{command}?sdkappid={app}&identifier=administrator&usersig={usersig}&random={}&contenttype=json",
        rand::random::<u32>()
    );
    let resp = http.post(url).body(body.to_string()).send().await.unwrap();
    assert_eq!(resp.status(), 200, "never a bare HTTP error");
    resp.json().await.unwrap()
}

fn code(v: &Value) -> u64 {
    v["ErrorCode"].as_u64().unwrap()
}

fn unix_now() -> i64 {
    timacct_server::unix_now()
}

async fn import(http: &reqwest::Client, base: &str, app: u32, id: &str) -> Value {
    call(http, base, app, "account_import", json!({ "UserID": id })).await
}

async fn check(http: &reqwest::Client, base: &str, app: u32, ids: &[String]) -> Vec<bool> {
    let items: Vec<Value> = ids.iter().map(|i| json!({ "UserID": i })).collect();
    let v = call(
        http,
        base,
        app,
        "account_check",
        json!({ "CheckItem": items }),
    )
    .await;
    assert_eq!(code(&v), 0, "{v}");
    v["ResultItem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["AccountStatus"] == "Imported")
        .collect()
}

async fn delete(http: &reqwest::Client, base: &str, app: u32, ids: &[String]) -> Vec<u64> {
    let items: Vec<Value> = ids.iter().map(|i| json!({ "UserID": i })).collect();
    let v = call(
        http,
        base,
        app,
        "account_delete",
        json!({ "DeleteItem": items }),
    )
    .await;
    assert_eq!(code(&v), 0, "{v}");
    v["ResultItem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ResultCode"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_acknowledged_by_one_instance_are_seen_by_the_other() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let http = client();
    for i in 0..20 {
        let (w, r) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let id = format!("ryw{i}");
        assert_eq!(code(&import(&http, &w.base, OPEN, &id).await), 0);
        assert_eq!(
            check(&http, &r.base, OPEN, std::slice::from_ref(&id)).await,
            vec![true]
        );
        assert_eq!(
            delete(&http, &r.base, OPEN, std::slice::from_ref(&id)).await,
            vec![0]
        );
        assert_eq!(check(&http, &w.base, OPEN, &[id]).await, vec![false]);
    }
    let batch: Vec<String> = (0..100).map(|i| format!("batch{i}")).collect();
    let v = call(
        &http,
        &b.base,
        OPEN,
        "multiaccount_import",
        json!({ "Accounts": batch }),
    )
    .await;
    assert_eq!(v["FailAccounts"], json!([]));
    assert!(check(&http, &a.base, OPEN, &batch).await.iter().all(|x| *x));
    a.shutdown().await;
    b.shutdown().await;
}

/// 2 instances x 8 tasks import and delete the same 50 UserIDs at once. Every import outcome
/// (Created or Updated, from each instance's store) and every `account_delete` result (over
/// HTTP) is recorded; per UserID, creates minus deletes must equal whether it exists at the
/// end, and `app_stats` must equal the rows actually stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_conflicting_writes_through_two_instances_stay_consistent() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let instances = Arc::new([a, b]);
    let names: Arc<Vec<String>> = Arc::new((0..50).map(|i| format!("u{i}")).collect());
    let mut tasks = Vec::new();
    for t in 0..16usize {
        let instances = instances.clone();
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            let me = &instances[t % 2];
            let http = client();
            let mut created: HashMap<String, i64> = HashMap::new();
            let mut deleted: HashMap<String, i64> = HashMap::new();
            for round in 0..10usize {
                let start = (t * 7 + round * 13) % 50;
                let mut batch: Vec<String> = (0..10)
                    .map(|k| names[(start + k * 3) % 50].clone())
                    .collect();
                batch.push(batch[0].clone());
                if (t + round) % 2 == 0 {
                    let items = batch
                        .iter()
                        .map(|n| ImportItem::id_only(UserId::parse(n.as_str()).unwrap()))
                        .collect();
                    let policy = ImportPolicy {
                        max_accounts: None,
                        reimport_block_secs: None,
                        now: unix_now(),
                    };
                    let out = me.store.import(OPEN, items, policy).await.unwrap();
                    for (n, o) in batch.iter().zip(out) {
                        if o == ImportOutcome::Created {
                            *created.entry(n.clone()).or_default() += 1;
                        }
                    }
                } else {
                    let codes = delete(&http, &me.base, OPEN, &batch).await;
                    for (n, c) in batch.iter().zip(codes) {
                        match c {
                            0 => *deleted.entry(n.clone()).or_default() += 1,
                            70107 => {}
                            other => panic!("unexpected ResultCode {other}"),
                        }
                    }
                }
            }
            (created, deleted)
        }));
    }
    let mut created: HashMap<String, i64> = HashMap::new();
    let mut deleted: HashMap<String, i64> = HashMap::new();
    for t in tasks {
        let (c, d) = t.await.unwrap();
        for (k, v) in c {
            *created.entry(k).or_default() += v;
        }
        for (k, v) in d {
            *deleted.entry(k).or_default() += v;
        }
    }
    let http = client();
    let exists = check(&http, &instances[1].base, OPEN, &names).await;
    let mut live = 0i64;
    for (n, e) in names.iter().zip(&exists) {
        let c = created.get(n).copied().unwrap_or(0);
        let d = deleted.get(n).copied().unwrap_or(0);
        assert_eq!(
            c - d,
            i64::from(*e),
            "{n}: {c} created, {d} deleted, exists {e}"
        );
        live += i64::from(*e);
    }
    let total_deleted: i64 = deleted.values().sum();
    eprintln!(
        "{} creates, {total_deleted} deletes, {live} accounts at the end",
        created.values().sum::<i64>()
    );
    assert!(
        total_deleted > 20,
        "too little contention to prove anything"
    );
    let db = s.db.client().await.unwrap();
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM accounts WHERE sdkappid = $1),
                    (SELECT accounts FROM app_stats WHERE sdkappid = $1)",
            &[&i64::from(OPEN)],
        )
        .await
        .unwrap();
    let (rows, counted): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!((rows, counted), (live, live));
    let instances = Arc::try_unwrap(instances).ok().unwrap();
    let [a, b] = instances;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_accounts_and_tombstones_hold_across_instances() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let bases = Arc::new([a.base.clone(), b.base.clone()]);
    let mut tasks = Vec::new();
    for i in 0..100usize {
        let bases = bases.clone();
        tasks.push(tokio::spawn(async move {
            code(&import(&client(), &bases[i % 2], CAPPED, &format!("cap{i}")).await)
        }));
    }
    let mut codes = HashMap::new();
    for t in tasks {
        *codes.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(codes, HashMap::from([(0, 30), (70398, 70)]));
    assert_eq!(a.store.account_count(CAPPED).await.unwrap(), MAX);

    let http = client();
    assert_eq!(code(&import(&http, &a.base, PRO, "gone").await), 0);
    assert_eq!(delete(&http, &b.base, PRO, &["gone".into()]).await, vec![0]);
    for base in [&a.base, &b.base] {
        assert_eq!(code(&import(&http, base, PRO, "gone").await), 70399);
    }
    let v = call(
        &http,
        &b.base,
        PRO,
        "multiaccount_import",
        json!({ "Accounts": ["gone", "fresh"] }),
    )
    .await;
    assert_eq!(v["FailAccounts"], json!(["gone"]));
    a.shutdown().await;
    b.shutdown().await;
}

/// Fire `n` concurrent `account_check` calls at the limited app, alternating between the
/// instances; the answer codes, and how long the burst took.
async fn burst(bases: [&str; 2], n: usize) -> (HashMap<u64, usize>, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let base = bases[i % 2].to_owned();
        tasks.push(tokio::spawn(async move {
            let v = call(
                &client(),
                &base,
                LIMITED,
                "account_check",
                json!({ "CheckItem": [{ "UserID": "x" }] }),
            )
            .await;
            code(&v)
        }));
    }
    let mut codes = HashMap::new();
    for t in tasks {
        *codes.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    (codes, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_rate_limit_for_all_instances() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let (codes, took) = burst([&a.base, &b.base], 60).await;
    let ok = codes.get(&0).copied().unwrap_or(0);
    let limited = codes.get(&60007).copied().unwrap_or(0);
    eprintln!("shared limit {LIMIT}/s: {ok} allowed, {limited} refused in {took:?}");
    assert_eq!(ok + limited, 60, "only 0 or 60007: {codes:?}");
    assert!(limited > 0);
    // The bucket starts full (a fresh key prefix), so the first LIMIT calls pass; after that
    // only what refills while the burst lasts. Per-instance buckets would grant at least
    // 2 x LIMIT (see below). No timing assumption: the bound grows with the time taken.
    assert!(ok >= LIMIT as usize, "{ok}");
    let refill = (took.as_secs_f64() * f64::from(LIMIT)).ceil() as usize;
    assert!(
        ok <= LIMIT as usize + refill + 1,
        "{ok} allowed in {took:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The contrast the README states: without Redis each instance has its own buckets, so two
/// instances grant each a full bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_limits_are_per_instance() {
    let Some(s) = services().await else { return };
    let url = s.db.url();
    let a = Instance::start(&url, None).await;
    let b = Instance::start(&url, None).await;
    let (codes, _) = burst([&a.base, &b.base], 60).await;
    assert!(
        codes.get(&0).copied().unwrap_or(0) >= 2 * LIMIT as usize,
        "{codes:?}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// What a [`Proxy`] does with traffic.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Forward both ways.
    Up,
    /// Close every connection and every new one at once (a server that is down).
    Refuse,
    /// Keep connections open and forward nothing (a network partition): only timeouts help.
    Blackhole,
}

/// A TCP proxy a test can cut, to make a real server unreachable for a while without touching
/// the server itself.
struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, watcher) = watch::channel(Mode::Up);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut downstream, _)) = listener.accept().await else {
                    continue;
                };
                let mut watcher = watcher.clone();
                tokio::spawn(async move {
                    let now = *watcher.borrow();
                    match now {
                        Mode::Refuse => return,
                        Mode::Blackhole => {
                            let _ = watcher.wait_for(|m| *m != Mode::Blackhole).await;
                            return;
                        }
                        Mode::Up => {}
                    }
                    let Ok(mut up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let cut = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut downstream, &mut up) => false,
                        _ = async { let _ = watcher.wait_for(|m| *m != Mode::Up).await; } => true,
                    };
                    if cut && *watcher.borrow() == Mode::Blackhole {
                        // Hold both sockets, silent, until the partition ends.
                        let _ = watcher.wait_for(|m| *m != Mode::Blackhole).await;
                    }
                });
            }
        });
        Proxy { addr, mode, task }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.set(Mode::Refuse);
    }
}

/// The longest a call may take while a dependency is down: its timeout plus slack for a
/// loaded test machine. A hang would exceed it by far.
fn bounded(timeout: Duration) -> Duration {
    timeout + Duration::from_secs(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_fails_closed_with_70500_and_heals() {
    let Some(s) = services().await else { return };
    let redis_addr: SocketAddr = s
        .redis_url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .rsplit('@')
        .next()
        .unwrap()
        .parse()
        .expect("TIMACCT_TEST_REDIS_URL must be redis://host:port with an IP address");
    let proxy = Proxy::start(redis_addr).await;
    let via = format!("redis://{}", proxy.addr);
    let a = Instance::start(&s.db.url(), Some((&via, &s.prefix))).await;
    let http = &client();
    let base = a.base.as_str();
    let probe = move || async move {
        let started = Instant::now();
        let v = call(
            http,
            base,
            LIMITED,
            "account_check",
            json!({ "CheckItem": [{ "UserID": "x" }] }),
        )
        .await;
        (code(&v), started.elapsed(), v)
    };
    assert_eq!(probe().await.0, 0);
    for mode in [Mode::Refuse, Mode::Blackhole] {
        proxy.set(mode);
        for _ in 0..3 {
            let (c, took, v) = probe().await;
            assert_eq!(c, 70500, "{mode:?}: {v}");
            assert!(
                took < bounded(timacct_server::REDIS_TIMEOUT),
                "{mode:?} took {took:?}"
            );
            eprintln!("Redis {mode:?}: 70500 after {took:?}");
        }
        proxy.set(Mode::Up);
        let healed = Instant::now();
        loop {
            let (c, _, v) = probe().await;
            if c == 0 {
                break;
            }
            assert_eq!(c, 70500, "{v}");
            assert!(healed.elapsed() < Duration::from_secs(15), "did not heal");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("Redis back: served again after {:?}", healed.elapsed());
    }
    a.shutdown().await;
}

/// Traffic on two instances while the database's connections are killed, then while it is
/// unreachable behind a partition, then while it refuses connections: every answer is 0
/// or 70500 within the call timeout, service resumes without intervention, and every
/// acknowledged import is there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_mid_traffic_answers_70500_and_heals() {
    let Some(s) = services().await else { return };
    let admin = s.db.client().await.unwrap();
    let port: i32 = admin
        .query_one("SELECT current_setting('port')::int", &[])
        .await
        .unwrap()
        .get(0);
    let server: String = admin
        .query_one(
            "SELECT COALESCE(host(inet_server_addr()), '127.0.0.1')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let upstream: SocketAddr = format!("{server}:{port}").parse().unwrap();
    let proxy = Proxy::start(upstream).await;
    let url = s.db.url_via(proxy.addr);
    let redis = Some((s.redis_url.as_str(), s.prefix.as_str()));
    let a = Instance::start(&url, redis).await;
    let b = Instance::start(&url, redis).await;
    let limit = bounded(PostgresOptions::default().call_timeout);

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8usize {
        let base = if w % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let http = client();
            let mut acked = Vec::new();
            let mut failed = 0usize;
            let mut slowest = Duration::ZERO;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("w{w}-{n}");
                n += 1;
                let started = Instant::now();
                let v = import(&http, &base, OPEN, &id).await;
                let took = started.elapsed();
                slowest = slowest.max(took);
                assert!(took < limit, "a request hung for {took:?}");
                match code(&v) {
                    0 => acked.push(id),
                    70500 => failed += 1,
                    _ => panic!("unexpected answer {v}"),
                }
                if failed > 0 {
                    // Do not spin while the database is away.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            (acked, failed, slowest)
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut killed = 0;
    for _ in 0..3 {
        killed += s.db.terminate_connections().await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A partition first, while the pool holds live connections: calls already on them hang
    // until the call timeout, new connections until the checkout timeout. Held longer than
    // the call timeout, so both must fire.
    proxy.set(Mode::Blackhole);
    tokio::time::sleep(PostgresOptions::default().call_timeout + Duration::from_secs(1)).await;
    // Then a server that is down: connections are refused at once.
    proxy.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.set(Mode::Up);
    let healed = Instant::now();
    let http = client();
    for inst in [&a, &b] {
        loop {
            let v = import(&http, &inst.base, OPEN, "probe").await;
            if code(&v) == 0 {
                break;
            }
            assert!(
                healed.elapsed() < Duration::from_secs(20),
                "did not heal: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let heal_time = healed.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    let mut failed = 0;
    let mut slowest = Duration::ZERO;
    for w in workers {
        let (a, f, s) = w.await.unwrap();
        acked.extend(a);
        failed += f;
        slowest = slowest.max(s);
    }
    eprintln!(
        "{killed} connections killed; {} imports acknowledged, {failed} answered 70500; \
         slowest answer {slowest:?}; both instances served again {heal_time:?} after the database returned",
        acked.len()
    );
    assert!(killed > 0 && failed > 0, "the outage was not felt");
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len());
    for chunk in acked.chunks(100) {
        for inst in [&a, &b] {
            let seen = check(&http, &inst.base, OPEN, chunk).await;
            let missing: Vec<&String> = chunk
                .iter()
                .zip(&seen)
                .filter(|(_, s)| !**s)
                .map(|(id, _)| id)
                .collect();
            assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
        }
    }
    a.shutdown().await;
    b.shutdown().await;
}
