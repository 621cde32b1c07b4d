//! HPKE and signatures of the RustCrypto provider, for every cipher suite, through the public
//! `CryptoProvider` API: round trips, tampering, malformed keys and signatures.

use conclave_mls::crypto::{
    CipherSuite, CryptoError, CryptoProvider, HpkePrivateKey, KemAlgorithm, RustCrypto,
    SignatureScheme,
};
use proptest::prelude::*;

fn provider() -> RustCrypto {
    RustCrypto::from_seed([7; 32])
}

/// Public keys of the wrong length made from a valid one: empty, one byte short, one byte long.
fn wrong_length_keys(pk: &[u8]) -> [(&'static str, Vec<u8>); 3] {
    let mut long = pk.to_vec();
    long.push(0);
    [
        ("empty", vec![]),
        ("truncated", pk[1..].to_vec()),
        ("extended", long),
    ]
}

/// Invalid encodings of a valid uncompressed NIST-curve point: off the curve (the last byte
/// of y changed), and its compressed form, which is not the MLS wire form.
fn invalid_ec_points(pk: &[u8]) -> [(&'static str, Vec<u8>); 2] {
    let mut off_curve = pk.to_vec();
    let last = off_curve.len() - 1;
    off_curve[last] ^= 1;
    let field = (pk.len() - 1) / 2;
    let mut compressed = vec![0x02 | (pk[2 * field] & 1)];
    compressed.extend_from_slice(&pk[1..=field]);
    [("off curve", off_curve), ("compressed", compressed)]
}

const INFO: &[u8] = b"MLS 1.0 test info";
const AAD: &[u8] = b"associated data";
const PATH_SECRET: [u8; 32] = [0x42; 32];

#[test]
fn every_suite_is_supported() {
    let p = provider();
    for suite in CipherSuite::ALL {
        assert!(p.supports(suite), "{suite:?}");
    }
}

#[test]
fn hpke_round_trip_every_suite() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let kp = p.hpke_generate_key_pair(suite).unwrap();
        let sealed = p
            .hpke_seal(suite, &kp.public_key, INFO, AAD, &PATH_SECRET)
            .unwrap();
        let opened = p
            .hpke_open(
                suite,
                &kp.private_key,
                &sealed.kem_output,
                INFO,
                AAD,
                &sealed.ciphertext,
            )
            .unwrap();
        assert_eq!(opened.as_bytes(), PATH_SECRET, "{suite:?}");
        // Tag appended: ciphertext = plaintext + 16.
        assert_eq!(sealed.ciphertext.len(), PATH_SECRET.len() + 16, "{suite:?}");
        let kem = suite.kem().unwrap();
        assert_eq!(kp.private_key.len(), kem.private_key_len(), "{suite:?}");
        let (pk_len, enc_len) = match kem {
            KemAlgorithm::DhKemX25519 => (32, 32),
            KemAlgorithm::DhKemX448 => (56, 56),
            KemAlgorithm::DhKemP256 => (65, 65),
            KemAlgorithm::DhKemP384 => (97, 97),
            KemAlgorithm::DhKemP521 => (133, 133),
            KemAlgorithm::XWing => (1216, 1120),
        };
        assert_eq!(kp.public_key.len(), pk_len, "{suite:?}");
        assert_eq!(sealed.kem_output.len(), enc_len, "{suite:?}");
        if matches!(
            kem,
            KemAlgorithm::DhKemP256 | KemAlgorithm::DhKemP384 | KemAlgorithm::DhKemP521
        ) {
            assert_eq!(kp.public_key[0], 0x04, "SEC1 uncompressed, {suite:?}");
        }
    }
}

