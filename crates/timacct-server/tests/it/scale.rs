//! Several stateless instances on one PostgreSQL database and one Redis behave as one
//! service: read-your-writes across instances, concurrent conflicting writes, `max_accounts`
//! and tombstones across instances, one rate limit for the whole service, and outages of the
//! database (killed connections, a partition, a restart) or of Redis that answer 70500 (never
//! hang, never 5xx), heal by themselves, and lose nothing that was acknowledged.
//!
//! No test asserts how long anything took: a hang is caught by the HTTP client's generous
//! [`HANG`] bound, healing is counted in attempts, and the rate limits are checked by counts.
//!
//! Each test gets a fresh database (dropped at the end) and a fresh Redis key prefix (its keys
//! expire on their own within seconds). The instances are real servers on loopback ports,
//! each with its own connection pool and Redis connection, as separate processes would have.
//! Without PostgreSQL or Redis these tests skip with a message, unless
//! `TIMACCT_TEST_DATABASE_URL` / `TIMACCT_TEST_REDIS_URL` or `CI` is set: then they fail.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use timacct_proto::Api;
use timacct_server::AppConfig;
use timacct_store::postgres::TestDatabase;
use timacct_store::{
    AccountStore, ImportItem, ImportOutcome, ImportPolicy, PostgresOptions, PostgresStore, UserId,
};
use timacct_test_support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
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
    let mut capped = app_config(CAPPED, KEY);
    capped.max_accounts = Some(MAX);
    vec![
        app_config(OPEN, KEY),
        limited_config(LIMITED, KEY, &[(Api::AccountCheck, LIMIT)]),
        pro_config(PRO, KEY, true),
        capped,
    ]
}

/// One running `timacct serve`, in process, with a connection pool of its own.
type Instance = TestServer<PostgresStore>;

