//! The server's integration tests, in one binary so that the shared harness
//! (`timacct-test-support`) and every dependency are linked once rather than once per file.
//! Each module is one area, against the real server over real sockets:
//!
//! - [`api`]: the account API's contract, row by row of `docs/protocol.md`;
//! - [`decisions`]: every number DECISIONS.md fixes (90 days, 32 and 500 bytes, batch sizes,
//!   rate limits) compared with the code's, and the 90-day re-import block at its boundary;
//! - [`hostile`]: hostile and malformed input over raw TCP;
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`, UserSig age, HTTPS, busy polling;
//! - [`order`]: the order of the checks, by requests wrong in two ways at once;
//! - [`overload`]: connection and request caps, queueing, stalled clients;
//! - [`rate_limits`]: each API's documented limit, from both sides, by counting;
//! - [`scale`]: several instances on one PostgreSQL and one Redis, and their outages.
// Tests fail by panicking, with the reason in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod decisions;
mod hostile;
mod ops;
mod order;
mod overload;
mod rate_limits;
mod scale;
