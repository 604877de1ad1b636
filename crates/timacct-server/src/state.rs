//! What a running server holds: its apps, its store, and the caches and bounds in front of
//! them. Built once by [`crate::ServerBuilder`]; shared by every connection.

use std::sync::Arc;

use timacct_store::AccountStore;

use crate::apps::Apps;
use crate::auth::SigCache;
use crate::ops::metrics::Metrics;
use crate::transport::busy_poll::Activity;
use crate::transport::limits::ServerLimits;
use crate::transport::overload::Gate;

/// The shared state of a server: cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The hosted apps.
    pub apps: Apps,
    /// Every account, behind the metrics decorator.
    pub store: Arc<dyn AccountStore>,
    /// UserSigs that verified.
    pub sigs: SigCache,
    /// The largest request body accepted.
    pub body_limit: usize,
    /// The server-wide bounds.
    pub limits: ServerLimits,
    /// The request gate: requests handled at once, and those waiting.
    pub gate: Gate,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Request arrivals, for the busy-polling spinner (see `transport::busy_poll`); present
    /// exactly when `limits.busy_poll` is on, so that a server without it pays nothing per
    /// request.
    pub activity: Option<Arc<Activity>>,
}
