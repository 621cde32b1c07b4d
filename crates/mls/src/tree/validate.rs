//! Validation of the leaves and node contents of a ratchet tree (RFC 9420 §7.3, §12.4.3.1).

use super::join::SignatureCheck;
use super::key_index::PrefixIndex;
use super::math::{LeafIndex, NodeIndex};
use super::ratchet::{RatchetTree, key_prefix};
use crate::Error;
use crate::codec::VarBytes;
use crate::codec::{Encode, TlsSerializeTrait, write_varint};
use crate::crypto::SuiteCrypto;
use crate::messages::{
    CredentialType, LeafNode, LeafNodeGroupBinding, LeafNodeSource, LeafNodeTbs, Node,
    RequiredCapabilities,
};
use std::collections::HashSet;
use std::hash::Hash;

/// The label of a LeafNode signature — RFC 9420 §7.2.
pub(super) const LEAF_NODE_TBS_LABEL: &[u8] = b"LeafNodeTBS";

/// The `LeafNodeTBS` of `node` at `leaf` — RFC 9420 §7.2: `group_id` and `leaf_index` are
/// included exactly when the source is update or commit.
pub fn leaf_node_tbs(node: &LeafNode, group_id: &[u8], leaf: LeafIndex) -> LeafNodeTbs {
    let binding = match node.content.leaf_node_source {
        LeafNodeSource::KeyPackage { .. } => None,
        LeafNodeSource::Update | LeafNodeSource::Commit { .. } => Some(LeafNodeGroupBinding {
            group_id: VarBytes::new(group_id.to_vec()),
            leaf_index: leaf.0,
        }),
    };
    LeafNodeTbs {
        content: node.content.clone(),
        binding,
    }
}

/// Appends the encoding of the `LeafNodeTBS` of `node` at `leaf` (RFC 9420 §7.2) to `out`,
/// without copying the leaf: the content, then `group_id` and `leaf_index` for the update
/// and commit sources.
pub fn encode_leaf_node_tbs(
    out: &mut Vec<u8>,
    node: &LeafNode,
    group_id: &[u8],
    leaf: LeafIndex,
) -> Result<(), Error> {
    node.content
        .tls_serialize(out)
        .map_err(|_| Error::Encode("a vector longer than 2^30 - 1 bytes"))?;
    if !matches!(
        node.content.leaf_node_source,
        LeafNodeSource::KeyPackage { .. }
    ) {
        let len = u32::try_from(group_id.len()).map_err(|_| Error::Encode("group_id too long"))?;
        write_varint(len, out)?;
        out.extend_from_slice(group_id);
        out.extend_from_slice(&leaf.0.to_be_bytes());
    }
    Ok(())
}

/// Verifies `VerifyWithLabel(signature_key, "LeafNodeTBS", LeafNodeTBS, signature)` —
/// RFC 9420 §7.2, §7.3. Fails with [`Error::LeafSignatureInvalid`] naming `leaf`.
pub fn verify_leaf_signature(
    crypto: &SuiteCrypto<'_>,
    node: &LeafNode,
    group_id: &[u8],
    leaf: LeafIndex,
) -> Result<(), Error> {
    let tbs = leaf_node_tbs(node, group_id, leaf).encode()?;
    crypto
        .verify_with_label(
            node.content.signature_key.as_slice(),
            LEAF_NODE_TBS_LABEL,
            &tbs,
            node.signature.as_slice(),
        )
        .map_err(|_| Error::LeafSignatureInvalid { leaf })
}

/// The smallest node index whose key (by `key`) also belongs to a node of smaller index,
/// given `(key prefix, node index)` of every node: sorted, so that only equal prefixes are
/// compared; each run of equal prefixes is sorted by key, so a long run costs
/// O(r log r) comparisons rather than r².
fn first_repeat<'k>(mut entries: Vec<(u64, u32)>, key: impl Fn(u32) -> &'k [u8]) -> Option<u32> {
    entries.sort_unstable();
    let mut first: Option<u32> = None;
    for run in entries.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
        let mut keyed: Vec<(&[u8], u32)> = run.iter().map(|&(_, n)| (key(n), n)).collect();
        keyed.sort_unstable();
        // Within a group of equal keys, sorted by index, every later member repeats the
        // first; the smallest of them is the second.
        for pair in keyed.windows(2) {
            if pair[0].0 == pair[1].0 {
                first = Some(first.map_or(pair[1].1, |f| f.min(pair[1].1)));
            }
        }
    }
    first
}

impl RatchetTree {
    /// Verifies the signature of every non-blank leaf (RFC 9420 §7.3), with `group_id` in the
    /// TBS of leaves whose source is update or commit. One signature check per leaf; fails on
    /// the leftmost leaf whose signature does not verify.
    ///
    /// Cost: one signature verification per leaf dominates; with the `parallel` feature the
    /// leaves are checked on all cores (see [`Self::verify_leaf_signatures_with`]). The
    /// LeafNodeTBS of each leaf is encoded straight from the tree, without cloning the leaf.
    pub fn verify_leaf_signatures(
        &self,
        crypto: &SuiteCrypto<'_>,
        group_id: &[u8],
    ) -> Result<(), Error> {
        self.verify_leaf_signatures_with(crypto, group_id, SignatureCheck::Individual)
    }

