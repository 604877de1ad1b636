//! What every test module of this binary needs around the real `timacct` binary: running
//! `timacct serve` (and signalling, waiting for and reaping it) and its config file. Talking
//! to a server over HTTP is [`api`]; a faulty proxy in front of one, and a port nothing
//! listens on, come from `timacct-test-support` (`FaultProxy`, `closed_port`).

pub mod api;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `timacct` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_timacct");

/// A running `timacct serve`; killed and reaped when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What it printed on stdout, up to and including its "listening" line.
    pub printed: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Send SIGTERM (a graceful stop); the caller waits as it needs to.
    pub fn sigterm(&self) {
        signal(&self.child, "TERM");
    }

    /// `kill -9`, and wait until the process is gone.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// `timacct serve --listen 127.0.0.1:0`, taking nothing from `TIMACCT_CONFIG`, logging at
/// `warn` to the test's stderr; callers add the rest.
pub fn serve_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("TIMACCT_CONFIG")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    cmd
}

/// Spawn `cmd` and wait until it listens; `Err` with its exit code if it exits first. Its
/// stdout is then drained for good, so the server never blocks on a full pipe.
pub fn try_spawn(mut cmd: Command) -> Result<Server, i32> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let base = line
            .strip_prefix("timacct listening on ")
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned);
        printed.push(line);
        if let Some(base) = base {
            std::thread::spawn(move || for _ in lines {});
            return Ok(Server {
                child,
                base,
                printed,
            });
        }
    }
    let status = child.wait().unwrap();
    Err(status.code().unwrap_or(-1))
}

/// [`try_spawn`], for servers that must start.
pub fn spawn(cmd: Command) -> Server {
    try_spawn(cmd).unwrap_or_else(|code| panic!("server exited with {code} before listening"))
}

/// Send `name` (e.g. `TERM`, or `INT` as Ctrl-C does) to `child`, as `kill -NAME` does.
pub fn signal(child: &Child, name: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap()
        .success());
}

/// The exit status of `child` if it exits within `limit`; otherwise it is killed and reaped,
/// and the answer is `None`.
pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The app setting that turns the server's rate limits off, for [`write_config`].
pub const NO_RATE_LIMITS: &str = "rate_limits = \"off\"\n";

/// Write `dir/timacct.toml` with one app, `app` with `key`, and `settings` (more TOML lines
/// of that app); its path.
pub fn write_config(dir: &Path, app: u32, key: &str, settings: &str) -> PathBuf {
    let path = dir.join("timacct.toml");
    std::fs::write(
        &path,
        format!("[[apps]]\nsdkappid = {app}\nkey = \"{key}\"\n{settings}"),
    )
    .unwrap();
    path
}
