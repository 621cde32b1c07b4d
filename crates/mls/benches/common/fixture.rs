//! Deterministic ratchet trees with real Ed25519 leaf signatures, shared by the tree bench
//! and the join-validation tests (included with `#[path]`).
//!
//! Two shapes: `adds_only`, the tree a group reaches by Adds alone (every parent blank), and
//! `populated`, where every parent above two non-blank subtrees is non-blank and parent-hash
//! valid (RFC 9420 §7.9.2), as if the leftmost leaf under each parent had committed last.

#![allow(dead_code)]

use conclave_mls::codec::VarBytes;
use conclave_mls::crypto::{
    CipherSuite, CryptoProvider, RustCrypto, SignaturePrivateKey, SuiteCrypto,
};
use conclave_mls::internal::tree::hash::parent_hash_input_bytes;
use conclave_mls::internal::tree::validate::encode_leaf_node_tbs;
use conclave_mls::internal::tree::{LeafIndex, NodeIndex, RatchetTree};
use conclave_mls::messages::{
    self, Capabilities, Credential, CredentialType, LeafNode, LeafNodeContent, LeafNodeSource,
    Node, ParentNode, ProtocolVersion,
};

/// The group id every fixture leaf is signed under.
pub const GROUP: &[u8] = b"bench group";
/// Ed25519 with X25519, AES-128-GCM and SHA-256.
pub const SUITE: CipherSuite = CipherSuite(1);

/// A tree together with the private signature key of every leaf, to re-sign leaves.
pub struct Fixture {
    pub tree: RatchetTree,
    pub keys: Vec<SignaturePrivateKey>,
}

fn key32(tag: u8, n: u32) -> Vec<u8> {
    let mut k = vec![tag; 32];
    k[..4].copy_from_slice(&n.to_be_bytes());
    k
}

/// An unsigned leaf for member `n`.
fn leaf_content(public_key: Vec<u8>, n: u32, source: LeafNodeSource) -> LeafNode {
    LeafNode {
        content: LeafNodeContent {
            encryption_key: key32(0xee, n).into(),
            signature_key: public_key.into(),
            credential: Credential::Basic {
                identity: VarBytes::new(n.to_be_bytes().to_vec()),
            },
            capabilities: Capabilities {
                versions: vec![ProtocolVersion::MLS10],
                cipher_suites: vec![SUITE],
                extensions: vec![],
                proposals: vec![],
                credentials: vec![CredentialType::BASIC],
            },
            leaf_node_source: source,
            extensions: vec![],
        },
        signature: VarBytes::new(vec![]),
    }
}

/// Signs `node` as the leaf at `leaf` (RFC 9420 §7.2).
pub fn sign_leaf(
    crypto: &SuiteCrypto<'_>,
    key: &SignaturePrivateKey,
    node: &mut LeafNode,
    leaf: LeafIndex,
) {
    let mut tbs = vec![];
    encode_leaf_node_tbs(&mut tbs, node, GROUP, leaf).expect("tbs");
    node.signature = VarBytes::new(
        crypto
            .sign_with_label(key, b"LeafNodeTBS", &tbs)
            .expect("sign"),
    );
}

/// Signature keys for `n` members, from a seeded provider.
fn keys(provider: &RustCrypto, n: u32) -> Vec<(SignaturePrivateKey, Vec<u8>)> {
    (0..n)
        .map(|_| {
            let k = provider.signature_generate_key_pair(SUITE).expect("keygen");
            (k.private_key, k.public_key)
        })
        .collect()
}

/// `n` members added one by one: every parent is blank, every leaf source Update.
pub fn adds_only(crypto: &SuiteCrypto<'_>, n: u32) -> Fixture {
    let provider = RustCrypto::from_seed([1; 32]);
    let mut tree: Option<RatchetTree> = None;
    let mut private = Vec::new();
    for (i, (sk, pk)) in keys(&provider, n).into_iter().enumerate() {
        let mut node = leaf_content(pk, i as u32, LeafNodeSource::Update);
        sign_leaf(crypto, &sk, &mut node, LeafIndex(i as u32));
        match &mut tree {
            None => tree = Some(RatchetTree::new(node)),
            Some(t) => {
                t.add_leaf(node).expect("add");
            }
        }
        private.push(sk);
    }
    Fixture {
        tree: tree.expect("n > 0"),
        keys: private,
    }
}

/// `n` members, every parent with two non-empty subtrees non-blank: built top-down with
/// each parent's chain running through its left child (RFC 9420 §7.9), so the left child's
/// `parent_hash` is `Hash(ParentHashInput)` of the parent and a right child starts a new
/// chain. Leaves at the bottom of a chain have source Commit, the others Update.
pub fn populated(crypto: &SuiteCrypto<'_>, n: u32) -> Fixture {
    let provider = RustCrypto::from_seed([2; 32]);
    let keys = keys(&provider, n);
    // Start from the adds-only shape: same leaves, blank parents.
    let mut nodes: Vec<Option<Node>> = Vec::new();
    for (i, (_, pk)) in keys.iter().enumerate() {
        if i > 0 {
            nodes.push(None);
        }
        nodes.push(Some(Node::Leaf(leaf_content(
            pk.clone(),
            i as u32,
            LeafNodeSource::Update,
        ))));
    }
    let mut tree = RatchetTree::from_wire(messages::RatchetTree(nodes)).expect("shape");
    let mut fresh = 0u32;
    let root = tree.root();
    build(&mut tree, crypto, &keys, root, Vec::new(), &mut fresh);
    Fixture {
        tree,
        keys: keys.into_iter().map(|(sk, _)| sk).collect(),
    }
}

/// Whether the subtree under `node` holds a member.
fn occupied(n: u32, node: NodeIndex) -> bool {
    let (lo, _) = node.span();
    lo.0 / 2 < n
}

fn build(
    t: &mut RatchetTree,
    crypto: &SuiteCrypto<'_>,
    keys: &[(SignaturePrivateKey, Vec<u8>)],
    node: NodeIndex,
    parent_hash: Vec<u8>,
    fresh: &mut u32,
) {
    let n = keys.len() as u32;
    if !occupied(n, node) {
        return;
    }
    if let Some(leaf) = node.leaf() {
        let mut l = t.leaf(leaf).expect("member").clone();
        if !parent_hash.is_empty() {
            l.content.leaf_node_source = LeafNodeSource::Commit {
                parent_hash: parent_hash.into(),
            };
        }
        sign_leaf(crypto, &keys[leaf.0 as usize].0, &mut l, leaf);
        t.set_leaf(leaf, l).expect("leaf");
        return;
    }
    let (left, right) = (node.left().expect("parent"), node.right().expect("parent"));
    if !occupied(n, right) {
        // Blank: the chain passes through to the left child (its resolution is the left's).
        build(t, crypto, keys, left, parent_hash, fresh);
        return;
    }
    *fresh += 1;
    let p = ParentNode {
        encryption_key: key32(0xaa, *fresh).into(),
        parent_hash: parent_hash.into(),
        unmerged_leaves: vec![],
    };
    t.set_parent(node, p.clone()).expect("parent");
    build(t, crypto, keys, right, Vec::new(), fresh);
    let sibling = t.tree_hash(crypto, right).expect("hash");
    let link = crypto
        .hash(&parent_hash_input_bytes(&p, &sibling).expect("input"))
        .expect("hash");
    build(t, crypto, keys, left, link, fresh);
}
