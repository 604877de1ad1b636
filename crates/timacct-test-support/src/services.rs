//! PostgreSQL and Redis for the tests that need them.
//!
//! Where they are: `TIMACCT_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, an admin connection allowed to
//! `CREATE DATABASE`) and `TIMACCT_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). A
//! developer without them sees the tests skip with a printed `skipping: ...`; where either
//! variable or `CI` is set they must be reachable, and a test that cannot reach them fails, so
//! that CI never passes by skipping.
//!
//! Each test gets a fresh database (dropped at the end, also when the test panics) and a
//! fresh Redis key prefix (its keys expire on their own within seconds), so tests running at
//! the same time never see each other's data.

use std::net::SocketAddr;

use timacct_server::RedisRateLimiter;
use timacct_store::postgres::TestDatabase;

/// Whether we run in CI: the rule [`TestDatabase::create`] applies to PostgreSQL, applied here
/// to Redis too.
pub use timacct_store::postgres::in_ci;

/// A fresh database, or `None` (after saying why) when the test may be skipped.
///
/// The rules of the module apply; [`TestDatabase::create`] reads the variable and makes the
/// database.
pub async fn database() -> Option<TestDatabase> {
    TestDatabase::create()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A reachable Redis and a key prefix of the test's own.
#[derive(Debug, Clone)]
pub struct TestRedis {
    /// `redis://host:port`.
    pub url: String,
    /// `timacct_test_<hex>:`: every key the test makes starts with it.
    pub prefix: String,
}

impl TestRedis {
    /// The environment variable naming the Redis to use.
    pub const URL_VAR: &'static str = "TIMACCT_TEST_REDIS_URL";
    /// The Redis used when [`Self::URL_VAR`] is unset.
    pub const DEFAULT_URL: &'static str = "redis://127.0.0.1:6379";

    /// A new connection under the test's prefix, as each server instance would have its own.
    pub async fn limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter::connect(&self.url, self.prefix.clone())
            .await
            .unwrap_or_else(|e| panic!("Redis at {}: {e}", self.url))
    }

    /// The socket address of the Redis server, for a test that puts a proxy in front of it.
    /// Needs the URL to name an IP address.
    pub fn addr(&self) -> SocketAddr {
        self.url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap_or("")
            .rsplit('@')
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or_else(|e| {
                panic!(
                    "{} must be redis://host:port with an IP address ({e})",
                    Self::URL_VAR
                )
            })
    }
}

/// Redis, checked by connecting as a server would, or `None` (after saying why) when the
/// test may be skipped.
pub async fn redis() -> Option<TestRedis> {
    let given = std::env::var(TestRedis::URL_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let url = given
        .clone()
        .unwrap_or_else(|| TestRedis::DEFAULT_URL.to_owned());
    let prefix = format!("timacct_test_{:016x}:", rand::random::<u64>());
    if let Err(e) = RedisRateLimiter::connect(&url, prefix.clone()).await {
        if given.is_none() && !in_ci() {
            eprintln!(
                "skipping: no Redis at {url} ({e}); set {} to run this test",
                TestRedis::URL_VAR
            );
            return None;
        }
        panic!(
            "Redis tests must run here ({} set or CI set) but Redis cannot be reached: {e}",
            TestRedis::URL_VAR
        );
    }
    Some(TestRedis { url, prefix })
}

/// Both services a multi-instance test needs.
pub struct Services {
    pub db: TestDatabase,
    pub redis: TestRedis,
}

/// PostgreSQL and Redis, or `None` (after saying why) when the test may be skipped.
pub async fn services() -> Option<Services> {
    let db = database().await?;
    let redis = redis().await?;
    Some(Services { db, redis })
}
