//! TreeKEM costs at 1,000, 10,000 and 50,000 members (RFC 9420 §7.5–7.6, §12.4.2), for the
//! `adds_only` and `populated` shapes of `common/fixture.rs`: creating an UpdatePath (new
//! path keys, parent hashes, signed leaf, HPKE encryption to every copath resolution node)
//! and processing one (merge, parent-hash check, tree hash, one decryption, the rest of the
//! path derived and checked).
//!
//! The sender is leaf 0 and the receiver leaf 1, its sibling, whose leaf is re-keyed with a
//! real HPKE key pair (the fixture's leaf keys are placeholders). Before the criterion runs,
//! the bare cost of the sender's HPKE encryptions (their count × one EncryptWithLabel) is
//! printed: in an adds-only tree that count is n − 1, and it bounds creation from below.

#[path = "common/fixture.rs"]
mod fixture;

use conclave_mls::crypto::{CryptoProvider, RustCrypto, SuiteCrypto};
use conclave_mls::internal::tree::treekem::{TreeKemPrivate, merge_update_path, prepare_path};
use conclave_mls::internal::tree::{LeafIndex, RatchetTree};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fixture::{GROUP, SUITE};
use std::time::{Duration, Instant};

const SIZES: [u32; 3] = [1_000, 10_000, 50_000];

fn context(tree: &mut RatchetTree, crypto: &SuiteCrypto<'_>) -> Vec<u8> {
    let mut ctx = b"provisional group context ".to_vec();
    ctx.extend_from_slice(&tree.root_hash(crypto).expect("hash"));
    ctx
}

fn treekem(c: &mut Criterion) {
    let provider = RustCrypto::default();
    let crypto = SuiteCrypto::new(&provider, SUITE).expect("suite 1");
    for n in SIZES {
        let mut group = c.benchmark_group(format!("treekem_{n}"));
        group.sample_size(10);
        if n >= 10_000 {
            group.warm_up_time(Duration::from_secs(1));
            group.measurement_time(Duration::from_secs(if n >= 50_000 { 20 } else { 8 }));
        }
        for (shape, mut fx) in [
            ("adds_only", fixture::adds_only(&crypto, n)),
            ("populated", fixture::populated(&crypto, n)),
        ] {
            // The receiver's leaf gets a real key pair.
            let receiver_keys = provider.hpke_generate_key_pair(SUITE).expect("keys");
            let mut receiver_leaf = fx.tree.leaf(LeafIndex(1)).expect("leaf 1").clone();
            receiver_leaf.content.encryption_key = receiver_keys.public_key.clone().into();
            fixture::sign_leaf(&crypto, &fx.keys[1], &mut receiver_leaf, LeafIndex(1));
            fx.tree.set_leaf(LeafIndex(1), receiver_leaf).expect("set");
            fx.tree.root_hash(&crypto).expect("warm cache");
            let sender_content = fx.tree.leaf(LeafIndex(0)).expect("leaf 0").content.clone();
            let sender_private = || {
                TreeKemPrivate::new(
                    LeafIndex(0),
                    provider.hpke_generate_key_pair(SUITE).unwrap().private_key,
                )
            };

            // One UpdatePath to process, and the count of encryptions it took.
            let mut sender_tree = fx.tree.clone();
            let mut private = sender_private();
            let prepared = prepare_path(
                &crypto,
                &mut sender_tree,
                &mut private,
                sender_content.clone(),
                &fx.keys[0],
                GROUP,
            )
            .unwrap();
            let ctx = context(&mut sender_tree, &crypto);
            let path = prepared.encrypt(&crypto, &sender_tree, &ctx, &[]).unwrap();
            let seals: usize = path
                .nodes
                .iter()
                .map(|n| n.encrypted_path_secret.len())
                .sum();
            let t = Instant::now();
            let reps = 50;
            for _ in 0..reps {
                crypto
                    .encrypt_with_label(
                        &receiver_keys.public_key,
                        b"UpdatePathNode",
                        &ctx,
                        &[0u8; 32],
                    )
                    .unwrap();
            }
            let one = t.elapsed() / reps;
            eprintln!(
                "treekem n={n} {shape}: {} path nodes, {seals} HPKE encryptions; bare cost {seals} x {one:?} = {:?}",
                path.nodes.len(),
                one * seals as u32
            );

            group.bench_function(format!("update_path_create/{shape}"), |b| {
                b.iter_batched(
                    || (fx.tree.clone(), sender_private()),
                    |(mut tree, mut private)| {
                        let prepared = prepare_path(
                            &crypto,
                            &mut tree,
                            &mut private,
                            sender_content.clone(),
                            &fx.keys[0],
                            GROUP,
                        )
                        .unwrap();
                        let ctx = context(&mut tree, &crypto);
                        let path = prepared.encrypt(&crypto, &tree, &ctx, &[]).unwrap();
                        // Returned, so that dropping the tree is not timed.
                        (tree, path)
                    },
                    BatchSize::LargeInput,
                )
            });
            group.bench_function(format!("update_path_process/{shape}"), |b| {
                b.iter_batched(
                    || {
                        (
                            fx.tree.clone(),
                            TreeKemPrivate::new(LeafIndex(1), receiver_keys.private_key.clone()),
                        )
                    },
                    |(mut tree, mut private)| {
                        let merged =
                            merge_update_path(&crypto, &mut tree, LeafIndex(0), &path).unwrap();
                        let ctx = context(&mut tree, &crypto);
                        merged
                            .decrypt(&crypto, &tree, &mut private, &ctx, &[])
                            .unwrap()
                    },
                    BatchSize::LargeInput,
                )
            });
        }
        group.finish();
    }
}

criterion_group!(benches, treekem);
criterion_main!(benches);
