//! Bulk jobs: any number of accounts, in batches the API accepts, with one result per
//! account in input order.
//!
//! A job is a stream of [`ItemResult`]s. Batches run a few at a time ([`BulkOptions::concurrency`])
//! under the client's pacing and retries; results come out in input order whatever order the
//! batches finish in, so "the first N results" is always a valid place to resume from. A job
//! that cannot go on (the key is wrong, the service is down past every retry, the API is not
//! available) ends with [`Stopped::Failed`]; one asked to stop ([`CancelFlag`]) sends nothing
//! more (not even the batches already waiting for their pacing slot), lets the batches already
//! sent finish and ends with [`Stopped::Cancelled`]. Either way `processed` says how many input
//! items have a result: exactly the first `processed` items are done, and resuming from there
//! loses none.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::stream::{self, Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use timacct_proto::{
    AccountCheckRequest, AccountCheckResponse, AccountDeleteRequest, AccountDeleteResponse,
    AccountListEntry, AccountStatus, Api, KickRequest, MultiAccountImportRequest, OnlineResultItem,
    QueryOnlineStatusRequest, UserIdItem, MAX_BATCH, MAX_ONLINE_BATCH,
};
use tokio::sync::Notify;

use crate::client::Client;
use crate::error::Error;

/// The results of a bulk job, in input order; an `Err` is always the last item.
pub type BulkStream<T> = Pin<Box<dyn Stream<Item = Result<ItemResult<T>, Stopped>> + Send>>;

/// Called after each batch, in input order.
pub type ProgressCallback = Arc<dyn Fn(Progress) + Send + Sync>;

/// How far a job has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Input items with a result.
    pub done: usize,
    /// Input items in the job.
    pub total: usize,
    /// Of `done`, how many failed.
    pub failed: usize,
}

/// A stop request shared between a job and whoever may want it stopped (e.g. a Ctrl-C
/// handler). Once it is raised no batch is sent any more, not even one already waiting for its
/// pacing slot; the batches already sent finish (their retries included), so that every
/// account sent gets its result.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<CancelState>);

#[derive(Debug, Default)]
struct CancelState {
    raised: AtomicBool,
    /// Wakes whoever awaits [`CancelFlag::cancelled`].
    raised_now: Notify,
}

impl CancelFlag {
    /// A flag not yet raised.
    pub fn new() -> Self {
        CancelFlag::default()
    }

    /// Ask the jobs watching this flag to stop once the batches already sent are answered.
    pub fn cancel(&self) {
        self.0.raised.store(true, Ordering::SeqCst);
        self.0.raised_now.notify_waiters();
    }

    /// Whether [`CancelFlag::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.raised.load(Ordering::SeqCst)
    }

    /// Wait until [`CancelFlag::cancel`] is called (at once if it already was).
    pub async fn cancelled(&self) {
        let raised_now = self.0.raised_now.notified();
        let mut raised_now = std::pin::pin!(raised_now);
        // Registered before the check, so a `cancel` between the two is not missed.
        raised_now.as_mut().enable();
        if self.is_cancelled() {
            return;
        }
        raised_now.await;
    }
}

/// How a bulk job runs.
#[derive(Clone)]
pub struct BulkOptions {
    /// Batches in flight at once (at least 1; default 4). Pacing still caps the rate; more
    /// batches in flight only hide the network's round trip, which matters against a
    /// faraway region.
    pub concurrency: usize,
    /// Told after each batch how far the job has got.
    pub progress: Option<ProgressCallback>,
    /// Raised to stop the job: nothing more is sent, the batches already sent finish.
    pub cancel: CancelFlag,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions {
            concurrency: 4,
            progress: None,
            cancel: CancelFlag::new(),
        }
    }
}

impl fmt::Debug for BulkOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkOptions")
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// Which body `multiaccount_import` is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportShape {
    /// `AccountList` when any account carries a Nick or FaceUrl, otherwise `Accounts`
    /// (which every deployment of the API accepts).
    #[default]
    Auto,
    /// The old `Accounts: [UserID]`; Nick and FaceUrl are not sent.
    Accounts,
    /// The new `AccountList: [{UserID, Nick, FaceUrl}]`.
    AccountList,
}

