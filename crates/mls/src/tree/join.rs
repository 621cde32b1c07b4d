//! Validating a whole ratchet tree as a joiner does (RFC 9420 §12.4.3.1), fast at tens of
//! thousands of members: every check is O(n log n) or better, and the leaf signatures — the
//! dominant cost — are checked on several threads with the `parallel` feature.

use super::math::LeafIndex;
use super::ratchet::RatchetTree;
use super::validate::{LEAF_NODE_TBS_LABEL, encode_leaf_node_tbs};
use crate::Error;
use crate::crypto::{SignatureItem, SuiteCrypto};
use crate::messages::{LeafNode, RequiredCapabilities};

/// Leaves per unit of work at most: large enough that a batch amortizes its fixed cost and
/// a thread its scheduling.
const CHUNK: usize = 256;

/// Leaves per unit of work for `leaves` leaves: [`CHUNK`], or less in a small tree, so that
/// every thread gets several units (one 256-leaf unit would leave all cores but one idle in
/// a group of a hundred).
fn chunk_size(leaves: usize) -> usize {
    #[cfg(feature = "parallel")]
    let units = 4 * rayon::current_num_threads();
    #[cfg(not(feature = "parallel"))]
    let units = 1;
    leaves.div_ceil(units).clamp(1, CHUNK)
}

/// How leaf signatures are checked; both accept exactly the same trees and name the same
/// leaf on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureCheck {
    /// One strict verification per leaf ([`crate::crypto::CryptoProvider::verify`]).
    #[default]
    Individual,
    /// [`crate::crypto::CryptoProvider::verify_batch`] per chunk of leaves; a failing chunk
    /// is re-checked leaf by leaf to find the culprit. With [`crate::crypto::RustCrypto`]
    /// this is about twice as slow as `Individual` (measured): to accept exactly what strict
    /// verification accepts, its Ed25519 batch checks that every key and `R` is torsion-free,
    /// which costs more than the batch equation saves. It is here for providers whose batch
    /// is sound and cheaper.
    Batch,
}

/// The leftmost leaf of `chunk` whose signature does not verify, as an error.
fn check_chunk(
    crypto: &SuiteCrypto<'_>,
    group_id: &[u8],
    chunk: &[(LeafIndex, &LeafNode)],
    mode: SignatureCheck,
) -> Result<(), Error> {
    let mut tbs = Vec::with_capacity(chunk.len());
    for (leaf, node) in chunk {
        let mut out = Vec::with_capacity(512);
        encode_leaf_node_tbs(&mut out, node, group_id, *leaf)?;
        tbs.push(out);
    }
    if mode == SignatureCheck::Batch {
        let items: Vec<SignatureItem<'_>> = chunk
            .iter()
            .zip(&tbs)
            .map(|((_, node), tbs)| {
                (
                    node.content.signature_key.as_slice(),
                    tbs.as_slice(),
                    node.signature.as_slice(),
                )
            })
            .collect();
        if crypto
            .verify_batch_with_label(LEAF_NODE_TBS_LABEL, &items)
            .is_ok()
        {
            return Ok(());
        }
        // Fall through: one by one names the leftmost culprit.
    }
    for ((leaf, node), tbs) in chunk.iter().zip(&tbs) {
        crypto
            .verify_with_label(
                node.content.signature_key.as_slice(),
                LEAF_NODE_TBS_LABEL,
                tbs,
                node.signature.as_slice(),
            )
            .map_err(|_| Error::LeafSignatureInvalid { leaf: *leaf })?;
    }
    Ok(())
}

impl RatchetTree {
    /// Verifies the signature of every non-blank leaf (RFC 9420 §7.2, §7.3) the way `mode`
    /// says, on all cores with the `parallel` feature. Fails with
    /// [`Error::LeafSignatureInvalid`] naming the leftmost leaf whose signature does not
    /// verify, whatever the mode and the thread count.
    pub fn verify_leaf_signatures_with(
        &self,
        crypto: &SuiteCrypto<'_>,
        group_id: &[u8],
        mode: SignatureCheck,
    ) -> Result<(), Error> {
        let leaves: Vec<(LeafIndex, &LeafNode)> = self.leaves().collect();
        let check = |chunk: &[(LeafIndex, &LeafNode)]| check_chunk(crypto, group_id, chunk, mode);
        #[cfg(feature = "parallel")]
        let first_error = {
            use rayon::prelude::*;
            leaves
                .par_chunks(chunk_size(leaves.len()))
                .map(check)
                .find_first(Result::is_err)
        };
        #[cfg(not(feature = "parallel"))]
        let first_error = leaves
            .chunks(chunk_size(leaves.len()))
            .map(check)
            .find(Result::is_err);
        first_error.unwrap_or(Ok(()))
    }

    /// Validates a ratchet tree received in a Welcome (or GroupInfo) — RFC 9420 §12.4.3.1
    /// with the per-leaf checks of §7.3:
    ///
    /// 1. the unmerged leaves are consistent ([`Self::verify_unmerged_leaves`]);
    /// 2. encryption and signature keys are unique ([`Self::verify_unique_keys`]);
    /// 3. every leaf's lifetime (if `now` is given), extensions, the group's `required`
    ///    capabilities and the credential types in use ([`Self::verify_leaf_contents`]);
    /// 4. the root tree hash equals `expected_tree_hash`, the GroupInfo's
    ///    ([`Self::verify_root_hash`]);
    /// 5. every non-blank parent is parent-hash valid ([`Self::verify_parent_hashes`]);
    /// 6. every leaf signature verifies, under `group_id` for update and commit leaves
    ///    ([`Self::verify_leaf_signatures_with`], in parallel with the `parallel` feature).
    ///
    /// The first failing check in that order is the error, whatever the threads do. With the
    /// `parallel` feature checks 1–3 and the tree hashes of check 4 are computed beside the
    /// signatures, so that no core waits for the sequential checks or for the hashing's
    /// level-by-level steps; the parent hashes (5), parallel by themselves, follow. Cost
    /// for n leaves: O(n) hashes and key-set inserts, O(n log n) for the resolutions of the
    /// parent-hash check, and n signature verifications, which dominate. Fills the tree-hash
    /// cache as a side effect.
    pub fn validate_for_join(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        group_id: &[u8],
        expected_tree_hash: &[u8],
        now: Option<u64>,
        required: Option<&RequiredCapabilities>,
    ) -> Result<(), Error> {
        self.bind_cache(crypto);
        let tree = &*self;
        let structure = || {
            tree.verify_unmerged_leaves()?;
            tree.verify_unique_keys()?;
            tree.verify_leaf_contents(now, required)?;
            tree.missing_hashes(crypto)
        };
        let signatures =
            || tree.verify_leaf_signatures_with(crypto, group_id, SignatureCheck::Individual);
        #[cfg(feature = "parallel")]
        let (structure, signatures) = rayon::join(structure, signatures);
        #[cfg(not(feature = "parallel"))]
        let (structure, signatures) = match structure() {
            // Without threads, a malformed tree is refused before the signatures are paid.
            Ok(missing) => (Ok(missing), signatures()),
            Err(e) => (Err(e), Ok(())),
        };
        self.store_hashes(structure?);
        self.verify_root_hash(crypto, expected_tree_hash)?;
        self.verify_parent_hashes(crypto)?;
        signatures
    }
}
