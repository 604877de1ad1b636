//! Group commit of `import` calls: every instance folds the calls to one app that are waiting
//! into one transaction, as the SQLite writer does.
//!
//! Why: each write transaction of an app holds the app's advisory lock from its first
//! statement to its commit, which includes the commit's flush to disk. One transaction per
//! call therefore caps an app's imports at one call per flush, across every instance. A
//! group pays the lock, the round trips and the flush once for all of its calls.
//!
//! How: each app has one committer task per instance, fed by a bounded queue. It takes the
//! first waiting call and then every other one already queued (up to [`MAX_CALLS`] calls or
//! [`MAX_ITEMS`] items), runs them as one transaction ([`super::writes::import_group_in`]),
//! and answers each call only after `COMMIT` returned: nothing is acknowledged before it is
//! durable. Calls arriving while a group runs wait in the queue and form the next group, so
//! a lone call is never held back to wait for company.
//!
//! What it keeps: each call is planned in queue order against the state the calls before it
//! left (per-item outcomes, `max_accounts` and tombstones exactly as if each had committed
//! alone), and the group runs under the app's advisory lock like any write, so writes
//! through other instances are still serialized with it. If the transaction fails, none of
//! its calls was applied: when the database refused the data of some call (a data or
//! constraint error), each call is then applied alone, so that only the faulty one fails;
//! otherwise (unreachable, timed out) every call of the group gets the same retryable error.

use std::collections::HashMap;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::pool::{bounded_by, checkout_from};
use super::writes::{import_group_in, ImportCall};
use crate::{ImportItem, ImportOutcome, ImportPolicy, PostgresOptions, StoreError};

/// The most calls in one group: bounds what one failure can fail, and the transaction's
/// size.
pub(super) const MAX_CALLS: usize = 256;
/// The most items in one group (a group stops growing once it has this many).
pub(super) const MAX_ITEMS: usize = 20_000;
/// Calls one app's queue holds in this instance; a call that finds it full waits for room,
/// within its call timeout.
const QUEUE: usize = 4_096;

/// What a caller waits on.
type Reply = oneshot::Sender<Result<Vec<ImportOutcome>, StoreError>>;

/// The committers of this instance, one per app, started on the app's first import.
pub(super) struct Groups {
    queues: Mutex<HashMap<u32, mpsc::Sender<(ImportCall, Reply)>>>,
}

impl Groups {
    pub(super) fn new() -> Self {
        Groups {
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Stop every committer once it has answered what it holds (their queues close).
    pub(super) fn close(&self) {
        self.queues.lock().clear();
    }

    /// Queue an import for its app's next group and wait for the group's commit.
    pub(super) async fn import(
        &self,
        pool: &deadpool_postgres::Pool,
        options: &PostgresOptions,
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let queue = {
            let mut queues = self.queues.lock();
            queues
                .entry(app)
                .or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    tokio::spawn(committer(pool.clone(), options.clone(), app, rx));
                    tx
                })
                .clone()
        };
        let (reply, answer) = oneshot::channel();
        bounded_by(options, async {
            queue
                .send((ImportCall { items, policy }, reply))
                .await
                .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
        .await
    }
}

/// One app's committer: group, commit, answer, until the queue closes.
async fn committer(
    pool: deadpool_postgres::Pool,
    options: PostgresOptions,
    app: u32,
    mut rx: mpsc::Receiver<(ImportCall, Reply)>,
) {
    let mut group: Vec<(ImportCall, Reply)> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut items = first.0.items.len();
        group.push(first);
        while group.len() < MAX_CALLS && items < MAX_ITEMS {
            match rx.try_recv() {
                Ok(call) => {
                    items += call.0.items.len();
                    group.push(call);
                }
                Err(_) => break,
            }
        }
        let calls: Vec<&ImportCall> = group.iter().map(|(c, _)| c).collect();
        match commit(&pool, &options, app, &calls).await {
            Ok(Ok(outcomes)) if outcomes.len() == group.len() => {
                for ((_, reply), out) in group.drain(..).zip(outcomes) {
                    // The caller may have given up waiting; the write stands either way.
                    let _ = reply.send(Ok(out));
                }
            }
            Ok(Ok(_)) => {
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(StoreError::Unavailable(
                        "a group commit answered the wrong number of calls".into(),
                    )));
                }
            }
            // The database refused something in the data of one of the calls: apply each
            // call alone, so that the others do not fail with it.
            Ok(Err(e)) if group.len() > 1 => {
                tracing::warn!(app, error = %e, calls = group.len(), "a group commit was refused; applying its calls one by one");
                for (call, reply) in group.drain(..) {
                    let result = match commit(&pool, &options, app, &[&call]).await {
                        Ok(Ok(mut out)) if out.len() == 1 => Ok(out.remove(0)),
                        Ok(Ok(_)) => Err(StoreError::Unavailable(
                            "a commit answered the wrong number of calls".into(),
                        )),
                        Ok(Err(e)) | Err(e) => Err(e),
                    };
                    let _ = reply.send(result);
                }
            }
            Ok(Err(e)) | Err(e) => {
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(match &e {
                        StoreError::Closed => StoreError::Closed,
                        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
                    }));
                }
            }
        }
    }
}

/// One transaction for `calls`. `Ok(Err(_))` when the database refused something in the
/// calls' data (a data or constraint error), which retrying the calls one by one can isolate;
/// `Err(_)` for everything else (unreachable, timed out, closed), which it cannot.
async fn commit(
    pool: &deadpool_postgres::Pool,
    options: &PostgresOptions,
    app: u32,
    calls: &[&ImportCall],
) -> Result<Result<Vec<Vec<ImportOutcome>>, StoreError>, StoreError> {
    bounded_by(options, async {
        let mut conn = checkout_from(pool).await?;
        match import_group_in(conn.client()?, app, calls).await {
            Ok(out) => {
                conn.keep();
                Ok(Ok(out))
            }
            Err(e) if refused_data(&e) => Ok(Err(StoreError::from(e))),
            Err(e) => Err(StoreError::from(e)),
        }
    })
    .await
}

/// Whether PostgreSQL refused a statement for its data (SQLSTATE classes 22, data
/// exception, and 23, integrity constraint violation), not for the state of the server or
/// of the connection.
fn refused_data(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| matches!(db.code().code().get(..2), Some("22" | "23")))
}
