//! A capped, sharded hash table of small entries keyed by 64-bit hashes.
//!
//! The keys are already random-seeded hashes (accounts, sources, password
//! fingerprints), so the maps hash them with the identity. Each of [`SHARDS`] shards
//! has its own lock, so two threads deciding about different accounts rarely meet.
//! Attackers choose the keys: every shard holds at most its share of the cap, and a
//! full shard first forgets entries idle longer than the rules' memory, then an
//! arbitrary sixteenth of itself (counted in [`Table::evicted`]).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Shards per table.
pub const SHARDS: usize = 64;

/// Hashes a `u64` key to itself: the keys are already uniformly random.
#[derive(Default, Clone, Copy)]
pub struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else folds the bytes in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map<V> = HashMap<u64, V, BuildHasherDefault<Identity>>;

/// An entry that knows when it was last touched (seconds).
pub trait Touched {
    /// Last time it changed.
    fn touched(&self) -> u32;
}

/// Whether a caller waits for a busy shard or gives up at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Wait for the lock.
    Block,
    /// Give up (`None`) if another thread holds it.
    Try,
}

/// The table.
pub struct Table<V> {
    shards: Box<[Mutex<Map<V>>]>,
    per_shard: usize,
    evicted: AtomicU64,
}

impl<V: Touched> Table<V> {
    /// A table of at most about `cap` entries.
    pub fn new(cap: usize) -> Self {
        let per_shard = cap.div_ceil(SHARDS).max(1);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
            per_shard,
            evicted: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: u64, wait: Wait) -> Option<MutexGuard<'_, Map<V>>> {
        // The top bits pick the shard; the map uses the low ones.
        let m = &self.shards[(key >> 58) as usize % SHARDS];
        match wait {
            Wait::Block => Some(m.lock().unwrap_or_else(|p| p.into_inner())),
            Wait::Try => match m.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            },
        }
    }

    /// Reads the entry of `key` (or learns there is none). `None`: busy.
    pub fn read<R>(&self, key: u64, wait: Wait, f: impl FnOnce(Option<&V>) -> R) -> Option<R> {
        let g = self.shard(key, wait)?;
        Some(f(g.get(&key)))
    }

    /// Updates the entry of `key`, made by `make` if missing. Entries idle since
    /// `stale` (seconds) go first when the shard is full. `None`: busy.
    pub fn update<R>(
        &self,
        key: u64,
        wait: Wait,
        stale: u32,
        make: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R> {
        let mut g = self.shard(key, wait)?;
        if !g.contains_key(&key) && g.len() >= self.per_shard {
            self.make_room(&mut g, stale);
        }
        Some(f(g.entry(key).or_insert_with(make)))
    }

    /// Updates the entry of `key` only if it exists. `None`: busy.
    pub fn update_existing<R>(
        &self,
        key: u64,
        wait: Wait,
        f: impl FnOnce(Option<&mut V>) -> R,
    ) -> Option<R> {
        let mut g = self.shard(key, wait)?;
        Some(f(g.get_mut(&key)))
    }

    /// Forgets `key`.
    pub fn remove(&self, key: u64) {
        if let Some(mut g) = self.shard(key, Wait::Block) {
            g.remove(&key);
        }
    }

    fn make_room(&self, g: &mut Map<V>, stale: u32) {
        let before = g.len();
        g.retain(|_, v| v.touched() >= stale);
        if g.len() >= self.per_shard {
            // Still full of live entries: an arbitrary sixteenth goes (hash order is
            // random, so no key an attacker picks is safer than another).
            let n = (self.per_shard / 16).max(1);
            let victims: Vec<u64> = g.keys().take(n).copied().collect();
            for k in victims {
                g.remove(&k);
            }
        }
        self.evicted
            .fetch_add((before - g.len()) as u64, Ordering::Relaxed);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries forgotten to stay within the cap.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Bytes the maps' slots take: capacity × (key + entry + one control byte), the
    /// layout of the standard library's Swiss table.
    pub fn bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, V)>() + 1;
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).capacity() * slot)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct E(u32);
    impl Touched for E {
        fn touched(&self) -> u32 {
            self.0
        }
    }

    #[test]
    fn stays_within_its_cap_whatever_the_keys() {
        let t = Table::<E>::new(1024);
        let state = foldhash::fast::RandomState::default();
        for i in 0..100_000u64 {
            let k = std::hash::BuildHasher::hash_one(&state, i);
            t.update(k, Wait::Block, 0, || E(i as u32), |_| ());
        }
        assert!(t.len() <= 1024 + SHARDS, "{}", t.len());
        assert!(t.evicted() >= 100_000 - 1024 - SHARDS as u64);
    }

    #[test]
    fn idle_entries_go_before_live_ones() {
        let t = Table::<E>::new(SHARDS); // one per shard
        let key = |shard: u64, n: u64| (shard << 58) | n;
        t.update(key(3, 1), Wait::Block, 0, || E(10), |_| ());
        // The shard is full: the idle entry (touched at 10 < 50) makes way.
        t.update(key(3, 2), Wait::Block, 50, || E(60), |_| ());
        assert!(t.read(key(3, 1), Wait::Block, |e| e.is_none()).unwrap());
        assert!(t.read(key(3, 2), Wait::Block, |e| e.is_some()).unwrap());
        assert_eq!(t.evicted(), 1);
    }

    #[test]
    fn a_busy_shard_is_reported_not_waited_for() {
        let t = Table::<E>::new(64);
        t.update(7, Wait::Block, 0, || E(1), |_| ());
        let g = t.shards[0].lock().unwrap();
        assert!(t.read(7, Wait::Try, |_| ()).is_none());
        drop(g);
        assert!(t.read(7, Wait::Try, |e| e.is_some()).unwrap());
    }
}
