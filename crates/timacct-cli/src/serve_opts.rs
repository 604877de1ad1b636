//! The `serve` flags for overload, timeouts, security, logging and TLS, kept apart from the
//! storage flags in `serve.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use timacct_server::ServerLimits;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Args)]
pub struct ServerOptions {
    /// Requests handled at once; more wait in a queue, then get 60018 (retryable).
    #[arg(long, env = "TIMACCT_MAX_CONCURRENT_REQUESTS", default_value_t = ServerLimits::default().max_concurrent_requests)]
    pub max_concurrent_requests: usize,
    /// Requests that may wait for a slot; one more gets 60018 at once.
    #[arg(long, env = "TIMACCT_MAX_QUEUED_REQUESTS", default_value_t = ServerLimits::default().max_queued_requests)]
    pub max_queued_requests: usize,
    /// How long a request may wait for a slot, in milliseconds, before it gets 60018.
    #[arg(long, env = "TIMACCT_QUEUE_TIMEOUT_MS", default_value_t = 1000)]
    pub queue_timeout_ms: u64,
    /// Open client connections; one more is answered 60018 and closed.
    #[arg(long, env = "TIMACCT_MAX_CONNECTIONS", default_value_t = ServerLimits::default().max_connections)]
    pub max_connections: usize,
    /// Seconds from a request's first byte to the end of its headers (slowloris guard).
    #[arg(long, env = "TIMACCT_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a keep-alive connection may sit without a request before it is closed.
    #[arg(long, env = "TIMACCT_IDLE_TIMEOUT", default_value_t = 60)]
    pub idle_timeout: u64,
    /// Seconds to receive a request body; past it, 60008.
    #[arg(long, env = "TIMACCT_BODY_TIMEOUT", default_value_t = 10)]
    pub body_timeout: u64,
    /// Seconds to handle a request once its body is in; past it, 60008.
    #[arg(long, env = "TIMACCT_REQUEST_TIMEOUT", default_value_t = 10)]
    pub request_timeout: u64,
    /// Refuse admin UserSigs valid for longer than this many seconds (TLS.expire), with
    /// 70003. Default: any validity, as Tencent.
    #[arg(long, env = "TIMACCT_MAX_USERSIG_AGE", value_name = "SECS")]
    pub max_usersig_age: Option<u64>,
    /// Busy polling, in microseconds: after each request the server polls its sockets for
    /// this long instead of sleeping, which takes the cost of waking a sleeping thread off
    /// the next request (lower median latency, one core kept busy while requests come).
    /// 0 (the default) turns it off; it never spins on an idle server.
    #[arg(long, env = "TIMACCT_BUSY_POLL_US", default_value_t = timacct_server::DEFAULT_BUSY_POLL_US)]
    pub busy_poll_us: u64,
    /// Log format on stderr (RUST_LOG sets the level; debug logs one line per request).
    #[arg(long, env = "TIMACCT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(
        long,
        env = "TIMACCT_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(
        long,
        env = "TIMACCT_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
}

impl ServerOptions {
    /// The server limits these flags describe.
    pub fn limits(&self) -> ServerLimits {
        ServerLimits {
            max_concurrent_requests: self.max_concurrent_requests.max(1),
            max_queued_requests: self.max_queued_requests,
            queue_timeout: Duration::from_millis(self.queue_timeout_ms),
            max_connections: self.max_connections.max(1),
            header_timeout: Duration::from_secs(self.header_timeout.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout.max(1)),
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            max_usersig_age: self.max_usersig_age,
            busy_poll: Duration::from_micros(self.busy_poll_us),
        }
    }

    /// Install the global log subscriber (stderr, `RUST_LOG` or `info`).
    pub fn init_logging(&self) {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        // Colours only on a terminal: escape codes in a log file break grep and collectors.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        match self.log_format {
            LogFormat::Text => builder.init(),
            LogFormat::Json => builder.json().flatten_event(true).init(),
        }
    }

    /// The TLS configuration, when asked for.
    pub fn tls(&self) -> anyhow::Result<Option<Arc<timacct_server::TlsServerConfig>>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(
                timacct_server::load_tls_config(cert, key)
                    .context("loading --tls-cert/--tls-key")?,
            )),
            _ => Ok(None),
        }
    }
}
