//! Validation of the leaves and node contents of a ratchet tree (RFC 9420 §7.3, §12.4.3.1).

use super::join::SignatureCheck;
use super::math::{LeafIndex, NodeIndex};
use super::ratchet::{RatchetTree, key_prefix};
use crate::Error;
use crate::codec::{Encode, TlsSerializeTrait, write_varint};
use crate::crypto::SuiteCrypto;
use crate::messages::{
    CredentialType, LeafNode, LeafNodeGroupBinding, LeafNodeSource, LeafNodeTbs, Node,
    RequiredCapabilities,
};
use std::collections::HashSet;
use std::hash::Hash;
use tls_codec::VLBytes;

/// The label of a LeafNode signature — RFC 9420 §7.2.
pub(super) const LEAF_NODE_TBS_LABEL: &[u8] = b"LeafNodeTBS";

/// The `LeafNodeTBS` of `node` at `leaf` — RFC 9420 §7.2: `group_id` and `leaf_index` are
/// included exactly when the source is update or commit.
pub fn leaf_node_tbs(node: &LeafNode, group_id: &[u8], leaf: LeafIndex) -> LeafNodeTbs {
    let binding = match node.content.leaf_node_source {
        LeafNodeSource::KeyPackage { .. } => None,
        LeafNodeSource::Update | LeafNodeSource::Commit { .. } => Some(LeafNodeGroupBinding {
            group_id: VLBytes::new(group_id.to_vec()),
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
        .map_err(|e| Error::Encode(e.to_string()))?;
    if !matches!(
        node.content.leaf_node_source,
        LeafNodeSource::KeyPackage { .. }
    ) {
        let len =
            u32::try_from(group_id.len()).map_err(|_| Error::Encode("group_id too long".into()))?;
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
    /// One pass over the tree without building a set of its keys: each node's keys are
    /// looked up by their first eight bytes in a sorted list of the new keys, so a commit
    /// with a path of k nodes costs O(n log k) cheap comparisons, not O(n) hash insertions.
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
        let clash = |list: &[(u64, &[u8], NodeIndex)], key: &[u8]| -> Option<NodeIndex> {
            let p = key_prefix(key);
            let start = list.partition_point(|e| e.0 < p);
            list[start..]
                .iter()
                .take_while(|e| e.0 == p)
                .find(|e| e.1 == key)
                .map(|e| e.2)
        };
        let encryption_prefixes: Vec<u64> = encryption.iter().map(|e| e.0).collect();
        let signature_prefixes: Vec<u64> = signature.iter().map(|e| e.0).collect();
        let encryption_filter = PrefixFilter::of(&encryption_prefixes);
        let signature_filter = PrefixFilter::of(&signature_prefixes);
        for (i, [enc, sig]) in self.key_prefixes.iter().enumerate() {
            // Most nodes share no prefix with a new key and are never dereferenced; most
            // are told so by one bit of a filter, without a search.
            let enc_may =
                encryption_filter.may_hold(*enc) && encryption_prefixes.binary_search(enc).is_ok();
            let sig_may =
                signature_filter.may_hold(*sig) && signature_prefixes.binary_search(sig).is_ok();
            if !enc_may && !sig_may {
                continue;
            }
            let Some(node) = self.node(NodeIndex(i as u32)) else {
                continue;
            };
            if changed.binary_search(&(i as u32)).is_ok() {
                continue;
            }
            let (key, sig) = match node {
                Node::Parent(p) => (p.encryption_key.as_slice(), None),
                Node::Leaf(l) => (
                    l.content.encryption_key.as_slice(),
                    Some(l.content.signature_key.as_slice()),
                ),
            };
            if let Some(n) = clash(&encryption, key) {
                return Err(Error::DuplicateEncryptionKey { node: n });
            }
            if let Some(n) = sig.and_then(|k| clash(&signature, k)) {
                return Err(Error::DuplicateSignatureKey {
                    leaf: LeafIndex(n.0 / 2),
                });
            }
        }
        Ok(())
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

/// A 4,096-bit filter of a few key prefixes (those of the keys a commit brings): a prefix
/// not in the set almost always finds its bit clear, so a scan over every node of a large
/// tree does one bit test per key instead of a binary search. False positives only cost
/// the search; there are no false negatives.
struct PrefixFilter([u64; 64]);

impl PrefixFilter {
    fn bit(prefix: u64) -> usize {
        // Key bytes are uniformly random for every KEM and signature scheme MLS uses, but a
        // SEC1 point starts with a fixed byte: mix in the high half too.
        ((prefix ^ (prefix >> 32)) & 4095) as usize
    }

    fn of(prefixes: &[u64]) -> Self {
        let mut bits = [0u64; 64];
        for &p in prefixes {
            let b = Self::bit(p);
            bits[b / 64] |= 1 << (b % 64);
        }
        Self(bits)
    }

    fn may_hold(&self, prefix: u64) -> bool {
        let b = Self::bit(prefix);
        self.0[b / 64] >> (b % 64) & 1 == 1
    }
}

#[cfg(test)]
mod prefix_filter_tests {
    use super::PrefixFilter;

    /// Every inserted prefix is reported (the scan may never skip a clash), and a random
    /// other prefix rarely is.
    #[test]
    fn no_false_negatives_few_false_positives() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let inserted: Vec<u64> = (0..40).map(|_| next()).collect();
        // A SEC1 point's prefix: the fixed 0x04, then random bytes.
        let sec1: Vec<u64> = (0..40).map(|_| (0x04 << 56) | (next() >> 8)).collect();
        for set in [&inserted, &sec1] {
            let filter = PrefixFilter::of(set);
            assert!(set.iter().all(|p| filter.may_hold(*p)));
            let false_positives = (0..10_000).filter(|_| filter.may_hold(next())).count();
            assert!(false_positives < 300, "{false_positives} of 10,000");
        }
        assert!(!PrefixFilter::of(&[]).may_hold(0));
    }
}
