//! The client's integration tests, as one test binary (one link, one process start per
//! test under nextest, instead of one binary per file).
// A test fails by panicking: unwrap and expect are how it says what went wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
