//! The secret tree and its sender ratchets (RFC 9420 §9), and sender-data keys (§6.3.2).
//!
//! Secrets are derived lazily: the tree keeps only its frontier (nodes whose children have
//! not been derived yet), so a 50,000-member group costs nothing until a member sends. A
//! parent's secret is deleted as soon as both children exist, and a ratchet's key as soon
//! as it has been handed out (§9.2: forward secrecy within the epoch).

use crate::Error;
use crate::crypto::{CryptoError, Secret, SuiteCrypto};
use crate::tree::{LeafIndex, TreeSize};
use std::collections::{BTreeMap, HashMap};

/// Which of a leaf's two ratchets (RFC 9420 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RatchetKind {
    /// The handshake ratchet: proposals and commits sent as PrivateMessages.
    Handshake,
    /// The application ratchet: application data.
    Application,
}

/// How far a receiver tolerates reordering within an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RatchetPolicy {
    /// How many skipped keys of one ratchet are kept for messages that arrive late.
    pub out_of_order_tolerance: u32,
    /// How far ahead of the ratchet a generation may be: bounds the work a single message
    /// can cause.
    pub maximum_forward_distance: u32,
}

impl RatchetPolicy {
    /// A policy keeping up to `out_of_order_tolerance` skipped keys per ratchet and
    /// accepting generations up to `maximum_forward_distance` ahead.
    pub fn new(out_of_order_tolerance: u32, maximum_forward_distance: u32) -> Self {
        Self {
            out_of_order_tolerance,
            maximum_forward_distance,
        }
    }
}

impl Default for RatchetPolicy {
    fn default() -> Self {
        Self {
            out_of_order_tolerance: 32,
            maximum_forward_distance: 1000,
        }
    }
}

/// A single-use key and nonce of a sender ratchet (RFC 9420 §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatchetKey {
    /// The generation the key belongs to.
    pub generation: u32,
    /// `ratchet_key_[N]_[j]`.
    pub key: Secret,
    /// `ratchet_nonce_[N]_[j]`, before any reuse-guard XOR.
    pub nonce: Secret,
}

/// One sender ratchet: the secret of the next generation and the keys skipped over.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SenderRatchet {
    generation: u32,
    secret: Secret,
    skipped: BTreeMap<u32, RatchetKey>,
}

impl SenderRatchet {
    fn key_at_current(&self, crypto: &SuiteCrypto<'_>) -> Result<RatchetKey, CryptoError> {
        let g = self.generation;
        Ok(RatchetKey {
            generation: g,
            key: crypto.derive_tree_secret(
                self.secret.as_bytes(),
                b"key",
                g,
                crypto.aead_key_len(),
            )?,
            nonce: crypto.derive_tree_secret(
                self.secret.as_bytes(),
                b"nonce",
                g,
                crypto.aead_nonce_len(),
            )?,
        })
    }

    fn advance(&mut self, crypto: &SuiteCrypto<'_>) -> Result<(), Error> {
        let next = self
            .generation
            .checked_add(1)
            .ok_or(Error::RatchetExhausted)?;
        self.secret = crypto.derive_tree_secret(
            self.secret.as_bytes(),
            b"secret",
            self.generation,
            crypto.hash_len(),
        )?;
        self.generation = next;
        Ok(())
    }
}

/// The secret tree of one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretTree {
    size: TreeSize,
    /// Secrets of nodes whose children have not been derived.
    frontier: HashMap<u32, Secret>,
    ratchets: HashMap<(LeafIndex, RatchetKind), SenderRatchet>,
    policy: RatchetPolicy,
    /// Counts applied changes, so a [`PendingRatchet`] computed before another change is
    /// refused.
    version: u64,
}

impl SecretTree {
    /// A secret tree of `size` whose root secret is `encryption_secret`.
    pub fn new(size: TreeSize, encryption_secret: Secret, policy: RatchetPolicy) -> Self {
        let mut frontier = HashMap::new();
        frontier.insert(size.root().0, encryption_secret);
        Self {
            size,
            frontier,
            ratchets: HashMap::new(),
            policy,
            version: 0,
        }
    }

