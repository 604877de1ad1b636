//! Benchmark tools for timacct. `bench/run.sh` drives them; see `bench/README.md`.
//!
//! - `populate`: fill a data dir with N accounts through the real store.
//! - `load`: an HTTP/1.1 keep-alive load generator (closed loop for throughput, open loop at a
//!   fixed rate for latency without coordinated omission) for `account_check` and
//!   `multiaccount_import`.
//! - `hiccups`: how often, and for how long, this machine stops a thread that only reads
//!   the clock: the floor under every tail latency measured here.
//! - `sqlite-baseline`: a bare rusqlite program inserting the same rows with the same
//!   durability settings, the baseline for the write path.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod load;
mod mixed;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use timacct_store::{AccountStore, ImportItem, ImportPolicy, SqliteStore, UserId};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import `accounts` accounts named `u00000000`, `u00000001`, ... into `data_dir` (SQLite)
    /// or, with `--database`, into that PostgreSQL database.
    Populate {
        #[arg(long, default_value = ".")]
        data_dir: PathBuf,
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        sdkappid: u32,
        #[arg(long)]
        accounts: u64,
    },
    /// Generate HTTP load.
    Load(load::LoadArgs),
    /// Insert `rows` rows in transactions of `batch` with WAL + synchronous=FULL, no HTTP.
    SqliteBaseline {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
        #[arg(long, default_value_t = 100)]
        batch: u64,
    },
    /// Spin on the clock for `seconds` and report the gaps: the machine's own stalls (the
    /// host descheduling this vCPU, interrupts, kernel threads), which no server escapes.
    Hiccups {
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Gaps longer than this count, in microseconds.
        #[arg(long, default_value_t = 100)]
        over_us: u64,
    },
    /// Correctness under load: two in-process instances on the (empty) PostgreSQL database
    /// `database`, a mixed load of imports, deletes and checks of overlapping UserIDs, every
    /// answer checked against the acknowledged ones (see `mixed.rs`). Fails on any violation
    /// or error answer.
    Mixed {
        #[arg(long)]
        database: String,
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value_t = 48)]
        ids: usize,
    },
    /// Write the load generator's `account_check` bodies, one per line, for wrk.
    Bodies {
        #[arg(long, default_value_t = 1_000_000)]
        accounts: u64,
        #[arg(long, default_value_t = load::CHECK_BODIES)]
        count: u64,
    },
    /// Print an admin UserSig.
    Sig {
        #[arg(long)]
        sdkappid: u32,
        #[arg(long)]
        key: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Populate {
            data_dir,
            database,
            sdkappid,
            accounts,
        } => populate(data_dir, database, sdkappid, accounts),
        Command::Load(args) => load::run(args),
        Command::Bodies { accounts, count } => {
            for i in 0..count {
                println!("{}", load::check_body(i, accounts));
            }
            Ok(())
        }
        Command::Mixed {
            database,
            seconds,
            clients,
            ids,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(mixed::run(mixed::MixedOptions {
                database_url: database,
                duration: std::time::Duration::from_secs_f64(seconds),
                clients,
                ids,
                seed: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_nanos() as u64,
            }))?;
            println!("{report}");
            Ok(())
        }
        Command::SqliteBaseline { db, rows, batch } => sqlite_baseline(db, rows, batch),
        Command::Hiccups { seconds, over_us } => {
            hiccups(seconds, over_us);
            Ok(())
        }
        Command::Sig { sdkappid, key } => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64;
            println!(
                "{}",
                timacct_usersig::UserSigGenerator::new(u64::from(sdkappid), &key).gen(
                    "administrator",
                    86_400,
                    now
                )
            );
            Ok(())
        }
    }
}

fn hiccups(seconds: f64, over_us: u64) {
    let threshold = std::time::Duration::from_micros(over_us);
    let start = Instant::now();
    let end = start + std::time::Duration::from_secs_f64(seconds);
    let mut gaps: Vec<u64> = Vec::new();
    let mut last = start;
    while last < end {
        let now = Instant::now();
        let gap = now - last;
        if gap > threshold {
            gaps.push(gap.as_micros() as u64);
        }
        last = now;
    }
    gaps.sort_unstable();
    let stalled: u64 = gaps.iter().sum();
    println!(
        "hiccups over_us={over_us} seconds={seconds} count={} per_sec={:.1} stalled_ms={:.1} stalled_pct={:.2} max_us={}",
        gaps.len(),
        gaps.len() as f64 / seconds,
        stalled as f64 / 1000.0,
        stalled as f64 / (seconds * 1e4),
        gaps.last().copied().unwrap_or(0)
    );
}

/// The name of account `i`, shared by populate and the load generator.
pub fn account_name(i: u64) -> String {
    format!("u{i:08}")
}

fn populate(
    data_dir: PathBuf,
    database: Option<String>,
    sdkappid: u32,
    accounts: u64,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let (store, close): (Arc<dyn AccountStore>, Box<dyn FnOnce()>) = match database {
            Some(url) => {
                let pg = timacct_store::PostgresStore::connect(&url).await?;
                (Arc::new(pg.clone()), Box::new(move || pg.close()))
            }
            None => {
                let sqlite = SqliteStore::open(data_dir.join("timacct.db"))?;
                (Arc::new(sqlite.clone()), Box::new(move || sqlite.close()))
            }
        };
        let existing = store.account_count(sdkappid).await?;
        let start = Instant::now();
        let mut i = existing;
        while i < accounts {
            let end = (i + 10_000).min(accounts);
            let items = (i..end)
                .map(|k| ImportItem::id_only(UserId::parse(account_name(k)).unwrap()))
                .collect();
            store
                .import(
                    sdkappid,
                    items,
                    ImportPolicy {
                        max_accounts: None,
                        reimport_block_secs: None,
                        now: 1,
                    },
                )
                .await?;
            i = end;
        }
        close();
        eprintln!(
            "populated {} accounts ({} new) in {:.1}s",
            accounts,
            accounts.saturating_sub(existing),
            start.elapsed().as_secs_f64()
        );
        anyhow::Ok(())
    })
}

fn sqlite_baseline(db: PathBuf, rows: u64, batch: u64) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(&db);
    let conn = rusqlite::Connection::open(&db)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.execute_batch(
        "PRAGMA synchronous=FULL;
         CREATE TABLE accounts (sdkappid INTEGER NOT NULL, user_id TEXT NOT NULL,
           nick TEXT NOT NULL DEFAULT '', face_url TEXT NOT NULL DEFAULT '',
           created_at INTEGER NOT NULL, PRIMARY KEY (sdkappid, user_id)) WITHOUT ROWID;",
    )?;
    let start = Instant::now();
    let mut i = 0;
    while i < rows {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        {
            let mut stmt = conn.prepare_cached(
                "INSERT INTO accounts (sdkappid, user_id, nick, face_url, created_at) VALUES (?1, ?2, '', '', ?3)",
            )?;
            for k in i..(i + batch).min(rows) {
                stmt.execute(rusqlite::params![1u32, account_name(k), 1i64])?;
            }
        }
        conn.execute_batch("COMMIT")?;
        i += batch;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sqlite_baseline rows={rows} batch={batch} secs={secs:.3} rows_per_sec={:.0}",
        rows as f64 / secs
    );
    Ok(())
}
