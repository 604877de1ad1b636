//! Per-app, per-API rate limits (60007).
//!
//! One bucket per app and API, holding one second's worth of calls and refilled continuously:
//! a client that paces itself to the documented rate is never refused, and a burst above it
//! is refused for exactly as long as it stays above it.
//!
//! The buckets live either in this process ([`Limiter::Local`]: right for one instance, but
//! several instances behind a load balancer would each grant the full rate) or in Redis
//! ([`Limiter::Shared`]: one bucket per app and API for the whole service, however many
//! instances share it). The Redis bucket is the same bucket written as GCRA (one timestamp per
//! key, see [`GCRA`]) and updated by one Lua script, so the check and the update are atomic
//! across instances, and it reads Redis's own clock (`TIME`), so instance clocks do not matter.
//!
//! If Redis cannot answer within [`REDIS_TIMEOUT`], the call is refused with 70500 (retryable):
//! letting it through would break the limit the service promises, and waiting longer would
//! hang every caller. The connection is then dropped and opened afresh by the next call, so
//! service resumes by itself when Redis is back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use timacct_proto::{Api, PerApi};

use crate::config::RateLimitPolicy;

/// The longest one rate-limit decision may wait for Redis (connecting included) before the
/// call is answered 70500.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a call could not be checked against its limit.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// Redis could not be reached, refused, or did not answer in time.
    #[error("rate limiter unavailable: {0}")]
    Unavailable(String),
}

impl timacct_proto::HasErrorCode for RateLimitError {
    /// Fail closed: letting the call through would break the limit promised to the app, and
    /// 60007 would blame the caller for a failure of ours.
    fn error_code(&self) -> timacct_proto::ErrorCode {
        timacct_proto::ErrorCode::Internal
    }

    fn error_info(&self) -> std::borrow::Cow<'static, str> {
        "the rate limiter is unavailable; nothing was changed, retry the request".into()
    }
}

/// The GCRA form of the token bucket, run atomically inside Redis.
///
/// `KEYS[1]` is one app's bucket for one API; `ARGV[1]` the calls per second, which is also the
/// burst. The key holds the "theoretical arrival time" (TAT) in microseconds of Redis time: a
/// call is allowed when, after adding one emission interval (1 s / rate), the TAT is at most
/// one second ahead of now. That is exactly "a bucket of `rate` tokens refilled at `rate` per
/// second, starting full". The TAT is written with `%.0f` because Lua's default number
/// formatting keeps only 14 digits, too few for microseconds since 1970. The key expires once
/// it no longer matters, so idle buckets cost nothing.
pub(crate) const GCRA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local rate = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / rate
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local next_tat = tat + interval
if next_tat - now > 1000000 then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX',
  math.ceil((next_tat - now) / 1000) + 1)
return 1
";

/// The rate limits of one app, wherever its buckets live.
pub enum Limiter {
    /// Buckets in this process: limits hold per instance.
    Local(Box<LocalBuckets>),
    /// Buckets in Redis: limits hold for every instance together.
    Shared {
        /// The Redis connection shared by every app of the server.
        redis: RedisRateLimiter,
        /// The app, part of every bucket's key.
        sdkappid: u32,
        /// Calls per second for each API; `None` is unlimited.
        rates: PerApi<Option<u32>>,
    },
}

impl Limiter {
    /// In-process buckets for the given limits.
    pub fn local(limits: &RateLimitPolicy) -> Self {
        Limiter::Local(Box::new(LocalBuckets::new(limits)))
    }

    /// Buckets in Redis for the given limits of app `sdkappid`.
    pub fn shared(redis: RedisRateLimiter, sdkappid: u32, limits: &RateLimitPolicy) -> Self {
        Limiter::Shared {
            redis,
            sdkappid,
            rates: PerApi::from_fn(|api| limits.limit(api)),
        }
    }

    /// Take one call from `api`'s bucket: `Ok(false)` means over the limit (60007).
    pub async fn allow(&self, api: Api) -> Result<bool, RateLimitError> {
        match self {
            Limiter::Local(buckets) => Ok(buckets.allow(api)),
            Limiter::Shared {
                redis,
                sdkappid,
                rates,
            } => match rates[api] {
                None => Ok(true),
                Some(rate) => redis.take(*sdkappid, api, rate.max(1)).await,
            },
        }
    }
}

