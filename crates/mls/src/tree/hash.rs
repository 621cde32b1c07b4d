//! Tree hashes (RFC 9420 §7.8) with a per-node cache, and parent hashes (§7.9).

use super::math::{LeafIndex, NodeIndex};
use super::ratchet::RatchetTree;
use crate::Error;
use crate::codec::write_varint;
use crate::crypto::SuiteCrypto;
use crate::messages::{LeafNode, LeafNodeSource, Node, ParentNode};
use std::collections::HashSet;
use std::sync::Arc;

/// A tree hash computed for the cache: `(node index, hash)`.
pub(super) type ComputedHash = (usize, Arc<[u8]>);

/// `NodeType` leaf(1) — RFC 9420 §7.8.
const NODE_TYPE_LEAF: u8 = 1;
/// `NodeType` parent(2) — RFC 9420 §7.8.
const NODE_TYPE_PARENT: u8 = 2;

/// Appends `opaque data<V>` (RFC 9420 §2.1.2).
fn push_opaque(out: &mut Vec<u8>, data: &[u8]) -> Result<(), Error> {
    let len = u32::try_from(data.len()).map_err(|_| Error::Encode("opaque too long"))?;
    write_varint(len, out)?;
    out.extend_from_slice(data);
    Ok(())
}

/// Appends `optional<T>` (RFC 9420 §2.1.1): a presence byte, then the value if present,
/// serialized in place.
fn push_optional<T: tls_codec::Serialize>(
    out: &mut Vec<u8>,
    value: Option<&T>,
) -> Result<(), Error> {
    match value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            v.tls_serialize(out)
                .map_err(|_| Error::Encode("a vector longer than 2^30 - 1 bytes"))?;
        }
    }
    Ok(())
}

/// The encoding of `TreeHashInput` for a leaf — RFC 9420 §7.8: `node_type = leaf`, then
/// `LeafNodeHashInput { uint32 leaf_index; optional<LeafNode> leaf_node; }`.
pub fn leaf_hash_input(leaf: LeafIndex, node: Option<&LeafNode>) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(256);
    write_leaf_hash_input(&mut out, leaf, node)?;
    Ok(out)
}

/// [`leaf_hash_input`], appended to `out`.
fn write_leaf_hash_input(
    out: &mut Vec<u8>,
    leaf: LeafIndex,
    node: Option<&LeafNode>,
) -> Result<(), Error> {
    out.push(NODE_TYPE_LEAF);
    out.extend_from_slice(&leaf.0.to_be_bytes());
    push_optional(out, node)
}

/// The encoding of `TreeHashInput` for a parent — RFC 9420 §7.8: `node_type = parent`, then
/// `ParentNodeHashInput { optional<ParentNode> parent_node; opaque left_hash<V>;
/// opaque right_hash<V>; }`.
pub fn parent_hash_input(
    node: Option<&ParentNode>,
    left_hash: &[u8],
    right_hash: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128 + left_hash.len() + right_hash.len());
    write_parent_hash_input(&mut out, node, left_hash, right_hash)?;
    Ok(out)
}

/// [`parent_hash_input`], appended to `out`.
fn write_parent_hash_input(
    out: &mut Vec<u8>,
    node: Option<&ParentNode>,
    left_hash: &[u8],
    right_hash: &[u8],
) -> Result<(), Error> {
    out.push(NODE_TYPE_PARENT);
    push_optional(out, node)?;
    push_opaque(out, left_hash)?;
    push_opaque(out, right_hash)
}

/// The encoding of `ParentHashInput` — RFC 9420 §7.9: `HPKEPublicKey encryption_key;
/// opaque parent_hash<V>; opaque original_sibling_tree_hash<V>;`.
pub fn parent_hash_input_bytes(
    parent: &ParentNode,
    original_sibling_tree_hash: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(128);
    write_parent_hash_input_bytes(&mut out, parent, original_sibling_tree_hash)?;
    Ok(out)
}

/// [`parent_hash_input_bytes`], appended to `out`.
fn write_parent_hash_input_bytes(
    out: &mut Vec<u8>,
    parent: &ParentNode,
    original_sibling_tree_hash: &[u8],
) -> Result<(), Error> {
    push_opaque(out, parent.encryption_key.as_slice())?;
    push_opaque(out, parent.parent_hash.as_slice())?;
    push_opaque(out, original_sibling_tree_hash)
}

