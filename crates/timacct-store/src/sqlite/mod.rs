//! The embedded backend: one SQLite file in WAL mode.
//!
//! Durability: `synchronous = FULL` makes every commit fsync the WAL before it returns, and no
//! write is acknowledged before its commit returns. To keep that affordable under concurrency
//! all writes go through one writer thread that takes every write waiting in its queue, applies
//! them in one transaction (each in its own savepoint, so one failing write does not undo the
//! others) and commits once: concurrent writers share one fsync (group commit). Reads use a
//! small pool of read-only connections, which WAL lets run beside the writer.

mod integrity;
mod writer;
mod writes;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::index::AccountIndex;
use crate::{
    Account, AccountStore, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, PushOnline,
    StoreError, UserId, UserIdRef,
};
use writer::{Job, Write, Writer};
use writes::{Delete, Import, Kick, SetPushOnline};

/// The schema, applied at every open (idempotent).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    sdkappid   INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    nick       TEXT    NOT NULL DEFAULT '',
    face_url   TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tombstones (
    sdkappid   INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS app_stats (
    sdkappid INTEGER PRIMARY KEY,
    accounts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cutoffs (
    sdkappid INTEGER NOT NULL,
    user_id  TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS push_online (
    sdkappid INTEGER NOT NULL,
    user_id  TEXT    NOT NULL,
    platform TEXT    NOT NULL,
    until    INTEGER NOT NULL,
    PRIMARY KEY (sdkappid, user_id, platform)
) WITHOUT ROWID;
";

/// The SQLite backend. Cheap to clone; all clones share one writer thread.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writes: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Mutex<Vec<Connection>>,
    /// Every stored UserID, once the writer has loaded them; see [`crate::index`].
    index: Arc<RwLock<AccountIndex>>,
    index_ready: Arc<AtomicBool>,
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        Self::open_with(path.as_ref(), None)
    }

    /// [`SqliteStore::open`], with the writer thread held before it loads the account index
    /// until the [`IndexLoadHold`] is released (or dropped). Meanwhile `account_check` is
    /// answered from the database, as it is during a real start-up, and writes wait in the
    /// writer's queue: a test of that path no longer depends on how fast the index loads.
    #[cfg(feature = "test-support")]
    pub fn open_holding_index_load(
        path: impl AsRef<Path>,
    ) -> Result<(SqliteStore, IndexLoadHold), StoreError> {
        let (release, held) = mpsc::channel();
        let store = Self::open_with(path.as_ref(), Some(held))?;
        Ok((store, IndexLoadHold(Some(release))))
    }

    fn open_with(path: &Path, hold: Option<mpsc::Receiver<()>>) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        // An existing file that is not an intact database is refused before it is touched.
        let on_disk = integrity::inspect(&path)?;
        let conn = Connection::open(&path)?;
        integrity::verify(&conn, &on_disk)?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{}: cannot switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=OFF;",
        )?;
        conn.execute_batch(SCHEMA)?;
        let (tx, rx) = mpsc::channel();
        let index = Arc::new(RwLock::new(AccountIndex::default()));
        let index_ready = Arc::new(AtomicBool::new(false));
        let writer = Writer::new(conn, index.clone(), index_ready.clone());
        let handle = std::thread::Builder::new()
            .name("timacct-sqlite-writer".into())
            .spawn(move || writer.run(rx, hold))
            .map_err(|e| StoreError::Unavailable(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writes: Mutex::new(Some(tx)),
                writer_thread: Mutex::new(Some(handle)),
                readers: Mutex::new(Vec::new()),
                index,
                index_ready,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether `account_check` is being answered from memory yet.
    pub fn index_ready(&self) -> bool {
        self.inner.index_ready.load(Ordering::Acquire)
    }

    /// Stop accepting writes, let the writer finish what it has, and wait for it.
    pub fn close(&self) {
        // Readers first, so that the writer's connection is the last one: SQLite then
        // checkpoints the WAL into the database and removes it, and the next start finds a
        // clean file instead of a log to recover.
        self.inner.readers.lock().clear();
        self.inner.writes.lock().take();
        if let Some(handle) = self.inner.writer_thread.lock().take() {
            let _ = handle.join();
        }
    }

    /// Queue `write` for the writer thread and wait until it is durable (or failed).
    async fn write<W: Write>(&self, write: W) -> Result<W::Output, StoreError> {
        let (job, answer) = writer::job(write);
        {
            let guard = self.inner.writes.lock();
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender.send(job).map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match inner.readers.lock().pop() {
                Some(conn) => conn,
                None => open_reader(&inner.path)?,
            };
            let result = f(&conn);
            let mut pool = inner.readers.lock();
            if pool.len() < 16 {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("reader task failed: {e}")))?
    }
}

/// Holds a store opened with [`SqliteStore::open_holding_index_load`] before its index load;
/// [`IndexLoadHold::release`] (or dropping it) lets the load start. Tests only.
#[cfg(feature = "test-support")]
#[derive(Debug)]
pub struct IndexLoadHold(Option<mpsc::Sender<()>>);

#[cfg(feature = "test-support")]
impl IndexLoadHold {
    /// Let the writer load the index and then serve the writes queued meanwhile.
    pub fn release(mut self) {
        if let Some(release) = self.0.take() {
            let _ = release.send(());
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.writes.lock().take();
        if let Some(handle) = self.writer_thread.lock().take() {
            let _ = handle.join();
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch("PRAGMA busy_timeout=5000;")?;
    Ok(conn)
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn import(
        &self,
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        self.write(Import { app, items, policy }).await
    }

    async fn check(&self, app: u32, ids: &[UserIdRef<'_>]) -> Result<Vec<bool>, StoreError> {
        if self.inner.index_ready.load(Ordering::Acquire) {
            return Ok(self.inner.index.read().contains_all(app, ids));
        }
        // Until the writer has loaded the index (a few seconds for millions of accounts),
        // answer from the database.
        let ids: Vec<UserId> = ids.iter().map(|id| id.to_user_id()).collect();
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT 1 FROM accounts WHERE sdkappid = ?1 AND user_id = ?2")?;
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                out.push(stmt.exists(rusqlite::params![app, id.as_str()])?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete(
        &self,
        app: u32,
        ids: Vec<UserId>,
        now: i64,
    ) -> Result<Vec<DeleteOutcome>, StoreError> {
        self.write(Delete { app, ids, now }).await
    }

    async fn account(&self, app: u32, id: UserId) -> Result<Option<Account>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT nick, face_url, created_at FROM accounts WHERE sdkappid = ?1 AND user_id = ?2",
            )?;
            let row = stmt
                .query_row(rusqlite::params![app, id.as_str()], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })
                .optional()?;
            Ok(row.map(|(nick, face_url, created_at)| Account {
                user_id: id,
                nick,
                face_url,
                created_at,
            }))
        })
        .await
    }

    async fn account_count(&self, app: u32) -> Result<u64, StoreError> {
        self.read(move |conn| {
            let n: Option<i64> = conn
                .prepare_cached("SELECT accounts FROM app_stats WHERE sdkappid = ?1")?
                .query_row([app], |r| r.get(0))
                .optional()?;
            Ok(n.unwrap_or(0).max(0) as u64)
        })
        .await
    }

    async fn kick(&self, app: u32, id: UserId, at: i64) -> Result<bool, StoreError> {
        self.write(Kick { app, id, at }).await
    }

    async fn cutoff(&self, app: u32, id: UserId) -> Result<Option<i64>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT at FROM cutoffs WHERE sdkappid = ?1 AND user_id = ?2")?
                .query_row(rusqlite::params![app, id.as_str()], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    async fn cutoffs(&self, app: u32) -> Result<Vec<(UserId, i64)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, at FROM cutoffs WHERE sdkappid = ?1 ORDER BY user_id",
            )?;
            let rows = stmt.query_map([app], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (id, at) = row?;
                out.push((stored_user_id(id)?, at));
            }
            Ok(out)
        })
        .await
    }

    async fn set_push_online(
        &self,
        app: u32,
        id: UserId,
        platform: String,
        until: Option<i64>,
    ) -> Result<(), StoreError> {
        self.write(SetPushOnline {
            app,
            id,
            platform,
            until,
        })
        .await
    }

    async fn push_online(&self, app: u32) -> Result<Vec<PushOnline>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT user_id, platform, until FROM push_online WHERE sdkappid = ?1
                 ORDER BY user_id, platform",
            )?;
            let rows = stmt.query_map([app], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, platform, until) = row?;
                out.push(PushOnline {
                    user_id: stored_user_id(id)?,
                    platform,
                    until,
                });
            }
            Ok(out)
        })
        .await
    }
}

/// A UserID read back from the file: written only from a valid [`UserId`], so a failure here
/// means the file was changed behind the server's back.
fn stored_user_id(id: String) -> Result<UserId, StoreError> {
    UserId::parse(id)
        .map_err(|e| StoreError::Unavailable(format!("the database holds an invalid UserID: {e}")))
}
