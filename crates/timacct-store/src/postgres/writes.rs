//! The SQL of the writes (`import`, `delete`): each one transaction that first takes the
//! app's advisory lock, reads what it needs, then sends its statements together (pipelined).
//!
//! An import transaction carries a whole group of `import` calls (see [`super::group`]): the
//! facts of every call are read at once, each call is planned in turn against the facts as
//! the calls before it in the group left them (exactly as if they had been committed one
//! after the other), and their net changes are written with one statement per kind. Every
//! transaction that changes which accounts exist stamps the rows it creates or tombstones
//! with the app's next sequence number, in the same transaction: that is the change feed
//! ([`super::feed`]).

use std::collections::{HashMap, HashSet};

use super::reads::{app_key, Client, EXISTING};
use super::sessions::{CLEAR_PUSH_DELETED, CUTOFF_DELETED};
use crate::{import_policy, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, UserId};

/// Begin the transaction, take the app's write lock (see [`LOCK_APP`]) and read its account
/// count and sequence, in one round trip: the three are sent together (pipelined) and run in
/// order, the read once the lock is held, so both values are the latest committed and stay
/// so until commit.
///
/// The transaction is begun by hand rather than with a `Transaction` guard, which would cost
/// a round trip of its own for `BEGIN`. Nothing is lost by it: a write that fails or is cut
/// short returns an error, and the caller then closes the connection instead of returning it
/// to the pool (see `pool::Conn`), which ends the transaction with a rollback on the server.
async fn begin_locked(client: &Client, app: u32) -> Result<(u64, i64), tokio_postgres::Error> {
    let lock = client.prepare_cached(LOCK_APP).await?;
    let stats = client.prepare_cached(STATS).await?;
    // The SDKAppID's 32 bits, reinterpreted: the lock only needs a distinct key per app.
    let key = app_key(app);
    let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&APP_LOCK_SPACE, &(app as i32)];
    let stats_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
    let (_, _, row) = tokio::try_join!(
        client.batch_execute("BEGIN"),
        client.execute(&lock, &lock_params),
        client.query_opt(&stats, &stats_params)
    )?;
    let (count, seq): (i64, i64) = match row {
        Some(row) => (row.try_get(0)?, row.try_get(1)?),
        None => (0, 0),
    };
    Ok((count.max(0) as u64, seq))
}

/// The first key of every app's advisory lock (the second is the SDKAppID): "tima" in ASCII.
/// The two-key form lives apart from the one-key space the migration lock uses.
const APP_LOCK_SPACE: i32 = 0x7469_6d61;

/// Serialize the writes of one app across every instance, until the transaction ends. Every
/// write transaction starts here; see the module documentation. An advisory lock rather than a
/// row lock because waiters queue on it in order and are woken one at a time: with many
/// writers waiting on one row, every commit would wake them all to race for it again.
pub(super) const LOCK_APP: &str = "SELECT pg_advisory_xact_lock($1, $2)";
/// The app's account count and the last number of its change sequence, kept in the same
/// transactions as its accounts (no `count(*)`).
pub(super) const STATS: &str = "SELECT accounts, seq FROM app_stats WHERE sdkappid = $1";
/// Store the app's account count and sequence (its first write creates the row).
pub(super) const SET_STATS: &str =
    "INSERT INTO app_stats (sdkappid, accounts, seq) VALUES ($1, $2, $3)
     ON CONFLICT (sdkappid) DO UPDATE SET accounts = excluded.accounts, seq = excluded.seq";
/// When each of the given UserIDs was deleted, for the re-import block.
pub(super) const TOMBSTONES: &str =
    "SELECT user_id, deleted_at FROM tombstones WHERE sdkappid = $1 AND user_id = ANY($2)";
/// Create accounts, all in one statement (arrays of UserIDs, profiles and creation times),
/// stamped with the transaction's sequence number.
pub(super) const INSERT_ACCOUNTS: &str =
    "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at, seq)
     SELECT $1, u.user_id, u.nick, u.face_url, u.created_at, $6
     FROM unnest($2::text[], $3::bytea[], $4::bytea[], $5::int8[]) AS u(user_id, nick, face_url, created_at)";
/// Overwrite the given profile fields (`NULL` keeps a field), all in one statement. Not a
/// change of which accounts exist, so the row keeps its sequence number.
pub(super) const UPDATE_PROFILES: &str = "UPDATE accounts AS a
     SET nick = COALESCE(u.nick, a.nick), face_url = COALESCE(u.face_url, a.face_url)
     FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(user_id, nick, face_url)
     WHERE a.sdkappid = $1 AND a.user_id = u.user_id";