/// Sealing to many under one info (the Welcome path) opens like single seals, item by item,
/// only under that info, and reports a bad key anywhere in the batch as an error.
#[test]
fn hpke_seal_to_many_every_suite() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let pairs: Vec<_> = (0..5)
            .map(|_| p.hpke_generate_key_pair(suite).unwrap())
            .collect();
        let plaintexts: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 32 + usize::from(i)]).collect();
        let items: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .zip(&plaintexts)
            .map(|(kp, pt)| (kp.public_key.as_slice(), pt.as_slice()))
            .collect();
        let sealed = p.hpke_seal_to_many(suite, INFO, AAD, &items).unwrap();
        assert_eq!(sealed.len(), items.len(), "{suite:?}");
        for ((kp, pt), s) in pairs.iter().zip(&plaintexts).zip(&sealed) {
            let open = |info: &[u8]| {
                p.hpke_open(
                    suite,
                    &kp.private_key,
                    &s.kem_output,
                    info,
                    AAD,
                    &s.ciphertext,
                )
            };
            assert_eq!(open(INFO).unwrap().as_bytes(), pt.as_slice(), "{suite:?}");
            assert_eq!(
                open(b"other info").unwrap_err(),
                CryptoError::HpkeOpen,
                "{suite:?}"
            );
        }
        // Fresh ephemeral keys per item.
        assert_ne!(sealed[0].kem_output, sealed[1].kem_output, "{suite:?}");

        let mut bad = items.clone();
        bad[3].0 = &[0xff; 3];
        assert_eq!(
            p.hpke_seal_to_many(suite, INFO, AAD, &bad).unwrap_err(),
            CryptoError::InvalidKey,
            "{suite:?}"
        );
        assert!(
            p.hpke_seal_to_many(suite, INFO, AAD, &[])
                .unwrap()
                .is_empty()
        );
    }
}

#[test]
fn hpke_open_fails_with_wrong_key_or_tampering() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let kp = p.hpke_generate_key_pair(suite).unwrap();
        let other = p.hpke_generate_key_pair(suite).unwrap();
        let sealed = p
            .hpke_seal(suite, &kp.public_key, INFO, AAD, &PATH_SECRET)
            .unwrap();
        let open = |sk: &HpkePrivateKey, enc: &[u8], info: &[u8], aad: &[u8], ct: &[u8]| {
            p.hpke_open(suite, sk, enc, info, aad, ct)
        };
        let (enc, ct) = (&sealed.kem_output[..], &sealed.ciphertext[..]);
        assert_eq!(
            open(&other.private_key, enc, INFO, AAD, ct).unwrap_err(),
            CryptoError::HpkeOpen,
            "wrong key, {suite:?}"
        );
        assert_eq!(
            open(&kp.private_key, enc, b"other info", AAD, ct).unwrap_err(),
            CryptoError::HpkeOpen,
            "{suite:?}"
        );
        assert_eq!(
            open(&kp.private_key, enc, INFO, b"other aad", ct).unwrap_err(),
            CryptoError::HpkeOpen,
            "{suite:?}"
        );
        let mut bad_ct = ct.to_vec();
        bad_ct[0] ^= 1;
        assert_eq!(
            open(&kp.private_key, enc, INFO, AAD, &bad_ct).unwrap_err(),
            CryptoError::HpkeOpen,
            "{suite:?}"
        );
        assert_eq!(
            open(&kp.private_key, enc, INFO, AAD, &ct[..ct.len() - 1]).unwrap_err(),
            CryptoError::HpkeOpen,
            "{suite:?}"
        );
        assert!(
            open(&kp.private_key, &enc[1..], INFO, AAD, ct).is_err(),
            "short enc, {suite:?}"
        );
        let mut bad_enc = enc.to_vec();
        let last = bad_enc.len() - 1;
        bad_enc[last] ^= 1;
        assert!(
            open(&kp.private_key, &bad_enc, INFO, AAD, ct).is_err(),
            "{suite:?}"
        );
        // A private key that is too long is refused as a key.
        let mut long = kp.private_key.as_bytes().to_vec();
        long.push(0);
        assert_eq!(
            open(&HpkePrivateKey::new(long), enc, INFO, AAD, ct).unwrap_err(),
            CryptoError::InvalidKey,
            "{suite:?}"
        );
        // A shorter one is refused too, or (NIST curves: a minimal big-endian scalar, padded)
        // is another key that cannot open the ciphertext.
        let short = HpkePrivateKey::from_slice(&kp.private_key.as_bytes()[1..]);
        assert!(open(&short, enc, INFO, AAD, ct).is_err(), "{suite:?}");
    }
}

