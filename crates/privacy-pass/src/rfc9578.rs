//! The test vectors of RFC 9578 Appendix A.2 (Issuance Protocol 2, Blind RSA 2048), read
//! from the RFC's text in `../shared/specs` (or `$CONCLAVE_SPECS`): the issuer key encodes
//! to the vectors' `pkS`, the client's request from the given nonce, blind and salt is the
//! vectors' `token_request`, the issuer's answer is `token_response`, and the finished token
//! is `token` and verifies.

use crate::token::{PendingToken, encode_request, token_input};
use crate::{IssuerKey, IssuerPublicKey, Token, TokenChallenge, blind_rsa};
use base64::Engine as _;
use crypto_bigint::BoxedUint;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;

fn spec() -> String {
    let dir = std::env::var_os("CONCLAVE_SPECS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs"),
        PathBuf::from,
    );
    let path = dir.join("privacypass-issuance-rfc9578.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the RFC 9578 text; set CONCLAVE_SPECS to the specs directory)",
            path.display()
        )
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// The vectors of the Blind RSA section: one map of name to bytes per vector.
fn vectors() -> Vec<HashMap<String, Vec<u8>>> {
    let text = spec();
    let start = text
        .find("## Issuance Protocol 2 - Blind RSA, 2048")
        .expect("the Blind RSA vectors");
    let mut out = Vec::new();
    let mut current: Option<HashMap<String, String>> = None;
    let mut key = String::new();
    let finish = |v: HashMap<String, String>, out: &mut Vec<HashMap<String, Vec<u8>>>| {
        out.push(v.into_iter().map(|(k, v)| (k, hex(&v))).collect());
    };
    for line in text[start..].lines() {
        let line = line.trim();
        if line.starts_with("// Test vector") {
            if let Some(v) = current.take() {
                finish(v, &mut out);
            }
            current = Some(HashMap::new());
            continue;
        }
        let Some(v) = current.as_mut() else { continue };
        if line.starts_with("~~~") {
            finish(current.take().expect("vector"), &mut out);
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.contains(' ') => {
                key = name.to_owned();
                v.insert(key.clone(), value.trim().to_owned());
            }
            _ if !line.is_empty() => v.get_mut(&key).expect("a field").push_str(line),
            _ => {}
        }
    }
    if let Some(v) = current {
        finish(v, &mut out);
    }
    out
}

fn pkcs8_from_pem(pem: &[u8]) -> Vec<u8> {
    let text = std::str::from_utf8(pem).expect("PEM text");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64")
}

#[test]
fn rfc_9578_blind_rsa_vectors() {
    let vectors = vectors();
    assert!(vectors.len() >= 2, "found {} vectors", vectors.len());
    for (i, v) in vectors.iter().enumerate() {
        let issuer = IssuerKey::from_pkcs8_der(&pkcs8_from_pem(&v["skS"])).expect("skS");
        assert_eq!(
            issuer.public_key().spki(),
            v["pkS"].as_slice(),
            "vector {i}: pkS"
        );
        let key = IssuerPublicKey::from_spki(&v["pkS"]).expect("pkS");
        let challenge = TokenChallenge::decode(&v["token_challenge"]).expect("challenge");
        assert_eq!(challenge.encode(), v["token_challenge"], "vector {i}");
        let nonce: [u8; 32] = v["nonce"].as_slice().try_into().expect("nonce");
        let salt: [u8; 48] = v["salt"].as_slice().try_into().expect("salt");
        // The vectors' blind is r of RFC 9474 §4.2 (or, in some renderings, its inverse):
        // the request must come out of one of them.
        let digest: [u8; 32] = Sha256::digest(&v["token_challenge"]).into();
        let input = token_input(&nonce, &digest, &key.token_key_id());
        let n = key.rsa().n();
        let blind =
            BoxedUint::from_be_slice(&v["blind"], key.rsa().n_bits_precision()).expect("blind");
        let inverse = Option::<BoxedUint>::from(blind.invert_mod(n)).expect("invertible");
        let (request, pending) = [blind, inverse]
            .iter()
            .find_map(|r| {
                let (blinded, inv) = blind_rsa::blind_with(key.rsa(), &input, &salt, r)
                    .expect("blind")
                    .expect("invertible");
                let request = encode_request(&key, &blinded);
                (request == v["token_request"]).then(|| {
                    (
                        request,
                        PendingToken {
                            nonce,
                            challenge_digest: digest,
                            inverse: inv,
                        },
                    )
                })
            })
            .unwrap_or_else(|| panic!("vector {i}: no blinding gives token_request"));
        assert_eq!(request, v["token_request"], "vector {i}: token_request");
        let response = issuer.issue(&request).expect("issue");
        assert_eq!(response, v["token_response"], "vector {i}: token_response");
        let token = pending.finish(&key, &response).expect("finish");
        assert_eq!(token.encode(), v["token"], "vector {i}: token");
        key.verify(&Token::decode(&v["token"]).expect("token"))
            .expect("the vector's token verifies");
    }
}