/// The `parent_hash` a node carries (RFC 9420 §7.9.1): a parent's field, or a leaf's when its
/// source is commit; `None` for leaves from a KeyPackage or an Update, and for blanks.
fn carried_parent_hash(node: Option<&Node>) -> Option<&[u8]> {
    match node? {
        Node::Parent(p) => Some(p.parent_hash.as_slice()),
        Node::Leaf(l) => match &l.content.leaf_node_source {
            LeafNodeSource::Commit { parent_hash } => Some(parent_hash.as_slice()),
            _ => None,
        },
    }
}

impl RatchetTree {
    /// Drops every cached hash if they were computed under another cipher suite.
    pub(super) fn bind_cache(&mut self, crypto: &SuiteCrypto<'_>) {
        if self.cache_suite != Some(crypto.suite()) {
            self.hashes.fill(None);
            self.cache_suite = Some(crypto.suite());
        }
    }

    /// The tree hash of the subtree under `node` — RFC 9420 §7.8. Cached per node: only
    /// nodes whose subtree changed since the last call are hashed again.
    pub fn tree_hash(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        node: NodeIndex,
    ) -> Result<Vec<u8>, Error> {
        if !self.size.contains(node) {
            return Err(Error::NodeOutOfRange(node));
        }
        self.bind_cache(crypto);
        self.cached_hash(crypto, node)
    }

    /// Computes every missing cached tree hash (RFC 9420 §7.8) and stores them.
    pub(super) fn fill_hash_cache(&mut self, crypto: &SuiteCrypto<'_>) -> Result<(), Error> {
        self.bind_cache(crypto);
        let missing = self.missing_hashes(crypto)?;
        self.store_hashes(missing);
        Ok(())
    }

    /// Writes hashes computed by [`Self::missing_hashes`] into the cache: only the chunks
    /// they land in are written (and copied, if shared with another copy of the tree).
    pub(super) fn store_hashes(&mut self, computed: Vec<ComputedHash>) {
        for (i, h) in computed {
            if let Some(slot) = self.hashes.get_mut(i) {
                *slot = Some(h);
            }
        }
    }

    /// The tree hashes missing from the cache (RFC 9420 §7.8), as `(node index, hash)`,
    /// computed level by level from the leaves up, each level on all cores with the
    /// `parallel` feature: a joiner hashes the whole tree once, and the nodes of one level
    /// depend only on the level below. Read-only, so a joiner computes them while the leaf
    /// signatures are being checked; the cache must already be bound to `crypto`'s suite. A
    /// full cache costs one scan.
    pub(super) fn missing_hashes(
        &self,
        crypto: &SuiteCrypto<'_>,
    ) -> Result<Vec<ComputedHash>, Error> {
        if self.hashes.iter().all(Option::is_some) {
            return Ok(Vec::new());
        }
        let mut hashes: Vec<Option<Arc<[u8]>>> = self.hashes.iter().cloned().collect();
        let mut computed = Vec::new();
        let width = hashes.len();
        for level in 0..=self.size.root().level() {
            // The nodes of `level` sit at (2^level - 1) + k * 2^(level + 1) (Appendix C).
            let first = (1usize << level) - 1;
            let todo: Vec<usize> = (first..width)
                .step_by(1usize << (level + 1))
                .filter(|&i| hashes[i].is_none())
                .collect();
            let below = &hashes;
            let child = |n: NodeIndex| {
                below
                    .get(n.0 as usize)
                    .and_then(|h| h.as_deref())
                    .ok_or(Error::NodeOutOfRange(n))
            };
            // One input buffer per worker, reused from node to node.
            let compute = |input: &mut Vec<u8>, &i: &usize| -> Result<(usize, Vec<u8>), Error> {
                let node = NodeIndex(i as u32);
                input.clear();
                match (node.leaf(), node.left(), node.right()) {
                    (Some(leaf), _, _) => write_leaf_hash_input(input, leaf, self.leaf(leaf))?,
                    (None, Some(l), Some(r)) => {
                        write_parent_hash_input(input, self.parent(node), child(l)?, child(r)?)?
                    }
                    _ => return Err(Error::NodeOutOfRange(node)),
                }
                Ok((i, crypto.hash(input)?))
            };
            #[cfg(feature = "parallel")]
            let done: Vec<(usize, Vec<u8>)> = {
                use rayon::prelude::*;
                todo.par_iter()
                    .map_init(|| Vec::with_capacity(512), compute)
                    .collect::<Result<_, _>>()?
            };
            #[cfg(not(feature = "parallel"))]
            let done: Vec<(usize, Vec<u8>)> = {
                let mut input = Vec::with_capacity(512);
                todo.iter()
                    .map(|i| compute(&mut input, i))
                    .collect::<Result<_, _>>()?
            };
            for (i, h) in done {
                let h: Arc<[u8]> = h.as_slice().into();
                hashes[i] = Some(h.clone());
                computed.push((i, h));
            }
        }
        Ok(computed)
    }

