//! Client-side pacing: at most N calls per second per API, so the service never has a reason
//! to answer 60007.

use std::time::Duration;

use parking_lot::Mutex;
use timacct_proto::Api;
use tokio::time::Instant;

/// Calls per second the client allows itself, per API.
///
/// The default is Tencent's documented per-app limits (`docs/protocol.md` §8):
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

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// `n` callers of `api` started together; the counter says how many have been let go.
    fn callers(pacer: &Arc<Pacer>, api: Api, n: usize) -> Arc<AtomicUsize> {
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..n {
            let (pacer, done) = (pacer.clone(), done.clone());
            tokio::spawn(async move {
                pacer.acquire(api).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        done
    }

    /// Move the paused clock on and let every task that can run, run.
    async fn at(step: Duration) {
        tokio::time::advance(step).await;
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    // The clock is paused: these tests count calls at given (virtual) instants.
    #[tokio::test(start_paused = true)]
    async fn never_more_calls_in_a_second_than_the_rate() {
        let pacer = Arc::new(Pacer::new(
            &RateLimits::unlimited().with(Api::AccountCheck, 10.0),
        ));
        let done = callers(&pacer, Api::AccountCheck, 25);
        at(Duration::ZERO).await;
        assert_eq!(done.load(Ordering::SeqCst), 1, "the first goes at once");
        at(Duration::from_millis(999)).await;
        assert_eq!(done.load(Ordering::SeqCst), 10, "ten in the first second");
        at(Duration::from_millis(1)).await;
        assert_eq!(done.load(Ordering::SeqCst), 11);
        at(Duration::from_millis(999)).await;
        assert_eq!(done.load(Ordering::SeqCst), 20, "ten in the next second");
        at(Duration::from_secs(1)).await;
        assert_eq!(done.load(Ordering::SeqCst), 25);

        // An unpaced API lets every caller go at once.
        let free = callers(&pacer, Api::Kick, 100);
        at(Duration::ZERO).await;
        assert_eq!(free.load(Ordering::SeqCst), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn hold_off_delays_every_later_call() {
        let pacer = Arc::new(Pacer::new(&RateLimits::documented()));
        pacer.acquire(Api::AccountDelete).await;
        pacer.hold_off(Api::AccountDelete, Duration::from_secs(2));
        let done = callers(&pacer, Api::AccountDelete, 3);
        at(Duration::from_millis(1999)).await;
        assert_eq!(done.load(Ordering::SeqCst), 0, "held off");
        at(Duration::from_millis(1)).await;
        assert_eq!(done.load(Ordering::SeqCst), 1, "then one");
        at(Duration::from_millis(20)).await;
        assert_eq!(done.load(Ordering::SeqCst), 3, "then at the pace (100/s)");
        // Other APIs are not held off.
        let other = callers(&pacer, Api::AccountCheck, 1);
        at(Duration::ZERO).await;
        assert_eq!(other.load(Ordering::SeqCst), 1);
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
