//! Every instance answers `account_check` from an in-memory index of the app's UserIDs, kept
//! in step with the database by a change feed, and confirmed against the database before each
//! answer. This file is that feed, and the argument for why a check can never miss an import
//! (or a delete) that was acknowledged before the check was sent, whichever instance took it.
//!
//! # The feed
//!
//! Every write transaction of an app runs under the app's advisory lock and, when it changes
//! which accounts exist, takes the app's next sequence number (`app_stats.seq`, read and
//! written under that lock) and stamps it on every account row it creates and every tombstone
//! it writes (see [`super::writes`]; a re-import removes the tombstone, a delete the account,
//! so in any snapshot a UserID is in at most one of the two tables). Two facts follow:
//!
//! 1. **Sequence numbers become visible in order.** The lock is released only when its
//!    transaction ends, after its commit became visible, and the next holder reads `seq` after
//!    taking it. So a snapshot that sees number `n` sees every number below `n` too: no
//!    transaction with a smaller number can still be about to commit.
//! 2. **One statement tells everything that changed after `n`** ([`SYNC`]): the app's current
//!    `seq` (the head), the accounts stamped after `n` (they exist) and the tombstones stamped
//!    after `n` (those accounts are gone), all from one snapshot. A UserID changed several
//!    times shows only its latest state, which is all the index needs, so there is no log to
//!    replay or prune.
//!
//! An instance loads each app once (every UserID and the head, from one `REPEATABLE READ`
//! snapshot), and from then on applies [`SYNC`] from the number it has applied.
//!
//! # Why a check sees every write acknowledged before it was sent
//!
//! A check does not trust what the index has applied so far: it asks for a **round**, one
//! [`SYNC`] statement that *starts after the check arrived*, and answers from the index only
//! once that round has been applied. The chain, for an import acknowledged by any instance
//! before the check was sent:
//!
//! - the import's instance answered only after its `COMMIT` returned, and PostgreSQL makes a
//!   commit visible to new snapshots before it returns from `COMMIT`;
//! - so the commit is visible to every snapshot taken after the client got its answer, then
//!   sent the check, then this instance received it and asked for a round;
//! - the round's statement is sent after that (rounds are numbered under a lock: a check that
//!   read `started = s` waits for round `s + 1`, which can only begin after the read), so its
//!   snapshot sees the import, and by (1) every earlier change of the app;
//! - the round applies what it read before the check reads the index.
//!
//! The same chain holds for an acknowledged delete. What the index may show beyond that
//! (changes committed after the check was sent, applied by a later round) is also committed:
//! the index never holds anything that is not.
//!
//! Rounds are shared: one round serves every check that arrived before it started, and checks
//! that arrive while it runs share the next one, so under load the database sees one small
//! statement per round trip, not one per check. Nothing here depends on `LISTEN/NOTIFY`:
//! a notification is delivered some time after the commit, so an index that skipped the round
//! because "no notification came" could answer a check sent right after an acknowledged import
//! before that import's notification arrived: exactly the stale read this design rules out.
//!
//! If a round fails (the database is unreachable) the checks waiting for it fail with 70500,
//! as a query would have; until an app's index has loaded, its checks query the database
//! directly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{pin_mut, TryStreamExt};
use parking_lot::Mutex;
use tokio::sync::{watch, Notify, RwLock};

use super::pool::{bounded_by, checkout_from};
use super::reads::app_key;
use super::writes::STATS;
use crate::index::{AccountIndex, IndexChange};
use crate::{PostgresOptions, StoreError, UserIdRef};

/// What changed in the app after `$2`, and the app's head, in one snapshot: a row of kind 0
/// (the head, `seq` of `app_stats`), 1 (an account stamped after `$2`: it exists) or 2 (a
/// tombstone stamped after `$2`: that account is gone). Each branch is a range scan of a
/// `(sdkappid, seq)` index, so when nothing changed the statement reads one row.
pub(super) const SYNC: &str = "SELECT 0::int2, seq, NULL::text FROM app_stats WHERE sdkappid = $1
     UNION ALL SELECT 1::int2, seq, user_id FROM accounts WHERE sdkappid = $1 AND seq > $2
     UNION ALL SELECT 2::int2, seq, user_id FROM tombstones WHERE sdkappid = $1 AND seq > $2";
/// Every UserID of the app, for the first load.
const LOAD: &str = "SELECT user_id FROM accounts WHERE sdkappid = $1";
/// The feed's statements, prepared when the pool is warmed.
pub(super) const ALL: &[&str] = &[SYNC, LOAD];

