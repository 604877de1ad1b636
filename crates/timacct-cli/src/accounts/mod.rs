//! `timacct import | check | delete | kick | online`: manage accounts in bulk, against a
//! timacct server or Tencent's own cloud.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use timacct_client::{
    AccountListEntry, AccountStatus, Api, BulkOptions, BulkStream, CancelFlag, Client, Endpoint,
    ImportShape, ItemResult, Pacing, RetryPolicy, SigLifetime, Stopped,
};
use timacct_proto::{MAX_BATCH, MAX_ONLINE_BATCH};

use crate::input::{self, InputAccount};
use crate::output::{Format, Row, RowWriter};

/// Exit code: every account succeeded.
const EXIT_OK: u8 = 0;
/// Exit code: the job ran to the end, and some accounts failed.
const EXIT_SOME_FAILED: u8 = 1;
/// Exit code: usage error, or the service could not be used (connection, credentials, an
/// API it does not offer), so the job stopped.
const EXIT_USAGE_OR_CONNECTION: u8 = 2;
/// Exit code: interrupted by Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    every account succeeded
  1    the job ran to the end and some accounts failed (see their rows)
  2    usage error, or a connection / credentials / service error stopped the job
  130  interrupted (Ctrl-C): nothing more was sent, the requests already sent were answered;
       continue with --resume-from N";

/// The account commands.
#[derive(Subcommand)]
pub enum AccountCommand {
    /// Import accounts (multiaccount_import, 100 per call).
    #[command(after_help = EXIT_CODES_HELP)]
    Import(ImportArgs),
    /// Check whether accounts are imported (account_check, 100 per call).
    #[command(after_help = EXIT_CODES_HELP)]
    Check(CommonArgs),
    /// Delete accounts (account_delete, 100 per call). Cannot be undone.
    #[command(after_help = EXIT_CODES_HELP)]
    Delete(DeleteArgs),
    /// Invalidate accounts' login state (kick, one call per account).
    #[command(after_help = EXIT_CODES_HELP)]
    Kick(CommonArgs),
    /// Query accounts' online state (query_online_status, 500 per call).
    #[command(after_help = EXIT_CODES_HELP)]
    Online(OnlineArgs),
}

/// How to reach the service and as whom.
#[derive(Args)]
pub struct ConnectionArgs {
    /// Where to call: a base URL (e.g. http://127.0.0.1:8080) or a Tencent region: china,
    /// singapore, seoul, tokyo, frankfurt, mumbai, silicon-valley, jakarta (HTTPS, with the
    /// documented backup host).
    #[arg(long, env = "TIMACCT_ENDPOINT")]
    endpoint: String,
    /// A base URL to fail over to when the endpoint cannot be reached (a connection error,
    /// never an answer); replaces a region's documented backup host.
    #[arg(long, env = "TIMACCT_BACKUP_ENDPOINT", value_name = "URL")]
    backup_endpoint: Option<String>,
    /// The app's SDKAppID.
    #[arg(long, env = "TIMACCT_SDKAPPID")]
    sdkappid: u32,
    /// The app's secret key; admin UserSigs are made from it (and renewed) as needed.
    #[arg(long, env = "TIMACCT_KEY", hide_env_values = true)]
    key: String,
    /// The App admin to call as.
    #[arg(long, env = "TIMACCT_ADMIN", default_value = "administrator")]
    admin: String,
    /// Calls per second for this command's API [default: Tencent's documented limit].
    #[arg(long, value_name = "CALLS_PER_SEC")]
    rate: Option<f64>,
    /// Batches in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Attempts per call, the first included (1: never retry).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    attempts: u32,
    /// Seconds one attempt may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Validity of the admin UserSigs, in seconds; each is replaced after two thirds of it.
    #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..))]
    sig_expire: u64,
}

/// Which accounts, and how to show the results.
#[derive(Args)]
pub struct InputArgs {
    /// UserIDs (or use --file).
    #[arg(value_name = "USERID", conflicts_with = "file")]
    ids: Vec<String>,
    /// Read UserIDs from a file (- for stdin): one per line, or CSV with a header row
    /// naming a UserID column (import also reads Nick and FaceUrl columns).
    #[arg(long, short = 'f', value_name = "PATH")]
    file: Option<PathBuf>,
    /// Skip the first N input UserIDs, to continue an interrupted or stopped job.
    #[arg(long, value_name = "N", default_value_t = 0)]
    resume_from: usize,
    /// Output format [default: table on a terminal, json (one object per line) otherwise].
    #[arg(long, short = 'o', value_enum)]
    output: Option<Format>,
}

/// Arguments every account command takes.
#[derive(Args)]
pub struct CommonArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    input: InputArgs,
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Request body: accounts (UserIDs only), account-list (with Nick and FaceUrl), or
    /// auto (account-list when the input has Nick or FaceUrl).
    #[arg(long, value_enum, default_value_t = ShapeArg::Auto)]
    shape: ShapeArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ShapeArg {
    Auto,
    Accounts,
    AccountList,
}

