//! X.509 credentials (RFC 9420 §5.3): chains issued at test time with rcgen, signed by the
//! library's own MLS signature keys, validated by `X509Validator`.

use crate::common;

use common::{join_request, key_package, welcome_of};
use conclave_mls::Error;
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, SignaturePrivateKey};
use conclave_mls::group::{GroupConfig, Received};
use conclave_mls::identity::x509::{ClientIdentity, X509Validator};
use conclave_mls::identity::{Identity, IdentityValidator};
use conclave_mls::messages::{Certificate, Credential};
use conclave_mls::time::{FixedClock, TimePolicy};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyUsagePurpose, SanType,
    date_time_ymd,
};
use std::sync::Arc;

const ED25519: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
const P256: CipherSuite = CipherSuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
const P384: CipherSuite = CipherSuite::MLS_256_DHKEMP384_AES256GCM_SHA384_P384;

/// 2026-09-20, inside the test certificates' validity.
const NOW: u64 = 1_790_000_000;

/// An MLS signature key pair that rcgen can sign with.
struct MlsKey {
    suite: CipherSuite,
    public: Vec<u8>,
    private: SignaturePrivateKey,
}

impl MlsKey {
    fn generate(suite: CipherSuite) -> Self {
        let keys = RustCrypto::default()
            .signature_generate_key_pair(suite)
            .unwrap();
        Self {
            suite,
            public: keys.public_key,
            private: keys.private_key,
        }
    }
}

impl rcgen::PublicKeyData for MlsKey {
    // The MLS forms are the SubjectPublicKeyInfo key bytes: raw Ed25519, uncompressed SEC1.
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        if self.suite == ED25519 {
            &rcgen::PKCS_ED25519
        } else if self.suite == P256 {
            &rcgen::PKCS_ECDSA_P256_SHA256
        } else {
            &rcgen::PKCS_ECDSA_P384_SHA384
        }
    }
}

