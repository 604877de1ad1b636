//! The transport: the accept loop with its connection cap, each connection's I/O and read
//! deadlines, TLS, the request gate (overload), busy polling, and graceful shutdown.
//!
//! This replaces `axum::serve` because that gives no way to cap connections, time out slow
//! or idle clients, or put TLS under the envelope rewriting; hyper is driven directly, with
//! [`router::handle`](crate::router::handle) as the only service.

pub(crate) mod busy_poll;
mod connection;
mod connection_io;
mod deadlines;
pub(crate) mod limits;
pub(crate) mod overload;
mod shutdown;
pub(crate) mod tls;

use std::future::Future;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::state::AppState;

/// Connections over the cap still get an answer (60018, then close) while fewer than this
/// many such answers are under way, so a client learns to back off instead of seeing a
/// reset. Past it, accepting pauses until a connection closes.
fn spare_connections(max_connections: usize) -> usize {
    (max_connections / 16).max(16)
}

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
    let graceful = shutdown::Shutdown::new();
    let spinner = state
        .inner
        .activity
        .clone()
        .map(|activity| tokio::spawn(busy_poll::spin(activity, limits.busy_poll)));
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
        tokio::spawn(connection::connection(
            stream,
            state.clone(),
            tls.clone(),
            graceful.watch(),
            permit,
            busy,
        ));
    }
    drop(listener);
    graceful.finish().await;
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
