//! The connection IO: malformed-request replies that carry Tencent's envelope, and the read
//! deadlines (see `deadlines`) applied to every read.
//!
//! A few requests never reach a handler: hyper itself answers a request line or header block
//! it cannot take (a URI over 64 KiB: 414; headers too large: 431; an unparsable head: 400)
//! with an empty body, then closes the connection. The contract says no input gets a bare
//! 4xx page, so the connection's writer recognises such a reply — the application itself only
//! ever sends 200 and 405 — and sends the envelope (60002, "HTTP parse error") instead, with
//! HTTP 200 like every other API-level failure.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::deadlines::ReadDeadlines;
use crate::api::envelope::unparsable_request_reply;

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
            // After `101 Switching Protocols` the bytes are another protocol's, never hyper's.
            let status = if this.deadlines.is_upgraded() {
                None
            } else {
                hyper_error_status(buf)
            };
            match status {
                Some(info) => this.replacement = Some((unparsable_request_reply(info), 0)),
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
