//! Client-side pacing: at most N calls per second per API, so the service never has a reason
//! to answer 60007.

use std::time::Duration;

use parking_lot::Mutex;
use timacct_proto::Api;
use tokio::time::Instant;

/// Calls per second the client allows itself, per API.
///
/// The default is Tencent's documented per-app limits (tencent-chat-api.md §9):
/// `account_import`, `kick` and `query_online_status` 200/s; `multiaccount_import`,
/// `account_check` and `account_delete` 100/s. Calls are spaced evenly at the rate, which
/// never exceeds it in any one-second window, whatever window the service counts in.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Indexed by [`Api::index`]; `None` is unpaced.
    per_api: [Option<f64>; 6],
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::documented()
    }
}

impl RateLimits {
    /// Tencent's documented limits.
    pub fn documented() -> Self {
        RateLimits {
            per_api: Api::ALL.map(|api| Some(f64::from(api.documented_rate_limit()))),
        }
    }

    /// No pacing at all (e.g. against a timacct server with `rate_limits = "off"`).
    pub fn unlimited() -> Self {
        RateLimits { per_api: [None; 6] }
    }

    /// The same limits with `api` at `calls_per_second`; zero, a negative or a non-finite
    /// value leaves `api` unpaced.
    pub fn with(mut self, api: Api, calls_per_second: f64) -> Self {
        self.per_api[api.index()] =
            (calls_per_second.is_finite() && calls_per_second > 0.0).then_some(calls_per_second);
        self
    }

    /// The pace of `api` in calls per second, `None` when unpaced.
    pub fn get(&self, api: Api) -> Option<f64> {
        self.per_api[api.index()]
    }
}

/// Hands out send times, one per call, spaced `1/rate` apart per API.
#[derive(Debug)]
pub(crate) struct Pacer {
    slots: [Option<Mutex<Slot>>; 6],
}

#[derive(Debug)]
struct Slot {
    interval: Duration,
    /// The earliest time the next call may be sent.
    next: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(limits: &RateLimits) -> Self {
        Pacer {
            slots: Api::ALL.map(|api| {
                limits.get(api).map(|rate| {
                    Mutex::new(Slot {
                        interval: Duration::from_secs_f64(1.0 / rate),
                        next: None,
                    })
                })
            }),
        }
    }

    /// Wait for this call's turn. Each caller reserves the next free slot, so concurrent
    /// callers are spread out rather than released together.
    pub(crate) async fn acquire(&self, api: Api) {
        let Some(slot) = &self.slots[api.index()] else {
            return;
        };
        let at = {
            let mut s = slot.lock();
            let now = Instant::now();
            let at = s.next.map_or(now, |next| next.max(now));
            s.next = Some(at + s.interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Push every later call of `api` back by at least `pause` (after the service said
    /// 60007: whatever our pacing assumed, it is counting differently, so all callers back
    /// off together instead of each finding out separately).
    pub(crate) fn hold_off(&self, api: Api, pause: Duration) {
        if let Some(slot) = &self.slots[api.index()] {
            let mut s = slot.lock();
            let resume = Instant::now() + pause;
            s.next = Some(s.next.map_or(resume, |next| next.max(resume)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_at_the_rate() {
        let pacer = Pacer::new(&RateLimits::unlimited().with(Api::AccountCheck, 10.0));
        let start = Instant::now();
        for _ in 0..11 {
            pacer.acquire(Api::AccountCheck).await;
        }
        // 11 calls at 10/s: the 11th goes out after exactly one second, never sooner.
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // Unpaced APIs do not wait.
        let t = Instant::now();
        pacer.acquire(Api::Kick).await;
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn hold_off_delays_the_next_call() {
        let pacer = Pacer::new(&RateLimits::documented());
        pacer.acquire(Api::AccountDelete).await;
        pacer.hold_off(Api::AccountDelete, Duration::from_secs(2));
        let t = Instant::now();
        pacer.acquire(Api::AccountDelete).await;
        assert_eq!(t.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn documented_limits_are_tencents() {
        let l = RateLimits::default();
        assert_eq!(l.get(Api::AccountImport), Some(200.0));
        assert_eq!(l.get(Api::MultiAccountImport), Some(100.0));
        assert_eq!(l.get(Api::AccountCheck), Some(100.0));
        assert_eq!(l.get(Api::AccountDelete), Some(100.0));
        assert_eq!(l.get(Api::Kick), Some(200.0));
        assert_eq!(l.get(Api::QueryOnlineStatus), Some(200.0));
        assert_eq!(l.with(Api::Kick, 0.0).get(Api::Kick), None);
    }
}