/// One input item's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemResult<T> {
    /// Position in the job's input, from 0.
    pub index: usize,
    /// The account.
    pub user_id: String,
    /// What happened to it.
    pub outcome: Result<T, ItemFailure>,
}

/// Why one account failed while the call as a whole was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFailure {
    /// The per-item `ResultCode` (or the batch's `ErrorCode`); `None` where the service gives
    /// no code (`FailAccounts` of `multiaccount_import` lists UserIDs only).
    pub code: Option<u32>,
    /// The per-item `ResultInfo`, or what is known.
    pub info: String,
    /// The `random` of the call that carried this account.
    pub random: Option<u32>,
}

/// Why a job ended before its last item.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    /// [`CancelFlag::cancel`] was called; the batches already sent finished, the others were
    /// never sent.
    #[error("stopped on request after {processed} of {total} accounts")]
    Cancelled {
        /// Input items with a result: resume from here.
        processed: usize,
        /// Input items in the job.
        total: usize,
    },
    /// A batch failed in a way every later batch would too (bad key or admin, unknown API,
    /// service unreachable or overloaded past every retry).
    #[error("stopped after {processed} of {total} accounts: {error}")]
    Failed {
        /// Input items with a result: resume from here once the cause is fixed.
        processed: usize,
        /// Input items in the job.
        total: usize,
        /// The failure.
        error: Error,
    },
}

impl Stopped {
    /// Input items with a result.
    pub fn processed(&self) -> usize {
        match self {
            Stopped::Cancelled { processed, .. } | Stopped::Failed { processed, .. } => *processed,
        }
    }
}

/// Codes that a whole batch may fail with because of what is in that batch; later batches
/// may well succeed, so the job marks the batch's items failed and goes on. Any other
/// failure stops the job.
const BATCH_LOCAL_CODES: [u32; 13] = [
    70107, // account does not exist (kick)
    70402, // invalid parameter
    70398, // account limit reached
    70399, // re-import blocked
    40601, // profile field too long
    40005, // sensitive words in a profile field
    30008, // write conflict
    60003, // body not parsed
    60015, // UserID not a string
    70206, // batch size invalid
    90001, // query_online_status: body not parsed
    90003, // query_online_status: entries not strings
    90011, // query_online_status: too many accounts
];

fn stops_the_job(error: &Error) -> bool {
    !error
        .code()
        .is_some_and(|code| BATCH_LOCAL_CODES.contains(&code))
}

type ItemOutcomes<T> = Vec<Result<T, ItemFailure>>;
/// One batch's call: `Ok(None)` when the job was cancelled before the batch was sent.
type BatchFuture<T> = Pin<Box<dyn Future<Output = Result<Option<ItemOutcomes<T>>, Error>> + Send>>;

impl Client {
    /// Import any number of accounts with `multiaccount_import`, 100 per call.
    ///
    /// An account listed in `FailAccounts` fails with no code (the API gives none).
    pub fn import_accounts(
        &self,
        accounts: Vec<AccountListEntry>,
        shape: ImportShape,
        options: BulkOptions,
    ) -> BulkStream<()> {
        let with_profile = match shape {
            ImportShape::Auto => accounts
                .iter()
                .any(|a| a.nick.is_some() || a.face_url.is_some()),
            ImportShape::Accounts => false,
            ImportShape::AccountList => true,
        };
        let client = self.clone();
        run(
            accounts,
            |a| a.user_id.clone(),
            MAX_BATCH,
            options,
            move |batch: Vec<AccountListEntry>, cancel: CancelFlag| {
                let client = client.clone();
                Box::pin(async move {
                    let ids: Vec<String> = batch.iter().map(|a| a.user_id.clone()).collect();
                    let request = if with_profile {
                        MultiAccountImportRequest {
                            accounts: None,
                            account_list: Some(batch),
                        }
                    } else {
                        MultiAccountImportRequest {
                            accounts: Some(ids.clone()),
                            account_list: None,
                        }
                    };
                    let Some((response, random)) = client
                        .call_unless_cancelled::<_, timacct_proto::MultiAccountImportResponse>(
                            timacct_proto::Api::MultiAccountImport,
                            &request,
                            &cancel,
                        )
                        .await?
                    else {
                        return Ok(None);
                    };
                    let failed: HashSet<&str> =
                        response.fail_accounts.iter().map(String::as_str).collect();
                    Ok(Some(
                        ids.iter()
                            .map(|id| {
                                if failed.contains(id.as_str()) {
                                    Err(ItemFailure {
                                        code: None,
                                        info:
                                            "listed in FailAccounts (the service gives no reason)"
                                                .to_owned(),
                                        random: Some(random),
                                    })
                                } else {
                                    Ok(())
                                }
                            })
                            .collect(),
                    ))
                })
            },
        )
    }

