//! The HTTP surface: every request, whatever its path, method or body, gets Tencent's JSON
//! envelope. This is the one place where an [`ApiError`] becomes bytes on the wire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};
use timacct_proto::{Api, ApiError, ApiQuery, Envelope, ErrorCode};

use crate::auth::authenticate;
use crate::handlers;
use crate::state::AppState;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

pub(crate) fn request_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random::<u32>);
    format!(
        "{prefix:08x}-{:012x}",
        REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Answer one request. Never fails: every outcome is an envelope.
pub(crate) async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let id = request_id();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let (status, body) = match answer(&state, request).await {
        Ok(body) => (StatusCode::OK, body),
        Err((status, e)) => (status, envelope_bytes(&e)),
    };
    // Only the method and path are logged: the query string carries the UserSig.
    tracing::debug!(%id, %method, %path, status = status.as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", v);
    }
    response
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

async fn answer(state: &AppState, request: Request) -> Result<Vec<u8>, Failure> {
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
    let query = ApiQuery::parse(request.uri().query().unwrap_or(""));
    let app = authenticate(state, api, &query).map_err(api_failure)?;
    let allowed = app.limiter().allow(api).await.map_err(|e| {
        // Fail closed: letting the call through would break the limit promised to the app.
        tracing::error!(error = %e, "rate limit check failed");
        api_failure(ApiError::with_info(
            ErrorCode::Internal,
            "the rate limiter is unavailable; nothing was changed, retry the request",
        ))
    })?;
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
    let body = read_body(request, state.inner.body_limit)
        .await
        .map_err(api_failure)?;
    let reply = match api {
        Api::AccountImport => handlers::account_import(state, app, &body).await,
        Api::MultiAccountImport => handlers::multiaccount_import(state, app, &body).await,
        Api::AccountCheck => handlers::account_check(state, app, &body).await,
        Api::AccountDelete => handlers::account_delete(state, app, &body).await,
        Api::Kick | Api::QueryOnlineStatus => Err(ApiError::new(ErrorCode::UnknownResource)),
    };
    reply.map_err(api_failure)
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
