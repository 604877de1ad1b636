//! The kinds of write the writer thread applies, each one type implementing [`Write`]: what
//! it changes in the database and in the pending index changes. A new kind of record adds a
//! type here; the writer and its group commit stay as they are.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};

use super::writer::Write;
use crate::index::IndexChange;
use crate::{
    import_policy, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, StoreError, UserId,
};

/// Import (create or update) accounts: `AccountStore::import`.
pub(super) struct Import {
    /// The app.
    pub app: u32,
    /// The accounts, in order.
    pub items: Vec<ImportItem>,
    /// The app's rules for creating accounts.
    pub policy: ImportPolicy,
}

impl Write for Import {
    type Output = Vec<ImportOutcome>;

    fn apply(
        &mut self,
        conn: &Connection,
        index: &mut Vec<IndexChange>,
    ) -> Result<Self::Output, StoreError> {
        import(conn, self.app, &self.items, self.policy, index)
    }
}

/// Delete accounts, leaving tombstones: `AccountStore::delete`.
pub(super) struct Delete {
    /// The app.
    pub app: u32,
    /// The accounts, in order (a repeat finds the account gone).
    pub ids: Vec<UserId>,
    /// The tombstones' date.
    pub now: i64,
}

impl Write for Delete {
    type Output = Vec<DeleteOutcome>;

    fn apply(
        &mut self,
        conn: &Connection,
        index: &mut Vec<IndexChange>,
    ) -> Result<Self::Output, StoreError> {
        delete(conn, self.app, &self.ids, self.now, index)
    }
}

/// Kick a user: `AccountStore::kick`.
pub(super) struct Kick {
    /// The app.
    pub app: u32,
    /// The user.
    pub id: UserId,
    /// The cut-off.
    pub at: i64,
}

impl Write for Kick {
    type Output = bool;

    fn apply(&mut self, conn: &Connection, _: &mut Vec<IndexChange>) -> Result<bool, StoreError> {
        let exists = conn
            .prepare_cached("SELECT 1 FROM accounts WHERE sdkappid = ?1 AND user_id = ?2")?
            .exists(params![self.app, self.id.as_str()])?;
        if exists {
            end_sessions(conn, self.app, self.id.as_str(), self.at)?;
        }
        Ok(exists)
    }
}

/// Set or clear a PushOnline time: `AccountStore::set_push_online`.
pub(super) struct SetPushOnline {
    /// The app.
    pub app: u32,
    /// The user.
    pub id: UserId,
    /// The platform's name.
    pub platform: String,
    /// Until when; `None` clears.
    pub until: Option<i64>,
}

impl Write for SetPushOnline {
    type Output = ();

    fn apply(&mut self, conn: &Connection, _: &mut Vec<IndexChange>) -> Result<(), StoreError> {
        let (app, id, platform) = (self.app, self.id.as_str(), self.platform.as_str());
        match self.until {
            Some(until) => {
                conn.prepare_cached(
                    "INSERT INTO push_online (sdkappid, user_id, platform, until)
                     SELECT ?1, ?2, ?3, ?4
                     WHERE EXISTS (SELECT 1 FROM accounts WHERE sdkappid = ?1 AND user_id = ?2)
                     ON CONFLICT (sdkappid, user_id, platform) DO UPDATE SET until = excluded.until",
                )?
                .execute(params![app, id, platform, until])?;
            }
            None => {
                conn.prepare_cached(
                    "DELETE FROM push_online WHERE sdkappid = ?1 AND user_id = ?2 AND platform = ?3",
                )?
                .execute(params![app, id, platform])?;
            }
        }
        Ok(())
    }
}

/// What a kick and a deletion both do to a user's durable session state: the cut-off moves
/// to `at` (never back), and no platform stays PushOnline.
fn end_sessions(conn: &Connection, app: u32, id: &str, at: i64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO cutoffs (sdkappid, user_id, at) VALUES (?1, ?2, ?3)
         ON CONFLICT (sdkappid, user_id) DO UPDATE SET at = max(at, excluded.at)",
    )?
    .execute(params![app, id, at])?;
    conn.prepare_cached("DELETE FROM push_online WHERE sdkappid = ?1 AND user_id = ?2")?
        .execute(params![app, id])?;
    Ok(())
}

