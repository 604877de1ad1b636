//! The accept loop and each connection's life: the connection cap, the TLS handshake, the
//! read deadlines, and graceful shutdown.
//!
//! This replaces `axum::serve` because that gives no way to cap connections, time out slow
//! or idle clients, or put TLS under the envelope rewriting; hyper is driven directly, with
//! [`http::handle`](crate::http::handle) as the only service.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::listener::{ConnPhase, EnvelopeIo, ReadDeadlines};
use crate::metrics::Timeout;
use crate::state::AppState;

/// Connections over the cap still get an answer (60018, then close) while fewer than this
/// many such answers are under way, so a client learns to back off instead of seeing a
/// reset. Past it, accepting pauses until a connection closes.
fn spare_connections(max_connections: usize) -> usize {
    (max_connections / 16).max(16)
}

/// How long an over-the-cap connection may take to send its request before it is closed.
const SPARE_TIMEOUT: Duration = Duration::from_secs(2);

/// Serve on `listener` until `shutdown` completes, then let requests in flight finish.
pub(crate) async fn run(
    listener: TcpListener,
    state: AppState,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let limits = state.inner.limits.clone();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let spare = Arc::new(Semaphore::new(spare_connections(limits.max_connections)));
    let graceful = GracefulShutdown::new();
    let spinner = state
        .inner
        .activity
        .clone()
        .map(|activity| tokio::spawn(crate::spin::spin(activity, limits.busy_poll)));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_per_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: pause instead of spinning.
                tracing::warn!(error = %e, "accept failed; pausing 100 ms");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        // Responses are small and written whole: send them at once.
        let _ = stream.set_nodelay(true);
        let (permit, busy) = if let Ok(p) = slots.clone().try_acquire_owned() {
            (p, false)
        } else if let Ok(p) = spare.clone().try_acquire_owned() {
            state
                .inner
                .metrics
                .connections_refused
                .fetch_add(1, Ordering::Relaxed);
            (p, true)
        } else {
            drop(stream);
            state
                .inner
                .metrics
                .connections_dropped
                .fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                () = &mut shutdown => break,
                p = slots.clone().acquire_owned() => drop(p),
            }
            continue;
        };
        tokio::spawn(connection(
            stream,
            state.clone(),
            tls.clone(),
            graceful.watcher(),
            permit,
            busy,
        ));
    }
    drop(listener);
    graceful.shutdown().await;
    if let Some(spinner) = spinner {
        spinner.abort();
    }
    Ok(())
}

/// Errors that concern one incoming connection only (it was reset before we took it).
fn is_per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

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

async fn connection(
    stream: TcpStream,
    state: AppState,
    tls: Option<TlsAcceptor>,
    watcher: Watcher,
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
        None => drive(stream, state, watcher, busy).await,
        Some(acceptor) => {
            let limit = state.inner.limits.header_timeout;
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => drive(stream, state, watcher, busy).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => {
                    state.inner.metrics.timeout(Timeout::TlsHandshake);
                    tracing::debug!("TLS handshake not complete in time; closing");
                }
            }
        }
    }
}

/// Serve HTTP/1.1 on one (plaintext) stream.
async fn drive<S>(stream: S, state: AppState, watcher: Watcher, busy: bool)
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
            std::future::ready(Ok::<_, Infallible>(crate::http::connections_full()))
        });
        watcher.watch(builder.serve_connection(io, service)).await
    } else {
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            phase.head_complete();
            let state = state.clone();
            async move { Ok::<_, Infallible>(crate::http::handle(state, request.map(Body::new)).await) }
        });
        watcher.watch(builder.serve_connection(io, service)).await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}