#[derive(Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Delete without asking.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Delete nothing: check the accounts and show which would be deleted.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
pub struct OnlineArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Also show each platform's state.
    #[arg(long)]
    detail: bool,
}

pub fn run(command: AccountCommand) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("timacct: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_USAGE_OR_CONNECTION);
        }
    };
    match runtime.block_on(execute(command)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("timacct: {e:#}");
            ExitCode::from(EXIT_USAGE_OR_CONNECTION)
        }
    }
}

/// What one command does, once its arguments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Import(ImportShape),
    Check,
    Delete,
    DryRunDelete,
    Kick,
    Online { detail: bool },
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Import(_) => "import",
            Job::Check => "check",
            Job::Delete => "delete",
            Job::DryRunDelete => "delete --dry-run",
            Job::Kick => "kick",
            Job::Online { .. } => "online",
        }
    }

    fn api(self) -> Api {
        match self {
            Job::Import(_) => Api::MultiAccountImport,
            Job::Check | Job::DryRunDelete => Api::AccountCheck,
            Job::Delete => Api::AccountDelete,
            Job::Kick => Api::Kick,
            Job::Online { .. } => Api::QueryOnlineStatus,
        }
    }

    fn batch_size(self) -> usize {
        match self {
            Job::Kick => 1,
            Job::Online { .. } => MAX_ONLINE_BATCH,
            _ => MAX_BATCH,
        }
    }
}

async fn execute(command: AccountCommand) -> anyhow::Result<u8> {
    let (job, common, confirmed) = match command {
        AccountCommand::Import(a) => {
            let shape = match a.shape {
                ShapeArg::Auto => ImportShape::Auto,
                ShapeArg::Accounts => ImportShape::Accounts,
                ShapeArg::AccountList => ImportShape::AccountList,
            };
            (Job::Import(shape), a.common, true)
        }
        AccountCommand::Check(a) => (Job::Check, a, true),
        AccountCommand::Delete(a) if a.dry_run => (Job::DryRunDelete, a.common, true),
        AccountCommand::Delete(a) => (Job::Delete, a.common, a.yes),
        AccountCommand::Kick(a) => (Job::Kick, a, true),
        AccountCommand::Online(a) => (Job::Online { detail: a.detail }, a.common, true),
    };
    let CommonArgs { connection, input } = common;
    let mut endpoint = Endpoint::parse(&connection.endpoint)?;
    if let Some(backup) = &connection.backup_endpoint {
        endpoint = endpoint.with_backup(backup)?;
    }
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
        return Ok(EXIT_OK);
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
    let client = build_client(&connection, endpoint, job.api())?;

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
    let bar = progress_bar(total, job.batch_size());
    let cancel = CancelFlag::new();
    let ctrl_c = watch_ctrl_c(cancel.clone(), bar.clone());
    let options = BulkOptions {
        concurrency: usize::from(connection.concurrency),
        progress: None,
        cancel,
    };

    let ids = || {
        accounts
            .iter()
            .map(|a| a.user_id.clone())
            .collect::<Vec<_>>()
    };
    let mut sink = Sink {
        writer: &mut writer,
        bar: bar.as_ref(),
        rows_on_terminal: std::io::stdout().is_terminal(),
        pending: Vec::new(),
        flush_every: job.batch_size(),
        skip,
        done: 0,
        failed: 0,
        would_delete: 0,
    };
    let stopped = match job {
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
    };
    let (done, failed, would_delete) = (sink.done, sink.failed, sink.would_delete);
    // From here on only the summary (or the error) is printed: no more "interrupted" line,
    // and no bar.
    ctrl_c.close();
    remove_bar(bar.as_ref());
    let stopped = stopped?;
    writer.flush()?;

    let stats = client.stats();
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
    Ok(match stopped {
        None if failed > 0 => EXIT_SOME_FAILED,
        None => EXIT_OK,
        Some(Stopped::Cancelled { .. }) => {
            eprintln!(
                "timacct: interrupted after {reached} of {input_total} accounts; to continue, run the same command with --resume-from {reached}"
            );
            EXIT_INTERRUPTED
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
            EXIT_USAGE_OR_CONNECTION
        }
    })
}

fn status_name(status: AccountStatus) -> &'static str {
    match status {
        AccountStatus::Imported => "Imported",
        AccountStatus::NotImported => "NotImported",
    }
}

fn build_client(
    connection: &ConnectionArgs,
    endpoint: Endpoint,
    api: Api,
) -> anyhow::Result<Client> {
    let mut pacing = Pacing::documented();
    if let Some(rate) = connection.rate {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("--rate must be a positive number of calls per second");
        }
        pacing = pacing.with(api, rate);
    }
    Ok(
        Client::builder(endpoint, connection.sdkappid, connection.key.clone())
            .admin(connection.admin.clone())
            .sig_lifetime(SigLifetime::new(Duration::from_secs(connection.sig_expire)))
            .pacing(pacing)
            .retry(RetryPolicy {
                max_attempts: connection.attempts,
                ..RetryPolicy::default()
            })
            .timeout(Duration::from_secs(connection.timeout.max(1)))
            .build()?,
    )
}

