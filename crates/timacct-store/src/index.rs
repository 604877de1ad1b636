//! An in-memory set of every stored UserID, so that `account_check` does no SQL at all.
//!
//! It is changed only after the transaction that made a change has committed, so it never
//! shows a write that is not durable: in SQLite by the writer thread after each commit, in
//! PostgreSQL by each instance's change feed (`postgres::feed`), which applies what the
//! database has committed, whoever wrote it. Memory is kept small
//! for millions of accounts: each app stores its UserIDs back to back in one byte arena
//! (`[len][bytes]`), and its hash table holds 8-byte slots (a 32-bit tag of the hash and a
//! 4-byte offset into that arena).
//!
//! Why not a general-purpose hash table: with a million accounts the table and arena are far
//! larger than the CPU caches, and profiling `account_check` showed a third of the server's
//! time stalled on memory, because each of the 100 look-ups of a request waited for its
//! slot, then for its arena bytes, one after the other. This table is open-addressed with
//! linear probing, so [`AccountIndex::contains_all`] can look up a whole batch in passes:
//! first every home slot, then every candidate's arena bytes, then the comparisons. The loads
//! within a pass do not depend on each other, so the CPU has many cache misses in flight at
//! once instead of one.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;

/// Every app's UserIDs.
#[derive(Default)]
pub(crate) struct AccountIndex {
    apps: HashMap<u32, AppIndex>,
}

/// A change to apply once its transaction has committed.
pub(crate) enum IndexChange {
    Insert(u32, String),
    Remove(u32, String),
}

impl AccountIndex {
    /// One look-up at a time: what the batched [`AccountIndex::contains_all`] is tested against.
    #[cfg(test)]
    pub(crate) fn contains(&self, app: u32, user_id: &str) -> bool {
        self.apps.get(&app).is_some_and(|a| a.contains(user_id))
    }

    /// Whether each of `ids` exists in `app`: one app lookup for the whole batch.
    pub(crate) fn contains_all<S: AsRef<str>>(&self, app: u32, ids: &[S]) -> Vec<bool> {
        match self.apps.get(&app) {
            Some(a) => a.contains_all(ids),
            None => vec![false; ids.len()],
        }
    }

    pub(crate) fn insert(&mut self, app: u32, user_id: &str) {
        self.apps.entry(app).or_default().insert(user_id);
    }

    /// Make room for `n` more UserIDs of `app` at once, so that loading them never grows
    /// (and so re-hashes) the table on the way.
    pub(crate) fn reserve_exact(&mut self, app: u32, n: usize) {
        self.apps.entry(app).or_default().reserve_exact(n);
    }

    /// Start filling the index from rows that are distinct by construction (the table's
    /// primary key is `(sdkappid, user_id)`); see [`Loader`].
    pub(crate) fn loader(self) -> Loader {
        Loader {
            index: self,
            app: None,
            batch: Vec::with_capacity(LOAD_BATCH),
        }
    }

    pub(crate) fn apply(&mut self, change: IndexChange) {
        match change {
            IndexChange::Insert(app, id) => self.insert(app, &id),
            IndexChange::Remove(app, id) => {
                if let Some(a) = self.apps.get_mut(&app) {
                    a.remove(&id);
                }
            }
        }
    }

    /// Number of UserIDs held, over all apps.
    pub(crate) fn len(&self) -> usize {
        self.apps.values().map(|a| a.len).sum()
    }
}

/// How many keys [`Loader`] places in the table at once.
const LOAD_BATCH: usize = 64;

/// Fills an index at start-up, an order of magnitude more keys than any write brings.
///
/// Why not [`AccountIndex::insert`] in a loop: profiling a start with 10 million accounts
/// put half of the load's time in `insert` and the table growing under it, because every
/// insert first probed for a duplicate (a cache miss) and then probed again to place the key
/// (the same miss, one after the other). Rows from the primary key need no duplicate check;
/// the loader copies each key to the arena, and every [`LOAD_BATCH`] keys it reads all
/// their home slots in one pass (independent loads that overlap) before placing them.
pub(crate) struct Loader {
    index: AccountIndex,
    /// The app whose keys `batch` holds.
    app: Option<u32>,
    /// Arena offset and hash of keys copied but not yet placed.
    batch: Vec<(u32, u64)>,
}

