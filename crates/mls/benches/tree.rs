//! Ratchet-tree costs at 1,000, 10,000 and 50,000 members (RFC 9420 §7.8, §7.9.2, §12.4.3.1)
//! for two shapes — `adds_only` (all parents blank) and `populated` (every parent set and
//! parent-hash valid): the full joiner validation (`validate_for_join`, cold hash cache) and
//! the tree-hash update after one committed path. Before the criterion runs, the bare cost
//! of n Ed25519 verifications (one by one, batched, on all cores) is printed, so the share
//! of validation that is signature checking is visible.

#[path = "common/fixture.rs"]
mod fixture;

use conclave_mls::codec::VarBytes;
use conclave_mls::crypto::RustCrypto;
use conclave_mls::crypto::{SignatureItem, SuiteCrypto};
use conclave_mls::internal::tree::{LeafIndex, RatchetTree};
use conclave_mls::messages::ParentNode;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fixture::{GROUP, SUITE};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SIZES: [u32; 3] = [1_000, 10_000, 50_000];
const LABEL: &[u8] = b"LeafNodeTBS";

/// `(public key, LeafNodeTBS, signature)` of every leaf.
fn signed_items(t: &RatchetTree) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    t.leaves()
        .map(|(leaf, node)| {
            let mut tbs = vec![];
            conclave_mls::internal::tree::validate::encode_leaf_node_tbs(
                &mut tbs, node, GROUP, leaf,
            )
            .unwrap();
            (
                node.content.signature_key.as_slice().to_vec(),
                tbs,
                node.signature.as_slice().to_vec(),
            )
        })
        .collect()
}

/// Prints the wall time of n verifications: one by one, one batch call per 256, and one by
/// one split over all cores.
fn bare_signature_cost(crypto: &SuiteCrypto<'_>, t: &RatchetTree) {
    let owned = signed_items(t);
    let items: Vec<SignatureItem<'_>> = owned
        .iter()
        .map(|(k, m, s)| (k.as_slice(), m.as_slice(), s.as_slice()))
        .collect();
    let n = items.len();
    let one = |(k, m, s): &SignatureItem<'_>| crypto.verify_with_label(k, LABEL, m, s).unwrap();
    let start = Instant::now();
    items.iter().for_each(one);
    let sequential = start.elapsed();
    let start = Instant::now();
    for chunk in items.chunks(256) {
        crypto.verify_batch_with_label(LABEL, chunk).unwrap();
    }
    let batch = start.elapsed();
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let start = Instant::now();
    std::thread::scope(|s| {
        for part in items.chunks(n.div_ceil(threads)) {
            s.spawn(move || part.iter().for_each(one));
        }
    });
    let parallel = start.elapsed();
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "bare Ed25519, n = {n}: one-by-one {sequential:.2?} ({:.1} µs/sig), batch {batch:.2?} \
         ({:.1} µs/sig), parallel x{threads} {parallel:.2?} ({:.1} µs/sig)",
        per(sequential),
        per(batch),
        per(parallel)
    );
}

/// Prints the time of each step of `validate_for_join` on a cold copy of `t`, once.
fn breakdown(crypto: &SuiteCrypto<'_>, shape: &str, t: &RatchetTree) {
    let mut t = RatchetTree::from_wire(t.to_wire()).unwrap();
    let mut steps = vec![];
    let mut step = |name: &'static str, f: &mut dyn FnMut(&mut RatchetTree)| {
        let start = Instant::now();
        f(&mut t);
        steps.push(format!("{name} {:.2?}", start.elapsed()));
    };
    step("unmerged", &mut |t| t.verify_unmerged_leaves().unwrap());
    step("unique_keys", &mut |t| t.verify_unique_keys().unwrap());
    step("leaf_contents", &mut |t| {
        t.verify_leaf_contents(None, None).unwrap()
    });
    step("root_hash", &mut |t| {
        t.root_hash(crypto).unwrap();
    });
    step("parent_hashes", &mut |t| {
        t.verify_parent_hashes(crypto).unwrap()
    });
    step("signatures", &mut |t| {
        t.verify_leaf_signatures(crypto, GROUP).unwrap()
    });
    step("drop", &mut |t| {
        drop(std::mem::replace(
            t,
            RatchetTree::from_wire(t.to_wire()).unwrap(),
        ))
    });
    println!("validate_for_join steps, {shape}: {}", steps.join(", "));
}

/// Replaces the leaf in the middle and every parent on its direct path, as a Commit does
/// (RFC 9420 §7.5), alternating between two versions so the cache is always invalidated.
fn commit_path(
    t: &mut RatchetTree,
    leaf: LeafIndex,
    versions: &[conclave_mls::messages::LeafNode; 2],
    round: usize,
) {
    t.set_leaf(leaf, versions[round % 2].clone()).unwrap();
    for (i, p) in t.size().direct_path(leaf.node()).into_iter().enumerate() {
        let mut key = vec![0xcc; 32];
        key[..8].copy_from_slice(&((round % 2) as u32).to_be_bytes().repeat(2));
        key[8..12].copy_from_slice(&(i as u32).to_be_bytes());
        let node = ParentNode {
            encryption_key: key.into(),
            parent_hash: VarBytes::new(vec![0x11; 32]),
            unmerged_leaves: vec![],
        };
        t.set_parent(p, node).unwrap();
    }
}

fn tree(c: &mut Criterion) {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).expect("suite 1");
    for n in SIZES {
        let shapes = [
            ("adds_only", fixture::adds_only(&crypto, n)),
            ("populated", fixture::populated(&crypto, n)),
        ];
        bare_signature_cost(&crypto, &shapes[0].1.tree);
        let mut group = c.benchmark_group(format!("tree_{n}"));
        group.sample_size(10);
        if n >= 10_000 {
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(if n >= 50_000 { 15 } else { 5 }));
        }
        for (shape, fx) in &shapes {
            breakdown(&crypto, shape, &fx.tree);
            // A joiner's tree arrives without cached hashes.
            let cold = RatchetTree::from_wire(fx.tree.to_wire()).unwrap();
            let expected = fx.tree.clone().root_hash(&crypto).unwrap();
            cold.clone()
                .validate_for_join(&crypto, GROUP, &expected, None, None)
                .expect("valid");
            group.bench_function(format!("validate_for_join/{shape}"), |b| {
                b.iter_batched(
                    || cold.clone(),
                    |mut t| {
                        t.validate_for_join(&crypto, black_box(GROUP), &expected, None, None)
                            .unwrap()
                    },
                    BatchSize::LargeInput,
                )
            });
            let mut warm = fx.tree.clone();
            warm.root_hash(&crypto).unwrap();
            let leaf = LeafIndex(n / 2);
            let mut versions = [
                warm.leaf(leaf).unwrap().clone(),
                warm.leaf(leaf).unwrap().clone(),
            ];
            versions[1].content.encryption_key = vec![0x77; 32].into();
            fixture::sign_leaf(&crypto, &fx.keys[leaf.0 as usize], &mut versions[1], leaf);
            let mut round = 0usize;
            group.bench_function(format!("tree_hash_after_commit_path/{shape}"), |b| {
                b.iter(|| {
                    round += 1;
                    commit_path(&mut warm, leaf, &versions, round);
                    warm.root_hash(&crypto).unwrap()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, tree);
criterion_main!(benches);
