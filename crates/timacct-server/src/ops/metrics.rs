//! Prometheus metrics, kept on the hot path with plain atomics.
//!
//! Every counter and histogram lives in one of a few cache-line-aligned shards; a thread
//! always writes to its own shard (picked once per thread), so two cores answering requests
//! do not fight over one cache line, and there is no lock anywhere. A request costs two
//! relaxed `fetch_add`s for the counter and histogram bucket plus one for the latency sum;
//! `/metrics` sums the shards when scraped. Label sets are fixed tables (the APIs, the codes
//! of the error table, the store operations), so memory is fixed whatever clients send.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use timacct_proto::{Api, ErrorCode};

/// Upper bounds of the latency buckets, in nanoseconds (50 µs … 10 s).
const BUCKETS_NS: [u64; 17] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
/// The buckets plus +Inf.
const SLOTS: usize = BUCKETS_NS.len() + 1;

/// Every API of the table plus "other" (unknown paths, wrong methods).
const ROUTES: usize = Api::COUNT + 1;
const OTHER_ROUTE: usize = Api::COUNT;
/// Every code of the table plus one slot for a code the table does not know.
const CODES: usize = ErrorCode::ALL.len() + 1;

/// The store operations timed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoreOp {
    Import = 0,
    Check = 1,
    Delete = 2,
    Account = 3,
    AccountCount = 4,
    Kick = 5,
    Cutoff = 6,
    Cutoffs = 7,
    SetPushOnline = 8,
    PushOnline = 9,
}
const STORE_OPS: [&str; 10] = [
    "import",
    "check",
    "delete",
    "account",
    "account_count",
    "kick",
    "cutoff",
    "cutoffs",
    "set_push_online",
    "push_online",
];

/// Why a connection or request was cut short.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Timeout {
    Header = 0,
    Idle = 1,
    Body = 2,
    Request = 3,
    TlsHandshake = 4,
}
const TIMEOUTS: [&str; 5] = ["header", "idle", "body", "request", "tls_handshake"];

#[derive(Default)]
struct Histogram {
    slots: [AtomicU64; SLOTS],
    sum_ns: AtomicU64,
}

impl Histogram {
    #[inline]
    fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let slot = BUCKETS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(BUCKETS_NS.len());
        self.slots[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// One thread's counters; aligned so that shards never share a cache line.
#[repr(align(128))]
struct Shard {
    requests: [[AtomicU64; CODES]; ROUTES],
    latency: [Histogram; ROUTES],
    store: [Histogram; STORE_OPS.len()],
    store_errors: [AtomicU64; STORE_OPS.len()],
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            latency: Default::default(),
            store: Default::default(),
            store_errors: Default::default(),
        }
    }
}

const SHARDS: usize = 8;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

fn shard_index() -> usize {
    SHARD.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            s.set(i);
        }
        i
    })
}

