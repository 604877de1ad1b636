//! `account_import`: one account, with an optional profile.

use timacct_proto::{
    parse_body, AccountImportRequest, ApiError, Envelope, ErrorCode, MAX_PROFILE_FIELD_BYTES,
};
use timacct_store::{ImportItem, ImportOutcome};

use super::envelope::to_json;
use super::fields::{invalid, parse_user_id, profile_too_long, Reply};
use crate::apps::App;
use crate::state::AppState;

/// `account_import`.
pub(crate) async fn answer(state: &AppState, app: &App, body: &[u8]) -> Reply {
    let req: AccountImportRequest = parse_body(body)?;
    let raw = req
        .user_id()
        .ok_or_else(|| invalid("UserID is required: send {\"UserID\": \"...\"}"))?;
    let user_id = parse_user_id(raw).map_err(invalid)?;
    if let Some(field) = profile_too_long(&req.nick, &req.face_url) {
        return Err(ApiError::with_info(
            ErrorCode::ProfileFieldTooLong,
            format!("{field} is longer than {MAX_PROFILE_FIELD_BYTES} bytes"),
        ));
    }
    let item = ImportItem {
        user_id,
        nick: req.nick,
        face_url: req.face_url,
    };
    let outcome = state
        .inner
        .store
        .import(
            app.config.sdkappid,
            vec![item],
            app.import_policy(app.now()),
        )
        .await?;
    match outcome.first() {
        Some(ImportOutcome::Created | ImportOutcome::Updated) => to_json(&Envelope::ok()),
        Some(ImportOutcome::LimitReached) => Err(limit_error(app)),
        Some(ImportOutcome::ReimportBlocked) => Err(ApiError::new(ErrorCode::ReimportBlocked)),
        None => Err(ApiError::new(ErrorCode::Internal)),
    }
}

/// 70398, naming the limit.
pub(super) fn limit_error(app: &App) -> ApiError {
    ApiError::with_info(
        ErrorCode::AccountLimit,
        format!(
            "the app already holds its maximum of {} accounts",
            app.config.max_accounts.unwrap_or(0)
        ),
    )
}
