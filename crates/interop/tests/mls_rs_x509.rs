//! The AS's X.509 device certificates as MLS credentials between Conclave and mls-rs
//! (RFC 9420 §5.3: an X.509 credential is the chain, leaf first, whose leaf carries the
//! member's signature key; RFC 9750 §7: the AS vouches for that binding).
//!
//! The chains come from the AS's own certificate authority (`conclave_as::ca::Ca`, the code
//! the running AS issues with, its keys in a temporary directory). Conclave checks them with
//! `conclave-mls`'s `X509Validator`; mls-rs with its own `X509IdentityProvider` and RustCrypto
//! `X509Validator`, both anchored at the AS root alone. Both directions are played: each side
//! creates the group and adds the other, they exchange messages and commits and agree; then
//! each side refuses the other's KeyPackage when its chain names another root, another key,
//! or has expired, and the group is left as it was.

use conclave_as::ca::Ca;
use conclave_interop::mls_rs_peer::{MlsRs, mls_rs_signature_key, mls_rs_x509};
use conclave_interop::{Conclave, Member, Peer, assert_agree, message, now};
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::identity::Identity;
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::messages::{Certificate, Credential};
use conclave_mls::time::TimePolicy;
use mls_rs::client_builder::MlsConfig;
use std::sync::Arc;
use tempfile::TempDir;

/// Device certificate lifetime in these tests: a day.
const DAY: u64 = 86_400;

/// An AS certificate authority with its key files in a temporary directory.
struct Authority {
    ca: Ca,
    _keys: TempDir,
}

fn authority() -> Authority {
    let keys = TempDir::new().expect("temporary directory");
    let ca = Ca::load_or_create(keys.path(), now()).expect("the AS creates its CA");
    Authority { ca, _keys: keys }
}

/// How a device's certificate is wrong, if it is.
#[derive(Clone, Copy, Debug)]
enum Flaw {
    /// A good chain for the device's own key.
    None,
    /// Issued by another AS: its root is not the anchor.
    OtherRoot,
    /// A good chain, but for a key that is not the device's signature key.
    OtherKey,
    /// Its validity ended yesterday.
    Expired,
}

/// The chain `ca` (or, for [`Flaw::OtherRoot`], another AS) issues for `key`, as `flaw` says.
fn chain_for(ca: &Ca, user: &str, device: &str, key: &[u8], flaw: Flaw) -> Vec<Vec<u8>> {
    let key: [u8; 32] = key.try_into().expect("an Ed25519 key");
    let other = authority();
    let (ca, key, issued_at) = match flaw {
        Flaw::None => (ca, key, now()),
        Flaw::OtherRoot => (&other.ca, key, now()),
        Flaw::OtherKey => (ca, fresh_key(), now()),
        Flaw::Expired => (ca, key, now() - 2 * DAY),
    };
    ca.issue(user, device, &key, issued_at, DAY)
        .expect("the AS issues a chain")
        .0
}

/// A fresh Ed25519 public key nobody presents.
fn fresh_key() -> [u8; 32] {
    let identity = Identity::generate(
        &RustCrypto::default(),
        CipherSuite(1),
        Credential::Basic {
            identity: Vec::new().into(),
        },
    )
    .expect("identity");
    identity
        .signature_key
        .as_slice()
        .try_into()
        .expect("32 bytes")
}

/// A Conclave device of `user` holding the chain `ca` issues for its key (flawed as `flaw`
/// says), accepting members whose chains validate up to `ca`'s root.
fn conclave_device(ca: &Ca, user: &str, device: &str, suite: u16, flaw: Flaw) -> Conclave {
    let provider = RustCrypto::default();
    let mut identity = Identity::generate(
        &provider,
        CipherSuite(suite),
        Credential::Basic {
            identity: Vec::new().into(),
        },
    )
    .expect("identity");
    let chain = chain_for(ca, user, device, identity.signature_key.as_slice(), flaw);
    identity.credential = Credential::X509 {
        certificates: chain
            .into_iter()
            .map(|der| Certificate {
                cert_data: der.into(),
            })
            .collect(),
    };
    let validator = X509Validator::new([ca.root_der()], TimePolicy::system())
        .expect("the AS root is a trust anchor");
    Conclave::with_identity(device, identity, Arc::new(validator))
}

/// An mls-rs device of `user` holding the chain `ca` issues for its key (flawed as `flaw`
/// says), whose identity provider trusts `ca`'s root alone.
fn mls_rs_device(
    ca: &Ca,
    user: &str,
    device: &str,
    suite: u16,
    flaw: Flaw,
) -> MlsRs<impl MlsConfig + use<>> {
    let (secret, public) = mls_rs_signature_key(suite);
    let chain = chain_for(ca, user, device, &public, flaw);
    mls_rs_x509(device, suite, &chain, (secret, public), ca.root_der())
}

/// Messages both ways, a commit with a path from each side, agreement after each step.
fn talk<P: Peer>(c: &mut Conclave, peer: &mut P) {
    assert_agree(c, peer);
    message(c, peer);
    message(peer, c);
    let commit = c.commit_path();
    peer.deliver(&commit);
    assert_agree(c, peer);
    let commit = peer.commit_path();
    c.deliver(&commit);
    assert_agree(c, peer);
    message(peer, c);
}

