//! The connection pool and its bounds ([`PostgresOptions`]): building it from a URL (connect timeout, keepalives,
//! server-side statement and idle-transaction timeouts), checking a connection out under a
//! timeout, bounding each call, and never returning a connection whose call failed.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::describe::{describe, describe_config};
use super::PostgresStore;
use crate::{PostgresOptions, StoreError};

/// The pool for the database named by `url`, and that database's password-free description.
/// Opens no connection yet.
pub(super) fn build(url: &str, options: &PostgresOptions) -> Result<(Pool, String), StoreError> {
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
    //
    // No sequential scans where an index will do: every statement timacct runs reads rows by
    // key or by a range of the change feed's sequence, but for a large `ANY($2)` array (an
    // import group's thousands of UserIDs) the planner estimates a sequential scan cheaper,
    // and at 200,000 accounts it took 50 ms where the primary key answers in 2 ms (3,200
    // UserIDs, measured with `EXPLAIN ANALYZE`). This only raises the cost of the scan the
    // planner may still choose when nothing else can answer.
    let call_ms = options.call_timeout.as_millis().max(1);
    let bounds = format!(
        "-c statement_timeout={call_ms} -c idle_in_transaction_session_timeout={} \
         -c plan_cache_mode=force_custom_plan -c enable_seqscan=off",
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
    Ok((pool, description))
}

impl PostgresStore {
    /// A connection from the pool (opened if none is idle), within the checkout timeout.
    pub(super) async fn checkout(&self) -> Result<Conn, StoreError> {
        checkout_from(&self.pool).await
    }

    /// Run one call under the call timeout. The future owns its connection guard, so a call
    /// cut short by the timeout drops the guard unkept and its connection is closed.
    pub(super) async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        bounded_by(&self.options, call).await
    }
}

/// [`PostgresStore::checkout`], for the store's background tasks, which hold the pool but
/// not the store.
pub(super) async fn checkout_from(pool: &Pool) -> Result<Conn, StoreError> {
    match pool.get().await {
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

/// [`PostgresStore::bounded`], for the store's background tasks.
pub(super) async fn bounded_by<T>(
    options: &PostgresOptions,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(options.call_timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(format!(
            "database call timed out after {} ms",
            options.call_timeout.as_millis()
        ))),
    }
}

/// A pooled connection that goes back to the pool only if the call using it succeeded
/// ([`Conn::keep`]). Any failure — an error, a broken connection, a timeout that dropped the
/// call mid-way, a panic — closes it instead, so a connection in an unknown state (a
/// transaction still open, a query still running, a dead socket) is never reused.
pub(super) struct Conn {
    /// The connection; `None` only once `drop` has taken it.
    obj: Option<deadpool_postgres::Object>,
    /// Whether the call succeeded, so the connection may be reused.
    keep: bool,
}

impl Conn {
    /// Mark the call a success: the connection goes back to the pool.
    pub(super) fn keep(&mut self) {
        self.keep = true;
    }

    /// The connection, for the call using it.
    pub(super) fn client(&mut self) -> Result<&mut deadpool_postgres::ClientWrapper, StoreError> {
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
