//! Every request's first stop: the table of which part of the server answers which path, and
//! the one log line and metrics record per request.
//!
//! | path | answered by |
//! |---|---|
//! | `GET`/`HEAD` `/healthz`, `/readyz`, `/metrics` | [`crate::ops`], plain bodies with real HTTP statuses |
//! | `/timacct/v1/connect` | [`crate::sessions`]: a user's WebSocket login |
//! | any other `/timacct/v1/...` | [`crate::control`]: the emulator controls |
//! | anything else | [`crate::api`]: Tencent's REST API (`/v4/...`; other paths get 60009) |
//!
//! Everything timacct adds beyond Tencent's API lives under `/timacct/v1/`, never `/v4/`.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use timacct_proto::{Api, ApiError, ErrorCode};

use crate::api::envelope::{envelope_bytes, envelope_response};
use crate::ops::Endpoint;
use crate::request_id::request_id;
use crate::state::AppState;

/// The prefix of everything timacct offers beyond Tencent's API.
pub(crate) const TIMACCT_PREFIX: &str = "/timacct/v1/";

/// Which part of the server answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// An operational endpoint.
    Ops(Endpoint),
    /// A user's WebSocket login.
    Connect,
    /// An emulator control.
    Control,
    /// Tencent's REST API, or an unknown path (which it answers with 60009).
    Api,
}

impl Route {
    /// The route for a request line.
    pub(crate) fn of(method: &Method, path: &str) -> Route {
        if matches!(*method, Method::GET | Method::HEAD) {
            if let Some(endpoint) = Endpoint::of(path) {
                return Route::Ops(endpoint);
            }
        }
        match path.strip_prefix(TIMACCT_PREFIX) {
            Some("connect") => Route::Connect,
            Some(_) => Route::Control,
            None => Route::Api,
        }
    }
}

/// What is known of a request for its log line and metrics, filled in as it is parsed.
/// Never the identifier's UserSig nor any key: those must not reach the logs.
#[derive(Default)]
pub(crate) struct Trace {
    /// The Tencent API called, once the path is known to be one.
    pub api: Option<Api>,
    /// The `sdkappid` of the query string, once it parsed.
    pub sdkappid: Option<u32>,
    /// The caller's `random`, so that a call can be matched with the client's own logs.
    pub random: Option<u32>,
}

/// A route's answer: the body of a success, or the HTTP status and the error for the
/// envelope.
pub(crate) type Reply = Result<Vec<u8>, (StatusCode, ApiError)>;

/// Answer one request. Never fails: every outcome is an envelope (or, for the operational
/// endpoints, their own small bodies).
pub(crate) async fn handle(state: AppState, request: Request) -> Response {
    let started = Instant::now();
    if let Some(activity) = &state.inner.activity {
        activity.request();
    }
    let route = Route::of(request.method(), request.uri().path());
    let id = request_id();
    let mut trace = Trace::default();
    let reply = match route {
        Route::Ops(endpoint) => return crate::ops::answer(&state, endpoint).await,
        Route::Connect => crate::sessions::connect(&state, request, &mut trace).await,
        Route::Control => crate::control::answer(&state, request, &mut trace).await,
        Route::Api => crate::api::answer(&state, request, &mut trace).await,
    };
    let (status, code, body) = match reply {
        Ok(body) => (StatusCode::OK, ErrorCode::Ok, body),
        Err((status, e)) => (status, e.code, envelope_bytes(&e)),
    };
    let elapsed = started.elapsed();
    state.inner.metrics.request(trace.api, code, elapsed);
    // The query string is never logged whole: it carries the UserSig.
    tracing::debug!(
        request_id = %id,
        api = trace.api.map(Api::command),
        sdkappid = trace.sdkappid,
        random = trace.random,
        code = code.code(),
        status = status.as_u16(),
        elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    envelope_response(status, body, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(Route::of(&get, "/healthz"), Route::Ops(Endpoint::Health));
        assert_eq!(
            Route::of(&Method::HEAD, "/readyz"),
            Route::Ops(Endpoint::Ready)
        );
        assert_eq!(Route::of(&get, "/metrics"), Route::Ops(Endpoint::Metrics));
        // Only GET and HEAD reach the operational endpoints; a POST is an unknown API call.
        assert_eq!(Route::of(&post, "/healthz"), Route::Api);
        assert_eq!(Route::of(&get, "/timacct/v1/connect"), Route::Connect);
        assert_eq!(Route::of(&post, "/timacct/v1/apps/1/reset"), Route::Control);
        assert_eq!(
            Route::of(&post, "/v4/im_open_login_svc/account_check"),
            Route::Api
        );
        assert_eq!(Route::of(&post, "/v4/nothing"), Route::Api);
        assert_eq!(Route::of(&post, "/timacct/v2/x"), Route::Api);
    }
}
