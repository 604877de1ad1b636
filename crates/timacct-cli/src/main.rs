//! `timacct`: serve Tencent Cloud Chat's account REST API, and make or check UserSigs.
//!
//! Exit codes: 0 success; 1 the thing checked is invalid (`sig verify`); 2 usage, config or
//! start-up error.

mod serve;
mod sig;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// timacct: a wire-compatible Tencent Cloud Chat account service, and tools for it.
#[derive(Parser)]
#[command(name = "timacct", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 success, 1 invalid (sig verify), 2 usage or start-up error.")]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Sig(cmd) => sig::run(cmd),
    }
}
