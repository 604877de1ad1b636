//! The PostgreSQL backend: the conformance suite, unchanged, plus what only a shared networked
//! store has to show — several stores (one per server instance) on one database, concurrent
//! migrations, and surviving killed connections and a database restart.
//!
//! Every test runs in a fresh database (`TestDatabase`), dropped at the end. Without a
//! reachable server the tests skip with a message (and pass), unless
//! `TIMACCT_TEST_DATABASE_URL` or `CI` is set: then they fail.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use timacct_store::postgres::TestDatabase;
use timacct_store::{
    Account, AccountStore, DeleteOutcome, ImportItem, ImportOutcome, ImportPolicy, OpenOptions,
    PostgresOptions, PostgresStore, StoreError, Target, UserId, UserIdRef,
};
use timacct_test_support::{database, Tally};

use crate::common::{id, policy, refs};

fn small_pool() -> PostgresOptions {
    PostgresOptions {
        max_connections: 8,
        ..PostgresOptions::default()
    }
}

/// A store that owns its test database, so the database is dropped with the store.
struct Fresh {
    store: PostgresStore,
    _db: TestDatabase,
}

#[async_trait]
impl AccountStore for Fresh {
    async fn import(
        &self,
        app: u32,
        items: Vec<ImportItem>,
        policy: ImportPolicy,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        self.store.import(app, items, policy).await
    }
    async fn check(&self, app: u32, ids: &[UserIdRef<'_>]) -> Result<Vec<bool>, StoreError> {
        self.store.check(app, ids).await
    }
    async fn delete(
        &self,
        app: u32,
        ids: Vec<UserId>,
        now: i64,
    ) -> Result<Vec<DeleteOutcome>, StoreError> {
        self.store.delete(app, ids, now).await
    }
    async fn account(&self, app: u32, id: UserId) -> Result<Option<Account>, StoreError> {
        self.store.account(app, id).await
    }
    async fn account_count(&self, app: u32) -> Result<u64, StoreError> {
        self.store.account_count(app).await
    }
    async fn kick(&self, app: u32, id: UserId, at: i64) -> Result<bool, StoreError> {
        self.store.kick(app, id, at).await
    }
    async fn cutoff(&self, app: u32, id: UserId) -> Result<Option<i64>, StoreError> {
        self.store.cutoff(app, id).await
    }
    async fn cutoffs(&self, app: u32) -> Result<Vec<(UserId, i64)>, StoreError> {
        self.store.cutoffs(app).await
    }
    async fn set_push_online(
        &self,
        app: u32,
        id: UserId,
        platform: String,
        until: Option<i64>,
    ) -> Result<(), StoreError> {
        self.store.set_push_online(app, id, platform, until).await
    }
    async fn push_online(&self, app: u32) -> Result<Vec<timacct_store::PushOnline>, StoreError> {
        self.store.push_online(app).await
    }
}

async fn fresh() -> Option<Arc<dyn AccountStore>> {
    let db = database().await?;
    let store = PostgresStore::connect_with(&db.url(), small_pool())
        .await
        .unwrap();
    Some(Arc::new(Fresh { store, _db: db }))
}

mod postgres_conformance {
    use super::*;
    timacct_store::conformance_suite!(fresh());
}

/// Eight instances starting at once migrate the schema exactly once. The test holds the
/// migration lock itself while they start and waits until all eight are queued behind it, so
/// they provably contend for the migration at the same moment (not merely start close in
/// time); then it lets go and every one must come up on the one schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    const INSTANCES: usize = 8;
    let Some(db) = database().await else {
        return;
    };
    let url = db.url();
    let gate = db.hold_migration_lock().await.unwrap();
    let starts: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let options = PostgresOptions {
                    max_connections: 2,
                    ..PostgresOptions::default()
                };
                PostgresStore::connect_with(&url, options).await
            })
        })
        .collect();
    let mut waiting = 0;
    for _ in 0..600 {
        waiting = db.advisory_lock_waiters().await.unwrap();
        if waiting as usize == INSTANCES {
            break;
        }
        assert!(
            starts.iter().all(|s| !s.is_finished()),
            "an instance started while another held the migration lock"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        waiting as usize, INSTANCES,
        "the instances never all queued for the migration"
    );
    drop(gate);
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().unwrap());
    }
    let client = db.client().await.unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM schema_version ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i32> = (1..=PostgresStore::schema_version()).collect();
    assert_eq!(versions, expected);
    // Every store works on the one schema.
    stores[0]
        .import(1, vec![ImportItem::id_only(id("m"))], policy(1))
        .await
        .unwrap();
    assert_eq!(
        stores[INSTANCES - 1].check(1, &refs(&["m"])).await.unwrap(),
        vec![true]
    );
    for s in &stores {
        s.close();
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(db) = database().await else {
        return;
    };
    PostgresStore::connect_with(&db.url(), small_pool())
        .await
        .unwrap()
        .close();
    let client = db.client().await.unwrap();
    client
        .execute("INSERT INTO schema_version (version) VALUES (9999)", &[])
        .await
        .unwrap();
    let err = PostgresStore::connect_with(&db.url(), small_pool())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("9999"), "{err}");
}