    /// Checks that encryption keys are unique among all non-blank nodes and signature keys
    /// among all non-blank leaves (RFC 9420 §7.3). Fails naming the node where a walk in
    /// index order first meets a key it has seen before (a leaf's signature key before its
    /// encryption key).
    ///
    /// O(n log n) on the cached eight-byte key prefixes, sorted: only nodes whose prefixes
    /// collide are dereferenced, and a run of colliding prefixes (which an attacker can
    /// make as long as the tree) is itself sorted by key, never compared pairwise.
    pub fn verify_unique_keys(&self) -> Result<(), Error> {
        let mut encryption: Vec<(u64, u32)> = Vec::with_capacity(self.nodes.len());
        let mut signature: Vec<(u64, u32)> = Vec::with_capacity(self.nodes.len() / 2 + 1);
        for (i, (node, [enc, sig])) in self.nodes.iter().zip(self.key_prefixes.iter()).enumerate() {
            if node.is_none() {
                continue;
            }
            encryption.push((*enc, i as u32));
            if i % 2 == 0 {
                signature.push((*sig, i as u32));
            }
        }
        let encryption_key = |n: u32| match self.node(NodeIndex(n)) {
            Some(Node::Parent(p)) => p.encryption_key.as_slice(),
            Some(Node::Leaf(l)) => l.content.encryption_key.as_slice(),
            None => &[],
        };
        let signature_key = |n: u32| match self.node(NodeIndex(n)) {
            Some(Node::Leaf(l)) => l.content.signature_key.as_slice(),
            _ => &[],
        };
        let encryption = first_repeat(encryption, encryption_key);
        let signature = first_repeat(signature, signature_key);
        match (signature, encryption) {
            (Some(s), e) if e.is_none_or(|e| s <= e) => Err(Error::DuplicateSignatureKey {
                leaf: LeafIndex(s / 2),
            }),
            (_, Some(e)) => Err(Error::DuplicateEncryptionKey { node: NodeIndex(e) }),
            _ => Ok(()),
        }
    }

    /// Checks that the keys of the nodes `changed` (just set by proposals or an UpdatePath)
    /// are unique among themselves and appear nowhere else in the tree — RFC 9420 §7.3,
    /// §12.4.2, §15.4 — assuming the rest of the tree was unique already.
    ///
    /// Each new key is looked up by its first eight bytes in the tree's prefix indexes, and
    /// only nodes sharing that prefix are read: a commit with a path of k nodes costs
    /// O(k log n), whatever the size of the tree.
    pub fn verify_keys_unique_at(&self, changed: &[NodeIndex]) -> Result<(), Error> {
        let mut encryption: Vec<(u64, &[u8], NodeIndex)> = Vec::new();
        let mut signature: Vec<(u64, &[u8], NodeIndex)> = Vec::new();
        for &n in changed {
            match self.node(n) {
                None => {}
                Some(Node::Parent(p)) => encryption.push((
                    key_prefix(p.encryption_key.as_slice()),
                    p.encryption_key.as_slice(),
                    n,
                )),
                Some(Node::Leaf(l)) => {
                    encryption.push((
                        key_prefix(l.content.encryption_key.as_slice()),
                        l.content.encryption_key.as_slice(),
                        n,
                    ));
                    signature.push((
                        key_prefix(l.content.signature_key.as_slice()),
                        l.content.signature_key.as_slice(),
                        n,
                    ));
                }
            }
        }
        encryption.sort_unstable();
        signature.sort_unstable();
        encryption.dedup_by(|a, b| a.2 == b.2);
        signature.dedup_by(|a, b| a.2 == b.2);
        if let Some(w) = encryption.windows(2).find(|w| w[0].1 == w[1].1) {
            return Err(Error::DuplicateEncryptionKey {
                node: w[0].2.max(w[1].2),
            });
        }
        if let Some(w) = signature.windows(2).find(|w| w[0].1 == w[1].1) {
            return Err(Error::DuplicateSignatureKey {
                leaf: LeafIndex(w[0].2.max(w[1].2).0 / 2),
            });
        }
        let mut changed: Vec<u32> = changed.iter().map(|n| n.0).collect();
        changed.sort_unstable();
        // Every other node holding a new key's prefix, looked up in the indexes; the first
        // such node in index order (its encryption key before its signature key) names
        // the error, as a walk over the tree would.
        let mut first: Option<(u32, bool, NodeIndex)> = None;
        let mut look = |list: &[(u64, &[u8], NodeIndex)], index: &PrefixIndex, signature: bool| {
            for &(prefix, key, new) in list {
                for other in index.nodes_with(prefix) {
                    if changed.binary_search(&other).is_ok() {
                        continue;
                    }
                    let held = match self.node(NodeIndex(other)) {
                        Some(Node::Parent(p)) if !signature => p.encryption_key.as_slice(),
                        Some(Node::Leaf(l)) if !signature => l.content.encryption_key.as_slice(),
                        Some(Node::Leaf(l)) => l.content.signature_key.as_slice(),
                        _ => continue,
                    };
                    if held == key && first.is_none_or(|f| (other, signature) < (f.0, f.1)) {
                        first = Some((other, signature, new));
                    }
                }
            }
        };
        look(&encryption, &self.key_index.encryption, false);
        look(&signature, &self.key_index.signature, true);
        match first {
            Some((_, false, node)) => Err(Error::DuplicateEncryptionKey { node }),
            Some((_, true, node)) => Err(Error::DuplicateSignatureKey {
                leaf: LeafIndex(node.0 / 2),
            }),
            None => Ok(()),
        }
    }