/// Ask on the terminal before deleting; without a terminal, refuse rather than guess.
fn confirm_delete(
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

/// A progress bar on stderr, only on a terminal and only for more than one batch.
fn progress_bar(total: usize, batch_size: usize) -> Option<ProgressBar> {
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

/// The Ctrl-C handler of a job: the first Ctrl-C stops the job (nothing more is sent, the
/// requests already sent are answered), the second quits at once.
struct CtrlC {
    /// Set once the job is over and its summary is about to be printed; the handler prints
    /// nothing after that, so the summary stays the last thing on the screen.
    closed: Arc<Mutex<bool>>,
}

impl CtrlC {
    /// The job is over: from now on a Ctrl-C prints nothing and changes nothing.
    fn close(&self) {
        *lock(&self.closed) = true;
    }
}

fn lock(closed: &Mutex<bool>) -> MutexGuard<'_, bool> {
    closed.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Take the progress bar off the screen for good: cleared, and never drawn again however
/// it is updated (the rows of the requests still being answered are written all the same).
fn remove_bar(bar: Option<&ProgressBar>) {
    if let Some(bar) = bar {
        bar.finish_and_clear();
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
}

fn watch_ctrl_c(cancel: CancelFlag, bar: Option<ProgressBar>) -> CtrlC {
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
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
    });
    CtrlC { closed }
}

/// Where results go: the row writer, the progress bar, the counts.
struct Sink<'a> {
    writer: &'a mut RowWriter,
    bar: Option<&'a ProgressBar>,
    rows_on_terminal: bool,
    /// Rows held back while the bar is drawn on the same terminal, written a batch at a
    /// time so the bar is not redrawn under every row.
    pending: Vec<Row>,
    flush_every: usize,
    skip: usize,
    done: usize,
    failed: usize,
    would_delete: usize,
}

impl Sink<'_> {
    /// Write a row per item until the job ends; the reason it stopped early, if it did.
    async fn drain<T>(
        &mut self,
        mut stream: BulkStream<T>,
        success: impl Fn(&T) -> (String, Option<Vec<timacct_client::OnlineDetail>>),
    ) -> anyhow::Result<Option<Stopped>> {
        while let Some(next) = stream.next().await {
            let item = match next {
                Ok(item) => item,
                Err(stopped) => {
                    self.flush_pending()?;
                    return Ok(Some(stopped));
                }
            };
            let row = self.row(item, &success);
            self.emit(&row)?;
        }
        self.flush_pending()?;
        Ok(None)
    }

    /// `delete --dry-run`: check, and call the imported accounts what would be deleted.
    async fn drain_dry_run(
        &mut self,
        mut stream: BulkStream<AccountStatus>,
    ) -> anyhow::Result<Option<Stopped>> {
        while let Some(next) = stream.next().await {
            let item = match next {
                Ok(item) => item,
                Err(stopped) => {
                    self.flush_pending()?;
                    return Ok(Some(stopped));
                }
            };
            let mut row = self.row(item, |s| (status_name(*s).into(), None));
            if row.result == "Imported" {
                row.result = "WouldDelete".into();
                self.would_delete += 1;
            } else if row.result == "NotImported" {
                row.info = "not imported: deleting it would fail with 70107".into();
            }
            self.emit(&row)?;
        }
        self.flush_pending()?;
        Ok(None)
    }

    fn row<T>(
        &self,
        item: ItemResult<T>,
        success: impl Fn(&T) -> (String, Option<Vec<timacct_client::OnlineDetail>>),
    ) -> Row {
        let index = self.skip + item.index;
        match item.outcome {
            Ok(value) => {
                let (result, detail) = success(&value);
                Row {
                    index,
                    user_id: item.user_id,
                    result,
                    code: Some(0),
                    info: String::new(),
                    random: None,
                    detail,
                }
            }
            Err(failure) => Row {
                index,
                user_id: item.user_id,
                result: "Failed".into(),
                code: failure.code,
                info: failure.info,
                random: failure.random,
                detail: None,
            },
        }
    }

    /// Write the rows held back for the bar.
    fn flush_pending(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let writer = &mut *self.writer;
        let mut write_all = || rows.iter().try_for_each(|row| writer.write(row));
        match self.bar {
            Some(bar) => bar.suspend(write_all),
            None => write_all(),
        }
    }

    fn emit(&mut self, row: &Row) -> anyhow::Result<()> {
        self.done += 1;
        if row.failed() {
            self.failed += 1;
        }
        match self.bar {
            // Rows and the bar share the screen only when stdout is a terminal too.
            Some(bar) if self.rows_on_terminal => {
                self.pending.push(row.clone());
                bar.inc(1);
                if self.pending.len() >= self.flush_every {
                    self.flush_pending()?;
                }
            }
            Some(bar) => {
                self.writer.write(row)?;
                bar.inc(1);
            }
            None => self.writer.write(row)?,
        }
        Ok(())
    }
}
