//! Committed rows kept in memory by the SQLite backend, for the look-ups every authorization
//! makes (its terminal's session, its card, the issuer's state of the card).
//!
//! The SQLite store is the only writer of its database (the lock file), so it can know every
//! change: each write that changes a cached row tells the cache after its commit
//! ([`Committed::remember`], [`Committed::forget_all`]). A read that missed the cache fills it
//! with what it read ([`Committed::fill`]) only if no write was remembered in between, so a
//! read that raced a write never puts back what the write replaced. A rolled-back write
//! remembers nothing.
//!
//! The PostgreSQL backend, whose database other hosts write too, keeps only rows that never
//! change once written (directory cards by fingerprint).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

/// Directory cards, and the issuer's states of cards, kept in memory (every card message needs
/// both).
pub(crate) const MAX_CACHED_CARDS: usize = 1 << 20;

/// Rows as last committed, by key, up to a capacity (beyond it, one entry is dropped).
#[derive(Debug)]
pub(crate) struct Committed<K, V> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
}

#[derive(Debug)]
struct Inner<K, V> {
    /// Raised by every remembered write.
    generation: u64,
    entries: HashMap<K, V>,
}

/// The cache's generation when a read missed it: pass it back to [`Committed::fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Missed(u64);

impl<K: Eq + Hash + Clone, V: Clone> Committed<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                generation: 0,
                entries: HashMap::new(),
            }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // A poisoned lock only means a thread panicked while holding it; every change below
        // leaves the map whole, so it is still valid.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The committed row, or the generation to fill with after reading the database.
    pub fn get<Q>(&self, key: &Q) -> Result<V, Missed>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let inner = self.lock();
        inner
            .entries
            .get(key)
            .cloned()
            .ok_or(Missed(inner.generation))
    }

    /// Keeps a row read from the database after `missed`, unless a write was remembered since.
    pub fn fill(&self, missed: Missed, key: K, value: V) {
        let mut inner = self.lock();
        if inner.generation == missed.0 {
            Self::insert(&mut inner, self.capacity, key, value);
        }
    }

    /// A committed write of one row: its new value, or `None` when it is gone.
    pub fn remember(&self, key: K, value: Option<V>) {
        let mut inner = self.lock();
        inner.generation += 1;
        match value {
            Some(value) => Self::insert(&mut inner, self.capacity, key, value),
            None => {
                inner.entries.remove(&key);
            }
        }
    }

    /// A committed write that may have changed any row.
    pub fn forget_all(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }

    fn insert(inner: &mut Inner<K, V>, capacity: usize, key: K, value: V) {
        if inner.entries.len() >= capacity
            && !inner.entries.contains_key(&key)
            && let Some(dropped) = inner.entries.keys().next().cloned()
        {
            inner.entries.remove(&dropped);
        }
        inner.entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_fills_the_cache_and_a_write_replaces_it() {
        let cache = Committed::<String, u32>::new(8);
        let missed = cache.get("a").expect_err("empty");
        cache.fill(missed, "a".into(), 1);
        assert_eq!(cache.get("a"), Ok(1));
        cache.remember("a".into(), Some(2));
        assert_eq!(cache.get("a"), Ok(2));
        cache.remember("a".into(), None);
        assert!(cache.get("a").is_err());
    }

    #[test]
    fn a_read_that_raced_a_write_does_not_put_back_the_old_row() {
        let cache = Committed::<String, u32>::new(8);
        let missed = cache.get("a").expect_err("empty");
        // The database is read (old value 1) while a write commits 2 and is remembered.
        cache.remember("a".into(), Some(2));
        cache.fill(missed, "a".into(), 1);
        assert_eq!(cache.get("a"), Ok(2));
        // The same for a write that may have changed anything.
        let missed = cache.get("b").expect_err("not cached");
        cache.forget_all();
        cache.fill(missed, "b".into(), 7);
        assert!(cache.get("b").is_err());
        assert!(cache.get("a").is_err(), "forget_all drops every row");
    }

    #[test]
    fn a_full_cache_drops_one_row_for_a_new_one() {
        let cache = Committed::<u32, u32>::new(2);
        for key in 0..3 {
            let missed = cache.get(&key).expect_err("new");
            cache.fill(missed, key, key * 10);
        }
        assert_eq!(cache.get(&2), Ok(20));
        let kept = (0..3).filter(|key| cache.get(key).is_ok()).count();
        assert_eq!(kept, 2);
        // Replacing a cached row never drops another.
        cache.remember(2, Some(21));
        assert_eq!((0..3).filter(|key| cache.get(key).is_ok()).count(), 2);
    }
}
