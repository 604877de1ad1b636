//! The `timacct` binary's integration tests, as one test binary: each module a group of
//! tests, the helpers they share in `common` (compiled and linked once, not once per test
//! file, and with no part of it unused).
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
