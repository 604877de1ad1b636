//! The single writer thread and its group commit.
//!
//! Every write of every caller is queued here as a [`WriteJob`]. The thread takes all that
//! are waiting (up to [`MAX_GROUP`]), opens one transaction, applies each in a savepoint of
//! its own (a failing write undoes only itself), commits once — one fsync for the whole
//! group — and only then updates the in-memory index and answers the callers. What a write
//! does is its own business ([`Write`], one type per kind in [`super::writes`]); how writes
//! are grouped, committed and answered is this file's alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use parking_lot::RwLock;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::index::{AccountIndex, IndexChange};
use crate::StoreError;

/// The most writes folded into one transaction; bounds the latency one commit can add.
const MAX_GROUP: usize = 512;

/// One kind of write the writer thread applies (see [`super::writes`]); a new kind is one
/// type implementing this.
pub(super) trait Write: Send + 'static {
    /// What the caller gets back once the write is durable.
    type Output: Send + 'static;

    /// Apply the write inside the group's transaction, in a savepoint of its own. Index
    /// changes go to `index`: they reach the in-memory index only after the commit. On `Err`
    /// the writer rolls back the savepoint and drops the index changes, and the other writes
    /// of the group carry on.
    fn apply(
        &mut self,
        conn: &Connection,
        index: &mut Vec<IndexChange>,
    ) -> Result<Self::Output, StoreError>;
}

/// A queued write as the writer thread sees it, whatever its kind: something to apply, and
/// then to answer once the transaction's fate is known.
pub(super) trait WriteJob: Send {
    /// Apply the write (see [`Write::apply`]) and keep its result for [`Self::answer`];
    /// whether it succeeded (if not, the writer undoes it).
    fn apply(&mut self, conn: &Connection, index: &mut Vec<IndexChange>) -> bool;

    /// Answer the caller. `Ok` means the write's savepoint was released and the transaction
    /// committed (durable): the caller gets what `apply` produced. `Err` is what the caller
    /// gets instead (the transaction or the savepoint failed, so nothing was applied).
    fn answer(self: Box<Self>, outcome: Result<(), StoreError>);
}

/// What the writer's queue holds.
pub(super) type Job = Box<dyn WriteJob>;

/// A write of kind `W` with the channel its answer goes back on; its result is held back
/// until the transaction holding it is committed.
struct Queued<W: Write> {
    /// The write.
    write: W,
    /// What `apply` returned, until the commit decides whether it stands.
    result: Option<Result<W::Output, StoreError>>,
    /// Where the caller waits.
    reply: oneshot::Sender<Result<W::Output, StoreError>>,
}

/// Queue-ready form of `write`, and where its answer will arrive.
pub(super) fn job<W: Write>(write: W) -> (Job, oneshot::Receiver<Result<W::Output, StoreError>>) {
    let (reply, answer) = oneshot::channel();
    let queued = Queued {
        write,
        result: None,
        reply,
    };
    (Box::new(queued), answer)
}

impl<W: Write> WriteJob for Queued<W> {
    fn apply(&mut self, conn: &Connection, index: &mut Vec<IndexChange>) -> bool {
        let result = self.write.apply(conn, index);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, outcome: Result<(), StoreError>) {
        let result = match outcome {
            Err(e) => Err(e),
            Ok(()) => self.result.unwrap_or_else(|| {
                Err(StoreError::Unavailable(
                    "the write was never applied".into(),
                ))
            }),
        };
        // The caller may have given up waiting; the write stands either way.
        let _ = self.reply.send(result);
    }
}

/// What every write of a group gets when the transaction did not commit (or never began).
fn commit_failed(e: &str) -> StoreError {
    StoreError::Unavailable(format!("commit failed: {e}"))
}

/// The writer thread's state: the only read-write connection, and the index it keeps in step
/// with what is committed.
pub(super) struct Writer {
    /// The only connection that writes.
    conn: Connection,
    /// Shared with the readers of `account_check`.
    index: Arc<RwLock<AccountIndex>>,
    /// Set once the index has loaded; until then commits leave it alone.
    index_ready: Arc<AtomicBool>,
    /// Index changes of the transaction being built, applied only after it commits.
    pending: Vec<IndexChange>,
}

impl Writer {
    /// A writer over `conn`, which must already hold the schema.
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