impl Loader {
    /// Add a UserID known not to be in the index already.
    pub(crate) fn push(&mut self, app: u32, user_id: &str) {
        if self.app != Some(app) {
            self.flush();
            self.app = Some(app);
        }
        let a = self.index.apps.entry(app).or_default();
        let bytes = user_id.as_bytes();
        let (Ok(len), Ok(offset)) = (u8::try_from(bytes.len()), u32::try_from(a.arena.len()))
        else {
            return;
        };
        a.arena.push(len);
        a.arena.extend_from_slice(bytes);
        self.batch.push((offset, a.hasher.hash_one(bytes)));
        if self.batch.len() == LOAD_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Some(a) = self.app.and_then(|app| self.index.apps.get_mut(&app)) {
            a.place_distinct(&self.batch);
        }
        self.batch.clear();
    }

    pub(crate) fn finish(mut self) -> AccountIndex {
        self.flush();
        self.index
    }
}

/// A slot: `tag` 0 is empty, 1 a deleted entry (probing goes on past it), anything else a
/// live entry whose hash has that tag and whose key is at `offset` in the arena.
#[derive(Clone, Copy, Default)]
struct Slot {
    tag: u32,
    offset: u32,
}

const EMPTY: u32 = 0;
const DELETED: u32 = 1;

#[derive(Default)]
struct AppIndex {
    /// A power of two long (or empty), at most 70% used (live plus deleted slots).
    slots: Vec<Slot>,
    /// Live entries.
    len: usize,
    /// Live plus deleted slots.
    used: usize,
    arena: Vec<u8>,
    /// Bytes in `arena` that belong to deleted UserIDs; reclaimed by compaction.
    dead: usize,
    hasher: DefaultHashBuilder,
}

fn key_at(arena: &[u8], offset: u32) -> &[u8] {
    let start = offset as usize;
    let len = arena.get(start).copied().unwrap_or(0) as usize;
    arena.get(start + 1..start + 1 + len).unwrap_or(&[])
}

impl AppIndex {
    /// The home slot (for a table of `slots` slots) and the tag of a key. The tag comes from
    /// the high bits of the hash, the slot from the low ones, so the two are independent.
    fn locate(hasher: &DefaultHashBuilder, slots: usize, key: &[u8]) -> (usize, u32) {
        Self::split(hasher.hash_one(key), slots)
    }

    fn split(hash: u64, slots: usize) -> (usize, u32) {
        let tag = ((hash >> 32) as u32).max(DELETED + 1);
        (hash as usize & slots.wrapping_sub(1), tag)
    }

    /// Make room for `extra` more entries: if they would fill the table past 70% (live plus
    /// deleted slots), rebuild it half full, which leaves room for as many again, so growth
    /// stays amortised even when deletes and inserts alternate near the bound.
    fn reserve(&mut self, extra: usize) {
        if (self.used + extra) * 10 > self.slots.len() * 7 {
            self.rebuild_into(Self::capacity_for(self.len + extra, 50), false);
        }
    }

    /// Size the table for `n` more entries known in advance (start-up): the smallest power
    /// of two they fit in at 70%, which is the table (and memory) growth would have reached
    /// for them, built once instead of doubling all the way there.
    fn reserve_exact(&mut self, n: usize) {
        let capacity = Self::capacity_for(self.len + n, 70);
        if capacity > self.slots.len() {
            self.rebuild_into(capacity, false);
        }
    }

    /// The smallest table (a power of two, at least 16 slots) that `n` entries fill to at
    /// most `percent`.
    fn capacity_for(n: usize, percent: usize) -> usize {
        let mut capacity = 16;
        while n * 100 > capacity * percent {
            capacity *= 2;
        }
        capacity
    }

    /// Place keys already copied to the arena (offset and hash each) and known to be absent:
    /// one pass that reads every home slot, so their cache misses overlap, then the probes.
    fn place_distinct(&mut self, batch: &[(u32, u64)]) {
        if batch.is_empty() {
            return;
        }
        self.reserve(batch.len());
        let mask = self.slots.len() - 1;
        let mut touched = 0u32;
        for &(_, hash) in batch {
            touched ^= self.slots[hash as usize & mask].tag;
        }
        std::hint::black_box(touched);
        for &(offset, hash) in batch {
            let (home, tag) = Self::split(hash, self.slots.len());
            self.place(home, Slot { tag, offset });
        }
    }

