//! `timacct serve`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use timacct_server::{AppState, Config};
use timacct_store::SqliteStore;
use timacct_usersig::UserSigGenerator;

#[derive(Args)]
pub struct ServeArgs {
    /// Config file listing the apps (TOML, see README). Without it, a default app is created.
    #[arg(long, env = "TIMACCT_CONFIG")]
    config: Option<PathBuf>,
    /// Where the SQLite database (and the default app's key) live.
    #[arg(long, env = "TIMACCT_DATA_DIR", default_value = "./timacct-data")]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "TIMACCT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

pub fn run(args: ServeArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (apps, generated) = match &args.config {
        Some(path) => (Config::load(path)?.apps, false),
        None => (
            vec![timacct_server::config::default_app(&args.data_dir)?],
            true,
        ),
    };
    let db = args.data_dir.join("timacct.db");
    let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    if generated {
        print_default_app(&apps[0], addr);
    }
    println!(
        "timacct listening on http://{addr} (data: {})",
        db.display()
    );
    tracing::info!(%addr, apps = apps.len(), "serving");
    let state = AppState::new(apps, Arc::new(store.clone()));
    timacct_server::serve(listener, state, shutdown_signal()).await?;
    store.close();
    tracing::info!("stopped");
    Ok(())
}

/// A new user's first screen: everything needed to call the service at once. Printed to
/// stdout on purpose (never to the log).
fn print_default_app(app: &timacct_server::AppConfig, addr: SocketAddr) {
    let admin = app
        .admins
        .first()
        .map(String::as_str)
        .unwrap_or("administrator");
    let sig = UserSigGenerator::new(u64::from(app.sdkappid), app.key.expose()).gen(
        admin,
        180 * 86_400,
        timacct_server::unix_now(),
    );
    println!("No --config given: serving the default app.");
    println!("  SDKAppID: {}", app.sdkappid);
    println!("  admin:    {admin}");
    println!("  key:      {}", app.key.expose());
    println!("  UserSig:  {sig}");
    println!("Try:");
    println!(
        "  curl -s 'http://{addr}/v4/im_open_login_svc/account_check?sdkappid={}&identifier={admin}&usersig={sig}&random=1&contenttype=json' -d '{{\"CheckItem\":[{{\"UserID\":\"alice\"}}]}}'",
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
