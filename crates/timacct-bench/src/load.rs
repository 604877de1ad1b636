//! The HTTP load generator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    /// host:port of the server; several, comma-separated, spread the connections over
    /// several instances in turn.
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
    /// Also print the answers counted in each second of the run (`timeline=n1,n2,...`), to
    /// show the first second after a start.
    #[arg(long)]
    timeline: bool,
    /// Label printed with the figures.
    #[arg(long, default_value = "load")]
    label: String,
}

/// How many different `account_check` bodies are sent in turn: enough that their 51,200
/// imported and unknown UserIDs spread over the whole index, so that the look-ups miss the
/// CPU caches as real traffic would (one fixed body keeps its 100 entries cached).
pub(crate) const CHECK_BODIES: u64 = 1024;

struct Shared {
    next_import: AtomicU64,
    errors: AtomicU64,
}

/// The `account_check` body number `seed`: 100 pseudo-random UserIDs, the even ones among
/// the first `accounts` (imported), the odd ones never imported. `timacct-bench bodies`
/// writes the same bodies for wrk, so that both generators send the same requests.
pub(crate) fn check_body(seed: u64, accounts: u64) -> String {
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
    let request = {
        let pq = path_and_query.clone();
        let host = args.addr.clone();
        move |body: &[u8]| -> Vec<u8> {
            let mut r = format!(
                "POST {pq} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        }
    };
    // Whole requests are built before the clock starts (for imports, each needs new IDs, so
    // they are built as they go: a few thousand per second), and the client speaks HTTP/1.1
    // over a raw socket: a full HTTP client library cost as much CPU as the server being
    // measured, and the generator must never be the bottleneck.
    let check_requests: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..CHECK_BODIES)
            .map(|i| request(check_body(i, args.accounts).as_bytes()))
            .collect(),
    );
    let static_request = Arc::new(request(b"{}"));
    let request = Arc::new(request);
    // 50 ms from now: time for every connection to open before the first request.
    let start = Instant::now() + Duration::from_millis(50);
    let deadline = start + Duration::from_secs_f64(args.duration);
    // Open loop: one dispatcher owns the schedule and hands each request's slot to whichever
    // connection is free (a client's connection pool), or queues it until one is: a slot
    // that waits for a connection waits because the server is slow, and that wait counts.
    let (slots, dispatcher) = if args.rate > 0.0 {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        let interval = Duration::from_secs_f64(1.0 / args.rate);
        let dispatcher = tokio::spawn(async move {
            let mut lags: Vec<u32> = Vec::new();
            let mut k: u32 = 0;
            loop {
                let slot = start + interval * k;
                if slot >= deadline {
                    break;
                }
                wait_until(slot).await;
                lags.push(micros(Instant::now().saturating_duration_since(slot)));
                if tx.send(slot).is_err() {
                    break;
                }
                k += 1;
            }
            lags
        });
        (
            Some(Arc::new(tokio::sync::Mutex::new(rx))),
            Some(dispatcher),
        )
    } else {
        (None, None)
    };
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let args = args.clone();
        let shared = shared.clone();
        let check_requests = check_requests.clone();
        let static_request = static_request.clone();
        let request = request.clone();
        let slots = slots.clone();
        let addrs: Vec<String> = args.addr.split(',').map(str::to_owned).collect();
        let addr = addrs[c % addrs.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut latencies: Vec<u32> = Vec::new();
            let mut on_wire: Vec<u32> = Vec::new();
            let mut seconds: Vec<u64> = Vec::new();
            // Every connection is open before the clock starts: the closed loop counts its
            // requests from `start` too.
            tokio::time::sleep_until(start.into()).await;
            let mut n = c as u64;
            loop {
                // When the request's latency starts: its slot in the open-loop schedule
                // (however late the generator got to it: no coordinated omission, and any
                // lag of the generator's own counts against the server, never for it), or
                // the moment it is sent in the closed loop.
                let started = match &slots {
                    Some(slots) => match slots.lock().await.recv().await {
                        Some(slot) => slot,
                        None => break,
                    },
                    None => {
                        if Instant::now() >= deadline {
                            break;
                        }
                        Instant::now()
                    }
                };
                let import;
                let req: &[u8] = match args.mode {
                    Mode::Check => &check_requests[(n % CHECK_BODIES) as usize],
                    Mode::Import => {
                        import = request(
                            import_body(shared.next_import.fetch_add(100, Ordering::Relaxed))
                                .as_bytes(),
                        );
                        &import
                    }
                    Mode::Static => &static_request,
                };
                n += args.connections as u64;
                let sent = Instant::now();
                stream.write_all(req).await?;
                let (status_ok, body) = read_response(&mut stream, &mut buf).await?;
                let ok = status_ok
                    && match args.mode {
                        Mode::Static => true,
                        _ => body.windows(13).take(64).any(|w| w == b"\"ErrorCode\":0"),
                    }
                    && match args.mode {
                        Mode::Import => body.ends_with(b"\"FailAccounts\":[]}"),
                        _ => true,
                    };
                if !ok {
                    shared.errors.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(micros(started.elapsed()));
                on_wire.push(micros(sent.elapsed()));
                let second = Instant::now().saturating_duration_since(start).as_secs() as usize;
                if args.timeline {
                    if seconds.len() <= second {
                        seconds.resize(second + 1, 0);
                    }
                    seconds[second] += 1;
                }
            }
            anyhow::Ok((latencies, on_wire, seconds))
        }));
    }
    let mut all = Vec::new();
    let mut wire = Vec::new();
    let mut timeline: Vec<u64> = Vec::new();
    for t in tasks {
        let (latencies, on_wire, seconds) = t.await??;
        all.extend(latencies);
        wire.extend(on_wire);
        if timeline.len() < seconds.len() {
            timeline.resize(seconds.len(), 0);
        }
        for (total, n) in timeline.iter_mut().zip(seconds) {
            *total += n;
        }
    }
    wire.sort_unstable();
    let secs = start.elapsed().as_secs_f64().min(args.duration).max(1e-9);
    all.sort_unstable();
    let rps = all.len() as f64 / secs;
    print!(
        "{} requests={} rps={:.0} p50_us={} p99_us={} p999_us={} max_us={} errors={}",
        args.label,
        all.len(),
        rps,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        all.last().copied().unwrap_or(0),
        shared.errors.load(Ordering::Relaxed)
    );
    if let Some(dispatcher) = dispatcher {
        // From the request's write to its answer: the part of the latency spent on the wire
        // and in the server, without the wait for a connection (the figures above include it).
        print!(
            " wire_p50_us={} wire_p99_us={} wire_max_us={}",
            percentile(&wire, 0.5),
            percentile(&wire, 0.99),
            wire.last().copied().unwrap_or(0)
        );
        // How late the generator itself released the slots: already inside the latencies
        // above (they count from the slot), printed so that a generator that fell behind is
        // seen.
        let mut lags = dispatcher.await?;
        lags.sort_unstable();
        print!(
            " gen_lag_p99_us={} gen_lag_max_us={}",
            percentile(&lags, 0.99),
            lags.last().copied().unwrap_or(0)
        );
    }
    if args.timeline {
        let per_second: Vec<String> = timeline
            .iter()
            .take(args.duration.ceil() as usize)
            .map(u64::to_string)
            .collect();
        print!(" timeline={}", per_second.join(","));
    }
    println!();
    Ok(())
}

