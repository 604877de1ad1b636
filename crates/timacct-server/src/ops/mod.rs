//! Operational endpoints outside the Tencent API (`/healthz`, `/readyz`, `/metrics`), and the
//! metrics behind the last one.

pub(crate) mod metrics;
pub(crate) mod timed_store;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::state::AppState;

/// How long `/readyz` waits for the store before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// An operational endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `/healthz`: liveness.
    Health,
    /// `/readyz`: the store answers.
    Ready,
    /// `/metrics`: Prometheus text.
    Metrics,
}

impl Endpoint {
    /// The table of paths.
    const PATHS: [(&'static str, Endpoint); 3] = [
        ("/healthz", Endpoint::Health),
        ("/readyz", Endpoint::Ready),
        ("/metrics", Endpoint::Metrics),
    ];

    /// The endpoint at `path`, if any.
    pub(crate) fn of(path: &str) -> Option<Endpoint> {
        Self::PATHS
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, endpoint)| *endpoint)
    }
}

/// `/healthz`, `/readyz`, `/metrics`: outside the Tencent API, so plain small bodies with
/// real HTTP statuses that orchestrators and Prometheus understand. Not behind the request
/// gate: a liveness probe must not fail because the server is busy, or it would be killed
/// exactly when it is loaded.
pub(crate) async fn answer(state: &AppState, endpoint: Endpoint) -> Response {
    let (status, content_type, body) = match endpoint {
        Endpoint::Health => (
            StatusCode::OK,
            "application/json",
            br#"{"status":"ok"}"#.to_vec(),
        ),
        Endpoint::Ready => {
            let probe = state.inner.store.account_count(0);
            match tokio::time::timeout(READY_TIMEOUT, probe).await {
                Ok(Ok(_)) => (
                    StatusCode::OK,
                    "application/json",
                    br#"{"status":"ready"}"#.to_vec(),
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "readiness probe: storage unavailable");
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "application/json",
                        br#"{"status":"unavailable","reason":"storage is not reachable"}"#.to_vec(),
                    )
                }
                Err(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "application/json",
                    br#"{"status":"unavailable","reason":"storage did not answer in time"}"#
                        .to_vec(),
                ),
            }
        }
        Endpoint::Metrics => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state
                .inner
                .metrics
                .render(state.inner.gate.in_flight(), state.inner.gate.waiting())
                .into_bytes(),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
