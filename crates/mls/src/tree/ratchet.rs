//! The ratchet tree (RFC 9420 §7): the array of optional nodes, always padded to a full tree.

use super::chunked::Chunked;
use super::key_index::KeyIndex;
use super::math::{LeafIndex, NodeIndex, TreeSize};
use crate::Error;
use crate::crypto::CipherSuite;
use crate::messages::{self, LeafNode, Node, ParentNode};
use std::sync::Arc;

/// A ratchet tree — RFC 9420 §4.1, §7: `2 * leaves - 1` optional nodes in array order
/// (Appendix C), leaves at even indices, parents at odd ones.
///
/// The array is always a full tree: an imported wire tree is extended with blank nodes to the
/// next `2^(d+1) - 1` (§12.4.3.3), and the export drops trailing blank nodes again. Each node
/// carries a cached tree hash (§7.8); changing a node clears only the cache of that node and
/// of its ancestors, so re-hashing after a change to one path costs O(log n) hashes.
///
/// Nodes and hashes are shared between clones (copy-on-write chunks of `Arc`s): a commit
/// works on a copy of the tree and a past epoch keeps one, so a clone costs one reference
/// count per chunk, and a change copies only the chunks it touches.
#[derive(Debug, Clone)]
pub struct RatchetTree {
    pub(super) size: TreeSize,
    pub(super) nodes: Chunked<Option<Arc<Node>>>,
    /// Cached tree hashes (§7.8), index-aligned with `nodes`, valid for `cache_suite`.
    pub(super) hashes: Chunked<Option<Arc<[u8]>>>,
    /// The first eight bytes of each node's encryption key and (for a leaf) signature key,
    /// index-aligned with `nodes`, `[0, 0]` for a blank node: a joiner's key-uniqueness
    /// check (§7.3) sorts these rather than the keys, and `key_index` is kept in step with
    /// them.
    pub(super) key_prefixes: Chunked<[u64; 2]>,
    /// The same prefixes by value: which nodes hold a key starting with a given prefix, so
    /// that a commit checks its new keys with lookups (`key_index`).
    pub(super) key_index: KeyIndex,
    pub(super) cache_suite: Option<CipherSuite>,
}

impl PartialEq for RatchetTree {
    fn eq(&self, other: &Self) -> bool {
        self.nodes.len() == other.nodes.len() && self.nodes.iter().eq(other.nodes.iter())
    }
}
impl Eq for RatchetTree {}

impl RatchetTree {
    /// A one-member tree holding `leaf` at leaf 0 (RFC 9420 §11: group creation).
    pub fn new(leaf: LeafNode) -> Self {
        let node = Node::Leaf(leaf);
        let prefixes = key_prefixes_of(Some(&node));
        Self {
            size: TreeSize::ONE,
            key_prefixes: Chunked::from_vec(vec![prefixes]),
            key_index: KeyIndex::of([(0, prefixes)]),
            nodes: Chunked::from_vec(vec![Some(Arc::new(node))]),
            hashes: Chunked::from_vec(vec![None]),
            cache_suite: None,
        }
    }

