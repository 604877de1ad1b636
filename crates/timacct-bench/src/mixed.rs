//! Correctness under load: two real server instances on one PostgreSQL database, a mixed load
//! of imports, deletes and checks of overlapping UserIDs through both, and a check of every
//! answer against what the acknowledged answers before it allow.
//!
//! Each call is recorded with when it was sent and when its answer arrived. A call takes
//! effect at some moment between the two (its linearization point), so:
//!
//! - a check (or a delete) that finds a UserID absent is wrong if an import of it was
//!   acknowledged before the check was sent and no acknowledged delete of it could have come
//!   between them (one that answered after that import was sent, and was sent before the check
//!   answered);
//! - a check (or a delete) that finds it present is wrong if a delete of it was acknowledged
//!   before the check was sent and no successful import of it could have come between;
//! - at the end, with the load stopped, each UserID must be where the last acknowledged writes
//!   left it: when every write that may have been the last (none was sent after it answered)
//!   agrees, checks through both instances must say exactly that, and the account count
//!   must be the number of UserIDs present.
//!
//! Any error answer (a non-zero `ErrorCode` at the top) fails the run: the load is well within
//! the server's limits, so an error would be a bug too. `run` is what `timacct-bench mixed`
//! (60 s in `bench/run.sh`) and the bounded test in `tests/` share.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use serde_json::Value;
use timacct_server::{AppConfig, RateLimitPolicy, SecretKey, ServerBuilder};
use timacct_store::{AccountStore, PostgresOptions, PostgresStore};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::load::read_response;

const APP: u32 = 1_400_000_777;
const KEY: &str = "mixed-load-key";

/// What one run does.
#[derive(Clone, Debug)]
pub struct MixedOptions {
    /// The database both instances share (empty, or holding only this run's app).
    pub database_url: String,
    /// How long the load runs.
    pub duration: Duration,
    /// Concurrent clients, spread over both instances.
    pub clients: usize,
    /// Distinct UserIDs the load names (fewer: more conflicts).
    pub ids: usize,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
}

/// What a run saw: the counts, for the report.
#[derive(Debug, Default)]
pub struct MixedReport {
    pub imports: u64,
    pub deletes: u64,
    pub checks: u64,
    pub observations: u64,
    pub present_at_end: u64,
    pub undetermined_at_end: u64,
}

impl std::fmt::Display for MixedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mixed imports={} deletes={} checks={} observations_checked={} present_at_end={} undetermined_at_end={} violations=0 errors=0",
            self.imports,
            self.deletes,
            self.checks,
            self.observations,
            self.present_at_end,
            self.undetermined_at_end
        )
    }
}

/// One acknowledged call's effect on one UserID.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// An import that succeeded: the account exists from its point on.
    Imported,
    /// A delete that found the account: it existed just before its point, not after.
    Deleted,
    /// A delete that found no account, or a check that said `NotImported`.
    SawAbsent,
    /// A check that said `Imported`.
    SawPresent,
}

/// A call as the checker sees it: its interval, in microseconds since the run started.
#[derive(Clone, Copy, Debug)]
struct Timed {
    sent: u64,
    acked: u64,
    event: Event,
}

/// Start two instances on one database, run the load, check every answer.
pub async fn run(options: MixedOptions) -> anyhow::Result<MixedReport> {
    let pool = PostgresOptions {
        max_connections: 8,
        ..PostgresOptions::default()
    };
    let mut instances = Vec::new();
    for _ in 0..2 {
        let store = PostgresStore::connect_with(&options.database_url, pool.clone())
            .await
            .context("connect")?;
        let mut app = AppConfig::new(APP, SecretKey::new(KEY));
        app.rate_limits = RateLimitPolicy::Off;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = ServerBuilder::new(vec![app], Arc::new(store.clone())).build();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        instances.push((addr, store, stop, task));
    }
    let addrs: Vec<SocketAddr> = instances.iter().map(|i| i.0).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let sig = timacct_usersig::UserSigGenerator::new(u64::from(APP), KEY).gen(
        "administrator",
        86_400,
        now,
    );
    let epoch = Instant::now();
    let deadline = epoch + options.duration;
    let mut tasks = Vec::new();
    for c in 0..options.clients {
        let addr = addrs[c % addrs.len()];
        let sig = sig.clone();
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            client(addr, &sig, &options, c as u64, epoch, deadline).await
        }));
    }
    let mut events: HashMap<String, Vec<Timed>> = HashMap::new();
    let mut report = MixedReport::default();
    for t in tasks {
        let (seen, counts) = t.await??;
        report.imports += counts[0];
        report.deletes += counts[1];
        report.checks += counts[2];
        for (id, e) in seen {
            events.entry(id).or_default().push(e);
        }
    }

    report.observations = verify_observations(&events)?;

    // The end state, through both instances, against what the acknowledged writes left.
    let all: Vec<String> = (0..options.ids).map(name).collect();
    let mut present = 0u64;
    for addr in &addrs {
        let answers = check(*addr, &sig, &all).await?;
        present = 0;
        for (id, is_present) in all.iter().zip(answers) {
            match final_state(events.get(id).map(Vec::as_slice).unwrap_or(&[])) {
                Some(expected) => ensure!(
                    expected == is_present,
                    "{id}: the acknowledged writes leave it {}, but a check through {addr} at the end says {}",
                    word(expected),
                    word(is_present)
                ),
                None if addr == &addrs[0] => report.undetermined_at_end += 1,
                None => {}
            }
            present += u64::from(is_present);
        }
    }
    report.present_at_end = present;
    for (_, store, stop, task) in instances {
        let count = store.account_count(APP).await?;
        ensure!(
            count == present,
            "account_count says {count}, the checks {present}"
        );
        let _ = stop.send(());
        task.await??;
        store.close();
    }
    Ok(report)
}

