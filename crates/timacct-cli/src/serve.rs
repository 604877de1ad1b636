//! `timacct serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use timacct_server::{Config, RedisRateLimiter, ServerBuilder};
use timacct_store::{OpenOptions, OpenedStore, PostgresOptions, Target};
use timacct_usersig::UserSigGenerator;

use crate::data_dir::{DataDir, SQLITE_FILE};

#[derive(Args)]
pub struct ServeArgs {
    /// Config file listing the apps (TOML, see README). Without it, a default app is created.
    #[arg(long, env = "TIMACCT_CONFIG")]
    config: Option<PathBuf>,
    /// Where the SQLite database (and the default app's key) live.
    #[arg(long, env = "TIMACCT_DATA_DIR", default_value = "./timacct-data")]
    data_dir: PathBuf,
    /// Threads serving requests (default: one per core). 1 serves everything on one thread,
    /// the cheapest setting for a one-core deployment.
    #[arg(long, env = "TIMACCT_THREADS")]
    threads: Option<usize>,
    /// Address to listen on.
    #[arg(long, env = "TIMACCT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// PostgreSQL database to keep accounts in (postgres://user[:password]@host:port/db),
    /// shared by every instance given the same URL. Without it: SQLite in --data-dir.
    // hide_env_values: the URL may carry a password, which --help must not print.
    #[arg(long, env = "TIMACCT_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Most connections this instance opens to PostgreSQL (instances x this must stay below
    /// the server's max_connections).
    #[arg(long, env = "TIMACCT_DATABASE_POOL_SIZE", default_value_t = 16)]
    database_pool_size: usize,
    /// Redis holding the rate-limit counters (redis://[:password@]host:port[/db]), so that
    /// the limits hold for all instances together. Without it: limits hold per instance.
    #[arg(long, env = "TIMACCT_REDIS", hide_env_values = true)]
    redis: Option<String>,
    /// Prefix of every Redis key, so that deployments sharing one Redis keep apart limits.
    #[arg(long, env = "TIMACCT_REDIS_KEY_PREFIX", default_value = "timacct:")]
    redis_key_prefix: String,
    #[command(flatten)]
    server: crate::serve_opts::ServerOptions,
}

/// Where accounts are kept: the PostgreSQL database of `--database` (a URL or a libpq
/// `key=value` string), else the SQLite file in the data directory.
async fn open_store(args: &ServeArgs) -> anyhow::Result<OpenedStore> {
    let options = OpenOptions {
        postgres: PostgresOptions {
            max_connections: args.database_pool_size.max(1),
            ..PostgresOptions::default()
        },
    };
    match &args.database {
        // Errors never contain the URL, so a password cannot reach the terminal.
        Some(url) => timacct_store::open(Target::Postgres(url.clone()), &options)
            .await
            .context("opening the PostgreSQL database (--database)"),
        None => {
            let db = args.data_dir.join(SQLITE_FILE);
            timacct_store::open(db.as_path(), &options)
                .await
                .with_context(|| format!("opening {}", db.display()))
        }
    }
}

/// `--threads 1` runs everything on one thread (tokio's current-thread scheduler), which
/// spends less per wake-up than a one-worker multi-thread pool; any other number is a
/// multi-thread pool of that many workers, and no flag means one worker per core.
fn build_runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    }
}