    /// Imports the wire form of RFC 9420 §12.4.3.3: the last node must be a non-blank node
    /// and the array is extended with the fewest blank nodes that make it a full tree. Every
    /// even index must hold a leaf and every odd index a parent.
    ///
    /// This checks the shape only; validate the contents with
    /// [`verify_parent_hashes`](Self::verify_parent_hashes),
    /// [`verify_leaf_signatures`](Self::verify_leaf_signatures) and
    /// [`verify_unique_keys`](Self::verify_unique_keys).
    pub fn from_wire(tree: messages::RatchetTree) -> Result<Self, Error> {
        let nodes = tree.0;
        let len = nodes.len();
        match nodes.last() {
            None => return Err(Error::TreeEmpty),
            Some(None) => return Err(Error::TreeTrailingBlank),
            Some(Some(_)) => {}
        }
        if len.is_multiple_of(2) {
            return Err(Error::TreeNodeCount(len));
        }
        let leaves = u32::try_from(len / 2 + 1).map_err(|_| Error::TreeNodeCount(len))?;
        let size = TreeSize::covering(leaves).ok_or(Error::TreeNodeCount(len))?;
        for (i, node) in nodes.iter().enumerate() {
            let leaf_slot = i % 2 == 0;
            let ok = match node {
                None => true,
                Some(Node::Leaf(_)) => leaf_slot,
                Some(Node::Parent(_)) => !leaf_slot,
            };
            if !ok {
                return Err(Error::TreeNodeTypeMismatch {
                    node: NodeIndex(i as u32),
                });
            }
            if let Some(Node::Parent(p)) = node {
                check_unmerged_in_range(size, NodeIndex(i as u32), p)?;
            }
        }
        let full = size.node_count() as usize;
        let mut nodes: Vec<Option<Arc<Node>>> =
            nodes.into_iter().map(|n| n.map(Arc::new)).collect();
        nodes.resize(full, None);
        let prefixes: Vec<[u64; 2]> = nodes
            .iter()
            .map(|n| key_prefixes_of(n.as_deref()))
            .collect();
        let key_index = KeyIndex::of(
            (0..full)
                .filter(|&i| nodes[i].is_some())
                .map(|i| (i as u32, prefixes[i])),
        );
        Ok(Self {
            size,
            key_prefixes: Chunked::from_vec(prefixes),
            key_index,
            hashes: Chunked::from_vec(vec![None; full]),
            nodes: Chunked::from_vec(nodes),
            cache_suite: None,
        })
    }

    /// Exports the wire form of RFC 9420 §12.4.3.3: the array without its trailing blank
    /// nodes.
    pub fn to_wire(&self) -> messages::RatchetTree {
        let end = (0..self.nodes.len())
            .rev()
            .find(|&i| self.nodes.get(i).is_some_and(Option::is_some))
            .map_or(0, |i| i + 1);
        messages::RatchetTree(
            self.nodes
                .range(0, end)
                .map(|n| n.as_deref().cloned())
                .collect(),
        )
    }

    /// The tree's size (RFC 9420 §7: always a power-of-two number of leaves).
    pub fn size(&self) -> TreeSize {
        self.size
    }
    /// The number of leaves, blank or not (RFC 9420 §7).
    pub fn leaf_count(&self) -> u32 {
        self.size.leaf_count()
    }
    /// The root node (RFC 9420 Appendix C).
    pub fn root(&self) -> NodeIndex {
        self.size.root()
    }

    /// The node at `node`: `None` if blank or outside the tree (RFC 9420 §4.1).
    pub fn node(&self, node: NodeIndex) -> Option<&Node> {
        self.nodes.get(node.0 as usize).and_then(|n| n.as_deref())
    }
    /// The leaf at `leaf`: `None` if blank or outside the tree (RFC 9420 §7.2).
    pub fn leaf(&self, leaf: LeafIndex) -> Option<&LeafNode> {
        if !self.size.contains_leaf(leaf) {
            return None;
        }
        match self.node(leaf.node()) {
            Some(Node::Leaf(l)) => Some(l),
            _ => None,
        }
    }
    /// The parent node at `node`: `None` if blank, a leaf or outside the tree (RFC 9420 §7.1).
    pub fn parent(&self, node: NodeIndex) -> Option<&ParentNode> {
        match self.node(node) {
            Some(Node::Parent(p)) => Some(p),
            _ => None,
        }
    }
    /// Whether `node` is blank (RFC 9420 §4.1); nodes outside the tree count as blank.
    pub fn is_blank(&self, node: NodeIndex) -> bool {
        self.node(node).is_none()
    }
    /// The non-blank leaves with their indices, left to right.
    pub fn leaves(&self) -> impl Iterator<Item = (LeafIndex, &LeafNode)> {
        self.nodes
            .iter()
            .step_by(2)
            .enumerate()
            .filter_map(|(i, n)| match n.as_deref() {
                Some(Node::Leaf(l)) => Some((LeafIndex(i as u32), l)),
                _ => None,
            })
    }

    /// The resolution of `node` — RFC 9420 §4.1.1: a non-blank node followed by its unmerged
    /// leaves (as node indices), nothing for a blank leaf, and the resolutions of the children
    /// of a blank parent, left then right. Empty for a node outside the tree.
    pub fn resolution(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut out = Vec::new();
        if self.size.contains(node) {
            self.resolve_into(node, &mut out);
        }
        out
    }

