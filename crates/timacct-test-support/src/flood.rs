//! Floods of calls, for the rate-limit tests: as many calls as the machine can send, each
//! with the moment it was sent, the moment its answer arrived and its code.
//!
//! A limiter decides each call somewhere between those two moments, so what it may have
//! allowed is bounded by counting over the spans the test measured, never by expecting one
//! call to land in a given second: a slow or busy machine stretches the spans, and with them
//! the bounds, instead of failing the test. See [`bucket_ceiling`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::envelope::check_envelope;

/// One call of a flood.
#[derive(Debug, Clone)]
pub struct Shot {
    /// Which call it was (0-based): the `n` of the body it was sent with.
    pub index: usize,
    /// Just before the request was handed to the HTTP client.
    pub sent: Instant,
    /// Just after the whole answer had arrived.
    pub answered: Instant,
    /// Its `ErrorCode`.
    pub code: u64,
    /// Its `ErrorInfo`.
    pub info: String,
}

/// Every call of a flood, in the order they were sent (by [`Shot::index`]).
#[derive(Debug, Clone)]
pub struct Flood {
    /// The calls.
    pub shots: Vec<Shot>,
}

impl Flood {
    /// How many calls got `code`.
    pub fn count(&self, code: u64) -> usize {
        self.shots.iter().filter(|s| s.code == code).count()
    }

    /// How many calls got each code.
    pub fn codes(&self) -> BTreeMap<u64, usize> {
        let mut codes = BTreeMap::new();
        for s in &self.shots {
            *codes.entry(s.code).or_default() += 1;
        }
        codes
    }

    /// When the first call was sent: no call of the flood was decided before.
    pub fn first_sent(&self) -> Instant {
        self.shots
            .iter()
            .map(|s| s.sent)
            .min()
            .expect("a flood of at least one call")
    }

    /// When the last answer arrived: every call of the flood was decided by then.
    pub fn last_answered(&self) -> Instant {
        self.shots
            .iter()
            .map(|s| s.answered)
            .max()
            .expect("a flood of at least one call")
    }

    /// From the first send to the last answer: a span holding every decision of the flood.
    pub fn span(&self) -> Duration {
        self.last_answered() - self.first_sent()
    }
}

/// Send `n` POSTs to `url` from `clients` concurrent tasks sharing `client`, each task sending
/// its next call as soon as the answer to its previous one arrived. Call `k` carries
/// `body(k)`. Every answer must be a well-formed envelope ([`check_envelope`]).
pub async fn flood(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    clients: usize,
    body: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static,
) -> Flood {
    let next = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(body);
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let (client, url, next, body) =
            (client.clone(), url.to_owned(), next.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut shots = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= n {
                    return shots;
                }
                let request = client.post(&url).body(body(index));
                let sent = Instant::now();
                let response = request
                    .send()
                    .await
                    // The URL holds a UserSig: keep it out of the failure message.
                    .map_err(reqwest::Error::without_url)
                    .expect("HTTP exchange");
                let status = response.status();
                let headers = response.headers().clone();
                let bytes = response.bytes().await.expect("response body");
                let answered = Instant::now();
                let (_, json) = check_envelope(status, &headers, &bytes);
                let code = json["ErrorCode"].as_u64().expect("an ErrorCode");
                let info = json["ErrorInfo"].as_str().unwrap_or_default().to_owned();
                shots.push(Shot {
                    index,
                    sent,
                    answered,
                    code,
                    info,
                });
            }
        }));
    }
    let mut shots = Vec::with_capacity(n);
    for task in tasks {
        shots.extend(task.await.expect("flood task"));
    }
    shots.sort_by_key(|s| s.index);
    Flood { shots }
}

/// The most calls a token bucket that starts with at most `burst` tokens and refills at `rate`
/// per second can allow over `span`: `burst + rate × span`, plus one for rounding.
pub fn bucket_ceiling(burst: u32, rate: u32, span: Duration) -> usize {
    burst as usize + (f64::from(rate) * span.as_secs_f64()).floor() as usize + 1
}
