//! Running the real `timacct serve` binary, for every test file of this crate.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

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
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
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
