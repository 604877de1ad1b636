//! The account commands of the real `timacct` binary (import, check, delete, kick, online)
//! against the real server (`timacct serve`) on a loopback port: bulk jobs under Tencent's
//! rate limits, a server stricter than the client's pace, CSV input, output formats, exit
//! codes, Ctrl-C and --resume-from, UserSig renewal.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Every spawned process is waited for (servers by `Server`'s Drop).
#![allow(clippy::zombie_processes)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_timacct");
const APP: u32 = 1_400_000_888;
const KEY: &str = "bulk-test-key";

/// A running `timacct serve`.
struct Server {
    child: Child,
    base: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server with one app whose `rate_limits` is `limits` (TOML).
    fn start(limits: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("timacct.toml");
        std::fs::write(
            &config,
            format!("[[apps]]\nsdkappid = {APP}\nkey = \"{KEY}\"\nrate_limits = {limits}\n"),
        )
        .unwrap();
        let data = dir.path().join("data");
        let mut child = Command::new(BIN)
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("TIMACCT_CONFIG")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .unwrap();
            if let Some(rest) = line.strip_prefix("timacct listening on ") {
                let base = rest.split_whitespace().next().unwrap().to_owned();
                std::thread::spawn(move || for _ in lines {});
                return Server {
                    child,
                    base,
                    data,
                    _dir: dir,
                };
            }
        }
    }

    /// `timacct ARGS` against this server, with the connection settings in the environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("TIMACCT_ENDPOINT", &self.base)
            .env("TIMACCT_SDKAPPID", APP.to_string())
            .env("TIMACCT_KEY", KEY)
            .env_remove("TIMACCT_ADMIN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// Stop the server cleanly (SIGTERM) and read accounts' (Nick, FaceUrl) from its
    /// database.
    fn profiles_after_stop(mut self, user_ids: &[&str]) -> Vec<Option<(String, String)>> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
        let store = timacct_store::SqliteStore::open(self.data.join("timacct.db")).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let profiles = user_ids
            .iter()
            .map(|id| {
                runtime
                    .block_on(timacct_store::AccountStore::account(
                        &store,
                        APP,
                        timacct_store::UserId::parse(*id).unwrap(),
                    ))
                    .unwrap()
                    .map(|a| (a.nick, a.face_url))
            })
            .collect();
        store.close();
        profiles
    }
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(o: std::process::Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        }
    }
}

