//! Joiner-side validation of whole ratchet trees (RFC 9420 §12.4.3.1): valid trees of both
//! shapes pass, and a corrupted leaf signature anywhere is reported at that leaf by every
//! signature-checking path.

use crate::fixture;

use conclave_mls::Error;
use conclave_mls::codec::VarBytes;
use conclave_mls::crypto::{RustCrypto, SuiteCrypto};
use conclave_mls::internal::tree::join::SignatureCheck;
use conclave_mls::internal::tree::{LeafIndex, RatchetTree};
use fixture::{Fixture, GROUP, SUITE};

const MODES: [SignatureCheck; 2] = [SignatureCheck::Individual, SignatureCheck::Batch];

fn validate(t: &mut RatchetTree, crypto: &SuiteCrypto<'_>) -> Result<(), Error> {
    let expected = t.clone().root_hash(crypto)?;
    t.validate_for_join(crypto, GROUP, &expected, Some(1), None)
}

/// A small xorshift, so the "random" leaves are the same on every run.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn corrupt(t: &mut RatchetTree, leaf: LeafIndex) {
    let mut l = t.leaf(leaf).expect("member").clone();
    let mut sig = l.signature.as_slice().to_vec();
    sig[10] ^= 0x01;
    l.signature = VarBytes::new(sig);
    t.set_leaf(leaf, l).unwrap();
}

#[test]
fn valid_trees_of_both_shapes_pass() {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).unwrap();
    for n in [1, 2, 3, 7, 64, 300] {
        for Fixture { mut tree, .. } in [
            fixture::adds_only(&crypto, n),
            fixture::populated(&crypto, n),
        ] {
            tree.verify_parent_hashes(&crypto).unwrap();
            assert_eq!(validate(&mut tree, &crypto), Ok(()), "{n} members");
            for mode in MODES {
                assert_eq!(
                    tree.verify_leaf_signatures_with(&crypto, GROUP, mode),
                    Ok(())
                );
            }
        }
    }
}

#[test]
fn populated_tree_has_every_parent_set() {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).unwrap();
    let t = fixture::populated(&crypto, 64).tree;
    let parents = (0..t.size().node_count())
        .filter(|i| {
            t.parent(conclave_mls::internal::tree::NodeIndex(*i))
                .is_some()
        })
        .count();
    assert_eq!(parents, 63);
}

#[test]
fn wrong_tree_hash_is_refused() {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).unwrap();
    let mut t = fixture::populated(&crypto, 10).tree;
    assert_eq!(
        t.validate_for_join(&crypto, GROUP, &[0; 32], None, None),
        Err(Error::TreeHashMismatch)
    );
}

/// One corrupted signature at a pseudo-random leaf of a tree spanning several chunks is
/// reported at that leaf, by the individual and the batch path and by `validate_for_join`;
/// with several, the leftmost is reported.
#[test]
fn corrupted_signature_is_named_by_every_path() {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).unwrap();
    let n = 700;
    let shapes = [
        fixture::adds_only(&crypto, n).tree,
        fixture::populated(&crypto, n).tree,
    ];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for (populated, shape) in [false, true].into_iter().zip(shapes) {
        for _ in 0..4 {
            let bad = LeafIndex((xorshift(&mut rng) % u64::from(n)) as u32);
            let mut t = shape.clone();
            corrupt(&mut t, bad);
            let want = Err(Error::LeafSignatureInvalid { leaf: bad });
            for mode in MODES {
                assert_eq!(t.verify_leaf_signatures_with(&crypto, GROUP, mode), want);
            }
            // With blank parents (and the corrupted tree's own hash expected) only the
            // signature fails; under parents, the changed leaf also breaks the parent-hash
            // link that covers it, which is checked first.
            let got = validate(&mut t, &crypto);
            if populated {
                assert!(
                    matches!(got, Err(Error::ParentHashMismatch { .. })),
                    "{got:?}"
                );
            } else {
                assert_eq!(got, want);
            }
            // A second, later corruption does not change which leaf is named.
            let later = LeafIndex(n - 1);
            if later != bad {
                corrupt(&mut t, later);
                for mode in MODES {
                    assert_eq!(t.verify_leaf_signatures_with(&crypto, GROUP, mode), want);
                }
            }
        }
    }
}

/// A leaf whose key is a small-order point and whose signature `(R = identity, s = 0)`
/// satisfies the Ed25519 equation for any message: strict verification refuses it, and so
/// does the batch path, naming the leaf.
#[test]
fn small_order_key_leaf_is_refused_by_every_path() {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).unwrap();
    let mut t = fixture::adds_only(&crypto, 40).tree;
    let leaf = LeafIndex(17);
    let mut l = t.leaf(leaf).unwrap().clone();
    let mut identity = vec![0u8; 32];
    identity[0] = 1; // y = 1: the identity point.
    l.content.signature_key = identity.clone().into();
    l.signature = VarBytes::new([identity, vec![0; 32]].concat());
    t.set_leaf(leaf, l).unwrap();
    for mode in MODES {
        assert_eq!(
            t.verify_leaf_signatures_with(&crypto, GROUP, mode),
            Err(Error::LeafSignatureInvalid { leaf })
        );
    }
}

/// With the structural checks running beside the signatures, the verdict is still the first
/// failing check in `validate_for_join`'s order: a duplicated key (check 2) wins over a bad
/// signature (check 6) and a wrong tree hash (check 4) over a bad signature; a tree whose
/// only fault is a signature fails on it.
#[test]
fn the_first_failing_check_is_reported() {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).unwrap();
    let n = 600;
    let mut t = fixture::adds_only(&crypto, n).tree;
    corrupt(&mut t, LeafIndex(5));
    let bad_signature = Err(Error::LeafSignatureInvalid { leaf: LeafIndex(5) });
    assert_eq!(validate(&mut t.clone(), &crypto), bad_signature);
    assert_eq!(
        t.clone()
            .validate_for_join(&crypto, GROUP, &[0; 32], None, None),
        Err(Error::TreeHashMismatch)
    );
    // Leaf 400 takes leaf 3's signature key: caught by the key check, before any signature.
    let mut l = t.leaf(LeafIndex(400)).unwrap().clone();
    l.content.signature_key = t.leaf(LeafIndex(3)).unwrap().content.signature_key.clone();
    t.set_leaf(LeafIndex(400), l).unwrap();
    assert_eq!(
        validate(&mut t, &crypto),
        Err(Error::DuplicateSignatureKey {
            leaf: LeafIndex(400)
        })
    );
}
