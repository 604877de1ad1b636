//! What a running server holds: its apps, its store, and the caches in front of them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use timacct_store::{AccountStore, ImportPolicy};

use crate::config::{AppConfig, Plan};
use crate::limits::Limits;
use crate::metrics::{Metrics, TimedStore};
use crate::overload::Gate;
use crate::ratelimit::{Limiter, RedisRateLimiter};

/// How long a `pro` app keeps a deleted UserID from being imported again: 90 days.
pub const REIMPORT_BLOCK_SECS: i64 = 90 * 86_400;

/// The largest request body accepted by default. A full legitimate batch (100 accounts with
/// 500-byte Nick and FaceUrl) is about 110 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// One hosted app, ready to serve.
pub struct App {
    /// Its configuration.
    pub config: AppConfig,
    admins: HashSet<String>,
    limiter: Limiter,
}

impl App {
    fn new(config: AppConfig) -> Self {
        App {
            admins: config.admins.iter().cloned().collect(),
            limiter: Limiter::local(&config.rate_limits),
            config,
        }
    }

    /// Whether `identifier` may call the REST API.
    pub fn is_admin(&self, identifier: &str) -> bool {
        self.admins.contains(identifier)
    }

    /// Its rate limiter.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Whether `account_delete` is allowed (71000 otherwise).
    pub fn allows_deletion(&self) -> bool {
        self.config.plan == Plan::Trial || self.config.account_deletion
    }

    /// The rules the store applies when creating accounts.
    pub fn import_policy(&self, now: i64) -> ImportPolicy {
        ImportPolicy {
            max_accounts: self.config.max_accounts,
            reimport_block_secs: (self.config.plan == Plan::Pro).then_some(REIMPORT_BLOCK_SECS),
            now,
        }
    }
}

/// A UserSig that verified, remembered so that the next call with the same string skips the
/// inflate and HMAC work. Only what the later checks need is kept.
#[derive(Clone)]
pub(crate) struct VerifiedSig {
    pub sdkappid: u32,
    pub identifier: String,
    pub expires_at: i128,
}

/// Entries beyond this clear the cache: only valid signatures get in, so it stays small in
/// practice, and the bound keeps memory fixed whatever callers send.
const SIG_CACHE_MAX: usize = 65_536;

#[derive(Default)]
pub(crate) struct SigCache {
    // hashbrown's default hasher (foldhash, randomly seeded per process): a UserSig is a few
    // hundred bytes hashed on every call, which SipHash made a visible cost.
    map: RwLock<hashbrown::HashMap<String, VerifiedSig>>,
}

impl SigCache {
    /// When this UserSig expires, if it verified before for this app and identifier.
    pub fn expiry(&self, usersig: &str, sdkappid: u32, identifier: &str) -> Option<i128> {
        self.map
            .read()
            .get(usersig)
            .filter(|v| v.sdkappid == sdkappid && v.identifier == identifier)
            .map(|v| v.expires_at)
    }

    pub fn insert(&self, usersig: &str, sig: VerifiedSig) {
        let mut map = self.map.write();
        if map.len() >= SIG_CACHE_MAX {
            map.clear();
        }
        map.insert(usersig.to_owned(), sig);
    }
}

/// The shared state of a server: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub apps: HashMap<u32, App>,
    pub store: Arc<dyn AccountStore>,
    pub sigs: SigCache,
    pub body_limit: usize,
    pub limits: Limits,
    pub gate: Gate,
    pub metrics: Arc<Metrics>,
    /// Request arrivals, for the busy-polling spinner (see `spin`); present exactly when
    /// `limits.busy_poll` is on, so that a server without it pays nothing per request.
    pub activity: Option<Arc<crate::spin::Activity>>,
}

impl AppState {
    /// A server for these apps over this store.
    pub fn new(apps: Vec<AppConfig>, store: Arc<dyn AccountStore>) -> Self {
        let limits = Limits::default();
        let metrics = Arc::new(Metrics::new());
        // Every store call is timed for /metrics.
        let store: Arc<dyn AccountStore> = Arc::new(TimedStore {
            inner: store,
            metrics: metrics.clone(),
        });
        AppState {
            inner: Arc::new(Inner {
                apps: apps
                    .into_iter()
                    .map(|a| (a.sdkappid, App::new(a)))
                    .collect(),
                store,
                sigs: SigCache::default(),
                body_limit: DEFAULT_BODY_LIMIT,
                gate: gate(&limits),
                activity: activity(&limits),
                limits,
                metrics,
            }),
        }
    }

    /// Change the server-wide [`Limits`] (before serving).
    pub fn with_limits(self, limits: Limits) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.gate = gate(&limits);
                inner.activity = activity(&limits);
                inner.limits = limits;
                AppState {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => AppState { inner },
        }
    }

    /// Change the request body limit (before serving).
    pub fn with_body_limit(self, limit: usize) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.body_limit = limit;
                AppState {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => AppState { inner },
        }
    }

    /// Keep every app's rate-limit buckets in Redis (before serving), so that the limits hold
    /// for all instances together rather than for each one: instances that share a database
    /// should share a Redis too.
    pub fn with_redis(self, redis: RedisRateLimiter) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                for app in inner.apps.values_mut() {
                    app.limiter = Limiter::shared(
                        redis.clone(),
                        app.config.sdkappid,
                        &app.config.rate_limits,
                    );
                }
                AppState {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => AppState { inner },
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn AccountStore> {
        &self.inner.store
    }
}

fn activity(limits: &Limits) -> Option<Arc<crate::spin::Activity>> {
    (!limits.busy_poll.is_zero()).then(crate::spin::Activity::new)
}

fn gate(limits: &Limits) -> Gate {
    Gate::new(
        limits.max_concurrent_requests,
        limits.max_queued_requests,
        limits.queue_timeout,
    )
}
