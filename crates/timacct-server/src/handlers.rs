//! One function per API: body bytes in, response body bytes out. Each parses the body into
//! typed items, makes one store call, and builds the documented response.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use timacct_proto::{
    check_batch_len, invalid_user_id_info, parse_body, unix_now, write_check_response,
    AccountDeleteResponse, AccountImportRequest, ApiError, BatchKind, DeleteResultItem, Envelope,
    ErrorCode, MultiAccountImportRequest, MultiAccountImportResponse, UserIdBatch,
    ACCOUNT_NOT_EXIST_INFO, MAX_PROFILE_FIELD_BYTES,
};
use timacct_store::{DeleteOutcome, ImportItem, ImportOutcome, UserId};

use crate::state::{App, AppState};

type Reply = Result<Vec<u8>, ApiError>;

fn to_json<T: Serialize>(body: &T) -> Reply {
    serde_json::to_vec(body).map_err(|e| ApiError::with_info(ErrorCode::Internal, e.to_string()))
}

fn invalid(info: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::with_info(ErrorCode::InvalidParameter, info)
}

fn parse_user_id(raw: &str) -> Result<UserId, String> {
    UserId::parse(raw).map_err(|e| invalid_user_id_info(raw, e))
}

fn profile_too_long(nick: &Option<String>, face_url: &Option<String>) -> Option<&'static str> {
    if nick
        .as_ref()
        .is_some_and(|n| n.len() > MAX_PROFILE_FIELD_BYTES)
    {
        Some("Nick")
    } else if face_url
        .as_ref()
        .is_some_and(|f| f.len() > MAX_PROFILE_FIELD_BYTES)
    {
        Some("FaceUrl")
    } else {
        None
    }
}

/// `account_import`.
pub(crate) async fn account_import(state: &AppState, app: &App, body: &[u8]) -> Reply {
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
            app.import_policy(unix_now()),
        )
        .await?;
    match outcome.first() {
        Some(ImportOutcome::Created | ImportOutcome::Updated) => to_json(&Envelope::ok()),
        Some(ImportOutcome::LimitReached) => Err(limit_error(app)),
        Some(ImportOutcome::ReimportBlocked) => Err(ApiError::new(ErrorCode::ReimportBlocked)),
        None => Err(ApiError::new(ErrorCode::Internal)),
    }
}

fn limit_error(app: &App) -> ApiError {
    ApiError::with_info(
        ErrorCode::AccountLimit,
        format!(
            "the app already holds its maximum of {} accounts",
            app.config.max_accounts.unwrap_or(0)
        ),
    )
}

/// `multiaccount_import`, either shape.
pub(crate) async fn multiaccount_import(state: &AppState, app: &App, body: &[u8]) -> Reply {
    let req: MultiAccountImportRequest = parse_body(body)?;
    let entries: Vec<(String, Option<String>, Option<String>)> =
        match (req.accounts, req.account_list) {
            (Some(_), Some(_)) => {
                return Err(invalid("send either Accounts or AccountList, not both"))
            }
            (None, None) => return Err(invalid("Accounts or AccountList is required")),
            (Some(ids), None) => {
                check_batch_len("Accounts", ids.len())?;
                ids.into_iter().map(|id| (id, None, None)).collect()
            }
            (None, Some(list)) => {
                check_batch_len("AccountList", list.len())?;
                list.into_iter()
                    .map(|e| (e.user_id, e.nick, e.face_url))
                    .collect()
            }
        };

    // Every valid entry is applied in order, so the stored profile is the last one given; a
    // repeated UserID fails only if its last entry failed (the last entry wins).
    let mut items = Vec::with_capacity(entries.len());
    let mut applied: Vec<Option<usize>> = Vec::with_capacity(entries.len());
    for (raw, nick, face_url) in &entries {
        match UserId::parse(raw.as_str()) {
            Ok(user_id) if profile_too_long(nick, face_url).is_none() => {
                applied.push(Some(items.len()));
                items.push(ImportItem {
                    user_id,
                    nick: nick.clone(),
                    face_url: face_url.clone(),
                });
            }
            _ => applied.push(None),
        }
    }
    let outcomes = if items.is_empty() {
        Vec::new()
    } else {
        state
            .inner
            .store
            .import(app.config.sdkappid, items, app.import_policy(unix_now()))
            .await?
    };
    let mut last_ok: HashMap<&str, bool> = HashMap::with_capacity(entries.len());
    for ((raw, _, _), slot) in entries.iter().zip(&applied) {
        let ok = slot
            .and_then(|k| outcomes.get(k))
            .is_some_and(|o| o.is_success());
        last_ok.insert(raw.as_str(), ok);
    }
    let mut fail_accounts = Vec::new();
    for (raw, _, _) in &entries {
        // `remove` lists each failing UserID once, at its first appearance.
        if last_ok.remove(raw.as_str()) == Some(false) {
            fail_accounts.push(raw.clone());
        }
    }
    to_json(&MultiAccountImportResponse::ok(fail_accounts))
}

/// `account_check`: one parse (the borrowed scanner, serde only for what it declines), one
/// store call (memory when the backend keeps the IDs there), one writer.
pub(crate) async fn account_check(state: &AppState, app: &App, body: &[u8]) -> Reply {
    let batch = UserIdBatch::parse(body, BatchKind::Check)?;
    let valid = batch.valid();
    let found = if valid.is_empty() {
        Vec::new()
    } else {
        state.inner.store.check(app.config.sdkappid, &valid).await?
    };
    Ok(write_check_response(&batch, &found))
}

/// `account_delete`.
pub(crate) async fn account_delete(state: &AppState, app: &App, body: &[u8]) -> Reply {
    if !app.allows_deletion() {
        return Err(ApiError::with_info(
            ErrorCode::DeletionNotAllowed,
            "this app's plan does not allow deleting accounts; set account_deletion = true for the app to enable it",
        ));
    }
    let batch = UserIdBatch::parse(body, BatchKind::Delete)?;
    let valid: Vec<UserId> = batch.valid().iter().map(|id| id.to_user_id()).collect();
    let outcomes = if valid.is_empty() {
        Vec::new()
    } else {
        state
            .inner
            .store
            .delete(app.config.sdkappid, valid, unix_now())
            .await?
    };
    let mut outcomes = outcomes.into_iter();
    let items = batch
        .items()
        .into_iter()
        .map(|item| match item {
            Ok(id) => match outcomes.next() {
                Some(DeleteOutcome::Deleted) => {
                    DeleteResultItem::new(id.as_str().to_owned(), ErrorCode::Ok, "")
                }
                _ => DeleteResultItem::new(
                    id.as_str().to_owned(),
                    ErrorCode::AccountNotFound,
                    ACCOUNT_NOT_EXIST_INFO,
                ),
            },
            Err((raw, e)) => DeleteResultItem::new(
                raw.to_owned(),
                ErrorCode::InvalidParameter,
                invalid_user_id_info(raw, e),
            ),
        })
        .collect();
    to_json(&AccountDeleteResponse::ok(items))
}