#[test]
fn hpke_derive_key_pair_is_deterministic() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let a = p
            .hpke_derive_key_pair(suite, b"some input keying material")
            .unwrap();
        let b = RustCrypto::from_seed([9; 32])
            .hpke_derive_key_pair(suite, b"some input keying material")
            .unwrap();
        let c = p
            .hpke_derive_key_pair(suite, b"other input keying material")
            .unwrap();
        assert_eq!(a.private_key, b.private_key, "{suite:?}");
        assert_eq!(a.public_key, b.public_key, "{suite:?}");
        assert_ne!(a.public_key, c.public_key, "{suite:?}");
        assert_eq!(
            p.hpke_public_key(suite, &a.private_key).unwrap(),
            a.public_key,
            "{suite:?}"
        );
    }
}

/// RFC 9180 Appendix A.1.1 (DHKEM(X25519), base mode): DeriveKeyPair(ikmR) through the provider.
#[test]
fn hpke_derive_key_pair_known_answer() {
    let p = provider();
    let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
    let ikm =
        hex::decode("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037").unwrap();
    let kp = p.hpke_derive_key_pair(suite, &ikm).unwrap();
    assert_eq!(
        hex::encode(&kp.public_key),
        "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"
    );
}

#[test]
fn hpke_rejects_malformed_public_keys() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let kp = p.hpke_generate_key_pair(suite).unwrap();
        let seal = |pk: &[u8]| p.hpke_seal(suite, pk, INFO, AAD, &PATH_SECRET);
        for (what, bad) in wrong_length_keys(&kp.public_key) {
            let err = seal(&bad).unwrap_err();
            assert_eq!(err, CryptoError::InvalidKey, "{suite:?} {what}");
        }
        match suite.kem().unwrap() {
            KemAlgorithm::DhKemP256 | KemAlgorithm::DhKemP384 | KemAlgorithm::DhKemP521 => {
                for (what, bad) in invalid_ec_points(&kp.public_key) {
                    let err = seal(&bad).unwrap_err();
                    assert_eq!(err, CryptoError::InvalidKey, "{suite:?} {what}");
                }
            }
            KemAlgorithm::DhKemX448 => {
                // Low-order points (u = 0, u = 1) are rejected.
                let mut one = vec![0u8; 56];
                assert_eq!(seal(&one).unwrap_err(), CryptoError::InvalidKey);
                one[0] = 1;
                assert_eq!(seal(&one).unwrap_err(), CryptoError::InvalidKey);
            }
            KemAlgorithm::DhKemX25519 => {
                // Every 32-byte string decodes, but a low-order point gives an all-zero DH
                // output, which RFC 9180 §7.1.4 requires to be rejected.
                assert!(seal(&[0u8; 32]).is_err(), "{suite:?}");
            }
            KemAlgorithm::XWing => {}
        }
    }
}

#[test]
fn sign_verify_every_suite() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let kp = p.signature_generate_key_pair(suite).unwrap();
        assert_eq!(
            p.signature_public_key(suite, &kp.private_key).unwrap(),
            kp.public_key,
            "{suite:?}"
        );
        let (sk_len, pk_len) = match suite.signature().unwrap() {
            SignatureScheme::Ed25519 => (32, 32),
            SignatureScheme::Ed448 => (57, 57),
            SignatureScheme::EcdsaP256Sha256 => (32, 65),
            SignatureScheme::EcdsaP384Sha384 => (48, 97),
            SignatureScheme::EcdsaP521Sha512 => (66, 133),
        };
        assert_eq!(kp.private_key.len(), sk_len, "{suite:?}");
        assert_eq!(kp.public_key.len(), pk_len, "{suite:?}");

        let msg = b"a commit's FramedContentTBS";
        let sig = p.sign(suite, &kp.private_key, msg).unwrap();
        p.verify(suite, &kp.public_key, msg, &sig).unwrap();
        match suite.signature().unwrap() {
            SignatureScheme::Ed25519 => assert_eq!(sig.len(), 64),
            SignatureScheme::Ed448 => assert_eq!(sig.len(), 114),
            // DER: SEQUENCE { INTEGER r, INTEGER s }.
            _ => assert_eq!(sig[0], 0x30, "{suite:?}"),
        }

        // Tampered message.
        assert_eq!(
            p.verify(suite, &kp.public_key, b"another message", &sig)
                .unwrap_err(),
            CryptoError::InvalidSignature,
            "{suite:?}"
        );
        // Tampered signature: every byte position must matter.
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                p.verify(suite, &kp.public_key, msg, &bad).unwrap_err(),
                CryptoError::InvalidSignature,
                "{suite:?} byte {i}"
            );
        }
        // Truncated, extended, empty signatures.
        for bad in [
            &sig[..sig.len() - 1],
            &[][..],
            &[sig.clone(), vec![0]].concat()[..],
        ] {
            assert_eq!(
                p.verify(suite, &kp.public_key, msg, bad).unwrap_err(),
                CryptoError::InvalidSignature,
                "{suite:?}"
            );
        }
        // Another key.
        let other = p.signature_generate_key_pair(suite).unwrap();
        assert_eq!(
            p.verify(suite, &other.public_key, msg, &sig).unwrap_err(),
            CryptoError::InvalidSignature,
            "{suite:?}"
        );
    }
}