pub fn run(args: ServeArgs) -> ExitCode {
    args.server.init_logging();
    let runtime = match build_runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("timacct: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("timacct: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn serve(mut args: ServeArgs) -> anyhow::Result<()> {
    // A variable set to nothing (`TIMACCT_DATABASE=` in a compose file or a unit) means "not
    // given", not a URL that cannot be parsed.
    args.database = args.database.filter(|url| !url.trim().is_empty());
    args.redis = args.redis.filter(|url| !url.trim().is_empty());
    // Everything that can be checked without touching the disk comes first, so that a
    // start-up that fails on its flags or its config creates nothing.
    let tls = args.server.tls()?;
    let configured = match &args.config {
        Some(path) => Some(Config::load(path)?.apps),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    // The data directory holds the SQLite file and the default app's key, when used. With
    // SQLite it belongs to this server alone (its in-memory index must be the only one).
    let data_dir = if args.database.is_none() || configured.is_none() {
        Some(DataDir::open(&args.data_dir, args.database.is_none())?)
    } else {
        None
    };
    match start(&args, tls, configured, listener, data_dir.as_ref()).await {
        Ok(running) => running.await,
        Err(e) => {
            if let Some(dir) = data_dir {
                dir.discard();
            }
            Err(e)
        }
    }
}

/// Open the store and Redis and print the banner: the last steps of start-up. What it
/// returns serves until shutdown; an error here means nothing was served yet.
async fn start(
    args: &ServeArgs,
    tls: Option<Arc<timacct_server::TlsServerConfig>>,
    configured: Option<Vec<timacct_server::AppConfig>>,
    listener: tokio::net::TcpListener,
    data_dir: Option<&DataDir>,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let (apps, generated) = match configured {
        Some(apps) => (apps, false),
        None => (
            vec![timacct_server::config::default_app(&args.data_dir)?],
            true,
        ),
    };
    let backend = open_store(args).await?;
    if let (Some(dir), None) = (data_dir, &args.database) {
        dir.restrict_sqlite_files()?;
    }
    let redis = match &args.redis {
        Some(url) => Some(
            RedisRateLimiter::connect(url, args.redis_key_prefix.as_str())
                .await
                .context("connecting to Redis (--redis)")?,
        ),
        None => None,
    };
    if args.database.is_some() {
        if redis.is_none() {
            tracing::warn!(
                "no --redis: rate limits hold per instance, so N instances allow N times the limits"
            );
        }
        if generated {
            tracing::warn!(
                "no --config: other instances on this database must share this --data-dir (its default-app.key), or use one --config"
            );
        }
    }
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    if generated {
        print_default_app(&apps[0], scheme, addr);
    }
    let limits = match &redis {
        Some(r) => format!("shared in {}", r.description()),
        None => "per instance".to_owned(),
    };
    println!(
        "timacct listening on {scheme}://{addr} (data: {}; rate limits: {limits})",
        backend.description()
    );
    tracing::info!(%addr, apps = apps.len(), "serving");
    let mut builder = ServerBuilder::new(apps, backend.store()).limits(args.server.limits());
    if let Some(redis) = redis {
        builder = builder.redis(redis);
    }
    if let Some(tls) = tls {
        builder = builder.tls(tls);
    }
    let server = builder.build();
    Ok(async move {
        server.serve(listener, shutdown_signal()).await?;
        backend.close();
        tracing::info!("stopped");
        Ok(())
    })
}

/// A new user's first screen: everything needed to call the service at once. Printed to
/// stdout on purpose (never to the log).
fn print_default_app(app: &timacct_server::AppConfig, scheme: &str, addr: SocketAddr) {
    let admin = app
        .admins
        .first()
        .map(String::as_str)
        .unwrap_or("administrator");
    let sig = UserSigGenerator::new(u64::from(app.sdkappid), app.key.expose()).gen(
        admin,
        180 * 86_400,
        timacct_proto::unix_now(),
    );
    println!("No --config given: serving the default app.");
    println!("  SDKAppID: {}", app.sdkappid);
    println!("  admin:    {admin}");
    println!("  key:      {}", app.key.expose());
    println!("  UserSig:  {sig}");
    println!("Try:");
    println!(
        "  curl -s '{scheme}://{addr}/v4/im_open_login_svc/account_check?sdkappid={}&identifier={admin}&usersig={sig}&random=1&contenttype=json' -d '{{\"CheckItem\":[{{\"UserID\":\"alice\"}}]}}'",
        app.sdkappid
    );
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
