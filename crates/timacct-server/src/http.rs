//! The HTTP surface: every request, whatever its path, method or body, gets Tencent's JSON
//! envelope. This is the one place where an [`ApiError`] becomes bytes on the wire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};
use timacct_proto::{Api, ApiError, ApiQuery, Envelope, ErrorCode};

use crate::auth::authenticate;
use crate::handlers;
use crate::metrics::Timeout;
use crate::state::AppState;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// A request's id, `pppppppp-ssssssssssss` in hex: a random per-process prefix and a
/// sequence number. Kept as numbers and formatted into a stack buffer: a `format!` per
/// request was a measurable share of `account_check`'s cost.
#[derive(Clone, Copy)]
pub(crate) struct RequestId {
    prefix: u32,
    seq: u64,
}

impl RequestId {
    fn ascii(self) -> [u8; 21] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 21];
        for k in 0..8 {
            out[k] = HEX[((self.prefix >> (28 - 4 * k)) & 0xf) as usize];
        }
        for k in 0..12 {
            out[9 + k] = HEX[((self.seq >> (44 - 4 * k)) & 0xf) as usize];
        }
        out
    }

    fn header_value(self) -> HeaderValue {
        // Hex digits and '-' are always a valid header value.
        HeaderValue::from_bytes(&self.ascii()).unwrap_or(HeaderValue::from_static("-"))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ascii = self.ascii();
        f.write_str(std::str::from_utf8(&ascii).unwrap_or("-"))
    }
}

pub(crate) fn request_id() -> RequestId {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    RequestId {
        prefix: *PREFIX.get_or_init(rand::random::<u32>),
        seq: REQUEST_SEQ.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff,
    }
}

/// What is known of a request for its log line and metrics, filled in as it is parsed.
/// Never the identifier's UserSig nor any key: those must not reach the logs.
#[derive(Default)]
struct Trace {
    api: Option<Api>,
    sdkappid: Option<u32>,
    random: Option<u32>,
}

/// Answer one request. Never fails: every outcome is an envelope (or, for the operational
/// endpoints `/healthz`, `/readyz` and `/metrics`, their own small bodies).
pub(crate) async fn handle(state: AppState, request: Request) -> Response {
    let started = Instant::now();
    if let Some(activity) = &state.inner.activity {
        activity.request();
    }
    let id = request_id();
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        if let Some(response) = operational(&state, request.uri().path()).await {
            return response;
        }
    }
    let mut trace = Trace::default();
    let (status, code, body) = match answer(&state, request, &mut trace).await {
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

fn envelope_response(status: StatusCode, body: Vec<u8>, id: RequestId) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert("x-request-id", id.header_value());
    response
}