impl rcgen::SigningKey for MlsKey {
    // EdDSA signs the message; ECDSA hashes it with the suite's hash and DER-encodes the
    // signature, which is what ecdsa-with-SHA256/384 expect.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        RustCrypto::default()
            .sign(self.suite, &self.private, msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

fn ca_params(name: &str, serial: u64, is_ca: IsCa) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, name);
    params.serial_number = Some(serial.into());
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    params.is_ca = is_ca;
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn leaf_params(uri: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.serial_number = Some(3u64.into());
    params.not_before = date_time_ymd(2025, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    params.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params
}

/// A root → intermediate → leaf chain; the leaf certifies `leaf_key`.
struct Pki {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate: Issuer<'static, MlsKey>,
}

impl Pki {
    fn new(suite: CipherSuite) -> Self {
        Self::with_intermediate(suite, IsCa::Ca(BasicConstraints::Unconstrained))
    }

    fn with_intermediate(suite: CipherSuite, intermediate_ca: IsCa) -> Self {
        let root_key = MlsKey::generate(suite);
        let root_params = ca_params(
            "Conclave AS root",
            1,
            IsCa::Ca(BasicConstraints::Unconstrained),
        );
        let root_der = root_params.self_signed(&root_key).unwrap().der().to_vec();
        let root = Issuer::new(root_params, root_key);
        let intermediate_key = MlsKey::generate(suite);
        let intermediate_params = ca_params("Conclave AS issuing CA", 2, intermediate_ca);
        let intermediate_der = intermediate_params
            .signed_by(&intermediate_key, &root)
            .unwrap()
            .der()
            .to_vec();
        Self {
            root_der,
            intermediate_der,
            intermediate: Issuer::new(intermediate_params, intermediate_key),
        }
    }

    fn leaf(&self, params: &CertificateParams, leaf_key: &MlsKey) -> Vec<u8> {
        params
            .signed_by(leaf_key, &self.intermediate)
            .unwrap()
            .der()
            .to_vec()
    }

    fn credential(&self, leaf_der: Vec<u8>) -> Credential {
        chain(vec![leaf_der, self.intermediate_der.clone()])
    }

    fn validator(&self) -> X509Validator {
        X509Validator::new([&self.root_der], TimePolicy::at(NOW)).unwrap()
    }
}

fn chain(ders: Vec<Vec<u8>>) -> Credential {
    Credential::X509 {
        certificates: ders
            .into_iter()
            .map(|d| Certificate {
                cert_data: d.into(),
            })
            .collect(),
    }
}

fn rejection(result: Result<(), Error>) -> String {
    match result {
        Err(Error::CredentialRejected(message)) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn valid_chain_accepted(suite: CipherSuite) {
    let pki = Pki::new(suite);
    let key = MlsKey::generate(suite);
    let cred = pki.credential(pki.leaf(&leaf_params("mls:alice@example.com/phone"), &key));
    let validator = pki.validator();
    validator
        .validate(&cred, &key.public.clone().into())
        .unwrap();
    assert_eq!(
        X509Validator::identity(&cred).unwrap(),
        ClientIdentity {
            user: "alice@example.com".into(),
            device: Some("phone".into()),
        }
    );
    // With a clock instead of a fixed time, and with the root included in the chain.
    let validator = validator.with_time(TimePolicy::clock(FixedClock(NOW)));
    let with_root = match cred {
        Credential::X509 { mut certificates } => {
            certificates.push(Certificate {
                cert_data: pki.root_der.clone().into(),
            });
            Credential::X509 { certificates }
        }
        _ => unreachable!(),
    };
    validator
        .validate(&with_root, &key.public.clone().into())
        .unwrap();
}

#[test]
fn ed25519_chain_accepted() {
    valid_chain_accepted(ED25519);
}

#[test]
fn p256_chain_accepted() {
    valid_chain_accepted(P256);
}

#[test]
fn p384_chain_accepted() {
    valid_chain_accepted(P384);
}

#[test]
fn wrong_anchor_rejected() {
    let pki = Pki::new(ED25519);
    let other = Pki::new(ED25519);
    let key = MlsKey::generate(ED25519);
    let cred = pki.credential(pki.leaf(&leaf_params("mls:alice@example.com/phone"), &key));
    // Same anchor name, different key: the intermediate's signature does not verify.
    let message = rejection(
        other
            .validator()
            .validate(&cred, &key.public.clone().into()),
    );
    assert!(message.contains("does not verify"), "{message}");
    // An anchor of another name.
    let mut params = ca_params("Someone else", 9, IsCa::Ca(BasicConstraints::Unconstrained));
    params.not_before = date_time_ymd(2025, 1, 1);
    let stranger_key = MlsKey::generate(ED25519);
    let stranger = params.self_signed(&stranger_key).unwrap().der().to_vec();
    let validator = X509Validator::new([&stranger], TimePolicy::at(NOW)).unwrap();
    let message = rejection(validator.validate(&cred, &key.public.clone().into()));
    assert!(message.contains("not a trust anchor"), "{message}");
}

#[test]
fn expired_leaf_rejected() {
    let pki = Pki::new(P256);
    let key = MlsKey::generate(P256);
    let mut params = leaf_params("mls:alice@example.com/phone");
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2021, 1, 1);
    let cred = pki.credential(pki.leaf(&params, &key));
    let message = rejection(pki.validator().validate(&cred, &key.public.clone().into()));
    assert!(message.contains("certificate 0 has expired"), "{message}");
    // Only an explicit SkipChecks turns validity periods off.
    pki.validator()
        .with_time(TimePolicy::SkipChecks)
        .validate(&cred, &key.public.clone().into())
        .unwrap();
}

#[test]
fn not_yet_valid_rejected() {
    let pki = Pki::new(ED25519);
    let key = MlsKey::generate(ED25519);
    let mut params = leaf_params("mls:alice@example.com/phone");
    params.not_before = date_time_ymd(2029, 1, 1);
    let cred = pki.credential(pki.leaf(&params, &key));
    let message = rejection(pki.validator().validate(&cred, &key.public.clone().into()));
    assert!(message.contains("not valid yet"), "{message}");
}

#[test]
fn tampered_certificates_rejected() {
    for suite in [ED25519, P256] {
        let pki = Pki::new(suite);
        let key = MlsKey::generate(suite);
        let leaf = pki.leaf(&leaf_params("mls:alice@example.com/phone"), &key);
        // The signed part: alice becomes mallo, same length.
        let position = leaf
            .windows(5)
            .position(|w| w == b"alice")
            .expect("the name is in the certificate");
        let mut tampered = leaf.clone();
        tampered[position..position + 5].copy_from_slice(b"mallo");
        let message = rejection(
            pki.validator()
                .validate(&pki.credential(tampered), &key.public.clone().into()),
        );
        assert!(message.contains("does not verify"), "{message}");
        // The signature itself: its last byte.
        let mut tampered = leaf.clone();
        *tampered.last_mut().unwrap() ^= 0x01;
        let message = rejection(
            pki.validator()
                .validate(&pki.credential(tampered), &key.public.clone().into()),
        );
        assert!(message.contains("does not verify"), "{message}");
        // Truncated: does not parse.
        let message = rejection(pki.validator().validate(
            &pki.credential(leaf[..leaf.len() - 1].to_vec()),
            &key.public.clone().into(),
        ));
        assert!(message.contains("does not parse"), "{message}");
    }
}

#[test]
fn non_ca_intermediate_rejected() {
    for is_ca in [IsCa::NoCa, IsCa::ExplicitNoCa] {
        let pki = Pki::with_intermediate(ED25519, is_ca);
        let key = MlsKey::generate(ED25519);
        let cred = pki.credential(pki.leaf(&leaf_params("mls:alice@example.com/phone"), &key));
        let message = rejection(pki.validator().validate(&cred, &key.public.clone().into()));
        assert!(message.contains("is not a CA"), "{message}");
    }
}

#[test]
fn path_length_constraint_enforced() {
    // The root allows no intermediate below it.
    let root_key = MlsKey::generate(ED25519);
    let root_params = ca_params("root", 1, IsCa::Ca(BasicConstraints::Constrained(0)));
    let root_der = root_params.self_signed(&root_key).unwrap().der().to_vec();
    let root = Issuer::new(root_params, root_key);
    let intermediate_key = MlsKey::generate(ED25519);
    let intermediate_params =
        ca_params("intermediate", 2, IsCa::Ca(BasicConstraints::Unconstrained));
    let intermediate_der = intermediate_params
        .signed_by(&intermediate_key, &root)
        .unwrap()
        .der()
        .to_vec();
    let intermediate = Issuer::new(intermediate_params, intermediate_key);
    let key = MlsKey::generate(ED25519);
    let leaf = leaf_params("mls:alice@example.com/phone")
        .signed_by(&key, &intermediate)
        .unwrap()
        .der()
        .to_vec();
    let validator = X509Validator::new([&root_der], TimePolicy::at(NOW)).unwrap();
    let message = rejection(validator.validate(
        &chain(vec![leaf, intermediate_der]),
        &key.public.clone().into(),
    ));
    assert!(message.contains("allows 0 intermediate"), "{message}");
    // A leaf issued by the root directly is fine.
    let leaf = leaf_params("mls:alice@example.com/phone")
        .signed_by(&key, &root)
        .unwrap()
        .der()
        .to_vec();
    validator
        .validate(&chain(vec![leaf]), &key.public.clone().into())
        .unwrap();
}

#[test]
fn leaf_key_must_be_the_signature_key() {
    let pki = Pki::new(P256);
    let key = MlsKey::generate(P256);
    let other = MlsKey::generate(P256);
    let cred = pki.credential(pki.leaf(&leaf_params("mls:alice@example.com/phone"), &key));
    let message = rejection(
        pki.validator()
            .validate(&cred, &other.public.clone().into()),
    );
    assert!(
        message.contains("not the member's signature key"),
        "{message}"
    );
}

#[test]
fn leaf_key_usage_must_allow_signing() {
    let pki = Pki::new(ED25519);
    let key = MlsKey::generate(ED25519);
    let mut params = leaf_params("mls:alice@example.com/phone");
    params.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
    let cred = pki.credential(pki.leaf(&params, &key));
    let message = rejection(pki.validator().validate(&cred, &key.public.clone().into()));
    assert!(message.contains("digitalSignature"), "{message}");
}

#[test]
fn unsupported_signature_algorithm_rejected() {
    let pki = Pki::new(P256);
    let key = MlsKey::generate(P256);
    let leaf = pki.leaf(&leaf_params("mls:alice@example.com/phone"), &key);
    // ecdsa-with-SHA256 (1.2.840.10045.4.3.2) becomes ecdsa-with-SHA512 (…4.3.4), in both the
    // signed part and the outer AlgorithmIdentifier.
    let oid = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let mut tampered = leaf.clone();
    let mut replaced = 0;
    let mut i = 0;
    while i + oid.len() <= tampered.len() {
        if tampered[i..i + oid.len()] == oid {
            tampered[i + oid.len() - 1] = 0x04;
            replaced += 1;
        }
        i += 1;
    }
    assert_eq!(replaced, 2);
    let message = rejection(
        pki.validator()
            .validate(&pki.credential(tampered), &key.public.clone().into()),
    );
    assert!(
        message.contains("unsupported signature algorithm"),
        "{message}"
    );
}

#[test]
fn chain_out_of_order_rejected() {
    let pki = Pki::new(ED25519);
    let key = MlsKey::generate(ED25519);
    let leaf = pki.leaf(&leaf_params("mls:alice@example.com/phone"), &key);
    let cred = chain(vec![pki.intermediate_der.clone(), leaf]);
    let message = rejection(pki.validator().validate(&cred, &key.public.clone().into()));
    assert!(message.contains("names issuer"), "{message}");
}

#[test]
fn other_credentials_rejected() {
    let pki = Pki::new(ED25519);
    let key = MlsKey::generate(ED25519);
    let validator = pki.validator();
    let basic = Credential::Basic {
        identity: b"alice".to_vec().into(),
    };
    let message = rejection(validator.validate(&basic, &key.public.clone().into()));
    assert!(message.contains("not an X.509 credential"), "{message}");
    let message = rejection(validator.validate(&chain(vec![]), &key.public.clone().into()));
    assert!(message.contains("empty"), "{message}");
    let message = rejection(validator.validate(
        &chain(vec![vec![0x30, 0x00]; 9]),
        &key.public.clone().into(),
    ));
    assert!(message.contains("more than 8"), "{message}");
}

#[test]
fn identity_fallbacks() {
    let pki = Pki::new(ED25519);
    let key = MlsKey::generate(ED25519);
    // rfc822Name: the user, no device.
    let mut params = leaf_params("unused");
    params.subject_alt_names = vec![SanType::Rfc822Name("bob@example.com".try_into().unwrap())];
    let cred = pki.credential(pki.leaf(&params, &key));
    assert_eq!(
        X509Validator::identity(&cred).unwrap(),
        ClientIdentity {
            user: "bob@example.com".into(),
            device: None,
        }
    );
    // No subjectAltName: the commonName.
    params.subject_alt_names = vec![];
    let cred = pki.credential(pki.leaf(&params, &key));
    assert_eq!(X509Validator::identity(&cred).unwrap().user, "leaf");
    // Two different mls: URIs are ambiguous.
    params.subject_alt_names = vec![
        SanType::URI("mls:bob@example.com/a".try_into().unwrap()),
        SanType::URI("mls:carol@example.com/b".try_into().unwrap()),
    ];
    let cred = pki.credential(pki.leaf(&params, &key));
    assert!(X509Validator::identity(&cred).is_err());
    assert!(
        pki.validator()
            .validate(&cred, &key.public.clone().into())
            .is_err()
    );
}

#[test]
fn successors_and_same_client() {
    let pki = Pki::new(ED25519);
    let validator = pki.validator();
    let cred = |uri: &str| {
        let key = MlsKey::generate(ED25519);
        pki.credential(pki.leaf(&leaf_params(uri), &key))
    };
    let alice_phone = cred("mls:alice@example.com/phone");
    let alice_phone_renewed = cred("mls:alice@example.com/phone");
    let alice_laptop = cred("mls:alice@example.com/laptop");
    let bob_phone = cred("mls:bob@example.com/phone");
    validator
        .valid_successor(&alice_phone, &alice_phone_renewed)
        .unwrap();
    let message = rejection(validator.valid_successor(&alice_phone, &bob_phone));
    assert!(message.contains("user cannot change"), "{message}");
    let message = rejection(validator.valid_successor(&alice_phone, &alice_laptop));
    assert!(message.contains("device"), "{message}");
    let id = |c: &Credential| validator.client_id(c);
    assert!(id(&alice_phone).is_some());
    assert_eq!(id(&alice_phone), id(&alice_phone_renewed));
    assert_ne!(id(&alice_phone), id(&alice_laptop));
    assert_ne!(id(&alice_phone), id(&bob_phone));
    // Without a device id a certificate names a user, not a client.
    let alice = cred("mls:alice@example.com");
    assert_eq!(id(&alice), None);
    // The user's length is part of the id: "ab" + "c" is not "a" + "bc".
    let ab_c = cred("mls:ab@x/c");
    let a_bc = cred("mls:a@xb/c");
    assert!(id(&ab_c).is_some());
    assert_ne!(id(&ab_c), id(&a_bc));
}

fn identity(pki: &Pki, suite: CipherSuite, uri: &str) -> Identity {
    let key = MlsKey::generate(suite);
    let credential = pki.credential(pki.leaf(&leaf_params(uri), &key));
    Identity {
        suite,
        credential,
        signature_key: key.public.into(),
        signer: key.private,
    }
}

#[test]
fn group_with_x509_members() {
    for suite in [ED25519, P256] {
        let p = RustCrypto::default();
        let pki = Pki::new(suite);
        let validator: Arc<dyn IdentityValidator> = Arc::new(pki.validator());
        let alice = identity(&pki, suite, "mls:alice@example.com/phone");
        let mut alice_group = common::create(
            &p,
            &alice,
            b"x509 group".to_vec(),
            vec![],
            GroupConfig::default(),
            validator.clone(),
        )
        .unwrap();
        let bob = identity(&pki, suite, "mls:bob@example.com/laptop");
        let (kp, secrets) = key_package(&p, &bob);
        let out = alice_group
            .commit()
            .add_member(kp.clone())
            .build(&p)
            .unwrap();
        assert!(matches!(
            alice_group.process(&p, &out.commit).unwrap(),
            Received::OwnCommit
        ));
        let welcome = welcome_of(out.welcome.as_ref().expect("a Welcome"));
        let request = join_request(
            &bob,
            &kp,
            &secrets,
            welcome,
            GroupConfig::default(),
            validator,
        );
        let bob_group = common::join(&p, request).unwrap();
        assert_eq!(
            bob_group.epoch_authenticator(),
            alice_group.epoch_authenticator()
        );

        // A KeyPackage whose certificate comes from another AS is refused.
        let other = Pki::new(suite);
        let mallory = identity(&other, suite, "mls:mallory@example.com/phone");
        let (kp, _) = key_package(&p, &mallory);
        let result = alice_group.commit().add_member(kp).build(&p);
        assert!(
            matches!(result, Err(Error::CredentialRejected(_))),
            "{result:?}"
        );
    }
}