/// The metrics of one server.
pub(crate) struct Metrics {
    shards: Box<[Shard]>,
    timeouts: [AtomicU64; TIMEOUTS.len()],
    /// Open client connections (a gauge).
    pub connections_open: AtomicUsize,
    /// Connections answered 60018 and closed because `max_connections` was reached.
    pub connections_refused: AtomicU64,
    /// Connections closed unanswered because even the spare slots were taken.
    pub connections_dropped: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            timeouts: Default::default(),
            connections_open: AtomicUsize::new(0),
            connections_refused: AtomicU64::new(0),
            connections_dropped: AtomicU64::new(0),
        }
    }

    #[inline]
    fn shard(&self) -> &Shard {
        &self.shards[shard_index() % self.shards.len()]
    }

    /// One answered request: its API (`None`: unknown path), top-level code and latency.
    #[inline]
    pub fn request(&self, api: Option<Api>, code: ErrorCode, elapsed: Duration) {
        let route = route_index(api);
        let code = ErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .unwrap_or(CODES - 1);
        let shard = self.shard();
        shard.requests[route][code].fetch_add(1, Ordering::Relaxed);
        shard.latency[route].observe(elapsed);
    }

    /// One store call.
    #[inline]
    pub fn store(&self, op: StoreOp, elapsed: Duration, ok: bool) {
        let shard = self.shard();
        shard.store[op as usize].observe(elapsed);
        if !ok {
            shard.store_errors[op as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection or request cut short by a timeout.
    pub fn timeout(&self, kind: Timeout) {
        self.timeouts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, in_flight: usize, waiting: usize) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let sum = |f: &dyn Fn(&Shard) -> &AtomicU64| -> u64 {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum()
        };

        out.push_str("# HELP timacct_requests_total Requests answered, by API and top-level ErrorCode.\n# TYPE timacct_requests_total counter\n");
        for route in 0..ROUTES {
            for code in 0..CODES {
                let n = sum(&|s| &s.requests[route][code]);
                if n > 0 {
                    let code = ErrorCode::ALL
                        .get(code)
                        .map_or_else(|| "other".to_owned(), |c| c.code().to_string());
                    let _ = writeln!(
                        out,
                        "timacct_requests_total{{api=\"{}\",code=\"{code}\"}} {n}",
                        route_name(route)
                    );
                }
            }
        }

        out.push_str("# HELP timacct_request_duration_seconds Time from the request head to the answer, by API.\n# TYPE timacct_request_duration_seconds histogram\n");
        for route in 0..ROUTES {
            self.render_histogram(
                &mut out,
                "timacct_request_duration_seconds",
                &format!("api=\"{}\"", route_name(route)),
                |s| &s.latency[route],
            );
        }

        out.push_str("# HELP timacct_store_operation_duration_seconds Time of each storage call, by operation.\n# TYPE timacct_store_operation_duration_seconds histogram\n");
        for (op, name) in STORE_OPS.iter().enumerate() {
            self.render_histogram(
                &mut out,
                "timacct_store_operation_duration_seconds",
                &format!("op=\"{name}\""),
                |s| &s.store[op],
            );
        }
        out.push_str("# HELP timacct_store_errors_total Storage calls that failed, by operation.\n# TYPE timacct_store_errors_total counter\n");
        for (op, name) in STORE_OPS.iter().enumerate() {
            let n = sum(&|s| &s.store_errors[op]);
            let _ = writeln!(out, "timacct_store_errors_total{{op=\"{name}\"}} {n}");
        }

        out.push_str("# HELP timacct_timeouts_total Connections or requests cut short by a timeout, by kind.\n# TYPE timacct_timeouts_total counter\n");
        for (i, name) in TIMEOUTS.iter().enumerate() {
            let n = self.timeouts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "timacct_timeouts_total{{kind=\"{name}\"}} {n}");
        }

        let _ = writeln!(
            out,
            "# HELP timacct_requests_in_flight Requests being handled.\n# TYPE timacct_requests_in_flight gauge\ntimacct_requests_in_flight {in_flight}"
        );
        let _ = writeln!(
            out,
            "# HELP timacct_requests_queued Requests waiting for a slot.\n# TYPE timacct_requests_queued gauge\ntimacct_requests_queued {waiting}"
        );
        let _ = writeln!(
            out,
            "# HELP timacct_connections_open Open client connections.\n# TYPE timacct_connections_open gauge\ntimacct_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP timacct_connections_refused_total Connections over --max-connections, answered 60018 and closed.\n# TYPE timacct_connections_refused_total counter\ntimacct_connections_refused_total {}",
            self.connections_refused.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP timacct_connections_dropped_total Connections closed unanswered because the spare slots were full too.\n# TYPE timacct_connections_dropped_total counter\ntimacct_connections_dropped_total {}",
            self.connections_dropped.load(Ordering::Relaxed)
        );
        out
    }

    fn render_histogram(
        &self,
        out: &mut String,
        name: &str,
        labels: &str,
        pick: impl Fn(&Shard) -> &Histogram,
    ) {
        let mut cumulative = 0u64;
        for (slot, bound) in BUCKETS_NS.iter().enumerate() {
            cumulative += self
                .shards
                .iter()
                .map(|s| pick(s).slots[slot].load(Ordering::Relaxed))
                .sum::<u64>();
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e9
            );
        }
        cumulative += self
            .shards
            .iter()
            .map(|s| pick(s).slots[SLOTS - 1].load(Ordering::Relaxed))
            .sum::<u64>();
        let sum_ns: u64 = self
            .shards
            .iter()
            .map(|s| pick(s).sum_ns.load(Ordering::Relaxed))
            .sum();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", sum_ns as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

#[inline]
fn route_index(api: Option<Api>) -> usize {
    api.map_or(OTHER_ROUTE, Api::index)
}

fn route_name(route: usize) -> &'static str {
    Api::ALL.get(route).map_or("other", |api| api.command())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn counts_and_buckets_add_up_across_threads() {
        let metrics = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let m = metrics.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        m.request(
                            Some(Api::AccountCheck),
                            ErrorCode::Ok,
                            Duration::from_micros(70),
                        );
                    }
                    m.request(None, ErrorCode::UnknownResource, Duration::from_secs(60));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let text = metrics.render(0, 0);
        assert!(text.contains("timacct_requests_total{api=\"account_check\",code=\"0\"} 4000\n"));
        assert!(text.contains("timacct_requests_total{api=\"other\",code=\"60009\"} 4\n"));
        assert!(text.contains(
            "timacct_request_duration_seconds_bucket{api=\"account_check\",le=\"0.00005\"} 0\n"
        ));
        assert!(text.contains(
            "timacct_request_duration_seconds_bucket{api=\"account_check\",le=\"0.0001\"} 4000\n"
        ));
        assert!(
            text.contains("timacct_request_duration_seconds_bucket{api=\"other\",le=\"10\"} 0\n")
        );
        assert!(
            text.contains("timacct_request_duration_seconds_bucket{api=\"other\",le=\"+Inf\"} 4\n")
        );
        assert!(text.contains("timacct_request_duration_seconds_count{api=\"other\"} 4\n"));
    }

    /// What recording one request in the metrics costs. A probe for the benchmark (bench/run.sh
    /// runs it), not a test: it prints a figure and asserts nothing. Run with
    /// `cargo test --release -p timacct-server --lib cost_of_recording -- --ignored --nocapture`.
    #[test]
    #[ignore = "a cost probe: prints a figure, asserts nothing about time"]
    fn cost_of_recording_a_request() {
        let metrics = Metrics::new();
        let n = 1_000_000u32;
        let started = Instant::now();
        for i in 0..n {
            metrics.request(
                Some(Api::AccountCheck),
                ErrorCode::Ok,
                Duration::from_nanos(u64::from(i % 200_000)),
            );
        }
        let per = started.elapsed() / n;
        println!("metrics cost per request: {per:?}");
    }
}
