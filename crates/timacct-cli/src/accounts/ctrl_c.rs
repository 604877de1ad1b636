//! Ctrl-C during a job. The first stops it cleanly: nothing more is sent, the requests
//! already sent are answered, and the summary says where to resume. The second quits at once.
//! Once the job is over the handler stays quiet, so that the summary is the last thing shown.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use indicatif::ProgressBar;
use timacct_client::CancelFlag;

use super::exit_code;
use super::progress::remove_bar;

/// The Ctrl-C handler of a job: the first Ctrl-C stops the job (nothing more is sent, the
/// requests already sent are answered), the second quits at once.
pub(super) struct CtrlC {
    /// Set once the job is over and its summary is about to be printed; the handler prints
    /// nothing after that, so the summary stays the last thing on the screen.
    closed: Arc<Mutex<bool>>,
}

impl CtrlC {
    /// The job is over: from now on a Ctrl-C prints nothing and changes nothing.
    pub(super) fn close(&self) {
        *lock(&self.closed) = true;
    }
}

fn lock(closed: &Mutex<bool>) -> MutexGuard<'_, bool> {
    closed.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handle Ctrl-C for the job that `cancel` stops and whose progress bar is `bar`.
pub(super) fn watch(cancel: CancelFlag, bar: Option<ProgressBar>) -> CtrlC {
    let closed = Arc::new(Mutex::new(false));
    let watching = Arc::clone(&closed);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        {
            // Said before the job can see the cancel, so it always comes before the summary;
            // the bar goes first, so that it is not drawn over the notice or after it.
            let closed = lock(&watching);
            if *closed {
                return;
            }
            remove_bar(bar.as_ref());
            eprintln!(
                "timacct: interrupted; sending nothing more, waiting for the answers to the requests already sent (Ctrl-C again to quit at once)"
            );
            cancel.cancel();
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            let closed = lock(&watching);
            if *closed {
                // The job is over and its summary being printed: let it finish.
                return;
            }
            eprintln!("timacct: interrupted again; quitting without waiting for the answers");
            std::process::exit(i32::from(exit_code::INTERRUPTED));
        }
    });
    CtrlC { closed }
}
