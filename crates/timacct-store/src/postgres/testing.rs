//! Throwaway databases for tests, so that every test run starts from an empty schema and
//! leaves nothing behind.

use std::net::SocketAddr;
use std::time::Duration;

use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use crate::StoreError;

/// A database created for one test under a fresh random name (`timacct_test_<hex>`), dropped
/// together with every connection to it when this value is dropped — also when the test
/// panics.
///
/// Where it is created: the server named by `TIMACCT_TEST_DATABASE_URL` (an admin connection
/// allowed to `CREATE DATABASE`), else [`TestDatabase::DEFAULT_URL`]. If that server cannot be
/// reached, [`TestDatabase::create`] answers `Ok(None)` — skip the test — only when the
/// variable is unset and `CI` is not set; otherwise it is an error, so that CI never passes by
/// silently skipping its PostgreSQL tests.
pub struct TestDatabase {
    admin: tokio_postgres::Config,
    name: String,
}

/// The longest test set-up waits for the admin connection.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

impl TestDatabase {
    /// The environment variable naming the admin connection.
    pub const URL_VAR: &'static str = "TIMACCT_TEST_DATABASE_URL";
    /// The admin connection used when [`Self::URL_VAR`] is unset: the local server with trust
    /// authentication that development and CI machines run.
    pub const DEFAULT_URL: &'static str = "postgres://postgres@127.0.0.1:5432/postgres";

    /// Create a fresh database; `Ok(None)` (after printing why) when the tests may be skipped.
    pub async fn create() -> Result<Option<TestDatabase>, StoreError> {
        let given = std::env::var(Self::URL_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty());
        let url = given
            .clone()
            .unwrap_or_else(|| Self::DEFAULT_URL.to_owned());
        let admin: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Unavailable(format!("{} is not a valid URL: {e}", Self::URL_VAR))
        })?;
        let client = match connect(&admin).await {
            Ok(client) => client,
            Err(e) if given.is_none() && !in_ci() => {
                eprintln!(
                    "skipping: no PostgreSQL at {} ({e}); set {} to run this test",
                    Self::DEFAULT_URL,
                    Self::URL_VAR
                );
                return Ok(None);
            }
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "PostgreSQL tests must run here ({} set or CI set) but the server cannot be reached: {e}",
                    Self::URL_VAR
                )))
            }
        };
        let name = format!("timacct_test_{:016x}", rand::random::<u64>());
        // template0 is never connected to, so concurrent test runs can copy it at once.
        client
            .batch_execute(&format!(
                "CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"
            ))
            .await
            .map_err(|e| StoreError::Unavailable(format!("CREATE DATABASE {name}: {e}")))?;
        Ok(Some(TestDatabase { admin, name }))
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection string for the database (libpq `key=value` form).
    pub fn url(&self) -> String {
        let host = match self.admin.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.admin.get_ports().first().copied().unwrap_or(5432);
        self.conninfo(&host, port)
    }

    /// A connection string for the database through another address — a proxy a test can
    /// cut to simulate an outage.
    pub fn url_via(&self, addr: SocketAddr) -> String {
        self.conninfo(&addr.ip().to_string(), addr.port())
    }

    fn conninfo(&self, host: &str, port: u16) -> String {
        let mut parts = vec![
            format!("host={}", quote(host)),
            format!("port={port}"),
            format!("dbname={}", quote(&self.name)),
        ];
        if let Some(user) = self.admin.get_user() {
            parts.push(format!("user={}", quote(user)));
        }
        if let Some(pw) = self.admin.get_password() {
            parts.push(format!("password={}", quote(&String::from_utf8_lossy(pw))));
        }
        parts.join(" ")
    }

    /// A plain connection to the database, for a test's own queries.
    pub async fn client(&self) -> Result<tokio_postgres::Client, StoreError> {
        let mut config = self.admin.clone();
        config.dbname(&self.name);
        connect(&config).await.map_err(StoreError::Unavailable)
    }

    /// Kill every connection to the database (as an operator or a failover would), returning
    /// how many there were.
    pub async fn terminate_connections(&self) -> Result<u64, StoreError> {
        let client = connect(&self.admin)
            .await
            .map_err(StoreError::Unavailable)?;
        let rows = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await?;
        Ok(rows.len() as u64)
    }

    /// Take the database down for every client, as a restart or a failover would, but only
    /// this test's database: other tests running on the same PostgreSQL server at the same time
    /// must not notice. New connections are refused by the server itself (`FATAL: database
    /// ... is not currently accepting connections`, just as during a restart), and every open
    /// connection is killed. Returns how many were killed. Undo with [`Self::bring_up`]; the
    /// database is dropped at the end either way.
    pub async fn take_down(&self) -> Result<u64, StoreError> {
        self.allow_connections(false).await?;
        self.terminate_connections().await
    }

    /// Let clients connect again after [`Self::take_down`].
    pub async fn bring_up(&self) -> Result<(), StoreError> {
        self.allow_connections(true).await
    }

    async fn allow_connections(&self, allow: bool) -> Result<(), StoreError> {
        let client = connect(&self.admin)
            .await
            .map_err(StoreError::Unavailable)?;
        client
            .batch_execute(&format!(
                "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS {allow}",
                self.name
            ))
            .await?;
        Ok(())
    }

    /// Hold the lock that schema migrations take, on a connection of its own, until the
    /// returned client is dropped. A test uses it to make instances that start together
    /// provably wait for one another instead of merely starting close in time.
    pub async fn hold_migration_lock(&self) -> Result<tokio_postgres::Client, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "SELECT pg_advisory_lock($1)",
                &[&super::schema::MIGRATION_LOCK],
            )
            .await?;
        Ok(client)
    }

    /// How many sessions of this database are waiting for an advisory lock right now.
    pub async fn advisory_lock_waiters(&self) -> Result<i64, StoreError> {
        let client = connect(&self.admin)
            .await
            .map_err(StoreError::Unavailable)?;
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
                 WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = $1",
                &[&self.name],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn drop_database(admin: tokio_postgres::Config, name: String) -> Result<(), String> {
        let client = connect(&admin).await?;
        let mut last = String::new();
        for _ in 0..10 {
            let _ = client
                .execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&name],
                )
                .await;
            match client
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\""))
                .await
            {
                Ok(()) => return Ok(()),
                // A connection being set up at that moment: terminate and try again.
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(last)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread with
        // its own runtime, and wait for it so the database is gone when the test ends.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(Self::drop_database(admin, name.clone()))
                .map_err(|e| format!("{name}: {e}"))
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: could not drop test database {e}"),
            Err(_) => eprintln!("warning: dropping a test database panicked"),
        }
    }
}

/// Whether we run in CI (`CI` set to anything but empty, `0` or `false`), where skipping a
/// test for a missing service (PostgreSQL here, Redis in `timacct-test-support`) would hide a
/// broken set-up.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false")
    })
}

/// A libpq connection-string value, quoted.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, String> {
    let mut config = config.clone();
    config.connect_timeout(ADMIN_TIMEOUT);
    let connecting = tokio::time::timeout(ADMIN_TIMEOUT, config.connect(NoTls));
    let (client, connection) = match connecting.await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(super::describe::describe(&e)),
        Err(_) => return Err("timed out connecting".into()),
    };
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