fn micros(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// The `p` quantile of sorted samples.
fn percentile(sorted: &[u32], p: f64) -> u32 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

/// Wait until `t` to within a few microseconds. tokio's timers tick in milliseconds: a
/// schedule paced by them releases its requests in bursts, one burst per tick (at 25,000
/// requests/s, 25 requests at once, so the last of them waits for the 24 before it). Far
/// ahead of `t` the task sleeps on the timer; in the last 2 ms it yields in a loop, which
/// lets the runtime run the connections (and poll the sockets) between two looks at the
/// clock. That spins the generator's own core, never the server's, and gives way to any
/// other thread that is ready there.
async fn wait_until(t: Instant) {
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        if t - now > Duration::from_millis(3) {
            tokio::time::sleep_until((t - Duration::from_millis(2)).into()).await;
        } else {
            tokio::task::yield_now().await;
            // Any other thread ready on this core (ksoftirqd, a kworker, a daemon) runs now,
            // not after a whole scheduler slice behind a spinning task: it would stall the
            // generator for milliseconds, and those milliseconds count as the server's.
            std::thread::yield_now();
        }
    }
}

/// Read one HTTP/1.1 response with a `content-length` (what timacct and nginx send) into
/// `buf`; whether its status is 200, and its body.
pub(crate) async fn read_response<'b>(
    stream: &mut tokio::net::TcpStream,
    buf: &'b mut Vec<u8>,
) -> anyhow::Result<(bool, &'b [u8])> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(k) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break k + 4;
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])?;
    let status_ok = head.starts_with("HTTP/1.1 200");
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .ok_or_else(|| anyhow::anyhow!("response without content-length"))?;
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status_ok, &buf[head_end..head_end + length]))
}
