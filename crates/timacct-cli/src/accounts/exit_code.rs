//! The exit codes of the account commands, beside the `--help` text that documents them, so
//! that the two cannot drift apart.

/// Every account succeeded.
pub(super) const OK: u8 = 0;
/// The job ran to the end, and some accounts failed.
pub(super) const SOME_FAILED: u8 = 1;
/// Usage error, or the service could not be used (connection, credentials, an API it does
/// not offer), so the job stopped.
pub(super) const USAGE_OR_CONNECTION: u8 = 2;
/// Interrupted by Ctrl-C (128 + SIGINT, as shells report it).
pub(super) const INTERRUPTED: u8 = 130;

/// The codes as each account command's `--help` lists them.
pub(super) const HELP: &str = "\
Exit codes:
  0    every account succeeded
  1    the job ran to the end and some accounts failed (see their rows)
  2    usage error, or a connection / credentials / service error stopped the job
  130  interrupted (Ctrl-C): nothing more was sent, the requests already sent were answered;
       continue with --resume-from N";