    /// Put a new live entry in the first empty or deleted slot probing from `home`. The
    /// table has room (callers reserve first), so the probe ends.
    fn place(&mut self, home: usize, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = home;
        while self.slots[i].tag > DELETED {
            i = (i + 1) & mask;
        }
        if self.slots[i].tag == EMPTY {
            self.used += 1;
        }
        self.slots[i] = slot;
        self.len += 1;
    }

    /// The slot holding `key`, if any, probing from `home`.
    fn find(&self, key: &[u8], home: usize, tag: u32) -> Option<usize> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = home;
        // The table is never full, so an empty slot always ends the probe.
        for _ in 0..self.slots.len() {
            let slot = self.slots.get(i)?;
            if slot.tag == EMPTY {
                return None;
            }
            if slot.tag == tag && key_at(&self.arena, slot.offset) == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    #[cfg(test)]
    fn contains(&self, user_id: &str) -> bool {
        if self.slots.is_empty() {
            return false;
        }
        let (home, tag) = Self::locate(&self.hasher, self.slots.len(), user_id.as_bytes());
        self.find(user_id.as_bytes(), home, tag).is_some()
    }

    fn contains_all<S: AsRef<str>>(&self, ids: &[S]) -> Vec<bool> {
        if self.slots.is_empty() {
            return vec![false; ids.len()];
        }
        // Pass 1: hash every ID (computation only, no loads of the table).
        let homes: Vec<(usize, u32)> = ids
            .iter()
            .map(|id| Self::locate(&self.hasher, self.slots.len(), id.as_ref().as_bytes()))
            .collect();
        // Pass 2: load every home slot. A loop of a few instructions per slot, so that the
        // CPU's reorder window holds dozens of these independent loads at once: with the
        // hashing in the same loop it held about eight, and this pass was a third of the
        // look-up's time (`perf annotate`: the stall on the slot load).
        let slots: Vec<Slot> = homes
            .iter()
            .map(|&(home, _)| self.slots.get(home).copied().unwrap_or_default())
            .collect();
        // Pass 3: touch the arena bytes of every home slot whose tag matches (independent
        // loads again); folding them together only keeps the compiler from dropping them.
        let mut touched = 0u8;
        for (&(_, tag), slot) in homes.iter().zip(&slots) {
            if slot.tag == tag {
                touched ^= self.arena.get(slot.offset as usize).copied().unwrap_or(0);
            }
        }
        std::hint::black_box(touched);
        // Pass 4: the real look-ups, now mostly from cache.
        homes
            .iter()
            .zip(ids)
            .map(|(&(home, tag), id)| self.find(id.as_ref().as_bytes(), home, tag).is_some())
            .collect()
    }

    fn insert(&mut self, user_id: &str) {
        let bytes = user_id.as_bytes();
        // UserIDs are at most 32 bytes; anything longer never reaches the store.
        let Ok(len) = u8::try_from(bytes.len()) else {
            return;
        };
        self.reserve(1);
        let (home, tag) = Self::locate(&self.hasher, self.slots.len(), bytes);
        if self.find(bytes, home, tag).is_some() {
            return;
        }
        let Ok(offset) = u32::try_from(self.arena.len()) else {
            return;
        };
        self.arena.push(len);
        self.arena.extend_from_slice(bytes);
        self.place(home, Slot { tag, offset });
    }

    fn remove(&mut self, user_id: &str) {
        if self.slots.is_empty() {
            return;
        }
        let bytes = user_id.as_bytes();
        let (home, tag) = Self::locate(&self.hasher, self.slots.len(), bytes);
        if let Some(i) = self.find(bytes, home, tag) {
            self.slots[i].tag = DELETED;
            self.len -= 1;
            self.dead += 1 + bytes.len();
        }
        if self.dead > 1 << 20 && self.dead > self.arena.len() / 2 {
            self.rebuild(true);
        }
    }

    /// Re-insert every live entry into a table at most half full, dropping deleted slots;
    /// with `compact`, also rewrite the arena without the deleted UserIDs.
    fn rebuild(&mut self, compact: bool) {
        self.rebuild_into(Self::capacity_for(self.len + 1, 50), compact);
    }

    /// [`rebuild`](Self::rebuild) into a table of `capacity` slots (a power of two that
    /// holds every live entry).
    fn rebuild_into(&mut self, capacity: usize, compact: bool) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); capacity]);
        let mut arena = Vec::new();
        if compact {
            arena.reserve(self.arena.len().saturating_sub(self.dead));
        }
        let mask = capacity - 1;
        for slot in old.iter().filter(|s| s.tag > DELETED) {
            let key = key_at(&self.arena, slot.offset);
            let offset = if compact {
                let Ok(offset) = u32::try_from(arena.len()) else {
                    continue;
                };
                arena.push(key.len() as u8);
                arena.extend_from_slice(key);
                offset
            } else {
                slot.offset
            };
            let (home, tag) = Self::locate(&self.hasher, capacity, key);
            let mut i = home;
            while self.slots[i].tag != EMPTY {
                i = (i + 1) & mask;
            }
            self.slots[i] = Slot { tag, offset };
        }
        if compact {
            self.arena = arena;
            self.dead = 0;
        }
        self.used = self.len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_compact() {
        let mut idx = AccountIndex::default();
        for i in 0..200_000 {
            idx.insert(1, &format!("user-{i}"));
        }
        idx.insert(1, "user-5");
        assert_eq!(idx.len(), 200_000);
        assert!(idx.contains(1, "user-5") && !idx.contains(2, "user-5"));
        for i in 0..150_000 {
            idx.apply(IndexChange::Remove(1, format!("user-{i}")));
        }
        assert_eq!(idx.len(), 50_000);
        assert!(!idx.contains(1, "user-0"));
        assert!(idx.contains(1, "user-150000") && idx.contains(1, "user-199999"));
        idx.apply(IndexChange::Insert(1, "user-0".into()));
        assert!(idx.contains(1, "user-0"));
        assert!(!idx.contains(1, "user-"));
    }

    /// Random inserts and removes, checked against a `HashSet` after every step of a long
    /// run, one ID at a time and in batches (which take the multi-pass path).
    #[test]
    fn agrees_with_a_hash_set_through_growth_deletes_and_compaction() {
        use std::collections::HashSet;
        let mut idx = AccountIndex::default();
        let mut model = HashSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for step in 0..300_000u32 {
            let id = format!("k{}", next() % 20_000);
            if next() % 3 == 0 {
                idx.apply(IndexChange::Remove(7, id.clone()));
                model.remove(&id);
            } else {
                idx.insert(7, &id);
                model.insert(id.clone());
            }
            assert_eq!(idx.contains(7, &id), model.contains(&id), "step {step}");
            if step % 1000 == 0 {
                let batch: Vec<String> =
                    (0..100).map(|_| format!("k{}", next() % 25_000)).collect();
                let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                let expected: Vec<bool> = batch.iter().map(|b| model.contains(b)).collect();
                assert_eq!(idx.contains_all(7, &refs), expected, "step {step}");
                assert_eq!(idx.len(), model.len());
            }
        }
        // Enough deletes to force arena compaction, then everything still answers right.
        for i in 0..200_000 {
            idx.insert(8, &format!("long-user-id-{i:020}"));
        }
        for i in 0..190_000 {
            idx.apply(IndexChange::Remove(8, format!("long-user-id-{i:020}")));
        }
        let probe: Vec<String> = (185_000..195_000)
            .map(|i| format!("long-user-id-{i:020}"))
            .collect();
        let refs: Vec<&str> = probe.iter().map(String::as_str).collect();
        let found = idx.contains_all(8, &refs);
        assert!(found.iter().take(5_000).all(|f| !f));
        assert!(found.iter().skip(5_000).all(|f| *f));
        assert_eq!(idx.contains_all(9, &refs), vec![false; refs.len()]);
    }

    /// The start-up loader (batched placement, sized from a count that may be wrong either
    /// way) builds an index that answers exactly like one built insert by insert, over
    /// several apps, and stays a normal index for the writes that follow.
    #[test]
    fn loader_agrees_with_inserts() {
        for (hint_a, hint_b) in [(0usize, 0usize), (30_000, 10), (10, 1_000_000)] {
            let mut reference = AccountIndex::default();
            let mut loaded = AccountIndex::default();
            loaded.reserve_exact(1, hint_a);
            loaded.reserve_exact(2, hint_b);
            let mut loader = loaded.loader();
            // Rows come in primary-key order: by app, then UserID; an app may have a
            // single row, and a batch may end anywhere.
            for i in 0..30_001 {
                let id = format!("a{i:06}");
                reference.insert(1, &id);
                loader.push(1, &id);
            }
            reference.insert(2, "only");
            loader.push(2, "only");
            for i in 0..777 {
                let id = format!("c{i}");
                reference.insert(3, &id);
                loader.push(3, &id);
            }
            let mut loaded = loader.finish();
            assert_eq!(loaded.len(), reference.len());
            let probe: Vec<String> = (0..31_000)
                .map(|i| format!("a{i:06}"))
                .chain([
                    "only".to_string(),
                    "c0".into(),
                    "c776".into(),
                    "c777".into(),
                ])
                .collect();
            let refs: Vec<&str> = probe.iter().map(String::as_str).collect();
            for app in [1, 2, 3, 4] {
                let want = reference.contains_all(app, &refs);
                assert_eq!(loaded.contains_all(app, &refs), want, "app {app}");
                assert_eq!(
                    want.iter().filter(|f| **f).count(),
                    match app {
                        1 => 30_001,
                        2 => 1,
                        3 => 2,
                        _ => 0,
                    }
                );
            }
            // Writes after the load: growth past the sized table, removals.
            for i in 30_001..90_000 {
                loaded.insert(1, &format!("a{i:06}"));
            }
            loaded.apply(IndexChange::Remove(1, "a000000".into()));
            loaded.apply(IndexChange::Remove(2, "only".into()));
            assert!(!loaded.contains(1, "a000000") && !loaded.contains(2, "only"));
            assert!(loaded.contains(1, "a000001") && loaded.contains(1, "a089999"));
            assert_eq!(loaded.len(), 90_000 - 1 + 777);
        }
    }

    /// The batch look-up as it was before the hashing and the slot loads were split into
    /// passes of their own: the baseline of `index_batch_cost`.
    fn contains_all_fused(a: &AppIndex, ids: &[&str]) -> Vec<bool> {
        let homes: Vec<(usize, u32, Slot)> = ids
            .iter()
            .map(|id| {
                let (home, tag) = AppIndex::locate(&a.hasher, a.slots.len(), id.as_bytes());
                (home, tag, a.slots.get(home).copied().unwrap_or_default())
            })
            .collect();
        let mut touched = 0u8;
        for (_, tag, slot) in &homes {
            if slot.tag == *tag {
                touched ^= a.arena.get(slot.offset as usize).copied().unwrap_or(0);
            }
        }
        std::hint::black_box(touched);
        homes
            .iter()
            .zip(ids)
            .map(|(&(home, tag, _), id)| a.find(id.as_bytes(), home, tag).is_some())
            .collect()
    }

    /// Not a test: the price of one `account_check` batch of 100 (half of them stored)
    /// against 1M accounts, without HTTP, against the fused baseline in alternating rounds
    /// of the same process (this VM's speed drifts by 2x from minute to minute):
    /// `cargo test --release -p timacct-store index_batch_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn index_batch_cost() {
        let n = 1_000_000u64;
        let mut idx = AccountIndex::default();
        idx.reserve_exact(1, n as usize);
        let mut loader = idx.loader();
        for i in 0..n {
            loader.push(1, &format!("u{i:08}"));
        }
        let idx = loader.finish();
        let app = &idx.apps[&1];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let batches: Vec<Vec<String>> = (0..1024)
            .map(|_| {
                (0..100)
                    .map(|k| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let id = (x >> 16) % n + if k % 2 == 0 { 0 } else { 900_000_000 };
                        format!("u{id:08}")
                    })
                    .collect()
            })
            .collect();
        let refs: Vec<Vec<&str>> = batches
            .iter()
            .map(|b| b.iter().map(String::as_str).collect())
            .collect();
        let time = |f: &dyn Fn(&[&str]) -> Vec<bool>| {
            let started = std::time::Instant::now();
            let mut found = 0usize;
            for r in 0..20_000 {
                found += f(&refs[r % 1024]).iter().filter(|f| **f).count();
            }
            assert_eq!(found, 20_000 * 50);
            started.elapsed().as_secs_f64() / 20_000.0 * 1e6
        };
        for round in 0..5 {
            let fused = time(&|ids| contains_all_fused(app, ids));
            let passes = time(&|ids| app.contains_all(ids));
            println!(
                "round {round}: passes {passes:.2} us per batch, fused {fused:.2} us, ratio {:.2}",
                fused / passes
            );
        }
    }
}