/// The AS's suites: its certificates carry Ed25519 keys (suites 1 and 3).
const SUITES: [u16; 2] = [1, 3];

#[test]
fn mls_rs_adds_a_conclave_device_both_with_as_certificates() {
    for suite in SUITES {
        let authority = authority();
        let ca = &authority.ca;
        let mut peer = mls_rs_device(ca, "alice@example.org", "alice-laptop", suite, Flaw::None);
        let mut c = conclave_device(ca, "bob@example.org", "bob-phone", suite, Flaw::None);
        peer.create_group();
        let (_commit, welcome) = peer
            .try_add(&c.key_package())
            .expect("mls-rs accepts the AS's certificate of a Conclave device");
        c.join(&welcome)
            .expect("Conclave accepts mls-rs's member and its AS certificate");
        talk(&mut c, &mut peer);
    }
}

#[test]
fn conclave_adds_an_mls_rs_device_both_with_as_certificates() {
    for suite in SUITES {
        let authority = authority();
        let ca = &authority.ca;
        let mut c = conclave_device(ca, "alice@example.org", "alice-laptop", suite, Flaw::None);
        let mut peer = mls_rs_device(ca, "bob@example.org", "bob-phone", suite, Flaw::None);
        c.create_group(b"x509 interop");
        let (_commit, welcome) = c
            .try_add(&peer.key_package())
            .expect("Conclave accepts the AS's certificate of an mls-rs device");
        peer.try_join(&welcome, None)
            .expect("mls-rs accepts the Welcome and Conclave's AS certificate");
        talk(&mut c, &mut peer);
        // A second mls-rs device joins the three-member group through Conclave's commit, and
        // the first validates its chain while processing that commit.
        let mut third = mls_rs_device(ca, "bob@example.org", "bob-laptop", suite, Flaw::None);
        let (commit, welcome) = c.try_add(&third.key_package()).expect("add");
        peer.deliver(&commit);
        third.try_join(&welcome, None).expect("the third joins");
        assert_agree(&mut c, &mut third);
        assert_agree(&mut peer, &mut third);
    }
}

#[test]
fn mls_rs_refuses_a_conclave_device_whose_certificate_is_wrong() {
    let authority = authority();
    let ca = &authority.ca;
    for flaw in [Flaw::OtherRoot, Flaw::OtherKey, Flaw::Expired] {
        let mut peer = mls_rs_device(ca, "alice@example.org", "alice-laptop", 1, Flaw::None);
        peer.create_group();
        let before = (peer.current_epoch(), peer.epoch_authenticator());
        let mut bad = conclave_device(ca, "bob@example.org", "bob-phone", 1, flaw);
        let refused = peer.try_add(&bad.key_package()).expect_err("refused");
        // Two AS roots share the subject name, so the other root's chain fails on the
        // signature of the issuing CA rather than on a missing anchor.
        let why = match flaw {
            Flaw::OtherRoot => "InvalidSignature",
            Flaw::OtherKey => "SignatureKeyMismatch",
            _ => "ValidityError",
        };
        assert!(
            refused.contains("IdentityProviderError") && refused.contains(why),
            "mls-rs refuses a Conclave KeyPackage whose certificate has {flaw:?} for {why}: {refused}"
        );
        assert_eq!(
            (peer.current_epoch(), peer.epoch_authenticator()),
            before,
            "the refusal changes nothing ({flaw:?})"
        );
        // The group still takes a device whose certificate is good.
        let mut good = conclave_device(ca, "bob@example.org", "bob-phone", 1, Flaw::None);
        let (_commit, welcome) = peer.try_add(&good.key_package()).expect("a good one");
        good.join(&welcome).expect("joins");
        assert_agree(&mut good, &mut peer);
    }
}

#[test]
fn conclave_refuses_an_mls_rs_device_whose_certificate_is_wrong() {
    let authority = authority();
    let ca = &authority.ca;
    for flaw in [Flaw::OtherRoot, Flaw::OtherKey, Flaw::Expired] {
        let mut c = conclave_device(ca, "alice@example.org", "alice-laptop", 1, Flaw::None);
        c.create_group(b"x509 refusals");
        let before = (c.current_epoch(), c.authenticator());
        let bad = mls_rs_device(ca, "bob@example.org", "bob-phone", 1, flaw);
        let refused = c.try_add(&bad.key_package());
        let why = match flaw {
            Flaw::OtherRoot => "signature does not verify",
            Flaw::OtherKey => "not the member's signature key",
            _ => "expired",
        };
        assert!(
            matches!(&refused, Err(conclave_mls::Error::CredentialRejected(m)) if m.contains(why)),
            "Conclave refuses an mls-rs KeyPackage whose certificate has {flaw:?} ({why}): {refused:?}"
        );
        assert_eq!(
            (c.current_epoch(), c.authenticator()),
            before,
            "the refusal changes nothing ({flaw:?})"
        );
        let mut good = mls_rs_device(ca, "bob@example.org", "bob-phone", 1, Flaw::None);
        let (_commit, welcome) = c.try_add(&good.key_package()).expect("a good one");
        good.try_join(&welcome, None).expect("joins");
        assert_agree(&mut c, &mut good);
    }
}
