//! `account_delete`: up to 100 accounts, where the app's plan allows it.

use timacct_proto::{
    invalid_user_id_info, AccountDeleteResponse, ApiError, BatchKind, DeleteResultItem, ErrorCode,
    UserIdBatch, ACCOUNT_NOT_EXIST_INFO,
};
use timacct_store::{DeleteOutcome, UserId};

use super::envelope::to_json;
use super::fields::Reply;
use crate::apps::App;
use crate::state::AppState;

/// `account_delete`.
pub(crate) async fn answer(state: &AppState, app: &App, body: &[u8]) -> Reply {
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
            .delete(app.config.sdkappid, valid, app.now())
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
