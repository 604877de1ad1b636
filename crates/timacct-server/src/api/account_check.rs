//! `account_check`: whether up to 100 accounts are imported. The hot path of real traffic.

use timacct_proto::{write_check_response, BatchKind, UserIdBatch};

use super::fields::Reply;
use crate::apps::App;
use crate::state::AppState;

/// `account_check`: one parse (the borrowed scanner, serde only for what it declines), one
/// store call (memory when the backend keeps the IDs there), one writer.
pub(crate) async fn answer(state: &AppState, app: &App, body: &[u8]) -> Reply {
    let batch = UserIdBatch::parse(body, BatchKind::Check)?;
    let valid = batch.valid();
    let found = if valid.is_empty() {
        Vec::new()
    } else {
        state.inner.store.check(app.config.sdkappid, &valid).await?
    };
    Ok(write_check_response(&batch, &found))
}