/// A re-created account is no longer deleted.
pub(super) const CLEAR_TOMBSTONES: &str =
    "DELETE FROM tombstones WHERE sdkappid = $1 AND user_id = ANY($2)";
/// Delete accounts, returning the ones that existed (each once, however often named).
pub(super) const DELETE_ACCOUNTS: &str =
    "DELETE FROM accounts WHERE sdkappid = $1 AND user_id = ANY($2) RETURNING user_id";
/// Date the deletions, for the re-import block; a later deletion of the same UserID wins.
/// The sequence number tells every instance's feed that these accounts are gone.
pub(super) const WRITE_TOMBSTONES: &str = "INSERT INTO tombstones (sdkappid, user_id, deleted_at, seq)
     SELECT $1, unnest($2::text[]), $3, $4
     ON CONFLICT (sdkappid, user_id) DO UPDATE SET deleted_at = excluded.deleted_at, seq = excluded.seq";

/// Every statement a write may run: prepared on each connection when the pool is warmed, so
/// that the first calls after a start pay no planning round trip.
pub(super) const ALL: &[&str] = &[
    LOCK_APP,
    STATS,
    SET_STATS,
    TOMBSTONES,
    INSERT_ACCOUNTS,
    CREATE_NEW,
    UPDATE_PROFILES,
    CLEAR_TOMBSTONES,
    DELETE_ACCOUNTS,
    WRITE_TOMBSTONES,
];

/// One `import` call of a group: its items and the policy it was called with.
pub(super) struct ImportCall {
    /// The accounts, in order.
    pub items: Vec<ImportItem>,
    /// The app's rules, and the call's own clock.
    pub policy: ImportPolicy,
}

/// New accounts as the parallel arrays [`INSERT_ACCOUNTS`] takes: UserIDs, nicknames, avatar
/// URLs, creation times.
type Created<'a> = (Vec<&'a str>, Vec<&'a [u8]>, Vec<&'a [u8]>, Vec<i64>);
/// Profile updates as the parallel arrays [`UPDATE_PROFILES`] takes (`None` keeps a field).
type Profiles<'a> = (Vec<&'a str>, Vec<Option<&'a [u8]>>, Vec<Option<&'a [u8]>>);

/// The net change of a whole group to one UserID, as the statements write it.
struct Net<'a> {
    user_id: &'a str,
    /// Some call of the group creates the account; at this time (that call's `now`).
    created_at: Option<i64>,
    nick: Option<&'a str>,
    face_url: Option<&'a str>,
}

