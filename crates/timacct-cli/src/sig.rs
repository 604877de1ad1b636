//! `timacct sig gen | verify`.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use timacct_usersig::{ExpectUserbuf, UserSigGenerator};

/// Tencent's default UserSig validity: 180 days.
const DEFAULT_EXPIRE: i64 = 180 * 86_400;

#[derive(Subcommand)]
pub enum SigCommand {
    /// Print a UserSig for an identifier.
    Gen(GenArgs),
    /// Decode a UserSig, print its fields and whether it is valid (and why not).
    Verify(VerifyArgs),
}

#[derive(Args)]
pub struct GenArgs {
    /// The app's SDKAppID.
    #[arg(long, env = "TIMACCT_SDKAPPID")]
    sdkappid: u32,
    /// The app's secret key.
    #[arg(long, env = "TIMACCT_KEY", hide_env_values = true)]
    key: String,
    /// The UserID the sig is for (an admin, for REST calls).
    #[arg(long)]
    identifier: String,
    /// Validity in seconds.
    #[arg(long, default_value_t = DEFAULT_EXPIRE)]
    expire: i64,
    /// Issue time (unix seconds) instead of now.
    #[arg(long, hide = true)]
    now: Option<i64>,
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The UserSig to check.
    #[arg(long)]
    usersig: String,
    /// The SDKAppID it must be for.
    #[arg(long, env = "TIMACCT_SDKAPPID")]
    sdkappid: Option<u32>,
    /// The app's secret key; without it only the fields are decoded.
    #[arg(long, env = "TIMACCT_KEY", hide_env_values = true)]
    key: Option<String>,
    /// The identifier it must be for (default: the one it carries).
    #[arg(long)]
    identifier: Option<String>,
    /// Check as of this unix time instead of now.
    #[arg(long)]
    now: Option<i64>,
}

fn now() -> i64 {
    timacct_proto::unix_now()
}

pub fn run(cmd: SigCommand) -> ExitCode {
    match cmd {
        SigCommand::Gen(a) => {
            let gen = UserSigGenerator::new(u64::from(a.sdkappid), &a.key);
            println!(
                "{}",
                gen.gen(&a.identifier, a.expire, a.now.unwrap_or_else(now))
            );
            ExitCode::SUCCESS
        }
        SigCommand::Verify(a) => verify(a),
    }
}

fn verify(a: VerifyArgs) -> ExitCode {
    let decoded = match timacct_usersig::decode(&a.usersig) {
        Ok(d) => d,
        Err(e) => {
            println!("valid: no");
            println!("reason: {}", e.reason());
            return ExitCode::from(1);
        }
    };
    let at = a.now.unwrap_or_else(now);
    println!("identifier: {}", decoded.identifier);
    println!("sdkappid: {}", decoded.sdkappid);
    println!("time: {}", decoded.time);
    println!("expire: {}", decoded.expire);
    println!("expires_at: {}", decoded.expires_at());
    if let Some(buf) = &decoded.userbuf_b64 {
        println!("userbuf: {buf}");
    }
    let Some(key) = a.key else {
        let state = if decoded.is_expired(at) {
            "expired"
        } else {
            "not expired"
        };
        println!("valid: unknown (no --key given; {state})");
        return ExitCode::SUCCESS;
    };
    let sdkappid = a.sdkappid.map(u64::from).unwrap_or(decoded.sdkappid);
    let identifier = a.identifier.unwrap_or_else(|| decoded.identifier.clone());
    match timacct_usersig::verify(
        &a.usersig,
        sdkappid,
        &key,
        &identifier,
        at,
        ExpectUserbuf::Any,
    ) {
        Ok(_) => {
            println!("valid: yes");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("valid: no");
            println!("reason: {}", e.reason());
            ExitCode::from(1)
        }
    }
}
