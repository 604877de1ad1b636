//! The request gate: at most N requests are handled at once, at most M wait for a slot, and
//! none waits longer than a short timeout. A request that cannot get in is answered with a
//! retryable code at once instead of piling up, so that under overload the latency of the
//! requests that are accepted stays bounded and memory stays fixed.
//!
//! The fast path (a slot is free) is one compare-and-swap to enter and one subtraction plus
//! one load to leave: no lock, no allocation. tokio's semaphore was not used because its
//! release takes a mutex on every call, which would be a global lock on every request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Why a request was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The wait queue was full.
    QueueFull,
    /// It waited the whole queue timeout.
    Waited,
}

pub(crate) struct Gate {
    in_flight: AtomicUsize,
    waiting: AtomicUsize,
    max_in_flight: usize,
    max_waiting: usize,
    wait: Duration,
    freed: Notify,
}

/// A slot; the request holds it until its answer is built.
pub(crate) struct Slot<'g> {
    gate: &'g Gate,
}

impl Gate {
    pub fn new(max_in_flight: usize, max_waiting: usize, wait: Duration) -> Gate {
        Gate {
            in_flight: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            // A cap of 0 would refuse everything; treat it as 1.
            max_in_flight: max_in_flight.max(1),
            max_waiting,
            wait,
            freed: Notify::new(),
        }
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    fn try_enter(&self) -> Option<Slot<'_>> {
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            if current >= self.max_in_flight {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::SeqCst,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(Slot { gate: self }),
                Err(actual) => current = actual,
            }
        }
    }

    /// A slot, at once or after waiting in the queue.
    pub async fn enter(&self) -> Result<Slot<'_>, Refused> {
        if let Some(slot) = self.try_enter() {
            return Ok(slot);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Refused::QueueFull);
        }
        let result = self.wait_for_slot().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn wait_for_slot(&self) -> Result<Slot<'_>, Refused> {
        let deadline = tokio::time::Instant::now() + self.wait;
        loop {
            // Register interest before looking again, so that a slot freed between the look
            // and the wait still wakes this request (the releaser sees `waiting > 0`).
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_enter() {
                return Ok(slot);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return self.try_enter().ok_or(Refused::Waited);
            }
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.gate.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.gate.waiting.load(Ordering::SeqCst) > 0 {
            self.gate.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn refuses_past_the_queue_and_recovers() {
        let gate = Gate::new(1, 1, Duration::from_millis(50));
        let first = gate.enter().await.expect("free slot");
        // One may wait; it times out because the slot is never freed.
        assert_eq!(gate.enter().await.err(), Some(Refused::Waited));
        drop(first);
        let again = gate.enter().await.expect("slot after release");
        drop(again);
        assert_eq!(gate.in_flight(), 0);
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_the_freed_slot() {
        let gate = std::sync::Arc::new(Gate::new(1, 4, Duration::from_secs(30)));
        let first = gate.enter().await.expect("free slot");
        let g = gate.clone();
        let waiter = tokio::spawn(async move { g.enter().await.map(|_| ()) });
        while gate.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(first);
        assert_eq!(waiter.await.expect("task"), Ok(()));
    }

    #[tokio::test]
    async fn queue_full_is_refused_at_once() {
        let gate = std::sync::Arc::new(Gate::new(1, 0, Duration::from_secs(30)));
        let _first = gate.enter().await.expect("free slot");
        assert_eq!(gate.enter().await.err(), Some(Refused::QueueFull));
    }
}