    fn resolve_into(&self, node: NodeIndex, out: &mut Vec<NodeIndex>) {
        match self.node(node) {
            Some(Node::Leaf(_)) => out.push(node),
            Some(Node::Parent(p)) => {
                out.push(node);
                out.extend(p.unmerged_leaves.iter().map(|l| LeafIndex(*l).node()));
            }
            None => {
                if let (Some(l), Some(r)) = (node.left(), node.right()) {
                    self.resolve_into(l, out);
                    self.resolve_into(r, out);
                }
            }
        }
    }

    /// Whether the resolution of `node` is empty, without building it: true iff the whole
    /// subtree is blank (a non-blank node is in its own resolution).
    pub fn resolution_is_empty(&self, node: NodeIndex) -> bool {
        if !self.size.contains(node) {
            return true;
        }
        let (lo, hi) = node.span();
        self.nodes
            .range(lo.0 as usize, hi.0 as usize + 1)
            .all(Option::is_none)
    }

    /// The filtered direct path of `leaf` — RFC 9420 §4.1.2: its direct path without the
    /// nodes whose child on the leaf's copath has an empty resolution.
    pub fn filtered_direct_path(&self, leaf: LeafIndex) -> Result<Vec<NodeIndex>, Error> {
        if !self.size.contains_leaf(leaf) {
            return Err(Error::LeafOutOfRange(leaf));
        }
        let node = leaf.node();
        Ok(self
            .size
            .direct_path(node)
            .into_iter()
            .zip(self.size.copath(node))
            .filter(|(_, copath_child)| !self.resolution_is_empty(*copath_child))
            .map(|(p, _)| p)
            .collect())
    }

    /// Sets `node` (or blanks it with `None`) and clears the cached tree hashes of the node
    /// and its ancestors (RFC 9420 §7.8: only they summarize it).
    pub(super) fn set_node(&mut self, node: NodeIndex, value: Option<Node>) -> Result<(), Error> {
        let slot = self
            .nodes
            .get_mut(node.0 as usize)
            .ok_or(Error::NodeOutOfRange(node))?;
        let prefixes = key_prefixes_of(value.as_ref());
        let was_present = slot.is_some();
        let present = value.is_some();
        *slot = value.map(Arc::new);
        if let Some(p) = self.key_prefixes.get_mut(node.0 as usize) {
            let old = std::mem::replace(p, prefixes);
            if was_present {
                self.key_index.remove(node.0, old);
            }
        }
        if present {
            self.key_index.insert(node.0, prefixes);
        }
        self.invalidate(node);
        Ok(())
    }

    /// Clears the cached tree hash of `node` and of every ancestor: O(log n).
    pub(super) fn invalidate(&mut self, node: NodeIndex) {
        if let Some(h) = self.hashes.get_mut(node.0 as usize) {
            *h = None;
        }
        for p in self.size.direct_path(node) {
            if let Some(h) = self.hashes.get_mut(p.0 as usize) {
                *h = None;
            }
        }
    }

    /// Sets a leaf (RFC 9420 §7.2), clearing the cached hashes along its path.
    pub fn set_leaf(&mut self, leaf: LeafIndex, value: LeafNode) -> Result<(), Error> {
        if !self.size.contains_leaf(leaf) {
            return Err(Error::LeafOutOfRange(leaf));
        }
        self.set_node(leaf.node(), Some(Node::Leaf(value)))
    }

    /// Sets a parent node (RFC 9420 §7.1), clearing the cached hashes along its path.
    pub fn set_parent(&mut self, node: NodeIndex, value: ParentNode) -> Result<(), Error> {
        if node.is_leaf() {
            return Err(Error::TreeNodeTypeMismatch { node });
        }
        check_unmerged_in_range(self.size, node, &value)?;
        self.set_node(node, Some(Node::Parent(value)))
    }

    /// Blanks `node` (RFC 9420 §4.1), clearing the cached hashes along its path.
    pub fn blank(&mut self, node: NodeIndex) -> Result<(), Error> {
        self.set_node(node, None)
    }

