//! Unit and property tests of the ratchet tree (RFC 9420 §4.1, §7.7, §7.8, §12.1).

use super::{LeafIndex, NodeIndex, RatchetTree};
use crate::Error;
use crate::codec::VarBytes;
use crate::codec::{Decode, Encode};
use crate::crypto::{CipherSuite, RustCrypto, SuiteCrypto};
use crate::messages::{
    self, Capabilities, Credential, CredentialType, LeafNode, LeafNodeContent, LeafNodeSource,
    Lifetime, Node, ParentNode, ProtocolVersion,
};
use proptest::prelude::*;

fn key(tag: u8, n: u32) -> Vec<u8> {
    let mut k = vec![tag; 32];
    k[..4].copy_from_slice(&n.to_be_bytes());
    k
}

fn leaf(n: u32, source: LeafNodeSource) -> LeafNode {
    LeafNode {
        content: LeafNodeContent {
            encryption_key: key(0xee, n).into(),
            signature_key: key(0x55, n).into(),
            credential: Credential::Basic {
                identity: VarBytes::new(n.to_be_bytes().to_vec()),
            },
            capabilities: Capabilities {
                versions: vec![ProtocolVersion::MLS10],
                cipher_suites: vec![CipherSuite(1)],
                extensions: vec![],
                proposals: vec![],
                credentials: vec![CredentialType::BASIC],
            },
            leaf_node_source: source,
            extensions: vec![],
        },
        signature: VarBytes::new(vec![0; 64]),
    }
}

fn kp_leaf(n: u32) -> LeafNode {
    leaf(
        n,
        LeafNodeSource::KeyPackage {
            lifetime: Lifetime {
                not_before: 0,
                not_after: u64::MAX,
            },
        },
    )
}

fn parent(n: u32, unmerged: Vec<u32>) -> ParentNode {
    ParentNode {
        encryption_key: key(0xaa, n).into(),
        parent_hash: VarBytes::new(vec![]),
        unmerged_leaves: unmerged,
    }
}

/// A full tree from an array description: `L` leaf, `P` parent, `_` blank.
fn tree_of(shape: &str) -> RatchetTree {
    let nodes = shape
        .chars()
        .enumerate()
        .map(|(i, c)| match c {
            'L' => Some(Node::Leaf(kp_leaf(i as u32))),
            'P' => Some(Node::Parent(parent(i as u32, vec![]))),
            _ => None,
        })
        .collect();
    RatchetTree::from_wire(messages::RatchetTree(nodes)).unwrap()
}

fn ids(nodes: &[u32]) -> Vec<NodeIndex> {
    nodes.iter().map(|n| NodeIndex(*n)).collect()
}

#[test]
fn import_rejects_malformed_trees() {
    let l = || Some(Node::Leaf(kp_leaf(0)));
    let p = || Some(Node::Parent(parent(0, vec![])));
    let import = |nodes| RatchetTree::from_wire(messages::RatchetTree(nodes));
    assert_eq!(import(vec![]), Err(Error::TreeEmpty));
    assert_eq!(import(vec![l(), None]), Err(Error::TreeTrailingBlank));
    assert_eq!(import(vec![None]), Err(Error::TreeTrailingBlank));
    assert_eq!(import(vec![l(), p()]), Err(Error::TreeNodeCount(2)));
    assert_eq!(
        import(vec![l(), l(), l()]),
        Err(Error::TreeNodeTypeMismatch { node: NodeIndex(1) })
    );
    assert_eq!(
        import(vec![p()]),
        Err(Error::TreeNodeTypeMismatch { node: NodeIndex(0) })
    );
    assert_eq!(
        import(vec![
            l(),
            Some(Node::Parent(parent(0, vec![u32::MAX]))),
            l()
        ]),
        Err(Error::UnmergedLeafInvalid {
            node: NodeIndex(1),
            leaf: LeafIndex(u32::MAX)
        })
    );
    // Peer-chosen leaf indices far out of range are errors, not panics.
    let mut t = import(vec![l()]).unwrap();
    assert_eq!(t.leaf(LeafIndex(u32::MAX)), None);
    assert_eq!(
        t.remove_leaf(LeafIndex(u32::MAX)),
        Err(Error::BlankLeaf(LeafIndex(u32::MAX)))
    );
    assert_eq!(
        t.update_leaf(LeafIndex(u32::MAX), kp_leaf(1)),
        Err(Error::BlankLeaf(LeafIndex(u32::MAX)))
    );
    // Five nodes are padded to a full tree of four leaves; the export truncates again.
    let t = import(vec![l(), None, None, None, l()]).unwrap();
    assert_eq!(t.leaf_count(), 4);
    assert_eq!(t.size().node_count(), 7);
    assert_eq!(t.to_wire().0.len(), 5);
}

