//! The SQL of what users' sessions leave behind: kick cut-offs and PushOnline times. Each
//! call is one statement (so one implicit transaction); none needs the app's write lock,
//! because none changes which accounts exist.

use super::reads::{app_key, Client};
use crate::{PushOnline, UserId};

/// Kick: if the account exists, move its cut-off to `$3` (never back) and clear its
/// PushOnline times, in one statement; whether it exists. Data-modifying CTEs run whether or
/// not the outer query reads them.
const KICK: &str = "WITH acc AS (SELECT 1 FROM accounts WHERE sdkappid = $1 AND user_id = $2),
     c AS (INSERT INTO cutoffs (sdkappid, user_id, at) SELECT $1, $2, $3 FROM acc
           ON CONFLICT (sdkappid, user_id) DO UPDATE SET at = GREATEST(cutoffs.at, excluded.at)
           RETURNING 1),
     p AS (DELETE FROM push_online WHERE sdkappid = $1 AND user_id = $2
           AND EXISTS (SELECT 1 FROM acc) RETURNING 1)
     SELECT EXISTS (SELECT 1 FROM acc)";
/// What a deletion does to the deleted accounts' session state (in the deletion's own
/// transaction): their cut-offs move to the deletion time.
pub(super) const CUTOFF_DELETED: &str = "INSERT INTO cutoffs (sdkappid, user_id, at)
     SELECT $1, unnest($2::text[]), $3
     ON CONFLICT (sdkappid, user_id) DO UPDATE SET at = GREATEST(cutoffs.at, excluded.at)";
/// ... and their PushOnline times go.
pub(super) const CLEAR_PUSH_DELETED: &str =
    "DELETE FROM push_online WHERE sdkappid = $1 AND user_id = ANY($2)";
const CUTOFF: &str = "SELECT at FROM cutoffs WHERE sdkappid = $1 AND user_id = $2";
const CUTOFFS: &str = "SELECT user_id, at FROM cutoffs WHERE sdkappid = $1 ORDER BY user_id";
/// Only for an account that exists: a session may end just after its account was deleted.
const SET_PUSH: &str = "INSERT INTO push_online (sdkappid, user_id, platform, until)
     SELECT $1, $2, $3, $4
     WHERE EXISTS (SELECT 1 FROM accounts WHERE sdkappid = $1 AND user_id = $2)
     ON CONFLICT (sdkappid, user_id, platform) DO UPDATE SET until = excluded.until";
const CLEAR_PUSH: &str =
    "DELETE FROM push_online WHERE sdkappid = $1 AND user_id = $2 AND platform = $3";
const PUSH_ONLINE: &str = "SELECT user_id, platform, until FROM push_online WHERE sdkappid = $1
     ORDER BY user_id, platform";

/// `kick`.
pub(super) async fn kick_in(
    client: &mut Client,
    app: u32,
    id: &UserId,
    at: i64,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = client.prepare_cached(KICK).await?;
    client
        .query_one(&stmt, &[&app_key(app), &id.as_str(), &at])
        .await?
        .try_get(0)
}

/// `cutoff`.
pub(super) async fn cutoff_in(
    client: &mut Client,
    app: u32,
    id: &UserId,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(CUTOFF).await?;
    match client
        .query_opt(&stmt, &[&app_key(app), &id.as_str()])
        .await?
    {
        Some(row) => Ok(Some(row.try_get(0)?)),
        None => Ok(None),
    }
}

/// `cutoffs`. UserIDs that fail the rule (only if the table was edited by hand) are skipped.
pub(super) async fn cutoffs_in(
    client: &mut Client,
    app: u32,
) -> Result<Vec<(UserId, i64)>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(CUTOFFS).await?;
    let mut out = Vec::new();
    for row in client.query(&stmt, &[&app_key(app)]).await? {
        if let Ok(id) = UserId::parse(row.try_get::<_, String>(0)?) {
            out.push((id, row.try_get(1)?));
        }
    }
    Ok(out)
}

/// `set_push_online`.
pub(super) async fn set_push_in(
    client: &mut Client,
    app: u32,
    id: &UserId,
    platform: &str,
    until: Option<i64>,
) -> Result<(), tokio_postgres::Error> {
    match until {
        Some(until) => {
            let stmt = client.prepare_cached(SET_PUSH).await?;
            client
                .execute(&stmt, &[&app_key(app), &id.as_str(), &platform, &until])
                .await?;
        }
        None => {
            let stmt = client.prepare_cached(CLEAR_PUSH).await?;
            client
                .execute(&stmt, &[&app_key(app), &id.as_str(), &platform])
                .await?;
        }
    }
    Ok(())
}

/// `push_online`. UserIDs that fail the rule (only if the table was edited by hand) are
/// skipped.
pub(super) async fn push_online_in(
    client: &mut Client,
    app: u32,
) -> Result<Vec<PushOnline>, tokio_postgres::Error> {
    let stmt = client.prepare_cached(PUSH_ONLINE).await?;
    let mut out = Vec::new();
    for row in client.query(&stmt, &[&app_key(app)]).await? {
        if let Ok(user_id) = UserId::parse(row.try_get::<_, String>(0)?) {
            out.push(PushOnline {
                user_id,
                platform: row.try_get(1)?,
                until: row.try_get(2)?,
            });
        }
    }
    Ok(out)
}
