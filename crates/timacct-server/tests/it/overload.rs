//! Overload and stalled clients, on loopback against the real server over a real SQLite file,
//! with small limits so that every bound is reached quickly. Nothing here asserts a duration:
//! waits have generous upper bounds and only check that something happened at all.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use timacct_server::ServerLimits as Limits;
use timacct_store::AccountStore;
use timacct_test_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Upper bound on any wait for the server to act; far above the configured timeouts.
const PATIENCE: Duration = Duration::from_secs(30);

/// A signed `account_check` of `x` as raw HTTP/1.1 (keep-alive), for a socket the test
/// holds itself.
fn raw_check() -> String {
    let body = r#"{"CheckItem":[{"UserID":"x"}]}"#;
    format!(
        "POST {CHECK}?{} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        query(APP, ADMIN, &sig(APP, KEY, ADMIN)),
        body.len()
    )
}

/// A sample of `/metrics`, if the server exports it.
async fn metric(server: &TestServer, name: &str) -> Option<f64> {
    let text = server.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Poll `/metrics` until `name` reaches `value` (bounded by [`PATIENCE`]).
async fn wait_metric(server: &TestServer, name: &str, value: f64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if metric(server, name).await == Some(value) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never reached {value}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Read until the server closes the connection (EOF or reset); the bytes it sent first.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server did not close the connection");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_gets_only_envelopes_and_acknowledged_imports_are_kept() {
    let server = Arc::new(
        spawn_limited(Limits {
            max_concurrent_requests: 2,
            max_queued_requests: 2,
            queue_timeout: Duration::from_millis(5),
            ..Limits::default()
        })
        .await,
    );
    let tasks: Vec<_> = (0..48)
        .map(|t| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut busy = 0;
                for round in 0..6 {
                    let ids: Vec<String> = (0..20).map(|i| format!("u{t}_{round}_{i}")).collect();
                    let reply = server.call(MULTI, &json!({ "Accounts": ids })).await.json;
                    match reply["ErrorCode"].as_u64() {
                        Some(0) => {
                            assert_eq!(reply["FailAccounts"], json!([]), "{reply}");
                            acknowledged.extend(ids);
                        }
                        Some(60018) => busy += 1,
                        other => panic!("unexpected code {other:?}: {reply}"),
                    }
                    let check = server
                        .call(CHECK, &json!({ "CheckItem": [{ "UserID": "nobody" }] }))
                        .await
                        .json;
                    match check["ErrorCode"].as_u64() {
                        Some(0 | 60018) => {}
                        other => panic!("unexpected code {other:?}: {check}"),
                    }
                }
                (acknowledged, busy)
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    let mut busy = 0;
    for t in tasks {
        let (ids, b) = t.await.unwrap();
        acknowledged.extend(ids);
        busy += b;
    }
    println!(
        "{} accounts acknowledged, {busy} imports refused as busy",
        acknowledged.len()
    );
    // The load is gone: the server answers normally again, and kept every acknowledged write.
    wait_metric(&server, "timacct_requests_in_flight", 0.0).await;
    let reply = server
        .call(IMPORT, &json!({ "UserID": "after_the_flood" }))
        .await
        .json;
    assert_eq!(reply["ErrorCode"], 0, "{reply}");
    for chunk in acknowledged.chunks(100) {
        let ids: Vec<_> = chunk.iter().map(|id| json!({ "UserID": id })).collect();
        let reply = server.call(CHECK, &json!({ "CheckItem": ids })).await.json;
        assert_eq!(reply["ErrorCode"], 0, "{reply}");
        for item in reply["ResultItem"].as_array().unwrap() {
            assert_eq!(item["AccountStatus"], "Imported", "{item}");
        }
    }
    // A refused import changed nothing: exactly the acknowledged accounts (and the last one).
    let stored = server.store.account_count(APP).await.unwrap();
    assert_eq!(stored as usize, acknowledged.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_cap_requests_queue_then_get_60018_and_the_server_recovers() {
    let server = spawn_limited(Limits {
        max_concurrent_requests: 1,
        max_queued_requests: 1,
        queue_timeout: Duration::from_millis(100),
        body_timeout: Duration::from_secs(3),
        ..Limits::default()
    })
    .await;
    // A client that sends its head and then stalls on the body holds the only slot.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST {CHECK}?{} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"CheckItem\":",
        query(APP, ADMIN, &sig(APP, KEY, ADMIN))
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    wait_metric(&server, "timacct_requests_in_flight", 1.0).await;

    // Two more: one waits in the queue until its timeout, the other finds the queue full.
    let body = json!({ "CheckItem": [{ "UserID": "x" }] });
    let (a, b) = tokio::join!(server.call(CHECK, &body), server.call(CHECK, &body));
    let (a, b) = (a.json, b.json);
    for reply in [&a, &b] {
        assert_eq!(reply["ErrorCode"], 60018, "{reply}");
        assert!(
            reply["ErrorInfo"].as_str().unwrap().contains("retry"),
            "{reply}"
        );
    }

    // The stalled body times out: that client gets 60008, and the slot is free again.
    let answer = read_until_closed(&mut stalled).await;
    let json = parse_answer(&answer).json;
    assert_eq!(json["ErrorCode"], 60008, "{json}");
    let reply = server.call(CHECK, &body).await.json;
    assert_eq!(reply["ErrorCode"], 0, "{reply}");
    assert!(metric(&server, "timacct_timeouts_total{kind=\"body\"}").await >= Some(1.0));
    assert!(
        metric(
            &server,
            "timacct_requests_total{api=\"account_check\",code=\"60018\"}"
        )
        .await
            >= Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_idle_clients_are_disconnected_and_do_not_block_others() {
    let server = spawn_limited(Limits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    // Opens a socket and sends nothing.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Sends half a header block, then nothing (slowloris).
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(format!("POST {CHECK} HTTP/1.1\r\nHost: x\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    // Trickles a header byte at a time, never finishing.
    let mut trickle = TcpStream::connect(server.addr).await.unwrap();
    let trickler = tokio::spawn(async move {
        let head = format!(
            "POST {CHECK} HTTP/1.1\r\nHost: x\r\nX-Pad: {}",
            "a".repeat(10_000)
        );
        for byte in head.bytes() {
            if trickle.write_all(&[byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    // A keep-alive connection that made one request and then went quiet.
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    let request = raw_check();
    kept.write_all(request.as_bytes()).await.unwrap();

    // Meanwhile others are served.
    for _ in 0..5 {
        let reply = server
            .call(CHECK, &json!({ "CheckItem": [{ "UserID": "y" }] }))
            .await
            .json;
        assert_eq!(reply["ErrorCode"], 0, "{reply}");
    }

    assert!(read_until_closed(&mut silent).await.is_empty());
    assert!(read_until_closed(&mut half).await.is_empty());
    let answer = read_until_closed(&mut kept).await;
    let json = parse_answer(&answer).json;
    assert_eq!(json["ErrorCode"], 0, "{json}");
    assert!(
        tokio::time::timeout(PATIENCE, trickler)
            .await
            .expect("the trickling client was disconnected")
            .unwrap(),
        "the trickling client sent its whole head without being cut off"
    );
    assert!(metric(&server, "timacct_timeouts_total{kind=\"header\"}").await >= Some(2.0));
    assert!(metric(&server, "timacct_timeouts_total{kind=\"idle\"}").await >= Some(2.0));
    let reply = server
        .call(CHECK, &json!({ "CheckItem": [{ "UserID": "z" }] }))
        .await
        .json;
    assert_eq!(reply["ErrorCode"], 0, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_60018_and_service_resumes_when_they_close() {
    let server = spawn_limited(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    // Connections are accepted in order: these two take the two places.
    let first = TcpStream::connect(server.addr).await.unwrap();
    let second = TcpStream::connect(server.addr).await.unwrap();
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let request = raw_check();
    third.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut third).await;
    let reply = parse_answer(&answer);
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.code(), 60018, "{}", reply.text);
    assert_eq!(reply.headers.get("connection").unwrap(), "close");

    drop(first);
    drop(second);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        // A new client each time: new connections, never one the cap already refused.
        let reply = server
            .caller()
            .call(CHECK, &json!({ "CheckItem": [{ "UserID": "x" }] }))
            .await
            .json;
        if reply["ErrorCode"] == 0 {
            break;
        }
        assert_eq!(reply["ErrorCode"], 60018, "{reply}");
        assert!(tokio::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_still_works_with_the_read_deadlines() {
    let server = spawn_limited(Limits::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let body = r#"{"CheckItem":[{"UserID":"x"}]}"#;
    let head = format!(
        "POST {CHECK}?{} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        query(APP, ADMIN, &sig(APP, KEY, ADMIN)),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 25];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut interim))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    let json = parse_answer(&answer).json;
    assert_eq!(json["ErrorCode"], 0, "{json}");
}