#[test]
fn wire_round_trip() {
    let t = tree_of("LPL_L");
    let bytes = t.to_wire().encode().unwrap();
    let back = RatchetTree::from_wire(messages::RatchetTree::decode(&bytes).unwrap()).unwrap();
    assert_eq!(back, t);
}

/// The resolution example of RFC 9420 §4.1.1: X[B] over A B _ D, Y over E F, H.
#[test]
fn resolution_rfc_example() {
    let mut t = tree_of("L_L_L_L_L_L_L_L");
    t.blank(NodeIndex(4)).unwrap();
    t.blank(NodeIndex(12)).unwrap();
    t.set_parent(NodeIndex(3), parent(3, vec![1])).unwrap();
    t.set_parent(NodeIndex(9), parent(9, vec![])).unwrap();
    assert_eq!(t.resolution(NodeIndex(3)), ids(&[3, 2]));
    assert_eq!(t.resolution(NodeIndex(4)), ids(&[]));
    assert_eq!(t.resolution(NodeIndex(12)), ids(&[]));
    assert_eq!(t.resolution(NodeIndex(7)), ids(&[3, 2, 9, 14]));
    assert_eq!(t.resolution(NodeIndex(99)), ids(&[]));
}

/// The filtered direct path table of RFC 9420 §4.1.2.
#[test]
fn filtered_direct_path_rfc_example() {
    // A B _ _ E F G _ with T=1, X=9, Y=11, W=7 set; U=3, V=5, Z=13 blank.
    let t = tree_of("LPL_____LPLPL");
    let mut t = t;
    t.set_parent(NodeIndex(7), parent(7, vec![])).unwrap();
    let fdp = |l| t.filtered_direct_path(LeafIndex(l)).unwrap();
    assert_eq!(fdp(0), ids(&[1, 7]));
    assert_eq!(fdp(1), ids(&[1, 7]));
    assert_eq!(fdp(4), ids(&[9, 11, 7]));
    assert_eq!(fdp(5), ids(&[9, 11, 7]));
    assert_eq!(fdp(6), ids(&[11, 7]));
    assert_eq!(
        t.filtered_direct_path(LeafIndex(8)),
        Err(Error::LeafOutOfRange(LeafIndex(8)))
    );
}

#[test]
fn add_fills_leftmost_blank_then_extends() {
    let mut t = tree_of("LPL_L");
    // Leaf 3 is the leftmost blank leaf; the non-blank parent 1 is not on its path, the root
    // (blank) is, so nothing gains an unmerged leaf.
    assert_eq!(t.add_leaf(kp_leaf(100)).unwrap(), LeafIndex(3));
    t.set_parent(NodeIndex(3), parent(3, vec![])).unwrap();
    // Full: the tree doubles and the new leaf is the first of the new half; the old root
    // (now the left child) is not on its path.
    assert_eq!(t.add_leaf(kp_leaf(101)).unwrap(), LeafIndex(4));
    assert_eq!(t.leaf_count(), 8);
    assert!(t.parent(NodeIndex(3)).unwrap().unmerged_leaves.is_empty());
    // A later add under a non-blank parent is unmerged there.
    t.set_parent(NodeIndex(7), parent(7, vec![])).unwrap();
    assert_eq!(t.add_leaf(kp_leaf(102)).unwrap(), LeafIndex(5));
    assert_eq!(t.parent(NodeIndex(7)).unwrap().unmerged_leaves, vec![5]);
}