    /// Serve writes until every sender is gone. With `hold` (tests only), wait until it is
    /// released or dropped before loading the index.
    pub(super) fn run(mut self, rx: mpsc::Receiver<Job>, hold: Option<mpsc::Receiver<()>>) {
        if let Some(hold) = hold {
            // A message or a dropped sender: either way, go on.
            let _ = hold.recv();
        }
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

    /// One transaction for the whole group, answered only after it committed.
    fn commit_group(&mut self, group: Vec<Job>) {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let e = e.to_string();
            for job in group {
                job.answer(Err(commit_failed(&e)));
            }
            return;
        }
        let mut applied = Vec::with_capacity(group.len());
        for mut job in group {
            let status = self.apply_in_savepoint(job.as_mut());
            applied.push((job, status));
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
        for (job, status) in applied {
            job.answer(match &commit {
                Ok(()) => status,
                Err(e) => Err(commit_failed(e)),
            });
        }
    }

    /// Apply one write in a savepoint of its own, so that a failing write undoes only itself.
    /// `Err` when the savepoint itself failed: the write's own result is then void.
    fn apply_in_savepoint(&mut self, job: &mut dyn WriteJob) -> Result<(), StoreError> {
        self.conn.execute_batch("SAVEPOINT w")?;
        let mark = self.pending.len();
        if !job.apply(&self.conn, &mut self.pending) {
            let _ = self.conn.execute_batch("ROLLBACK TO w");
            self.pending.truncate(mark);
        }
        if let Err(e) = self.conn.execute_batch("RELEASE w") {
            self.pending.truncate(mark);
            return Err(StoreError::from(e));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::sqlite::writes::Import;
    use crate::{ImportItem, ImportOutcome, ImportPolicy, UserId};

    /// A write that changes the database and the index, then fails.
    struct Failing;

    impl Write for Failing {
        type Output = ();

        fn apply(
            &mut self,
            conn: &Connection,
            index: &mut Vec<IndexChange>,
        ) -> Result<(), StoreError> {
            conn.execute(
                "INSERT INTO accounts (sdkappid, user_id, created_at) VALUES (1, 'failed', 1)",
                [],
            )?;
            index.push(IndexChange::Insert(1, "failed".into()));
            Err(StoreError::Unavailable("boom".into()))
        }
    }

    fn writer() -> Writer {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(super::super::SCHEMA).unwrap();
        Writer::new(
            conn,
            Arc::new(RwLock::new(AccountIndex::default())),
            Arc::new(AtomicBool::new(true)),
        )
    }

    fn import(id: &str) -> Import {
        Import {
            app: 1,
            items: vec![ImportItem::id_only(UserId::parse(id).unwrap())],
            policy: ImportPolicy {
                max_accounts: None,
                reimport_block_secs: None,
                now: 1,
            },
        }
    }

    /// One failing write in a group undoes only itself: the others commit, reach the index and
    /// get their answers; the failing one gets its own error and leaves no trace.
    #[test]
    fn a_failing_write_undoes_only_itself() {
        let mut writer = writer();
        let (first, first_answer) = job(import("a"));
        let (failing, failing_answer) = job(Failing);
        let (last, last_answer) = job(import("b"));
        writer.commit_group(vec![first, failing, last]);
        assert_eq!(
            first_answer.blocking_recv().unwrap().unwrap(),
            vec![ImportOutcome::Created]
        );
        assert!(matches!(
            failing_answer.blocking_recv().unwrap(),
            Err(StoreError::Unavailable(e)) if e == "boom"
        ));
        assert_eq!(
            last_answer.blocking_recv().unwrap().unwrap(),
            vec![ImportOutcome::Created]
        );
        let stored: Vec<String> = writer
            .conn
            .prepare("SELECT user_id FROM accounts ORDER BY user_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, vec!["a", "b"]);
        assert_eq!(
            writer.index.read().contains_all(1, &["a", "failed", "b"]),
            vec![true, false, true]
        );
        assert!(writer.pending.is_empty());
    }

    /// A group whose transaction cannot begin answers every write with the failure, and
    /// applies nothing.
    #[test]
    fn a_group_that_cannot_begin_fails_every_write() {
        let mut writer = writer();
        writer.conn.execute_batch("BEGIN").unwrap();
        let (a, a_answer) = job(import("a"));
        let (b, b_answer) = job(import("b"));
        writer.commit_group(vec![a, b]);
        for answer in [a_answer, b_answer] {
            assert!(matches!(
                answer.blocking_recv().unwrap(),
                Err(StoreError::Unavailable(e)) if e.starts_with("commit failed: ")
            ));
        }
        assert_eq!(
            writer.index.read().contains_all(1, &["a", "b"]),
            vec![false, false]
        );
    }
}
