//! Who may call: the query-string checks and the admin UserSig checks, in the order the
//! contract fixes (`docs/protocol.md` §3).

use timacct_proto::{Api, ApiError, ApiQuery, ErrorCode};
use timacct_usersig::{ExpectUserbuf, VerifyError};

use timacct_proto::unix_now;

use crate::state::{App, AppState, VerifiedSig};

/// Check a call's query string and signature; on success, the app it acts on.
pub(crate) fn authenticate<'s>(
    state: &'s AppState,
    api: Api,
    query: &ApiQuery,
) -> Result<&'s App, ApiError> {
    let sdkappid = query.sdkappid()?;
    let app = state.inner.apps.get(&sdkappid).ok_or_else(|| {
        ApiError::with_info(
            ErrorCode::SdkAppIdNotFound,
            format!("SDKAppID {sdkappid} not found; check the sdkappid in the URL"),
        )
    })?;
    let (identifier, usersig) = query.credentials()?;
    let now = unix_now();
    let expires_at = match state.inner.sigs.expiry(usersig, sdkappid, identifier) {
        Some(expires_at) => expires_at,
        None => {
            let key = app.config.key.expose();
            let decoded = timacct_usersig::verify(
                usersig,
                u64::from(sdkappid),
                key,
                identifier,
                now,
                ExpectUserbuf::Any,
            )?;
            // Checked before caching, so a cached sig has passed it too.
            if let Some(max) = state.inner.limits.max_usersig_age {
                if i128::from(decoded.expire) > i128::from(max) {
                    return Err(ApiError::with_info(
                        ErrorCode::UserSigIllegal,
                        format!(
                            "{} (the UserSig is valid for {} s; this server accepts at most {max} s: generate one with a shorter expire)",
                            ErrorCode::UserSigIllegal.default_info(),
                            decoded.expire
                        ),
                    ));
                }
            }
            let v = VerifiedSig {
                sdkappid,
                identifier: identifier.to_owned(),
                expires_at: decoded.expires_at(),
            };
            state.inner.sigs.insert(usersig, v);
            decoded.expires_at()
        }
    };
    if i128::from(now) > expires_at {
        return Err(VerifyError::Expired.into());
    }
    if !app.is_admin(identifier) {
        let code = match api {
            Api::QueryOnlineStatus => ErrorCode::OnlineNotAdmin,
            _ => ErrorCode::NotAdmin,
        };
        return Err(ApiError::with_info(
            code,
            format!(
                "identifier {identifier:?} is not an App admin; REST calls need an admin account"
            ),
        ));
    }
    Ok(app)
}

impl AppState {
    /// Check a raw query string exactly as a request's is checked (parameters, UserSig,
    /// admin) and return the SDKAppID it acts on. Used by the benchmark to price the
    /// authentication step on its own.
    pub fn authorize(&self, api: Api, raw_query: &str) -> Result<u32, ApiError> {
        let query = ApiQuery::parse(raw_query);
        authenticate(self, api, &query).map(|app| app.config.sdkappid)
    }
}
