//! The timacct server: Tencent Cloud Chat's account-management REST API, wire-exact, over a
//! [`timacct_store::AccountStore`].
//!
//! [`ServerBuilder`] configures a [`Server`]; [`Server::serve`] is the seam tests and the
//! binary share: bind a listener (port 0 in tests), pass a shutdown future. Where things
//! live:
//!
//! - `transport/`: the accept loop, connection I/O and read deadlines, TLS, the request gate;
//! - `router`: which part answers which path;
//! - `api/`: Tencent's REST API, one file per API, with its envelope and rate limits;
//! - `auth/`: UserSig verification, then the caller's role;
//! - `sessions/`, `control/`, `callbacks/`: users' WebSocket logins, the emulator controls
//!   under `/timacct/v1/`, and callbacks to the app (homes for what comes next);
//! - `ops/`: `/healthz`, `/readyz`, `/metrics`;
//! - `apps`, `config`, `state`, `server`: the hosted apps, their config file, what a running
//!   server holds, and its builder.
#![deny(missing_docs)]

mod api;
mod apps;
mod auth;
mod callbacks;
pub mod config;
mod control;
mod ops;
mod request_id;
mod router;
mod server;
mod sessions;
mod state;
mod transport;

pub use api::rate_limit::{RateLimitError, RedisRateLimiter, REDIS_TIMEOUT};
pub use apps::REIMPORT_BLOCK_SECS;
pub use config::{AppConfig, Config, ConfigError, Plan, RateLimitPolicy, SecretKey};
/// The TLS configuration [`ServerBuilder::tls`] takes (rustls's).
pub use rustls::ServerConfig as TlsServerConfig;
pub use server::{Server, ServerBuilder, DEFAULT_BODY_LIMIT};
pub use transport::limits::{ServerLimits, DEFAULT_BUSY_POLL_US};
pub use transport::tls::{load_tls_config, TlsError};
