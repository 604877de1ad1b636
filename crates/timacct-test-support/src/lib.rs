//! What the workspace's integration tests share, so that no test file carries its own copy:
//!
//! - [`apps`]: the test app, its key and admin, the API paths, and app configs;
//! - [`usersig`]: fresh UserSigs, query strings and hand-made tokens;
//! - [`envelope`]: the checks every answer of the server must pass, over HTTP or raw TCP;
//! - [`server`]: the real server, in process, on a loopback port ([`TestServer`]), and signed
//!   calls to it ([`Caller`]);
//! - [`services`]: PostgreSQL and Redis for the tests that need them, skipped with a message
//!   where they are missing unless CI says they must be there;
//! - [`proxy`]: a fault-injecting HTTP proxy between a client and the real server, and a port
//!   nothing listens on;
//! - [`tally`]: what concurrent writers did to each UserID, checked against the final state;
//! - [`flood`]: as many calls as the machine can send, timed, for the rate-limit tests.
//!
//! Everything here is real: the server is `timacct_server`'s own over a real SQLite file (or
//! the store a test brings), spoken to over real sockets. Nothing is mocked; where a test
//! needs an answer the server does not give, the proxy gives it, and says so in the test.
//!
//! A helper goes here once two test files (or two crates) need it; a helper only one file uses
//! stays in that file. Dev-only: the crate is never published and no library depends on it.
// Test helpers fail by panicking, with the reason in the message: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod apps;
pub mod envelope;
pub mod flood;
pub mod proxy;
pub mod server;
pub mod services;
pub mod tally;
pub mod usersig;

pub use apps::*;
pub use envelope::{check_envelope, compact, parse_answer, parse_head, Reply};
pub use flood::{bucket_ceiling, flood, Flood, Shot};
pub use proxy::{closed_port, Fault, FaultProxy, Seen};
pub use server::{spawn_app, spawn_limited, spawn_with, Caller, Spawn, TestServer, TestStore};
pub use services::{database, in_ci, redis, services, Services, TestRedis};
pub use tally::Tally;
pub use usersig::*;
