//! [`ServerBuilder`] and [`Server`]: the one way to configure and run a server, so that no
//! setting can be changed after the state is shared (and silently ignored).

use std::future::Future;
use std::sync::Arc;

use timacct_store::AccountStore;

use crate::api::rate_limit::RedisRateLimiter;
use crate::apps::{App, Apps};
use crate::auth::SigCache;
use crate::config::AppConfig;
use crate::ops::metrics::Metrics;
use crate::ops::timed_store::TimedStore;
use crate::state::{AppState, Inner};
use crate::transport::busy_poll::Activity;
use crate::transport::limits::ServerLimits;
use crate::transport::overload::Gate;
use crate::TlsServerConfig;

/// The largest request body accepted by default. A full legitimate batch (100 accounts with
/// 500-byte Nick and FaceUrl) is about 110 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Configures a [`Server`]: the apps and the store are required, everything else has the
/// defaults `timacct serve` documents.
pub struct ServerBuilder {
    apps: Vec<AppConfig>,
    store: Arc<dyn AccountStore>,
    limits: ServerLimits,
    body_limit: usize,
    redis: Option<RedisRateLimiter>,
    tls: Option<Arc<TlsServerConfig>>,
}

impl ServerBuilder {
    /// A server for these apps over this store.
    pub fn new(apps: Vec<AppConfig>, store: Arc<dyn AccountStore>) -> Self {
        ServerBuilder {
            apps,
            store,
            limits: ServerLimits::default(),
            body_limit: DEFAULT_BODY_LIMIT,
            redis: None,
            tls: None,
        }
    }

    /// The server-wide bounds (connections, queue, timeouts).
    pub fn limits(mut self, limits: ServerLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The largest request body accepted (60003 beyond).
    pub fn body_limit(mut self, limit: usize) -> Self {
        self.body_limit = limit;
        self
    }

    /// Keep every app's rate-limit buckets in Redis, so that the limits hold for all
    /// instances together rather than for each one: instances that share a database should
    /// share a Redis too.
    pub fn redis(mut self, redis: RedisRateLimiter) -> Self {
        self.redis = Some(redis);
        self
    }

    /// Serve HTTPS with this configuration (see [`crate::load_tls_config`]).
    pub fn tls(mut self, tls: Arc<TlsServerConfig>) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The server, ready to [`Server::serve`].
    pub fn build(self) -> Server {
        let metrics = Arc::new(Metrics::new());
        // Every store call is timed for /metrics.
        let store: Arc<dyn AccountStore> = Arc::new(TimedStore {
            inner: self.store,
            metrics: metrics.clone(),
        });
        let redis = self.redis.as_ref();
        let limits = self.limits;
        let state = AppState {
            inner: Arc::new(Inner {
                apps: Apps::new(self.apps.into_iter().map(|a| App::new(a, redis))),
                store,
                sigs: SigCache::default(),
                body_limit: self.body_limit,
                gate: Gate::new(
                    limits.max_concurrent_requests,
                    limits.max_queued_requests,
                    limits.queue_timeout,
                ),
                activity: (!limits.busy_poll.is_zero()).then(Activity::new),
                limits,
                metrics,
            }),
        };
        Server {
            state,
            tls: self.tls.map(tokio_rustls::TlsAcceptor::from),
        }
    }
}

/// A configured server.
pub struct Server {
    pub(crate) state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    /// Serve on `listener` until `shutdown` completes; requests in flight then finish before
    /// this returns. Tests bind port 0 and pass the listener in.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::transport::run(listener, self.state, self.tls, shutdown).await
    }
}
