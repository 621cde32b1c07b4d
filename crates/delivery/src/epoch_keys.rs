//! A node's cache of group epoch keys: the part of an epoch's key that never changes.
//!
//! Every group request is verified against the group auth key of the epoch it names, so
//! without a cache each append, log read and subscription first reads the key from the
//! database. An epoch's auth key and the sequence number its epoch starts at are written
//! once, by the commit that starts the epoch, and never change; groups are never deleted or
//! re-created under the same id. So they can be kept in memory on every node without any
//! invalidation, even with several nodes on one database. What can change — the external
//! commit key a sealed GroupInfo publishes — is not cached: external commits read it from
//! the store. A key still cached after retention pruned its epoch authorises nothing the
//! store would not refuse: appends are checked against the current epoch in their own
//! transaction, and a pruned epoch's log is empty.

use std::collections::HashMap;
use std::sync::Mutex;

/// The immutable part of an epoch's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedKey {
    /// The group auth key (Ed25519 public key).
    pub auth_key: Vec<u8>,
    /// Sequence number of the commit that started the epoch (0 for epoch 0).
    pub start_seq: u64,
}

/// A bounded map from (group id, epoch) to [`CachedKey`].
#[derive(Debug)]
pub struct EpochKeyCache {
    entries: Mutex<HashMap<(Vec<u8>, u64), CachedKey>>,
    capacity: usize,
}

impl EpochKeyCache {
    /// A cache of at most `capacity` keys (0: nothing is cached).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached key of `group` at `epoch`.
    pub fn get(&self, group: &[u8], epoch: u64) -> Option<CachedKey> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // The tuple key cannot be borrowed as (&[u8], u64); one small copy per look-up costs
        // far less than the database read it saves.
        entries.get(&(group.to_vec(), epoch)).cloned()
    }

    /// Remembers the key of `group` at `epoch`. When full, an arbitrary eighth of the
    /// entries is dropped first (the map's order is random): old epochs' keys are rarely
    /// asked for again, and a dropped key is only read again from the store.
    pub fn insert(&self, group: &[u8], epoch: u64, key: CachedKey) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity {
            let drop: Vec<(Vec<u8>, u64)> = entries
                .keys()
                .take((self.capacity / 8).max(1))
                .cloned()
                .collect();
            for k in drop {
                entries.remove(&k);
            }
        }
        entries.insert((group.to_vec(), epoch), key);
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CachedKey {
        CachedKey {
            auth_key: vec![n; 32],
            start_seq: u64::from(n),
        }
    }

    #[test]
    fn keys_are_per_group_and_epoch() {
        let cache = EpochKeyCache::new(16);
        cache.insert(b"g1", 0, key(1));
        cache.insert(b"g1", 1, key(2));
        cache.insert(b"g2", 0, key(3));
        assert_eq!(cache.get(b"g1", 0), Some(key(1)));
        assert_eq!(cache.get(b"g1", 1), Some(key(2)));
        assert_eq!(cache.get(b"g2", 0), Some(key(3)));
        assert_eq!(cache.get(b"g2", 1), None);
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = EpochKeyCache::new(64);
        for epoch in 0..1_000 {
            cache.insert(b"g", epoch, key(1));
            assert!(cache.len() <= 64);
        }
        // The newest is always kept.
        assert_eq!(cache.get(b"g", 999), Some(key(1)));
        let off = EpochKeyCache::new(0);
        off.insert(b"g", 0, key(1));
        assert!(off.is_empty());
    }
}
