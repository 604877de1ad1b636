//! The `timacct` binary's integration tests, as one test binary (one link, one process
//! start per test under nextest, instead of one binary per file, each compiling `common`).
// A test fails by panicking: unwrap and expect are how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Every spawned process is waited for (servers by `common::Server`'s Drop).
#![allow(clippy::zombie_processes)]

mod common;

mod bulk;
mod cli;
mod crash;
mod postgres;
mod secrets;