/// The in-process buckets of one app.
pub struct LocalBuckets {
    buckets: PerApi<Option<Mutex<Bucket>>>,
}

struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl LocalBuckets {
    /// Buckets for the given limits, full now.
    pub fn new(limits: &RateLimitPolicy) -> Self {
        Self::new_at(limits, Instant::now())
    }

    /// Buckets for the given limits, full at `now`. The clock is the caller's: the server
    /// passes [`Instant::now`], tests pass instants of their own choosing.
    pub fn new_at(limits: &RateLimitPolicy, now: Instant) -> Self {
        LocalBuckets {
            buckets: PerApi::from_fn(|api| {
                limits.limit(api).map(|rate| {
                    let rate = f64::from(rate.max(1));
                    Mutex::new(Bucket {
                        rate,
                        tokens: rate,
                        last: now,
                    })
                })
            }),
        }
    }

    /// Take one call from `api`'s bucket now; `false` means over the limit.
    pub fn allow(&self, api: Api) -> bool {
        self.allow_at(api, Instant::now())
    }

    /// Take one call from `api`'s bucket at `now`; `false` means over the limit. An instant
    /// before the bucket's last call adds nothing (time never runs backwards for a bucket).
    pub fn allow_at(&self, api: Api, now: Instant) -> bool {
        let Some(bucket) = &self.buckets[api] else {
            return true;
        };
        let mut b = bucket.lock();
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        // A caller that read the clock before another took the lock must not move the
        // bucket's time back, or the refill between the two would be counted twice.
        b.last = b.last.max(now);
        b.tokens = (b.tokens + elapsed * b.rate).min(b.rate);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Rate-limit buckets in Redis, shared by every server instance that uses the same Redis and
/// key prefix. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct RedisRateLimiter {
    inner: Arc<RedisInner>,
}

struct RedisInner {
    client: redis::Client,
    /// The live connection and its generation, or `None` after a failure: the next call
    /// connects afresh. Multiplexed, so every request of the instance shares it.
    conn: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Held while connecting, so that a burst of calls opens one connection, not one each.
    connecting: tokio::sync::Mutex<()>,
    generation: AtomicU64,
    script: redis::Script,
    prefix: String,
    description: String,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("redis", &self.inner.description)
            .field("prefix", &self.inner.prefix)
            .finish()
    }
}

impl RedisRateLimiter {
    /// Connect to Redis at `url` (`redis://[user:password@]host:port[/db]`). Every bucket key
    /// starts with `key_prefix` (`timacct:` for the server), so that one Redis can serve
    /// several deployments or test runs apart. Fails if Redis cannot be reached now: a
    /// misconfigured URL is reported at start-up rather than as 70500 on every call.
    pub async fn connect(
        url: &str,
        key_prefix: impl Into<String>,
    ) -> Result<RedisRateLimiter, RateLimitError> {
        // The client's parse errors name the problem, never the password.
        let client = redis::Client::open(url)
            .map_err(|e| RateLimitError::Unavailable(format!("invalid Redis URL: {e}")))?;
        let description = describe(client.get_connection_info());
        let limiter = RedisRateLimiter {
            inner: Arc::new(RedisInner {
                client,
                conn: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                generation: AtomicU64::new(0),
                script: redis::Script::new(GCRA),
                prefix: key_prefix.into(),
                description,
            }),
        };
        match tokio::time::timeout(REDIS_TIMEOUT, limiter.connection()).await {
            Ok(Ok(_)) => Ok(limiter),
            Ok(Err(e)) => Err(RateLimitError::Unavailable(format!(
                "{}: {e}",
                limiter.inner.description
            ))),
            Err(_) => Err(RateLimitError::Unavailable(format!(
                "{}: no answer within {} s",
                limiter.inner.description,
                REDIS_TIMEOUT.as_secs()
            ))),
        }
    }

    /// Redis as `redis://host:port/db`, without credentials: safe to log.
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    async fn connection(&self) -> Result<(u64, MultiplexedConnection), redis::RedisError> {
        if let Some(live) = self.inner.conn.lock().clone() {
            return Ok(live);
        }
        let _one_at_a_time = self.inner.connecting.lock().await;
        if let Some(live) = self.inner.conn.lock().clone() {
            return Ok(live);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT);
        let conn = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.inner.conn.lock() = Some((generation, conn.clone()));
        Ok((generation, conn))
    }