    /// The leaf secret, derived down from the lowest stored ancestor, without changing the
    /// tree: returns the secret and the frontier change that consuming it would make.
    fn derive_leaf_secret(
        &self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
    ) -> Result<(Secret, FrontierChange), Error> {
        let target = leaf.node();
        // Walk up to the lowest ancestor (or the leaf itself) whose secret is still stored;
        // if none is, the leaf's secret was consumed already.
        let mut node = target;
        while !self.frontier.contains_key(&node.0) {
            node = self
                .size
                .parent(node)
                .ok_or(Error::SecretTreeLeafConsumed(leaf))?;
        }
        let removed = node.0;
        let mut secret = self
            .frontier
            .get(&node.0)
            .cloned()
            .ok_or(Error::SecretTreeLeafConsumed(leaf))?;
        let mut inserted = Vec::new();
        let nh = crypto.hash_len();
        while node != target {
            let (Some(left), Some(right)) = (node.left(), node.right()) else {
                return Err(Error::SecretTreeLeafConsumed(leaf));
            };
            let l = crypto.expand_with_label(secret.as_bytes(), b"tree", b"left", nh)?;
            let r = crypto.expand_with_label(secret.as_bytes(), b"tree", b"right", nh)?;
            if target.0 < node.0 {
                inserted.push((right.0, r));
                secret = l;
                node = left;
            } else {
                inserted.push((left.0, l));
                secret = r;
                node = right;
            }
        }
        Ok((secret, FrontierChange { removed, inserted }))
    }

    /// The current state of a leaf's ratchet, without changing the tree: a copy of the
    /// stored ratchet, or a fresh one derived from the leaf secret (with the frontier change
    /// and the sibling ratchet that deriving it implies).
    fn derive_ratchet(
        &self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
    ) -> Result<(SenderRatchet, PendingRatchet), Error> {
        if !self.size.contains_leaf(leaf) {
            return Err(Error::LeafOutOfRange(leaf));
        }
        let mut pending = PendingRatchet {
            version: self.version,
            frontier: None,
            ratchets: Vec::new(),
        };
        if let Some(r) = self.ratchets.get(&(leaf, kind)) {
            return Ok((r.clone(), pending));
        }
        let (leaf_secret, change) = self.derive_leaf_secret(crypto, leaf)?;
        pending.frontier = Some(change);
        let nh = crypto.hash_len();
        let mut own = None;
        for (k, label) in [
            (RatchetKind::Handshake, &b"handshake"[..]),
            (RatchetKind::Application, b"application"),
        ] {
            let ratchet = SenderRatchet {
                generation: 0,
                secret: crypto.expand_with_label(leaf_secret.as_bytes(), label, &[], nh)?,
                skipped: BTreeMap::new(),
            };
            if k == kind {
                own = Some(ratchet);
            } else {
                pending.ratchets.push(((leaf, k), ratchet));
            }
        }
        let own = own.ok_or(Error::SecretTreeLeafConsumed(leaf))?;
        Ok((own, pending))
    }

    /// The next key for sending from `leaf`; it is never handed out again.
    pub fn next_key(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
    ) -> Result<RatchetKey, Error> {
        let (mut ratchet, mut pending) = self.derive_ratchet(crypto, leaf, kind)?;
        let key = ratchet.key_at_current(crypto)?;
        ratchet.advance(crypto)?;
        pending.ratchets.push(((leaf, kind), ratchet));
        self.apply(pending)?;
        Ok(key)
    }