/// `import` of a group of calls to one app, in one transaction: under the app's lock, read
/// the facts of every call at once (existing accounts, and tombstones when some policy blocks
/// re-imports), let [`import_policy::plan`] decide each call in order — each against the
/// count and accounts the calls before it left — then write the net changes with one
/// statement per kind, sent together. One list of outcomes per call, in order.
pub(super) async fn import_group_in(
    client: &mut Client,
    app: u32,
    calls: &[&ImportCall],
) -> Result<Vec<Vec<ImportOutcome>>, tokio_postgres::Error> {
    if calls.iter().all(|c| unlimited(&c.policy)) {
        return import_unlimited_in(client, app, calls).await;
    }
    let mut seen = HashSet::new();
    let ids: Vec<&str> = calls
        .iter()
        .flat_map(|c| c.items.iter().map(|i| i.user_id.as_str()))
        .filter(|id| seen.insert(*id))
        .collect();
    let need_tombstones = calls
        .iter()
        .any(|c| import_policy::needs_tombstones(&c.policy));
    let txn: &Client = client;
    let (start, seq) = begin_locked(txn, app).await?;
    let app = app_key(app);

    let lookup: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&app, &ids];
    let existing_stmt = txn.prepare_cached(EXISTING).await?;
    let (existing_rows, tombstone_rows) = if need_tombstones {
        let stmt = txn.prepare_cached(TOMBSTONES).await?;
        // Independent reads: sent together (pipelined) on the one connection.
        tokio::try_join!(
            txn.query(&existing_stmt, &lookup),
            txn.query(&stmt, &lookup)
        )?
    } else {
        (txn.query(&existing_stmt, &lookup).await?, Vec::new())
    };
    let mut existing = existing_rows
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<HashSet<_>, _>>()?;
    let deleted_at = tombstone_rows
        .iter()
        .map(|r| Ok((r.try_get::<_, String>(0)?, r.try_get::<_, i64>(1)?)))
        .collect::<Result<HashMap<_, _>, tokio_postgres::Error>>()?;

    // Each call in turn, as if the ones before it had committed: what they created exists,
    // and the count goes on from theirs.
    let mut count = start;
    let mut outcomes = Vec::with_capacity(calls.len());
    let mut net: Vec<Net<'_>> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for call in calls {
        let plan = import_policy::plan(
            &call.items,
            call.policy,
            count,
            |id| existing.contains(id),
            |id| deleted_at.get(id).copied(),
        );
        count = plan.count;
        for c in plan.changes {
            if c.created {
                existing.insert(c.user_id.to_owned());
            }
            match position.get(c.user_id).and_then(|&k| net.get_mut(k)) {
                // Named by an earlier call of the group: a later field wins.
                Some(n) => {
                    n.nick = c.nick.or(n.nick);
                    n.face_url = c.face_url.or(n.face_url);
                }
                None => {
                    position.insert(c.user_id, net.len());
                    net.push(Net {
                        user_id: c.user_id,
                        created_at: c.created.then_some(call.policy.now),
                        nick: c.nick,
                        face_url: c.face_url,
                    });
                }
            }
        }
        outcomes.push(plan.outcomes);
    }

    let mut created: Created<'_> = Default::default();
    let mut updated: Profiles<'_> = Default::default();
    for n in &net {
        if let Some(at) = n.created_at {
            // A new account without a given field starts with it empty.
            created.0.push(n.user_id);
            created.1.push(n.nick.unwrap_or("").as_bytes());
            created.2.push(n.face_url.unwrap_or("").as_bytes());
            created.3.push(at);
        } else if n.nick.is_some() || n.face_url.is_some() {
            updated.0.push(n.user_id);
            updated.1.push(n.nick.map(str::as_bytes));
            updated.2.push(n.face_url.map(str::as_bytes));
        }
    }
    // Only a change of which accounts exist moves the feed on.
    let new_seq = if created.0.is_empty() { seq } else { seq + 1 };
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
                &app, &created.0, &created.1, &created.2, &created.3, &new_seq,
            ],
        )
        .await
    };
    let clear = async {
        if created.0.is_empty() || !any_tombstones(need_tombstones, &deleted_at) {
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
    let set_stats = async {
        if count == start && new_seq == seq {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(SET_STATS).await?;
        txn.execute(&stmt, &[&app, &new_count, &new_seq]).await
    };
    tokio::try_join!(insert, clear, update, set_stats)?;
    txn.batch_execute("COMMIT").await?;
    Ok(outcomes)
}

/// Whether a policy lets every new UserID be created: no `max_accounts`, no re-import block.
/// Then nothing needs to be known before writing (see [`import_unlimited_in`]).
fn unlimited(policy: &ImportPolicy) -> bool {
    policy.max_accounts.is_none() && !import_policy::needs_tombstones(policy)
}

/// Create accounts that do not exist yet, all in one statement, and return those created:
/// the existence check and the insert in one pass over the primary key.
pub(super) const CREATE_NEW: &str =
    "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at, seq)
     SELECT $1, u.user_id, u.nick, u.face_url, u.created_at, $6
     FROM unnest($2::text[], $3::bytea[], $4::bytea[], $5::int8[]) AS u(user_id, nick, face_url, created_at)
     ON CONFLICT (sdkappid, user_id) DO NOTHING
     RETURNING user_id";

/// [`import_group_in`] when no call's policy can refuse an item (the trial plan, the
/// default): every UserID of the group that does not exist is created, by the first call
/// naming it, so there is nothing to read first. One statement inserts every UserID of the
/// group with its folded profile (`ON CONFLICT DO NOTHING`) and returns those it created;
/// the rest existed, and get their given fields written. The outcomes are what
/// [`import_policy::plan`] decides for such a policy — the first occurrence of a created
/// UserID in the group is `Created`, every other item `Updated` — which the conformance
/// suite checks for both paths. Saves the existence query: a third of a group's time under
/// the app's lock (3,200 UserIDs: 6.8 ms of about 16).
async fn import_unlimited_in(
    client: &mut Client,
    app: u32,
    calls: &[&ImportCall],
) -> Result<Vec<Vec<ImportOutcome>>, tokio_postgres::Error> {
    // The net change per UserID, in first-seen order: the first call naming a UserID creates
    // it (with that call's clock), a later given field wins.
    let mut net: Vec<Net<'_>> = Vec::new();
    let mut position: HashMap<&str, usize> = HashMap::new();
    for call in calls {
        for item in &call.items {
            let id = item.user_id.as_str();
            let (nick, face_url) = (item.nick.as_deref(), item.face_url.as_deref());
            match position.get(id).and_then(|&k| net.get_mut(k)) {
                Some(n) => {
                    n.nick = nick.or(n.nick);
                    n.face_url = face_url.or(n.face_url);
                }
                None => {
                    position.insert(id, net.len());
                    net.push(Net {
                        user_id: id,
                        created_at: Some(call.policy.now),
                        nick,
                        face_url,
                    });
                }
            }
        }
    }
    let txn: &Client = client;
    let (start, seq) = begin_locked(txn, app).await?;
    let app = app_key(app);
    let new_seq = seq + 1;
    let mut all: Created<'_> = Default::default();
    for n in &net {
        all.0.push(n.user_id);
        all.1.push(n.nick.unwrap_or("").as_bytes());
        all.2.push(n.face_url.unwrap_or("").as_bytes());
        all.3.push(n.created_at.unwrap_or(0));
    }
    let stmt = txn.prepare_cached(CREATE_NEW).await?;
    let created: HashSet<String> = txn
        .query(&stmt, &[&app, &all.0, &all.1, &all.2, &all.3, &new_seq])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<_, _>>()?;
    let created_ids: Vec<&str> = net
        .iter()
        .map(|n| n.user_id)
        .filter(|id| created.contains(*id))
        .collect();
    let mut updated: Profiles<'_> = Default::default();
    for n in net.iter().filter(|n| !created.contains(n.user_id)) {
        if n.nick.is_some() || n.face_url.is_some() {
            updated.0.push(n.user_id);
            updated.1.push(n.nick.map(str::as_bytes));
            updated.2.push(n.face_url.map(str::as_bytes));
        }
    }
    let count = (start + created_ids.len() as u64) as i64;
    let clear = async {
        if created_ids.is_empty() {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(CLEAR_TOMBSTONES).await?;
        txn.execute(&stmt, &[&app, &created_ids]).await
    };
    let update = async {
        if updated.0.is_empty() {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(UPDATE_PROFILES).await?;
        txn.execute(&stmt, &[&app, &updated.0, &updated.1, &updated.2])
            .await
    };
    let set_stats = async {
        // Only a change of which accounts exist moves the feed on.
        if created_ids.is_empty() {
            return Ok(0);
        }
        let stmt = txn.prepare_cached(SET_STATS).await?;
        txn.execute(&stmt, &[&app, &count, &new_seq]).await
    };
    tokio::try_join!(clear, update, set_stats)?;
    txn.batch_execute("COMMIT").await?;
    let mut seen: HashSet<&str> = HashSet::with_capacity(net.len());
    Ok(calls
        .iter()
        .map(|call| {
            call.items
                .iter()
                .map(|item| {
                    let id = item.user_id.as_str();
                    if seen.insert(id) && created.contains(id) {
                        ImportOutcome::Created
                    } else {
                        ImportOutcome::Updated
                    }
                })
                .collect()
        })
        .collect())
}

/// Whether a created account may have a tombstone to clear. When tombstones were read (some
/// policy blocks re-imports) the answer is known; otherwise they were not read, and any
/// created UserID may have been deleted before, so the statement must run.
fn any_tombstones(read: bool, deleted_at: &HashMap<String, i64>) -> bool {
    !read || !deleted_at.is_empty()
}

/// `delete`: under the app's lock, one statement deletes every named account that exists;
/// the tombstones (stamped with the app's next sequence number), the new count and the
/// deleted users' session state (cut-off, PushOnline) follow together. The first occurrence of a deleted UserID is `Deleted`, any repeat `NotFound`.
pub(super) async fn delete_in(
    client: &mut Client,
    app: u32,
    ids: &[UserId],
    now: i64,
) -> Result<Vec<DeleteOutcome>, tokio_postgres::Error> {
    let names: Vec<&str> = ids.iter().map(UserId::as_str).collect();
    let txn: &Client = client;
    let (count, seq) = begin_locked(txn, app).await?;
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
        let new_seq = seq + 1;
        let tomb = txn.prepare_cached(WRITE_TOMBSTONES).await?;
        let set = txn.prepare_cached(SET_STATS).await?;
        let tomb_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&app, &gone, &now, &new_seq];
        let set_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&app, &remaining, &new_seq];
        let cutoff = txn.prepare_cached(CUTOFF_DELETED).await?;
        let clear_push = txn.prepare_cached(CLEAR_PUSH_DELETED).await?;
        let cutoff_params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&app, &gone, &now];
        let clear_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&app, &gone];
        tokio::try_join!(
            txn.execute(&tomb, &tomb_params),
            txn.execute(&set, &set_params),
            txn.execute(&cutoff, &cutoff_params),
            txn.execute(&clear_push, &clear_params),
        )?;
    }
    txn.batch_execute("COMMIT").await?;
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
