//! Graceful shutdown: a signal that every connection watches, and a wait until all of them
//! have finished what they were doing.
//!
//! Our own rather than hyper-util's `GracefulShutdown`, which only watches plain HTTP/1.1
//! connections: a connection served with upgrades (for WebSocket logins) is a different type.

use tokio::sync::{mpsc, watch};

/// Held by the accept loop.
pub(super) struct Shutdown {
    stop: watch::Sender<bool>,
    alive: mpsc::Sender<()>,
    all_done: mpsc::Receiver<()>,
}

/// Held by one connection: it learns when to stop, and its drop says it has.
pub(super) struct Watch {
    stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Shutdown {
    pub(super) fn new() -> Shutdown {
        let (stop, _) = watch::channel(false);
        // Nothing is ever sent: the channel only tells when every sender has gone.
        let (alive, all_done) = mpsc::channel(1);
        Shutdown {
            stop,
            alive,
            all_done,
        }
    }

    /// A watch for one more connection.
    pub(super) fn watch(&self) -> Watch {
        Watch {
            stop: self.stop.subscribe(),
            _alive: self.alive.clone(),
        }
    }

    /// Tell every connection to stop taking requests, then wait until each has finished.
    pub(super) async fn finish(self) {
        let Shutdown {
            stop,
            alive,
            mut all_done,
        } = self;
        let _ = stop.send(true);
        drop(alive);
        let _ = all_done.recv().await;
    }
}

impl Watch {
    /// Completes once shutdown has begun.
    pub(super) async fn stopping(&mut self) {
        let _ = self.stop.wait_for(|stopping| *stopping).await;
    }
}

/// Drive a hyper connection until it ends; once shutdown begins, let it finish the request
/// in flight and close (hyper's `graceful_shutdown`). A macro because the plain and the
/// upgradeable connection are different types with the same inherent method.
macro_rules! until_shutdown {
    ($conn:expr, $watch:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        let mut watch = $watch;
        tokio::select! {
            result = conn.as_mut() => result,
            () = watch.stopping() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    }};
}
pub(super) use until_shutdown;
