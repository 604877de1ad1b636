//! Client-side pacing: at most N calls per second per API, so the service never has a reason
//! to answer 60007.
//!
//! [`Pacing`] is what the caller chooses (a pace per API); [`Pacer`] is the client's running
//! state that keeps to it. Both are per-API tables ([`PerApi`]), so a new API in
//! [`timacct_proto::Api`] is paced without an edit here.

use std::time::Duration;

use parking_lot::Mutex;
use timacct_proto::{Api, PerApi};
use tokio::time::Instant;

/// The pace the client keeps: calls per second it allows itself, per API.
///
/// This is the client's own spacing of its calls, not the service's limit (which the server
/// calls its rate limits): a client paced at or below the service's limit never meets 60007.
/// The default is Tencent's documented per-app limits (`docs/protocol.md` §8):
/// `account_import`, `kick` and `query_online_status` 200/s; `multiaccount_import`,
/// `account_check` and `account_delete` 100/s. Calls are spaced evenly at the pace, which
/// never exceeds it in any one-second window, whatever window the service counts in.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacing {
    /// Calls per second per API; `None` is unpaced.
    per_api: PerApi<Option<f64>>,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing::documented()
    }
}

impl Pacing {
    /// Tencent's documented limits.
    pub fn documented() -> Self {
        Pacing {
            per_api: PerApi::from_fn(|api| Some(f64::from(api.documented_rate_limit()))),
        }
    }

    /// No pacing at all (e.g. against a timacct server with `rate_limits = "off"`).
    pub fn unlimited() -> Self {
        Pacing {
            per_api: PerApi::from_fn(|_| None),
        }
    }

    /// The same pacing with `api` at `calls_per_second`; zero, a negative or a non-finite
    /// value leaves `api` unpaced.
    pub fn with(mut self, api: Api, calls_per_second: f64) -> Self {
        self.per_api[api] =
            (calls_per_second.is_finite() && calls_per_second > 0.0).then_some(calls_per_second);
        self
    }

    /// The pace of `api` in calls per second, `None` when unpaced.
    pub fn get(&self, api: Api) -> Option<f64> {
        self.per_api[api]
    }
}

/// Hands out send times, one per call, spaced `1/rate` apart per API.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// `None` for an unpaced API.
    slots: PerApi<Option<Mutex<Slot>>>,
}

#[derive(Debug)]
struct Slot {
    interval: Duration,
    /// The earliest time the next call may be sent.
    next: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(pacing: &Pacing) -> Self {
        Pacer {
            slots: pacing.per_api.map(|_, rate| {
                rate.map(|rate| {
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
        let Some(slot) = &self.slots[api] else {
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
        if let Some(slot) = &self.slots[api] {
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
            &Pacing::unlimited().with(Api::AccountCheck, 10.0),
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
        let pacer = Arc::new(Pacer::new(&Pacing::documented()));
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
        let l = Pacing::default();
        assert_eq!(l.get(Api::AccountImport), Some(200.0));
        assert_eq!(l.get(Api::MultiAccountImport), Some(100.0));
        assert_eq!(l.get(Api::AccountCheck), Some(100.0));
        assert_eq!(l.get(Api::AccountDelete), Some(100.0));
        assert_eq!(l.get(Api::Kick), Some(200.0));
        assert_eq!(l.get(Api::QueryOnlineStatus), Some(200.0));
        assert_eq!(l.with(Api::Kick, 0.0).get(Api::Kick), None);
    }
}
