//! The real `timacct serve` binary and what it leaves behind: logs at debug level that trace
//! each request (request id, API, `random`) but never carry a key or a UserSig, JSON logs,
//! an owner-only data directory, and HTTPS from `--tls-cert`/`--tls-key`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::api::{post, sig, sig_with, url, ADMIN};
use crate::common::{self, serve_command, spawn, wait_with_timeout, write_config, NO_RATE_LIMITS};

const APP: u32 = 1400000888;
const KEY: &str = "secret-key-that-must-never-be-logged-7f3a9c";

/// A running server whose stderr goes to a file.
struct Server {
    server: common::Server,
    stderr: PathBuf,
}

impl std::ops::Deref for Server {
    type Target = common::Server;
    fn deref(&self) -> &common::Server {
        &self.server
    }
}

impl Server {
    /// SIGTERM, wait for a clean exit, and return everything written to stderr.
    fn stop(&mut self) -> String {
        self.server.sigterm();
        let status = wait_with_timeout(&mut self.server.child, Duration::from_secs(30))
            .expect("server did not stop");
        assert!(status.success(), "server exit status {status}");
        std::fs::read_to_string(&self.stderr).unwrap()
    }
}

/// Start `timacct serve` with these extra arguments; stdout lines up to the listening line
/// are returned with it, stderr goes to a file.
fn start(dir: &Path, log: &str, extra: &[&str]) -> (Server, Vec<String>) {
    let config = write_config(
        dir,
        APP,
        KEY,
        &format!("{NO_RATE_LIMITS}admins = [\"{ADMIN}\"]\n"),
    );
    let stderr = dir.join(format!("stderr-{}.log", rand_suffix()));
    let mut cmd = serve_command();
    cmd.arg("--data-dir")
        .arg(dir.join("data").join("nested"))
        .arg("--config")
        .arg(&config)
        .args(extra)
        .env("RUST_LOG", log)
        .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()));
    let server = spawn(cmd);
    let printed = server.printed.clone();
    (Server { server, stderr }, printed)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// One call of `api`, which must be answered; its `random` is 424242, which the tests look
/// for in the logs.
async fn call(
    client: &reqwest::Client,
    base: &str,
    usersig: &str,
    api: &str,
    body: Value,
) -> Value {
    post(client, &url(base, APP, usersig, api, 424242), &body)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_trace_requests_but_never_hold_keys_or_usersigs() {
    let dir = tempfile::tempdir().unwrap();
    let good = sig(APP, KEY, ADMIN);
    let wrong_key = sig(APP, "some-other-key-also-secret", ADMIN);
    let not_admin = sig(APP, KEY, "mallory");
    let (mut server, stdout) = start(dir.path(), "debug", &[]);
    let client = reqwest::Client::new();
    let base = server.base.clone();
    assert_eq!(
        call(
            &client,
            &base,
            &good,
            "account_import",
            json!({"UserID": "alice"})
        )
        .await["ErrorCode"],
        0
    );
    assert_eq!(
        call(
            &client,
            &base,
            &good,
            "account_check",
            json!({"CheckItem": [{"UserID": "alice"}]})
        )
        .await["ErrorCode"],
        0
    );
    assert_eq!(
        call(
            &client,
            &base,
            &wrong_key,
            "account_check",
            json!({"CheckItem": []})
        )
        .await["ErrorCode"],
        70009
    );
    // A non-admin's valid sig for the right app: refused, and the query is not logged.
    let url = format!(
        "{base}/v4/im_open_login_svc/account_check?sdkappid={APP}&identifier=mallory&usersig={not_admin}&random=1&contenttype=json"
    );
    let v: Value = client
        .post(url)
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["ErrorCode"], 70403);
    // Garbage in the usersig itself: still not echoed to the log.
    assert_eq!(
        call(
            &client,
            &base,
            "garbage-usersig-value-xyz",
            "account_check",
            json!({})
        )
        .await["ErrorCode"],
        70003
    );
    let stderr = server.stop();

    for (what, secret) in [
        ("key", KEY),
        ("other key", "some-other-key-also-secret"),
        ("admin usersig", good.as_str()),
        ("wrong-key usersig", wrong_key.as_str()),
        ("non-admin usersig", not_admin.as_str()),
        ("garbage usersig", "garbage-usersig-value-xyz"),
    ] {
        assert!(
            !stderr.contains(secret),
            "the {what} is in stderr:\n{stderr}"
        );
        assert!(
            !stdout.iter().any(|l| l.contains(secret)),
            "the {what} is on stdout: {stdout:?}"
        );
    }
    // What is there: one line per request with its id, API, random value and code.
    let request_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("request_id") && l.contains("random=424242"))
        .collect();
    assert!(request_lines.len() >= 4, "{stderr}");
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains("api=\"account_import\"") || l.contains("api=account_import")),
        "{stderr}"
    );
    assert!(
        request_lines.iter().any(|l| l.contains("code=70009")),
        "{stderr}"
    );
    assert!(
        request_lines
            .iter()
            .any(|l| l.contains(&format!("sdkappid={APP}"))),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_max_usersig_age_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _) = start(
        dir.path(),
        "debug",
        &["--log-format", "json", "--max-usersig-age", "3600"],
    );
    let client = reqwest::Client::new();
    let long = sig_with(APP, KEY, ADMIN, &["--expire", "86400"]);
    let short = sig_with(APP, KEY, ADMIN, &["--expire", "600"]);
    let body = json!({"CheckItem": [{"UserID": "alice"}]});
    assert_eq!(
        call(&client, &server.base, &long, "account_check", body.clone()).await["ErrorCode"],
        70003
    );
    assert_eq!(
        call(&client, &server.base, &short, "account_check", body).await["ErrorCode"],
        0
    );
    let stderr = server.stop();
    assert!(!stderr.contains(&long) && !stderr.contains(&short) && !stderr.contains(KEY));
    let events: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let requests: Vec<&Value> = events
        .iter()
        .filter(|e| e["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 2, "{stderr}");
    for r in &requests {
        assert_eq!(r["api"], "account_check", "{r}");
        assert_eq!(r["random"], 424242, "{r}");
        assert_eq!(r["sdkappid"], APP, "{r}");
        assert!(
            r["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{r}"
        );
        assert!(r["elapsed_us"].is_u64(), "{r}");
    }
    assert_eq!(requests[0]["code"], 70003);
    assert_eq!(requests[1]["code"], 0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_directory_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _) = start(dir.path(), "warn", &[]);
    let good = sig(APP, KEY, ADMIN);
    let client = reqwest::Client::new();
    assert_eq!(
        call(
            &client,
            &server.base,
            &good,
            "account_import",
            json!({"UserID": "alice"})
        )
        .await["ErrorCode"],
        0
    );
    let data = dir.path().join("data").join("nested");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&dir.path().join("data")), 0o700, "created parent");
    for name in ["timacct.db", "timacct.db-wal", "timacct.db-shm"] {
        let path = data.join(name);
        if name == "timacct.db" || path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let cert_arg = dir.path().join("cert.pem").display().to_string();
    let key_arg = dir.path().join("key.pem").display().to_string();
    let (mut server, _) = start(
        dir.path(),
        "warn",
        &["--tls-cert", &cert_arg, "--tls-key", &key_arg],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let addr: std::net::SocketAddr = server.base.trim_start_matches("https://").parse().unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", addr.port());
    let good = sig(APP, KEY, ADMIN);
    assert_eq!(
        call(
            &client,
            &base,
            &good,
            "account_import",
            json!({"UserID": "alice"})
        )
        .await["ErrorCode"],
        0
    );
    server.stop();
}
