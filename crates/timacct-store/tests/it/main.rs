//! The store's integration tests, in one binary: each backend against the conformance suite,
//! plus what only that backend has to show. One binary links the crate once instead of once
//! per file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