#[tokio::test]
async fn profile_fields_keep_every_character() {
    let Some(db) = database().await else {
        return;
    };
    let store = PostgresStore::connect_with(&db.url(), small_pool())
        .await
        .unwrap();
    let nick = "nul\u{0}inside 用户 \u{1F600}".to_owned();
    store
        .import(
            1,
            vec![ImportItem {
                user_id: id("z"),
                nick: Some(nick.clone()),
                face_url: Some("'; DROP TABLE accounts; --".into()),
            }],
            policy(1),
        )
        .await
        .unwrap();
    let a = store.account(1, id("z")).await.unwrap().unwrap();
    assert_eq!(a.nick, nick);
    assert_eq!(a.face_url, "'; DROP TABLE accounts; --");
    // The largest SDKAppID fits (it does not fit a 32-bit signed column).
    store
        .import(u32::MAX, vec![ImportItem::id_only(id("z"))], policy(1))
        .await
        .unwrap();
    assert_eq!(store.account_count(u32::MAX).await.unwrap(), 1);
    store.close();
}

#[tokio::test]
async fn the_description_never_shows_the_password() {
    let Some(db) = database().await else {
        return;
    };
    let store = PostgresStore::connect_with(&db.url(), small_pool())
        .await
        .unwrap();
    let d = store.description().to_owned();
    assert!(
        d.starts_with("postgres://") && d.ends_with(db.name()),
        "{d}"
    );
    store.close();
    let err = PostgresStore::connect("postgres://u:s3cret@127.0.0.1:1/x?connect_timeout=1")
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// `timacct_store::open` on a PostgreSQL target connects with the given pool options,
/// describes the database without its password, and closes the pool.
#[tokio::test]
async fn open_connects_to_postgres_and_closes() {
    let Some(db) = database().await else {
        return;
    };
    let options = OpenOptions {
        postgres: small_pool(),
    };
    let opened = timacct_store::open(Target::Postgres(db.url()), &options)
        .await
        .unwrap();
    let d = opened.description().to_owned();
    assert!(
        d.starts_with("postgres://") && d.ends_with(db.name()),
        "{d}"
    );
    let store = opened.store();
    store
        .import(1, vec![ImportItem::id_only(id("o"))], policy(1))
        .await
        .unwrap();
    assert_eq!(store.account_count(1).await.unwrap(), 1);
    opened.close();
    assert!(matches!(
        store.account_count(1).await,
        Err(StoreError::Closed)
    ));
    let err = timacct_store::open(
        "postgresql://u:s3cret@127.0.0.1:1/x?connect_timeout=1",
        &options,
    )
    .await
    .unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// Two stores on one database behave as one: what one acknowledges the other sees at once,
/// and concurrent imports and deletes of the same UserIDs through both end consistent, with
/// per-item outcomes that add up to the final state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_conflicting_writes_stay_consistent() {
    let Some(db) = database().await else {
        return;
    };
    let a = Arc::new(
        PostgresStore::connect_with(&db.url(), small_pool())
            .await
            .unwrap(),
    );
    let b = Arc::new(
        PostgresStore::connect_with(&db.url(), small_pool())
            .await
            .unwrap(),
    );
    const APP: u32 = 7;

    // Read-your-writes, both directions.
    for i in 0..20 {
        let (w, r) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let u = id(&format!("ryw{i}"));
        w.import(APP, vec![ImportItem::id_only(u.clone())], policy(1))
            .await
            .unwrap();
        assert_eq!(r.check(APP, &[u.borrowed()]).await.unwrap(), vec![true]);
        r.delete(APP, vec![u.clone()], 2).await.unwrap();
        assert_eq!(w.check(APP, &[u.borrowed()]).await.unwrap(), vec![false]);
    }
    assert_eq!(a.account_count(APP).await.unwrap(), 0);

    let names: Vec<String> = (0..50).map(|i| format!("u{i}")).collect();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        let names = names.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for round in 0..12u64 {
                // A varying, overlapping slice of the 50 IDs, with a repeat.
                let start = ((t * 7 + round * 13) % 50) as usize;
                let mut batch: Vec<UserId> =
                    (0..10).map(|k| id(&names[(start + k * 3) % 50])).collect();
                batch.push(batch[0].clone());
                if (t + round) % 2 == 0 {
                    let items = batch.iter().cloned().map(ImportItem::id_only).collect();
                    let out = store.import(APP, items, policy(1)).await.unwrap();
                    for (u, o) in batch.iter().zip(out) {
                        if o == ImportOutcome::Created {
                            tally.created(u.as_str());
                        }
                    }
                } else {
                    let out = store.delete(APP, batch.clone(), 2).await.unwrap();
                    for (u, o) in batch.iter().zip(out) {
                        if o == DeleteOutcome::Deleted {
                            tally.deleted(u.as_str());
                        }
                    }
                }
            }
            tally
        }));
    }
    let mut tally = Tally::default();
    for t in tasks {
        tally.add(t.await.unwrap());
    }
    let all: Vec<UserId> = names.iter().map(|n| id(n)).collect();
    let exists = a
        .check(APP, &all.iter().map(UserId::borrowed).collect::<Vec<_>>())
        .await
        .unwrap();
    // Every Deleted found an account some Created made, and none was lost or counted twice.
    let live = tally.assert_adds_up(&names, &exists);
    assert!(tally.creates() > 50, "the test made little contention");
    let client = db.client().await.unwrap();
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM accounts WHERE sdkappid = $1",
            &[&i64::from(APP)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, live);
    assert_eq!(a.account_count(APP).await.unwrap(), live as u64);
    assert_eq!(b.account_count(APP).await.unwrap(), live as u64);
}

