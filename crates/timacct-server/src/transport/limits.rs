//! The bounds that keep a server answering under more load than it can serve: how many
//! requests run at once, how many wait, how many connections are open, and how long a client
//! may take at each step. Each bound exists so that a slow, stalled or flooding client costs
//! a fixed, small amount of memory and time and cannot starve the others.

use std::time::Duration;

/// The default [`ServerLimits::busy_poll`], in microseconds: off. On this project's KVM machines
/// busy polling for 200 µs took a third off the median latency of `account_check` at half
/// load (45 to 30 µs) but did not lower its p99, which the machine's own stalls decide
/// (`bench/README.md`), and it keeps a core busy for as long as requests keep coming: a
/// trade for an operator to choose, not a default.
pub const DEFAULT_BUSY_POLL_US: u64 = 0;

/// Server-wide limits; [`ServerLimits::default`] suits a production instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Requests handled at once. Beyond it a request waits in a queue (see below); this, with
    /// the body limit, is what bounds the memory held by requests.
    pub max_concurrent_requests: usize,
    /// Requests that may wait for a slot. A request arriving with the queue full, or still
    /// waiting after `queue_timeout`, is answered 60018 at once (retryable: the client backs
    /// off). Bounded so that a flood cannot grow memory or the latency of what is accepted.
    pub max_queued_requests: usize,
    /// How long a request may wait for a slot.
    pub queue_timeout: Duration,
    /// Open client connections. One more is answered with a 60018 envelope and closed (up to
    /// a small spare number at once; past that, accepting pauses and the kernel backlog
    /// holds new connections until one closes).
    pub max_connections: usize,
    /// From the first byte of a request to the end of its header block. Against slowloris: a
    /// client trickling its headers is disconnected after this.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may sit with no request before it is closed.
    pub idle_timeout: Duration,
    /// How long reading a request body may take; past it, 60008.
    pub body_timeout: Duration,
    /// How long handling a request (after its body is read) may take; past it, 60008. Longer
    /// than the store's own timeouts, so that a storage failure is reported as such (70500).
    pub request_timeout: Duration,
    /// Refuse admin UserSigs whose `TLS.expire` (validity in seconds) is larger than this,
    /// with 70003. `None`: any validity is accepted, as Tencent does.
    pub max_usersig_age: Option<u64>,
    /// Busy polling: after a request, the runtime keeps polling its sockets instead of
    /// sleeping for this long, so that a request arriving within it is read without waking
    /// a sleeping thread (see the `spin` module: at moderate load that wake-up is a large
    /// share of a request's latency). Zero (the default) turns it off. It spins one task, on
    /// one core, and only while requests keep coming.
    pub busy_poll: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_concurrent_requests: 512,
            max_queued_requests: 2048,
            queue_timeout: Duration::from_secs(1),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_usersig_age: None,
            busy_poll: Duration::from_micros(DEFAULT_BUSY_POLL_US),
        }
    }
}