/// The answer on a connection over `--max-connections`: 60018, then the connection closes.
pub(crate) fn connections_full() -> Response {
    let e = ApiError::with_info(
        ErrorCode::TooManyRequests,
        "the server has too many open connections; nothing was changed, retry shortly",
    );
    let mut response = envelope_response(StatusCode::OK, envelope_bytes(&e), request_id());
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// How long `/readyz` waits for the store before calling it unreachable.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz`, `/readyz`, `/metrics`: outside the Tencent API, so plain small bodies with
/// real HTTP statuses that orchestrators and Prometheus understand. Not behind the request
/// gate: a liveness probe must not fail because the server is busy, or it would be killed
/// exactly when it is loaded.
async fn operational(state: &AppState, path: &str) -> Option<Response> {
    let (status, content_type, body) = match path {
        "/healthz" => (
            StatusCode::OK,
            "application/json",
            br#"{"status":"ok"}"#.to_vec(),
        ),
        "/readyz" => {
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
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            state
                .inner
                .metrics
                .render(state.inner.gate.in_flight(), state.inner.gate.waiting())
                .into_bytes(),
        ),
        _ => return None,
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Some(response)
}

fn envelope_bytes(e: &ApiError) -> Vec<u8> {
    serde_json::to_vec(&Envelope::fail(e)).unwrap_or_else(|_| {
        br#"{"ActionStatus":"FAIL","ErrorCode":70500,"ErrorInfo":"internal server error; retry"}"#
            .to_vec()
    })
}

type Failure = (StatusCode, ApiError);

fn api_failure(e: ApiError) -> Failure {
    (StatusCode::OK, e)
}

async fn answer(state: &AppState, request: Request, trace: &mut Trace) -> Result<Vec<u8>, Failure> {
    match *request.method() {
        // A published Python client sends account_check as GET with a body.
        Method::POST | Method::GET => {}
        _ => {
            return Err((
                StatusCode::METHOD_NOT_ALLOWED,
                ApiError::with_info(
                    ErrorCode::HttpParse,
                    format!("method {} is not allowed; use POST", request.method()),
                ),
            ))
        }
    }
    let api = match Api::from_path(request.uri().path()) {
        Some(
            api @ (Api::AccountImport
            | Api::MultiAccountImport
            | Api::AccountCheck
            | Api::AccountDelete),
        ) => api,
        Some(api) => {
            return Err(api_failure(ApiError::with_info(
                ErrorCode::UnknownResource,
                format!("{} is not available on this server yet", api.path()),
            )))
        }
        None => {
            return Err(api_failure(ApiError::with_info(
                ErrorCode::UnknownResource,
                "unknown API; check the request URL (/v4/{servicename}/{command})",
            )))
        }
    };
    trace.api = Some(api);
    let limits = &state.inner.limits;
    // Held until the answer is built: bounds the requests (and their bodies) in memory.
    let _slot = state.inner.gate.enter().await.map_err(|_| {
        api_failure(ApiError::with_info(
            ErrorCode::TooManyRequests,
            format!(
                "the server is handling its maximum of {} requests and {} more are waiting; nothing was changed, retry shortly",
                limits.max_concurrent_requests, limits.max_queued_requests
            ),
        ))
    })?;
    let query = ApiQuery::parse(request.uri().query().unwrap_or(""));
    trace.sdkappid = query.sdkappid().ok();
    trace.random = query.random.as_deref().and_then(|r| r.parse().ok());
    let app = authenticate(state, api, &query).map_err(api_failure)?;
    let allowed = app
        .limiter()
        .allow(api)
        .await
        .map_err(|e| api_failure(e.into()))?;
    if !allowed {
        return Err(api_failure(ApiError::with_info(
            ErrorCode::RateLimited,
            format!(
                "{} is limited to {} calls per second for this app; reduce the request rate",
                api.command(),
                app.config.rate_limits.limit(api).unwrap_or(0)
            ),
        )));
    }
    let body = match tokio::time::timeout(
        limits.body_timeout,
        read_body(request, state.inner.body_limit),
    )
    .await
    {
        Ok(body) => body.map_err(api_failure)?,
        Err(_) => {
            state.inner.metrics.timeout(Timeout::Body);
            return Err(api_failure(ApiError::with_info(
                ErrorCode::ServiceTimeout,
                format!(
                    "the request body did not arrive within {} s; nothing was changed, send the request again",
                    limits.body_timeout.as_secs_f64()
                ),
            )));
        }
    };
    let reply = async {
        match api {
            Api::AccountImport => handlers::account_import(state, app, &body).await,
            Api::MultiAccountImport => handlers::multiaccount_import(state, app, &body).await,
            Api::AccountCheck => handlers::account_check(state, app, &body).await,
            Api::AccountDelete => handlers::account_delete(state, app, &body).await,
            Api::Kick | Api::QueryOnlineStatus => Err(ApiError::new(ErrorCode::UnknownResource)),
        }
    };
    // A handler that completes at once (the common case) never touches the timer.
    match tokio::time::timeout(limits.request_timeout, reply).await {
        Ok(reply) => reply.map_err(api_failure),
        Err(_) => {
            state.inner.metrics.timeout(Timeout::Request);
            Err(api_failure(ApiError::with_info(
                ErrorCode::ServiceTimeout,
                format!(
                    "the request was not handled within {} s; a write may still complete, so check before retrying (retrying an import is safe)",
                    limits.request_timeout.as_secs_f64()
                ),
            )))
        }
    }
}

async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::with_info(
            ErrorCode::JsonParse,
            format!("the request body is larger than {limit} bytes; send at most 100 accounts per request"),
        )
    };
    if let Some(len) = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::with_info(
            ErrorCode::JsonParse,
            format!("the request body could not be read: {e}"),
        )),
    }
}

#[cfg(test)]
mod request_id_tests {
    use super::*;

    #[test]
    fn ids_are_two_hex_fields() {
        for (prefix, seq) in [
            (0u32, 0u64),
            (0x1234_abcd, 0xfedc_ba98_7654),
            (u32::MAX, 0xffff_ffff_ffff),
        ] {
            let id = RequestId { prefix, seq };
            let expected = format!("{prefix:08x}-{seq:012x}");
            assert_eq!(id.to_string(), expected);
            assert_eq!(id.header_value(), expected.as_str());
        }
    }
}