    /// Check any number of accounts with `account_check`, 100 per call.
    pub fn check_accounts(
        &self,
        user_ids: Vec<String>,
        options: BulkOptions,
    ) -> BulkStream<AccountStatus> {
        self.user_id_batches(
            Api::AccountCheck,
            user_ids,
            options,
            |check_item| AccountCheckRequest { check_item },
            |r: AccountCheckResponse| {
                r.result_item
                    .into_iter()
                    .map(|r| {
                        let outcome = (r.result_code, r.result_info.into_owned());
                        (r.user_id, outcome, r.account_status)
                    })
                    .collect()
            },
        )
    }

    /// Delete any number of accounts with `account_delete`, 100 per call. An account that
    /// does not exist fails with 70107.
    pub fn delete_accounts(&self, user_ids: Vec<String>, options: BulkOptions) -> BulkStream<()> {
        self.user_id_batches(
            Api::AccountDelete,
            user_ids,
            options,
            |delete_item| AccountDeleteRequest { delete_item },
            |r: AccountDeleteResponse| {
                r.result_item
                    .into_iter()
                    .map(|r| (r.user_id, (r.result_code, r.result_info.into_owned()), ()))
                    .collect()
            },
        )
    }

    /// A job over an API whose request is a list of `{"UserID": ...}` items and whose answer
    /// has one result per item: `results` turns an answer into (UserID, (ResultCode,
    /// ResultInfo), what a success carries) for each item.
    fn user_id_batches<Req, Resp, T>(
        &self,
        api: Api,
        user_ids: Vec<String>,
        options: BulkOptions,
        request: fn(Vec<UserIdItem>) -> Req,
        results: fn(Resp) -> Vec<ItemAnswer<T>>,
    ) -> BulkStream<T>
    where
        Req: Serialize + Send + Sync + 'static,
        Resp: DeserializeOwned + Send + 'static,
        T: Send + 'static,
    {
        let client = self.clone();
        run(
            user_ids,
            String::clone,
            MAX_BATCH,
            options,
            move |batch: Vec<String>, cancel: CancelFlag| {
                let client = client.clone();
                Box::pin(async move {
                    let body = request(user_id_items(&batch));
                    let Some((response, random)) = client
                        .call_unless_cancelled::<_, Resp>(api, &body, &cancel)
                        .await?
                    else {
                        return Ok(None);
                    };
                    Ok(Some(per_item(&batch, results(response), random)))
                })
            },
        )
    }

    /// Invalidate the login state of any number of accounts, one `kick` call each.
    pub fn kick_accounts(&self, user_ids: Vec<String>, options: BulkOptions) -> BulkStream<()> {
        let client = self.clone();
        run(
            user_ids,
            String::clone,
            1,
            options,
            move |batch: Vec<String>, cancel: CancelFlag| {
                let client = client.clone();
                Box::pin(async move {
                    let mut outcomes = Vec::with_capacity(batch.len());
                    for id in batch {
                        let request = KickRequest {
                            user_id: Some(id),
                            identifier: None,
                        };
                        if outcomes.is_empty() {
                            let sent = client
                                .call_unless_cancelled::<_, timacct_proto::Envelope>(
                                    Api::Kick,
                                    &request,
                                    &cancel,
                                )
                                .await?;
                            if sent.is_none() {
                                return Ok(None);
                            }
                        } else {
                            // Part of the batch is sent: the rest goes too.
                            client.kick(&request).await?;
                        }
                        outcomes.push(Ok(()));
                    }
                    Ok(Some(outcomes))
                })
            },
        )
    }

