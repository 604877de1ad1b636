//! `timacct import | check | delete | kick | online`: manage accounts in bulk, against a
//! timacct server or Tencent's own cloud.
//!
//! This file is what the user types (the commands and their arguments) and the way in
//! ([`run`]). The rest of the folder has one job per file: [`job`] runs a command from its
//! input to its last row, [`connect`] builds the client it calls through, [`sink`] turns
//! results into rows, [`progress`] draws the bar, [`ctrl_c`] stops a job cleanly,
//! [`confirm_delete`] asks before deleting, [`summary`] prints the last lines, and
//! [`exit_code`] names how a job can end.

mod confirm_delete;
mod connect;
mod ctrl_c;
mod exit_code;
mod job;
mod progress;
mod sink;
mod summary;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use timacct_client::ImportShape;

use crate::output::Format;
use job::Job;

/// The account commands.
#[derive(Subcommand)]
pub enum AccountCommand {
    /// Import accounts (multiaccount_import, 100 per call).
    #[command(after_help = exit_code::HELP)]
    Import(ImportArgs),
    /// Check whether accounts are imported (account_check, 100 per call).
    #[command(after_help = exit_code::HELP)]
    Check(CommonArgs),
    /// Delete accounts (account_delete, 100 per call). Cannot be undone.
    #[command(after_help = exit_code::HELP)]
    Delete(DeleteArgs),
    /// Invalidate accounts' login state (kick, one call per account).
    #[command(after_help = exit_code::HELP)]
    Kick(CommonArgs),
    /// Query accounts' online state (query_online_status, 500 per call).
    #[command(after_help = exit_code::HELP)]
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
            return ExitCode::from(exit_code::USAGE_OR_CONNECTION);
        }
    };
    let (job, common, confirmed) = job_of(command);
    match runtime.block_on(job::execute(job, common, confirmed)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("timacct: {e:#}");
            ExitCode::from(exit_code::USAGE_OR_CONNECTION)
        }
    }
}

/// The job a command asks for, the arguments it shares with the others, and whether it may
/// go ahead without asking (only `delete` without `--yes` or `--dry-run` must ask).
fn job_of(command: AccountCommand) -> (Job, CommonArgs, bool) {
    match command {
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
    }
}
