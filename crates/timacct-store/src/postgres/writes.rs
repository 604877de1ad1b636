//! The SQL of the writes (`import`, `delete`): each one transaction that first takes the
//! app's advisory lock, reads what it needs, then sends its statements together (pipelined).

use std::collections::{HashMap, HashSet};

use super::reads::{app_key, Client, COUNT, EXISTING};
use crate::{import_policy, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, UserId};

/// Take the app's write lock (see [`LOCK_APP`]) and read its account count. Only after the
/// lock is held: the count read is then the latest committed, and stays so until commit.
async fn lock_app(
    txn: &deadpool_postgres::Transaction<'_>,
    app: u32,
) -> Result<u64, tokio_postgres::Error> {
    let lock = txn.prepare_cached(LOCK_APP).await?;
    // The SDKAppID's 32 bits, reinterpreted: the lock only needs a distinct key per app.
    txn.execute(&lock, &[&APP_LOCK_SPACE, &(app as i32)])
        .await?;
    let count = txn.prepare_cached(COUNT).await?;
    let n: Option<i64> = match txn.query_opt(&count, &[&app_key(app)]).await? {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// The first key of every app's advisory lock (the second is the SDKAppID): "tima" in ASCII.
/// The two-key form lives apart from the one-key space the migration lock uses.
const APP_LOCK_SPACE: i32 = 0x7469_6d61;

/// Serialize the writes of one app across every instance, until the transaction ends. Every
/// write transaction starts here; see the module documentation. An advisory lock rather than a
/// row lock because waiters queue on it in order and are woken one at a time: with many
/// writers waiting on one row, every commit would wake them all to race for it again.
const LOCK_APP: &str = "SELECT pg_advisory_xact_lock($1, $2)";
/// Store the app's account count (its first write creates the row).
const SET_COUNT: &str = "INSERT INTO app_stats (sdkappid, accounts) VALUES ($1, $2)
     ON CONFLICT (sdkappid) DO UPDATE SET accounts = excluded.accounts";
/// When each of the given UserIDs was deleted, for the re-import block.
const TOMBSTONES: &str =
    "SELECT user_id, deleted_at FROM tombstones WHERE sdkappid = $1 AND user_id = ANY($2)";
/// Create accounts, all in one statement (arrays of UserIDs and profiles).
const INSERT_ACCOUNTS: &str = "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at)
     SELECT $1, u.user_id, u.nick, u.face_url, $5
     FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(user_id, nick, face_url)";
/// Overwrite the given profile fields (`NULL` keeps a field), all in one statement.
const UPDATE_PROFILES: &str = "UPDATE accounts AS a
     SET nick = COALESCE(u.nick, a.nick), face_url = COALESCE(u.face_url, a.face_url)
     FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(user_id, nick, face_url)
     WHERE a.sdkappid = $1 AND a.user_id = u.user_id";
/// A re-created account is no longer deleted.
const CLEAR_TOMBSTONES: &str = "DELETE FROM tombstones WHERE sdkappid = $1 AND user_id = ANY($2)";
/// Delete accounts, returning the ones that existed (each once, however often named).
const DELETE_ACCOUNTS: &str =
    "DELETE FROM accounts WHERE sdkappid = $1 AND user_id = ANY($2) RETURNING user_id";
/// Date the deletions, for the re-import block; a later deletion of the same UserID wins.
const WRITE_TOMBSTONES: &str = "INSERT INTO tombstones (sdkappid, user_id, deleted_at)
     SELECT $1, unnest($2::text[]), $3
     ON CONFLICT (sdkappid, user_id) DO UPDATE SET deleted_at = excluded.deleted_at";

/// UserIDs with their nicknames and avatar URLs, as the parallel arrays the statements take.
type Profiles<'a> = (Vec<&'a str>, Vec<Option<&'a [u8]>>, Vec<Option<&'a [u8]>>);

/// `import`: under the app's lock, read the facts (existing accounts, and tombstones when the
/// policy blocks re-imports), let [`import_policy::plan`] decide, then write its changes with
/// one statement per kind, sent together.
pub(super) async fn import_in(
    client: &mut Client,
    app: u32,
    items: &[ImportItem],
    policy: ImportPolicy,
) -> Result<Vec<ImportOutcome>, tokio_postgres::Error> {
    let ids = import_policy::distinct_ids(items);
    let txn = client.transaction().await?;
    let start = lock_app(&txn, app).await?;
    let app = app_key(app);

    let lookup: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&app, &ids];
    let existing_stmt = txn.prepare_cached(EXISTING).await?;
    let (existing_rows, tombstone_rows) = if import_policy::needs_tombstones(&policy) {
        let stmt = txn.prepare_cached(TOMBSTONES).await?;
        // Independent reads: sent together (pipelined) on the one connection.
        tokio::try_join!(
            txn.query(&existing_stmt, &lookup),
            txn.query(&stmt, &lookup)
        )?
    } else {
        (txn.query(&existing_stmt, &lookup).await?, Vec::new())
    };
    let existing = existing_rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<HashSet<_>, _>>()?;
    let deleted_at = tombstone_rows
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
        .collect::<Result<HashMap<_, _>, tokio_postgres::Error>>()?;

    let plan = import_policy::plan(
        items,
        policy,
        start,
        |id| existing.contains(id),
        |id| deleted_at.get(id).copied(),
    );
    let count = plan.count;

    let mut created: Profiles<'_> = (Vec::new(), Vec::new(), Vec::new());
    let mut updated: Profiles<'_> = (Vec::new(), Vec::new(), Vec::new());
    for c in &plan.changes {
        let target = if c.created {
            &mut created
        } else if c.touches_profile() {
            &mut updated
        } else {
            continue;
        };
        target.0.push(c.user_id);
        target.1.push(c.nick.map(str::as_bytes));
        target.2.push(c.face_url.map(str::as_bytes));
    }
    // A new account without a given field starts with it empty.
    let created_nicks: Vec<&[u8]> = created.1.iter().map(|n| n.unwrap_or(b"")).collect();
    let created_faces: Vec<&[u8]> = created.2.iter().map(|f| f.unwrap_or(b"")).collect();
    let new_count = count as i64;

    // The writes touch different rows and do not depend on each other: send them together.
    let insert = async {
        if created.0.is_empty() {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(INSERT_ACCOUNTS).await?;
        txn.execute(
            &stmt,
            &[
                &app,
                &created.0,
                &created_nicks,
                &created_faces,
                &policy.now,
            ],
        )
        .await
    };
    let clear = async {
        if created.0.is_empty() {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(CLEAR_TOMBSTONES).await?;
        txn.execute(&stmt, &[&app, &created.0]).await
    };
    let update = async {
        if updated.0.is_empty() {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(UPDATE_PROFILES).await?;
        txn.execute(&stmt, &[&app, &updated.0, &updated.1, &updated.2])
            .await
    };
    let set_count = async {
        if count == start {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(SET_COUNT).await?;
        txn.execute(&stmt, &[&app, &new_count]).await
    };
    tokio::try_join!(insert, clear, update, set_count)?;
    txn.commit().await?;
    Ok(plan.outcomes)
}

/// `delete`: under the app's lock, one statement deletes every named account that exists;
/// the tombstones and the new count follow together. The first occurrence of a deleted
/// UserID is `Deleted`, any repeat `NotFound`.
pub(super) async fn delete_in(
    client: &mut Client,
    app: u32,
    ids: &[UserId],
    now: i64,
) -> Result<Vec<DeleteOutcome>, tokio_postgres::Error> {
    let names: Vec<&str> = ids.iter().map(UserId::as_str).collect();
    let txn = client.transaction().await?;
    let count = lock_app(&txn, app).await?;
    let app = app_key(app);
    let stmt = txn.prepare_cached(DELETE_ACCOUNTS).await?;
    let gone = txn
        .query(&stmt, &[&app, &names])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<Vec<_>, _>>()?;
    if !gone.is_empty() {
        let remaining = count.saturating_sub(gone.len() as u64) as i64;
        let tomb = txn.prepare_cached(WRITE_TOMBSTONES).await?;
        let set = txn.prepare_cached(SET_COUNT).await?;
        let tomb_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&app, &gone, &now];
        let set_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&app, &remaining];
        tokio::try_join!(
            txn.execute(&tomb, &tomb_params),
            txn.execute(&set, &set_params),
        )?;
    }
    txn.commit().await?;
    // The first occurrence of a deleted UserID is the one that deleted it.
    let mut unclaimed: HashSet<&str> = gone.iter().map(String::as_str).collect();
    Ok(names
        .iter()
        .map(|id| {
            if unclaimed.remove(id) {
                DeleteOutcome::Deleted
            } else {
                DeleteOutcome::NotFound
            }
        })
        .collect())
}
