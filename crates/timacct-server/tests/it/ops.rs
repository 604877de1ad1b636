//! Operations and security around the API: `/healthz`, `/readyz`, `/metrics`,
//! `--max-usersig-age`, and HTTPS (a self-signed certificate made here, trusted by the
//! client), all against the real server over a real SQLite file.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use serde_json::{json, Value};
use timacct_server::ServerLimits as Limits;
use timacct_store::AccountStore;
use timacct_test_support::*;
use timacct_usersig::UserSigGenerator;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bounds every wait on the server, so that a hang fails the test instead of stalling it.
const PATIENCE: Duration = Duration::from_secs(30);

/// `account_check` of `alice` as the admin with this UserSig; the answer, checked to be the
/// envelope.
async fn check(caller: &Caller, usersig: &str) -> Value {
    caller
        .call_with_query(
            CHECK,
            &query(APP, ADMIN, usersig),
            &json!({ "CheckItem": [{ "UserID": "alice" }] }),
        )
        .await
        .json
}

#[tokio::test]
async fn healthz_readyz_and_metrics() {
    let server = spawn_limited(Limits::default()).await;
    let client = &server.client;

    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );

    let ready = client
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );

    let usersig = sig(APP, KEY, ADMIN);
    assert_eq!(check(&server, &usersig).await["ErrorCode"], 0);
    assert_eq!(check(&server, "not-a-sig").await["ErrorCode"], 70003);

    let metrics = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    for line in [
        "# TYPE timacct_requests_total counter",
        "timacct_requests_total{api=\"account_check\",code=\"0\"} 1",
        "timacct_requests_total{api=\"account_check\",code=\"70003\"} 1",
        "# TYPE timacct_request_duration_seconds histogram",
        "timacct_request_duration_seconds_count{api=\"account_check\"} 2",
        "timacct_request_duration_seconds_bucket{api=\"account_check\",le=\"+Inf\"} 2",
        "# TYPE timacct_store_operation_duration_seconds histogram",
        "timacct_store_operation_duration_seconds_count{op=\"check\"} 1",
        // The readiness probe above asked the store too.
        "timacct_store_operation_duration_seconds_count{op=\"account_count\"} 1",
        "timacct_requests_in_flight 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line:?} missing from\n{text}"
        );
    }
    // Every sample line is `name{labels} number`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
}

/// Storage that cannot be reached: every call fails the way a backend whose database is
/// down fails (`PostgresStore` answers exactly this when its server is gone).
#[derive(Clone)]
struct Unreachable;

impl TestStore for Unreachable {
    fn close(&self) {}
}

