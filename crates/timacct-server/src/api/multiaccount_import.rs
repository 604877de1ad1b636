//! `multiaccount_import`: up to 100 accounts, as bare UserIDs (`Accounts`) or with profiles
//! (`AccountList`).

use std::collections::HashMap;

use timacct_proto::{
    check_batch_len, parse_body, MultiAccountImportRequest, MultiAccountImportResponse,
};
use timacct_store::{ImportItem, UserId};

use super::envelope::to_json;
use super::fields::{invalid, profile_too_long, Reply};
use crate::apps::App;
use crate::state::AppState;

/// `multiaccount_import`, either shape.
pub(crate) async fn answer(state: &AppState, app: &App, body: &[u8]) -> Reply {
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

    // The last entry of a UserID decides what happens to it (DECISIONS: the last entry wins).
    // If it is refused here (a profile field over 500 bytes), so is the UserID: it goes to
    // FailAccounts and none of its entries is applied, so that what is stored agrees with the
    // answer. Otherwise its valid entries are applied in order, each over the one before (a
    // field an entry leaves out keeps the earlier entry's value), and the store's outcome for
    // the last one is the UserID's.
    let mut last_refused: HashMap<&str, bool> = HashMap::with_capacity(entries.len());
    for (raw, nick, face_url) in &entries {
        last_refused.insert(raw.as_str(), profile_too_long(nick, face_url).is_some());
    }
    let mut items = Vec::with_capacity(entries.len());
    let mut applied: Vec<Option<usize>> = Vec::with_capacity(entries.len());
    for (raw, nick, face_url) in &entries {
        let refused = last_refused.get(raw.as_str()).copied().unwrap_or(true);
        match UserId::parse(raw.as_str()) {
            Ok(user_id) if !refused && profile_too_long(nick, face_url).is_none() => {
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
            .import(app.config.sdkappid, items, app.import_policy(app.now()))
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