    /// The tree hash of the root — RFC 9420 §7.8, the `tree_hash` of the GroupContext.
    pub fn root_hash(&mut self, crypto: &SuiteCrypto<'_>) -> Result<Vec<u8>, Error> {
        self.tree_hash(crypto, self.root())
    }

    /// Fails with [`Error::TreeHashMismatch`] unless the root tree hash is `expected`
    /// (RFC 9420 §12.4.3.1: a joiner checks the tree against the GroupInfo's tree hash).
    pub fn verify_root_hash(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        expected: &[u8],
    ) -> Result<(), Error> {
        if self.root_hash(crypto)? == expected {
            Ok(())
        } else {
            Err(Error::TreeHashMismatch)
        }
    }

    fn cached_hash(&mut self, crypto: &SuiteCrypto<'_>, node: NodeIndex) -> Result<Vec<u8>, Error> {
        if let Some(Some(h)) = self.hashes.get(node.0 as usize) {
            return Ok(h.to_vec());
        }
        let input = match (node.leaf(), node.left(), node.right()) {
            (Some(leaf), _, _) => leaf_hash_input(leaf, self.leaf(leaf))?,
            (None, Some(l), Some(r)) => {
                let lh = self.cached_hash(crypto, l)?;
                let rh = self.cached_hash(crypto, r)?;
                parent_hash_input(self.parent(node), &lh, &rh)?
            }
            _ => return Err(Error::NodeOutOfRange(node)),
        };
        let h = crypto.hash(&input)?;
        if let Some(slot) = self.hashes.get_mut(node.0 as usize) {
            *slot = Some(h.as_slice().into());
        }
        Ok(h)
    }

    /// The tree hash of `node` recomputed from scratch, ignoring the cache (RFC 9420 §7.8).
    /// O(size of the subtree); for tests of the cache.
    #[doc(hidden)]
    pub fn tree_hash_uncached(
        &self,
        crypto: &SuiteCrypto<'_>,
        node: NodeIndex,
    ) -> Result<Vec<u8>, Error> {
        let input = match (node.leaf(), node.left(), node.right()) {
            (Some(leaf), _, _) if self.size.contains(node) => {
                leaf_hash_input(leaf, self.leaf(leaf))?
            }
            (None, Some(l), Some(r)) if self.size.contains(node) => parent_hash_input(
                self.parent(node),
                &self.tree_hash_uncached(crypto, l)?,
                &self.tree_hash_uncached(crypto, r)?,
            )?,
            _ => return Err(Error::NodeOutOfRange(node)),
        };
        Ok(crypto.hash(&input)?)
    }

    /// The tree hash of `node` in the tree where the leaves `removed` are blanked and taken out
    /// of every `unmerged_leaves` list — the `original_sibling_tree_hash` of RFC 9420 §7.9.
    /// Subtrees holding none of `removed` use the cached hash, so the cost is the union of
    /// the paths from `node` down to the removed leaves under it.
    pub fn tree_hash_without(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        node: NodeIndex,
        removed: &[LeafIndex],
    ) -> Result<Vec<u8>, Error> {
        if !self.size.contains(node) {
            return Err(Error::NodeOutOfRange(node));
        }
        self.bind_cache(crypto);
        // Caches every subtree hash under `node`, which the walk below then only reads.
        self.cached_hash(crypto, node)?;
        self.filled_hash_without(crypto, node, removed)
    }

    /// [`Self::tree_hash_without`] on a tree whose cache already holds every hash under
    /// `node`: read-only, so parent hashes can be checked on several threads.
    fn filled_hash_without(
        &self,
        crypto: &SuiteCrypto<'_>,
        node: NodeIndex,
        removed: &[LeafIndex],
    ) -> Result<Vec<u8>, Error> {
        let (lo, hi) = node.span();
        let under: Vec<LeafIndex> = removed
            .iter()
            .copied()
            .filter(|l| self.size.contains_leaf(*l) && lo.0 <= l.node().0 && l.node().0 <= hi.0)
            .collect();
        self.hash_without(crypto, node, &under)
    }

