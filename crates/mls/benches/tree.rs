//! Ratchet tree costs at 1,000 members (RFC 9420 §7.3, §7.8, §7.9.2): leaf signature
//! verification, a cold root tree hash, the re-hash after one Update, and parent-hash checks.

use conclave_mls::codec::VLBytes;
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, SuiteCrypto};
use conclave_mls::messages::{
    Capabilities, Credential, CredentialType, LeafNode, LeafNodeContent, LeafNodeSource,
    ProtocolVersion,
};
use conclave_mls::tree::validate::encode_leaf_node_tbs;
use conclave_mls::tree::{LeafIndex, RatchetTree};
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
    group.bench_function("verify_parent_hashes", |b| {
        b.iter(|| warm.verify_parent_hashes(&crypto).unwrap())
    });
    group.finish();
}

criterion_group!(benches, tree);
criterion_main!(benches);