/// Changes applied under one hold of the index's write lock, so that a long catch-up never
/// keeps checks waiting for long.
const APPLY_CHUNK: usize = 4_096;
/// The longest the first load of one app may take (millions of rows); a load cut short is
/// retried.
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a failed load waits before it is tried again (checks query the database
/// meanwhile).
const RETRY: Duration = Duration::from_secs(1);
/// How long a check of an app whose index is still loading waits for it before asking the
/// database instead: a small app's load is quick, and its first check, like every later
/// one, is then answered from memory; a big load (0.55 s for 3 million accounts) is not
/// waited for.
const FIRST_LOAD_WAIT: Duration = Duration::from_secs(1);
/// How often an app's index catches up when no check asks it to: a small statement a few
/// times a second per app, so that the first check after a burst of writes elsewhere does
/// not have to read them all.
const IDLE_ROUND: Duration = Duration::from_millis(200);
/// Failed rounds in a row after which the app is loaded again (see [`follow`]).
const FAILED_ROUNDS: u32 = 3;
/// Never trusted beyond this when sizing a table from the stored count.
const MOST_ACCOUNTS_HINT: u64 = 100_000_000;

/// A finished round: its number, and whether it read and applied the feed.
#[derive(Clone, Copy, Debug)]
struct Round {
    n: u64,
    ok: bool,
}

/// One app's index and the rounds that keep it confirmed.
pub(super) struct AppFeed {
    app: u32,
    /// Set once the first load has been applied; until then checks query the database.
    ready: AtomicBool,
    /// The same, for a check that waits for the load ([`FIRST_LOAD_WAIT`]).
    loaded: watch::Sender<bool>,
    /// An async lock: changes are applied on a blocking thread (growing the table of
    /// millions of entries takes a while), and a check waiting for them must not hold up
    /// the server's event loop meanwhile.
    index: RwLock<AccountIndex>,
    /// The newest round (or load) whose changes reached the index; taken only while the
    /// index's write lock is held. A round cut short by its timeout may leave a chunk still
    /// being applied on its blocking thread after the next round has begun: that chunk, older
    /// than what the next round applies, must not land after it (see [`apply`]).
    newest_applied: parking_lot::Mutex<u64>,
    /// Rounds started so far. A check reads it to know which round starts after it arrived.
    started: Mutex<u64>,
    /// A check wants a round.
    wake: Notify,
    /// The last finished round.
    done: watch::Sender<Round>,
}

/// Every app's feed in this instance (one per app, started on the app's first check).
pub(super) struct Feeds {
    apps: Mutex<HashMap<u32, Arc<AppFeed>>>,
    /// Dropped by [`Feeds::close`] (or with the store): every follower task then ends.
    alive: Mutex<Option<watch::Sender<()>>>,
}

impl Feeds {
    pub(super) fn new() -> Self {
        let (alive, _) = watch::channel(());
        Feeds {
            apps: Mutex::new(HashMap::new()),
            alive: Mutex::new(Some(alive)),
        }
    }

    /// Stop following: the tasks end, and checks go to the database.
    pub(super) fn close(&self) {
        self.alive.lock().take();
        for feed in self.apps.lock().values() {
            feed.ready.store(false, Ordering::Release);
        }
    }

    /// The app's feed, started (its load spawned) if this is the first time it is asked for.
    pub(super) fn start(
        &self,
        app: u32,
        pool: &deadpool_postgres::Pool,
        options: &PostgresOptions,
    ) -> Option<Arc<AppFeed>> {
        let mut apps = self.apps.lock();
        if let Some(feed) = apps.get(&app) {
            return Some(feed.clone());
        }
        let alive = self.alive.lock().as_ref()?.subscribe();
        let (done, _) = watch::channel(Round { n: 0, ok: true });
        let feed = Arc::new(AppFeed {
            app,
            ready: AtomicBool::new(false),
            loaded: watch::channel(false).0,
            index: RwLock::new(AccountIndex::default()),
            newest_applied: parking_lot::Mutex::new(0),
            started: Mutex::new(0),
            wake: Notify::new(),
            done,
        });
        apps.insert(app, feed.clone());
        tokio::spawn(follow(feed.clone(), pool.clone(), options.clone(), alive));
        Some(feed)
    }

    /// Whether the app's index has loaded, so that its checks are answered from memory.
    pub(super) fn ready(&self, app: u32) -> bool {
        self.apps
            .lock()
            .get(&app)
            .is_some_and(|f| f.ready.load(Ordering::Acquire))
    }

    /// `check` from memory, confirmed by a round that started after this call (see the
    /// module documentation); `None` while the app's index is not loaded yet, so that the
    /// caller asks the database instead.
    pub(super) async fn check(
        &self,
        app: u32,
        ids: &[UserIdRef<'_>],
        pool: &deadpool_postgres::Pool,
        options: &PostgresOptions,
    ) -> Option<Result<Vec<bool>, StoreError>> {
        let feed = self.start(app, pool, options)?;
        if !feed.ready.load(Ordering::Acquire) {
            let mut loaded = feed.loaded.subscribe();
            let wait = tokio::time::timeout(FIRST_LOAD_WAIT, loaded.wait_for(|l| *l));
            if !matches!(wait.await, Ok(Ok(_))) || !feed.ready.load(Ordering::Acquire) {
                return None;
            }
        }
        // The round after every round that has started: it starts after this read.
        let want = *feed.started.lock() + 1;
        let mut done = feed.done.subscribe();
        feed.wake.notify_one();
        let round = bounded_by(options, async {
            done.wait_for(|r| r.n >= want)
                .await
                .map(|r| *r)
                .map_err(|_| StoreError::Closed)
        })
        .await;
        Some(match round {
            Ok(Round { ok: true, .. }) => Ok(feed.index.read().await.contains_all(app, ids)),
            Ok(Round { ok: false, .. }) => Err(StoreError::Unavailable(
                "cannot confirm the account index with the database".into(),
            )),
            Err(e) => Err(e),
        })
    }
}

/// One app's follower: load the app, then run a round whenever a check asks for one (or
/// every [`IDLE_ROUND`]), until the store closes. After [`FAILED_ROUNDS`] failed rounds in a
/// row it loads the app again, checks asking the database meanwhile: a round that cannot
/// finish within the call timeout (a backlog of millions of changes after a long partition
/// of this instance alone) would otherwise fail again and again from the same point.
async fn follow(
    feed: Arc<AppFeed>,
    pool: deadpool_postgres::Pool,
    options: PostgresOptions,
    mut alive: watch::Receiver<()>,
) {
    'load: loop {
        let mut applied = loop {
            let started = std::time::Instant::now();
            match tokio::time::timeout(LOAD_TIMEOUT, load(&pool, feed.app)).await {
                Ok(Ok((index, head))) => {
                    let accounts = index.len();
                    let mut current = feed.index.write().await;
                    *current = index;
                    // Whatever a round started before still has in flight is older than
                    // this load; the next round (numbered one more than those) is not.
                    let next_round = *feed.started.lock() + 1;
                    *feed.newest_applied.lock() = next_round;
                    drop(current);
                    tracing::info!(
                        app = feed.app,
                        accounts,
                        seq = head,
                        secs = started.elapsed().as_secs_f64(),
                        "account index loaded"
                    );
                    break head;
                }
                Ok(Err(StoreError::Closed)) => break 'load,
                Ok(Err(e)) => {
                    tracing::warn!(app = feed.app, error = %e, "cannot load the account index; account_check queries the database meanwhile")
                }
                Err(_) => tracing::warn!(
                    app = feed.app,
                    "loading the account index timed out; retrying"
                ),
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = alive.changed() => break 'load,
            }
        };
        feed.ready.store(true, Ordering::Release);
        feed.loaded.send_replace(true);
        let mut failures = 0;
        loop {
            tokio::select! {
                _ = feed.wake.notified() => {}
                // Not for correctness (a check always waits for a round of its own), but so
                // that an instance that takes no checks for a while, while others write,
                // keeps up: its next check then reads a few changes, not all since it last
                // looked.
                _ = tokio::time::sleep(IDLE_ROUND) => {}
                _ = alive.changed() => break 'load,
            }
            let n = {
                let mut started = feed.started.lock();
                *started += 1;
                *started
            };
            let result = bounded_by(&options, sync(&pool, &feed, applied, n)).await;
            let ok = match result {
                Ok(head) => {
                    applied = head;
                    failures = 0;
                    true
                }
                Err(StoreError::Closed) => {
                    feed.done.send_replace(Round { n, ok: false });
                    break 'load;
                }
                Err(e) => {
                    tracing::debug!(app = feed.app, error = %e, "account index round failed");
                    failures += 1;
                    false
                }
            };
            feed.done.send_replace(Round { n, ok });
            if failures >= FAILED_ROUNDS {
                tracing::warn!(
                    app = feed.app,
                    "account index rounds keep failing; loading the app again"
                );
                feed.ready.store(false, Ordering::Release);
                feed.loaded.send_replace(false);
                continue 'load;
            }
        }
    }
    feed.ready.store(false, Ordering::Release);
}

/// The first load: every UserID of the app and the head, from one snapshot, into a table
/// sized once from the stored count. The rows stream in and are placed as they come (a
/// stream of rows yields to the server's other tasks as it goes), so a load of millions of
/// rows never holds the event loop for long; measured with 3 million accounts: 0.5 s of CPU.
async fn load(pool: &deadpool_postgres::Pool, app: u32) -> Result<(AccountIndex, i64), StoreError> {
    let mut conn = checkout_from(pool).await?;
    let client = conn.client()?;
    let txn = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    // Millions of rows may take longer than one call's bound; `LOAD_TIMEOUT` bounds it here.
    txn.batch_execute("SET LOCAL statement_timeout = 0").await?;
    let key = app_key(app);
    let stats = txn.prepare_cached(STATS).await?;
    let (count, head): (i64, i64) = match txn.query_opt(&stats, &[&key]).await? {
        Some(row) => (row.try_get(0)?, row.try_get(1)?),
        None => (0, 0),
    };
    let mut index = AccountIndex::default();
    let hint = (count.max(0) as u64).min(MOST_ACCOUNTS_HINT);
    index.reserve_exact(app, usize::try_from(hint).unwrap_or(0));
    let mut loader = index.loader();
    let stmt = txn.prepare_cached(LOAD).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
    let rows = txn.query_raw(&stmt, params).await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        // Rows of the primary key: distinct, as the loader needs.
        loader.push(app, row.try_get::<_, &str>(0)?);
    }
    txn.commit().await?;
    conn.keep();
    Ok((loader.finish(), head))
}

