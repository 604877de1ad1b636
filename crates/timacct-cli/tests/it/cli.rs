//! The real `timacct` binary: start-up banner, `sig`, SIGTERM shutdown, and durability
//! across `kill -9`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::api::{call, imported, sig, ADMIN};
use crate::common::{
    serve_command, spawn, wait_with_timeout, write_config, Server, BIN, NO_RATE_LIMITS,
};

const APP: u32 = 1400000777;
const KEY: &str = "test-key-for-the-binary";

fn start(data_dir: &Path, config: Option<&Path>) -> Server {
    let mut cmd = serve_command();
    cmd.arg("--data-dir").arg(data_dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    spawn(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_app_banner_gives_a_working_usersig() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), None);
    let field = |name: &str| {
        server
            .printed
            .iter()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
            .unwrap_or_else(|| panic!("banner lacks {name}: {:?}", server.printed))
    };
    let sdkappid: u32 = field("SDKAppID:").parse().unwrap();
    let admin = field("admin:");
    let key = field("key:");
    let usersig = field("UserSig:");
    assert_eq!(admin, "administrator");
    let client = reqwest::Client::new();
    let v = call(
        &client,
        &server.base,
        sdkappid,
        &usersig,
        "account_import",
        serde_json::json!({"UserID": "alice"}),
    )
    .await;
    assert_eq!(
        v,
        serde_json::json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""})
    );
    // The key printed is the app's key: a sig made from it works too.
    let own = sig(sdkappid, &key, ADMIN);
    let v = call(
        &client,
        &server.base,
        sdkappid,
        &own,
        "account_check",
        serde_json::json!({"CheckItem": [{"UserID": "alice"}]}),
    )
    .await;
    assert_eq!(v["ResultItem"][0]["AccountStatus"], "Imported");
    server.kill9();
    // The key is kept: a restart serves the same app with the same key.
    let again = start(dir.path(), None);
    let v = call(
        &client,
        &again.base,
        sdkappid,
        &own,
        "account_check",
        serde_json::json!({"CheckItem": [{"UserID": "alice"}]}),
    )
    .await;
    assert_eq!(v["ResultItem"][0]["AccountStatus"], "Imported");
    again.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_imports_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), APP, KEY, NO_RATE_LIMITS);
    let usersig = sig(APP, KEY, ADMIN);
    let server = start(&dir.path().join("data"), Some(&config));
    let base = server.base.clone();
    // 8 concurrent writers import 100-account batches; record what was acknowledged.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let base = base.clone();
        let usersig = usersig.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            for b in 0..5 {
                let ids: Vec<String> = (0..100).map(|i| format!("w{w}-b{b}-{i}")).collect();
                let v = call(
                    &client,
                    &base,
                    APP,
                    &usersig,
                    "multiaccount_import",
                    serde_json::json!({ "Accounts": ids }),
                )
                .await;
                assert_eq!(v["ErrorCode"], 0, "{v}");
                assert_eq!(v["FailAccounts"], serde_json::json!([]));
                acked.extend(ids);
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    // Kill at once after the last acknowledgement: no clean shutdown, no flush.
    server.kill9();
    let server = start(&dir.path().join("data"), Some(&config));
    let seen = imported(&server.base, APP, &usersig, &acked).await;
    assert_eq!(seen.len(), 4000);
    let missing: Vec<&String> = acked
        .iter()
        .zip(&seen)
        .filter(|(_, s)| !**s)
        .map(|(id, _)| id)
        .collect();
    assert!(missing.is_empty(), "lost after kill -9: {missing:?}");
    server.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), APP, KEY, NO_RATE_LIMITS);
    let usersig = sig(APP, KEY, ADMIN);
    let mut server = start(&dir.path().join("data"), Some(&config));
    let client = reqwest::Client::new();
    let v = call(
        &client,
        &server.base,
        APP,
        &usersig,
        "account_import",
        serde_json::json!({"UserID": "kept"}),
    )
    .await;
    assert_eq!(v["ErrorCode"], 0);
    server.sigterm();
    let status = wait_with_timeout(&mut server.child, Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "server did not exit cleanly on SIGTERM"
    );
    let server = start(&dir.path().join("data"), Some(&config));
    assert_eq!(
        imported(&server.base, APP, &usersig, &["kept".to_owned()]).await,
        vec![true]
    );
    server.kill9();
}

