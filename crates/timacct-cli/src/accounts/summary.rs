//! The last lines a job prints on stderr: what was done (and what the client did to get
//! there), then, for a job that ended early, why and where to resume from. The way the job
//! ended decides the exit code too, so it is chosen here, with the lines that explain it.

use timacct_client::{Stats, Stopped};

use super::exit_code;
use super::job::Job;
use super::sink::Counts;

/// Print the summary (and the resume line, if the job ended early); the exit code.
///
/// `total` is the number of accounts this run was given, `skip` how many input UserIDs
/// `--resume-from` skipped before them.
pub(super) fn report(
    job: Job,
    counts: Counts,
    total: usize,
    skip: usize,
    stats: Stats,
    stopped: Option<Stopped>,
) -> u8 {
    let Counts {
        done,
        failed,
        would_delete,
    } = counts;
    let outcome = if job == Job::DryRunDelete {
        format!("{would_delete} would be deleted")
    } else {
        format!("{} succeeded", done - failed)
    };
    eprintln!(
        "timacct: {}: {done} of {total} accounts done, {outcome}, {failed} failed; {} requests, {} retries, {} rate-limited, {} failovers, {} admin UserSigs made",
        job.name(),
        stats.requests,
        stats.retries,
        stats.rate_limited,
        stats.failovers,
        stats.usersigs_issued,
    );
    let reached = skip + done;
    let input_total = skip + total;
    match stopped {
        None if failed > 0 => exit_code::SOME_FAILED,
        None => exit_code::OK,
        Some(Stopped::Cancelled { .. }) => {
            eprintln!(
                "timacct: interrupted after {reached} of {input_total} accounts; to continue, run the same command with --resume-from {reached}"
            );
            exit_code::INTERRUPTED
        }
        Some(Stopped::Failed { error, .. }) => {
            let error = anyhow::Error::from(error);
            eprintln!(
                "timacct: {} stopped after {reached} of {input_total} accounts: {error:#}",
                job.name()
            );
            if reached > 0 {
                eprintln!(
                    "timacct: once the cause is fixed, continue with --resume-from {reached}"
                );
            }
            exit_code::USAGE_OR_CONNECTION
        }
    }
}
