//! The client: one typed call per API, over pacing, UserSig renewal, failover and retries.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use timacct_proto::{
    AccountCheckRequest, AccountCheckResponse, AccountDeleteRequest, AccountDeleteResponse,
    AccountImportRequest, Api, ApiQuery, Envelope, ErrorCode, KickRequest,
    MultiAccountImportRequest, MultiAccountImportResponse, QueryOnlineStatusRequest,
    QueryOnlineStatusResponse,
};

use crate::bulk::CancelFlag;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::pacing::{Pacer, Pacing};
use crate::retry::RetryPolicy;
use crate::usersig::{Clock, SigLifetime, SigSource, SystemClock};

/// Settings for a [`Client`]; every one but the endpoint, the app and the key has a default.
pub struct ClientBuilder {
    endpoint: Endpoint,
    sdkappid: u32,
    /// The app's secret key; kept out of `Debug`.
    key: String,
    admin: String,
    lifetime: SigLifetime,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    pacing: Pacing,
    timeout: Duration,
    connect_timeout: Duration,
    failback_after: Duration,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("endpoint", &self.endpoint)
            .field("sdkappid", &self.sdkappid)
            .field("key", &"<redacted>")
            .field("admin", &self.admin)
            .field("lifetime", &self.lifetime)
            .field("retry", &self.retry)
            .field("pacing", &self.pacing)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The admin identifier the calls are made as (default `administrator`, the admin every
    /// app has).
    pub fn admin(mut self, identifier: impl Into<String>) -> Self {
        self.admin = identifier.into();
        self
    }

    /// How long UserSigs live and when they are renewed (default: a day, renewed after two
    /// thirds).
    pub fn sig_lifetime(mut self, lifetime: SigLifetime) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The clock UserSigs are issued by (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// When and how often to retry (default: [`RetryPolicy::default`]).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How fast the client calls each API (default: Tencent's documented limits).
    pub fn pacing(mut self, pacing: Pacing) -> Self {
        self.pacing = pacing;
        self
    }

    /// The time one attempt may take, connection included (default 30 s). Tencent's backend
    /// times out at 3 s and asks callers for a longer timeout than that.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The time to establish a connection before failing over (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// After failing over to the backup host, how long to stay there before trying the main
    /// host again (default 5 minutes).
    pub fn failback_after(mut self, after: Duration) -> Self {
        self.failback_after = after;
        self
    }

    /// The client.
    pub fn build(self) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("timacct-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Setup)?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                sdkappid: self.sdkappid,
                sigs: SigSource::new(
                    self.sdkappid,
                    &self.key,
                    self.admin,
                    self.lifetime,
                    self.clock,
                ),
                pacer: Pacer::new(&self.pacing),
                pacing: self.pacing,
                retry: self.retry,
                host: Mutex::new(HostChoice {
                    index: 0,
                    since: Instant::now(),
                }),
                failback_after: self.failback_after,
                counters: Counters::default(),
                endpoint: self.endpoint,
            }),
        })
    }
}

/// A client for one app, calling as one admin. Cheap to clone: clones share the pacing,
/// the UserSig cache, the connection pool and the counters.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    sdkappid: u32,
    sigs: SigSource,
    pacer: Pacer,
    pacing: Pacing,
    retry: RetryPolicy,
    /// Which base URL to try first: the backup stays preferred for a while after a failover,
    /// so that every call does not pay a connection timeout on a dead main host.
    host: Mutex<HostChoice>,
    failback_after: Duration,
    counters: Counters,
}

#[derive(Debug)]
struct HostChoice {
    index: usize,
    since: Instant,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    failovers: AtomicU64,
}

/// What a client has done so far: for progress lines, logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent (each attempt, each host tried).
    pub requests: u64,
    /// Attempts that were retries of a failed one.
    pub retries: u64,
    /// Answers that were a rate-limit refusal (60007 and kin).
    pub rate_limited: u64,
    /// Times a host could not be reached and the next one was tried.
    pub failovers: u64,
    /// UserSigs made (the first, then each renewal).
    pub usersigs_issued: u64,
}

impl Client {
    /// Settings for a client of app `sdkappid` at `endpoint`, signing with `key`.
    pub fn builder(endpoint: Endpoint, sdkappid: u32, key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            endpoint,
            sdkappid,
            key: key.into(),
            admin: "administrator".to_owned(),
            lifetime: SigLifetime::default(),
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            pacing: Pacing::default(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            failback_after: Duration::from_secs(300),
        }
    }

