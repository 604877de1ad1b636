//! The single writer thread and its group commit.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use parking_lot::RwLock;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::index::{AccountIndex, IndexChange};
use crate::{
    import_policy, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, StoreError, UserId,
};

/// The most writes folded into one transaction; bounds the latency one commit can add.
const MAX_GROUP: usize = 512;

/// A write waiting for the writer thread, with the channel its answer goes back on.
pub(super) enum Write {
    Import {
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
        reply: oneshot::Sender<Result<Vec<ImportOutcome>, StoreError>>,
    },
    Delete {
        app: u32,
        ids: Vec<UserId>,
        now: i64,
        reply: oneshot::Sender<Result<Vec<DeleteOutcome>, StoreError>>,
    },
}

/// A write's answer, held back until the transaction holding it is committed.
enum Answer {
    Import(
        oneshot::Sender<Result<Vec<ImportOutcome>, StoreError>>,
        Result<Vec<ImportOutcome>, StoreError>,
    ),
    Delete(
        oneshot::Sender<Result<Vec<DeleteOutcome>, StoreError>>,
        Result<Vec<DeleteOutcome>, StoreError>,
    ),
}

impl Answer {
    fn send(self, commit: &Result<(), String>) {
        match self {
            Answer::Import(tx, r) => {
                let _ = tx.send(after_commit(r, commit));
            }
            Answer::Delete(tx, r) => {
                let _ = tx.send(after_commit(r, commit));
            }
        }
    }
}

fn after_commit<T>(r: Result<T, StoreError>, commit: &Result<(), String>) -> Result<T, StoreError> {
    match commit {
        Ok(()) => r,
        Err(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
    }
}

pub(super) struct Writer {
    conn: Connection,
    index: Arc<RwLock<AccountIndex>>,
    index_ready: Arc<AtomicBool>,
    /// Index changes of the transaction being built, applied only after it commits.
    pending: Vec<IndexChange>,
}

impl Writer {
    pub(super) fn new(
        conn: Connection,
        index: Arc<RwLock<AccountIndex>>,
        index_ready: Arc<AtomicBool>,
    ) -> Self {
        Writer {
            conn,
            index,
            index_ready,
            pending: Vec::new(),
        }
    }

    /// Fill the index from the database. Runs on the writer thread before any write, so no
    /// write can slip between the scan and the first indexed commit.
    fn load_index(&mut self) -> Result<(), rusqlite::Error> {
        let started = std::time::Instant::now();
        let mut index = AccountIndex::default();
        // Each app's count, kept in the same transactions as its accounts, sizes its table
        // once; it is only a hint (the table still grows if it is short), and never trusted
        // past what the file could hold (a row takes well over 8 bytes), so a damaged count
        // cannot make start-up allocate without bound.
        let file_bytes: i64 = self.conn.query_row(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            [],
            |r| r.get(0),
        )?;
        let most = usize::try_from(file_bytes / 8).unwrap_or(0);
        let mut stats = self
            .conn
            .prepare("SELECT sdkappid, accounts FROM app_stats")?;
        let mut rows = stats.query([])?;
        while let Some(row) = rows.next()? {
            let app: u32 = row.get(0)?;
            let n: i64 = row.get(1)?;
            index.reserve_exact(app, usize::try_from(n).unwrap_or(0).min(most));
        }
        let mut loader = index.loader();
        let mut count = 0u64;
        let mut stmt = self
            .conn
            .prepare("SELECT sdkappid, user_id FROM accounts")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let app: u32 = row.get(0)?;
            let id = row.get_ref(1)?.as_str()?;
            loader.push(app, id);
            count += 1;
        }
        *self.index.write() = loader.finish();
        self.index_ready.store(true, Ordering::Release);
        tracing::info!(
            accounts = count,
            secs = started.elapsed().as_secs_f64(),
            "account index loaded"
        );
        Ok(())
    }

    /// Serve writes until every sender is gone.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Write>) {
        if let Err(e) = self.load_index() {
            // Reads keep going to the database; only the fast path is lost.
            tracing::error!(error = %e, "cannot load the account index; account_check will query SQLite");
        }
        while let Ok(first) = rx.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match rx.try_recv() {
                    Ok(w) => group.push(w),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, group: Vec<Write>) {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let err = Err(e.to_string());
            for w in group {
                answer_unapplied(w).send(&err);
            }
            return;
        }
        let mut answers = Vec::with_capacity(group.len());
        for w in group {
            answers.push(self.apply_in_savepoint(w));
        }
        let commit = self.conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        let changes = std::mem::take(&mut self.pending);
        if commit.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        } else if self.index_ready.load(Ordering::Acquire) && !changes.is_empty() {
            let mut index = self.index.write();
            for c in changes {
                index.apply(c);
            }
        }
        for a in answers {
            a.send(&commit);
        }
    }

    fn apply_in_savepoint(&mut self, w: Write) -> Answer {
        if let Err(e) = self.conn.execute_batch("SAVEPOINT w") {
            let mut a = answer_unapplied(w);
            a.set_error(StoreError::from(e));
            return a;
        }
        let mark = self.pending.len();
        let answer = match w {
            Write::Import {
                app,
                items,
                policy,
                reply,
            } => {
                let r = import(&self.conn, app, &items, policy, &mut self.pending);
                Answer::Import(reply, r)
            }
            Write::Delete {
                app,
                ids,
                now,
                reply,
            } => {
                let r = delete(&self.conn, app, &ids, now, &mut self.pending);
                Answer::Delete(reply, r)
            }
        };
        let ok = match &answer {
            Answer::Import(_, r) => r.is_ok(),
            Answer::Delete(_, r) => r.is_ok(),
        };
        if !ok {
            let _ = self.conn.execute_batch("ROLLBACK TO w");
            self.pending.truncate(mark);
        }
        if let Err(e) = self.conn.execute_batch("RELEASE w") {
            self.pending.truncate(mark);
            let mut answer = answer;
            answer.set_error(StoreError::from(e));
            return answer;
        }
        answer
    }
}

impl Answer {
    fn set_error(&mut self, e: StoreError) {
        match self {
            Answer::Import(_, r) => *r = Err(e),
            Answer::Delete(_, r) => *r = Err(e),
        }
    }
}

fn answer_unapplied(w: Write) -> Answer {
    let e = || StoreError::Unavailable("transaction could not start".into());
    match w {
        Write::Import { reply, .. } => Answer::Import(reply, Err(e())),
        Write::Delete { reply, .. } => Answer::Delete(reply, Err(e())),
    }
}

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

fn account_count(conn: &Connection, app: u32) -> Result<u64, StoreError> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT accounts FROM app_stats WHERE sdkappid = ?1")?
        .query_row([app], |r| r.get(0))
        .optional()?;
    Ok(n.unwrap_or(0).max(0) as u64)
}

fn set_account_count(conn: &Connection, app: u32, count: u64) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO app_stats (sdkappid, accounts) VALUES (?1, ?2)
         ON CONFLICT (sdkappid) DO UPDATE SET accounts = excluded.accounts",
    )?
    .execute(params![app, count as i64])?;
    Ok(())
}