    /// The key of `generation` for a message received from `leaf`, **without consuming it**
    /// (RFC 9420 §9.2): the tree is unchanged until the returned [`PendingRatchet`] is given
    /// to [`SecretTree::apply`], which a receiver does only once the message decrypted and
    /// its signature verified. So a forged message burns neither a generation nor a leaf's
    /// secret. Fails with [`Error::RatchetKeyUsed`] for a key already applied (a replay).
    pub fn peek_key_for_generation(
        &self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<(RatchetKey, PendingRatchet), Error> {
        let policy = self.policy;
        let (mut ratchet, mut pending) = self.derive_ratchet(crypto, leaf, kind)?;
        if generation < ratchet.generation {
            let key = ratchet
                .skipped
                .remove(&generation)
                .ok_or(Error::RatchetKeyUsed { generation })?;
            pending.ratchets.push(((leaf, kind), ratchet));
            return Ok((key, pending));
        }
        if generation - ratchet.generation > policy.maximum_forward_distance {
            return Err(Error::RatchetTooFarAhead {
                generation,
                current: ratchet.generation,
            });
        }
        while ratchet.generation < generation {
            if policy.out_of_order_tolerance > 0 {
                let skipped = ratchet.key_at_current(crypto)?;
                ratchet.skipped.insert(skipped.generation, skipped);
                while ratchet.skipped.len() > policy.out_of_order_tolerance as usize {
                    ratchet.skipped.pop_first();
                }
            }
            ratchet.advance(crypto)?;
        }
        let key = ratchet.key_at_current(crypto)?;
        ratchet.advance(crypto)?;
        pending.ratchets.push(((leaf, kind), ratchet));
        Ok((key, pending))
    }

    /// Commits a change computed by [`SecretTree::peek_key_for_generation`]: the key it
    /// returned is consumed (RFC 9420 §9.2: deleted after use). Fails with
    /// [`Error::StaleRatchetUpdate`] if the tree changed since the peek, so that a stale
    /// change can never bring back a deleted key.
    pub fn apply(&mut self, pending: PendingRatchet) -> Result<(), Error> {
        if pending.version != self.version {
            return Err(Error::StaleRatchetUpdate);
        }
        if let Some(change) = pending.frontier {
            self.frontier.remove(&change.removed);
            self.frontier.extend(change.inserted);
        }
        self.ratchets.extend(pending.ratchets);
        self.version = self.version.wrapping_add(1);
        Ok(())
    }

    /// The key of `generation` for a message received from `leaf`, consumed at once. Each
    /// key is returned at most once: asking again is a replay and fails with
    /// [`Error::RatchetKeyUsed`]. Receivers that still have to authenticate the message
    /// should use [`SecretTree::peek_key_for_generation`] instead.
    pub fn key_for_generation(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<RatchetKey, Error> {
        let (key, pending) = self.peek_key_for_generation(crypto, leaf, kind, generation)?;
        self.apply(pending)?;
        Ok(key)
    }
}

/// The frontier change of deriving one leaf secret: the stored ancestor used up, and the
/// sibling secrets derived on the way down.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FrontierChange {
    removed: u32,
    inserted: Vec<(u32, Secret)>,
}

/// A change to a [`SecretTree`] computed but not yet made: handed out with a receive key by
/// [`SecretTree::peek_key_for_generation`] and committed with [`SecretTree::apply`] once the
/// message is authenticated (RFC 9420 §6.3, §9.2). Dropping it leaves the tree as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the key is not consumed until the change is applied"]
pub struct PendingRatchet {
    version: u64,
    frontier: Option<FrontierChange>,
    ratchets: Vec<((LeafIndex, RatchetKind), SenderRatchet)>,
}

/// `sender_data_key` and `sender_data_nonce` for a PrivateMessage (RFC 9420 §6.3.2): keyed
/// by the first `Nh` bytes of the ciphertext (all of it, if shorter).
pub fn sender_data_key_nonce(
    crypto: &SuiteCrypto<'_>,
    sender_data_secret: &[u8],
    ciphertext: &[u8],
) -> Result<(Secret, Secret), CryptoError> {
    let sample = &ciphertext[..ciphertext.len().min(crypto.hash_len())];
    let key =
        crypto.expand_with_label(sender_data_secret, b"key", sample, crypto.aead_key_len())?;
    let nonce = crypto.expand_with_label(
        sender_data_secret,
        b"nonce",
        sample,
        crypto.aead_nonce_len(),
    )?;
    Ok((key, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CipherSuite, RustCrypto};

    fn setup(policy: RatchetPolicy) -> (RustCrypto, SecretTree) {
        let tree = SecretTree::new(
            TreeSize::from_leaf_count(4).unwrap(),
            Secret::new(vec![7; 32]),
            policy,
        );
        (RustCrypto::default(), tree)
    }

    #[test]
    fn keys_are_single_use_and_out_of_order_within_window() {
        let (p, mut tree) = setup(RatchetPolicy {
            out_of_order_tolerance: 2,
            maximum_forward_distance: 10,
        });
        let c = SuiteCrypto::new(&p, CipherSuite(1)).unwrap();
        let mut sender = tree.clone();
        let sent: Vec<_> = (0..5)
            .map(|_| {
                sender
                    .next_key(&c, LeafIndex(2), RatchetKind::Application)
                    .unwrap()
            })
            .collect();
        assert_eq!(
            tree.key_for_generation(&c, LeafIndex(2), RatchetKind::Application, 4)
                .unwrap(),
            sent[4]
        );
        // Generations 2 and 3 are in the window of 2; 0 and 1 fell out of it.
        assert_eq!(
            tree.key_for_generation(&c, LeafIndex(2), RatchetKind::Application, 3)
                .unwrap(),
            sent[3]
        );
        assert_eq!(
            tree.key_for_generation(&c, LeafIndex(2), RatchetKind::Application, 2)
                .unwrap(),
            sent[2]
        );
        for g in [0, 2, 3, 4] {
            assert!(matches!(
                tree.key_for_generation(&c, LeafIndex(2), RatchetKind::Application, g),
                Err(Error::RatchetKeyUsed { .. })
            ));
        }
        assert!(matches!(
            tree.key_for_generation(&c, LeafIndex(2), RatchetKind::Application, 16),
            Err(Error::RatchetTooFarAhead { .. })
        ));
        assert!(matches!(
            tree.key_for_generation(&c, LeafIndex(4), RatchetKind::Application, 0),
            Err(Error::LeafOutOfRange(_))
        ));
        // The handshake ratchet of the same leaf is independent of the application one.
        let h = tree
            .key_for_generation(&c, LeafIndex(2), RatchetKind::Handshake, 0)
            .unwrap();
        assert_ne!(h.key, sent[0].key);
    }

    #[test]
    fn peek_changes_nothing_until_applied() {
        let (p, mut tree) = setup(RatchetPolicy::default());
        let c = SuiteCrypto::new(&p, CipherSuite(1)).unwrap();
        let before = tree.clone();
        // A fresh leaf (its secret not yet derived) and a far generation.
        let (key, pending) = tree
            .peek_key_for_generation(&c, LeafIndex(1), RatchetKind::Handshake, 5)
            .unwrap();
        assert_eq!(tree, before, "peeking leaves the tree unchanged");
        drop(pending);
        assert_eq!(tree, before, "dropping the pending change too");
        let (again, pending) = tree
            .peek_key_for_generation(&c, LeafIndex(1), RatchetKind::Handshake, 5)
            .unwrap();
        assert_eq!(again, key);
        tree.apply(pending.clone()).unwrap();
        assert_ne!(tree, before);
        // The key is now consumed, and a stale change cannot be applied twice.
        assert!(matches!(
            tree.peek_key_for_generation(&c, LeafIndex(1), RatchetKind::Handshake, 5),
            Err(Error::RatchetKeyUsed { generation: 5 })
        ));
        assert_eq!(tree.apply(pending), Err(Error::StaleRatchetUpdate));
        // Peek + apply gives the same keys as the one-step call on a copy.
        let mut other = before.clone();
        assert_eq!(
            other
                .key_for_generation(&c, LeafIndex(1), RatchetKind::Handshake, 5)
                .unwrap(),
            key
        );
        // A skipped key (generation 3) peeked from the window leaves the tree unchanged too.
        let snapshot = tree.clone();
        let (k3, pending) = tree
            .peek_key_for_generation(&c, LeafIndex(1), RatchetKind::Handshake, 3)
            .unwrap();
        assert_eq!(tree, snapshot);
        tree.apply(pending).unwrap();
        assert_eq!(
            other
                .key_for_generation(&c, LeafIndex(1), RatchetKind::Handshake, 3)
                .unwrap(),
            k3
        );
    }

    #[test]
    fn frontier_stays_logarithmic() {
        let p = RustCrypto::default();
        let c = SuiteCrypto::new(&p, CipherSuite(1)).unwrap();
        let size = TreeSize::from_leaf_count(1024).unwrap();
        let mut tree = SecretTree::new(size, Secret::new(vec![1; 32]), RatchetPolicy::default());
        tree.next_key(&c, LeafIndex(0), RatchetKind::Application)
            .unwrap();
        assert_eq!(tree.frontier.len(), 10, "one sibling secret per level");
        assert!(
            !tree.frontier.contains_key(&size.root().0),
            "parents are deleted once split"
        );
    }
}

mod state {
    //! Persisting a secret tree (the group's exported state).
    use super::*;
    use crate::codec::state::{StateReader, StateWriter};

    fn kind_byte(kind: RatchetKind) -> u8 {
        match kind {
            RatchetKind::Handshake => 0,
            RatchetKind::Application => 1,
        }
    }

    impl SecretTree {
        pub(crate) fn write_state(&self, w: &mut StateWriter) -> Result<(), Error> {
            w.u32(self.size.leaf_count());
            w.u32(self.policy.out_of_order_tolerance);
            w.u32(self.policy.maximum_forward_distance);
            w.u64(self.version);
            let mut frontier: Vec<_> = self.frontier.iter().collect();
            frontier.sort_by_key(|(n, _)| **n);
            w.count(frontier.len())?;
            for (node, secret) in frontier {
                w.u32(*node);
                w.bytes(secret.as_bytes())?;
            }
            let mut ratchets: Vec<_> = self.ratchets.iter().collect();
            ratchets.sort_by_key(|((l, k), _)| (l.0, kind_byte(*k)));
            w.count(ratchets.len())?;
            for ((leaf, kind), r) in ratchets {
                w.u32(leaf.0);
                w.u8(kind_byte(*kind));
                w.u32(r.generation);
                w.bytes(r.secret.as_bytes())?;
                w.count(r.skipped.len())?;
                for key in r.skipped.values() {
                    w.u32(key.generation);
                    w.bytes(key.key.as_bytes())?;
                    w.bytes(key.nonce.as_bytes())?;
                }
            }
            Ok(())
        }

        pub(crate) fn read_state(r: &mut StateReader<'_>) -> Result<Self, Error> {
            let size = TreeSize::from_leaf_count(r.u32()?)
                .ok_or(Error::StateCorrupt("secret tree size"))?;
            let policy = RatchetPolicy {
                out_of_order_tolerance: r.u32()?,
                maximum_forward_distance: r.u32()?,
            };
            let version = r.u64()?;
            let mut frontier = HashMap::new();
            for _ in 0..r.count(8)? {
                let node = r.u32()?;
                frontier.insert(node, Secret::from_slice(r.bytes()?));
            }
            let mut ratchets = HashMap::new();
            for _ in 0..r.count(13)? {
                let leaf = LeafIndex(r.u32()?);
                let kind = match r.u8()? {
                    0 => RatchetKind::Handshake,
                    1 => RatchetKind::Application,
                    _ => return Err(Error::StateCorrupt("ratchet kind")),
                };
                let generation = r.u32()?;
                let secret = Secret::from_slice(r.bytes()?);
                let mut skipped = BTreeMap::new();
                for _ in 0..r.count(12)? {
                    let g = r.u32()?;
                    let key = Secret::from_slice(r.bytes()?);
                    let nonce = Secret::from_slice(r.bytes()?);
                    skipped.insert(
                        g,
                        RatchetKey {
                            generation: g,
                            key,
                            nonce,
                        },
                    );
                }
                ratchets.insert(
                    (leaf, kind),
                    SenderRatchet {
                        generation,
                        secret,
                        skipped,
                    },
                );
            }
            Ok(Self {
                size,
                frontier,
                ratchets,
                policy,
                version,
            })
        }
    }
}
