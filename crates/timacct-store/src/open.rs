//! One way to open a store whatever its engine: [`open`] picks the engine from the
//! [`Target`], so that a caller (`timacct serve`, a tool) needs no engine-specific code to
//! open, describe and close it. The engines' own types (`SqliteStore`, `PostgresStore`) stay
//! public for callers that need more.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::{AccountStore, StoreError};

/// Where accounts are kept: what [`open`] opens.
///
/// Its `Debug` never shows a PostgreSQL connection string, which may carry a password.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// A SQLite database file, created (with its directory) if missing.
    Sqlite(PathBuf),
    /// A PostgreSQL database: a `postgres://` URL or a libpq `key=value` string.
    Postgres(String),
}

impl Target {
    /// The target `spec` names, so that one string (a flag, a config value) can name either
    /// engine: a `postgres://` or `postgresql://` URL (scheme in any case) is PostgreSQL;
    /// anything else is a SQLite file, given as a path or with a `sqlite:` prefix
    /// (`sqlite:data/timacct.db`; `sqlite://data/timacct.db` and `sqlite:///var/timacct.db`,
    /// the URL forms, name the same paths as `data/timacct.db` and `/var/timacct.db`).
    ///
    /// A libpq `key=value` string is not recognised here (it could be a file name); build
    /// [`Target::Postgres`] for one.
    pub fn parse(spec: &str) -> Target {
        if has_prefix(spec, "postgres://") || has_prefix(spec, "postgresql://") {
            return Target::Postgres(spec.to_owned());
        }
        let path = match spec.get(..7).zip(spec.get(7..)) {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("sqlite:") => {
                rest.strip_prefix("//").unwrap_or(rest)
            }
            _ => spec,
        };
        Target::Sqlite(PathBuf::from(path))
    }
}

/// Whether `s` starts with the ASCII `prefix`, ignoring case (URL schemes are
/// case-insensitive).
fn has_prefix(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

impl From<&str> for Target {
    /// [`Target::parse`].
    fn from(spec: &str) -> Target {
        Target::parse(spec)
    }
}

impl From<&Path> for Target {
    /// A SQLite file, taken as it is (a path is never a URL).
    fn from(path: &Path) -> Target {
        Target::Sqlite(path.to_path_buf())
    }
}

impl From<PathBuf> for Target {
    /// A SQLite file, taken as it is (a path is never a URL).
    fn from(path: PathBuf) -> Target {
        Target::Sqlite(path)
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Target::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

/// How [`open`] sets up the engine it opens. Each engine reads only its own part, so one
/// value serves whatever the target turns out to be; build it with `..Default::default()`.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Pool size and timeouts, for a PostgreSQL target.
    pub postgres: PostgresOptions,
}

/// How a PostgreSQL store uses its database. The defaults suit one instance among a few on a
/// database with PostgreSQL's default `max_connections = 100`.
///
/// Defined whether or not the `postgres` feature is on, so that code building [`OpenOptions`]
/// compiles the same with any set of engines.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections this instance keeps open. Every instance opens up to this many, so
    /// instances × this must stay below the server's `max_connections`.
    pub max_connections: usize,
    /// The longest a call waits for a connection from the pool, opening a new one included.
    /// Bounded so that an unreachable database turns into a prompt 70500, not a hang.
    pub checkout_timeout: Duration,
    /// The longest a whole call may take, checkout included. Also sent to the server as
    /// `statement_timeout`, so a statement stuck behind a lock is cancelled there too.
    pub call_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            checkout_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(5),
        }
    }
}

/// A store [`open`] opened: what a server needs of it, whatever the engine.
pub struct OpenedStore {
    /// The engine as the server uses it.
    store: Arc<dyn AccountStore>,
    /// Where the data is, without any password.
    description: String,
    /// The same engine, for closing.
    engine: Engine,
}

/// The engine behind an [`OpenedStore`], for what the trait does not cover (closing).
enum Engine {
    /// A SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::SqliteStore),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(crate::PostgresStore),
}

impl OpenedStore {
    /// The store, to hand to the server (cheap: clones share it).
    pub fn store(&self) -> Arc<dyn AccountStore> {
        self.store.clone()
    }

