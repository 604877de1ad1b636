//! The admin UserSig every call carries: generated from the key, cached, renewed before it
//! expires.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use timacct_usersig::UserSigGenerator;

/// The time UserSigs are issued at, in unix seconds.
///
/// A parameter so that tests can move time (and check renewal) without waiting, and so that
/// a host whose clock is known to be off can be corrected.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in unix seconds.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// How long the client's UserSigs live and when they are replaced.
///
/// A UserSig is renewed once `renew_after` of its validity has passed, so a call never
/// carries one that is about to expire in flight, and a job longer than the validity keeps
/// working (the service answers 70001 to an expired one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigLifetime {
    /// Validity written into each UserSig (whole seconds, at least 1).
    pub validity: Duration,
    /// Fraction of `validity` after which a new UserSig is made, in `0.0..=1.0`.
    pub renew_after: f64,
}

impl Default for SigLifetime {
    /// One day, renewed after two thirds: short-lived enough that a leaked UserSig is soon
    /// useless, long enough that renewal is rare.
    fn default() -> Self {
        SigLifetime {
            validity: Duration::from_secs(86_400),
            renew_after: 2.0 / 3.0,
        }
    }
}

impl SigLifetime {
    /// `validity`, renewed after two thirds of it.
    pub fn new(validity: Duration) -> Self {
        SigLifetime {
            validity,
            ..SigLifetime::default()
        }
    }

    /// Validity in whole seconds, at least 1.
    fn validity_secs(&self) -> i64 {
        i64::try_from(self.validity.as_secs())
            .unwrap_or(i64::MAX)
            .max(1)
    }

    /// Seconds after issue when a UserSig is replaced.
    fn renew_secs(&self) -> i64 {
        let fraction = if self.renew_after.is_finite() {
            self.renew_after.clamp(0.0, 1.0)
        } else {
            1.0
        };
        // Truncation towards zero renews a little early, never late.
        (self.validity_secs() as f64 * fraction) as i64
    }
}

/// The current UserSig of one admin.
pub(crate) struct SigSource {
    generator: UserSigGenerator,
    identifier: String,
    lifetime: SigLifetime,
    clock: Arc<dyn Clock>,
    current: Mutex<Option<Issued>>,
    issued: AtomicU64,
}

struct Issued {
    sig: String,
    renew_at: i64,
}

impl fmt::Debug for SigSource {
    /// No key and no UserSig: they are credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigSource")
            .field("identifier", &self.identifier)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl SigSource {
    pub(crate) fn new(
        sdkappid: u32,
        key: &str,
        identifier: String,
        lifetime: SigLifetime,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SigSource {
            generator: UserSigGenerator::new(u64::from(sdkappid), key),
            identifier,
            lifetime,
            clock,
            current: Mutex::new(None),
            issued: AtomicU64::new(0),
        }
    }

    /// The admin the UserSigs are for.
    pub(crate) fn identifier(&self) -> &str {
        &self.identifier
    }

    /// A UserSig valid now, made anew when the cached one has reached its renewal time.
    pub(crate) fn current(&self) -> String {
        let now = self.clock.now();
        let mut current = self.current.lock();
        match &*current {
            Some(issued) if now < issued.renew_at => issued.sig.clone(),
            _ => {
                let sig = self
                    .generator
                    .gen(&self.identifier, self.lifetime.validity_secs(), now);
                self.issued.fetch_add(1, Ordering::Relaxed);
                *current = Some(Issued {
                    sig: sig.clone(),
                    renew_at: now.saturating_add(self.lifetime.renew_secs()),
                });
                sig
            }
        }
    }

    /// Forget the cached UserSig (after the service called it expired, e.g. because the
    /// clocks disagree), so that the next call makes a new one.
    pub(crate) fn invalidate(&self) {
        *self.current.lock() = None;
    }

    /// How many UserSigs have been made.
    pub(crate) fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::AtomicI64;

    use super::*;

    #[derive(Debug, Default)]
    struct FakeClock(AtomicI64);

    impl Clock for FakeClock {
        fn now(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn renewed_at_two_thirds_of_validity_and_always_verifiable() {
        let clock = Arc::new(FakeClock(AtomicI64::new(1_700_000_000)));
        let source = SigSource::new(
            1400000001,
            "k",
            "administrator".into(),
            SigLifetime::new(Duration::from_secs(3)),
            clock.clone(),
        );
        let first = source.current();
        assert_eq!(source.current(), first);
        clock.0.fetch_add(1, Ordering::SeqCst);
        assert_eq!(source.current(), first, "still young at 1/3");
        clock.0.fetch_add(1, Ordering::SeqCst);
        let second = source.current();
        assert_ne!(second, first, "renewed at 2/3");
        assert_eq!(source.issued(), 2);
        let d = timacct_usersig::verify(
            &second,
            1400000001,
            "k",
            "administrator",
            1_700_000_002 + 3,
            timacct_usersig::ExpectUserbuf::Any,
        )
        .unwrap();
        assert_eq!(d.expire, 3);
        // After a 70001 the cached sig is dropped and a new one made at once.
        source.invalidate();
        source.current();
        assert_eq!(source.issued(), 3);
    }

    #[test]
    fn debug_shows_no_credentials() {
        let source = SigSource::new(
            1,
            "very-secret-key",
            "administrator".into(),
            SigLifetime::default(),
            Arc::new(SystemClock),
        );
        let sig = source.current();
        let text = format!("{source:?}");
        assert!(
            !text.contains("very-secret-key") && !text.contains(&sig),
            "{text}"
        );
    }
}
