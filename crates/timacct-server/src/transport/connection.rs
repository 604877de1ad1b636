//! One connection's life: the TLS handshake, the read deadlines, HTTP/1.1 with upgrades, and
//! the answer to a connection over the cap.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_rustls::TlsAcceptor;

use super::connection_io::EnvelopeIo;
use super::deadlines::{ConnPhase, ReadDeadlines};
use super::shutdown::{until_shutdown, Watch};
use crate::ops::metrics::Timeout;
use crate::state::AppState;

/// How long an over-the-cap connection may take to send its request before it is closed.
const SPARE_TIMEOUT: Duration = Duration::from_secs(2);

/// Counts the connection as open for as long as it lives.
struct OpenGuard(AppState);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .inner
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn connection(
    stream: TcpStream,
    state: AppState,
    tls: Option<TlsAcceptor>,
    watch: Watch,
    _permit: OwnedSemaphorePermit,
    busy: bool,
) {
    state
        .inner
        .metrics
        .connections_open
        .fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(state.clone());
    match tls {
        None => drive(stream, state, watch, busy).await,
        Some(acceptor) => {
            let limit = state.inner.limits.header_timeout;
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => drive(stream, state, watch, busy).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => {
                    state.inner.metrics.timeout(Timeout::TlsHandshake);
                    tracing::debug!("TLS handshake not complete in time; closing");
                }
            }
        }
    }
}

/// Serve HTTP/1.1 (with upgrades) on one (plaintext) stream.
async fn drive<S>(stream: S, state: AppState, watch: Watch, busy: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &state.inner.limits;
    let (header, idle) = if busy {
        (
            limits.header_timeout.min(SPARE_TIMEOUT),
            limits.idle_timeout.min(SPARE_TIMEOUT),
        )
    } else {
        (limits.header_timeout, limits.idle_timeout)
    };
    let phase = ConnPhase::new();
    let deadlines = ReadDeadlines::new(phase.clone(), header, idle, state.inner.metrics.clone());
    let io = TokioIo::new(EnvelopeIo::new(stream, deadlines));
    let mut builder = http1::Builder::new();
    // Our own deadlines replace hyper's header timer (which cannot tell idle from slow).
    builder.header_read_timeout(None).keep_alive(!busy);
    let result = if busy {
        let service = hyper::service::service_fn(move |_request: hyper::Request<Incoming>| {
            phase.head_complete();
            std::future::ready(Ok::<_, Infallible>(crate::api::envelope::connections_full()))
        });
        until_shutdown!(builder.serve_connection(io, service), watch)
    } else {
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            phase.head_complete();
            let state = state.clone();
            async move {
                Ok::<_, Infallible>(crate::router::handle(state, request.map(Body::new)).await)
            }
        });
        // With upgrades, so that a route can switch the connection to another protocol
        // (a WebSocket login); see `deadlines` for what changes once it has.
        until_shutdown!(builder.serve_connection(io, service).with_upgrades(), watch)
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}