    /// The app this client calls.
    pub fn sdkappid(&self) -> u32 {
        self.inner.sdkappid
    }

    /// Where this client calls.
    pub fn endpoint(&self) -> &Endpoint {
        &self.inner.endpoint
    }

    /// The pacing this client keeps.
    pub fn pacing(&self) -> &Pacing {
        &self.inner.pacing
    }

    /// Counters of what this client (and its clones) has done.
    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            rate_limited: c.rate_limited.load(Ordering::Relaxed),
            failovers: c.failovers.load(Ordering::Relaxed),
            usersigs_issued: self.inner.sigs.issued(),
        }
    }

    /// `account_import`: import (or update) one account.
    pub async fn account_import(&self, request: &AccountImportRequest) -> Result<Envelope, Error> {
        self.call(Api::AccountImport, request).await
    }

    /// `multiaccount_import`: import up to 100 accounts, in the old shape (`Accounts`) or
    /// the new one (`AccountList`, with Nick and FaceUrl) — whichever the request fills in.
    pub async fn multiaccount_import(
        &self,
        request: &MultiAccountImportRequest,
    ) -> Result<MultiAccountImportResponse, Error> {
        self.call(Api::MultiAccountImport, request).await
    }

    /// `account_check`: whether up to 100 accounts are imported.
    pub async fn account_check(
        &self,
        request: &AccountCheckRequest,
    ) -> Result<AccountCheckResponse, Error> {
        self.call(Api::AccountCheck, request).await
    }

    /// `account_delete`: delete up to 100 accounts.
    ///
    /// A retry after a lost answer may find accounts the lost attempt already deleted; those
    /// then come back as 70107.
    pub async fn account_delete(
        &self,
        request: &AccountDeleteRequest,
    ) -> Result<AccountDeleteResponse, Error> {
        self.call(Api::AccountDelete, request).await
    }

    /// `kick`: invalidate one account's login state.
    pub async fn kick(&self, request: &KickRequest) -> Result<Envelope, Error> {
        self.call(Api::Kick, request).await
    }

    /// `query_online_status`: the online state of up to 500 accounts.
    pub async fn query_online_status(
        &self,
        request: &QueryOnlineStatusRequest,
    ) -> Result<QueryOnlineStatusResponse, Error> {
        self.call(Api::QueryOnlineStatus, request).await
    }

    /// One call: paced, retried while retrying can help, failed over between hosts.
    async fn call<Req, Resp>(&self, api: Api, request: &Req) -> Result<Resp, Error>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        self.call_traced(api, request)
            .await
            .map(|(response, _)| response)
    }

    /// [`Client::call`], also giving the `random` of the attempt that succeeded, so that
    /// per-item failures inside a successful answer can be traced too.
    pub(crate) async fn call_traced<Req, Resp>(
        &self,
        api: Api,
        request: &Req,
    ) -> Result<(Resp, u32), Error>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = encode(api, request)?;
        self.attempts(api, body, false).await
    }

    /// [`Client::call_traced`] unless `cancel` is raised before the call's pacing slot comes:
    /// then nothing is sent and the answer is `Ok(None)`. Once the first attempt is sent the
    /// call runs to its end, retries included, so that what was sent gets an answer.
    ///
    /// A slot given up this way stays spent: pacing errs on the slow side.
    pub(crate) async fn call_unless_cancelled<Req, Resp>(
        &self,
        api: Api,
        request: &Req,
        cancel: &CancelFlag,
    ) -> Result<Option<(Resp, u32)>, Error>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = encode(api, request)?;
        tokio::select! {
            // A stop and the slot at once: the stop wins.
            biased;
            () = cancel.cancelled() => return Ok(None),
            () = self.inner.pacer.acquire(api) => {}
        }
        self.attempts(api, body, true).await.map(Some)
    }

    /// Every attempt of one call, each paced (the first one not when `first_paced`: its
    /// caller already waited for its slot).
    async fn attempts<Resp>(
        &self,
        api: Api,
        body: Bytes,
        first_paced: bool,
    ) -> Result<(Resp, u32), Error>
    where
        Resp: DeserializeOwned,
    {
        let inner = &self.inner;
        let max_attempts = inner.retry.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if attempt > 1 || !first_paced {
                inner.pacer.acquire(api).await;
            }
            // A fresh `random` per attempt: each HTTP request can be traced on its own.
            let random: u32 = rand::random();
            let error = match self.attempt(api, body.clone(), random).await {
                Ok(response) => return Ok((response, random)),
                Err(e) => e.with_attempts(attempt),
            };
            if error.code() == Some(ErrorCode::UserSigExpired.code()) {
                // Not retried (70001 is not retryable), but the next call gets a new sig.
                inner.sigs.invalidate();
            }
            if error.is_rate_limited() {
                inner.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            }
            if !error.is_retryable() || attempt >= max_attempts {
                return Err(error);
            }
            let delay = inner
                .retry
                .backoff_for(attempt, error.code(), &mut rand::thread_rng());
            if error.is_rate_limited() {
                inner.pacer.hold_off(api, delay);
            }
            inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(api = api.command(), attempt, random, ?delay, %error, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt: the preferred host first, then (on a connection error only) the others.
    async fn attempt<Resp: DeserializeOwned>(
        &self,
        api: Api,
        body: Bytes,
        random: u32,
    ) -> Result<Resp, Error> {
        let inner = &self.inner;
        let sig = inner.sigs.current();
        let query = ApiQuery::encode(inner.sdkappid, inner.sigs.identifier(), &sig, random);
        let hosts = inner.endpoint.bases().len();
        let first = self.preferred_host();
        let mut last = None;
        for step in 0..hosts {
            let index = (first + step) % hosts;
            inner.counters.requests.fetch_add(1, Ordering::Relaxed);
            let sent = inner
                .http
                .post(inner.endpoint.api_url(index, api, &query))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(response) => {
                    if index != first {
                        self.prefer_host(index);
                    }
                    return self.read_answer(api, index, random, response).await;
                }
                Err(e) => {
                    let connect = e.is_connect();
                    let error = Error::Transport {
                        api,
                        host: inner.endpoint.host_of(index),
                        random,
                        attempts: 1,
                        // The URL carries the UserSig: never let it into a message.
                        source: e.without_url(),
                    };
                    if !connect || step + 1 == hosts {
                        return Err(error);
                    }
                    inner.counters.failovers.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, next = %inner.endpoint.host_of((index + 1) % hosts), "failing over");
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Endpoint {
            given: String::new(),
            reason: "the endpoint has no host".to_owned(),
        }))
    }

    /// Turn an HTTP answer into the response, or the error it reports.
    async fn read_answer<Resp: DeserializeOwned>(
        &self,
        api: Api,
        index: usize,
        random: u32,
        response: reqwest::Response,
    ) -> Result<Resp, Error> {
        let host = || self.inner.endpoint.host_of(index);
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| Error::Transport {
            api,
            host: host(),
            random,
            attempts: 1,
            source: e.without_url(),
        })?;
        let envelope = serde_json::from_slice::<Envelope>(&bytes);
        if status != 200 {
            // timacct answers a wrong method with 405 and an envelope: report its code.
            return Err(match envelope {
                Ok(env) if env.error_code != 0 => api_error(api, env, random),
                _ => Error::Http {
                    api,
                    host: host(),
                    status,
                    random,
                    attempts: 1,
                },
            });
        }
        let decode = |source| Error::Decode {
            api,
            random,
            attempts: 1,
            source,
        };
        let envelope = envelope.map_err(decode)?;
        if envelope.error_code != 0 {
            return Err(api_error(api, envelope, random));
        }
        serde_json::from_slice(&bytes).map_err(decode)
    }

    fn preferred_host(&self) -> usize {
        let mut choice = self.inner.host.lock();
        if choice.index != 0 && choice.since.elapsed() >= self.inner.failback_after {
            choice.index = 0;
        }
        choice.index
    }

    fn prefer_host(&self, index: usize) {
        *self.inner.host.lock() = HostChoice {
            index,
            since: Instant::now(),
        };
    }
}

/// The JSON body of a call.
fn encode<Req: Serialize + ?Sized>(api: Api, request: &Req) -> Result<Bytes, Error> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(|source| Error::Encode { api, source })
}

fn api_error(api: Api, envelope: Envelope, random: u32) -> Error {
    Error::Api {
        api,
        code: envelope.error_code,
        error_code: ErrorCode::from_code(envelope.error_code),
        info: envelope.error_info.into_owned(),
        random,
        attempts: 1,
    }
}
