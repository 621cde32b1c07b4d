//! HPKE seal/open of a 32-byte path secret (suites 1, 2, 3 and X-Wing), a Welcome's seals
//! to 100 joiners under one 2.5 MB info (the encrypted GroupInfo of a 10,000-member group)
//! one by one and with `hpke_seal_to_many`, and Ed25519/P-256 signing and verification,
//! through the RustCrypto provider.

#![allow(missing_docs)]

use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const INFO: &[u8] = b"MLS 1.0 UpdatePathNode";
const PATH_SECRET: [u8; 32] = [0x5a; 32];

fn hpke(c: &mut Criterion) {
    let provider = RustCrypto::from_seed([1; 32]);
    let suites = [
        ("suite1_x25519_aes128", CipherSuite(1)),
        ("suite2_p256_aes128", CipherSuite(2)),
        ("suite3_x25519_chacha", CipherSuite(3)),
        ("xwing", CipherSuite::MLS_XWING),
    ];
    let mut group = c.benchmark_group("hpke");
    for (name, suite) in suites {
        let Ok(kp) = provider.hpke_generate_key_pair(suite) else {
            continue;
        };
        group.bench_function(format!("seal/{name}"), |b| {
            b.iter(|| {
                provider.hpke_seal(
                    suite,
                    black_box(&kp.public_key),
                    INFO,
                    b"",
                    black_box(&PATH_SECRET),
                )
            })
        });
        let Ok(sealed) = provider.hpke_seal(suite, &kp.public_key, INFO, b"", &PATH_SECRET) else {
            continue;
        };
        group.bench_function(format!("open/{name}"), |b| {
            b.iter(|| {
                provider.hpke_open(
                    suite,
                    &kp.private_key,
                    black_box(&sealed.kem_output),
                    INFO,
                    b"",
                    black_box(&sealed.ciphertext),
                )
            })
        });
    }
    group.finish();
}

/// The Welcome's seals: every joiner's group secrets under the same large info, once with
/// one `hpke_seal` each on one core (the info hashed per joiner), and once with
/// `hpke_seal_to_many` (the info hashed once; the seals on all cores with `parallel`).
fn welcome_seals(c: &mut Criterion) {
    let provider = RustCrypto::from_seed([3; 32]);
    let suite = CipherSuite(1);
    let info = vec![0x33u8; 2_500_000];
    let keys: Vec<Vec<u8>> = (0..100)
        .filter_map(|_| provider.hpke_generate_key_pair(suite).ok())
        .map(|kp| kp.public_key)
        .collect();
    let items: Vec<(&[u8], &[u8])> = keys
        .iter()
        .map(|k| (k.as_slice(), PATH_SECRET.as_slice()))
        .collect();
    let mut group = c.benchmark_group("welcome_seals");
    group.sample_size(10);
    group.bench_function("100_joiners_2.5MB_info/one_by_one", |b| {
        b.iter(|| {
            items
                .iter()
                .map(|(key, pt)| provider.hpke_seal(suite, key, black_box(&info), b"", pt))
                .collect::<Result<Vec<_>, _>>()
        })
    });
    group.bench_function("100_joiners_2.5MB_info/to_many", |b| {
        b.iter(|| provider.hpke_seal_to_many(suite, black_box(&info), b"", &items))
    });
    group.finish();
}

fn signatures(c: &mut Criterion) {
    let provider = RustCrypto::from_seed([2; 32]);
    let message = [0x17u8; 256];
    let mut group = c.benchmark_group("signature");
    for (name, suite) in [("ed25519", CipherSuite(1)), ("p256", CipherSuite(2))] {
        let Ok(kp) = provider.signature_generate_key_pair(suite) else {
            continue;
        };
        group.bench_function(format!("sign/{name}"), |b| {
            b.iter(|| provider.sign(suite, &kp.private_key, black_box(&message)))
        });
        let Ok(signature) = provider.sign(suite, &kp.private_key, &message) else {
            continue;
        };
        group.bench_function(format!("verify/{name}"), |b| {
            b.iter(|| provider.verify(suite, &kp.public_key, black_box(&message), &signature))
        });
    }
    group.finish();
}

criterion_group!(benches, hpke, welcome_seals, signatures);
criterion_main!(benches);
