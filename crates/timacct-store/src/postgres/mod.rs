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

mod schema;
#[cfg(feature = "test-support")]
mod testing;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use crate::{
    import_policy, Account, AccountStore, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy,
    StoreError, UserId, UserIdRef,
};

#[cfg(feature = "test-support")]
pub use testing::TestDatabase;

/// How a [`PostgresStore`] uses its database. The defaults suit one instance among a few on a
/// database with PostgreSQL's default `max_connections = 100`.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections this instance keeps open. Every instance opens up to this many, so
    /// instances × this must stay below the server's `max_connections`.
    pub max_connections: usize,
    /// The longest a call waits for a connection from the pool, opening a new one included.
    /// Bounded so that an unreachable database turns into a prompt 70500, not a hang.
    pub checkout_timeout: Duration,
    /// The longest a whole call may take, checkout included. Also sent to the server as
    /// `statement_timeout`, so a statement stuck behind a lock is cancelled there too.
    pub call_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            checkout_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(5),
        }
    }
}

/// The longest start-up may wait to migrate the schema: another instance may be migrating at
/// the same moment and hold the migration lock.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// The PostgreSQL backend. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    options: PostgresOptions,
    description: String,
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
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            // The parser's message names the problem, never the password.
            StoreError::Unavailable(format!("invalid database URL: {}", describe(&e)))
        })?;
        let description = describe_config(&config);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.checkout_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("timacct");
        }
        // Keepalives find a peer that vanished without closing the connection (a pooled idle
        // connection would otherwise look healthy until its next use hangs).
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        // Server-side bounds, so that a client that gave up (timeout) never leaves a lock held
        // for long: a statement stops after the call timeout, an abandoned transaction soon
        // after.
        //
        // Custom plans always: a generic plan chosen while the tables were small (a fresh
        // database) filters `user_id = ANY($2)` over all of an app's rows instead of looking
        // each UserID up in the index, and stays cached as the app grows (measured: 36 ms per
        // lookup at 20,000 accounts, growing linearly). Planning each statement costs far less.
        let call_ms = options.call_timeout.as_millis().max(1);
        let bounds = format!(
            "-c statement_timeout={call_ms} -c idle_in_transaction_session_timeout={} \
             -c plan_cache_mode=force_custom_plan",
            call_ms.saturating_mul(2)
        );
        let merged = match config.get_options() {
            Some(own) if !own.trim().is_empty() => format!("{own} {bounds}"),
            _ => bounds,
        };
        config.options(merged);

        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // Only `is_closed` is checked on checkout: a connection that failed is never
                // returned to the pool (see `Conn`), so no test query per call is needed.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(options.checkout_timeout))
            .create_timeout(Some(options.checkout_timeout))
            .recycle_timeout(Some(options.checkout_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot build the pool: {e}")))?;
        let store = PostgresStore {
            pool,
            options,
            description,
        };
        let migrate = async {
            let mut conn = store.checkout().await?;
            schema::migrate(conn.client()?).await?;
            conn.keep();
            Ok::<(), StoreError>(())
        };
        match tokio::time::timeout(MIGRATION_TIMEOUT, migrate).await {
            Ok(Ok(())) => Ok(store),
            Ok(Err(StoreError::Unavailable(why))) => Err(StoreError::Unavailable(format!(
                "{}: {why}",
                store.description
            ))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Unavailable(format!(
                "{}: schema migration did not finish within {} s",
                store.description,
                MIGRATION_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The database as `postgres://user@host:port/dbname`, without any password: safe to log.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The schema version this build creates and understands.
    pub fn schema_version() -> i32 {
        schema::LATEST
    }

    /// Close every connection; calls made afterwards fail with [`StoreError::Closed`].
    pub fn close(&self) {
        self.pool.close();
    }

    async fn checkout(&self) -> Result<Conn, StoreError> {
        match self.pool.get().await {
            Ok(obj) => Ok(Conn {
                obj: Some(obj),
                keep: false,
            }),
            Err(deadpool_postgres::PoolError::Closed) => Err(StoreError::Closed),
            Err(e) => Err(StoreError::Unavailable(format!(
                "no database connection: {}",
                describe(&e)
            ))),
        }
    }

    /// Run one call under the call timeout. The future owns its connection guard, so a call
    /// cut short by the timeout drops the guard unkept and its connection is closed.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.options.call_timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "database call timed out after {} ms",
                self.options.call_timeout.as_millis()
            ))),
        }
    }
}

/// A pooled connection that goes back to the pool only if the call using it succeeded
/// ([`Conn::keep`]). Any failure — an error, a broken connection, a timeout that dropped the
/// call mid-way, a panic — closes it instead, so a connection in an unknown state (a
/// transaction still open, a query still running, a dead socket) is never reused.
struct Conn {
    obj: Option<deadpool_postgres::Object>,
    keep: bool,
}

impl Conn {
    /// Mark the call a success: the connection goes back to the pool.
    fn keep(&mut self) {
        self.keep = true;
    }