impl Run {
    /// The JSON rows (stdout is not a terminal, so JSON lines is the default).
    fn rows(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// A counter from the summary line, e.g. `rate-limited`.
    fn summary(&self, what: &str) -> u64 {
        let line = self
            .stderr
            .lines()
            .find(|l| l.contains(" requests, "))
            .unwrap_or_else(|| panic!("no summary in {}", self.stderr));
        line.split([';', ','])
            .find_map(|part| part.trim().strip_suffix(what)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {what} in {line}"))
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Every row is `result`, the rows are in input order, and none is lost.
fn assert_all(run: &Run, ids: &[String], first_index: usize, result: &str) {
    let rows = run.rows();
    assert_eq!(rows.len(), ids.len(), "stderr: {}", run.stderr);
    for (i, (row, id)) in rows.iter().zip(ids).enumerate() {
        assert_eq!(row["Index"], first_index + i, "{row}");
        assert_eq!(row["UserID"], id.as_str(), "{row}");
        assert_eq!(row["Result"], result, "{row}");
        assert_eq!(row["ResultCode"], 0, "{row}");
    }
}

#[test]
fn import_check_delete_3000_from_a_file_under_tencent_limits() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let all = ids("bulk-", 3000);
    let file = write_lines(dir.path(), "ids.txt", &all);
    let file = file.to_str().unwrap();

    let run = server.run(&["import", "--file", file]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all, 0, "Imported");
    // 30 multiaccount_import calls, paced at 100/s: no 60007, no retry.
    assert_eq!(run.summary("requests"), 30);
    assert_eq!(run.summary("rate-limited"), 0);
    assert!(!run.stdout.contains("60007") && !run.stderr.contains("60007"));

    let run = server.run(&["check", "--file", file]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all, 0, "Imported");
    assert_eq!(run.summary("rate-limited"), 0);

    let run = server.run(&["delete", "--yes", "--file", file]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all, 0, "Deleted");
    assert_eq!(run.summary("rate-limited"), 0);

    let run = server.run(&["check", "--file", file]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all, 0, "NotImported");
}

#[test]
fn a_server_stricter_than_the_clients_pace_costs_retries_not_accounts() {
    // The server allows 5 calls/s; the client paces at Tencent's 100/s and meets 60007s.
    let server = Server::start("{ multiaccount_import = 5, account_check = 5 }");
    let all = ids("strict-", 1000);
    let mut child = server
        .command(&["import", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all((all.join("\n") + "\n").as_bytes())
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all, 0, "Imported");
    assert!(run.summary("rate-limited") > 0, "{}", run.stderr);
    assert!(!run.stdout.contains("60007"), "no 60007 leaks into a row");

    // Paced below the server's limit, the same job meets none (after the bucket the import
    // emptied has refilled).
    let dir = tempfile::tempdir().unwrap();
    let checked = ids("strict-", 800);
    let file = write_lines(dir.path(), "ids.txt", &checked);
    std::thread::sleep(Duration::from_millis(1200));
    let run = server.run(&[
        "check",
        "--rate",
        "4",
        "--concurrency",
        "2",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &checked, 0, "Imported");
    assert_eq!(run.summary("rate-limited"), 0, "{}", run.stderr);
}

#[test]
fn csv_import_sets_nick_and_face_url_with_quoted_commas() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("accounts.csv");
    std::fs::write(
        &csv,
        "UserID,Nick,FaceUrl\n\
         ann,\"Smith, Ann\",\"https://img.example/a.png?size=1,2\"\n\
         bob,Bob,\n\
         \"carol\",\"Carol \"\"CC\"\" Jones\",https://img.example/c.png\n",
    )
    .unwrap();
    let run = server.run(&["import", "--file", csv.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(
        &run,
        &["ann".into(), "bob".into(), "carol".into()],
        0,
        "Imported",
    );
    // The same file works as input to check (its Nick/FaceUrl columns are ignored).
    let run = server.run(&["check", "--file", csv.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let profile = |nick: &str, face: &str| Some((nick.to_owned(), face.to_owned()));
    assert_eq!(
        server.profiles_after_stop(&["ann", "bob", "carol"]),
        vec![
            profile("Smith, Ann", "https://img.example/a.png?size=1,2"),
            profile("Bob", ""),
            profile("Carol \"CC\" Jones", "https://img.example/c.png"),
        ]
    );
}

#[test]
fn exit_codes_say_all_ok_some_failed_or_could_not_run() {
    let server = Server::start("\"tencent\"");
    // 0: everything succeeded.
    let run = server.run(&["import", "a1", "a2"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // 1: ran to the end, one account failed (a 33-byte UserID), and its row says why.
    let long = "x".repeat(33);
    let run = server.run(&["check", "a1", &long, "a2"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let rows = run.rows();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["Result"], "Failed");
    assert_eq!(rows[1]["ResultCode"], 70402);
    assert!(rows[1]["Random"].is_u64(), "the failed call can be traced");
    assert_eq!(rows[2]["Result"], "Imported");
    let run = server.run(&["import", &long]);
    assert_eq!(run.code, Some(1));
    assert_eq!(
        run.rows()[0]["ResultCode"],
        Value::Null,
        "FailAccounts gives no code"
    );
    // 1: deleting an account that does not exist is a failed item (70107).
    let run = server.run(&["delete", "--yes", "nobody"]);
    assert_eq!(run.code, Some(1));
    assert_eq!(run.rows()[0]["ResultCode"], 70107);

    // 2: usage errors.
    let run = server.run(&["check"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no UserIDs"), "{}", run.stderr);
    let run = server.run(&["check", "--endpoint", "mars", "a"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("silicon-valley"), "{}", run.stderr);
    let run = Run::from(
        Command::new(BIN)
            .args(["check", "a"])
            .env_remove("TIMACCT_ENDPOINT")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(2));

    // 2: the service cannot be used: wrong key (70009), nothing listening.
    let run = server.run(&["check", "--key", "wrong", "a1"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("70009"), "{}", run.stderr);
    assert!(!run.stderr.contains(KEY) && !run.stderr.contains("wrong"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let run = server.run(&["check", "--endpoint", &closed, "--attempts", "2", "a1"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("stopped after 0 of 1") && run.stderr.contains("random"),
        "{}",
        run.stderr
    );

    // kick and online send their requests; this server answers 60009, shown with exit 2.
    for cmd in ["kick", "online"] {
        let run = server.run(&[cmd, "a1"]);
        assert_eq!(run.code, Some(2), "{cmd}: {}", run.stderr);
        assert!(run.stderr.contains("60009"), "{cmd}: {}", run.stderr);
    }

    // --help documents the codes.
    for args in [&["--help"][..], &["import", "--help"][..]] {
        let run = Run::from(Command::new(BIN).args(args).output().unwrap());
        assert_eq!(run.code, Some(0));
        assert!(
            run.stdout.contains("Exit codes") && run.stdout.contains("130"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn delete_asks_first_and_dry_run_deletes_nothing() {
    let server = Server::start("\"tencent\"");
    assert_eq!(server.run(&["import", "d1", "d2"]).code, Some(0));
    // No terminal on stdin and no --yes: refuse, say why, delete nothing.
    let run = server.run(&["delete", "d1"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("stdin is not a terminal") && run.stderr.contains("--yes"),
        "{}",
        run.stderr
    );
    // IDs on stdin: the same refusal, for that reason.
    let mut child = server
        .command(&["delete", "--file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"d1\n").unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("come from stdin"), "{}", run.stderr);

    let run = server.run(&["delete", "--dry-run", "d1", "zz", "d2"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let results: Vec<Value> = run.rows().iter().map(|r| r["Result"].clone()).collect();
    assert_eq!(results, ["WouldDelete", "NotImported", "WouldDelete"]);
    assert!(run.stderr.contains("2 would be deleted"), "{}", run.stderr);

    let run = server.run(&["check", "d1", "d2"]);
    assert_all(&run, &["d1".into(), "d2".into()], 0, "Imported");
}

#[test]
fn output_formats_table_json_and_csv() {
    let server = Server::start("\"tencent\"");
    assert_eq!(server.run(&["import", "t1"]).code, Some(0));
    let run = server.run(&["check", "--output", "table", "t1", "t2"]);
    assert_eq!(run.code, Some(0));
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].contains("UserID") && lines[0].contains("Result"));
    assert!(lines[1].contains("t1") && lines[1].contains("Imported"));
    assert!(lines[2].contains("t2") && lines[2].contains("NotImported"));
    // Columns line up.
    assert_eq!(lines[1].find("Imported"), lines[2].find("NotImported"));

    let run = server.run(&["check", "-o", "csv", "t1", "t,2"]);
    assert_eq!(
        run.stdout,
        "Index,UserID,Result,ResultCode,ResultInfo,Random\n0,t1,Imported,0,,\n1,\"t,2\",NotImported,0,,\n"
    );

    let run = server.run(&["check", "-o", "json", "t1"]);
    assert_eq!(
        run.stdout,
        "{\"Index\":0,\"UserID\":\"t1\",\"Result\":\"Imported\",\"ResultCode\":0,\"ResultInfo\":\"\"}\n"
    );
}

#[test]
fn ctrl_c_stops_after_the_batch_in_flight_and_resume_from_finishes_the_job() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let all = ids("intr-", 3000);
    let file = write_lines(dir.path(), "ids.txt", &all);
    let file = file.to_str().unwrap();
    // 10 calls per second, one at a time: three seconds of work.
    let mut child = server
        .command(&[
            "import",
            "--rate",
            "10",
            "--concurrency",
            "1",
            "--file",
            file,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut early = String::new();
    // Interrupt once the job is visibly under way.
    for _ in 0..300 {
        stdout.read_line(&mut early).unwrap();
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let run = Run {
        code: status.code(),
        stdout: early + &rest,
        stderr,
    };
    let reached: usize = run
        .stderr
        .split("--resume-from ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no --resume-from in {}", run.stderr));
    assert!(run
        .stderr
        .contains(&format!("interrupted after {reached} of 3000")));
    assert_eq!(reached % 100, 0, "stopped on a batch boundary");
    assert!((300..3000).contains(&reached), "{reached}");
    assert_all(&run, &all[..reached], 0, "Imported");

    let n = reached.to_string();
    let run = server.run(&["import", "--resume-from", &n, "--file", file]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all[reached..], reached, "Imported");
    let run = server.run(&["check", "--file", file]);
    assert_all(&run, &all, 0, "Imported");
}

#[test]
fn usersig_is_renewed_across_its_expiry_on_a_long_job() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let all = ids("sig-", 1300);
    let file = write_lines(dir.path(), "ids.txt", &all);
    // 13 calls at 2/s with 3-second UserSigs: the job outlives two of them.
    let t = Instant::now();
    let run = server.run(&[
        "check",
        "--sig-expire",
        "3",
        "--rate",
        "2",
        "--concurrency",
        "1",
        "--attempts",
        "1",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(t.elapsed() >= Duration::from_secs(6));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("70001"));
    assert_all(&run, &all, 0, "NotImported");
}
