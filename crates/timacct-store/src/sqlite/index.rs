//! An in-memory set of every stored UserID, so that `account_check` does no SQL at all.
//!
//! It is changed only by the writer thread, and only after the transaction that made the
//! change has committed, so it never shows a write that is not durable. Memory is kept small
//! for millions of accounts: each app stores its UserIDs back to back in one byte arena
//! (`[len][bytes]`), and its hash table holds only 4-byte offsets into that arena.

use std::collections::HashMap;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Every app's UserIDs.
#[derive(Default)]
pub(super) struct AccountIndex {
    apps: HashMap<u32, AppIndex>,
}

#[derive(Default)]
struct AppIndex {
    table: HashTable<u32>,
    arena: Vec<u8>,
    /// Bytes in `arena` that belong to deleted UserIDs; reclaimed by compaction.
    dead: usize,
    hasher: DefaultHashBuilder,
}

/// A change to apply once its transaction has committed.
pub(super) enum IndexChange {
    Insert(u32, String),
    Remove(u32, String),
}

impl AccountIndex {
    pub(super) fn contains(&self, app: u32, user_id: &str) -> bool {
        self.apps.get(&app).is_some_and(|a| a.contains(user_id))
    }

    /// Whether each of `ids` exists in `app`: one app lookup for the whole batch.
    pub(super) fn contains_all(&self, app: u32, ids: &[&str]) -> Vec<bool> {
        match self.apps.get(&app) {
            Some(a) => ids.iter().map(|id| a.contains(id)).collect(),
            None => vec![false; ids.len()],
        }
    }

    pub(super) fn insert(&mut self, app: u32, user_id: &str) {
        self.apps.entry(app).or_default().insert(user_id);
    }

    pub(super) fn apply(&mut self, change: IndexChange) {
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
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.apps.values().map(|a| a.table.len()).sum()
    }
}

impl AppIndex {
    fn key_at(arena: &[u8], offset: u32) -> &[u8] {
        let start = offset as usize;
        let len = arena.get(start).copied().unwrap_or(0) as usize;
        arena.get(start + 1..start + 1 + len).unwrap_or(&[])
    }

    fn contains(&self, user_id: &str) -> bool {
        let hash = self.hasher.hash_one(user_id.as_bytes());
        let arena = &self.arena;
        self.table
            .find(hash, |&o| Self::key_at(arena, o) == user_id.as_bytes())
            .is_some()
    }

    fn insert(&mut self, user_id: &str) {
        let bytes = user_id.as_bytes();
        // UserIDs are at most 32 bytes; anything longer never reaches the store.
        let Ok(len) = u8::try_from(bytes.len()) else {
            return;
        };
        let hash = self.hasher.hash_one(bytes);
        let (arena, hasher) = (&mut self.arena, &self.hasher);
        if self
            .table
            .find(hash, |&o| Self::key_at(arena, o) == bytes)
            .is_some()
        {
            return;
        }
        let Ok(offset) = u32::try_from(arena.len()) else {
            return;
        };
        arena.push(len);
        arena.extend_from_slice(bytes);
        let arena = &*arena;
        self.table
            .insert_unique(hash, offset, |&o| hasher.hash_one(Self::key_at(arena, o)));
    }

    fn remove(&mut self, user_id: &str) {
        let bytes = user_id.as_bytes();
        let hash = self.hasher.hash_one(bytes);
        let arena = &self.arena;
        if let Ok(entry) = self
            .table
            .find_entry(hash, |&o| Self::key_at(arena, o) == bytes)
        {
            entry.remove();
            self.dead += 1 + bytes.len();
        }
        if self.dead > 1 << 20 && self.dead > self.arena.len() / 2 {
            self.compact();
        }
    }

    /// Rewrite the arena without the deleted UserIDs.
    fn compact(&mut self) {
        let mut arena = Vec::with_capacity(self.arena.len() - self.dead);
        let mut table = HashTable::with_capacity(self.table.len());
        for &o in self.table.iter() {
            let key = Self::key_at(&self.arena, o);
            let Ok(offset) = u32::try_from(arena.len()) else {
                return;
            };
            arena.push(key.len() as u8);
            arena.extend_from_slice(key);
            let hash = self.hasher.hash_one(key);
            let hasher = &self.hasher;
            let a = &arena;
            table.insert_unique(hash, offset, |&x| hasher.hash_one(Self::key_at(a, x)));
        }
        self.arena = arena;
        self.table = table;
        self.dead = 0;
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
}