#[test]
fn adds_in_a_row_take_the_leaves_add_leaf_would() {
    for shape in ["L", "L_L", "LPL_L_L", "_PL_L___L", "LPLPLPL", "L___L_L"] {
        let mut one_by_one = tree_of(shape);
        let mut in_a_row = tree_of(shape);
        let mut first_free = LeafIndex(0);
        for n in 0..9 {
            let expected = one_by_one.add_leaf(kp_leaf(200 + n)).unwrap();
            let leaf = in_a_row
                .add_leaf_after(first_free, kp_leaf(200 + n))
                .unwrap();
            assert_eq!(leaf, expected, "{shape}, add {n}");
            first_free = LeafIndex(leaf.0 + 1);
        }
        assert_eq!(in_a_row.to_wire(), one_by_one.to_wire(), "{shape}");
    }
}

#[test]
fn update_replaces_leaf_and_blanks_path() {
    let mut t = tree_of("LPLPLPL");
    assert_eq!(
        t.update_leaf(LeafIndex(0), kp_leaf(50)),
        Err(Error::LeafSourceMismatch { leaf: LeafIndex(0) })
    );
    let mut same = leaf(0, LeafNodeSource::Update);
    same.content.encryption_key = t.leaf(LeafIndex(0)).unwrap().content.encryption_key.clone();
    assert_eq!(
        t.update_leaf(LeafIndex(0), same),
        Err(Error::UpdateEncryptionKeyUnchanged { leaf: LeafIndex(0) })
    );
    t.update_leaf(LeafIndex(0), leaf(50, LeafNodeSource::Update))
        .unwrap();
    assert!(t.is_blank(NodeIndex(1)) && t.is_blank(NodeIndex(3)));
    assert!(!t.is_blank(NodeIndex(5)));
    t.remove_leaf(LeafIndex(1)).unwrap();
    assert_eq!(
        t.update_leaf(LeafIndex(1), leaf(51, LeafNodeSource::Update)),
        Err(Error::BlankLeaf(LeafIndex(1)))
    );
}

#[test]
fn remove_truncates_right_blank_halves() {
    let mut t = tree_of("L_L_L_L_L");
    assert_eq!(t.leaf_count(), 8);
    t.remove_leaf(LeafIndex(4)).unwrap();
    assert_eq!(t.leaf_count(), 4);
    t.remove_leaf(LeafIndex(2)).unwrap();
    // Leaf 3 is still there: no truncation.
    assert_eq!(t.leaf_count(), 4);
    t.remove_leaf(LeafIndex(3)).unwrap();
    assert_eq!(t.leaf_count(), 2);
    assert_eq!(
        t.remove_leaf(LeafIndex(3)),
        Err(Error::BlankLeaf(LeafIndex(3)))
    );
    t.remove_leaf(LeafIndex(1)).unwrap();
    assert_eq!(t.leaf_count(), 1);
    t.remove_leaf(LeafIndex(0)).unwrap();
    assert_eq!(t.leaf_count(), 1);
    assert!(t.to_wire().0.is_empty());
}

/// The incremental check agrees with the full one: a changed node whose key is found
/// elsewhere (or twice among the changed ones) is named; untouched duplicates elsewhere are
/// outside its promise.
#[test]
fn unique_keys_at_changed_nodes() {
    let mut t = tree_of("LPL_L");
    assert_eq!(
        t.verify_keys_unique_at(&[NodeIndex(0), NodeIndex(1)]),
        Ok(())
    );
    let mut dup = kp_leaf(9);
    dup.content.encryption_key = t.parent(NodeIndex(1)).unwrap().encryption_key.clone();
    t.set_leaf(LeafIndex(2), dup).unwrap();
    assert_eq!(
        t.verify_keys_unique_at(&[NodeIndex(4)]),
        Err(Error::DuplicateEncryptionKey { node: NodeIndex(4) })
    );
    assert_eq!(
        t.verify_keys_unique_at(&[NodeIndex(1), NodeIndex(4)]),
        Err(Error::DuplicateEncryptionKey { node: NodeIndex(4) })
    );
    let mut dup = kp_leaf(10);
    dup.content.signature_key = t.leaf(LeafIndex(0)).unwrap().content.signature_key.clone();
    t.set_leaf(LeafIndex(2), dup).unwrap();
    assert_eq!(
        t.verify_keys_unique_at(&[NodeIndex(4)]),
        Err(Error::DuplicateSignatureKey { leaf: LeafIndex(2) })
    );
    assert_eq!(t.verify_keys_unique_at(&[NodeIndex(6)]), Ok(()));
}

