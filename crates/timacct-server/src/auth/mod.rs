//! Who may call, in two steps: [`verify_usersig`] proves that a caller holds a valid UserSig
//! for an (app, identifier), then a role check says whether that identifier may do what it
//! asks ([`require_admin`] for the REST API and the emulator controls; a user's own login
//! needs only the first step). [`authenticate_admin`] runs both on a REST query string in
//! the order the contract fixes (`docs/protocol.md` §3).

mod sig_cache;

use std::sync::Arc;

use timacct_proto::{Api, ApiError, ApiQuery, ErrorCode};
use timacct_usersig::{ExpectUserbuf, VerifyError};

use crate::apps::App;
use crate::state::AppState;
pub(crate) use sig_cache::SigCache;
use sig_cache::VerifiedSig;

/// Check that `usersig` is a valid, unexpired UserSig of `app` for `identifier` (70003,
/// 70013, 70014, 70001, 70009 otherwise). A UserSig that verified once is remembered by its
/// exact string, so a client that reuses one pays only for the expiry check.
pub(crate) fn verify_usersig(
    state: &AppState,
    app: &App,
    identifier: &str,
    usersig: &str,
) -> Result<(), ApiError> {
    let sdkappid = app.config.sdkappid;
    let now = app.now();
    let expires_at = match state.inner.sigs.expiry(usersig, sdkappid, identifier) {
        Some(expires_at) => expires_at,
        None => {
            let decoded = timacct_usersig::verify(
                usersig,
                u64::from(sdkappid),
                app.config.key.expose(),
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
            let verified = VerifiedSig {
                sdkappid,
                identifier: identifier.to_owned(),
                expires_at: decoded.expires_at(),
            };
            state.inner.sigs.insert(usersig, verified);
            decoded.expires_at()
        }
    };
    if i128::from(now) > expires_at {
        return Err(VerifyError::Expired.into());
    }
    Ok(())
}

/// The role check of the REST API: only the app's admins may call it (70403; 90009 for
/// `query_online_status`, whose page documents its own code).
pub(crate) fn require_admin(app: &App, api: Api, identifier: &str) -> Result<(), ApiError> {
    if app.is_admin(identifier) {
        return Ok(());
    }
    let code = match api {
        Api::QueryOnlineStatus => ErrorCode::OnlineNotAdmin,
        _ => ErrorCode::NotAdmin,
    };
    Err(ApiError::with_info(
        code,
        format!("identifier {identifier:?} is not an App admin; REST calls need an admin account"),
    ))
}

/// The app named by a query string's `sdkappid` (60012 when missing or malformed, 70020
/// when not hosted here).
pub(crate) fn app_of(state: &AppState, query: &ApiQuery) -> Result<Arc<App>, ApiError> {
    let sdkappid = query.sdkappid()?;
    state.inner.apps.get(sdkappid).ok_or_else(|| {
        ApiError::with_info(
            ErrorCode::SdkAppIdNotFound,
            format!("SDKAppID {sdkappid} not found; check the sdkappid in the URL"),
        )
    })
}

/// A REST call's query string, checked in the contract's order: `sdkappid` and the app,
/// the other parameters (60025), the UserSig, then the admin role. On success, the app the
/// call acts on.
pub(crate) fn authenticate_admin(
    state: &AppState,
    api: Api,
    query: &ApiQuery,
) -> Result<Arc<App>, ApiError> {
    let app = app_of(state, query)?;
    let (identifier, usersig) = query.credentials()?;
    verify_usersig(state, &app, identifier, usersig)?;
    require_admin(&app, api, identifier)?;
    Ok(app)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::{AppConfig, SecretKey};
    use crate::ServerBuilder;
    use timacct_proto::unix_now;

    fn state(key: &str) -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let store = timacct_store::SqliteStore::open(dir.path().join("t.db")).unwrap();
        let server = ServerBuilder::new(
            vec![AppConfig::new(1400000001, SecretKey::new(key))],
            Arc::new(store),
        )
        .build();
        (dir, server.state)
    }

    fn query(sig: &str, identifier: &str) -> String {
        format!(
            "sdkappid=1400000001&identifier={identifier}&usersig={sig}&random=1&contenttype=json"
        )
    }

    #[test]
    fn a_user_passes_verification_but_not_the_admin_role() {
        let (_dir, state) = state("k");
        let gen = timacct_usersig::UserSigGenerator::new(1400000001, "k");
        let user_sig = gen.gen("alice", 3600, unix_now());
        let raw = query(&user_sig, "alice");
        let q = ApiQuery::parse(&raw);
        let app = app_of(&state, &q).unwrap();
        assert!(verify_usersig(&state, &app, "alice", &user_sig).is_ok());
        let e = authenticate_admin(&state, Api::AccountCheck, &q)
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::NotAdmin);
        let e = authenticate_admin(&state, Api::QueryOnlineStatus, &q)
            .err()
            .unwrap();
        assert_eq!(e.code, ErrorCode::OnlineNotAdmin);
        // The sig names alice: it cannot be used as someone else's.
        let e = verify_usersig(&state, &app, "bob", &user_sig).unwrap_err();
        assert_eq!(e.code, ErrorCode::IdentifierMismatch);
    }

    /// What authentication costs per request, first sight and cached (the README's
    /// performance table). Run with
    /// `cargo test --release -p timacct-server --lib cost_of_auth -- --ignored --nocapture`;
    /// `TIMACCT_RPS` (a measured account_check rate) prices it as a share of one request.
    #[test]
    #[ignore = "a cost probe: prints figures, asserts nothing about time"]
    fn cost_of_auth() {
        let (_dir, state) = state("cost-probe-key");
        let gen = timacct_usersig::UserSigGenerator::new(1400000001, "cost-probe-key");
        let now = unix_now();
        // First sight: every sig is new (different expiry), so each call decodes and checks
        // the HMAC.
        let fresh: Vec<String> = (0..20_000)
            .map(|i| query(&gen.gen("administrator", 86_400 + i, now), "administrator"))
            .collect();
        let t = std::time::Instant::now();
        for raw in &fresh {
            authenticate_admin(&state, Api::AccountCheck, &ApiQuery::parse(raw)).unwrap();
        }
        let miss_ns = t.elapsed().as_nanos() as f64 / fresh.len() as f64;
        let raw = query(&gen.gen("administrator", 86_400, now), "administrator");
        authenticate_admin(&state, Api::AccountCheck, &ApiQuery::parse(&raw)).unwrap();
        let n = 1_000_000;
        let t = std::time::Instant::now();
        for _ in 0..n {
            let q = ApiQuery::parse(std::hint::black_box(&raw));
            std::hint::black_box(authenticate_admin(&state, Api::AccountCheck, &q).is_ok());
        }
        let hit_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
        let rps: f64 = std::env::var("TIMACCT_RPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50_000.0);
        println!(
            "auth first sight: {:.1} us; repeat (cached): {:.0} ns = {:.1}% of one account_check request at {:.0} req/s",
            miss_ns / 1000.0,
            hit_ns,
            100.0 * hit_ns * rps / 1e9,
            rps
        );
    }
}
