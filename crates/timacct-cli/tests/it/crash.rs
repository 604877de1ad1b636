//! Crash safety of the real `timacct serve` binary on SQLite.
//!
//! - The crash loop: concurrent importers and deleters, `kill -9` at a random moment, restart,
//!   several rounds. Every acknowledged write must be there; a batch whose answer never came
//!   may be applied or not, but each of its items wholly (an import with its Nick, a delete).
//! - Torn writes: a write-ahead log cut mid-frame or damaged in its last frame is recovered
//!   (every earlier commit kept, and the log says what was dropped); a log damaged before
//!   later commits, and a main database file that is garbage, empty or truncated, make the
//!   server refuse to start with a message naming the file, leaving the files untouched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use timacct_store::{AccountStore, SqliteStore, UserId};

use crate::common::api::{imported, post, sig, url, ADMIN};
use crate::common::{serve_command, try_spawn, write_config, Server, NO_RATE_LIMITS};

const APP: u32 = 1400000888;
const KEY: &str = "crash-test-key";

/// Start the server on `data_dir`, its log (at `info`) going to `log`. `Err` with the exit
/// status and the log if it exits instead of listening.
fn try_start(data_dir: &Path, config: &Path, log: &Path) -> Result<Server, (i32, String)> {
    let mut cmd = serve_command();
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::from(std::fs::File::create(log).unwrap()));
    try_spawn(cmd).map_err(|code| (code, std::fs::read_to_string(log).unwrap_or_default()))
}

fn start(data_dir: &Path, config: &Path, log: &Path) -> Server {
    try_start(data_dir, config, log)
        .unwrap_or_else(|(code, text)| panic!("server exited ({code}) instead of serving: {text}"))
}

/// Every account's Nick (`None`: absent), read from the database file itself while no server
/// runs; opening it is also a recovery after the crash.
async fn stored(db: &Path, ids: &[String]) -> (Vec<Option<String>>, u64) {
    let store = SqliteStore::open(db).expect("the database reopens after kill -9");
    let mut out = Vec::new();
    for id in ids {
        let account = store
            .account(APP, UserId::parse(id.as_str()).unwrap())
            .await
            .unwrap();
        out.push(account.map(|a| a.nick));
    }
    let count = store.account_count(APP).await.unwrap();
    store.close();
    (out, count)
}

/// A small deterministic generator, seeded per run (printed, and settable with
/// `TIMACCT_CRASH_SEED` to replay a failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One batch a worker sent, and what came back.
#[derive(Debug, Clone)]
struct Op {
    ids: Vec<String>,
    /// `Some(nick)`: an import setting this Nick; `None`: a delete.
    import: Option<String>,
    /// The answer, if one came back.
    answer: Option<Value>,
}

const WORKERS: usize = 4;
const IDS_PER_WORKER: usize = 40;
const ROUNDS: usize = 5;

/// One worker: batches of its own ids (so that per id the operations are ordered), until
/// told to stop or the server dies under a request.
async fn worker(
    base: String,
    usersig: String,
    ids: Vec<String>,
    round: usize,
    w: usize,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Op> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut rng = Rng(seed | 1);
    let mut log = Vec::new();
    for seq in 0..100_000 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let n = 1 + rng.below(20) as usize;
        let mut pool = ids.clone();
        let mut batch = Vec::new();
        for _ in 0..n {
            let i = rng.below(pool.len() as u64) as usize;
            batch.push(pool.swap_remove(i));
        }
        let (api, body, import) = if rng.below(5) < 3 {
            let nick = format!("r{round}-w{w}-s{seq}");
            let list: Vec<Value> = batch
                .iter()
                .map(|id| json!({ "UserID": id, "Nick": nick }))
                .collect();
            (
                "multiaccount_import",
                json!({ "AccountList": list }),
                Some(nick),
            )
        } else {
            let items: Vec<Value> = batch.iter().map(|id| json!({ "UserID": id })).collect();
            ("account_delete", json!({ "DeleteItem": items }), None)
        };
        let answer = post(&client, &url(&base, APP, &usersig, api, 7), &body)
            .await
            .ok();
        let died = answer.is_none();
        log.push(Op {
            ids: batch,
            import,
            answer,
        });
        if died {
            break;
        }
    }
    log
}