#[test]
fn unique_keys_and_unmerged_leaves() {
    let mut t = tree_of("LPL_L");
    assert_eq!(t.verify_unique_keys(), Ok(()));
    let mut dup = kp_leaf(9);
    dup.content.encryption_key = t.parent(NodeIndex(1)).unwrap().encryption_key.clone();
    t.set_leaf(LeafIndex(2), dup).unwrap();
    assert_eq!(
        t.verify_unique_keys(),
        Err(Error::DuplicateEncryptionKey { node: NodeIndex(4) })
    );
    let mut dup = kp_leaf(10);
    dup.content.signature_key = t.leaf(LeafIndex(0)).unwrap().content.signature_key.clone();
    t.set_leaf(LeafIndex(2), dup).unwrap();
    assert_eq!(
        t.verify_unique_keys(),
        Err(Error::DuplicateSignatureKey { leaf: LeafIndex(2) })
    );

    let mut t = tree_of("LPL_L");
    t.set_parent(NodeIndex(1), parent(1, vec![2])).unwrap();
    assert_eq!(
        t.verify_unmerged_leaves(),
        Err(Error::UnmergedLeafInvalid {
            node: NodeIndex(1),
            leaf: LeafIndex(2)
        })
    );
    t.set_parent(NodeIndex(1), parent(1, vec![1])).unwrap();
    assert_eq!(t.verify_unmerged_leaves(), Ok(()));
}

#[test]
fn leaf_contents() {
    let mut t = tree_of("LPL");
    let mut l = leaf(
        7,
        LeafNodeSource::KeyPackage {
            lifetime: Lifetime {
                not_before: 10,
                not_after: 20,
            },
        },
    );
    t.set_leaf(LeafIndex(1), l.clone()).unwrap();
    assert_eq!(t.verify_leaf_contents(Some(15), None), Ok(()));
    assert_eq!(t.verify_leaf_contents(None, None), Ok(()));
    assert_eq!(
        t.verify_leaf_contents(Some(21), None),
        Err(Error::LeafLifetimeInvalid { leaf: LeafIndex(1) })
    );
    l.content.capabilities.credentials.clear();
    t.set_leaf(LeafIndex(1), l).unwrap();
    assert_eq!(
        t.verify_leaf_contents(Some(15), None),
        Err(Error::LeafCapabilitiesMissing { leaf: LeafIndex(1) })
    );
}

#[derive(Debug, Clone)]
enum Op {
    Add,
    Update(u32),
    Remove(u32),
    /// Sets the filtered direct path of a member to fresh parent nodes and blanks the rest
    /// of its direct path, as merging an UpdatePath does (RFC 9420 §7.5).
    Commit(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Add),
        1 => any::<u32>().prop_map(Op::Update),
        2 => any::<u32>().prop_map(Op::Remove),
        2 => any::<u32>().prop_map(Op::Commit),
    ]
}

