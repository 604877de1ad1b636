//! The timacct server: Tencent Cloud Chat's account-management REST API, wire-exact, over a
//! [`timacct_store::AccountStore`].
//!
//! [`serve`] is the seam tests and the binary share: bind a listener (port 0 in tests), build
//! an [`AppState`], pass a shutdown future. Handlers stay thin: bytes become typed requests in
//! `timacct-proto`, one store call does the work, and the response goes back as bytes.
#![deny(missing_docs)]

mod auth;
pub mod config;
mod handlers;
mod http;
mod listener;
mod ratelimit;
mod state;

use std::future::Future;

pub use config::{AppConfig, Config, ConfigError, Plan, RateLimits, SecretKey};
pub use ratelimit::{RateLimitError, RedisRateLimiter, REDIS_TIMEOUT};
pub use state::{unix_now, AppState, DEFAULT_BODY_LIMIT, REIMPORT_BLOCK_SECS};

/// The axum router answering every path with the envelope.
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new().fallback(http::handle).with_state(state)
}

/// Serve on `listener` until `shutdown` completes; requests in flight then finish before this
/// returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener::EnvelopeListener::new(listener), router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
