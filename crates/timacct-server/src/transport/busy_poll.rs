//! Busy polling: while requests keep coming, the runtime polls its sockets instead of
//! sleeping between them.
//!
//! Why: at half of its peak rate the server is idle between most requests, and tokio then
//! parks its worker in `epoll_wait`. Each request must then wake it, and on this project's
//! KVM machines a wake-up of a sleeping vCPU (an inter-processor interrupt into a halted
//! guest CPU, then a context switch) costs about as much as answering an `account_check`
//! of 100 IDs: `perf` put 27% of the server's time in the kernel's wake-up and
//! context-switch paths. Measured there, spinning for 200 µs took the median latency at
//! half load from 45 to 30 µs; the p99 stayed where the machine's own stalls put it, which
//! is why it is off unless asked for (`--busy-poll-us`).
//!
//! A spinner task yields in a loop; a worker whose only runnable task has yielded polls
//! its IO driver with a zero timeout instead of parking, so the next request's bytes are
//! seen without any wake-up. It spins only while requests arrive: after `window` with
//! none, it parks on a [`Notify`] until the next request, so an idle server costs nothing.
//! Other threads on the same core (the SQLite writer) are not starved: the spinner gives
//! the CPU away (`sched_yield`) on every round. It is the same trade Go's scheduler makes
//! when its threads spin for work before sleeping, bounded to one task.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Request arrivals, as the spinner sees them.
#[derive(Default)]
pub(crate) struct Activity {
    requests: AtomicU64,
    /// The spinner is parked and wants a [`Notify`] at the next request.
    parked: AtomicBool,
    wake: Notify,
    /// Rounds the spinner has polled, for tests.
    rounds: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity::default())
    }

    /// A request has arrived. Costs one uncontended atomic add while the spinner spins.
    #[inline]
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.parked.load(Ordering::Relaxed) && self.parked.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }
}

/// Spin while requests keep arriving at least every `window`; park otherwise. Runs until
/// the runtime shuts down.
pub(crate) async fn spin(activity: Arc<Activity>, window: Duration) {
    loop {
        // Park until a request comes. `notify_one` stores a permit when nobody waits yet,
        // so a request between the flag and the await is not missed.
        activity.parked.store(true, Ordering::Release);
        activity.wake.notified().await;
        let mut seen = activity.requests.load(Ordering::Relaxed);
        let mut last = Instant::now();
        loop {
            tokio::task::yield_now().await;
            activity.rounds.fetch_add(1, Ordering::Relaxed);
            // Another thread on this core (the store's writer, a blocking task) runs first
            // if it is ready; otherwise this returns at once.
            std::thread::yield_now();
            let now_seen = activity.requests.load(Ordering::Relaxed);
            let now = Instant::now();
            if now_seen != seen {
                seen = now_seen;
                last = now;
            } else if now.duration_since(last) > window {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spinner parks when no request comes, spins (stays unparked) while requests
    /// arrive within the window, and parks again once they stop: an idle server sleeps.
    #[tokio::test(flavor = "current_thread")]
    async fn spins_only_while_requests_come() {
        let activity = Activity::new();
        let window = Duration::from_millis(50);
        let spinner = tokio::spawn(spin(activity.clone(), window));
        tokio::task::yield_now().await;
        assert!(activity.parked.load(Ordering::Acquire), "idle: parked");
        assert_eq!(
            activity.rounds.load(Ordering::Relaxed),
            0,
            "idle: no polling"
        );
        // Requests every 2 ms for 60 ms: it keeps polling throughout.
        for _ in 0..30 {
            activity.request();
            let before = activity.rounds.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert!(
                activity.rounds.load(Ordering::Relaxed) > before,
                "busy: spinning"
            );
        }
        // No requests for several windows: parked again, and no longer polling.
        tokio::time::sleep(window * 4).await;
        assert!(
            activity.parked.load(Ordering::Acquire),
            "quiet again: parked"
        );
        let rounds = activity.rounds.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(
            activity.rounds.load(Ordering::Relaxed),
            rounds,
            "parked: no polling"
        );
        // And the next request wakes it.
        activity.request();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(activity.rounds.load(Ordering::Relaxed) > rounds);
        spinner.abort();
    }
}
