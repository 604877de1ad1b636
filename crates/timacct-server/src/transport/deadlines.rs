//! Read deadlines against idle and slow clients, and the phase of a connection they follow.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::ops::metrics::{Metrics, Timeout};

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;
/// The connection switched protocols (`101`, a WebSocket): it is no longer HTTP, so no
/// request deadline applies and nothing is rewritten. What speaks on it now keeps its own
/// liveness rules (a session's heartbeat timeout), so an idle but heartbeating session is
/// never cut by the REST path's idle timeout.
const UPGRADED: u8 = 3;

/// Where a connection stands, for its read deadlines. The connection's IO sees the bytes (a
/// first byte starts a request head; a response written ends a request) and the service sees
/// when a head is complete (it is called): between them they know which deadline applies,
/// without parsing HTTP a second time.
pub(crate) struct ConnPhase(AtomicU8);

impl ConnPhase {
    pub fn new() -> Arc<ConnPhase> {
        Arc::new(ConnPhase(AtomicU8::new(IDLE)))
    }

    /// The request head is complete: from here the body and handling timeouts apply.
    #[inline]
    pub fn head_complete(&self) {
        self.0.store(BUSY, Ordering::Relaxed);
    }

    /// Whether the connection has switched protocols.
    #[inline]
    pub fn is_upgraded(&self) -> bool {
        self.0.load(Ordering::Relaxed) == UPGRADED
    }
}

/// The read deadlines of one connection: `idle` while it waits for a request, `header` from
/// the first byte of a request until its head is complete. Past either, reads fail with
/// `TimedOut` and hyper closes the connection: a client that stalls or trickles its headers
/// (slowloris) holds a connection for a bounded time only.
pub(crate) struct ReadDeadlines {
    phase: Arc<ConnPhase>,
    header: Duration,
    idle: Duration,
    /// When the current idle or head phase began.
    since: Instant,
    /// Armed lazily at some deadline; when it fires early (the phase moved on since), it is
    /// re-armed, so a request costs no timer work at all on the fast path.
    sleep: Pin<Box<Sleep>>,
    armed: Instant,
    metrics: Arc<Metrics>,
}

impl ReadDeadlines {
    pub fn new(
        phase: Arc<ConnPhase>,
        header: Duration,
        idle: Duration,
        metrics: Arc<Metrics>,
    ) -> ReadDeadlines {
        let since = Instant::now();
        let armed = since + idle;
        ReadDeadlines {
            phase,
            header,
            idle,
            since,
            sleep: Box::pin(tokio::time::sleep_until(armed)),
            armed,
            metrics,
        }
    }

    /// Whether the connection has switched protocols (see [`ConnPhase::is_upgraded`]).
    pub(super) fn is_upgraded(&self) -> bool {
        self.phase.is_upgraded()
    }

    pub(super) fn on_read(&mut self, got_bytes: bool) {
        if got_bytes && self.phase.0.load(Ordering::Relaxed) == IDLE {
            self.phase.0.store(HEAD, Ordering::Relaxed);
            self.since = Instant::now();
        }
    }

    pub(super) fn on_write(&mut self, buf: &[u8]) {
        // A response going out ends the request; hyper's own error reply (written while a
        // head is still in progress) is followed by a close, so it needs no change. An
        // interim `100 Continue` only invites the body: the request goes on.
        if buf.starts_with(b"HTTP/1.1 100 ") {
            return;
        }
        let phase = self.phase.0.load(Ordering::Relaxed);
        if phase == UPGRADED {
            return;
        }
        // `101 Switching Protocols` is the last HTTP this connection carries.
        if buf.starts_with(b"HTTP/1.1 101 ") {
            self.phase.0.store(UPGRADED, Ordering::Relaxed);
            return;
        }
        if phase != HEAD {
            self.phase.0.store(IDLE, Ordering::Relaxed);
            self.since = Instant::now();
        }
    }

    /// A read is pending: Ready(Err) once the phase's deadline has passed, otherwise make
    /// sure the task wakes up when it does.
    pub(super) fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let (limit, kind, what) = match self.phase.0.load(Ordering::Relaxed) {
            IDLE => (self.idle, Timeout::Idle, "no request on an idle connection"),
            HEAD => (
                self.header,
                Timeout::Header,
                "the request head was not complete",
            ),
            _ => return Poll::Pending,
        };
        let deadline = self.since + limit;
        if self.armed > deadline {
            self.sleep.as_mut().reset(deadline);
            self.armed = deadline;
        }
        loop {
            if self.sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if Instant::now() >= deadline {
                self.metrics.timeout(kind);
                return Poll::Ready(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} within {} s; closing", limit.as_secs_f64()),
                ));
            }
            self.sleep.as_mut().reset(deadline);
            self.armed = deadline;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn deadlines() -> ReadDeadlines {
        ReadDeadlines::new(
            ConnPhase::new(),
            Duration::from_secs(1),
            Duration::from_secs(2),
            Arc::new(Metrics::new()),
        )
    }

    fn poll(d: &mut ReadDeadlines) -> Poll<io::Error> {
        d.poll_deadline(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_cut_after_the_idle_timeout() {
        let mut d = deadlines();
        assert!(poll(&mut d).is_pending());
        tokio::time::advance(Duration::from_millis(2_100)).await;
        assert!(matches!(poll(&mut d), Poll::Ready(e) if e.kind() == io::ErrorKind::TimedOut));
    }

    #[tokio::test(start_paused = true)]
    async fn a_switched_connection_has_no_deadline_and_stays_switched() {
        let mut d = deadlines();
        d.on_read(true);
        d.phase.head_complete();
        d.on_write(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n");
        assert!(d.is_upgraded());
        tokio::time::advance(Duration::from_secs(3_600)).await;
        assert!(poll(&mut d).is_pending());
        // Frames read and written afterwards are not requests.
        d.on_read(true);
        d.on_write(b"HTTP/1.1 200 OK\r\n");
        tokio::time::advance(Duration::from_secs(3_600)).await;
        assert!(poll(&mut d).is_pending());
        assert!(d.is_upgraded());
    }
}
