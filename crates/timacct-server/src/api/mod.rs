//! The Tencent REST API (`/v4/...`): the checks every call goes through in the contract's
//! order (method, path, the request gate, query string, UserSig, admin, rate limit, body),
//! then one handler per API.

pub(crate) mod account_check;
pub(crate) mod account_delete;
pub(crate) mod account_import;
pub(crate) mod envelope;
mod fields;
pub(crate) mod multiaccount_import;
pub(crate) mod rate_limit;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use timacct_proto::{Api, ApiError, ApiQuery, ErrorCode};

use crate::ops::metrics::Timeout;
use crate::router::{Reply, Trace};
use crate::state::AppState;

/// An API-level failure: HTTP 200 with the envelope, as Tencent answers them.
fn api_failure(e: ApiError) -> (StatusCode, ApiError) {
    (StatusCode::OK, e)
}

/// Answer a call of the REST API (or of an unknown path, with 60009).
pub(crate) async fn answer(state: &AppState, request: Request, trace: &mut Trace) -> Reply {
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
    let app = crate::auth::authenticate_admin(state, api, &query).map_err(api_failure)?;
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
            Api::AccountImport => account_import::answer(state, &app, &body).await,
            Api::MultiAccountImport => multiaccount_import::answer(state, &app, &body).await,
            Api::AccountCheck => account_check::answer(state, &app, &body).await,
            Api::AccountDelete => account_delete::answer(state, &app, &body).await,
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