/// One round: read what changed after `applied` and apply it; the new head.
async fn sync(
    pool: &deadpool_postgres::Pool,
    feed: &Arc<AppFeed>,
    applied: i64,
    round: u64,
) -> Result<i64, StoreError> {
    let mut conn = checkout_from(pool).await?;
    let client: &super::reads::Client = conn.client()?;
    let stmt = client.prepare_cached(SYNC).await?;
    let key = app_key(feed.app);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&key, &applied];
    // In a read-only transaction with the generic plan, sent together in one round trip
    // with the statement and the commit. The pool's connections force a custom plan (see
    // `pool`), and planning this statement anew costs ten times its execution (0.43 ms
    // against 0.08: the planner probes the sequence index for its true end on every
    // `seq > $2`), while its one plan, three index range scans, is right for every value.
    // A round's latency is what a check waits for, so it bounds the checks per second.
    let begin =
        client.batch_execute("BEGIN READ ONLY; SET LOCAL plan_cache_mode = force_generic_plan");
    let (_, rows) = tokio::try_join!(begin, client.query_raw(&stmt, params))?;
    let commit = client.batch_execute("COMMIT");
    let read = async {
        pin_mut!(rows);
        let mut head = applied;
        let mut changes = Vec::new();
        while let Some(row) = rows.try_next().await? {
            let kind: i16 = row.try_get(0)?;
            let seq: i64 = row.try_get(1)?;
            match kind {
                0 => head = head.max(seq),
                1 => changes.push(IndexChange::Insert(feed.app, row.try_get(2)?)),
                _ => changes.push(IndexChange::Remove(feed.app, row.try_get(2)?)),
            }
            if changes.len() >= APPLY_CHUNK {
                apply(feed, &mut changes, round).await?;
            }
        }
        apply(feed, &mut changes, round).await?;
        Ok::<i64, StoreError>(head)
    };
    let (head, ()) = tokio::try_join!(read, async { commit.await.map_err(StoreError::from) })?;
    conn.keep();
    Ok(head)
}

/// Apply `changes` of round `round` to the index, emptying it, on a blocking thread: one
/// insert may grow a table of millions of entries, which takes long enough to matter to the
/// event loop. The order within one round does not matter: a UserID appears in at most one of
/// the two tables in a snapshot, so at most once. Across rounds it does: a chunk of a round
/// that was cut short (its task goes on when the round's future is dropped) is skipped once a
/// newer round has applied anything, since that round read everything after the same point,
/// in a newer snapshot.
async fn apply(
    feed: &Arc<AppFeed>,
    changes: &mut Vec<IndexChange>,
    round: u64,
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let batch = std::mem::take(changes);
    let feed = feed.clone();
    tokio::task::spawn_blocking(move || {
        let mut index = feed.index.blocking_write();
        let mut newest = feed.newest_applied.lock();
        if round < *newest {
            return;
        }
        *newest = round;
        for c in batch {
            index.apply(c);
        }
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("applying index changes failed: {e}")))
}
