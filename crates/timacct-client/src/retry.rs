//! When and how long to wait before trying a failed call again.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter.
///
/// Attempt `n + 1` waits a random time between half and all of
/// `min(initial_backoff * 2^(n-1), max_backoff)`: doubling gives an overloaded service room,
/// the jitter keeps many clients (or many batches of one job) from retrying in lockstep, and
/// the lower half keeps a minimum spacing. A rate-limit answer (60007 and kin) waits at least
/// `rate_limited_backoff`, since the service counts calls per second; 70050 waits the minute
/// the documentation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included; 1 means no retries.
    pub max_attempts: u32,
    /// The wait before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// The longest wait between attempts (before jitter).
    pub max_backoff: Duration,
    /// The shortest wait after a rate-limit answer.
    pub rate_limited_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Six attempts, 200 ms doubling up to 10 s: about 6 s of retrying in total, enough to
    /// ride out a restart or a burst of overload, short enough that an outage is reported
    /// promptly.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            rate_limited_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// No retries: every failure is reported at once.
    pub fn never() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry).
    pub(crate) fn backoff(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let doubling = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
        let full = self
            .initial_backoff
            .saturating_mul(doubling)
            .min(self.max_backoff);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rng.gen::<f64>())
    }

    /// The wait before retry number `retry` after an answer with `code` (if any).
    pub(crate) fn backoff_for(
        &self,
        retry: u32,
        code: Option<u32>,
        rng: &mut impl Rng,
    ) -> Duration {
        let base = self.backoff(retry, rng);
        match code {
            Some(60007 | 60011 | 60018 | 60019) => base.max(self.rate_limited_backoff),
            // "UserSig verification failed too often; retry after 1 minute".
            Some(70050) => base.max(Duration::from_secs(60)),
            _ => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let p = RetryPolicy::default();
        let mut rng = rand::thread_rng();
        for _ in 0..100 {
            let d1 = p.backoff(1, &mut rng);
            assert!(d1 >= Duration::from_millis(100) && d1 <= Duration::from_millis(200));
            let d3 = p.backoff(3, &mut rng);
            assert!(d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800));
            let d20 = p.backoff(20, &mut rng);
            assert!(d20 >= Duration::from_secs(5) && d20 <= Duration::from_secs(10));
            assert!(p.backoff_for(1, Some(60007), &mut rng) >= Duration::from_secs(1));
        }
    }
}