/// [`Import`]: read the facts (one lookup per distinct UserID, on cached statements), let
/// [`import_policy::plan`] decide, then write its changes and the new count.
fn import(
    conn: &Connection,
    app: u32,
    items: &[ImportItem],
    policy: ImportPolicy,
    changes: &mut Vec<IndexChange>,
) -> Result<Vec<ImportOutcome>, StoreError> {
    let start = account_count(conn, app)?;
    let ids = import_policy::distinct_ids(items);
    let mut exists =
        conn.prepare_cached("SELECT 1 FROM accounts WHERE sdkappid = ?1 AND user_id = ?2")?;
    let mut tombstone = conn
        .prepare_cached("SELECT deleted_at FROM tombstones WHERE sdkappid = ?1 AND user_id = ?2")?;
    let mut existing = HashSet::with_capacity(ids.len());
    let mut deleted_at = HashMap::new();
    for id in ids {
        if exists.exists(params![app, id])? {
            existing.insert(id);
        } else if import_policy::needs_tombstones(&policy) {
            let t: Option<i64> = tombstone
                .query_row(params![app, id], |r| r.get(0))
                .optional()?;
            if let Some(t) = t {
                deleted_at.insert(id, t);
            }
        }
    }
    let plan = import_policy::plan(
        items,
        policy,
        start,
        |id| existing.contains(id),
        |id| deleted_at.get(id).copied(),
    );

    let mut insert = conn.prepare_cached(
        "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut update = conn.prepare_cached(
        "UPDATE accounts SET nick = COALESCE(?3, nick), face_url = COALESCE(?4, face_url)
         WHERE sdkappid = ?1 AND user_id = ?2",
    )?;
    let mut clear_tombstone =
        conn.prepare_cached("DELETE FROM tombstones WHERE sdkappid = ?1 AND user_id = ?2")?;
    for c in &plan.changes {
        if c.created {
            insert.execute(params![
                app,
                c.user_id,
                c.nick.unwrap_or(""),
                c.face_url.unwrap_or(""),
                policy.now
            ])?;
            clear_tombstone.execute(params![app, c.user_id])?;
            changes.push(IndexChange::Insert(app, c.user_id.to_owned()));
        } else if c.touches_profile() {
            update.execute(params![app, c.user_id, c.nick, c.face_url])?;
        }
    }
    if plan.count != start {
        set_account_count(conn, app, plan.count)?;
    }
    Ok(plan.outcomes)
}

/// [`Delete`]: each named account that exists is deleted and dated in `tombstones`; a repeat
/// finds it gone.
fn delete(
    conn: &Connection,
    app: u32,
    ids: &[UserId],
    now: i64,
    changes: &mut Vec<IndexChange>,
) -> Result<Vec<DeleteOutcome>, StoreError> {
    let mut remove =
        conn.prepare_cached("DELETE FROM accounts WHERE sdkappid = ?1 AND user_id = ?2")?;
    let mut tombstone = conn.prepare_cached(
        "INSERT INTO tombstones (sdkappid, user_id, deleted_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (sdkappid, user_id) DO UPDATE SET deleted_at = excluded.deleted_at",
    )?;
    let mut removed = 0u64;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if remove.execute(params![app, id.as_str()])? > 0 {
            tombstone.execute(params![app, id.as_str(), now])?;
            end_sessions(conn, app, id.as_str(), now)?;
            changes.push(IndexChange::Remove(app, id.as_str().to_owned()));
            removed += 1;
            out.push(DeleteOutcome::Deleted);
        } else {
            out.push(DeleteOutcome::NotFound);
        }
    }
    if removed > 0 {
        let count = account_count(conn, app)?.saturating_sub(removed);
        set_account_count(conn, app, count)?;
    }
    Ok(out)
}

/// The app's account count, kept in `app_stats` in the same transactions as its accounts.
fn account_count(conn: &Connection, app: u32) -> Result<u64, StoreError> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT accounts FROM app_stats WHERE sdkappid = ?1")?
        .query_row([app], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Store the app's account count.
fn set_account_count(conn: &Connection, app: u32, count: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO app_stats (sdkappid, accounts) VALUES (?1, ?2)
         ON CONFLICT (sdkappid) DO UPDATE SET accounts = excluded.accounts",
    )?
    .execute(params![app, count as i64])?;
    Ok(())
}
