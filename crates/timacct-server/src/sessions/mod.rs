//! Users' own logins: `GET /timacct/v1/connect`, a WebSocket signed with the user's own
//! UserSig, and what hangs on it (presence, multi-device rules, kick).
//!
//! Not built yet: the route answers 60009. The seams it will use are in place: the
//! transport serves connections with HTTP upgrades, and a connection that switched
//! protocols is exempt from the REST read deadlines (`transport::deadlines`), so an idle
//! but heartbeating session is never cut; [`crate::auth::verify_usersig`] checks a user's
//! sig without the admin role.

use axum::extract::Request;
use axum::http::StatusCode;
use timacct_proto::{ApiError, ErrorCode};

use crate::router::{Reply, Trace};
use crate::state::AppState;

/// `GET /timacct/v1/connect`.
pub(crate) async fn connect(_state: &AppState, _request: Request, _trace: &mut Trace) -> Reply {
    Err((
        StatusCode::OK,
        ApiError::with_info(
            ErrorCode::UnknownResource,
            "/timacct/v1/connect (user login over WebSocket) is not available on this server yet",
        ),
    ))
}