/// Apply a worker's log to the model. Acknowledged operations are certain (and each answer
/// must agree with the model: a delete reports 70107 exactly for ids already absent); the
/// one without an answer leaves each of its ids either as it was or as the operation would
/// make it. Returns the ids with two possible states.
fn apply(
    model: &mut HashMap<String, Option<String>>,
    log: &[Op],
) -> HashMap<String, [Option<String>; 2]> {
    let mut open = HashMap::new();
    for op in log {
        match &op.answer {
            Some(v) if v["ErrorCode"] != 0 => {
                // A whole-request failure changes nothing.
                assert!(v["ErrorCode"].as_u64().is_some_and(|c| c != 0), "{v}");
            }
            Some(v) => match &op.import {
                Some(nick) => {
                    assert_eq!(v["FailAccounts"], json!([]), "{v}");
                    for id in &op.ids {
                        model.insert(id.clone(), Some(nick.clone()));
                    }
                }
                None => {
                    let items = v["ResultItem"].as_array().expect("ResultItem");
                    assert_eq!(items.len(), op.ids.len(), "{v}");
                    for (item, id) in items.iter().zip(&op.ids) {
                        assert_eq!(item["UserID"], json!(id), "{v}");
                        let present = model.get(id).is_some_and(Option::is_some);
                        let expected = if present { 0 } else { 70107 };
                        assert_eq!(item["ResultCode"], json!(expected), "{id}: {v}");
                        model.insert(id.clone(), None);
                    }
                }
            },
            None => {
                for id in &op.ids {
                    let before = model.get(id).cloned().flatten();
                    let after = op.import.clone();
                    open.insert(id.clone(), [before, after]);
                }
            }
        }
    }
    open
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_imports_and_deletes_loses_nothing_acknowledged() {
    let seed = std::env::var("TIMACCT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("crash loop seed {seed} (TIMACCT_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), APP, KEY, NO_RATE_LIMITS);
    let data = dir.path().join("data");
    let db = data.join("timacct.db");
    let log = dir.path().join("server.log");
    let usersig = sig(APP, KEY, ADMIN);
    let owned: Vec<Vec<String>> = (0..WORKERS)
        .map(|w| {
            (0..IDS_PER_WORKER)
                .map(|i| format!("w{w}-{i:02}"))
                .collect()
        })
        .collect();
    let all: Vec<String> = owned.iter().flatten().cloned().collect();
    let mut model: HashMap<String, Option<String>> =
        all.iter().map(|id| (id.clone(), None)).collect();
    let (mut acknowledged, mut unanswered) = (0usize, 0usize);
    for round in 0..ROUNDS {
        let server = start(&data, &config, &log);
        // The restarted server agrees with the model (its in-memory index included).
        let seen = imported(&server.base, APP, &usersig, &all).await;
        for (id, seen) in all.iter().zip(&seen) {
            assert_eq!(*seen, model[id].is_some(), "round {round}: {id}");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = owned
            .iter()
            .enumerate()
            .map(|(w, ids)| {
                tokio::spawn(worker(
                    server.base.clone(),
                    usersig.clone(),
                    ids.clone(),
                    round,
                    w,
                    rng.next(),
                    stop.clone(),
                ))
            })
            .collect();
        // Kill at a random moment: early, mid-batch, or after many commits.
        tokio::time::sleep(Duration::from_millis(20 + rng.below(1500))).await;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let mut open = HashMap::new();
        for task in tasks {
            let ops = task.await.unwrap();
            acknowledged += ops.iter().filter(|op| op.answer.is_some()).count();
            unanswered += ops.iter().filter(|op| op.answer.is_none()).count();
            open.extend(apply(&mut model, &ops));
        }
        // What the file holds after the crash, read directly.
        let (nicks, count) = stored(&db, &all).await;
        for (id, actual) in all.iter().zip(nicks) {
            match open.get(id) {
                Some(candidates) => {
                    assert!(
                        candidates.contains(&actual),
                        "round {round}: {id} is {actual:?}; an unanswered batch allows only {candidates:?}"
                    );
                }
                None => assert_eq!(
                    actual, model[id],
                    "round {round}: {id} differs from what was acknowledged"
                ),
            }
            model.insert(id.clone(), actual);
        }
        let present = model.values().filter(|v| v.is_some()).count() as u64;
        assert_eq!(count, present, "round {round}: account count");
        eprintln!(
            "round {round}: {present} accounts; {} ids left open by an unanswered batch",
            open.len()
        );
    }
    let server = start(&data, &config, &log);
    let seen = imported(&server.base, APP, &usersig, &all).await;
    for (id, seen) in all.iter().zip(&seen) {
        assert_eq!(*seen, model[id].is_some(), "after the last round: {id}");
    }
    assert!(acknowledged > 0, "no batch was acknowledged");
    eprintln!("{ROUNDS} rounds: {acknowledged} batches acknowledged, {unanswered} unanswered");
}

// ---------------------------------------------------------------------------------------
// Torn and damaged files
// ---------------------------------------------------------------------------------------

/// A data directory left by `kill -9` after three acknowledged batches (A, B, C: 50 accounts
/// each, in that order, each its own transaction): they are all in the write-ahead log.
async fn crashed_after_three_batches(root: &Path) -> (PathBuf, PathBuf, [Vec<String>; 3]) {
    let config = write_config(root, APP, KEY, NO_RATE_LIMITS);
    let data = root.join("data");
    let server = start(&data, &config, &root.join("first.log"));
    let usersig = sig(APP, KEY, ADMIN);
    let client = reqwest::Client::new();
    let batches =
        ["a", "b", "c"].map(|b| (0..50).map(|i| format!("{b}-{i:02}")).collect::<Vec<_>>());
    for batch in &batches {
        let v = post(
            &client,
            &url(&server.base, APP, &usersig, "multiaccount_import", 7),
            &json!({ "Accounts": batch }),
        )
        .await
        .unwrap();
        assert_eq!(v["ErrorCode"], 0, "{v}");
        assert_eq!(v["FailAccounts"], json!([]), "{v}");
    }
    server.kill9();
    let wal = data.join("timacct.db-wal");
    let len = std::fs::metadata(&wal).expect("a WAL after kill -9").len();
    assert!(
        len > 32 + 3 * 4096,
        "the commits are in the WAL ({len} bytes)"
    );
    (data, config, batches)
}

async fn restart_and_check_batches(
    root: &Path,
    data: &Path,
    config: &Path,
    batches: &[Vec<String>; 3],
) -> (Vec<bool>, String) {
    let log = root.join("second.log");
    let server = start(data, config, &log);
    let [a, b, c] = batches;
    let usersig = sig(APP, KEY, ADMIN);
    let seen_a = imported(&server.base, APP, &usersig, a).await;
    let seen_b = imported(&server.base, APP, &usersig, b).await;
    let seen_c = imported(&server.base, APP, &usersig, c).await;
    assert!(
        seen_a.iter().all(|s| *s),
        "batch A, committed before the damage, is kept"
    );
    assert!(
        seen_b.iter().all(|s| *s),
        "batch B, committed before the damage, is kept"
    );
    assert!(
        seen_c.iter().all(|s| *s) || seen_c.iter().all(|s| !*s),
        "batch C is all or nothing: {seen_c:?}"
    );
    drop(server);
    (seen_c, std::fs::read_to_string(&log).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_cut_mid_frame_keeps_every_earlier_commit_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config, batches) = crashed_after_three_batches(dir.path()).await;
    let wal = data.join("timacct.db-wal");
    let len = std::fs::metadata(&wal).unwrap().len();
    // Cut the file in the middle of its last frame (C's commit frame).
    std::fs::OpenOptions::new()
        .write(true)
        .open(&wal)
        .unwrap()
        .set_len(len - 1000)
        .unwrap();
    let (seen_c, log) = restart_and_check_batches(dir.path(), &data, &config, &batches).await;
    // C's commit frame is torn, so C is gone: never silently.
    assert!(seen_c.iter().all(|s| !*s), "C's commit was torn");
    assert!(
        log.contains("recovered the write-ahead log") && log.contains("partial_frame=true"),
        "the log says what recovery did: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_damaged_in_its_last_frame_drops_only_the_last_commit_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config, batches) = crashed_after_three_batches(dir.path()).await;
    let wal = data.join("timacct.db-wal");
    let mut bytes = std::fs::read(&wal).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len - 64..] {
        *b ^= 0x5a;
    }
    std::fs::write(&wal, &bytes).unwrap();
    let (seen_c, log) = restart_and_check_batches(dir.path(), &data, &config, &batches).await;
    assert!(seen_c.iter().all(|s| !*s), "C's commit frame was damaged");
    assert!(
        log.contains("its last commit is torn or damaged and was dropped"),
        "the log says the last transaction is lost: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wal_damaged_before_later_commits_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config, _) = crashed_after_three_batches(dir.path()).await;
    let wal = data.join("timacct.db-wal");
    let db = data.join("timacct.db");
    let mut bytes = std::fs::read(&wal).unwrap();
    // A byte in the first frame's page: every commit after it would be dropped.
    bytes[32 + 24 + 100] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let db_before = std::fs::read(&db).unwrap();
    let (code, log) = match try_start(&data, &config, &dir.path().join("second.log")) {
        Ok(_) => panic!("the server started on a damaged write-ahead log"),
        Err(refused) => refused,
    };
    assert_ne!(code, 0);
    assert!(
        log.contains(&wal.display().to_string()) && log.contains("damaged"),
        "the message names the damaged file: {log}"
    );
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        bytes,
        "the WAL is left as it was"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        db_before,
        "the database is left as it was"
    );
    // The WAL header damaged: SQLite would ignore the whole log. Refused too.
    bytes[32 + 24 + 100] ^= 0xff;
    bytes[12] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();
    let (code, log) = match try_start(&data, &config, &dir.path().join("third.log")) {
        Ok(_) => panic!("the server started on a WAL with a damaged header"),
        Err(refused) => refused,
    };
    assert_ne!(code, 0);
    assert!(log.contains(&wal.display().to_string()), "{log}");
    assert_eq!(std::fs::read(&wal).unwrap(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_main_database_file_is_refused_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), APP, KEY, NO_RATE_LIMITS);
    let data = dir.path().join("data");
    let db = data.join("timacct.db");
    // A database with data in the main file: stopped cleanly, so the WAL is folded in.
    let mut server = start(&data, &config, &dir.path().join("first.log"));
    let usersig = sig(APP, KEY, ADMIN);
    let ids: Vec<String> = (0..100).map(|i| format!("main-{i:03}")).collect();
    let client = reqwest::Client::new();
    for chunk in ids.chunks(100) {
        let v = post(
            &client,
            &url(&server.base, APP, &usersig, "multiaccount_import", 7),
            &json!({ "Accounts": chunk }),
        )
        .await
        .unwrap();
        assert_eq!(v["ErrorCode"], 0, "{v}");
    }
    server.sigterm();
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
    drop(server);
    assert!(
        !data.join("timacct.db-wal").exists(),
        "a clean stop folds the WAL in"
    );
    let good = std::fs::read(&db).unwrap();
    assert!(good.len() >= 2 * 4096, "{} bytes", good.len());
    let page = 4096;
    let mut garbage_header = good.clone();
    for b in &mut garbage_header[..100] {
        *b = b'x';
    }
    let mut damaged_page = good.clone();
    for b in &mut damaged_page[page + 8..page + 200] {
        *b ^= 0xa5;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not a database", b"name,nick\nalice,Alice\n".repeat(500)),
        ("garbage header", garbage_header),
        ("cut mid-page", good[..good.len() - 1000].to_vec()),
        ("cut at a page boundary", good[..page].to_vec()),
        ("a damaged page", damaged_page),
    ];
    for (what, bytes) in cases {
        std::fs::write(&db, &bytes).unwrap();
        let log = dir.path().join("refused.log");
        let (code, text) = match try_start(&data, &config, &log) {
            Ok(_) => panic!("{what}: the server started"),
            Err(refused) => refused,
        };
        assert_ne!(code, 0, "{what}");
        assert!(
            text.contains(&db.display().to_string()),
            "{what}: the message names the file: {text}"
        );
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes,
            "{what}: the file is left as it was"
        );
    }
    // Restored, it serves again with every account.
    std::fs::write(&db, &good).unwrap();
    let server = start(&data, &config, &dir.path().join("last.log"));
    assert!(imported(&server.base, APP, &usersig, &ids)
        .await
        .iter()
        .all(|s| *s));
}