#[test]
fn verify_rejects_malformed_public_keys() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let kp = p.signature_generate_key_pair(suite).unwrap();
        let msg = b"message";
        let sig = p.sign(suite, &kp.private_key, msg).unwrap();
        let verify = |pk: &[u8]| p.verify(suite, pk, msg, &sig);
        for (what, bad) in wrong_length_keys(&kp.public_key) {
            let err = verify(&bad).unwrap_err();
            assert_eq!(err, CryptoError::InvalidKey, "{suite:?} {what}");
        }
        match suite.signature().unwrap() {
            SignatureScheme::Ed25519 | SignatureScheme::Ed448 => {
                // y = 2 is not on either curve (x^2 would have to be a non-square).
                let mut y2 = vec![0u8; kp.public_key.len()];
                y2[0] = 2;
                assert_eq!(
                    verify(&y2).unwrap_err(),
                    CryptoError::InvalidKey,
                    "{suite:?}"
                );
            }
            _ => {
                for (what, bad) in invalid_ec_points(&kp.public_key) {
                    let err = verify(&bad).unwrap_err();
                    assert_eq!(err, CryptoError::InvalidKey, "{suite:?} {what}");
                }
                // The point at infinity.
                assert_eq!(verify(&[0u8]).unwrap_err(), CryptoError::InvalidKey);
            }
        }
    }
}

/// Ed25519 strict verification rejects the identity (a small-order point) as a public key,
/// which lenient verifiers accept with the signature (R = identity, s = 0) on any message.
#[test]
fn ed25519_strict_rejects_small_order_key() {
    let p = provider();
    let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sig = [0u8; 64];
    sig[0] = 1;
    assert!(p.verify(suite, &identity, b"anything", &sig).is_err());
}

#[test]
fn private_keys_of_the_wrong_length_are_rejected() {
    let p = provider();
    for suite in CipherSuite::ALL {
        let kp = p.signature_generate_key_pair(suite).unwrap();
        let bytes = kp.private_key.as_bytes();
        let mut long = bytes.to_vec();
        long.insert(0, 0);
        let long = conclave_mls::crypto::SignaturePrivateKey::new(long);
        let short = conclave_mls::crypto::SignaturePrivateKey::from_slice(&bytes[1..]);
        let ecdsa = !matches!(
            suite.signature(),
            Some(SignatureScheme::Ed25519 | SignatureScheme::Ed448)
        );
        for (what, key) in [("long", &long), ("short", &short)] {
            if ecdsa && what == "short" {
                // A minimal big-endian scalar is the same key, left-padded: accepted, and
                // it only matches the generated key when the dropped byte was zero.
                let public = p.signature_public_key(suite, key).unwrap();
                assert_eq!(public == kp.public_key, bytes[0] == 0, "{suite:?}");
                continue;
            }
            assert_eq!(
                p.sign(suite, key, b"m").unwrap_err(),
                CryptoError::InvalidKey,
                "{what} {suite:?}"
            );
            assert_eq!(
                p.signature_public_key(suite, key).unwrap_err(),
                CryptoError::InvalidKey,
                "{what} {suite:?}"
            );
        }
        if ecdsa {
            let mut stripped = vec![0u8];
            stripped.extend_from_slice(&bytes[1..]);
            let padded = conclave_mls::crypto::SignaturePrivateKey::new(stripped);
            let minimal = conclave_mls::crypto::SignaturePrivateKey::from_slice(&bytes[1..]);
            assert_eq!(
                p.signature_public_key(suite, &padded).unwrap(),
                p.signature_public_key(suite, &minimal).unwrap(),
                "{suite:?}: minimal and padded scalars are the same key"
            );
        }
    }
    // An ECDSA scalar of zero is not a key.
    let zero = conclave_mls::crypto::SignaturePrivateKey::from_slice(&[0u8; 32]);
    assert_eq!(
        p.signature_public_key(CipherSuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256, &zero)
            .unwrap_err(),
        CryptoError::InvalidKey
    );
}