    /// Checks the unmerged leaves of every non-blank parent P (RFC 9420 §12.4.3.1): each is a
    /// non-blank leaf under P, and it is also unmerged at every non-blank parent between
    /// the leaf and P.
    ///
    /// O(U log n) for U unmerged-leaf entries: "is it listed at that parent" is a hash-set
    /// lookup, not a scan of the parent's list (which made a tree with long lists quadratic).
    pub fn verify_unmerged_leaves(&self) -> Result<(), Error> {
        let mut listed: HashSet<(u32, u32)> = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if let Some(Node::Parent(p)) = node.as_deref() {
                listed.extend(p.unmerged_leaves.iter().map(|&u| (i as u32, u)));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(Node::Parent(p)) = node.as_deref() else {
                continue;
            };
            let parent = NodeIndex(i as u32);
            for &u in &p.unmerged_leaves {
                let leaf = LeafIndex(u);
                let bad = Error::UnmergedLeafInvalid { node: parent, leaf };
                if u >= self.leaf_count()
                    || !parent.is_ancestor_of(leaf.node())
                    || self.leaf(leaf).is_none()
                {
                    return Err(bad);
                }
                for between in self.size.direct_path(leaf.node()) {
                    if between == parent {
                        break;
                    }
                    if self.parent(between).is_some() && !listed.contains(&(between.0, u)) {
                        return Err(bad);
                    }
                }
            }
        }
        Ok(())
    }

    /// The per-leaf checks of RFC 9420 §7.3 that need no signature: the lifetime of
    /// KeyPackage-sourced leaves contains `now` (seconds since the epoch; skipped if `None`,
    /// as the RFC only recommends it for received trees), every leaf extension is listed in
    /// the leaf's capabilities, the group's required capabilities are supported, and every
    /// credential type in use is supported by every member.
    ///
    /// Linear in the size of the leaves: the k credential types in use are collected once,
    /// and each leaf's list is compared with them in O(k + c) (a set when both are long),
    /// never leaf against leaf.
    pub fn verify_leaf_contents(
        &self,
        now: Option<u64>,
        required: Option<&RequiredCapabilities>,
    ) -> Result<(), Error> {
        let in_use: Vec<CredentialType> = self
            .leaves()
            .map(|(_, l)| l.content.credential.credential_type())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for (leaf, node) in self.leaves() {
            let c = &node.content;
            if let (Some(now), LeafNodeSource::KeyPackage { lifetime }) = (now, &c.leaf_node_source)
                && !(lifetime.not_before <= now && now <= lifetime.not_after)
            {
                return Err(Error::LeafLifetimeInvalid { leaf });
            }
            let caps = &c.capabilities;
            let extension_types: Vec<_> = c.extensions.iter().map(|e| e.extension_type).collect();
            let ok = contains_all(&caps.extensions, &extension_types)
                && required.is_none_or(|r| {
                    contains_all(&caps.extensions, &r.extension_types)
                        && contains_all(&caps.proposals, &r.proposal_types)
                        && contains_all(&caps.credentials, &r.credential_types)
                })
                && contains_all(&caps.credentials, &in_use);
            if !ok {
                return Err(Error::LeafCapabilitiesMissing { leaf });
            }
        }
        Ok(())
    }
}

/// Lists at most this long are searched linearly.
const SHORT_LIST: usize = 8;

/// Whether every element of `need` is in `have`: O(|need|·|have|) when either is short,
/// O(|need| + |have|) through a hash set otherwise.
fn contains_all<T: Eq + Hash>(have: &[T], need: &[T]) -> bool {
    if need.len() <= SHORT_LIST || have.len() <= SHORT_LIST {
        need.iter().all(|t| have.contains(t))
    } else {
        let have: HashSet<&T> = have.iter().collect();
        need.iter().all(|t| have.contains(t))
    }
}
