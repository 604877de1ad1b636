//! Running one account command: its input (less what `--resume-from` skips), the question
//! `delete` asks, the client, then the bulk stream of the command's API drained into rows
//! under the progress bar and the Ctrl-C handler, and last the summary and the exit code.

use std::io::IsTerminal as _;

use anyhow::bail;
use timacct_client::{
    AccountListEntry, Api, BulkOptions, CancelFlag, Client, ImportShape, Stopped,
};
use timacct_proto::{MAX_BATCH, MAX_ONLINE_BATCH};

use super::confirm_delete::confirm_delete;
use super::sink::{status_name, Sink};
use super::{connect, ctrl_c, exit_code, progress, summary, CommonArgs};
use crate::input::{self, InputAccount};
use crate::output::{Format, RowWriter};

/// What one command does, once its arguments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    Import(ImportShape),
    Check,
    Delete,
    DryRunDelete,
    Kick,
    Online { detail: bool },
}

impl Job {
    /// The command as the summary names it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Job::Import(_) => "import",
            Job::Check => "check",
            Job::Delete => "delete",
            Job::DryRunDelete => "delete --dry-run",
            Job::Kick => "kick",
            Job::Online { .. } => "online",
        }
    }

    /// The API the job calls (the one `--rate` paces).
    fn api(self) -> Api {
        match self {
            Job::Import(_) => Api::MultiAccountImport,
            Job::Check | Job::DryRunDelete => Api::AccountCheck,
            Job::Delete => Api::AccountDelete,
            Job::Kick => Api::Kick,
            Job::Online { .. } => Api::QueryOnlineStatus,
        }
    }

    /// Accounts per call of that API.
    fn batch_size(self) -> usize {
        match self {
            Job::Kick => 1,
            Job::Online { .. } => MAX_ONLINE_BATCH,
            _ => MAX_BATCH,
        }
    }
}

/// Run `job` to its end; the exit code. `confirmed`: the job may go ahead without asking.
pub(super) async fn execute(job: Job, common: CommonArgs, confirmed: bool) -> anyhow::Result<u8> {
    let CommonArgs { connection, input } = common;
    let endpoint = connect::endpoint(&connection)?;
    let all = input::read(&input.ids, input.file.as_deref())?;
    if all.is_empty() {
        bail!("the input names no UserIDs");
    }
    let skip = input.resume_from;
    if skip >= all.len() {
        eprintln!(
            "timacct: nothing to do: --resume-from {skip} skips all {} input UserIDs",
            all.len()
        );
        return Ok(exit_code::OK);
    }
    let accounts: Vec<InputAccount> = all.into_iter().skip(skip).collect();
    if !confirmed {
        let from_stdin = input.file.as_deref() == Some(std::path::Path::new("-"));
        confirm_delete(
            accounts.len(),
            connection.sdkappid,
            &connection.endpoint,
            from_stdin,
        )?;
    }
    let client = connect::client(&connection, endpoint, job.api())?;

    let format = input.output.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let total = accounts.len();
    let id_width = accounts
        .iter()
        .map(|a| a.user_id.chars().count())
        .max()
        .unwrap_or(0);
    let mut writer = RowWriter::new(
        format,
        Box::new(std::io::stdout()),
        skip + total.saturating_sub(1),
        id_width,
    );
    let bar = progress::bar(total, job.batch_size());
    let cancel = CancelFlag::new();
    let ctrl_c = ctrl_c::watch(cancel.clone(), bar.clone());
    let options = BulkOptions {
        concurrency: usize::from(connection.concurrency),
        progress: None,
        cancel,
    };
    let mut sink = Sink::new(
        &mut writer,
        bar.as_ref(),
        std::io::stdout().is_terminal(),
        job.batch_size(),
        skip,
    );
    let stopped = drain(job, &client, &accounts, options, &mut sink).await;
    let counts = sink.counts();
    // From here on only the summary (or the error) is printed: no more "interrupted" line,
    // and no bar.
    ctrl_c.close();
    progress::remove_bar(bar.as_ref());
    let stopped = stopped?;
    writer.flush()?;
    Ok(summary::report(
        job,
        counts,
        total,
        skip,
        client.stats(),
        stopped,
    ))
}

/// Call the job's API for every account, a row per result into `sink`; the reason the job
/// stopped early, if it did.
async fn drain(
    job: Job,
    client: &Client,
    accounts: &[InputAccount],
    options: BulkOptions,
    sink: &mut Sink<'_>,
) -> anyhow::Result<Option<Stopped>> {
    let ids = || {
        accounts
            .iter()
            .map(|a| a.user_id.clone())
            .collect::<Vec<_>>()
    };
    match job {
        Job::Import(shape) => {
            let entries = accounts
                .iter()
                .map(|a| AccountListEntry {
                    user_id: a.user_id.clone(),
                    nick: a.nick.clone(),
                    face_url: a.face_url.clone(),
                })
                .collect();
            sink.drain(client.import_accounts(entries, shape, options), |_| {
                ("Imported".into(), None)
            })
            .await
        }
        Job::Check => {
            sink.drain(client.check_accounts(ids(), options), |s| {
                (status_name(*s).into(), None)
            })
            .await
        }
        Job::DryRunDelete => {
            sink.drain_dry_run(client.check_accounts(ids(), options))
                .await
        }
        Job::Delete => {
            sink.drain(client.delete_accounts(ids(), options), |_| {
                ("Deleted".into(), None)
            })
            .await
        }
        Job::Kick => {
            sink.drain(client.kick_accounts(ids(), options), |_| {
                ("Kicked".into(), None)
            })
            .await
        }
        Job::Online { detail } => {
            sink.drain(client.online_status(ids(), detail, options), |r| {
                (r.status.clone(), r.detail.clone())
            })
            .await
        }
    }
}
