//! The networked backend: one PostgreSQL database shared by any number of stateless
//! `timacct serve` instances.
//!
//! Why several instances on one database behave as one service:
//!
//! - **Writes to one app are serialized across every instance.** Each `import` and `delete`
//!   runs in one transaction whose first statement takes the app's advisory lock
//!   (`pg_advisory_xact_lock`, held until commit or rollback, released by PostgreSQL if the
//!   instance dies). Everything the transaction then reads (which accounts exist, tombstones,
//!   the account count in `app_stats`) is the latest committed state, and nothing else can
//!   change it before the commit. That is what keeps `max_accounts`, tombstones
//!   (70399) and the per-item outcomes exact when two instances write the same UserIDs at once.
//!   Every write takes exactly one such lock, first, so writers cannot deadlock. Reads (`check`, `account`, `account_count`) take no lock and see every commit
//!   that finished before they started: read-your-writes holds across instances.
//! - **Nothing is acknowledged before it is durable.** A call returns `Ok` only after `COMMIT`
//!   returned, which with PostgreSQL's default `synchronous_commit = on` means the commit
//!   record is flushed to disk.
//! - **Every call is bounded in time and the pool heals itself.** Checking a connection out of
//!   the pool (opening one included) and the whole call each have a timeout
//!   ([`PostgresOptions`]); the server also enforces `statement_timeout`. A connection whose
//!   call failed or timed out is closed rather than returned to the pool, so after the database
//!   restarts or a connection is killed the pool opens fresh ones by itself. Callers see
//!   [`StoreError::Unavailable`] (70500, retryable) meanwhile, never a hang.
//!
//! One caveat every networked database shares: if the connection breaks after `COMMIT` was
//! sent but before its answer arrived, the call fails although the commit may have happened.
//! Retrying is safe: a repeated import finds the account (`Updated`), a repeated delete finds
//! it gone (70107).

mod account_store;
mod describe;
mod feed;
mod group;
mod pool;
mod reads;
mod schema;
mod sessions;
#[cfg(feature = "test-support")]
mod testing;
mod writes;

use std::sync::Arc;
use std::time::Duration;

use crate::StoreError;

pub use crate::PostgresOptions;
#[cfg(feature = "test-support")]
pub use testing::{in_ci, TestDatabase};

/// The longest start-up may wait to migrate the schema: another instance may be migrating at
/// the same moment and hold the migration lock.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Connections opened, with every statement prepared on them, before `connect` returns: the
/// first calls after a start then find them ready instead of paying for a connection and a
/// round of planning each. A few, not the whole pool: several instances and other clients
/// share the server's `max_connections`, and the group commit and the feed need only a few.
const WARM_CONNECTIONS: usize = 4;

/// The PostgreSQL backend. Cheap to clone; clones share one connection pool, one in-memory
/// index per app ([`feed`]) and one group committer per app ([`group`]).
#[derive(Clone)]
pub struct PostgresStore {
    /// Every connection of this instance (see [`pool`]).
    pool: deadpool_postgres::Pool,
    /// The bounds each call runs under.
    options: PostgresOptions,
    /// The database without its password, for errors and the banner.
    description: String,
    /// What the clones share beyond the pool.
    shared: Arc<Shared>,
}

/// The state of one instance that its clones share.
struct Shared {
    /// Each app's in-memory index and the rounds that confirm it.
    feeds: feed::Feeds,
    /// Each app's group committer.
    groups: group::Groups,
}

impl Drop for Shared {
    /// The background tasks hold the pool, not the store: stop them with the last clone.
    fn drop(&mut self) {
        self.feeds.close();
        self.groups.close();
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.description)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connect to the database named by `url` (a `postgres://user@host:port/db` URL or a
    /// libpq `key=value` string), then create or migrate the schema. Safe when several
    /// instances start at once: migrations run under an advisory lock.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit pool size and timeouts.
    pub async fn connect_with(
        url: &str,
        options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let (pool, description) = pool::build(url, &options)?;
        let store = PostgresStore {
            pool,
            options,
            description,
            shared: Arc::new(Shared {
                feeds: feed::Feeds::new(),
                groups: group::Groups::new(),
            }),
        };
        let migrate = async {
            let mut conn = store.checkout().await?;
            schema::migrate(conn.client()?).await?;
            conn.keep();
            Ok::<(), StoreError>(())
        };
        let described = |e: StoreError| match e {
            StoreError::Unavailable(why) => {
                StoreError::Unavailable(format!("{}: {why}", store.description))
            }
            e => e,
        };
        match tokio::time::timeout(MIGRATION_TIMEOUT, migrate).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(described(e)),
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "{}: schema migration did not finish within {} s",
                    store.description,
                    MIGRATION_TIMEOUT.as_secs()
                )))
            }
        }
        store.bounded(store.warm()).await.map_err(described)?;
        Ok(store)
    }

    /// Open [`WARM_CONNECTIONS`] connections with every statement prepared, so that an
    /// instance runs at full speed from its first second.
    ///
    /// The in-memory indexes are not loaded here but on each app's first check (see
    /// [`feed`]): loading millions of UserIDs takes seconds of the database's time and of
    /// this instance's, and an instance restarted under a load of imports would spend its
    /// first seconds on an index that nothing reads yet (measured: 6 million accounts, 3 s of
    /// the database's time, during which imports through the new instance ran at half
    /// speed).
    async fn warm(&self) -> Result<(), StoreError> {
        let n = self.options.max_connections.clamp(1, WARM_CONNECTIONS);
        let statements = reads::ALL
            .iter()
            .chain(writes::ALL)
            .chain(feed::ALL)
            .copied();
        let conns = futures_util::future::try_join_all((0..n).map(|_| async {
            let mut conn = self.checkout().await?;
            let client = conn.client()?;
            for sql in statements.clone() {
                client.prepare_cached(sql).await?;
            }
            conn.keep();
            Ok::<_, StoreError>(conn)
        }))
        .await?;
        // All held at once above, so that each was a connection of its own; now back to the
        // pool.
        drop(conns);
        Ok(())
    }

    /// The database as `postgres://user@host:port/dbname`, without any password: safe to log.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether `account_check` of `app` is answered from this instance's in-memory index yet
    /// (see [`feed`]); until then it queries the database. An app's index starts loading on
    /// the app's first check.
    pub fn index_ready(&self, app: u32) -> bool {
        self.shared.feeds.ready(app)
    }

    /// The schema version this build creates and understands.
    pub fn schema_version() -> i32 {
        schema::LATEST
    }

    /// Close every connection; calls made afterwards fail with [`StoreError::Closed`].
    pub fn close(&self) {
        self.shared.feeds.close();
        self.shared.groups.close();
        self.pool.close();
    }
}
