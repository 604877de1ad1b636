//! The server's integration tests, in one binary so that the shared harness
//! (`timacct-test-support`) and every dependency are linked once rather than once per file.
//! Each module is one area, against the real server over real sockets:
//!
//! - [`api`]: the account API's contract, row by row of `docs/protocol.md`;
//! - [`hostile`]: hostile and malformed input over raw TCP;
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`, UserSig age, HTTPS, busy polling;
//! - [`overload`]: connection and request caps, queueing, stalled clients;
//! - [`rate_limits`]: each API's documented limit, from both sides, by counting;
//! - [`scale`]: several instances on one PostgreSQL and one Redis, and their outages.
// Tests fail by panicking, with the reason in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod hostile;
mod ops;
mod overload;
mod rate_limits;
mod scale;