    /// Where the data is, safe to print and log: the SQLite file's path, or the PostgreSQL
    /// database as `postgres://user@host:port/dbname` without any password.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Shut the engine down at the end of serving: SQLite finishes its queued writes and
    /// checkpoints its log, PostgreSQL closes its connections. Calls made afterwards fail
    /// with [`StoreError::Closed`].
    pub fn close(&self) {
        match self.engine {
            #[cfg(feature = "sqlite")]
            Engine::Sqlite(ref store) => store.close(),
            #[cfg(feature = "postgres")]
            Engine::Postgres(ref store) => store.close(),
        }
    }
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("data", &self.description)
            .finish_non_exhaustive()
    }
}

/// Open the store `target` names (see [`Target::parse`] for a string): SQLite files are
/// created if missing and checked if present; a PostgreSQL database is connected to and its
/// schema created or migrated. An engine this build was compiled without (its cargo feature
/// off) is an error saying so. Errors never contain a PostgreSQL password.
pub async fn open(
    target: impl Into<Target>,
    options: &OpenOptions,
) -> Result<OpenedStore, StoreError> {
    match target.into() {
        Target::Sqlite(path) => open_sqlite(path).await,
        Target::Postgres(url) => open_postgres(&url, options).await,
    }
}

/// Open a SQLite file; see [`crate::SqliteStore::open`].
#[cfg(feature = "sqlite")]
async fn open_sqlite(path: PathBuf) -> Result<OpenedStore, StoreError> {
    if path.as_os_str().is_empty() {
        return Err(StoreError::Unavailable(
            "no SQLite database file given".into(),
        ));
    }
    let store = crate::SqliteStore::open(path)?;
    Ok(OpenedStore {
        store: Arc::new(store.clone()),
        description: store.path().display().to_string(),
        engine: Engine::Sqlite(store),
    })
}

/// SQLite is compiled out.
#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: PathBuf) -> Result<OpenedStore, StoreError> {
    Err(without("SQLite", "sqlite"))
}

/// Connect to PostgreSQL; see [`crate::PostgresStore::connect_with`].
#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, options: &OpenOptions) -> Result<OpenedStore, StoreError> {
    let store = crate::PostgresStore::connect_with(url, options.postgres.clone()).await?;
    Ok(OpenedStore {
        store: Arc::new(store.clone()),
        description: store.description().to_owned(),
        engine: Engine::Postgres(store),
    })
}

/// PostgreSQL is compiled out.
#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str, _: &OpenOptions) -> Result<OpenedStore, StoreError> {
    Err(without("PostgreSQL", "postgres"))
}

/// The error for a target whose engine is not compiled in.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn without(engine: &str, feature: &str) -> StoreError {
    StoreError::Unavailable(format!(
        "{engine} is not available: timacct-store was built without its `{feature}` feature"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(path: &str) -> Target {
        Target::Sqlite(PathBuf::from(path))
    }

    #[test]
    fn urls_name_postgres_and_everything_else_sqlite() {
        for url in [
            "postgres://u:pw@db:5432/t",
            "postgresql://db/t",
            "POSTGRES://db/t",
            "PostgreSQL://db/t",
        ] {
            assert_eq!(Target::parse(url), Target::Postgres(url.to_owned()));
        }
        assert_eq!(Target::parse("data/timacct.db"), sqlite("data/timacct.db"));
        assert_eq!(Target::parse("/var/timacct.db"), sqlite("/var/timacct.db"));
        assert_eq!(Target::parse("sqlite:data/t.db"), sqlite("data/t.db"));
        assert_eq!(Target::parse("SQLite:data/t.db"), sqlite("data/t.db"));
        assert_eq!(Target::parse("sqlite://data/t.db"), sqlite("data/t.db"));
        assert_eq!(Target::parse("sqlite:///var/t.db"), sqlite("/var/t.db"));
        // Not a URL: a file whose name happens to look like one.
        assert_eq!(Target::parse("postgres:/x"), sqlite("postgres:/x"));
        assert_eq!(
            Target::parse("host=db dbname=t"),
            sqlite("host=db dbname=t")
        );
        assert_eq!(Target::parse("用户.db"), sqlite("用户.db"));
        assert_eq!(Target::parse(""), sqlite(""));
    }

    #[test]
    fn debug_never_shows_a_connection_string() {
        let target = Target::parse("postgres://u:s3cret@db/t");
        assert_eq!(format!("{target:?}"), "Postgres(..)");
        let target = Target::Postgres("host=db password=s3cret".into());
        assert!(!format!("{target:?}").contains("s3cret"));
    }
}
