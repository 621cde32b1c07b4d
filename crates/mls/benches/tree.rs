//! Ratchet tree costs at 1,000 members (RFC 9420 §7.3, §7.8, §7.9.2): leaf signature
//! verification, a cold root tree hash, the re-hash after one Update, and parent-hash checks.

use conclave_mls::codec::VLBytes;
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, SuiteCrypto};
use conclave_mls::messages::ParentNode;
use conclave_mls::messages::{
    Capabilities, Credential, CredentialType, LeafNode, LeafNodeContent, LeafNodeSource,
    ProtocolVersion,
};
use conclave_mls::tree::validate::encode_leaf_node_tbs;
use conclave_mls::tree::{LeafIndex, NodeIndex, RatchetTree};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const MEMBERS: u32 = 1000;
const GROUP: &[u8] = b"bench group";

fn signed_leaf(
    crypto: &SuiteCrypto<'_>,
    provider: &RustCrypto,
    leaf: LeafIndex,
    n: u32,
) -> LeafNode {
    let keys = provider
        .signature_generate_key_pair(crypto.suite())
        .expect("keygen");
    let mut node = LeafNode {
        content: LeafNodeContent {
            encryption_key: [n.to_be_bytes().as_slice(), &[0xee; 28]].concat().into(),
            signature_key: keys.public_key.clone().into(),
            credential: Credential::Basic {
                identity: VLBytes::new(n.to_be_bytes().to_vec()),
            },
            capabilities: Capabilities {
                versions: vec![ProtocolVersion::MLS10],
                cipher_suites: vec![crypto.suite()],
                extensions: vec![],
                proposals: vec![],
                credentials: vec![CredentialType::BASIC],
            },
            leaf_node_source: LeafNodeSource::Update,
            extensions: vec![],
        },
        signature: VLBytes::new(vec![]),
    };
    let mut tbs = vec![];
    encode_leaf_node_tbs(&mut tbs, &node, GROUP, leaf).expect("tbs");
    let sig = crypto
        .sign_with_label(&keys.private_key, b"LeafNodeTBS", &tbs)
        .expect("sign");
    node.signature = VLBytes::new(sig);
    node
}

/// Merges a fake UpdatePath from `leaf` (RFC 9420 §7.5, §7.9): fresh parents on the filtered
/// direct path, parent hashes filled in from the root down. Leaf signatures are not redone.
fn commit_path(t: &mut RatchetTree, crypto: &SuiteCrypto<'_>, leaf: LeafIndex, fresh: &mut u32) {
    let fdp = t.filtered_direct_path(leaf).unwrap();
    t.blank_direct_path(leaf.node()).unwrap();
    for p in &fdp {
        *fresh += 1;
        let key = [fresh.to_be_bytes().as_slice(), &[0xaa; 28]].concat();
        let node = ParentNode {
            encryption_key: key.into(),
            parent_hash: VLBytes::new(vec![]),
            unmerged_leaves: vec![],
        };
        t.set_parent(*p, node).unwrap();
    }
    let mut below: Vec<NodeIndex> = vec![leaf.node()];
    below.extend(&fdp);
    for i in (0..fdp.len()).rev() {
        let (p, child) = (fdp[i], below[i]);
        let sibling = if child.0 < p.0 { p.right() } else { p.left() }.unwrap();
        let ph = VLBytes::new(t.parent_hash(crypto, p, sibling).unwrap());
        if i == 0 {
            let mut l = t.leaf(leaf).unwrap().clone();
            l.content.leaf_node_source = LeafNodeSource::Commit { parent_hash: ph };
            t.set_leaf(leaf, l).unwrap();
        } else {
            let mut q = t.parent(child).unwrap().clone();
            q.parent_hash = ph;
            t.set_parent(child, q).unwrap();
        }
    }
}

fn tree(c: &mut Criterion) {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, CipherSuite(1)).expect("suite 1");
    let mut t = RatchetTree::new(signed_leaf(&crypto, &provider, LeafIndex(0), 0));
    for n in 1..MEMBERS {
        let leaf = signed_leaf(&crypto, &provider, LeafIndex(n), n);
        t.add_leaf(leaf).expect("add");
    }
    t.verify_leaf_signatures(&crypto, GROUP).expect("valid");
    let mut group = c.benchmark_group("tree_1000");
    group.sample_size(10);
    group.bench_function("verify_leaf_signatures", |b| {
        b.iter(|| t.verify_leaf_signatures(&crypto, black_box(GROUP)).unwrap())
    });
    group.bench_function("verify_unique_keys", |b| {
        b.iter(|| t.verify_unique_keys().unwrap())
    });
    group.bench_function("root_hash_cold", |b| {
        b.iter(|| t.clone().root_hash(&crypto).unwrap())
    });
    let mut warm = t.clone();
    warm.root_hash(&crypto).unwrap();
    let update = signed_leaf(&crypto, &provider, LeafIndex(500), 5000);
    group.bench_function("root_hash_after_update", |b| {
        b.iter(|| {
            let mut w = warm.clone();
            w.set_leaf(LeafIndex(500), update.clone()).unwrap();
            w.root_hash(&crypto).unwrap()
        })
    });
    group.bench_function("clone_only", |b| b.iter(|| black_box(warm.clone())));
    // A tree with history: 100 committed paths, then 50 members removed and 50 added, which
    // leaves unmerged leaves under the parents the commits set.
    let mut fresh = 10_000;
    let mut history = warm.clone();
    for l in (0..MEMBERS).step_by(10) {
        commit_path(&mut history, &crypto, LeafIndex(l), &mut fresh);
    }
    for l in (3..MEMBERS).step_by(20) {
        history.remove_leaf(LeafIndex(l)).unwrap();
    }
    for l in (3..MEMBERS).step_by(20) {
        let leaf = signed_leaf(&crypto, &provider, LeafIndex(l), 20_000 + l);
        history.add_leaf(leaf).unwrap();
    }
    history
        .verify_parent_hashes(&crypto)
        .expect("parent-hash valid");
    let parents = (0..history.size().node_count())
        .filter(|i| history.parent(NodeIndex(*i)).is_some())
        .count();
    println!("history tree: {parents} non-blank parents");
    group.bench_function("verify_parent_hashes", |b| {
        b.iter(|| history.verify_parent_hashes(&crypto).unwrap())
    });
    group.bench_function("verify_parent_hashes_cold_cache", |b| {
        b.iter(|| history.clone().verify_parent_hashes(&crypto).unwrap())
    });
    group.finish();
}

criterion_group!(benches, tree);
criterion_main!(benches);
