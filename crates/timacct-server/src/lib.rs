//! The timacct server: Tencent Cloud Chat's account-management REST API, wire-exact, over a
//! [`timacct_store::AccountStore`].
//!
//! [`serve`] is the seam tests and the binary share: bind a listener (port 0 in tests), build
//! an [`AppState`], pass a shutdown future. Handlers stay thin: bytes become typed requests in
//! `timacct-proto`, one store call does the work, and the response goes back as bytes.
#![deny(missing_docs)]

mod auth;
pub mod config;
mod conn;
mod handlers;
mod http;
mod limits;
mod listener;
mod metrics;
mod overload;
mod ratelimit;
mod spin;
mod state;
mod tls;

use std::future::Future;
use std::sync::Arc;

pub use config::{AppConfig, Config, ConfigError, Plan, RateLimits, SecretKey};
pub use limits::{Limits, DEFAULT_BUSY_POLL_US};
pub use ratelimit::{RateLimitError, RedisRateLimiter, REDIS_TIMEOUT};
/// The TLS configuration [`serve_tls`] takes (rustls's).
pub use rustls::ServerConfig as TlsServerConfig;
pub use state::{AppState, DEFAULT_BODY_LIMIT, REIMPORT_BLOCK_SECS};
pub use tls::{load_tls_config, TlsError};

/// An axum router answering every path as the server does (for embedding in another axum
/// app; [`serve`] does not use it, it drives hyper itself to enforce the [`Limits`]).
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .fallback(
            |axum::extract::State(state): axum::extract::State<AppState>,
             request: axum::extract::Request| http::handle(state, request),
        )
        .with_state(state)
}

/// Serve plain HTTP on `listener` until `shutdown` completes; requests in flight then finish
/// before this returns. The state's [`Limits`] apply.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    conn::run(listener, state, None, shutdown).await
}

/// Serve HTTPS on `listener` (see [`load_tls_config`]), otherwise exactly as [`serve`].
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Arc<TlsServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    conn::run(
        listener,
        state,
        Some(tokio_rustls::TlsAcceptor::from(tls)),
        shutdown,
    )
    .await
}
