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

    /// The index of `entries`. Empty buckets share one allocation, so a small tree does
    /// not pay for a thousand.
    pub(super) fn of(entries: impl IntoIterator<Item = (u64, u32)>) -> Self {
        let mut buckets = vec![Vec::new(); BUCKETS];
        for (prefix, node) in entries {
            buckets[Self::bucket(prefix)].push((prefix, node));
        }
        let empty = Arc::new(Vec::new());
        Self {
            buckets: buckets
                .into_iter()
                .map(|mut b| {
                    if b.is_empty() {
                        return Arc::clone(&empty);
                    }
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

/// The prefix indexes of a tree: every non-blank node's encryption key, and every non-blank
/// leaf's signature key, given as the node's `[encryption, signature]` prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyIndex {
    pub(super) encryption: PrefixIndex,
    pub(super) signature: PrefixIndex,
}

impl KeyIndex {
    /// The index of the non-blank `nodes`, each with its prefixes.
    pub(super) fn of(nodes: impl IntoIterator<Item = (u32, [u64; 2])> + Clone) -> Self {
        Self {
            encryption: PrefixIndex::of(nodes.clone().into_iter().map(|(n, p)| (p[0], n))),
            signature: PrefixIndex::of(
                nodes
                    .into_iter()
                    .filter(|(n, _)| is_leaf(*n))
                    .map(|(n, p)| (p[1], n)),
            ),
        }
    }

    /// Records non-blank `node` with its prefixes.
    pub(super) fn insert(&mut self, node: u32, [encryption, signature]: [u64; 2]) {
        self.encryption.insert(encryption, node);
        if is_leaf(node) {
            self.signature.insert(signature, node);
        }
    }

    /// Forgets non-blank `node`, recorded with these prefixes.
    pub(super) fn remove(&mut self, node: u32, [encryption, signature]: [u64; 2]) {
        self.encryption.remove(encryption, node);
        if is_leaf(node) {
            self.signature.remove(signature, node);
        }
    }
}

/// Leaves sit at even node indices (RFC 9420 §4.2); only they have signature keys.
fn is_leaf(node: u32) -> bool {
    node.is_multiple_of(2)
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