    /// The cached tree hash of `node`, or (never after the cache was filled below it) the
    /// hash computed afresh.
    fn filled_hash(&self, crypto: &SuiteCrypto<'_>, node: NodeIndex) -> Result<Vec<u8>, Error> {
        match self.hashes.get(node.0 as usize) {
            Some(Some(h)) => Ok(h.to_vec()),
            _ => self.tree_hash_uncached(crypto, node),
        }
    }

    fn hash_without(
        &self,
        crypto: &SuiteCrypto<'_>,
        node: NodeIndex,
        removed: &[LeafIndex],
    ) -> Result<Vec<u8>, Error> {
        if removed.is_empty() {
            return self.filled_hash(crypto, node);
        }
        let input = match (node.leaf(), node.left(), node.right()) {
            // A leaf with a removed leaf under it is that leaf: blank.
            (Some(leaf), _, _) => leaf_hash_input(leaf, None)?,
            (None, Some(l), Some(r)) => {
                let (left, right): (Vec<LeafIndex>, Vec<LeafIndex>) =
                    removed.iter().partition(|x| x.node().0 < node.0);
                let lh = self.hash_without(crypto, l, &left)?;
                let rh = self.hash_without(crypto, r, &right)?;
                // A set, not a scan of `removed` per entry: O(U), not O(U²), for a parent
                // with U unmerged leaves.
                let gone: HashSet<u32> = removed.iter().map(|x| x.0).collect();
                let parent = self.parent(node).map(|p| {
                    let mut p = p.clone();
                    p.unmerged_leaves.retain(|u| !gone.contains(u));
                    p
                });
                parent_hash_input(parent.as_ref(), &lh, &rh)?
            }
            _ => return Err(Error::NodeOutOfRange(node)),
        };
        Ok(crypto.hash(&input)?)
    }

    /// The parent hash of the non-blank parent `parent` with copath child `sibling` —
    /// RFC 9420 §7.9: `Hash(ParentHashInput)` with the original sibling tree hash, the tree
    /// hash of `sibling` with `parent`'s unmerged leaves blanked.
    pub fn parent_hash(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        parent: NodeIndex,
        sibling: NodeIndex,
    ) -> Result<Vec<u8>, Error> {
        if self.size.parent(sibling) != Some(parent) {
            return Err(Error::NodeOutOfRange(sibling));
        }
        self.bind_cache(crypto);
        self.cached_hash(crypto, sibling)?;
        self.filled_parent_hash(crypto, parent, sibling)
    }

    /// [`Self::parent_hash`] on a tree whose cache holds every hash under `sibling`, a child
    /// of `parent`.
    fn filled_parent_hash(
        &self,
        crypto: &SuiteCrypto<'_>,
        parent: NodeIndex,
        sibling: NodeIndex,
    ) -> Result<Vec<u8>, Error> {
        let p = self
            .parent(parent)
            .ok_or(Error::BlankParent { node: parent })?;
        let mut input = Vec::with_capacity(128);
        // Nothing unmerged: the original sibling tree hash is the cached one, borrowed.
        match self.hashes.get(sibling.0 as usize) {
            Some(Some(cached)) if p.unmerged_leaves.is_empty() => {
                write_parent_hash_input_bytes(&mut input, p, cached)?
            }
            _ => {
                let removed: Vec<LeafIndex> =
                    p.unmerged_leaves.iter().map(|l| LeafIndex(*l)).collect();
                let sibling_hash = self.filled_hash_without(crypto, sibling, &removed)?;
                write_parent_hash_input_bytes(&mut input, p, &sibling_hash)?
            }
        }
        Ok(crypto.hash(&input)?)
    }

