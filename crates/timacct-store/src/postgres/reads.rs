//! The SQL of the reads (`check`, `account`, `account_count`): plain statements on a pooled
//! connection, taking no lock, so they see every commit that finished before they started.

use std::collections::HashSet;

use crate::{Account, UserId, UserIdRef};

/// A pooled connection, as every operation gets it.
pub(super) type Client = deadpool_postgres::ClientWrapper;

/// The SDKAppID as stored: a u32 does not fit PostgreSQL's `INTEGER`, so it is a `BIGINT`.
pub(super) fn app_key(app: u32) -> i64 {
    i64::from(app)
}

/// Which of the given UserIDs have an account: `check`, and the facts of an import.
pub(super) const EXISTING: &str =
    "SELECT user_id FROM accounts WHERE sdkappid = $1 AND user_id = ANY($2)";
/// One account with its profile.
const ACCOUNT: &str =
    "SELECT nick, face_url, created_at FROM accounts WHERE sdkappid = $1 AND user_id = $2";
/// The app's account count, kept in the same transactions as its accounts (no `count(*)`).
pub(super) const COUNT: &str = "SELECT accounts FROM app_stats WHERE sdkappid = $1";

/// The reads' statements, prepared when the pool is warmed.
pub(super) const ALL: &[&str] = &[EXISTING, ACCOUNT, COUNT];
/// `check` while the app's in-memory index is not loaded yet (see [`super::feed`]): one query for the whole batch; an answer per id, in order.
pub(super) async fn check_in(
    client: &mut Client,
    app: u32,
    ids: &[UserIdRef<'_>],
) -> Result<Vec<bool>, tokio_postgres::Error> {
    let names: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    let stmt = client.prepare_cached(EXISTING).await?;
    let found = client
        .query(&stmt, &[&app_key(app), &names])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<HashSet<_>, _>>()?;
    Ok(names.iter().map(|id| found.contains(*id)).collect())
}

/// `account`: the profile columns are `BYTEA` (see the schema), decoded back to strings.
pub(super) async fn account_in(
    client: &mut Client,
    app: u32,
    id: UserId,
) -> Result<Option<Account>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(ACCOUNT).await?;
    let Some(row) = client
        .query_opt(&stmt, &[&app_key(app), &id.as_str()])
        .await?
    else {
        return Ok(None);
    };
    let nick: Vec<u8> = row.try_get(0)?;
    let face_url: Vec<u8> = row.try_get(1)?;
    Ok(Some(Account {
        user_id: id,
        // Written from Rust strings, so always valid UTF-8.
        nick: String::from_utf8_lossy(&nick).into_owned(),
        face_url: String::from_utf8_lossy(&face_url).into_owned(),
        created_at: row.try_get(2)?,
    }))
}

/// `account_count`: 0 for an app that never had an account.
pub(super) async fn count_in(client: &mut Client, app: u32) -> Result<u64, tokio_postgres::Error> {
    let stmt = client.prepare_cached(COUNT).await?;
    let n: Option<i64> = match client.query_opt(&stmt, &[&app_key(app)]).await? {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    Ok(n.unwrap_or(0).max(0) as u64)
}