    /// Blanks every node on the direct path of `node` (RFC 9420 §12.1.2, §12.1.3).
    pub fn blank_direct_path(&mut self, node: NodeIndex) -> Result<(), Error> {
        for p in self.size.direct_path(node) {
            self.set_node(p, None)?;
        }
        Ok(())
    }

    /// Extends the tree to twice as many leaves (RFC 9420 §7.7): the old tree becomes the
    /// left subtree of a new blank root, the right subtree is all blank. Cached hashes of the
    /// old nodes stay valid: their indices and subtrees do not change.
    pub fn extend(&mut self) -> Result<(), Error> {
        let leaves = self
            .size
            .leaf_count()
            .checked_mul(2)
            .and_then(TreeSize::from_leaf_count)
            .ok_or(Error::TreeFull)?;
        self.size = leaves;
        let n = leaves.node_count() as usize;
        self.nodes.resize(n, None);
        self.hashes.resize(n, None);
        self.key_prefixes.resize(n, [0, 0]);
        Ok(())
    }

    /// Whether the prefix indexes hold exactly what a tree built afresh from the same nodes
    /// would.
    #[cfg(test)]
    pub(super) fn prefix_indexes_match(&self) -> bool {
        let Ok(fresh) = Self::from_wire(self.to_wire()) else {
            return false;
        };
        fresh.key_index == self.key_index
    }

    /// Truncates the tree (RFC 9420 §7.7, §12.1.3): while the tree has more than one leaf
    /// and no non-blank leaf in its right subtree, the root and right subtree are dropped
    /// and the left subtree becomes the tree.
    pub fn truncate(&mut self) {
        while self.size.leaf_count() > 1 {
            let half = self.size.leaf_count() / 2;
            let right_blank = self
                .nodes
                .range((2 * half) as usize, self.nodes.len())
                .step_by(2)
                .all(Option::is_none);
            if !right_blank {
                break;
            }
            let Some(smaller) = TreeSize::from_leaf_count(half) else {
                break;
            };
            self.size = smaller;
            let n = smaller.node_count() as usize;
            // Only blank leaves are dropped, but a parent above them may not be blank.
            let dropped: Vec<(u32, [u64; 2])> = self
                .nodes
                .range(n, self.nodes.len())
                .zip(self.key_prefixes.range(n, self.nodes.len()))
                .enumerate()
                .filter(|(_, (node, _))| node.is_some())
                .map(|(i, (_, p))| ((n + i) as u32, *p))
                .collect();
            for (node, prefixes) in dropped {
                self.key_index.remove(node, prefixes);
            }
            self.nodes.truncate(n);
            self.hashes.truncate(n);
            self.key_prefixes.truncate(n);
        }
    }
}

/// Unmerged leaves must be leaves of the tree (RFC 9420 §7.1, §4.1.1); checking the range on
/// import keeps every later `2 * leaf` node computation in bounds. The full rules are in
/// [`RatchetTree::verify_unmerged_leaves`].
fn check_unmerged_in_range(size: TreeSize, node: NodeIndex, p: &ParentNode) -> Result<(), Error> {
    match p.unmerged_leaves.iter().find(|l| **l >= size.leaf_count()) {
        Some(l) => Err(Error::UnmergedLeafInvalid {
            node,
            leaf: LeafIndex(*l),
        }),
        None => Ok(()),
    }
}

/// The first eight bytes of a key as a number (zero-padded), to sort and search keys by.
pub(super) fn key_prefix(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(head) => u64::from_be_bytes(*head),
        None => {
            let mut b = [0u8; 8];
            b[..key.len()].copy_from_slice(key);
            u64::from_be_bytes(b)
        }
    }
}

/// `[encryption key prefix, signature key prefix]` of a node (zeros where absent).
fn key_prefixes_of(node: Option<&Node>) -> [u64; 2] {
    match node {
        None => [0, 0],
        Some(Node::Parent(p)) => [key_prefix(p.encryption_key.as_slice()), 0],
        Some(Node::Leaf(l)) => [
            key_prefix(l.content.encryption_key.as_slice()),
            key_prefix(l.content.signature_key.as_slice()),
        ],
    }
}
