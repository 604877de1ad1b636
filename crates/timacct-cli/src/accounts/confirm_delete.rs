//! The question `delete` asks before it deletes anything. It is asked on the terminal only:
//! without one there is nobody to answer (and stdin may be the UserIDs themselves), so the
//! command refuses rather than guess.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::{bail, Context};

/// Ask on the terminal before deleting; without a terminal, refuse rather than guess.
pub(super) fn confirm_delete(
    count: usize,
    sdkappid: u32,
    endpoint: &str,
    ids_from_stdin: bool,
) -> anyhow::Result<()> {
    if ids_from_stdin {
        bail!(
            "refusing to delete {count} accounts without confirmation: the UserIDs come from stdin, so there is no terminal to confirm on; pass --yes (or --dry-run to see what would be deleted)"
        );
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to delete {count} accounts without confirmation: stdin is not a terminal; pass --yes (or --dry-run to see what would be deleted)"
        );
    }
    eprint!(
        "Delete {count} accounts of app {sdkappid} at {endpoint}? This cannot be undone. [y/N] "
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        bail!("not confirmed; nothing was deleted")
    }
}
