//! The connection IO: malformed-request replies that carry Tencent's envelope, and read
//! deadlines against idle and slow clients.
//!
//! A few requests never reach a handler: hyper itself answers a request line or header block
//! it cannot take (a URI over 64 KiB: 414; headers too large: 431; an unparsable head: 400)
//! with an empty body, then closes the connection. The contract says no input gets a bare
//! 4xx page, so the connection's writer recognises such a reply — the application itself only
//! ever sends 200 and 405 — and sends the envelope (60002, "HTTP parse error") instead, with
//! HTTP 200 like every other API-level failure.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::metrics::{Metrics, Timeout};

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

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

    fn on_read(&mut self, got_bytes: bool) {
        if got_bytes && self.phase.0.load(Ordering::Relaxed) == IDLE {
            self.phase.0.store(HEAD, Ordering::Relaxed);
            self.since = Instant::now();
        }
    }

    fn on_write(&mut self, buf: &[u8]) {
        // A response going out ends the request; hyper's own error reply (written while a
        // head is still in progress) is followed by a close, so it needs no change. An
        // interim `100 Continue` only invites the body: the request goes on.
        if buf.starts_with(b"HTTP/1.1 100 ") {
            return;
        }
        if self.phase.0.load(Ordering::Relaxed) != HEAD {
            self.phase.0.store(IDLE, Ordering::Relaxed);
            self.since = Instant::now();
        }
    }

    /// A read is pending: Ready(Err) once the phase's deadline has passed, otherwise make
    /// sure the task wakes up when it does.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
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

/// A connection that rewrites hyper's own error replies (see the module docs) and enforces
/// the read deadlines.
pub(crate) struct EnvelopeIo<S> {
    inner: S,
    /// Our reply in place of hyper's, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
    deadlines: ReadDeadlines,
}

impl<S> EnvelopeIo<S> {
    pub fn new(inner: S, deadlines: ReadDeadlines) -> Self {
        EnvelopeIo {
            inner,
            replacement: None,
            deadlines,
        }
    }
}

/// What went wrong, if `buf` starts the head of an error reply hyper sends on its own for a
/// request it could not parse.
fn hyper_error_status(buf: &[u8]) -> Option<&'static str> {
    if buf.len() < 12 || !buf.starts_with(b"HTTP/1.") || buf[8] != b' ' {
        return None;
    }
    match &buf[9..12] {
        b"400" => {
            Some("the request could not be parsed as HTTP; check the request line and headers")
        }
        b"413" => Some("the request is too large"),
        b"414" => Some("the request URL is too long; check the query string"),
        b"431" => Some("the request headers are too large"),
        b"501" => Some("the request uses an HTTP feature this server does not implement"),
        b"505" => Some("the HTTP version is not supported; use HTTP/1.1"),
        _ => None,
    }
}

fn envelope_reply(info: &str) -> Vec<u8> {
    let body = format!(
        "{{\"ActionStatus\":\"FAIL\",\"ErrorCode\":{},\"ErrorInfo\":\"HTTP parse error: {info}\"}}",
        timacct_proto::ErrorCode::HttpParse.code()
    );
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\nx-request-id: {}\r\nconnection: close\r\n\r\n{body}",
        body.len(),
        crate::http::request_id()
    )
    .into_bytes()
}

impl<S: AsyncWrite + Unpin> EnvelopeIo<S> {
    /// Write what is left of the replacement; Ready(Ok) once all of it is out.
    fn drain_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some((data, pos)) = &mut self.replacement {
            while *pos < data.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &data[*pos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *pos += n;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for EnvelopeIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.deadlines.on_read(buf.filled().len() > before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.deadlines.poll_deadline(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EnvelopeIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacement.is_none() {
            match hyper_error_status(buf) {
                Some(info) => this.replacement = Some((envelope_reply(info), 0)),
                None => {
                    let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
                    if written > 0 {
                        this.deadlines.on_write(buf);
                    }
                    return Poll::Ready(Ok(written));
                }
            }
        }
        // Hyper's bytes are swallowed: ours go out instead, and the connection then closes.
        ready!(this.drain_replacement(cx))?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain_replacement(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain_replacement(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
