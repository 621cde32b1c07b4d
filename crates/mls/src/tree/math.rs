//! Array-based tree arithmetic (RFC 9420 Appendix C).
//!
//! Leaves sit at even node indices, parents at odd ones; a node's level is the number of
//! trailing one bits of its index. MLS trees always have a power-of-two number of leaves
//! (§7.7: the tree is extended by doubling), so every relation below is total on a tree
//! of [`TreeSize`] except the root's parent and sibling.

use core::fmt;

/// The index of a leaf, counted among leaves only (0, 1, 2, …).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafIndex(pub u32);

/// The index of a node in the array representation (leaves even, parents odd).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIndex(pub u32);

impl fmt::Debug for LeafIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "leaf {}", self.0)
    }
}
impl fmt::Debug for NodeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}", self.0)
    }
}

impl LeafIndex {
    /// The leaf's node index: `2 * leaf`.
    ///
    /// Leaf indices come from the wire (senders, removals, unmerged leaves) and from stored
    /// state, so they may be anything. No tree has more than [`TreeSize::MAX_LEAVES`] leaves,
    /// so every index from 2^31 on maps to the last even node index, `u32::MAX - 1`: outside
    /// every tree like the leaf itself, instead of overflowing (a panic with overflow checks,
    /// and a wrap onto a real leaf such as node 0 without them).
    pub fn node(self) -> NodeIndex {
        NodeIndex(self.0.min(u32::MAX / 2) * 2)
    }
}

impl NodeIndex {
    /// Whether the node is a leaf (even index).
    pub fn is_leaf(self) -> bool {
        self.0 & 1 == 0
    }
    /// The leaf index of a leaf node, `None` for a parent node.
    pub fn leaf(self) -> Option<LeafIndex> {
        self.is_leaf().then_some(LeafIndex(self.0 / 2))
    }
    /// The node's level: 0 for leaves, k for a parent whose subtree has 2^k leaves.
    pub fn level(self) -> u32 {
        self.0.trailing_ones()
    }
    /// The left child, `None` for a leaf.
    pub fn left(self) -> Option<NodeIndex> {
        let k = self.level();
        (k > 0).then(|| NodeIndex(self.0 ^ (1 << (k - 1))))
    }
    /// The right child, `None` for a leaf.
    pub fn right(self) -> Option<NodeIndex> {
        let k = self.level();
        (k > 0).then(|| NodeIndex(self.0 ^ (3 << (k - 1))))
    }
    /// The parent in an unbounded tree (no root check).
    fn parent_step(self) -> NodeIndex {
        let k = self.level();
        let b = (self.0 >> (k + 1)) & 1;
        NodeIndex((self.0 | (1 << k)) ^ (b << (k + 1)))
    }
    /// The leftmost and rightmost leaf node indices under this node, inclusive.
    pub fn span(self) -> (NodeIndex, NodeIndex) {
        let k = self.level();
        let half = (1u32 << k) - 1;
        (NodeIndex(self.0 - half), NodeIndex(self.0 + half))
    }
    /// Whether `other` lies in this node's subtree (including the node itself).
    pub fn is_ancestor_of(self, other: NodeIndex) -> bool {
        let (lo, hi) = self.span();
        lo.0 <= other.0 && other.0 <= hi.0
    }
}

/// The size of a tree, as its number of leaves: always a power of two, at least 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TreeSize(u32);

impl TreeSize {
    /// The largest leaf count a tree may have: node indices must fit a `u32`.
    pub const MAX_LEAVES: u32 = 1 << 30;
    /// The one-leaf tree (one node, the root).
    pub const ONE: Self = Self(1);

