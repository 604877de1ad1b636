//! The emulator controls under `/timacct/v1/apps/{sdkappid}/...` (reset, seed, export,
//! faults, the request journal, presence fixtures, the clock), authenticated by the app's
//! admin UserSig ([`crate::auth::verify_usersig`] then [`crate::auth::require_admin`]).
//!
//! Not built yet: every path here answers 60009, so that nothing under `/timacct/v1/` is
//! mistaken for a Tencent API.

use axum::extract::Request;
use axum::http::StatusCode;
use timacct_proto::{ApiError, ErrorCode};

use crate::router::{Reply, Trace};
use crate::state::AppState;

/// Any `/timacct/v1/...` path but `connect`.
pub(crate) async fn answer(_state: &AppState, request: Request, _trace: &mut Trace) -> Reply {
    Err((
        StatusCode::OK,
        ApiError::with_info(
            ErrorCode::UnknownResource,
            format!(
                "{} is not available on this server yet (emulator controls are planned)",
                request.uri().path()
            ),
        ),
    ))
}
