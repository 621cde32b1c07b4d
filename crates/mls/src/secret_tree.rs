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
pub struct RatchetPolicy {
    /// How many skipped keys of one ratchet are kept for messages that arrive late.
    pub out_of_order_tolerance: u32,
    /// How far ahead of the ratchet a generation may be: bounds the work a single message
    /// can cause.
    pub maximum_forward_distance: u32,
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
        }
    }

    /// The leaf secret, derived down from the lowest stored ancestor; consumed by the call.
    fn take_leaf_secret(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
    ) -> Result<Secret, Error> {
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
        while node != target {
            let secret = self
                .frontier
                .remove(&node.0)
                .ok_or(Error::SecretTreeLeafConsumed(leaf))?;
            let (left, right) = (node.left(), node.right());
            let (Some(left), Some(right)) = (left, right) else {
                return Err(Error::SecretTreeLeafConsumed(leaf));
            };
            let nh = crypto.hash_len();
            self.frontier.insert(
                left.0,
                crypto.expand_with_label(secret.as_bytes(), b"tree", b"left", nh)?,
            );
            self.frontier.insert(
                right.0,
                crypto.expand_with_label(secret.as_bytes(), b"tree", b"right", nh)?,
            );
            node = if target.0 < node.0 { left } else { right };
        }
        self.frontier
            .remove(&target.0)
            .ok_or(Error::SecretTreeLeafConsumed(leaf))
    }

    fn ratchet(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
    ) -> Result<&mut SenderRatchet, Error> {
        if !self.size.contains_leaf(leaf) {
            return Err(Error::LeafOutOfRange(leaf));
        }
        if !self.ratchets.contains_key(&(leaf, kind)) {
            let leaf_secret = self.take_leaf_secret(crypto, leaf)?;
            let nh = crypto.hash_len();
            for (k, label) in [
                (RatchetKind::Handshake, &b"handshake"[..]),
                (RatchetKind::Application, b"application"),
            ] {
                let secret = crypto.expand_with_label(leaf_secret.as_bytes(), label, &[], nh)?;
                self.ratchets.insert(
                    (leaf, k),
                    SenderRatchet {
                        generation: 0,
                        secret,
                        skipped: BTreeMap::new(),
                    },
                );
            }
        }
        self.ratchets
            .get_mut(&(leaf, kind))
            .ok_or(Error::SecretTreeLeafConsumed(leaf))
    }

    /// The next key for sending from `leaf`; it is never handed out again.
    pub fn next_key(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
    ) -> Result<RatchetKey, Error> {
        let ratchet = self.ratchet(crypto, leaf, kind)?;
        let key = ratchet.key_at_current(crypto)?;
        ratchet.advance(crypto)?;
        Ok(key)
    }

    /// The key of `generation` for a message received from `leaf`. Each key is returned at
    /// most once: asking again is a replay and fails with [`Error::RatchetKeyUsed`].
    pub fn key_for_generation(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        leaf: LeafIndex,
        kind: RatchetKind,
        generation: u32,
    ) -> Result<RatchetKey, Error> {
        let policy = self.policy;
        let ratchet = self.ratchet(crypto, leaf, kind)?;
        if generation < ratchet.generation {
            return ratchet
                .skipped
                .remove(&generation)
                .ok_or(Error::RatchetKeyUsed { generation });
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
        Ok(key)
    }
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