    /// The tree size for `leaves` leaves, if that is a power of two within bounds.
    pub fn from_leaf_count(leaves: u32) -> Option<Self> {
        (leaves.is_power_of_two() && leaves <= Self::MAX_LEAVES).then_some(Self(leaves))
    }
    /// The smallest tree size that holds `leaves` leaves (at least one).
    pub fn covering(leaves: u32) -> Option<Self> {
        Self::from_leaf_count(leaves.max(1).checked_next_power_of_two()?)
    }
    /// The tree size for an array of `nodes` nodes (`2 * leaves - 1`), if valid.
    pub fn from_node_count(nodes: u32) -> Option<Self> {
        if nodes.is_multiple_of(2) {
            return None;
        }
        Self::from_leaf_count(nodes / 2 + 1)
    }
    /// The number of leaves.
    pub fn leaf_count(self) -> u32 {
        self.0
    }
    /// The number of nodes: `2 * leaves - 1` (RFC 9420 Appendix C, `node_width`).
    pub fn node_count(self) -> u32 {
        2 * self.0 - 1
    }
    /// The root node: `2^log2(width) - 1`, the middle of the array.
    pub fn root(self) -> NodeIndex {
        NodeIndex(self.0 - 1)
    }
    /// Whether `node` is inside this tree.
    pub fn contains(self, node: NodeIndex) -> bool {
        node.0 < self.node_count()
    }
    /// Whether `leaf` is inside this tree.
    pub fn contains_leaf(self, leaf: LeafIndex) -> bool {
        leaf.0 < self.0
    }
    /// The parent of `node`, `None` for the root or a node outside the tree.
    pub fn parent(self, node: NodeIndex) -> Option<NodeIndex> {
        (self.contains(node) && node != self.root()).then(|| node.parent_step())
    }
    /// The other child of `node`'s parent, `None` for the root.
    pub fn sibling(self, node: NodeIndex) -> Option<NodeIndex> {
        let p = self.parent(node)?;
        if node.0 < p.0 { p.right() } else { p.left() }
    }
    /// The direct path of `node`: its ancestors from its parent up to the root (§4.1).
    pub fn direct_path(self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut path = Vec::with_capacity(self.0.trailing_zeros() as usize);
        let mut n = node;
        while let Some(p) = self.parent(n) {
            path.push(p);
            n = p;
        }
        path
    }
    /// The copath of `node`: the sibling of `node` and of each node of its direct path except
    /// the root (§4.1).
    pub fn copath(self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut path = Vec::with_capacity(self.0.trailing_zeros() as usize);
        let mut n = node;
        while let Some(s) = self.sibling(n) {
            path.push(s);
            n = n.parent_step();
        }
        path
    }
    /// The lowest common ancestor of two nodes.
    pub fn common_ancestor(self, a: NodeIndex, b: NodeIndex) -> NodeIndex {
        // Ancestors of a node are found by clearing low bits: the lowest node whose span
        // holds both is found by walking up from `a`.
        let mut n = a;
        while !n.is_ancestor_of(b) {
            n = n.parent_step();
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_leaf_tree() {
        let t = TreeSize::from_leaf_count(8).unwrap();
        assert_eq!(t.node_count(), 15);
        assert_eq!(t.root(), NodeIndex(7));
        assert_eq!(t.parent(NodeIndex(0)), Some(NodeIndex(1)));
        assert_eq!(t.parent(NodeIndex(7)), None);
        assert_eq!(t.sibling(NodeIndex(3)), Some(NodeIndex(11)));
        assert_eq!(
            t.direct_path(NodeIndex(4)),
            vec![NodeIndex(5), NodeIndex(3), NodeIndex(7)]
        );
        assert_eq!(
            t.copath(NodeIndex(4)),
            vec![NodeIndex(6), NodeIndex(1), NodeIndex(11)]
        );
        assert_eq!(t.common_ancestor(NodeIndex(0), NodeIndex(6)), NodeIndex(3));
        assert_eq!(t.common_ancestor(NodeIndex(2), NodeIndex(12)), NodeIndex(7));
        assert_eq!(t.common_ancestor(NodeIndex(4), NodeIndex(4)), NodeIndex(4));
        assert_eq!(NodeIndex(11).span(), (NodeIndex(8), NodeIndex(14)));
    }

    #[test]
    fn sizes() {
        assert!(TreeSize::from_leaf_count(0).is_none());
        assert!(TreeSize::from_leaf_count(3).is_none());
        assert_eq!(TreeSize::covering(5).unwrap().leaf_count(), 8);
        assert_eq!(TreeSize::covering(0).unwrap().leaf_count(), 1);
        assert_eq!(TreeSize::from_node_count(7).unwrap().leaf_count(), 4);
        assert!(TreeSize::from_node_count(5).is_none());
        assert!(TreeSize::from_node_count(6).is_none());
        let one = TreeSize::from_leaf_count(1).unwrap();
        assert_eq!(one.root(), NodeIndex(0));
        assert!(one.direct_path(NodeIndex(0)).is_empty());
    }

    /// Found by the `import_state` fuzz target: a stored own-leaf index of 2^31 or more
    /// overflowed `2 * leaf`. Such leaves now map to a node outside every tree.
    #[test]
    fn huge_leaf_index_maps_outside_every_tree() {
        let largest = TreeSize::from_leaf_count(TreeSize::MAX_LEAVES).unwrap();
        for leaf in [u32::MAX / 2, 1 << 31, u32::MAX] {
            let node = LeafIndex(leaf).node();
            assert_eq!(node, NodeIndex(u32::MAX - 1));
            assert!(node.is_leaf());
            assert!(!largest.contains(node));
            assert!(!largest.contains_leaf(LeafIndex(leaf)));
            assert_eq!(largest.parent(node), None);
        }
        assert_eq!(LeafIndex(5).node(), NodeIndex(10));
        assert_eq!(
            LeafIndex(TreeSize::MAX_LEAVES - 1).node(),
            NodeIndex((1 << 31) - 2)
        );
    }
}
