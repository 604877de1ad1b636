//! The progress bar of a long job on a terminal. It is drawn on stderr, and taken off the
//! screen for good before the summary (or a Ctrl-C notice), so that those are never drawn
//! over.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A progress bar on stderr, only on a terminal and only for more than one batch.
pub(super) fn bar(total: usize, batch_size: usize) -> Option<ProgressBar> {
    if total <= batch_size || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {pos}/{len} accounts  {rate}  ETA {eta}",
    ) {
        bar.set_style(
            style
                .with_key(
                    "rate",
                    |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0} accounts/s", state.per_sec());
                    },
                )
                .progress_chars("=> "),
        );
    }
    Some(bar)
}

/// Take the progress bar off the screen for good: cleared, and never drawn again however
/// it is updated (the rows of the requests still being answered are written all the same).
pub(super) fn remove_bar(bar: Option<&ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
}
