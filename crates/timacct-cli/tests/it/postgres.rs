//! The README's two-instance deployment, run for real: two `timacct serve` processes with
//! different `--listen`, the same `--config`, `--database` and `--redis`.
//!
//! Runs in a fresh database (dropped at the end) under a fresh Redis key prefix. Without
//! PostgreSQL or Redis it skips with a message, unless `TIMACCT_TEST_DATABASE_URL` /
//! `TIMACCT_TEST_REDIS_URL` or `CI` is set: then it fails.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use timacct_store::postgres::TestDatabase;
use timacct_test_support::{database, services, Services};

use crate::common::api::{call, sig, ADMIN};
use crate::common::{serve_command, spawn, write_config, Server, NO_RATE_LIMITS};

const APP: u32 = 1400000888;
const KEY: &str = "two-instances-key";
/// The `account_check` limit of the app, per second, for the whole service.
const LIMIT: usize = 10;

/// Start `timacct serve` on a free port, with the shared Redis and its key prefix if given.
fn start(dir: &Path, config: &Path, database: &str, redis: Option<(&str, &str)>) -> Server {
    let mut command = serve_command();
    command
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-pool-size", "4"])
        .env("TIMACCT_DATABASE", database)
        .env_remove("TIMACCT_REDIS");
    if let Some((url, prefix)) = redis {
        command
            .args(["--redis-key-prefix", prefix])
            .env("TIMACCT_REDIS", url);
    }
    spawn(command)
}

/// The line a server printed when it started listening.
fn listening(server: &Server) -> &str {
    server.printed.last().map(String::as_str).unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_are_one_service() {
    let Some(Services { db, redis }) = services().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        APP,
        KEY,
        &format!("rate_limits = {{ account_check = {LIMIT} }}\n"),
    );
    let a = start(
        dir.path(),
        &config,
        &db.url(),
        Some((&redis.url, &redis.prefix)),
    );
    let b = start(
        dir.path(),
        &config,
        &db.url(),
        Some((&redis.url, &redis.prefix)),
    );
    assert!(
        listening(&a).contains(&format!("postgres://postgres@127.0.0.1:5432/{}", db.name()))
            || std::env::var(TestDatabase::URL_VAR).is_ok(),
        "{}",
        listening(&a)
    );
    assert!(
        listening(&a).contains("shared in redis://"),
        "{}",
        listening(&a)
    );

    let usersig = sig(APP, KEY, ADMIN);
    let http = reqwest::Client::new();
    let v = call(
        &http,
        &a.base,
        APP,
        &usersig,
        "account_import",
        json!({"UserID": "alice"}),
    )
    .await;
    assert_eq!(v["ErrorCode"], 0, "{v}");
    let v = call(
        &http,
        &b.base,
        APP,
        &usersig,
        "account_check",
        json!({"CheckItem": [{"UserID": "alice"}]}),
    )
    .await;
    assert_eq!(v["ResultItem"][0]["AccountStatus"], "Imported", "{v}");

    // One rate limit for both processes.
    tokio::time::sleep(Duration::from_millis(1100)).await; // the check above took a token
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (http, usersig) = (http.clone(), usersig.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"CheckItem": [{"UserID": "alice"}]});
            call(&http, &base, APP, &usersig, "account_check", body).await["ErrorCode"]
                .as_u64()
                .unwrap()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            0 => ok += 1,
            60007 => {}
            other => panic!("unexpected {other}"),
        }
    }
    let refill = (started.elapsed().as_secs_f64() * LIMIT as f64).ceil() as usize;
    eprintln!(
        "two processes, limit {LIMIT}/s: {ok} of 40 allowed in {:?}",
        started.elapsed()
    );
    // The bucket was full (a second of rest): at least LIMIT pass, and past that only what
    // one app-wide bucket refills, not a bucket per process.
    assert!(
        (LIMIT..40).contains(&ok) && ok <= LIMIT + refill + 1,
        "{ok} allowed"
    );
    drop(a);
    drop(b);
}

/// The README's promise for a database restart, with the real binary: while the database
/// is down (every connection killed, new ones refused — only this test's database), both
/// processes answer every request with the envelope and 70500 instead of hanging or exiting;
/// once it is back they serve again by themselves, and what was acknowledged before is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_processes_ride_out_a_database_restart() {
    let Some(db) = database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), APP, KEY, NO_RATE_LIMITS);
    let mut a = start(dir.path(), &config, &db.url(), None);
    let mut b = start(dir.path(), &config, &db.url(), None);
    let usersig = sig(APP, KEY, ADMIN);
    // A generous client timeout: only a request that hangs trips it.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let import = |base: String, id: String| {
        let (http, usersig) = (http.clone(), usersig.clone());
        async move {
            call(
                &http,
                &base,
                APP,
                &usersig,
                "account_import",
                json!({ "UserID": id }),
            )
            .await
        }
    };
    for (i, s) in [&a, &b].into_iter().enumerate() {
        let v = import(s.base.clone(), format!("before{i}")).await;
        assert_eq!(v["ErrorCode"], 0, "{v}");
    }

    let killed = db.take_down().await.unwrap();
    assert!(killed > 0, "the servers held no connections");
    for round in 0..5 {
        for s in [&a, &b] {
            let v = import(s.base.clone(), format!("during{round}")).await;
            assert_eq!(
                (&v["ActionStatus"], &v["ErrorCode"]),
                (&json!("FAIL"), &json!(70500)),
                "{v}"
            );
        }
    }
    for s in [&mut a, &mut b] {
        assert!(s.child.try_wait().unwrap().is_none(), "a server exited");
    }
    db.bring_up().await.unwrap();

    for s in [&a, &b] {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let v = import(s.base.clone(), "after".into()).await;
            match v["ErrorCode"].as_u64() {
                Some(0) => break,
                Some(70500) if attempts < 150 => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => panic!("not serving again after {attempts} attempts: {v}"),
            }
        }
    }
    let v = call(
        &http,
        &b.base,
        APP,
        &usersig,
        "account_check",
        json!({"CheckItem": [{"UserID": "before0"}, {"UserID": "before1"}, {"UserID": "after"}]}),
    )
    .await;
    let statuses: Vec<&Value> = v["ResultItem"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["AccountStatus"])
        .collect();
    assert_eq!(statuses, vec!["Imported"; 3], "{v}");
    drop(a);
    drop(b);
}