#[test]
fn unknown_suite_is_unsupported() {
    let p = provider();
    let suite = CipherSuite(0x0a0a);
    assert_eq!(
        p.hpke_generate_key_pair(suite).unwrap_err(),
        CryptoError::UnsupportedCipherSuite(0x0a0a)
    );
    assert_eq!(
        p.signature_generate_key_pair(suite).unwrap_err(),
        CryptoError::UnsupportedCipherSuite(0x0a0a)
    );
    assert_eq!(
        p.verify(suite, &[], &[], &[]).unwrap_err(),
        CryptoError::UnsupportedCipherSuite(0x0a0a)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary keys and signatures never panic and never verify.
    #[test]
    fn verify_never_panics(
        suite_index in 0usize..CipherSuite::ALL.len(),
        pk in proptest::collection::vec(any::<u8>(), 0..140),
        sig in proptest::collection::vec(any::<u8>(), 0..140),
    ) {
        let suite = CipherSuite::ALL[suite_index];
        prop_assert!(provider().verify(suite, &pk, b"msg", &sig).is_err());
    }

    /// Arbitrary encapsulations, keys and ciphertexts never panic and never open.
    #[test]
    fn hpke_open_never_panics(
        suite_index in 0usize..CipherSuite::ALL.len(),
        sk in proptest::collection::vec(any::<u8>(), 0..70),
        enc in proptest::collection::vec(any::<u8>(), 0..140),
        ct in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let suite = CipherSuite::ALL[suite_index];
        let sk = HpkePrivateKey::new(sk);
        prop_assert!(provider().hpke_open(suite, &sk, &enc, b"", b"", &ct).is_err());
        let _ = provider().hpke_seal(suite, &enc, b"", b"", &ct);
    }
}

/// `SignWithLabel`/`VerifyWithLabel` of a structure encoded in place (RFC 9420 §5.1.2) are
/// those of its encoding: for every suite, a signature made either way verifies either way,
/// and one over a different structure does not.
#[test]
fn labeled_signatures_of_structures_match_their_encodings() {
    use conclave_mls::codec::{Encode, VarBytes};
    use conclave_mls::crypto::SuiteCrypto;
    let provider = provider();
    let content = VarBytes::new((0..=255u8).cycle().take(70_000).collect());
    let other = VarBytes::new(vec![1, 2, 3]);
    for suite in CipherSuite::ALL {
        let crypto = SuiteCrypto::new(&provider, suite).unwrap();
        let pair = provider.signature_generate_key_pair(suite).unwrap();
        let encoded = content.encode().unwrap();
        let by_encoding = crypto
            .sign_with_label(&pair.private_key, b"Label", &encoded)
            .unwrap();
        let in_place = crypto
            .sign_with_label_of(&pair.private_key, b"Label", &content)
            .unwrap();
        for signature in [&by_encoding, &in_place] {
            crypto
                .verify_with_label(&pair.public_key, b"Label", &encoded, signature)
                .unwrap();
            crypto
                .verify_with_label_of(&pair.public_key, b"Label", &content, signature)
                .unwrap();
            assert_eq!(
                crypto.verify_with_label_of(&pair.public_key, b"Label", &other, signature),
                Err(CryptoError::InvalidSignature)
            );
            assert_eq!(
                crypto.verify_with_label_of(&pair.public_key, b"Other", &content, signature),
                Err(CryptoError::InvalidSignature)
            );
        }
    }
}
