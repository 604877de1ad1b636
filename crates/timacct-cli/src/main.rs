//! `timacct`: serve Tencent Cloud Chat's account REST API, make or check UserSigs, and
//! manage accounts in bulk against timacct or Tencent's cloud.
//!
//! Exit codes: 0 success; 1 the thing checked is invalid (`sig verify`) or some accounts
//! failed (account commands); 2 usage, config, connection or start-up error; 130 an account
//! command interrupted by Ctrl-C.

mod accounts;
mod data_dir;
mod input;
mod output;
mod serve;
mod serve_opts;
mod sig;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// timacct: a wire-compatible Tencent Cloud Chat account service, and tools for it.
#[derive(Parser)]
#[command(name = "timacct", version, about, long_about = None)]
#[command(after_help = "\
Exit codes:
  0    success
  1    invalid (sig verify), or some accounts failed (import, check, delete, kick, online)
  2    usage, config, connection or start-up error
  130  an account command interrupted by Ctrl-C (continue with --resume-from N)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the account service.
    Serve(serve::ServeArgs),
    /// Generate or verify a UserSig (TLSSigAPIv2).
    #[command(subcommand)]
    Sig(sig::SigCommand),
    #[command(flatten)]
    Accounts(accounts::AccountCommand),
    /// Print shell completions, e.g. `timacct completions bash > ~/.local/share/bash-completion/completions/timacct`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Sig(cmd) => sig::run(cmd),
        Command::Accounts(cmd) => accounts::run(cmd),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "timacct", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}