#[test]
fn sig_gen_matches_the_official_vector_and_verify_explains() {
    // Go master's token for the spec's demo key (`crates/timacct-usersig/tests/data/usersig-vectors.json`, profile "go").
    let key = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    let expected = "eAEArABT-3siVExTLnZlciI6IjIuMCIsIlRMUy5pZGVudGlmaWVyIjoieGlhb2p1biIsIlRMUy5zZGthcHBpZCI6MTQwMDAwMDAwMCwiVExTLmV4cGlyZSI6MTU1NTIwMDAsIlRMUy50aW1lIjoxNzAwMDAwMDAwLCJUTFMuc2lnIjoiTHZBN2QvSXc3Z1NzbnNrdlZ6QkRQT0NDRGJ1TkN3NEdId1RDMGJpcCtCND0ifQoBAAD--9-DMfw_";
    let out = Command::new(BIN)
        .args([
            "sig",
            "gen",
            "--sdkappid",
            "1400000000",
            "--key",
            key,
            "--identifier",
            "xiaojun",
        ])
        .args(["--expire", "15552000", "--now", "1700000000"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), expected);

    let verify = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["sig", "verify", "--usersig", expected, "--key", key])
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = verify(&["--now", "1715552000"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("identifier: xiaojun") && text.contains("sdkappid: 1400000000"),
        "{text}"
    );
    assert!(text.contains("valid: yes"), "{text}");
    let (code, text) = verify(&["--now", "1715552001"]);
    assert_eq!(code, Some(1));
    assert!(
        text.contains("valid: no") && text.contains("reason: expired"),
        "{text}"
    );
    let (code, text) = verify(&["--now", "1700000000", "--identifier", "other"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("identifier not match"), "{text}");
    let out = Command::new(BIN)
        .args([
            "sig",
            "verify",
            "--usersig",
            expected,
            "--key",
            "wrong",
            "--now",
            "1700000000",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("reason: sig not match"));
    let out = Command::new(BIN)
        .args(["sig", "verify", "--usersig", "garbage!"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_config_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[[apps]]\nsdkappid = 1\nkey = \"k\"\nplan = \"gold\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.toml") && err.contains("plan"), "{err}");
}

/// `timacct serve` with these extra arguments, run to its exit: (exit code, stderr).
fn serve_fails(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("TIMACCT_CONFIG")
        .env_remove("TIMACCT_DATA_DIR")
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn a_second_server_on_one_data_dir_is_refused_until_the_first_dies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = start(&data, None);
    let pid = first.child.id();
    let (code, err) = serve_fails(&["--data-dir".as_ref(), data.as_os_str()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&data.display().to_string()) && err.contains(&format!("pid {pid}")),
        "the refusal names the directory and the holder: {err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    // The OS releases the lock with the process, even after kill -9.
    first.kill9();
    let second = start(&data, None);
    drop(second);
}

#[test]
fn a_data_dir_that_is_a_file_gets_one_line_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    let (code, err) = serve_fails(&["--data-dir".as_ref(), file.as_os_str()]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        format!(
            "timacct: the data directory {} is a file, not a directory: pass a --data-dir that is a directory or does not exist yet",
            file.display()
        )
    );
    // Below a file: the part of the path that is a file is named, once.
    let below = file.join("data");
    let (code, err) = serve_fails(&["--data-dir".as_ref(), below.as_os_str()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("a part of its path is a file"), "{err}");
    assert!(!err.contains("os error"), "no raw OS error: {err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn a_failing_start_up_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new").join("data");
    let missing = dir.path().join("missing.toml");
    let (code, err) = serve_fails(&[
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--config".as_ref(),
        missing.as_os_str(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("missing.toml"), "{err}");
    // The OS error appears once, not once per layer of context.
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
    // A start-up that fails after the directory was made (the port is taken) removes it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &addr, "--data-dir"])
        .arg(&data)
        .env_remove("TIMACCT_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("new").exists(),
        "nothing is left by a failed bind"
    );
    // A failure after the directory was made (its default key written, then the database
    // cannot be reached) removes what this run created.
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--database", "postgres://nobody@127.0.0.1:1/none"])
        .env_remove("TIMACCT_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !dir.path().join("new").exists(),
        "nothing is left behind by a failed start"
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 0, "{entries:?}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        // Every subcommand is offered.
        for sub in ["serve", "sig", "import", "check", "delete", "completions"] {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
    }
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