fn word(present: bool) -> &'static str {
    if present {
        "Imported"
    } else {
        "NotImported"
    }
}

fn name(i: usize) -> String {
    format!("mx{i:03}")
}

/// A small, fast, seeded generator: the load need not be cryptographic, only varied.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

type ClientResult = (Vec<(String, Timed)>, [u64; 3]);

/// One client: calls in a loop on one keep-alive connection until the deadline, recording
/// each answer.
async fn client(
    addr: SocketAddr,
    sig: &str,
    options: &MixedOptions,
    c: u64,
    epoch: Instant,
    deadline: Instant,
) -> anyhow::Result<ClientResult> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut rng = Rng(options.seed ^ (c + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut seen = Vec::new();
    let mut counts = [0u64; 3];
    let micros = |t: Instant| t.saturating_duration_since(epoch).as_micros() as u64;
    while Instant::now() < deadline {
        let op = rng.below(100);
        let n = match op {
            0..=44 => 1 + rng.below(4),
            45..=64 => 1 + rng.below(3),
            _ => 8,
        };
        let ids: Vec<String> = (0..n)
            .map(|_| name(rng.below(options.ids as u64) as usize))
            .collect();
        let list = |key: &str| {
            let items: Vec<String> = ids
                .iter()
                .map(|id| format!("{{\"{key}\":\"{id}\"}}"))
                .collect();
            items.join(",")
        };
        let (api, body) = match op {
            0..=44 => (
                "multiaccount_import",
                format!("{{\"AccountList\":[{}]}}", list("UserID")),
            ),
            45..=64 => (
                "account_delete",
                format!("{{\"DeleteItem\":[{}]}}", list("UserID")),
            ),
            _ => (
                "account_check",
                format!("{{\"CheckItem\":[{}]}}", list("UserID")),
            ),
        };
        let sent = Instant::now();
        let reply = call(&mut stream, &mut buf, addr, sig, api, &body).await?;
        let acked = Instant::now();
        let at = |event| Timed {
            sent: micros(sent),
            acked: micros(acked),
            event,
        };
        match api {
            "multiaccount_import" => {
                counts[0] += 1;
                let failed = reply["FailAccounts"].as_array().map_or(1, Vec::len);
                ensure!(failed == 0, "import failed for some accounts: {reply}");
                for id in &ids {
                    seen.push((id.clone(), at(Event::Imported)));
                }
            }
            "account_delete" => {
                counts[1] += 1;
                let items = reply["ResultItem"].as_array().context("no ResultItem")?;
                ensure!(items.len() == ids.len(), "ResultItem count: {reply}");
                // A repeat within one delete finds the account gone because of the first:
                // only the first occurrence says something about the state before.
                let mut firsts = std::collections::HashSet::new();
                for (id, item) in ids.iter().zip(items) {
                    let code = item["ResultCode"].as_u64();
                    if !firsts.insert(id) {
                        continue;
                    }
                    let event = match code {
                        Some(0) => Event::Deleted,
                        Some(70107) => Event::SawAbsent,
                        _ => bail!("unexpected delete item {item}"),
                    };
                    seen.push((id.clone(), at(event)));
                }
            }
            _ => {
                counts[2] += 1;
                let items = reply["ResultItem"].as_array().context("no ResultItem")?;
                ensure!(items.len() == ids.len(), "ResultItem count: {reply}");
                for (id, item) in ids.iter().zip(items) {
                    let event = match item["AccountStatus"].as_str() {
                        Some("Imported") => Event::SawPresent,
                        Some("NotImported") => Event::SawAbsent,
                        _ => bail!("unexpected check item {item}"),
                    };
                    seen.push((id.clone(), at(event)));
                }
            }
        }
    }
    Ok((seen, counts))
}

/// One call on the connection: its parsed answer, which must be `ErrorCode` 0.
async fn call(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    addr: SocketAddr,
    sig: &str,
    api: &str,
    body: &str,
) -> anyhow::Result<Value> {
    let request = format!(
        "POST /v4/im_open_login_svc/{api}?sdkappid={APP}&identifier=administrator&usersig={sig}&random=1&contenttype=json HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let (ok, answer) = read_response(stream, buf).await?;
    ensure!(ok, "HTTP status not 200 for {api}");
    let reply: Value = serde_json::from_slice(answer)?;
    ensure!(reply["ErrorCode"] == 0, "{api} answered an error: {reply}");
    Ok(reply)
}

/// `account_check` of `ids` on a fresh connection: whether each is imported.
async fn check(addr: SocketAddr, sig: &str, ids: &[String]) -> anyhow::Result<Vec<bool>> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut buf = Vec::new();
    let items: Vec<String> = ids
        .iter()
        .map(|id| format!("{{\"UserID\":\"{id}\"}}"))
        .collect();
    let body = format!("{{\"CheckItem\":[{}]}}", items.join(","));
    let reply = call(&mut stream, &mut buf, addr, sig, "account_check", &body).await?;
    let items = reply["ResultItem"].as_array().context("no ResultItem")?;
    Ok(items
        .iter()
        .map(|i| i["AccountStatus"] == "Imported")
        .collect())
}

/// For `(sent, acked)` intervals sorted by `acked`: the latest `sent` among the first `k`.
fn prefix_max_sent(sorted_by_ack: &[Timed]) -> Vec<u64> {
    let mut out = Vec::with_capacity(sorted_by_ack.len());
    let mut m = 0;
    for t in sorted_by_ack {
        m = m.max(t.sent);
        out.push(m);
    }
    out
}

/// For intervals sorted by `sent`: the latest `acked` among the first `k`.
fn prefix_max_acked(sorted_by_sent: &[Timed]) -> Vec<u64> {
    let mut out = Vec::with_capacity(sorted_by_sent.len());
    let mut m = 0;
    for t in sorted_by_sent {
        m = m.max(t.acked);
        out.push(m);
    }
    out
}

/// Every observation (check answers, delete outcomes) against the writes around it (see the
/// module documentation); how many were checked.
fn verify_observations(events: &HashMap<String, Vec<Timed>>) -> anyhow::Result<u64> {
    let mut checked = 0;
    for (id, list) in events {
        let pick = |f: fn(&Event) -> bool| {
            let mut v: Vec<Timed> = list.iter().copied().filter(|t| f(&t.event)).collect();
            v.sort_by_key(|t| t.acked);
            v
        };
        let imports = pick(|e| matches!(e, Event::Imported));
        let deletes = pick(|e| matches!(e, Event::Deleted));
        let imports_max_sent = prefix_max_sent(&imports);
        let deletes_max_sent = prefix_max_sent(&deletes);
        let by_sent = |v: &[Timed]| {
            let mut v = v.to_vec();
            v.sort_by_key(|t| t.sent);
            v
        };
        let imports_by_sent = by_sent(&imports);
        let deletes_by_sent = by_sent(&deletes);
        let imports_max_acked = prefix_max_acked(&imports_by_sent);
        let deletes_max_acked = prefix_max_acked(&deletes_by_sent);
        // The latest `sent` of the writes acknowledged before `t` (if any).
        let last_before = |acked: &[Timed], max_sent: &[u64], t: u64| {
            let k = acked.partition_point(|w| w.acked < t);
            (k > 0).then(|| max_sent[k - 1])
        };
        // Whether some write of the other kind, sent before `until`, answered after `after`:
        // it may then have taken effect between the two.
        let could_intervene = |by_sent: &[Timed], max_acked: &[u64], after: u64, until: u64| {
            let k = by_sent.partition_point(|w| w.sent < until);
            k > 0 && max_acked[k - 1] > after
        };
        for t in list {
            let (says_present, own) = match t.event {
                Event::SawPresent => (true, false),
                Event::Deleted => (true, true),
                Event::SawAbsent => (false, false),
                Event::Imported => continue,
            };
            checked += 1;
            if says_present {
                // A delete acknowledged before this was sent, and no import that can come
                // between. (A delete is its own observation: it is not "between".)
                if let Some(s) = last_before(&deletes, &deletes_max_sent, t.sent) {
                    if !could_intervene(&imports_by_sent, &imports_max_acked, s, t.acked) {
                        bail!(
                            "{id}: {} said Imported at {}..{} us, after a delete acknowledged before it was sent (sent at {s} us), with no import in between",
                            if own { "a delete" } else { "a check" },
                            t.sent,
                            t.acked
                        );
                    }
                }
            } else if let Some(s) = last_before(&imports, &imports_max_sent, t.sent) {
                if !could_intervene(&deletes_by_sent, &deletes_max_acked, s, t.acked) {
                    bail!(
                        "{id}: a check or delete said NotImported at {}..{} us, after an import acknowledged before it was sent (sent at {s} us), with no delete in between",
                        t.sent,
                        t.acked
                    );
                }
            }
        }
    }
    Ok(checked)
}

/// Where the acknowledged writes leave a UserID: `Some(present)` when every write that may
/// have been the last one (none was sent after it was acknowledged) agrees, `None` when
/// writes of both kinds overlap at the end.
fn final_state(list: &[Timed]) -> Option<bool> {
    let writes: Vec<&Timed> = list
        .iter()
        .filter(|t| matches!(t.event, Event::Imported | Event::Deleted))
        .collect();
    if writes.is_empty() {
        return Some(false);
    }
    let last_sent = writes.iter().map(|w| w.sent).max().unwrap_or(0);
    let mut state = None;
    for w in writes.iter().filter(|w| w.acked >= last_sent) {
        let present = matches!(w.event, Event::Imported);
        match state {
            None => state = Some(present),
            Some(s) if s != present => return None,
            _ => {}
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sent: u64, acked: u64, event: Event) -> Timed {
        Timed { sent, acked, event }
    }

    fn verify(list: Vec<Timed>) -> anyhow::Result<u64> {
        verify_observations(&HashMap::from([("x".to_owned(), list)]))
    }

    /// The checker itself: it accepts what a correct store may answer and rejects the stale
    /// reads the run is there to catch.
    #[test]
    fn the_checker_tells_stale_reads_from_concurrent_ones() {
        use Event::*;
        // Imported, then a check sent after the ack says absent: stale.
        assert!(verify(vec![t(0, 10, Imported), t(11, 20, SawAbsent)]).is_err());
        // The same with a delete that overlaps: fine.
        assert!(verify(vec![
            t(0, 10, Imported),
            t(5, 15, Deleted),
            t(11, 20, SawAbsent)
        ])
        .is_ok());
        // A check sent before the import answered may say either.
        assert!(verify(vec![t(0, 10, Imported), t(9, 20, SawAbsent)]).is_ok());
        // Deleted, then a check says present without any import between: stale.
        assert!(verify(vec![
            t(0, 5, Imported),
            t(6, 10, Deleted),
            t(11, 20, SawPresent)
        ])
        .is_err());
        assert!(verify(vec![
            t(0, 5, Imported),
            t(6, 10, Deleted),
            t(8, 30, Imported),
            t(11, 20, SawPresent)
        ])
        .is_ok());
        // A delete that found nothing after an acknowledged import: stale.
        assert!(verify(vec![t(0, 5, Imported), t(6, 10, SawAbsent)]).is_err());
        // A delete after an acknowledged delete that says it deleted: needs an import between.
        assert!(verify(vec![
            t(0, 5, Imported),
            t(6, 10, Deleted),
            t(11, 20, Deleted)
        ])
        .is_err());
    }

    /// The run itself, bounded for CI (the benchmark runs it for 60 s): two instances on one
    /// fresh database, 16 clients, 48 UserIDs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_under_mixed_load_end_as_acknowledged() {
        let Some(db) = timacct_store::postgres::TestDatabase::create()
            .await
            .unwrap()
        else {
            return;
        };
        let report = run(MixedOptions {
            database_url: db.url(),
            duration: Duration::from_secs(12),
            clients: 16,
            ids: 48,
            seed: 0x5eed,
        })
        .await
        .unwrap();
        println!("{report}");
        assert!(report.imports > 0 && report.deletes > 0 && report.checks > 0);
        assert!(report.observations > 0);
    }

    #[test]
    fn the_final_state_is_the_last_acknowledged_writes() {
        use Event::*;
        assert_eq!(final_state(&[]), Some(false));
        assert_eq!(
            final_state(&[t(0, 5, Imported), t(6, 10, Deleted)]),
            Some(false)
        );
        assert_eq!(
            final_state(&[t(0, 5, Deleted), t(6, 10, Imported)]),
            Some(true)
        );
        assert_eq!(final_state(&[t(0, 10, Deleted), t(6, 12, Imported)]), None);
        assert_eq!(
            final_state(&[t(0, 10, Imported), t(6, 12, Imported), t(1, 2, Deleted)]),
            Some(true)
        );
    }
}