/// Read-your-writes across instances once each answers `account_check` from its own
/// in-memory index: an import or delete acknowledged by one store is seen by the very next
/// check through the other, every time, while other checks keep both stores' rounds busy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_check_through_another_store_sees_every_acknowledged_write() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let Some(db) = database().await else {
        return;
    };
    let a = Arc::new(
        PostgresStore::connect_with(&db.url(), small_pool())
            .await
            .unwrap(),
    );
    a.import(21, vec![ImportItem::id_only(id("seed"))], policy(1))
        .await
        .unwrap();
    // Started after the app exists: its index loads what is already there.
    let b = Arc::new(
        PostgresStore::connect_with(&db.url(), small_pool())
            .await
            .unwrap(),
    );
    // An app's index loads on its first check.
    for store in [&a, &b] {
        assert_eq!(store.check(21, &refs(&["seed"])).await.unwrap(), vec![true]);
    }
    assert!(eventually(200, || a.index_ready(21) && b.index_ready(21)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut noise = Vec::new();
    for k in 0..4 {
        let store = if k % 2 == 0 { a.clone() } else { b.clone() };
        let stop = stop.clone();
        noise.push(tokio::spawn(async move {
            while !stop.load(Relaxed) {
                assert_eq!(store.check(21, &refs(&["seed"])).await.unwrap(), vec![true]);
            }
        }));
    }
    for round in 0..100 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let name = format!("ryw{}", round % 7);
        writer
            .import(21, vec![ImportItem::id_only(id(&name))], policy(round))
            .await
            .unwrap();
        assert_eq!(
            reader.check(21, &refs(&[name.as_str()])).await.unwrap(),
            vec![true],
            "round {round}: import through one store, check through the other"
        );
        assert_eq!(
            reader.delete(21, vec![id(&name)], round).await.unwrap(),
            vec![DeleteOutcome::Deleted]
        );
        assert_eq!(
            writer.check(21, &refs(&[name.as_str()])).await.unwrap(),
            vec![false],
            "round {round}: delete through one store, check through the other"
        );
    }
    stop.store(true, Relaxed);
    for n in noise {
        n.await.unwrap();
    }
    assert!(a.index_ready(21) && b.index_ready(21));
}

