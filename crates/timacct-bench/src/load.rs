//! The HTTP load generator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::account_name;

#[derive(Clone, Copy, ValueEnum)]
pub enum Mode {
    /// `account_check` of 100 IDs: 50 among the first `accounts`, 50 never imported.
    Check,
    /// `multiaccount_import` of 100 new IDs per call (`AccountList` shape).
    Import,
    /// POST a fixed file body to `--path` (for the nginx floor).
    Static,
}

#[derive(Args)]
pub struct LoadArgs {
    /// host:port of the server.
    #[arg(long)]
    addr: String,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, default_value_t = 1400000000)]
    sdkappid: u32,
    #[arg(long, default_value = "")]
    usersig: String,
    /// Accounts known to exist (`u00000000` ...), for check bodies.
    #[arg(long, default_value_t = 1_000_000)]
    accounts: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Open loop: total requests per second (0 = closed loop, as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Path for static mode.
    #[arg(long, default_value = "/")]
    path: String,
    /// First import ID number (so repeated runs import new IDs).
    #[arg(long, default_value_t = 100_000_000)]
    import_base: u64,
    /// Label printed with the figures.
    #[arg(long, default_value = "load")]
    label: String,
}

struct Shared {
    next_import: AtomicU64,
    errors: AtomicU64,
}

fn check_body(seed: u64, accounts: u64) -> String {
    let mut s = String::with_capacity(3200);
    s.push_str("{\"CheckItem\":[");
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for k in 0..100 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if k > 0 {
            s.push(',');
        }
        let id = if k % 2 == 0 {
            (x >> 16) % accounts.max(1)
        } else {
            900_000_000 + (x >> 16) % 1_000_000
        };
        s.push_str("{\"UserID\":\"");
        s.push_str(&account_name(id));
        s.push_str("\"}");
    }
    s.push_str("]}");
    s
}

fn import_body(first: u64) -> String {
    let mut s = String::with_capacity(3200);
    s.push_str("{\"AccountList\":[");
    for k in 0..100 {
        if k > 0 {
            s.push(',');
        }
        s.push_str("{\"UserID\":\"");
        s.push_str(&account_name(first + k));
        s.push_str("\"}");
    }
    s.push_str("]}");
    s
}

pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(args))
}

async fn run_async(args: LoadArgs) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let shared = Arc::new(Shared {
        next_import: AtomicU64::new(args.import_base),
        errors: AtomicU64::new(0),
    });
    let static_body = Bytes::from(vec![b'{', b'}']);
    let path_and_query = match args.mode {
        Mode::Check => format!(
            "/v4/im_open_login_svc/account_check?sdkappid={}&identifier=administrator&usersig={}&random=1&contenttype=json",
            args.sdkappid, args.usersig
        ),
        Mode::Import => format!(
            "/v4/im_open_login_svc/multiaccount_import?sdkappid={}&identifier=administrator&usersig={}&random=1&contenttype=json",
            args.sdkappid, args.usersig
        ),
        Mode::Static => args.path.clone(),
    };
    // Pre-build a ring of check bodies so body construction stays off the measurement.
    let check_bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..1024)
            .map(|i| Bytes::from(check_body(i, args.accounts)))
            .collect(),
    );
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let args = args.clone();
        let shared = shared.clone();
        let pq = path_and_query.clone();
        let check_bodies = check_bodies.clone();
        let static_body = static_body.clone();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&args.addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut latencies: Vec<u32> = Vec::new();
            let interval = if args.rate > 0.0 {
                Some(Duration::from_secs_f64(args.connections as f64 / args.rate))
            } else {
                None
            };
            // Spread the open-loop schedule of the connections over one interval.
            let mut scheduled = start
                + interval
                    .map(|i| i.mul_f64(c as f64 / args.connections as f64))
                    .unwrap_or_default();
            let mut n = c as u64;
            loop {
                if let Some(i) = interval {
                    scheduled += i;
                    tokio::time::sleep_until(scheduled.into()).await;
                } else {
                    scheduled = Instant::now();
                }
                if Instant::now() >= deadline {
                    break;
                }
                let body = match args.mode {
                    Mode::Check => check_bodies[(n % 1024) as usize].clone(),
                    Mode::Import => Bytes::from(import_body(
                        shared.next_import.fetch_add(100, Ordering::Relaxed),
                    )),
                    Mode::Static => static_body.clone(),
                };
                n += args.connections as u64;
                let req = hyper::Request::post(pq.as_str())
                    .header("host", args.addr.as_str())
                    .body(Full::new(body))?;
                sender.ready().await?;
                let resp = sender.send_request(req).await?;
                let ok_status = resp.status() == 200;
                let bytes = resp.into_body().collect().await?.to_bytes();
                let ok = ok_status
                    && match args.mode {
                        Mode::Static => true,
                        _ => bytes.windows(13).take(64).any(|w| w == b"\"ErrorCode\":0"),
                    }
                    && match args.mode {
                        Mode::Import => bytes.ends_with(b"\"FailAccounts\":[]}"),
                        _ => true,
                    };
                if !ok {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(scheduled.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let secs = start.elapsed().as_secs_f64().min(args.duration).max(1e-9);
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let rps = all.len() as f64 / secs;
    println!(
        "{} requests={} rps={:.0} p50_us={} p99_us={} p999_us={} errors={}",
        args.label,
        all.len(),
        rps,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        shared.errors.load(Ordering::Relaxed)
    );
    Ok(())
}