    /// Forget a connection that failed (only if it is still the current one: another call may
    /// already have replaced it).
    fn discard(&self, generation: u64) {
        let mut conn = self.inner.conn.lock();
        if conn.as_ref().is_some_and(|(g, _)| *g == generation) {
            *conn = None;
        }
    }

    /// Take one call from the bucket of (`sdkappid`, `api`), refilled at `rate` per second.
    pub(crate) async fn take(
        &self,
        sdkappid: u32,
        api: Api,
        rate: u32,
    ) -> Result<bool, RateLimitError> {
        let key = format!(
            "{}ratelimit:{sdkappid}:{}",
            self.inner.prefix,
            api.command()
        );
        let used = AtomicU64::new(0);
        let call = async {
            let (generation, mut conn) = self.connection().await?;
            used.store(generation, Ordering::Relaxed);
            let allowed: i64 = self
                .inner
                .script
                .key(&key)
                .arg(rate)
                .invoke_async(&mut conn)
                .await?;
            Ok::<bool, redis::RedisError>(allowed == 1)
        };
        let outcome = tokio::time::timeout(REDIS_TIMEOUT, call).await;
        // Generations start at 1: 0 means the call never got a connection of its own.
        let generation = used.load(Ordering::Relaxed);
        match outcome {
            Ok(Ok(allowed)) => Ok(allowed),
            Ok(Err(e)) => {
                self.discard(generation);
                Err(RateLimitError::Unavailable(format!(
                    "{}: {e}",
                    self.inner.description
                )))
            }
            Err(_) => {
                self.discard(generation);
                Err(RateLimitError::Unavailable(format!(
                    "{}: no answer within {} ms",
                    self.inner.description,
                    REDIS_TIMEOUT.as_millis()
                )))
            }
        }
    }
}