/// `max_accounts` and tombstones are decided against the shared state, not per store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_and_tombstones_hold_across_stores() {
    let Some(db) = database().await else {
        return;
    };
    let a = Arc::new(
        PostgresStore::connect_with(&db.url(), small_pool())
            .await
            .unwrap(),
    );
    let b = Arc::new(
        PostgresStore::connect_with(&db.url(), small_pool())
            .await
            .unwrap(),
    );
    let limited = ImportPolicy {
        max_accounts: Some(30),
        reimport_block_secs: None,
        now: 1,
    };
    let mut tasks = Vec::new();
    for t in 0..20 {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let items = (0..5)
                .map(|k| ImportItem::id_only(id(&format!("l{t}-{k}"))))
                .collect();
            store.import(8, items, limited).await.unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        for o in t.await.unwrap() {
            match o {
                ImportOutcome::Created => created += 1,
                ImportOutcome::LimitReached => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(created, 30);
    assert_eq!(b.account_count(8).await.unwrap(), 30);

    let blocked = |now| ImportPolicy {
        max_accounts: None,
        reimport_block_secs: Some(90 * 86_400),
        now,
    };
    a.import(9, vec![ImportItem::id_only(id("t"))], blocked(1))
        .await
        .unwrap();
    assert_eq!(
        b.delete(9, vec![id("t")], 5).await.unwrap(),
        vec![DeleteOutcome::Deleted]
    );
    for s in [&a, &b] {
        assert_eq!(
            s.import(9, vec![ImportItem::id_only(id("t"))], blocked(6))
                .await
                .unwrap(),
            vec![ImportOutcome::ReimportBlocked]
        );
    }
}

/// Generous on purpose: only a call that hangs (waits for a database that does not answer
/// with no bound) takes this long. The store's own bounds are a few seconds.
const HANG: Duration = Duration::from_secs(30);

/// Poll `done` every 50 ms, at most `attempts` times; whether it became true.
async fn eventually(attempts: usize, mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..attempts {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

/// Killed connections (an operator, a failover) and then a database that refuses every
/// connection for a while (a restart) fail the calls that need it with `Unavailable` (70500)
/// instead of hanging, and the pool replaces its connections by itself once the database is
/// back. Every import acknowledged before, during or after is there at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_and_a_restart_are_survived() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    let Some(db) = database().await else {
        return;
    };
    let store = Arc::new(
        PostgresStore::connect_with(&db.url(), small_pool())
            .await
            .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..6 {
        let (store, stop, acks, failures) =
            (store.clone(), stop.clone(), acks.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(Relaxed) {
                let u = id(&format!("k{w}-{n}"));
                n += 1;
                let call = store.import(1, vec![ImportItem::id_only(u.clone())], policy(1));
                match tokio::time::timeout(HANG, call).await.expect("a call hung") {
                    Ok(_) => {
                        acked.push(u);
                        acks.fetch_add(1, Relaxed);
                    }
                    Err(StoreError::Unavailable(_)) => {
                        failures.fetch_add(1, Relaxed);
                        // Do not hammer a database that is away.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            acked
        }));
    }
    let acked_past = |n: usize| {
        let acks = acks.clone();
        move || acks.load(Relaxed) >= n
    };
    assert!(eventually(400, acked_past(30)).await, "no traffic");
    let mut killed = 0;
    for round in 0..5 {
        killed += db.terminate_connections().await.unwrap();
        let target = acks.load(Relaxed) + 10;
        assert!(
            eventually(400, acked_past(target)).await,
            "no service after kill {round}"
        );
    }
    // The restart: every connection killed and new ones refused until it is back.
    let before = failures.load(Relaxed);
    killed += db.take_down().await.unwrap();
    let failing = {
        let failures = failures.clone();
        move || failures.load(Relaxed) >= before + 20
    };
    assert!(eventually(400, failing).await, "the outage was not felt");
    db.bring_up().await.unwrap();
    let target = acks.load(Relaxed) + 30;
    assert!(
        eventually(600, acked_past(target)).await,
        "service did not resume by itself"
    );
    stop.store(true, Relaxed);
    let mut acked = Vec::new();
    for w in workers {
        acked.extend(w.await.unwrap());
    }
    assert!(killed > 0);
    eprintln!(
        "{killed} connections killed, {} calls acknowledged, {} failed",
        acked.len(),
        failures.load(Relaxed)
    );
    // Nothing acknowledged was lost.
    for chunk in acked.chunks(100) {
        let seen = store
            .check(1, &chunk.iter().map(UserId::borrowed).collect::<Vec<_>>())
            .await
            .unwrap();
        let missing: Vec<&UserId> = chunk
            .iter()
            .zip(&seen)
            .filter(|(_, s)| !**s)
            .map(|(u, _)| u)
            .collect();
        assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    }
    assert!(store.account_count(1).await.unwrap() as usize >= acked.len());
}