#[async_trait::async_trait]
impl AccountStore for Unreachable {
    async fn import(
        &self,
        _: u32,
        _: Vec<timacct_store::ImportItem>,
        _: timacct_store::ImportPolicy,
    ) -> Result<Vec<timacct_store::ImportOutcome>, timacct_store::StoreError> {
        Err(down())
    }
    async fn check(
        &self,
        _: u32,
        _: &[timacct_store::UserIdRef<'_>],
    ) -> Result<Vec<bool>, timacct_store::StoreError> {
        Err(down())
    }
    async fn delete(
        &self,
        _: u32,
        _: Vec<timacct_store::UserId>,
        _: i64,
    ) -> Result<Vec<timacct_store::DeleteOutcome>, timacct_store::StoreError> {
        Err(down())
    }
    async fn account(
        &self,
        _: u32,
        _: timacct_store::UserId,
    ) -> Result<Option<timacct_store::Account>, timacct_store::StoreError> {
        Err(down())
    }
    async fn account_count(&self, _: u32) -> Result<u64, timacct_store::StoreError> {
        Err(down())
    }
    async fn kick(
        &self,
        _: u32,
        _: timacct_store::UserId,
        _: i64,
    ) -> Result<bool, timacct_store::StoreError> {
        Err(down())
    }
    async fn cutoff(
        &self,
        _: u32,
        _: timacct_store::UserId,
    ) -> Result<Option<i64>, timacct_store::StoreError> {
        Err(down())
    }
    async fn cutoffs(
        &self,
        _: u32,
    ) -> Result<Vec<(timacct_store::UserId, i64)>, timacct_store::StoreError> {
        Err(down())
    }
    async fn set_push_online(
        &self,
        _: u32,
        _: timacct_store::UserId,
        _: String,
        _: Option<i64>,
    ) -> Result<(), timacct_store::StoreError> {
        Err(down())
    }
    async fn push_online(
        &self,
        _: u32,
    ) -> Result<Vec<timacct_store::PushOnline>, timacct_store::StoreError> {
        Err(down())
    }
}

fn down() -> timacct_store::StoreError {
    timacct_store::StoreError::Unavailable("connection refused".to_owned())
}

#[tokio::test]
async fn readyz_is_503_when_storage_is_unreachable_while_healthz_stays_200() {
    let server = TestServer::builder().store(Unreachable).start().await;
    let (client, base) = (&server.client, &server.base);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body = ready.json::<Value>().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    // The reason is generic: nothing about the backend leaks to an unauthenticated caller.
    assert!(!body.to_string().contains("refused"), "{body}");
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // API calls answer 70500 (retryable), and the failure is counted.
    assert_eq!(
        check(&server, &sig(APP, KEY, ADMIN)).await["ErrorCode"],
        70500
    );
    let text = server.metrics().await;
    assert!(
        text.contains("timacct_store_errors_total{op=\"check\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("timacct_requests_total{api=\"account_check\",code=\"70500\"} 1\n"),
        "{text}"
    );
}

#[tokio::test]
async fn max_usersig_age_refuses_long_lived_sigs_with_70003() {
    let server = spawn_limited(Limits {
        max_usersig_age: Some(3600),
        ..Limits::default()
    })
    .await;
    let generator = UserSigGenerator::new(u64::from(APP), KEY);
    let long = generator.gen(ADMIN, 86_400, now());
    let reply = check(&server, &long).await;
    assert_eq!(reply["ErrorCode"], 70003, "{reply}");
    assert!(
        reply["ErrorInfo"]
            .as_str()
            .unwrap()
            .contains("at most 3600 s"),
        "{reply}"
    );
    // Asked twice: a refused sig is never cached as valid.
    assert_eq!(check(&server, &long).await["ErrorCode"], 70003);
    let short = generator.gen(ADMIN, 3600, now());
    assert_eq!(check(&server, &short).await["ErrorCode"], 0);
    // A forged long sig is still reported as the forgery it is.
    let forged = UserSigGenerator::new(u64::from(APP), "another key").gen(ADMIN, 86_400, now());
    assert_eq!(check(&server, &forged).await["ErrorCode"], 70009);
}

/// A self-signed certificate for `localhost`, written as PEM files.
fn self_signed(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert_pem).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    (cert_pem, cert_path, key_path)
}

#[tokio::test]
async fn https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, cert_path, key_path) = self_signed(dir.path());
    let tls = timacct_server::load_tls_config(&cert_path, &key_path).unwrap();
    // The handle's client trusts the certificate and reaches the server as `localhost`.
    let server = TestServer::builder().tls(tls, &cert_pem).start().await;
    assert!(
        server.base.starts_with("https://localhost:"),
        "{}",
        server.base
    );
    let usersig = sig(APP, KEY, ADMIN);
    server
        .call(IMPORT, &json!({ "UserID": "alice" }))
        .await
        .assert_ok();
    let reply = check(&server, &usersig).await;
    assert_eq!(
        reply["ResultItem"][0]["AccountStatus"], "Imported",
        "{reply}"
    );

    // A request hyper cannot parse, sent over TLS, still gets the envelope: the rewriting
    // works on the decrypted side.
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls_stream = connector.connect(name, tcp).await.unwrap();
    tls_stream
        .write_all(b"POST /v4/im_open_login_svc/account_check HTTP/1.1\r\nHost x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tls_stream.read_to_end(&mut answer))
        .await
        .expect("answer in time");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\"ErrorCode\":60002"), "{text}");

    // Plain HTTP to the TLS port gets no answer that a client could take for one.
    let plain = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap()
        .post(format!("http://{}{CHECK}", server.addr))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[test]
fn tls_config_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert_path, key_path) = self_signed(dir.path());
    let missing = dir.path().join("missing.pem");
    let e = timacct_server::load_tls_config(&missing, &key_path).unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
    let e = timacct_server::load_tls_config(&cert_path, &cert_path).unwrap_err();
    assert!(e.to_string().contains("TLS key"), "{e}");
    // The key of another certificate does not match.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let other_key = dir.path().join("other.pem");
    std::fs::write(&other_key, other.signing_key.serialize_pem()).unwrap();
    assert!(timacct_server::load_tls_config(&cert_path, &other_key).is_err());
}

/// With busy polling on, the server answers exactly as without it, on one connection after
/// another (the spinner must never hold back a request), and shuts down normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn busy_polling_serves_requests_as_usual() {
    let server = spawn_limited(Limits {
        busy_poll: Duration::from_micros(200),
        ..Limits::default()
    })
    .await;
    let usersig = UserSigGenerator::new(u64::from(APP), KEY).gen(ADMIN, 86_400, now());
    for round in 0..3 {
        // A client of its own each round: new connections to a server that went quiet.
        let caller = server.caller();
        for _ in 0..50 {
            let reply = check(&caller, &usersig).await;
            assert_eq!(
                reply,
                json!({
                    "ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": "",
                    "ResultItem": [{
                        "UserID": "alice", "ResultCode": 0, "ResultInfo": "",
                        "AccountStatus": "NotImported"
                    }]
                }),
                "round {round}"
            );
        }
        // Quiet for longer than the window: the spinner parks, and must wake again.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