/// An instance on the database at `db_url`, with its own connection to Redis when given, as
/// a separate process would have.
async fn instance(db_url: &str, redis: Option<&TestRedis>) -> Instance {
    let options = PostgresOptions {
        max_connections: 8,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(db_url, options).await.unwrap();
    let mut spawn = TestServer::builder()
        .apps(apps())
        .store(store)
        .timeout(HANG);
    if let Some(redis) = redis {
        spawn = spawn.redis(redis.limiter().await);
    }
    spawn.start().await
}

/// Two instances on the services' database and Redis.
async fn pair(s: &Services) -> (Instance, Instance) {
    let url = s.db.url();
    let redis = Some(&s.redis);
    (instance(&url, redis).await, instance(&url, redis).await)
}

/// The hang detector: a request not answered within this fails the test. Far above every
/// bound the server promises (a few seconds), so only a request that waits without bound,
/// never a slow machine, trips it.
const HANG: Duration = Duration::from_secs(30);

/// Call an API as the app's admin; every answer must be HTTP 200 with the envelope.
async fn call(api: &Caller, app: u32, path: &str, body: Value) -> Value {
    let reply = api.call_app(app, path, &body).await;
    assert_eq!(reply.status, 200, "never a bare HTTP error");
    reply.json
}

fn code(v: &Value) -> u64 {
    v["ErrorCode"].as_u64().unwrap()
}

async fn import(api: &Caller, app: u32, id: &str) -> Value {
    call(api, app, IMPORT, json!({ "UserID": id })).await
}

/// A batch call naming `ids` as `{"UserID": ...}` items under `key`; its `ResultItem`s.
async fn batch(api: &Caller, app: u32, path: &str, key: &str, ids: &[String]) -> Vec<Value> {
    let items: Vec<Value> = ids.iter().map(|i| json!({ "UserID": i })).collect();
    let v = call(api, app, path, json!({ key: items })).await;
    assert_eq!(code(&v), 0, "{v}");
    v["ResultItem"].as_array().unwrap().clone()
}

async fn check(api: &Caller, app: u32, ids: &[String]) -> Vec<bool> {
    batch(api, app, CHECK, "CheckItem", ids)
        .await
        .iter()
        .map(|r| r["AccountStatus"] == "Imported")
        .collect()
}

async fn delete(api: &Caller, app: u32, ids: &[String]) -> Vec<u64> {
    batch(api, app, DELETE, "DeleteItem", ids)
        .await
        .iter()
        .map(|r| r["ResultCode"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_acknowledged_by_one_instance_are_seen_by_the_other() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    for i in 0..20 {
        let (w, r) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let id = format!("ryw{i}");
        assert_eq!(code(&import(w, OPEN, &id).await), 0);
        assert_eq!(check(r, OPEN, std::slice::from_ref(&id)).await, vec![true]);
        assert_eq!(delete(r, OPEN, std::slice::from_ref(&id)).await, vec![0]);
        assert_eq!(check(w, OPEN, &[id]).await, vec![false]);
    }
    let batch: Vec<String> = (0..100).map(|i| format!("batch{i}")).collect();
    let v = call(&b, OPEN, MULTI, json!({ "Accounts": batch })).await;
    assert_eq!(v["FailAccounts"], json!([]));
    assert!(check(&a, OPEN, &batch).await.iter().all(|x| *x));
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
            let api = me.caller();
            let mut tally = Tally::default();
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
                        now: now(),
                    };
                    let out = me.store.import(OPEN, items, policy).await.unwrap();
                    for (n, o) in batch.iter().zip(out) {
                        if o == ImportOutcome::Created {
                            tally.created(n);
                        }
                    }
                } else {
                    let codes = delete(&api, OPEN, &batch).await;
                    for (n, c) in batch.iter().zip(codes) {
                        match c {
                            0 => tally.deleted(n),
                            70107 => {}
                            other => panic!("unexpected ResultCode {other}"),
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for t in tasks {
        tally.add(t.await.unwrap());
    }
    let exists = check(&instances[1], OPEN, &names).await;
    let live = tally.assert_adds_up(&names, &exists);
    eprintln!(
        "{} creates, {} deletes, {live} accounts at the end",
        tally.creates(),
        tally.deletes()
    );
    assert!(
        tally.deletes() > 20,
        "too little contention to prove anything"
    );
    assert_eq!(rows_and_count(&s.db, OPEN).await, (live, live));
    let instances = Arc::try_unwrap(instances).ok().unwrap();
    let [a, b] = instances;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_accounts_and_tombstones_hold_across_instances() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let callers = Arc::new([a.caller(), b.caller()]);
    let mut tasks = Vec::new();
    for i in 0..100usize {
        let callers = callers.clone();
        tasks.push(tokio::spawn(async move {
            code(&import(&callers[i % 2].fresh(), CAPPED, &format!("cap{i}")).await)
        }));
    }
    let mut codes = HashMap::new();
    for t in tasks {
        *codes.entry(t.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(codes, HashMap::from([(0, 30), (70398, 70)]));
    assert_eq!(a.store.account_count(CAPPED).await.unwrap(), MAX);

    assert_eq!(code(&import(&a, PRO, "gone").await), 0);
    assert_eq!(delete(&b, PRO, &["gone".into()]).await, vec![0]);
    for inst in [&a, &b] {
        assert_eq!(code(&import(inst, PRO, "gone").await), 70399);
    }
    let v = call(&b, PRO, MULTI, json!({ "Accounts": ["gone", "fresh"] })).await;
    assert_eq!(v["FailAccounts"], json!(["gone"]));
    a.shutdown().await;
    b.shutdown().await;
}

/// `app`'s accounts as the database holds them: the rows, and the count `app_stats` keeps.
async fn rows_and_count(db: &TestDatabase, app: u32) -> (i64, i64) {
    let row = db
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT (SELECT count(*) FROM accounts WHERE sdkappid = $1),
                    (SELECT accounts FROM app_stats WHERE sdkappid = $1)",
            &[&i64::from(app)],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Once the database is back, each instance must import again within `attempts` polls, by
/// itself; meanwhile every answer is 0 or 70500.
async fn both_serve_again(instances: [&Instance; 2], attempts: usize) {
    for inst in instances {
        let back = heals(attempts, || async {
            let v = import(inst, OPEN, "probe").await;
            assert!(code(&v) == 0 || code(&v) == 70500, "{v}");
            code(&v) == 0
        })
        .await;
        assert!(
            back,
            "the database is back but an instance still answers 70500"
        );
    }
}

async fn multi_import(api: &Caller, app: u32, ids: &[String]) -> Value {
    call(api, app, MULTI, json!({ "Accounts": ids })).await
}

/// Whether each of `ids` exists, asked through `api` 100 at a time.
async fn exists(api: &Caller, app: u32, ids: &[String]) -> Vec<bool> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(100) {
        out.extend(check(api, app, chunk).await);
    }
    out
}

/// Imports and deletes of the same UserIDs race through both instances, all over HTTP, and
/// every per-item answer must agree with the final state.
///
/// Each raced UserID starts absent and gets exactly one import (through either instance) and
/// two deletes (one through each instance), the three in flight at once. Whatever order the
/// service applied them in, the answers are fixed by it: the import before both deletes, or
/// between them, means exactly one delete answers 0 and the account is gone; the import after
/// both means both answer 70107 and the account exists. Two 0s would be a delete counted
/// twice; a 0 with the account still there, or no 0 with it gone, a lost write.
///
/// Alongside, other UserIDs are imported through both instances at once (one batch, one
/// single import each): each must exist once, with the profile of one of the two imports.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_imports_and_deletes_over_http_agree_with_the_final_state() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let callers = Arc::new([a.caller(), b.caller()]);
    let raced: Arc<Vec<String>> = Arc::new((0..300).map(|i| format!("race{i}")).collect());
    let twice: Arc<Vec<String>> = Arc::new((0..60).map(|i| format!("twice{i}")).collect());

    // Imports of `raced`: chunks of 10 from the back, chunk k through instance k % 2, by four
    // tasks. The deletes start from the front, so the orders meet in the middle: UserIDs at the
    // back tend to be imported first, those at the front deleted first, and all three orders
    // occur.
    let mut importers = Vec::new();
    for task in 0..4usize {
        let (callers, raced) = (callers.clone(), raced.clone());
        importers.push(tokio::spawn(async move {
            let callers = [callers[0].fresh(), callers[1].fresh()];
            let chunks = raced.rchunks(10).enumerate();
            for (k, chunk) in chunks.filter(|(k, _)| k % 4 == task) {
                let v = multi_import(&callers[k % 2], OPEN, chunk).await;
                assert_eq!((code(&v), &v["FailAccounts"]), (0, &json!([])), "{v}");
            }
        }));
    }
    // Deletes of `raced`: every UserID once through each instance, from the front, in
    // batches of different sizes (7 through instance 0, 9 through instance 1), each instance
    // by two tasks.
    let mut deleters = Vec::new();
    for task in 0..4usize {
        let (callers, raced) = (callers.clone(), raced.clone());
        deleters.push(tokio::spawn(async move {
            let callers = [callers[0].fresh(), callers[1].fresh()];
            let instance = task / 2;
            let size = if instance == 0 { 7 } else { 9 };
            let mut answers = Vec::new();
            for (k, chunk) in raced.chunks(size).enumerate() {
                if k % 2 != task % 2 {
                    continue;
                }
                let codes = delete(&callers[instance], OPEN, chunk).await;
                answers.extend(chunk.iter().cloned().zip(codes));
            }
            answers
        }));
    }
    // `twice`: a batch through instance 0 and single imports through instance 1, at once.
    let both = {
        let (callers, twice) = (callers.clone(), twice.clone());
        tokio::spawn(async move {
            let callers = [callers[0].fresh(), callers[1].fresh()];
            let list: Vec<Value> = twice
                .iter()
                .map(|id| json!({ "UserID": id, "Nick": "via-a" }))
                .collect();
            let v = call(&callers[0], OPEN, MULTI, json!({ "AccountList": list })).await;
            assert_eq!((code(&v), &v["FailAccounts"]), (0, &json!([])), "{v}");
        })
    };
    let singles = {
        let (callers, twice) = (callers.clone(), twice.clone());
        tokio::spawn(async move {
            let callers = [callers[0].fresh(), callers[1].fresh()];
            for id in twice.iter().rev() {
                let body = json!({ "UserID": id, "Nick": "via-b" });
                let v = call(&callers[1], OPEN, IMPORT, body).await;
                assert_eq!(code(&v), 0, "{v}");
            }
        })
    };

    for t in importers {
        t.await.unwrap();
    }
    let mut zeros: HashMap<String, usize> = HashMap::new();
    for t in deleters {
        for (id, c) in t.await.unwrap() {
            match c {
                0 => *zeros.entry(id).or_default() += 1,
                70107 => {}
                other => panic!("{id}: unexpected ResultCode {other}"),
            }
        }
    }
    both.await.unwrap();
    singles.await.unwrap();

    let seen_a = exists(&a, OPEN, &raced).await;
    let seen_b = exists(&b, OPEN, &raced).await;
    assert_eq!(seen_a, seen_b, "the instances disagree");
    let mut present = 0i64;
    for (id, there) in raced.iter().zip(&seen_a) {
        let z = zeros.get(id).copied().unwrap_or(0);
        assert!(z <= 1, "{id}: deleted {z} times after one import");
        assert_eq!(
            z == 0,
            *there,
            "{id}: {z} deletes answered 0 but the account {}",
            if *there { "exists" } else { "is gone" }
        );
        present += i64::from(*there);
    }
    eprintln!(
        "{} raced UserIDs: {present} imported last (both deletes 70107), {} deleted by one of two",
        raced.len(),
        raced.len() as i64 - present
    );
    assert!(exists(&b, OPEN, &twice).await.iter().all(|x| *x));

    // The stored rows, their count and the profiles agree with what the answers said.
    let expected = present + twice.len() as i64;
    assert_eq!(rows_and_count(&s.db, OPEN).await, (expected, expected));
    let nicks =
        s.db.client()
            .await
            .unwrap()
            .query(
                "SELECT convert_from(nick, 'UTF8') FROM accounts
             WHERE sdkappid = $1 AND user_id LIKE 'twice%'",
                &[&i64::from(OPEN)],
            )
            .await
            .unwrap();
    assert_eq!(nicks.len(), twice.len());
    for r in nicks {
        let nick: String = r.get(0);
        assert!(nick == "via-a" || nick == "via-b", "{nick:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// On a `pro` app a delete leaves a tombstone (70399) that every instance honours, also when
/// re-imports race the delete through the other instance: an import that ran first only
/// updated the account the delete then removed, one that ran after is refused; either way the
/// account is gone at the end, and no instance lets it back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tombstones_hold_when_reimports_race_deletes_across_instances() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let ids: Vec<String> = (0..60).map(|i| format!("pro{i}")).collect();
    let v = multi_import(&a, PRO, &ids).await;
    assert_eq!((code(&v), &v["FailAccounts"]), (0, &json!([])), "{v}");

    let deleting = {
        let (api, ids) = (a.caller(), ids.clone());
        tokio::spawn(async move {
            for chunk in ids.chunks(10) {
                assert!(delete(&api, PRO, chunk).await.iter().all(|c| *c == 0));
            }
        })
    };
    let batches = {
        let (api, ids) = (b.caller(), ids.clone());
        tokio::spawn(async move {
            let mut refused = 0;
            for chunk in ids.chunks(10) {
                let v = multi_import(&api, PRO, chunk).await;
                assert_eq!(code(&v), 0, "{v}");
                refused += v["FailAccounts"].as_array().unwrap().len();
            }
            refused
        })
    };
    let singles = {
        let (api, ids) = (b.caller(), ids.clone());
        tokio::spawn(async move {
            let mut refused = 0;
            for id in ids.iter().rev() {
                match code(&import(&api, PRO, id).await) {
                    0 => {}
                    70399 => refused += 1,
                    other => panic!("{id}: unexpected {other}"),
                }
            }
            refused
        })
    };
    deleting.await.unwrap();
    let refused = batches.await.unwrap() + singles.await.unwrap();
    eprintln!(
        "{refused} of {} racing re-imports refused with 70399",
        2 * ids.len()
    );

    for inst in [&a, &b] {
        assert!(exists(inst, PRO, &ids).await.iter().all(|x| !*x));
        let v = multi_import(inst, PRO, &ids).await;
        assert_eq!(v["FailAccounts"], json!(ids), "{v}");
        assert_eq!(code(&import(inst, PRO, &ids[0]).await), 70399);
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// The database goes down in the middle of traffic on two instances, the way a restart looks
/// to a client: every connection is killed and new ones are refused by the server itself
/// (only for this test's database, so that tests running beside it are not touched). Every
/// request is answered — HTTP 200 with the envelope, `ErrorCode` 0 or 70500, never a hang or a
/// 5xx — neither instance stops, both serve again by themselves once the database is back, and
/// every import and delete acknowledged before, during or after the outage holds at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_restart_mid_traffic_answers_70500_and_loses_nothing() {
    use std::sync::atomic::AtomicUsize;
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut workers = Vec::new();
    for w in 0..8usize {
        let instance = w % 2;
        let api = [&a, &b][instance].caller();
        let (stop, acks, failures) = (stop.clone(), acks.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            // What this worker was told is stored, and what it was told is deleted.
            let mut stored: Vec<String> = Vec::new();
            let mut deleted: Vec<String> = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let (v, acked): (Value, Vec<String>) = match n % 4 {
                    // Every fourth call deletes an account this worker imported.
                    0 if !stored.is_empty() => {
                        let id = stored.swap_remove(n % stored.len());
                        let v = call(
                            &api,
                            OPEN,
                            DELETE,
                            json!({ "DeleteItem": [{ "UserID": id }] }),
                        )
                        .await;
                        if code(&v) == 0 {
                            assert_eq!(v["ResultItem"][0]["ResultCode"], 0, "{v}");
                            deleted.push(id);
                        }
                        // Not acknowledged: it may or may not have been deleted; not checked.
                        (v, Vec::new())
                    }
                    1 => {
                        let ids: Vec<String> = (0..3).map(|k| format!("r{w}-{n}-{k}")).collect();
                        let v = multi_import(&api, OPEN, &ids).await;
                        if code(&v) == 0 {
                            assert_eq!(v["FailAccounts"], json!([]), "{v}");
                        }
                        (v, ids)
                    }
                    _ => {
                        let id = format!("r{w}-{n}");
                        (import(&api, OPEN, &id).await, vec![id])
                    }
                };
                match code(&v) {
                    0 => {
                        acks.fetch_add(1, Ordering::Relaxed);
                        stored.extend(acked);
                    }
                    70500 => {
                        assert_eq!(v["ActionStatus"], "FAIL", "{v}");
                        assert!(!v["ErrorInfo"].as_str().unwrap_or("").is_empty(), "{v}");
                        failures[instance].fetch_add(1, Ordering::Relaxed);
                        // Back off as a client would, without hammering a database that is away.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    _ => panic!("only 0 or 70500 expected: {v}"),
                }
            }
            (stored, deleted)
        }));
    }
    let acked = || acks.load(Ordering::Relaxed);
    wait_until("no traffic before the outage", || acked() >= 80).await;

    let down_from = [0, 1].map(|i| failures[i].load(Ordering::Relaxed));
    let mut killed = s.db.take_down().await.unwrap();
    wait_until("the outage was not felt by both instances", || {
        (0..2).all(|i| failures[i].load(Ordering::Relaxed) >= down_from[i] + 10)
    })
    .await;
    // Still down: anything that slipped in meanwhile goes too.
    killed += s.db.terminate_connections().await.unwrap();
    s.db.bring_up().await.unwrap();

    both_serve_again([&a, &b], 300).await;
    let target = acked() + 80;
    wait_until("no traffic after the outage", || acked() >= target).await;
    stop.store(true, Ordering::Relaxed);

    let (mut stored, mut deleted) = (Vec::new(), Vec::new());
    for w in workers {
        let (st, de) = w.await.unwrap();
        stored.extend(st);
        deleted.extend(de);
    }
    for inst in [&a, &b] {
        assert!(inst.is_running(), "an instance stopped");
    }
    let failed: usize = (0..2).map(|i| failures[i].load(Ordering::Relaxed)).sum();
    eprintln!(
        "{killed} connections killed; {} calls acknowledged, {failed} answered 70500; \
         {} accounts acknowledged as stored and {} as deleted",
        acks.load(Ordering::Relaxed),
        stored.len(),
        deleted.len()
    );
    assert!(killed > 0);
    for inst in [&a, &b] {
        let seen = exists(inst, OPEN, &stored).await;
        let lost: Vec<&String> = stored
            .iter()
            .zip(&seen)
            .filter(|(_, s)| !**s)
            .map(|(id, _)| id)
            .collect();
        assert!(lost.is_empty(), "acknowledged imports lost: {lost:?}");
        let seen = exists(inst, OPEN, &deleted).await;
        let back: Vec<&String> = deleted
            .iter()
            .zip(&seen)
            .filter(|(_, s)| **s)
            .map(|(id, _)| id)
            .collect();
        assert!(back.is_empty(), "acknowledged deletes lost: {back:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
}

/// Poll `done` every 100 ms until it holds, at most 300 times; fail the test with `what` if
/// it never does.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    assert!(heals(300, || std::future::ready(done())).await, "{what}");
}

/// How long the rate-limit tests keep both instances busy.
const WINDOW: Duration = Duration::from_secs(2);

/// What a [`flood`] got through each instance.
struct Flood {
    /// Calls allowed, per instance.
    allowed: [usize; 2],
    /// Calls refused with 60007, both instances together.
    refused: usize,
    /// From before the first call to the answer of the last: the span the limit applied to.
    spanned: Duration,
}

impl Flood {
    fn allowed(&self) -> usize {
        self.allowed[0] + self.allowed[1]
    }
}

/// Keep both instances busy with `account_check` calls to the limited app for [`WINDOW`],
/// eight clients on each, far more calls per second than the limit.
async fn flood(instances: [&Instance; 2]) -> Flood {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let api = instances[i % 2].caller();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut allowed, mut refused) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let body = json!({ "CheckItem": [{ "UserID": "x" }] });
                let v = call(&api, LIMITED, CHECK, body).await;
                match code(&v) {
                    0 => allowed += 1,
                    60007 => {
                        refused += 1;
                        // Still many times the limit, without starving the two cores.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    _ => panic!("only 0 or 60007 expected: {v}"),
                }
            }
            (i % 2, allowed, refused)
        }));
    }
    tokio::time::sleep(WINDOW).await;
    stop.store(true, Ordering::Relaxed);
    let mut flood = Flood {
        allowed: [0, 0],
        refused: 0,
        spanned: Duration::ZERO,
    };
    for t in tasks {
        let (instance, allowed, refused) = t.await.unwrap();
        flood.allowed[instance] += allowed;
        flood.refused += refused;
    }
    flood.spanned = started.elapsed();
    flood
}

/// The most one app-wide bucket can grant over `spanned`: it starts full ([`LIMIT`] calls)
/// and refills at [`LIMIT`] per second; one more for rounding. A count derived from the
/// measured span, so a slow machine loosens it instead of failing it.
fn one_bucket_at_most(spanned: Duration) -> usize {
    LIMIT as usize + (spanned.as_secs_f64() * f64::from(LIMIT)).ceil() as usize + 1
}

/// Two instances sharing Redis grant the app its documented rate in total: at most what one
/// bucket allows over the window (per-instance buckets would grant about twice that), and at
/// least half of it (the app is not starved by the sharing).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_rate_limit_for_all_instances() {
    let Some(s) = services().await else { return };
    let (a, b) = pair(&s).await;
    let f = flood([&a, &b]).await;
    let ceiling = one_bucket_at_most(f.spanned);
    let floor = LIMIT as usize + (WINDOW.as_secs_f64() * f64::from(LIMIT) / 2.0) as usize;
    eprintln!(
        "shared limit {LIMIT}/s over {:?}: {:?} allowed (at most {ceiling}), {} refused",
        f.spanned, f.allowed, f.refused
    );
    assert!(f.refused > 0, "the flood never reached the limit");
    assert!(
        f.allowed() <= ceiling,
        "two instances granted {} calls, more than one app-wide limit allows ({ceiling})",
        f.allowed()
    );
    assert!(
        f.allowed() >= floor,
        "the app got {} calls, less than its documented rate ({floor})",
        f.allowed()
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// The fallback the README states: without Redis each instance has its own buckets, so two
/// instances together grant more than one app-wide bucket could, each within its own limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_redis_limits_are_per_instance() {
    let Some(s) = services().await else { return };
    let url = s.db.url();
    let a = instance(&url, None).await;
    let b = instance(&url, None).await;
    let f = flood([&a, &b]).await;
    let ceiling = one_bucket_at_most(f.spanned);
    eprintln!(
        "per-instance limit {LIMIT}/s over {:?}: {:?} allowed (one bucket: at most {ceiling})",
        f.spanned, f.allowed
    );
    assert!(f.refused > 0, "the flood never reached the limit");
    assert!(f.allowed() > ceiling, "{:?}", f.allowed);
    assert!(f.allowed.iter().all(|n| *n <= ceiling), "{:?}", f.allowed);
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

/// Poll `healed` every 100 ms, at most `attempts` times: whether the service came back.
/// Counted in attempts, not timed: a service that heals answers within a few of them.
async fn heals<F, Fut>(attempts: usize, mut healed: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..attempts {
        if healed().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_outage_fails_closed_with_70500_and_heals() {
    let Some(s) = services().await else { return };
    let proxy = Proxy::start(s.redis.addr()).await;
    // The test's Redis, reached through the proxy.
    let via = TestRedis {
        url: format!("redis://{}", proxy.addr),
        ..s.redis.clone()
    };
    let a = instance(&s.db.url(), Some(&via)).await;
    let api = &a.caller();
    let probe = move || async move {
        let started = Instant::now();
        let v = call(
            api,
            LIMITED,
            CHECK,
            json!({ "CheckItem": [{ "UserID": "x" }] }),
        )
        .await;
        (code(&v), started.elapsed(), v)
    };
    assert_eq!(probe().await.0, 0);
    for mode in [Mode::Refuse, Mode::Blackhole] {
        proxy.set(mode);
        for _ in 0..3 {
            // Answered at all (the client's HANG bound), and answered 70500.
            let (c, took, v) = probe().await;
            assert_eq!(c, 70500, "{mode:?}: {v}");
            eprintln!("Redis {mode:?}: 70500 after {took:?}");
        }
        proxy.set(Mode::Up);
        let mut attempts = 0;
        let back = heals(150, || {
            attempts += 1;
            async move {
                let (c, _, v) = probe().await;
                assert!(c == 0 || c == 70500, "{v}");
                c == 0
            }
        })
        .await;
        assert!(back, "Redis is back but the instance still answers 70500");
        eprintln!("Redis back: served again at attempt {attempts}");
    }
    a.shutdown().await;
}

/// Traffic on two instances while the database's connections are killed, then while it is
/// unreachable behind a partition (only timeouts can help), then while it refuses connections:
/// every request is answered, 0 or 70500, never left hanging; service resumes without
/// intervention, and every acknowledged import is there afterwards.
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
    let redis = Some(&s.redis);
    let a = instance(&url, redis).await;
    let b = instance(&url, redis).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8usize {
        let api = if w % 2 == 0 { a.caller() } else { b.caller() };
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut failed = 0usize;
            let mut slowest = Duration::ZERO;
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let id = format!("w{w}-{n}");
                n += 1;
                let started = Instant::now();
                let v = import(&api, OPEN, &id).await;
                let took = started.elapsed();
                // Reported, not asserted: the client's HANG bound catches a hang.
                slowest = slowest.max(took);
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
    both_serve_again([&a, &b], 200).await;
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
            let seen = check(inst, OPEN, chunk).await;
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