    /// The online state of any number of accounts, 500 per `query_online_status` call;
    /// `detail` asks for the per-platform states.
    pub fn online_status(
        &self,
        user_ids: Vec<String>,
        detail: bool,
        options: BulkOptions,
    ) -> BulkStream<OnlineResultItem> {
        let client = self.clone();
        run(
            user_ids,
            String::clone,
            MAX_ONLINE_BATCH,
            options,
            move |batch: Vec<String>, cancel: CancelFlag| {
                let client = client.clone();
                Box::pin(async move {
                    let request = QueryOnlineStatusRequest {
                        to_account: batch.clone(),
                        is_need_detail: detail.then_some(1),
                        ..QueryOnlineStatusRequest::default()
                    };
                    let Some((response, random)) = client
                        .call_unless_cancelled::<_, timacct_proto::QueryOnlineStatusResponse>(
                            timacct_proto::Api::QueryOnlineStatus,
                            &request,
                            &cancel,
                        )
                        .await?
                    else {
                        return Ok(None);
                    };
                    let mut found = group_by(response.query_result, |r| r.to_account.clone());
                    let mut errors = group_by(response.error_list, |r| r.to_account.clone());
                    Ok(Some(
                        batch
                            .iter()
                            .map(|id| {
                                if let Some(r) = take(&mut found, id) {
                                    Ok(r)
                                } else if let Some(e) = take(&mut errors, id) {
                                    Err(ItemFailure {
                                        code: Some(e.error_code),
                                        info: timacct_proto::ErrorCode::from_code(e.error_code)
                                            .map(|c| c.default_info().to_owned())
                                            .unwrap_or_default(),
                                        random: Some(random),
                                    })
                                } else {
                                    Err(missing(random))
                                }
                            })
                            .collect(),
                    ))
                })
            },
        )
    }
}

fn user_id_items(ids: &[String]) -> Vec<UserIdItem> {
    ids.iter()
        .map(|id| UserIdItem {
            user_id: id.clone(),
        })
        .collect()
}

/// Results keyed by UserID, each key's results in answer order: the docs do not promise
/// that results come back in request order, and a batch may name an account twice.
fn group_by<R>(results: Vec<R>, key: impl Fn(&R) -> String) -> HashMap<String, VecDeque<R>> {
    let mut map: HashMap<String, VecDeque<R>> = HashMap::new();
    for r in results {
        map.entry(key(&r)).or_default().push_back(r);
    }
    map
}

fn take<R>(map: &mut HashMap<String, VecDeque<R>>, id: &str) -> Option<R> {
    map.get_mut(id).and_then(VecDeque::pop_front)
}

/// One item of an answer: its UserID, `(ResultCode, ResultInfo)`, and what a success carries.
type ItemAnswer<T> = (String, (u32, String), T);

/// Each ID of `batch`, in order, with its per-item result from the answer: `results` holds
/// each result's UserID, its `(ResultCode, ResultInfo)` and the value a success carries.
fn per_item<T>(
    batch: &[String],
    results: Vec<ItemAnswer<T>>,
    random: u32,
) -> Vec<Result<T, ItemFailure>> {
    let mut by_id = group_by(results, |r| r.0.clone());
    batch
        .iter()
        .map(|id| match take(&mut by_id, id) {
            Some((_, (0, _), value)) => Ok(value),
            Some((_, (code, info), _)) => Err(ItemFailure {
                code: Some(code),
                info,
                random: Some(random),
            }),
            None => Err(missing(random)),
        })
        .collect()
}

fn missing(random: u32) -> ItemFailure {
    ItemFailure {
        code: None,
        info: "the answer has no result for this account".to_owned(),
        random: Some(random),
    }
}

/// One batch, as it goes through the job.
struct Batch<I> {
    offset: usize,
    ids: Vec<String>,
    items: Vec<I>,
}

/// A finished batch: its offset in the input, its UserIDs, and what became of them (`Ok(None)`:
/// cancelled before it was sent).
type BatchDone<T> = (usize, Vec<String>, Result<Option<ItemOutcomes<T>>, Error>);

/// What the stream of results remembers between items.
struct Driver<T> {
    batches: Pin<Box<dyn Stream<Item = BatchDone<T>> + Send>>,
    ready: VecDeque<ItemResult<T>>,
    done: usize,
    failed: usize,
    total: usize,
    finished: bool,
    /// A batch was cancelled before it was sent: the batches after it are still awaited
    /// (those already sent get their answer) but their results are not reported, so that
    /// `done` stays the count of the leading items with a result.
    cut: bool,
    halt: CancelFlag,
    progress: Option<ProgressCallback>,
}