    /// Checks that every non-blank parent node is parent-hash valid — RFC 9420 §7.9.2, "top
    /// down": each non-blank parent P must have exactly one descendant D whose parent hash is
    /// valid with respect to P. Since each such D is itself a leaf or a parent-hash-valid
    /// parent, every parent is then covered by exactly one chain from a leaf.
    ///
    /// For a child C of P, the rule "D is in the resolution of C and P's unmerged leaves under
    /// C are the resolution of C without D" leaves at most one candidate D: the single member
    /// of resolution(C) that is not an unmerged leaf of P. So each child costs one resolution
    /// and at most one parent hash; over the tree the resolutions sum to O(n log n) nodes, and
    /// the original sibling hashes re-hash only the paths to unmerged leaves.
    ///
    /// Parents are checked level by level from the leaves up; fails with
    /// [`Error::ParentHashMismatch`] naming the lowest parent that is not covered by exactly
    /// one chain. A corrupted parent node makes itself fail (its child's link no longer
    /// matches) and otherwise only nodes above it, so the error names the corrupted node.
    pub fn verify_parent_hashes(&mut self, crypto: &SuiteCrypto<'_>) -> Result<(), Error> {
        // Every subtree hash first; the checks then only read the tree, each parent on its
        // own, so they run on all cores with the `parallel` feature.
        self.fill_hash_cache(crypto)?;
        // Level by level from the bottom: a broken link first shows at the lowest node whose
        // parent hash it changes, so that is the node the error names. `find_first` keeps
        // that order whatever the threads do.
        let levels = self.size.root().level();
        let width = self.nodes.len();
        let parents: Vec<NodeIndex> = (1..=levels)
            .flat_map(move |k| {
                let step = 1usize << (k + 1);
                ((1usize << k) - 1..width).step_by(step)
            })
            .map(|i| NodeIndex(i as u32))
            .filter(|&node| self.parent(node).is_some())
            .collect();
        let tree = &*self;
        let check = |&node: &NodeIndex| tree.check_parent_hash_chain(crypto, node);
        #[cfg(feature = "parallel")]
        let first_error = {
            use rayon::prelude::*;
            parents.par_iter().map(check).find_first(Result::is_err)
        };
        #[cfg(not(feature = "parallel"))]
        let first_error = parents.iter().map(check).find(Result::is_err);
        first_error.unwrap_or(Ok(()))
    }

    /// The check of [`Self::verify_parent_hashes`] for the non-blank parent `node`: exactly
    /// one child's chain candidate carries `node`'s parent hash. The cache must be full.
    fn check_parent_hash_chain(
        &self,
        crypto: &SuiteCrypto<'_>,
        node: NodeIndex,
    ) -> Result<(), Error> {
        let p = self.parent(node).ok_or(Error::BlankParent { node })?;
        let unmerged: HashSet<NodeIndex> = p
            .unmerged_leaves
            .iter()
            .map(|l| LeafIndex(*l).node())
            .collect();
        let (Some(left), Some(right)) = (node.left(), node.right()) else {
            return Err(Error::ParentHashMismatch { node });
        };
        let mut chains = 0usize;
        for (child, sibling) in [(left, right), (right, left)] {
            let Some(d) = self.chain_candidate(child, &unmerged) else {
                continue;
            };
            let Some(carried) = carried_parent_hash(self.node(d)) else {
                continue;
            };
            if self.filled_parent_hash(crypto, node, sibling)? == carried {
                chains += 1;
            }
        }
        if chains == 1 {
            Ok(())
        } else {
            Err(Error::ParentHashMismatch { node })
        }
    }

    /// The only node D of the resolution of `child` such that the resolution without D is
    /// exactly the parent's unmerged leaves under `child` (RFC 9420 §7.9.2), if there is one.
    fn chain_candidate(
        &self,
        child: NodeIndex,
        unmerged: &HashSet<NodeIndex>,
    ) -> Option<NodeIndex> {
        // The common case, a non-blank child with nothing unmerged, is its own resolution:
        // no list or set to build.
        let single = match self.node(child) {
            Some(Node::Leaf(_)) => true,
            Some(Node::Parent(c)) => c.unmerged_leaves.is_empty(),
            None => false,
        };
        if single {
            let under = unmerged.iter().any(|u| child.is_ancestor_of(*u));
            return (!under && !unmerged.contains(&child)).then_some(child);
        }
        let res = self.resolution(child);
        let distinct: HashSet<NodeIndex> = res.iter().copied().collect();
        if distinct.len() != res.len() {
            return None;
        }
        let under = unmerged
            .iter()
            .filter(|u| child.is_ancestor_of(**u))
            .count();
        if res.len() != under + 1 {
            return None;
        }
        let mut outside = res.iter().filter(|d| !unmerged.contains(d));
        let d = *outside.next()?;
        outside.next().is_none().then_some(d)
    }
}
