//! The account commands of the real `timacct` binary (import, check, delete, kick, online)
//! against the real server (`timacct serve`) on a loopback port: bulk jobs under Tencent's
//! rate limits, a server stricter than the client's pace, CSV input, output formats, exit
//! codes, Ctrl-C and --resume-from, UserSig renewal.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use timacct_test_support::{closed_port, Fault, FaultProxy};

use crate::common::{self, serve_command, signal, spawn, wait_with_timeout, write_config, BIN};

const APP: u32 = 1_400_000_888;
const KEY: &str = "bulk-test-key";

/// A running `timacct serve` with its own config and data directory.
struct Server {
    server: common::Server,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Server {
    type Target = common::Server;
    fn deref(&self) -> &common::Server {
        &self.server
    }
}

impl Server {
    /// The server with one app whose `rate_limits` is `limits` (TOML).
    fn start(limits: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(dir.path(), APP, KEY, &format!("rate_limits = {limits}\n"));
        let data = dir.path().join("data");
        let mut cmd = serve_command();
        cmd.arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data);
        Server {
            server: spawn(cmd),
            data,
            _dir: dir,
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
        self.server.sigterm();
        assert_eq!(self.server.child.wait().unwrap().code(), Some(0));
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
    // stderr is not a terminal: a summary line, no progress bar.
    assert!(!run.stderr.contains("ETA"), "{}", run.stderr);

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
    let closed = closed_port();
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
    // Ctrl-C, as the terminal sends it: SIGINT to the process.
    signal(&child, "INT");
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
    let reached = resume_from(&run.stderr);
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

/// The `--resume-from N` a run's stderr tells the user to continue with.
fn resume_from(stderr: &str) -> usize {
    stderr
        .split("--resume-from ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no --resume-from in {stderr}"))
}

/// What a child prints on one of its pipes, read on a thread of its own as it comes.
struct Collected {
    text: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl<R: Read + Send + 'static> From<R> for Collected {
    fn from(mut pipe: R) -> Collected {
        let text = Arc::new(Mutex::new(String::new()));
        let into = text.clone();
        let reader = std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Collected { text, reader }
    }
}

impl Collected {
    /// Wait (20 s at most) until `what` has been printed.
    fn wait_for(&self, what: &str) {
        let start = std::time::Instant::now();
        while !self.text.lock().unwrap().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no {what:?} in 20 s: {}",
                self.text.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything printed, once the pipe is closed.
    fn finish(self) -> String {
        self.reader.join().unwrap();
        let text = self.text.lock().unwrap();
        text.clone()
    }
}

#[test]
fn ctrl_c_sends_none_of_the_batches_still_waiting_for_their_pace() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let all = ids("paced-intr-", 1000);
    let file = write_lines(dir.path(), "ids.txt", &all);
    let file = file.to_str().unwrap();
    // Two calls per second, four batches in flight: five seconds of work, with three or
    // four batches waiting for their pacing slot at any moment.
    let mut child = server
        .command(&["import", "--rate", "2", "--file", file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = Collected::from(child.stdout.take().unwrap());
    let stderr = Collected::from(child.stderr.take().unwrap());
    // The first batch's rows: the job is under way (and its Ctrl-C handler in place). A
    // second on, the next slots (0.5 s, 1 s) have gone by and the later ones are still
    // being waited for.
    stdout.wait_for("paced-intr-00099");
    std::thread::sleep(Duration::from_secs(1));
    // Ctrl-C, as the terminal sends it: SIGINT to the process.
    signal(&child, "INT");
    let status = wait_with_timeout(&mut child, Duration::from_secs(20))
        .expect("still running 20 s after Ctrl-C");
    let run = Run {
        code: status.code(),
        stdout: stdout.finish(),
        stderr: stderr.finish(),
    };
    assert_eq!(run.code, Some(130), "{}", run.stderr);

    // The summary and the --resume-from line come last.
    let lines: Vec<&str> = run.stderr.lines().collect();
    let reached = resume_from(&run.stderr);
    let [.., notice, summary, resume] = lines[..] else {
        panic!("{}", run.stderr);
    };
    assert!(notice.contains("interrupted;"), "{}", run.stderr);
    assert!(
        summary.starts_with(&format!(
            "timacct: import: {reached} of 1000 accounts done, "
        )),
        "{}",
        run.stderr
    );
    assert_eq!(
        resume,
        format!(
            "timacct: interrupted after {reached} of 1000 accounts; to continue, run the same command with --resume-from {reached}"
        ),
        "{}",
        run.stderr
    );
    // Stopped where the batches already sent end: not after the ones waiting for a slot.
    assert_eq!(reached % 100, 0, "{reached}");
    assert!((100..=500).contains(&reached), "{}", run.stderr);
    assert_all(&run, &all[..reached], 0, "Imported");
    assert_eq!(run.summary("requests"), (reached / 100) as u64);

    // The server agrees: the first N are imported, none after them.
    let run = server.run(&["check", "--file", file]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let rows = run.rows();
    assert_eq!(rows.len(), 1000);
    for (i, row) in rows.iter().enumerate() {
        let expected = if i < reached {
            "Imported"
        } else {
            "NotImported"
        };
        assert_eq!(row["Result"], expected, "{i} of {reached}: {row}");
    }
}

#[test]
fn usersig_is_renewed_across_its_expiry_on_a_long_job() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let all = ids("sig-", 1300);
    let file = write_lines(dir.path(), "ids.txt", &all);
    // 13 calls at 2/s with 3-second UserSigs: the job outlives two of them.
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
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("70001"));
    assert_all(&run, &all, 0, "NotImported");
    // Six seconds of calls with three-second UserSigs renewed after two: at least three
    // UserSigs, and not one call refused for an expired one.
    assert!(run.summary("admin UserSigs made") >= 3, "{}", run.stderr);
    assert_eq!(run.summary("requests"), 13);
}

#[test]
fn injected_faults_cost_retries_not_accounts_and_no_credential_is_ever_printed() {
    let server = Server::start("\"tencent\"");
    let faults = [
        Fault::Code(70500),
        Fault::Code(60008),
        Fault::Drop,
        Fault::Status(502),
        Fault::ForwardThenDrop,
        Fault::Code(60007),
        Fault::Code(70202),
    ];
    let proxy = FaultProxy::start(&server.base, &faults);
    let dir = tempfile::tempdir().unwrap();
    let all = ids("fault-", 1000);
    let file = write_lines(dir.path(), "ids.txt", &all);
    // Everything the client and the libraries under it can log.
    let run = Run::from(
        server
            .command(&["import", "--file", file.to_str().unwrap()])
            .env("TIMACCT_ENDPOINT", &proxy.base)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all, 0, "Imported");
    // Ten batches; each fault cost one retry, and nothing else was retried.
    assert_eq!(run.summary("requests"), 17, "{}", run.stderr);
    assert_eq!(run.summary("retries"), 7, "{}", run.stderr);
    assert_eq!(run.summary("rate-limited"), 1, "{}", run.stderr);
    assert!(run.stderr.contains("retrying"), "the retries are logged");
    let seen = proxy.seen();
    assert_eq!(seen.len(), 17);
    let randoms: std::collections::HashSet<String> =
        seen.iter().map(|s| s.param("random").unwrap()).collect();
    assert_eq!(randoms.len(), 17, "a fresh random per attempt");

    // A failed run, too, through the proxy: a wrong key, then a host that is down.
    let wrong = Run::from(
        server
            .command(&["check", "--key", "not-the-key", "a"])
            .env("TIMACCT_ENDPOINT", &proxy.base)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap(),
    );
    assert_eq!(wrong.code, Some(2));
    assert!(wrong.stderr.contains("70009"), "{}", wrong.stderr);
    let down = Run::from(
        server
            .command(&["check", "--attempts", "2", "a"])
            .env("TIMACCT_ENDPOINT", closed_port())
            .env("RUST_LOG", "trace")
            .output()
            .unwrap(),
    );
    assert_eq!(down.code, Some(2));

    // The UserSigs the proxy saw, and the keys, appear in no output.
    let sigs: std::collections::HashSet<String> = proxy
        .seen()
        .iter()
        .map(|s| s.param("usersig").unwrap())
        .collect();
    assert!(sigs.iter().all(|s| s.len() > 20), "{sigs:?}");
    for run in [&run, &wrong, &down] {
        let text = format!("{}\n{}", run.stdout, run.stderr);
        for secret in sigs
            .iter()
            .map(String::as_str)
            .chain([KEY, "not-the-key", "usersig="])
        {
            assert!(!text.contains(secret), "{secret:?} printed:\n{text}");
        }
    }

    // Every account is there, read straight from the server.
    let run = server.run(&["check", "--file", file.to_str().unwrap()]);
    assert_all(&run, &all, 0, "Imported");
}

#[test]
fn non_retryable_answers_are_never_retried() {
    let server = Server::start("\"tencent\"");
    let all = ids("nr-", 300);
    let dir = tempfile::tempdir().unwrap();
    let file = write_lines(dir.path(), "ids.txt", &all);
    let file = file.to_str().unwrap();

    // About the batch (70402): its 100 rows fail with the code and the call's random; the
    // job goes on; exit 1.
    let proxy = FaultProxy::start(&server.base, &[Fault::Code(70402)]);
    let run = Run::from(
        server
            .command(&["import", "--concurrency", "1", "--file", file])
            .env("TIMACCT_ENDPOINT", &proxy.base)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let rows = run.rows();
    assert_eq!(rows.len(), 300);
    let random = proxy.seen()[0].param("random").unwrap();
    for (i, row) in rows.iter().enumerate() {
        if i < 100 {
            assert_eq!(row["Result"], "Failed", "{row}");
            assert_eq!(row["ResultCode"], 70402, "{row}");
            assert_eq!(row["Random"].to_string(), random, "{row}");
        } else {
            assert_eq!(row["Result"], "Imported", "{row}");
        }
    }
    assert_eq!(proxy.seen().len(), 3);
    assert_eq!(run.summary("retries"), 0);

    // About the caller (70403): the job stops at the first batch; exit 2.
    let proxy = FaultProxy::start(&server.base, &[Fault::Code(70403)]);
    let run = Run::from(
        server
            .command(&["check", "--concurrency", "1", "--file", file])
            .env("TIMACCT_ENDPOINT", &proxy.base)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr.contains("stopped after 0 of 300") && run.stderr.contains("70403"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!(
            "random {}",
            proxy.seen()[0].param("random").unwrap()
        )),
        "{}",
        run.stderr
    );
    assert_eq!(proxy.seen().len(), 1);
}

#[test]
fn a_main_endpoint_that_is_down_fails_over_to_the_backup() {
    let server = Server::start("\"tencent\"");
    let all = ids("fo-", 300);
    let dir = tempfile::tempdir().unwrap();
    let file = write_lines(dir.path(), "ids.txt", &all);
    let run = Run::from(
        server
            .command(&[
                "import",
                "--attempts",
                "1",
                "--concurrency",
                "1",
                "--backup-endpoint",
                &server.base,
                "--file",
                file.to_str().unwrap(),
            ])
            .env("TIMACCT_ENDPOINT", closed_port())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_all(&run, &all, 0, "Imported");
    // One failover inside the first call (no retries allowed); the later calls went to the
    // backup directly.
    assert_eq!(run.summary("failovers"), 1, "{}", run.stderr);
    assert_eq!(run.summary("requests"), 4, "{}", run.stderr);

    // The same from the environment.
    let run = Run::from(
        server
            .command(&["check", "--attempts", "1", "fo-00000"])
            .env("TIMACCT_ENDPOINT", closed_port())
            .env("TIMACCT_BACKUP_ENDPOINT", &server.base)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.rows()[0]["Result"], "Imported");
}

#[test]
fn connection_settings_come_from_flags_or_the_environment() {
    let server = Server::start("\"tencent\"");
    // TIMACCT_ADMIN names someone who is not an admin of the app: 70403, exit 2.
    let run = Run::from(
        server
            .command(&["import", "a1"])
            .env("TIMACCT_ADMIN", "not-an-admin")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("70403"), "{}", run.stderr);
    // A flag wins over the environment.
    let run = Run::from(
        server
            .command(&["import", "--admin", "administrator", "a1"])
            .env("TIMACCT_ADMIN", "not-an-admin")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // Every setting as a flag, none in the environment.
    let run = Run::from(
        Command::new(BIN)
            .args(["check", "--endpoint", &server.base])
            .args(["--sdkappid", &APP.to_string(), "--key", KEY, "a1"])
            .env_remove("TIMACCT_ENDPOINT")
            .env_remove("TIMACCT_SDKAPPID")
            .env_remove("TIMACCT_KEY")
            .env_remove("TIMACCT_ADMIN")
            .env_remove("TIMACCT_BACKUP_ENDPOINT")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.rows()[0]["Result"], "Imported");
    // --help shows where each setting may come from, never the key's value.
    let run = Run::from(server.command(&["import", "--help"]).output().unwrap());
    assert_eq!(run.code, Some(0));
    for env in [
        "TIMACCT_ENDPOINT",
        "TIMACCT_SDKAPPID",
        "TIMACCT_KEY",
        "TIMACCT_ADMIN",
    ] {
        assert!(run.stdout.contains(env), "{env}: {}", run.stdout);
    }
    assert!(!run.stdout.contains(KEY), "{}", run.stdout);
    // An input with no UserIDs in it is a usage error.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    let run = server.run(&["check", "--file", empty.to_str().unwrap()]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("no UserIDs"), "{}", run.stderr);
}

/// `args` started on a pseudo-terminal (util-linux `script`): what is written to the
/// child's stdin is typed on the terminal, its stdout is what the terminal shows (stdout and
/// stderr both). `None` when `script` is not installed.
fn start_on_a_terminal(server: &Server, args: &[&str]) -> Option<std::process::Child> {
    let quoted: Vec<String> = std::iter::once(BIN)
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let child = Command::new("script")
        .args(["-qec", &quoted.join(" "), "/dev/null"])
        .env("TIMACCT_ENDPOINT", &server.base)
        .env("TIMACCT_SDKAPPID", APP.to_string())
        .env("TIMACCT_KEY", KEY)
        .env_remove("TIMACCT_ADMIN")
        .env_remove("RUST_LOG")
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    match child {
        Ok(child) => Some(child),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("script: {e}"),
    }
}

/// `args` run on a pseudo-terminal, with `typed` typed on it; what the terminal showed.
/// `None` when `script` is not installed.
fn on_a_terminal(server: &Server, args: &[&str], typed: &str) -> Option<(Option<i32>, String)> {
    let mut child = start_on_a_terminal(server, args)?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(typed.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    Some((
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
    ))
}

#[test]
fn on_a_terminal_rows_are_a_table_and_a_long_job_shows_a_progress_bar() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let all = ids("tty-", 1000);
    let file = write_lines(dir.path(), "ids.txt", &all);
    let Some((code, screen)) = on_a_terminal(
        &server,
        &[
            "check",
            "--rate",
            "10",
            "--concurrency",
            "1",
            "--file",
            file.to_str().unwrap(),
        ],
        "",
    ) else {
        no_script();
        return;
    };
    assert_eq!(code, Some(0), "{screen}");
    // A table (not JSON lines), every row in it.
    assert!(
        screen.contains("UserID") && screen.contains("Result"),
        "{screen}"
    );
    assert!(!screen.contains("{\"Index\""), "{screen}");
    for id in &all {
        assert!(screen.contains(id.as_str()), "{id} missing");
    }
    // A progress bar with the count, the rate and the ETA.
    assert!(screen.contains("/1000 accounts"), "{screen}");
    assert!(
        screen.contains("accounts/s") && screen.contains("ETA"),
        "{screen}"
    );

    // One batch or less: no bar.
    let (code, screen) = on_a_terminal(&server, &["check", "tty-00001", "tty-00002"], "").unwrap();
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("tty-00002") && !screen.contains("ETA"),
        "{screen}"
    );
}

#[test]
fn on_a_terminal_ctrl_c_clears_the_bar_and_the_summary_comes_last() {
    let server = Server::start("\"tencent\"");
    let dir = tempfile::tempdir().unwrap();
    let all = ids("tty-intr-", 1000);
    let file = write_lines(dir.path(), "ids.txt", &all);
    let args = ["import", "--rate", "2", "--file", file.to_str().unwrap()];
    let Some(mut child) = start_on_a_terminal(&server, &args) else {
        no_script();
        return;
    };
    // Kept open until the end: `script` would pass on an end of input.
    let mut keys = child.stdin.take().unwrap();
    let screen = Collected::from(child.stdout.take().unwrap());
    let _stderr = Collected::from(child.stderr.take().unwrap());
    // The first batch's rows, under the bar; then Ctrl-C, typed on the terminal, while
    // later batches wait for their slot.
    screen.wait_for("tty-intr-00099");
    std::thread::sleep(Duration::from_secs(1));
    keys.write_all(b"\x03").unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(20))
        .expect("still running 20 s after Ctrl-C");
    drop(keys);
    let screen = screen.finish();
    assert_eq!(status.code(), Some(130), "{screen}");

    let reached = resume_from(&screen);
    assert_eq!(reached % 100, 0, "{reached}");
    assert!((100..=500).contains(&reached), "{screen}");
    // The first rows under the bar; then the notice, the rows of the requests already sent,
    // the summary and the resume line, and nothing after them. The bar is gone at the notice,
    // and never drawn again.
    let (until_notice, since_notice) = screen.split_once("timacct: interrupted;").unwrap();
    assert!(
        until_notice.contains("accounts/s"),
        "the bar was shown: {screen}"
    );
    assert!(until_notice.contains("tty-intr-00099"), "{screen}");
    assert!(
        !since_notice.contains("accounts/s") && !since_notice.contains("ETA"),
        "the bar was drawn again after the notice: {since_notice:?}"
    );
    let lines: Vec<&str> = since_notice
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .collect();
    let [.., summary, resume] = lines[..] else {
        panic!("{since_notice:?}");
    };
    assert!(
        summary.starts_with(&format!(
            "timacct: import: {reached} of 1000 accounts done, "
        )),
        "{since_notice:?}"
    );
    assert_eq!(
        resume,
        format!(
            "timacct: interrupted after {reached} of 1000 accounts; to continue, run the same command with --resume-from {reached}"
        ),
        "{since_notice:?}"
    );
}

#[test]
fn kick_and_online_send_the_documented_requests_and_show_the_answers() {
    let server = Server::start("\"tencent\"");
    // timacct answers both with 60009 for now; the proxy answers in its place as Tencent
    // documents, and records what the binary sent.
    const OK: &str = r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}"#;
    const GONE: &str = r#"{"ActionStatus":"FAIL","ErrorInfo":"no such account","ErrorCode":70107}"#;
    const ONLINE: &str = r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0,
        "QueryResult":[{"To_Account":"o2","Status":"PushOnline","Detail":[{"Platform":"iPhone","Status":"PushOnline"}]},
                       {"To_Account":"o1","Status":"Offline"}],
        "ErrorList":[{"To_Account":"o3","ErrorCode":70107}]}"#;
    let proxy = FaultProxy::start(
        &server.base,
        &[Fault::Reply(OK), Fault::Reply(GONE), Fault::Reply(ONLINE)],
    );
    let run = Run::from(
        server
            .command(&["kick", "--concurrency", "1", "k1", "k2"])
            .env("TIMACCT_ENDPOINT", &proxy.base)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let rows = run.rows();
    assert_eq!(
        (&rows[0]["Result"], &rows[0]["ResultCode"]),
        (&"Kicked".into(), &0.into())
    );
    assert_eq!(
        (&rows[1]["Result"], &rows[1]["ResultCode"]),
        (&"Failed".into(), &70107.into())
    );

    let run = Run::from(
        server
            .command(&["online", "--detail", "o1", "o2", "o3"])
            .env("TIMACCT_ENDPOINT", &proxy.base)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let rows = run.rows();
    let summary: Vec<(Value, Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["UserID"].clone(),
                r["Result"].clone(),
                r["ResultCode"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("o1".into(), "Offline".into(), 0.into()),
            ("o2".into(), "PushOnline".into(), 0.into()),
            ("o3".into(), "Failed".into(), 70107.into()),
        ]
    );
    assert_eq!(rows[1]["Detail"][0]["Platform"], "iPhone");

    let sent: Vec<(String, String)> = proxy.seen().into_iter().map(|s| (s.path, s.body)).collect();
    let kick = "/v4/im_open_login_svc/kick".to_owned();
    assert_eq!(
        sent,
        [
            (kick.clone(), r#"{"UserID":"k1"}"#.to_owned()),
            (kick, r#"{"UserID":"k2"}"#.to_owned()),
            (
                "/v4/openim/query_online_status".to_owned(),
                r#"{"To_Account":["o1","o2","o3"],"IsNeedDetail":1}"#.to_owned()
            ),
        ]
    );
    for s in proxy.seen() {
        assert_eq!(s.param("sdkappid").unwrap(), APP.to_string());
        assert_eq!(s.param("identifier").unwrap(), "administrator");
        assert_eq!(s.param("contenttype").unwrap(), "json");
    }
}

#[test]
fn on_a_terminal_delete_asks_and_only_yes_deletes() {
    let server = Server::start("\"tencent\"");
    assert_eq!(server.run(&["import", "q1", "q2"]).code, Some(0));
    let Some((code, screen)) = on_a_terminal(&server, &["delete", "q1", "q2"], "n\n") else {
        no_script();
        return;
    };
    assert_eq!(code, Some(2), "{screen}");
    assert!(
        screen.contains("Delete 2 accounts of app") && screen.contains("cannot be undone"),
        "{screen}"
    );
    assert!(screen.contains("nothing was deleted"), "{screen}");
    let run = server.run(&["check", "q1", "q2"]);
    assert_all(&run, &["q1".into(), "q2".into()], 0, "Imported");

    let (code, screen) = on_a_terminal(&server, &["delete", "q1"], "y\n").unwrap();
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Deleted"), "{screen}");
    let run = server.run(&["check", "q1", "q2"]);
    let results: Vec<Value> = run.rows().iter().map(|r| r["Result"].clone()).collect();
    assert_eq!(results, ["NotImported", "Imported"]);
}

/// Without util-linux `script` there is no terminal to test on: outside CI the test says so
/// and passes; in CI (which installs `script`) that is a failure, never a silent skip.
fn no_script() {
    assert!(
        !timacct_test_support::in_ci(),
        "util-linux `script` is not installed, and CI must run the terminal tests"
    );
    eprintln!("skipped: util-linux `script` is not installed");
}
