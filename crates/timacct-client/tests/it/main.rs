//! The client's integration tests, as one test binary: each module a group of tests, the
//! helpers they share in `common` (linked once, not once per test file).
// A test fails by panicking: unwrap and expect are how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod client;