    fn client(&mut self) -> Result<&mut deadpool_postgres::ClientWrapper, StoreError> {
        // `obj` is only taken by `drop`, so this never fails in practice.
        self.obj.as_deref_mut().ok_or(StoreError::Closed)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.keep {
            if let Some(obj) = self.obj.take() {
                // Detach from the pool; dropping the client closes the socket.
                drop(deadpool_postgres::Object::take(obj));
            }
        }
    }
}

/// A database error as one line: the driver's own `Display` omits the cause, which is where
/// the useful part (the server's message, the I/O error) is.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(describe(&e))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        pg_error(e)
    }
}

/// `postgres://user@host:port/dbname` from a parsed config; the password is never included.
fn describe_config(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            // libpq's rule: one port for all hosts, or one per host; 5432 when none is given.
            let port = ports.get(i).or_else(|| ports.first()).copied();
            format!("{host}:{}", port.unwrap_or(5432))
        })
        .collect();
    let db = config.get_dbname().unwrap_or("");
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

fn app_key(app: u32) -> i64 {
    i64::from(app)
}

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
const SET_COUNT: &str = "INSERT INTO app_stats (sdkappid, accounts) VALUES ($1, $2)
     ON CONFLICT (sdkappid) DO UPDATE SET accounts = excluded.accounts";
const EXISTING: &str = "SELECT user_id FROM accounts WHERE sdkappid = $1 AND user_id = ANY($2)";
const TOMBSTONES: &str =
    "SELECT user_id, deleted_at FROM tombstones WHERE sdkappid = $1 AND user_id = ANY($2)";
const INSERT_ACCOUNTS: &str = "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at)
     SELECT $1, u.user_id, u.nick, u.face_url, $5
     FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(user_id, nick, face_url)";
const UPDATE_PROFILES: &str = "UPDATE accounts AS a
     SET nick = COALESCE(u.nick, a.nick), face_url = COALESCE(u.face_url, a.face_url)
     FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u(user_id, nick, face_url)
     WHERE a.sdkappid = $1 AND a.user_id = u.user_id";
const CLEAR_TOMBSTONES: &str = "DELETE FROM tombstones WHERE sdkappid = $1 AND user_id = ANY($2)";
const DELETE_ACCOUNTS: &str =
    "DELETE FROM accounts WHERE sdkappid = $1 AND user_id = ANY($2) RETURNING user_id";
const WRITE_TOMBSTONES: &str = "INSERT INTO tombstones (sdkappid, user_id, deleted_at)
     SELECT $1, unnest($2::text[]), $3
     ON CONFLICT (sdkappid, user_id) DO UPDATE SET deleted_at = excluded.deleted_at";
const ACCOUNT: &str =
    "SELECT nick, face_url, created_at FROM accounts WHERE sdkappid = $1 AND user_id = $2";
const COUNT: &str = "SELECT accounts FROM app_stats WHERE sdkappid = $1";

type Profiles<'a> = (Vec<&'a str>, Vec<Option<&'a [u8]>>, Vec<Option<&'a [u8]>>);

type Client = deadpool_postgres::ClientWrapper;

async fn import_in(
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

async fn delete_in(
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

async fn check_in(
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

async fn account_in(
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

async fn count_in(client: &mut Client, app: u32) -> Result<u64, tokio_postgres::Error> {
    let stmt = client.prepare_cached(COUNT).await?;
    let n: Option<i64> = match client.query_opt(&stmt, &[&app_key(app)]).await? {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    Ok(n.unwrap_or(0).max(0) as u64)
}

/// Each call: check a connection out, run, and give the connection back only on success.
macro_rules! call {
    ($store:expr, |$client:ident| $body:expr) => {
        $store
            .bounded(async {
                let mut conn = $store.checkout().await?;
                let $client = conn.client()?;
                let out = $body.await?;
                conn.keep();
                Ok(out)
            })
            .await
    };
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn import(
        &self,
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        call!(self, |client| import_in(client, app, &items, policy))
    }

    /// Always the database, never memory: another instance may have written a moment ago.
    async fn check(&self, app: u32, ids: &[UserIdRef<'_>]) -> Result<Vec<bool>, StoreError> {
        call!(self, |client| check_in(client, app, ids))
    }

    async fn delete(
        &self,
        app: u32,
        ids: Vec<UserId>,
        now: i64,
    ) -> Result<Vec<DeleteOutcome>, StoreError> {
        call!(self, |client| delete_in(client, app, &ids, now))
    }

    async fn account(&self, app: u32, id: UserId) -> Result<Option<Account>, StoreError> {
        call!(self, |client| account_in(client, app, id))
    }

    async fn account_count(&self, app: u32) -> Result<u64, StoreError> {
        call!(self, |client| count_in(client, app))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn descriptions_never_carry_the_password() {
        let url: tokio_postgres::Config =
            "postgres://app:s3cret@db.internal:5433/timacct?sslmode=disable"
                .parse()
                .unwrap();
        assert_eq!(
            describe_config(&url),
            "postgres://app@db.internal:5433/timacct"
        );
        let kv: tokio_postgres::Config = "host=10.0.0.9 user=app password='s3cret' dbname=t"
            .parse()
            .unwrap();
        assert_eq!(describe_config(&kv), "postgres://app@10.0.0.9:5432/t");
    }
}
