//! The schema and its migrations, applied at every start.
//!
//! Several instances may start at the same moment against one database. All migration work
//! happens in one transaction that first takes a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`): the first instance migrates, the others wait for it and then
//! find nothing left to do. The lock is released by the commit, or by PostgreSQL itself if the
//! instance dies half-way (the transaction then rolls back: DDL is transactional), so a crash
//! never leaves a half-migrated schema or a stuck lock. `schema_version` records what was
//! applied; a database migrated by a newer timacct is refused rather than misread.

use crate::StoreError;

/// The advisory lock key of migrations: "timacct" in ASCII plus a 1. Advisory locks are per
/// database, so instances serving other databases on the same server never wait on it.
pub(super) const MIGRATION_LOCK: i64 = 0x7469_6d61_6363_7401;

/// The newest schema version this build knows.
pub(super) const LATEST: i32 = MIGRATIONS.len() as i32;

/// Every migration, in order; version `n` is `MIGRATIONS[n - 1]`. Never edit a released one:
/// add the next.
///
/// Why the column types: `sdkappid` is a u32, which does not fit `INTEGER`. UserIDs compare
/// byte for byte, which `COLLATE "C"` gives (and it keeps the primary-key index in byte
/// order). Nick and FaceUrl are `BYTEA` because a JSON string may carry U+0000, which
/// PostgreSQL `TEXT` cannot hold; UserIDs cannot (control characters are rejected).
///
/// Version 2 is the change feed every instance's in-memory index follows (see
/// [`super::feed`]): each write transaction of an app takes the next number of the app's
/// sequence (`app_stats.seq`, under the app's lock) and stamps it on every account row it
/// creates and every tombstone it writes, so "what changed after `n`" is two index range
/// scans, and needs no log of its own to prune: a row changed twice shows only its latest
/// state, which is all an index needs. Rows from before version 2 carry 0, which the initial
/// load reads anyway.
///
/// Version 3 holds what users' sessions leave behind (see [`super::sessions`]): kick cut-offs
/// and PushOnline times.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE accounts (
    sdkappid   BIGINT NOT NULL,
    user_id    TEXT COLLATE \"C\" NOT NULL,
    nick       BYTEA  NOT NULL DEFAULT '',
    face_url   BYTEA  NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
);
CREATE TABLE tombstones (
    sdkappid   BIGINT NOT NULL,
    user_id    TEXT COLLATE \"C\" NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
);
CREATE TABLE app_stats (
    sdkappid BIGINT PRIMARY KEY,
    accounts BIGINT NOT NULL
);
",
    "
ALTER TABLE accounts ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tombstones ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE app_stats ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX accounts_by_seq ON accounts (sdkappid, seq);
CREATE INDEX tombstones_by_seq ON tombstones (sdkappid, seq);
",
    "
CREATE TABLE cutoffs (
    sdkappid BIGINT NOT NULL,
    user_id  TEXT COLLATE \"C\" NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (sdkappid, user_id)
);
CREATE TABLE push_online (
    sdkappid BIGINT NOT NULL,
    user_id  TEXT COLLATE \"C\" NOT NULL,
    platform TEXT NOT NULL,
    until    BIGINT NOT NULL,
    PRIMARY KEY (sdkappid, user_id, platform)
);
",
];

/// Bring the schema up to [`LATEST`].
pub(super) async fn migrate(
    client: &mut deadpool_postgres::ClientWrapper,
) -> Result<(), StoreError> {
    let encoding: String = client
        .query_one("SELECT current_setting('server_encoding')", &[])
        .await?
        .try_get(0)?;
    if encoding != "UTF8" {
        // Other encodings cannot hold every UserID (e.g. CJK in LATIN1).
        return Err(StoreError::Unavailable(format!(
            "the database uses encoding {encoding}; timacct needs UTF8 \
             (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)"
        )));
    }
    let txn = client.transaction().await?;
    // The migration may wait for another instance's; the call timeout does not apply here.
    // "already exists, skipping" notices would only be noise in the log.
    txn.batch_execute("SET LOCAL statement_timeout = 0; SET LOCAL client_min_messages = warning")
        .await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current: i32 = txn
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await?
        .try_get(0)?;
    if current > LATEST {
        return Err(StoreError::Unavailable(format!(
            "the database schema is at version {current}, newer than this timacct knows \
             ({LATEST}); upgrade timacct"
        )));
    }
    for (n, sql) in MIGRATIONS.iter().enumerate() {
        let version = n as i32 + 1;
        if version <= current {
            continue;
        }
        txn.batch_execute(sql).await?;
        txn.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await?;
        tracing::info!(version, "database schema migrated");
    }
    txn.commit().await?;
    Ok(())
}
