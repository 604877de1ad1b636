//! The hosted apps: each one's configuration with what serving it needs (its admins, its
//! rate limiter, its import rules), and the registry that finds one by SDKAppID.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use timacct_proto::unix_now;
use timacct_store::ImportPolicy;

use crate::api::rate_limit::{Limiter, RedisRateLimiter};
use crate::config::{AppConfig, Plan};

/// How long a `pro` app keeps a deleted UserID from being imported again: 90 days.
pub const REIMPORT_BLOCK_SECS: i64 = 90 * 86_400;

/// One hosted app, ready to serve.
pub(crate) struct App {
    /// Its configuration.
    pub config: AppConfig,
    admins: HashSet<String>,
    limiter: Limiter,
    /// How far the app's clock runs ahead of the wall clock, in seconds (the emulator's
    /// time travel; 0 unless moved forward). Nothing moves it yet: the clock control of the
    /// emulator will, and everything that reads the app's time already goes through
    /// [`App::now`].
    clock_offset: AtomicI64,
}

impl App {
    /// An app whose rate limits hold in this process, or in `redis` for every instance.
    pub(crate) fn new(config: AppConfig, redis: Option<&RedisRateLimiter>) -> Self {
        let limiter = match redis {
            Some(redis) => Limiter::shared(redis.clone(), config.sdkappid, &config.rate_limits),
            None => Limiter::local(&config.rate_limits),
        };
        App {
            admins: config.admins.iter().cloned().collect(),
            limiter,
            clock_offset: AtomicI64::new(0),
            config,
        }
    }

    /// Whether `identifier` is one of the app's admins (who may call the REST API and the
    /// emulator controls).
    pub fn is_admin(&self, identifier: &str) -> bool {
        self.admins.contains(identifier)
    }

    /// The app's clock, in Unix seconds: the wall clock plus the app's time-travel offset.
    /// UserSig expiry, kick cut-offs, PushOnline's 7 days and tombstones read this clock;
    /// rate limits read the wall clock.
    pub fn now(&self) -> i64 {
        unix_now().saturating_add(self.clock_offset())
    }

    /// How far the app's clock runs ahead of the wall clock, in seconds.
    pub fn clock_offset(&self) -> i64 {
        self.clock_offset.load(Ordering::Relaxed)
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

/// The apps by SDKAppID. Behind a lock so that an app can be added or changed while the
/// server runs (the emulator controls need it); a request takes its app's `Arc` and lets go
/// of the lock at once, so a change never waits for calls in flight.
pub(crate) struct Apps(RwLock<HashMap<u32, Arc<App>>>);

impl Apps {
    /// The registry of these apps.
    pub(crate) fn new(apps: impl IntoIterator<Item = App>) -> Self {
        Apps(RwLock::new(
            apps.into_iter()
                .map(|a| (a.config.sdkappid, Arc::new(a)))
                .collect(),
        ))
    }

    /// The app with this SDKAppID, if hosted.
    pub(crate) fn get(&self, sdkappid: u32) -> Option<Arc<App>> {
        self.0.read().get(&sdkappid).cloned()
    }
}