/// The engine under every bulk job: chunk, run batches `concurrency` at a time, and turn
/// their outcomes into one ordered stream of item results.
fn run<I, T, F>(
    items: Vec<I>,
    id_of: impl Fn(&I) -> String,
    batch_size: usize,
    options: BulkOptions,
    call: F,
) -> BulkStream<T>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(Vec<I>, CancelFlag) -> BatchFuture<T> + Send + Sync + 'static,
{
    let total = items.len();
    let mut batches = Vec::with_capacity(total.div_ceil(batch_size.max(1)));
    let mut rest = items.into_iter().peekable();
    let mut offset = 0;
    while rest.peek().is_some() {
        let items: Vec<I> = rest.by_ref().take(batch_size.max(1)).collect();
        let ids = items.iter().map(&id_of).collect();
        let len = items.len();
        batches.push(Batch { offset, ids, items });
        offset += len;
    }
    // Raised by the caller (cancel) or by the job itself (a batch that stops it); checked
    // each time a batch is about to start, so nothing new starts once it is up. A batch
    // already started but still waiting for its pacing slot also watches the caller's flag,
    // and is then never sent.
    let halt = CancelFlag::new();
    let cancel = options.cancel.clone();
    let gate = halt.clone();
    let watched = options.cancel;
    let call = Arc::new(call);
    let results = stream::iter(
        batches
            .into_iter()
            .take_while(move |_| !cancel.is_cancelled() && !gate.is_cancelled()),
    )
    .map(move |batch| {
        let call = Arc::clone(&call);
        let cancel = watched.clone();
        async move {
            let outcome = call(batch.items, cancel).await;
            (batch.offset, batch.ids, outcome)
        }
    })
    .buffered(options.concurrency.max(1));
    let driver = Driver {
        batches: Box::pin(results),
        ready: VecDeque::new(),
        done: 0,
        failed: 0,
        total,
        finished: false,
        cut: false,
        halt,
        progress: options.progress,
    };
    Box::pin(stream::unfold(driver, |mut d| async move {
        loop {
            if let Some(item) = d.ready.pop_front() {
                return Some((Ok(item), d));
            }
            if d.finished {
                return None;
            }
            match d.batches.next().await {
                // Answered, but after a batch that was never sent: not reportable in order.
                Some(_) if d.cut => {}
                Some((_, _, Ok(None))) => d.cut = true,
                Some((offset, ids, Ok(Some(outcomes)))) => {
                    let mut outcomes = outcomes.into_iter();
                    for (i, user_id) in ids.into_iter().enumerate() {
                        let outcome = outcomes.next().unwrap_or(Err(ItemFailure {
                            code: None,
                            info: "the answer has no result for this account".to_owned(),
                            random: None,
                        }));
                        d.push(offset + i, user_id, outcome);
                    }
                    d.report();
                }
                Some((offset, ids, Err(error))) if !stops_the_job(&error) => {
                    let failure = ItemFailure {
                        code: error.code(),
                        info: error
                            .info()
                            .map_or_else(|| error.to_string(), str::to_owned),
                        random: error.random(),
                    };
                    for (i, user_id) in ids.into_iter().enumerate() {
                        d.push(offset + i, user_id, Err(failure.clone()));
                    }
                    d.report();
                }
                Some((_, _, Err(error))) => {
                    d.halt.cancel();
                    d.finished = true;
                    let stopped = Stopped::Failed {
                        processed: d.done,
                        total: d.total,
                        error,
                    };
                    return Some((Err(stopped), d));
                }
                None => {
                    d.finished = true;
                    if d.done < d.total {
                        let stopped = Stopped::Cancelled {
                            processed: d.done,
                            total: d.total,
                        };
                        return Some((Err(stopped), d));
                    }
                }
            }
        }
    }))
}

impl<T> Driver<T> {
    fn push(&mut self, index: usize, user_id: String, outcome: Result<T, ItemFailure>) {
        self.done += 1;
        if outcome.is_err() {
            self.failed += 1;
        }
        self.ready.push_back(ItemResult {
            index,
            user_id,
            outcome,
        });
    }

    fn report(&self) {
        if let Some(progress) = &self.progress {
            progress(Progress {
                done: self.done,
                total: self.total,
                failed: self.failed,
            });
        }
    }
}
