//! The labelled operations of RFC 9420 §5, per cipher suite.

use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, SuiteCrypto};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn labeled(c: &mut Criterion) {
    let provider = RustCrypto::default();
    let suites = [
        CipherSuite(1),
        CipherSuite(2),
        CipherSuite(3),
        CipherSuite::MLS_XWING,
    ];
    let mut group = c.benchmark_group("labeled");
    for suite in suites {
        let crypto = SuiteCrypto::new(&provider, suite).expect("suite supported");
        let name = format!("{:#06x}", suite.0);
        let secret = vec![0x42u8; crypto.hash_len()];
        group.bench_with_input(
            BenchmarkId::new("expand_with_label", &name),
            &crypto,
            |b, c| {
                b.iter(|| {
                    c.expand_with_label(black_box(&secret), b"joiner", b"context", 32)
                        .unwrap()
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("derive_secret", &name), &crypto, |b, c| {
            b.iter(|| c.derive_secret(black_box(&secret), b"epoch").unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("derive_tree_secret", &name),
            &crypto,
            |b, c| {
                b.iter(|| {
                    c.derive_tree_secret(black_box(&secret), b"key", 7, 16)
                        .unwrap()
                })
            },
        );
        let value = vec![0x17u8; 300];
        group.bench_with_input(BenchmarkId::new("ref_hash", &name), &crypto, |b, c| {
            b.iter(|| {
                c.ref_hash(b"MLS 1.0 KeyPackage Reference", black_box(&value))
                    .unwrap()
            })
        });
        let keys = provider
            .signature_generate_key_pair(suite)
            .expect("signature key");
        let content = vec![0x33u8; 256];
        let signature = crypto
            .sign_with_label(&keys.private_key, b"LeafNodeTBS", &content)
            .unwrap();
        group.bench_with_input(
            BenchmarkId::new("sign_with_label", &name),
            &crypto,
            |b, c| {
                b.iter(|| {
                    c.sign_with_label(&keys.private_key, b"LeafNodeTBS", black_box(&content))
                        .unwrap()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("verify_with_label", &name),
            &crypto,
            |b, c| {
                b.iter(|| {
                    c.verify_with_label(
                        &keys.public_key,
                        b"LeafNodeTBS",
                        black_box(&content),
                        &signature,
                    )
                    .unwrap()
                })
            },
        );
        let hpke = provider.hpke_generate_key_pair(suite).expect("hpke key");
        let path_secret = vec![0x55u8; crypto.hash_len()];
        let sealed = crypto
            .encrypt_with_label(&hpke.public_key, b"UpdatePathNode", b"ctx", &path_secret)
            .unwrap();
        group.bench_with_input(
            BenchmarkId::new("encrypt_with_label", &name),
            &crypto,
            |b, c| {
                b.iter(|| {
                    c.encrypt_with_label(
                        &hpke.public_key,
                        b"UpdatePathNode",
                        b"ctx",
                        black_box(&path_secret),
                    )
                    .unwrap()
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("decrypt_with_label", &name),
            &crypto,
            |b, c| {
                b.iter(|| {
                    c.decrypt_with_label(
                        &hpke.private_key,
                        b"UpdatePathNode",
                        b"ctx",
                        &sealed.kem_output,
                        black_box(&sealed.ciphertext),
                    )
                    .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, labeled);
criterion_main!(benches);
