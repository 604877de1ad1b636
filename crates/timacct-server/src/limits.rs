//! The bounds that keep a server answering under more load than it can serve: how many
//! requests run at once, how many wait, how many connections are open, and how long a client
//! may take at each step. Each bound exists so that a slow, stalled or flooding client costs
//! a fixed, small amount of memory and time and cannot starve the others.

use std::time::Duration;

/// Server-wide limits; [`Limits::default`] suits a production instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_requests: 512,
            max_queued_requests: 2048,
            queue_timeout: Duration::from_secs(1),
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_usersig_age: None,
        }
    }
}
