//! What concurrent writers did to each UserID, for the check that closes a conflicting-writes
//! test: the per-item outcomes the writers were given must add up to the state the store ends
//! in. The store's own tests (two stores on one database) and the server's (two instances over
//! HTTP) make the same check.

use std::collections::HashMap;

/// Per UserID, how many imports created its account and how many deletes removed one.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    created: HashMap<String, i64>,
    deleted: HashMap<String, i64>,
}

impl Tally {
    /// An import of `id` answered that it created the account.
    pub fn created(&mut self, id: &str) {
        *self.created.entry(id.to_owned()).or_default() += 1;
    }

    /// A delete of `id` answered that it deleted the account.
    pub fn deleted(&mut self, id: &str) {
        *self.deleted.entry(id.to_owned()).or_default() += 1;
    }

    /// Add another writer's tally to this one.
    pub fn add(&mut self, other: Tally) {
        for (id, n) in other.created {
            *self.created.entry(id).or_default() += n;
        }
        for (id, n) in other.deleted {
            *self.deleted.entry(id).or_default() += n;
        }
    }

    /// How many creates in all.
    pub fn creates(&self) -> i64 {
        self.created.values().sum()
    }

    /// How many deletes in all.
    pub fn deletes(&self) -> i64 {
        self.deleted.values().sum()
    }

    /// Assert that, for each of `ids`, creates minus deletes is whether it exists at the end
    /// (`exists`, in the same order): creates and deletes of one UserID alternate, starting
    /// from "absent", so every delete found an account some create made, and none was lost
    /// or counted twice. Returns how many exist.
    pub fn assert_adds_up(&self, ids: &[String], exists: &[bool]) -> i64 {
        assert_eq!(ids.len(), exists.len(), "one answer per UserID");
        let mut live = 0;
        for (id, e) in ids.iter().zip(exists) {
            let c = self.created.get(id).copied().unwrap_or(0);
            let d = self.deleted.get(id).copied().unwrap_or(0);
            assert_eq!(
                c - d,
                i64::from(*e),
                "{id}: {c} created, {d} deleted, exists {e}"
            );
            live += i64::from(*e);
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    #[test]
    fn outcomes_that_add_up_give_the_number_alive() {
        let (mut one, mut two) = (Tally::default(), Tally::default());
        one.created("a");
        two.deleted("a");
        one.created("a");
        two.created("b");
        one.add(two);
        assert_eq!((one.creates(), one.deletes()), (3, 1));
        assert_eq!(one.assert_adds_up(&ids(), &[true, true, false]), 2);
    }

    #[test]
    #[should_panic(expected = "b: 1 created, 0 deleted, exists false")]
    fn a_create_the_store_lost_fails() {
        let mut tally = Tally::default();
        tally.created("b");
        tally.assert_adds_up(&ids(), &[false, false, false]);
    }

    #[test]
    #[should_panic(expected = "a: 1 created, 2 deleted, exists false")]
    fn a_delete_counted_twice_fails() {
        let mut tally = Tally::default();
        tally.created("a");
        tally.deleted("a");
        tally.deleted("a");
        tally.assert_adds_up(&ids(), &[false, false, false]);
    }
}
