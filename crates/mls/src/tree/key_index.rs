//! Which nodes hold a key with a given eight-byte prefix: what lets a commit check that its
//! new keys appear nowhere else in the tree (RFC 9420 §7.3) with a few lookups rather than
//! a pass over every node.
//!
//! The index is split into copy-on-write buckets by prefix, so that cloning a tree (as every
//! commit does for its provisional state) copies only the bucket pointers, and a changed node
//! copies the one bucket it falls in.

use std::sync::Arc;

/// Buckets per index: a 50,000-member tree puts about a hundred entries in each.
const BUCKETS: usize = 1024;

/// `(prefix, node index)` pairs, each bucket sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PrefixIndex {
    buckets: Vec<Arc<Vec<(u64, u32)>>>,
}

impl PrefixIndex {
    fn bucket(prefix: u64) -> usize {
        // Key bytes are uniform for every KEM and signature scheme MLS uses, except a SEC1
        // point's fixed first byte: mix in the low half too.
        ((prefix >> 32 ^ prefix) as usize) & (BUCKETS - 1)
    }

    /// The index of `entries`.
    pub(super) fn of(entries: impl IntoIterator<Item = (u64, u32)>) -> Self {
        let mut buckets = vec![Vec::new(); BUCKETS];
        for (prefix, node) in entries {
            buckets[Self::bucket(prefix)].push((prefix, node));
        }
        Self {
            buckets: buckets
                .into_iter()
                .map(|mut b| {
                    b.sort_unstable();
                    Arc::new(b)
                })
                .collect(),
        }
    }

    pub(super) fn insert(&mut self, prefix: u64, node: u32) {
        let bucket = Arc::make_mut(&mut self.buckets[Self::bucket(prefix)]);
        let at = bucket.partition_point(|e| *e < (prefix, node));
        bucket.insert(at, (prefix, node));
    }

    pub(super) fn remove(&mut self, prefix: u64, node: u32) {
        let slot = &mut self.buckets[Self::bucket(prefix)];
        if let Ok(at) = slot.binary_search(&(prefix, node)) {
            Arc::make_mut(slot).remove(at);
        }
    }

    /// The nodes whose key starts with `prefix`, in index order.
    pub(super) fn nodes_with(&self, prefix: u64) -> impl Iterator<Item = u32> + '_ {
        let bucket = &self.buckets[Self::bucket(prefix)];
        let start = bucket.partition_point(|e| e.0 < prefix);
        bucket[start..]
            .iter()
            .take_while(move |e| e.0 == prefix)
            .map(|e| e.1)
    }
}

#[cfg(test)]
mod tests {
    use super::PrefixIndex;

    #[test]
    fn finds_what_was_inserted_and_not_what_was_removed() {
        let mut index = PrefixIndex::of([(7, 2), (7, 0), (9, 4)]);
        assert_eq!(index.nodes_with(7).collect::<Vec<_>>(), vec![0, 2]);
        let copy = index.clone();
        index.remove(7, 0);
        index.insert(u64::MAX, 6);
        index.insert(7, 8);
        assert_eq!(index.nodes_with(7).collect::<Vec<_>>(), vec![2, 8]);
        assert_eq!(index.nodes_with(u64::MAX).collect::<Vec<_>>(), vec![6]);
        assert_eq!(index.nodes_with(8).count(), 0);
        // The clone kept its own view.
        assert_eq!(copy.nodes_with(7).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(copy.nodes_with(u64::MAX).count(), 0);
        // Removing what is absent changes nothing.
        index.remove(9, 5);
        assert_eq!(index.nodes_with(9).collect::<Vec<_>>(), vec![4]);
    }
}
