//! Per-app, per-API rate limits (60007).
//!
//! A token bucket per API holding one second's worth of calls, refilled continuously: a
//! client that paces itself to the documented rate is never refused, and a burst above it is
//! refused for exactly as long as it stays above it.

use std::time::Instant;

use parking_lot::Mutex;
use timacct_proto::Api;

use crate::config::RateLimits;

/// The buckets of one app.
pub struct RateLimiter {
    buckets: [Option<Mutex<Bucket>>; 6],
}

struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// Buckets for the given limits.
    pub fn new(limits: &RateLimits) -> Self {
        let now = Instant::now();
        RateLimiter {
            buckets: Api::ALL.map(|api| {
                limits.limit(api).map(|rate| {
                    let rate = f64::from(rate.max(1));
                    Mutex::new(Bucket {
                        rate,
                        tokens: rate,
                        last: now,
                    })
                })
            }),
        }
    }

    /// Take one call from `api`'s bucket; `false` means over the limit.
    pub fn allow(&self, api: Api) -> bool {
        let Some(bucket) = &self.buckets[api.index()] else {
            return true;
        };
        let mut b = bucket.lock();
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.last = now;
        b.tokens = (b.tokens + elapsed * b.rate).min(b.rate);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