fn describe(info: &redis::ConnectionInfo) -> String {
    let addr = match &info.addr {
        redis::ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}"),
        redis::ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}"),
        redis::ConnectionAddr::Unix(path) => format!("redis+unix://{}", path.display()),
        #[allow(unreachable_patterns)]
        _ => "redis://?".to_owned(),
    };
    format!("{addr}/{}", info.redis.db)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The documented defaults (`DECISIONS.md`, Rate limits; `docs/protocol.md` §8), in calls
    /// per second: written out here, not read from the code under test.
    const DOCUMENTED: [(Api, u32); 6] = [
        (Api::AccountImport, 200),
        (Api::MultiAccountImport, 100),
        (Api::AccountCheck, 100),
        (Api::AccountDelete, 100),
        (Api::Kick, 200),
        (Api::QueryOnlineStatus, 200),
    ];

    /// How many calls `api`'s bucket grants at `at`, taking until the first refusal (which
    /// takes nothing).
    fn drain(buckets: &LocalBuckets, api: Api, at: Instant) -> u32 {
        let mut granted = 0;
        while buckets.allow_at(api, at) {
            granted += 1;
            assert!(granted <= 1_000_000, "{api:?}: the bucket never runs dry");
        }
        granted
    }

    #[test]
    fn the_documented_table_names_every_api_once() {
        let named: std::collections::HashSet<Api> = DOCUMENTED.iter().map(|(a, _)| *a).collect();
        assert_eq!(named.len(), Api::COUNT);
    }

    #[test]
    fn a_new_bucket_grants_one_second_of_the_documented_rate_at_once() {
        let t0 = Instant::now();
        let buckets = LocalBuckets::new_at(&RateLimitPolicy::Tencent, t0);
        for (api, limit) in DOCUMENTED {
            assert_eq!(drain(&buckets, api, t0), limit, "{api:?}");
            // Refused, and refusals take nothing: still refused at the same instant.
            assert!(!buckets.allow_at(api, t0), "{api:?}");
        }
    }

    #[test]
    fn a_drained_bucket_refills_continuously_at_the_documented_rate() {
        let t0 = Instant::now();
        let ms = std::time::Duration::from_millis;
        for (api, limit) in DOCUMENTED {
            let buckets = LocalBuckets::new_at(&RateLimitPolicy::Tencent, t0);
            assert_eq!(drain(&buckets, api, t0), limit, "{api:?}");
            // Half a second later, half a second's worth (no fixed window that waits for the
            // next second); 1 ms short of it, one call less.
            assert_eq!(
                drain(&buckets, api, t0 + ms(499)),
                limit * 499 / 1000,
                "{api:?}"
            );
            let buckets = LocalBuckets::new_at(&RateLimitPolicy::Tencent, t0);
            drain(&buckets, api, t0);
            assert_eq!(drain(&buckets, api, t0 + ms(500)), limit / 2, "{api:?}");
            // One call's interval after that, exactly one more.
            let interval = ms(1000 / u64::from(limit));
            assert_eq!(drain(&buckets, api, t0 + ms(500) + interval), 1, "{api:?}");
            // A whole second after the last call, a whole second's worth.
            let later = t0 + ms(1500) + interval;
            assert_eq!(drain(&buckets, api, later), limit, "{api:?}");
        }
    }

    #[test]
    fn an_idle_bucket_holds_at_most_one_second_of_calls() {
        let t0 = Instant::now();
        let buckets = LocalBuckets::new_at(&RateLimitPolicy::Tencent, t0);
        for (api, limit) in DOCUMENTED {
            // An hour of idling saves up no more than the burst of one second.
            let hour = t0 + std::time::Duration::from_secs(3600);
            assert_eq!(drain(&buckets, api, hour), limit, "{api:?}");
        }
    }

    #[test]
    fn each_api_has_a_bucket_of_its_own() {
        let t0 = Instant::now();
        let buckets = LocalBuckets::new_at(&RateLimitPolicy::Tencent, t0);
        assert_eq!(drain(&buckets, Api::AccountCheck, t0), 100);
        assert_eq!(drain(&buckets, Api::AccountImport, t0), 200);
        assert_eq!(drain(&buckets, Api::AccountDelete, t0), 100);
        assert!(!buckets.allow_at(Api::AccountCheck, t0));
    }

    #[test]
    fn explicit_numbers_replace_only_the_apis_they_name_and_off_is_unlimited() {
        let t0 = Instant::now();
        let custom = RateLimitPolicy::Custom([(Api::AccountCheck, 5)].into_iter().collect());
        let buckets = LocalBuckets::new_at(&custom, t0);
        assert_eq!(drain(&buckets, Api::AccountCheck, t0), 5);
        assert_eq!(
            drain(
                &buckets,
                Api::AccountCheck,
                t0 + std::time::Duration::from_millis(200)
            ),
            1
        );
        assert_eq!(drain(&buckets, Api::AccountImport, t0), 200);
        assert_eq!(drain(&buckets, Api::MultiAccountImport, t0), 100);

        let off = LocalBuckets::new_at(&RateLimitPolicy::Off, t0);
        for (api, _) in DOCUMENTED {
            assert!((0..10_000).all(|_| off.allow_at(api, t0)), "{api:?}");
        }
    }

    #[test]
    fn a_clock_read_before_the_last_call_adds_nothing() {
        // Callers read the clock before they take the bucket's lock, so one may arrive with an
        // instant older than the last call's: it must not move the bucket back in time, or
        // the refill in between would be granted twice.
        let t0 = Instant::now();
        let ms = std::time::Duration::from_millis;
        let buckets = LocalBuckets::new_at(&RateLimitPolicy::Tencent, t0);
        drain(&buckets, Api::AccountImport, t0);
        assert!(buckets.allow_at(Api::AccountImport, t0 + ms(1000)));
        assert!(buckets.allow_at(Api::AccountImport, t0 + ms(500)));
        assert_eq!(drain(&buckets, Api::AccountImport, t0 + ms(1000)), 198);
    }

    #[test]
    fn redis_descriptions_never_carry_the_password() {
        let client = redis::Client::open("redis://user:s3cret@cache.internal:6380/2").unwrap();
        assert_eq!(
            describe(client.get_connection_info()),
            "redis://cache.internal:6380/2"
        );
    }

    #[tokio::test]
    async fn an_unreachable_redis_is_a_startup_error() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let e = RedisRateLimiter::connect("redis://:s3cret@127.0.0.1:1", "t:")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("127.0.0.1:1") && !text.contains("s3cret"),
            "{text}"
        );
    }
}