/// The `n`-th non-blank leaf, counted modulo the number of members.
fn member(t: &RatchetTree, n: u32) -> Option<LeafIndex> {
    let members: Vec<LeafIndex> = t.leaves().map(|(l, _)| l).collect();
    (!members.is_empty()).then(|| members[n as usize % members.len()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random add/update/remove/commit sequences keep the cached tree hashes equal to a
    /// recomputation from scratch (RFC 9420 §7.8).
    #[test]
    fn cached_hash_matches_recomputation(ops in proptest::collection::vec(op(), 1..40)) {
        let provider = RustCrypto::default();
        let crypto = SuiteCrypto::new(&provider, CipherSuite(1)).unwrap();
        let mut t = RatchetTree::new(kp_leaf(0));
        let mut fresh = 1u32;
        for op in ops {
            fresh += 1;
            match op {
                Op::Add => {
                    t.add_leaf(kp_leaf(fresh)).unwrap();
                }
                Op::Update(n) => {
                    if let Some(l) = member(&t, n) {
                        t.update_leaf(l, leaf(fresh, LeafNodeSource::Update)).unwrap();
                    }
                }
                Op::Remove(n) => {
                    if t.leaves().count() > 1 && let Some(l) = member(&t, n) {
                        t.remove_leaf(l).unwrap();
                    }
                }
                Op::Commit(n) => {
                    if let Some(l) = member(&t, n) {
                        let fdp = t.filtered_direct_path(l).unwrap();
                        t.blank_direct_path(l.node()).unwrap();
                        for p in fdp {
                            fresh += 1;
                            t.set_parent(p, parent(fresh, vec![])).unwrap();
                        }
                    }
                }
            }
            let cached = t.root_hash(&crypto).unwrap();
            prop_assert_eq!(&cached, &t.tree_hash_uncached(&crypto, t.root()).unwrap());
            prop_assert!(t.prefix_indexes_match());
        }
        for i in 0..t.size().node_count() {
            let n = NodeIndex(i);
            prop_assert_eq!(t.tree_hash(&crypto, n).unwrap(), t.tree_hash_uncached(&crypto, n).unwrap());
        }
        prop_assert_eq!(t.verify_unmerged_leaves(), Ok(()));
        prop_assert_eq!(t.verify_unique_keys(), Ok(()));
    }
}

/// The in-place LeafNodeTBS encoding equals the `LeafNodeTbs` structure's (RFC 9420 §7.2).
#[test]
fn leaf_tbs_encodings_agree() {
    use super::validate::{encode_leaf_node_tbs, leaf_node_tbs};
    let sources = [
        kp_leaf(1),
        leaf(2, LeafNodeSource::Update),
        leaf(
            3,
            LeafNodeSource::Commit {
                parent_hash: VarBytes::new(vec![7; 32]),
            },
        ),
    ];
    for node in sources {
        let mut out = vec![];
        encode_leaf_node_tbs(&mut out, &node, b"group", LeafIndex(5)).unwrap();
        let want = leaf_node_tbs(&node, b"group", LeafIndex(5))
            .encode()
            .unwrap();
        assert_eq!(out, want);
    }
}

/// Merges a fake UpdatePath from `leaf` (RFC 9420 §7.5, §7.9): blanks the direct path, sets
/// fresh parents on the filtered direct path and fills in the parent hashes from the root
/// down, ending with the leaf (source commit). Signatures are not made.
fn commit_path(t: &mut RatchetTree, crypto: &SuiteCrypto<'_>, member: LeafIndex, fresh: &mut u32) {
    let fdp = t.filtered_direct_path(member).unwrap();
    t.blank_direct_path(member.node()).unwrap();
    for p in &fdp {
        *fresh += 1;
        t.set_parent(*p, parent(*fresh, vec![])).unwrap();
    }
    let mut below: Vec<NodeIndex> = vec![member.node()];
    below.extend(&fdp);
    for i in (0..fdp.len()).rev() {
        let p = fdp[i];
        let child = below[i];
        let sibling = if child.0 < p.0 { p.right() } else { p.left() }.unwrap();
        let ph = VarBytes::new(t.parent_hash(crypto, p, sibling).unwrap());
        if i == 0 {
            *fresh += 1;
            let mut l = leaf(*fresh, LeafNodeSource::Commit { parent_hash: ph });
            l.content.signature_key = t.leaf(member).unwrap().content.signature_key.clone();
            t.set_leaf(member, l).unwrap();
        } else {
            let mut q = t.parent(child).unwrap().clone();
            q.parent_hash = ph;
            t.set_parent(child, q).unwrap();
        }
    }
}

/// Trees grown by adds, removes and committed paths are parent-hash valid (RFC 9420
/// §7.9.2), including unmerged leaves and chains that skip blank nodes; corrupting the
/// parent hash of any parent is reported at that parent.
#[test]
fn generated_trees_are_parent_hash_valid() {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, CipherSuite(1)).unwrap();
    let mut fresh = 1000u32;
    let mut t = RatchetTree::new(kp_leaf(0));
    for n in 1..40 {
        t.add_leaf(kp_leaf(n)).unwrap();
    }
    for (i, l) in [0u32, 5, 17, 33, 9, 39, 22].into_iter().enumerate() {
        commit_path(&mut t, &crypto, LeafIndex(l), &mut fresh);
        if i % 2 == 0 {
            t.remove_leaf(LeafIndex(l + 1)).unwrap();
        }
        fresh += 1;
        t.add_leaf(kp_leaf(fresh)).unwrap();
        assert_eq!(t.verify_parent_hashes(&crypto), Ok(()), "after commit {l}");
    }
    assert!(
        t.leaves().count() > 30
            && (0..t.size().node_count())
                .filter_map(|i| t.parent(NodeIndex(i)))
                .any(|p| !p.unmerged_leaves.is_empty())
    );
    assert_eq!(t.verify_unmerged_leaves(), Ok(()));
    for i in (1..t.size().node_count()).step_by(2) {
        let node = NodeIndex(i);
        let Some(p) = t.parent(node) else { continue };
        let mut bad = p.clone();
        bad.parent_hash = VarBytes::new(vec![0xff; 32]);
        let mut c = t.clone();
        c.set_parent(node, bad).unwrap();
        assert_eq!(
            c.verify_parent_hashes(&crypto),
            Err(Error::ParentHashMismatch { node })
        );
    }
}

/// The walk [`RatchetTree::verify_unique_keys`] promises to agree with: nodes in index
/// order, a leaf's signature key before its encryption key, failing at the first key seen
/// before.
fn unique_keys_by_walk(t: &RatchetTree) -> Result<(), Error> {
    let (mut encryption, mut signature) = (
        std::collections::HashSet::new(),
        std::collections::HashSet::new(),
    );
    for i in 0..t.size().node_count() {
        let n = NodeIndex(i);
        let key = match t.node(n) {
            None => continue,
            Some(Node::Parent(p)) => p.encryption_key.as_slice().to_vec(),
            Some(Node::Leaf(l)) => {
                if !signature.insert(l.content.signature_key.as_slice().to_vec()) {
                    return Err(Error::DuplicateSignatureKey {
                        leaf: LeafIndex(i / 2),
                    });
                }
                l.content.encryption_key.as_slice().to_vec()
            }
        };
        if !encryption.insert(key) {
            return Err(Error::DuplicateEncryptionKey { node: n });
        }
    }
    Ok(())
}

/// A key from a small alphabet: most keys share their first eight bytes (and some are
/// shorter than eight, padding their prefix with zeros), so prefix runs are long and real
/// duplicates frequent.
fn colliding_key() -> impl Strategy<Value = Vec<u8>> {
    (0u8..3, 0u8..6).prop_map(|(len, tail)| match len {
        0 => vec![0, 0, tail % 2],
        1 => vec![0; 8].into_iter().chain([tail]).collect(),
        _ => vec![0; 8].into_iter().chain([tail, 1, 2]).collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The sorted-prefix uniqueness check names the same node as the hash-set walk, on
    /// trees whose keys collide in prefix and in full (RFC 9420 §7.3).
    #[test]
    fn unique_keys_agree_with_the_walk(
        shape in proptest::collection::vec(0u8..3, 1..24),
        keys in proptest::collection::vec((colliding_key(), colliding_key()), 24),
    ) {
        let mut nodes: Vec<Option<Node>> = shape
            .iter()
            .enumerate()
            .map(|(i, kind)| match (i % 2, kind) {
                (_, 0) => None,
                (0, _) => {
                    let mut l = kp_leaf(i as u32);
                    l.content.encryption_key = keys[i].0.clone().into();
                    l.content.signature_key = keys[i].1.clone().into();
                    Some(Node::Leaf(l))
                }
                _ => {
                    let mut p = parent(i as u32, vec![]);
                    p.encryption_key = keys[i].0.clone().into();
                    Some(Node::Parent(p))
                }
            })
            .collect();
        if nodes.len().is_multiple_of(2) {
            nodes.pop();
        }
        while matches!(nodes.last(), Some(None)) {
            nodes.pop();
            nodes.pop();
        }
        prop_assume!(!nodes.is_empty());
        let t = RatchetTree::from_wire(messages::RatchetTree(nodes)).unwrap();
        prop_assert_eq!(t.verify_unique_keys(), unique_keys_by_walk(&t));
    }
}
