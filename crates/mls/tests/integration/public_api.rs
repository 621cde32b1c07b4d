//! The public API as an application meets it: builders, staged Welcomes, messages in and
//! out, time that cannot fail open, own messages read back, the pending epoch's exporter,
//! the out-of-band ratchet tree, and the receiver's capability checks of RFC 9420 §7.3/§10.1.

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::identity::BasicCredentialsOnly;
use conclave_mls::messages::{Capabilities, ContentType, Credential, Lifetime, WireFormat};
use conclave_mls::time::TimePolicy;
use conclave_mls::{
    CipherSuite, Error, ErrorKind, Group, GroupConfig, GroupState, Identity, KeyPackageBundle,
    KeyPackageOptions, MlsMessage, Received, RustCrypto,
};
use std::sync::Arc;

const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
/// 2001-09-09: long before any test runs.
const LONG_AGO: u64 = 1_000_000_000;

fn identity(p: &RustCrypto, name: &str) -> Identity {
    Identity::generate(p, SUITE, Credential::basic(name)).unwrap()
}

fn wire(m: &MlsMessage) -> MlsMessage {
    MlsMessage::decode(&m.encode().unwrap()).unwrap()
}

fn bundle(p: &RustCrypto, id: &Identity, options: KeyPackageOptions) -> KeyPackageBundle {
    KeyPackageBundle::generate(p, id, options).unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn valid_now(p: &RustCrypto, id: &Identity) -> KeyPackageBundle {
    bundle(
        p,
        id,
        KeyPackageOptions::new(Lifetime::starting_at(now(), 86_400)),
    )
}

/// `g` commits an Add of `joiner`'s KeyPackage and merges it; the joiner joins from the
/// Welcome, carried as bytes, under `config`.
fn add_and_join(
    p: &RustCrypto,
    g: &mut Group,
    joiner: &Identity,
    key_package: &KeyPackageBundle,
    config: GroupConfig,
) -> Group {
    let out = g
        .commit()
        .add_member(key_package.key_package().clone())
        .build(p)
        .unwrap();
    g.merge_pending_commit().unwrap();
    Group::join(
        wire(&out.welcome.unwrap()),
        joiner,
        key_package,
        Arc::new(BasicCredentialsOnly),
    )
    .config(config)
    .join(p)
    .unwrap()
}

/// A KeyPackage that expired a day after `LONG_AGO`.
fn expired(p: &RustCrypto, id: &Identity) -> KeyPackageBundle {
    bundle(
        p,
        id,
        KeyPackageOptions::new(Lifetime::starting_at(LONG_AGO, 86_400)),
    )
}

fn group(p: &RustCrypto, id: &Identity, config: GroupConfig) -> Group {
    Group::builder(id, Arc::new(BasicCredentialsOnly))
        .config(config)
        .build(p)
        .unwrap()
}

/// The `CryptoProvider` trait has no clock (any provider, ours included, is "without one"),
/// and nothing turns lifetime checks off but an explicit `TimePolicy::SkipChecks`: an expired
/// KeyPackage is refused under the default configuration.
#[test]
fn lifetimes_are_checked_unless_explicitly_skipped() {
    let p = RustCrypto::default();
    let (alice, bob) = (identity(&p, "alice"), identity(&p, "bob"));
    let old = expired(&p, &bob);

    let mut g = group(&p, &alice, GroupConfig::default());
    let err = g
        .commit()
        .add_member(old.key_package().clone())
        .build(&p)
        .unwrap_err();
    assert!(matches!(err, Error::KeyPackageInvalid(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        g.state(),
        GroupState::Active,
        "a refused commit leaves no pending state"
    );

    // A clock inside the lifetime accepts it …
    let mut g = group(
        &p,
        &alice,
        GroupConfig::default().with_time(TimePolicy::at(LONG_AGO + 60)),
    );
    g.commit()
        .add_member(old.key_package().clone())
        .build(&p)
        .unwrap();
    // … and so does the explicit opt-out for replays.
    let mut g = group(
        &p,
        &alice,
        GroupConfig::default().with_time(TimePolicy::SkipChecks),
    );
    g.commit()
        .add_member(old.key_package().clone())
        .build(&p)
        .unwrap();
}

/// A joiner checks the lifetimes of the tree's leaves against its own clock too: a tree whose
/// creator leaf came from an expired KeyPackage is refused with the default policy.
#[test]
fn a_joiner_checks_leaf_lifetimes_with_its_clock() {
    let p = RustCrypto::default();
    let (alice, bob, carol) = (
        identity(&p, "alice"),
        identity(&p, "bob"),
        identity(&p, "carol"),
    );
    // Bob joins long ago, when his KeyPackage was valid.
    let then = GroupConfig::default().with_time(TimePolicy::at(LONG_AGO + 60));
    let mut g = group(&p, &alice, then.clone());
    let bob_kp = expired(&p, &bob);
    g.commit()
        .add_member(bob_kp.key_package().clone())
        .build(&p)
        .unwrap();
    g.merge_pending_commit().unwrap();
    // Carol is added now; her view of the tree holds Bob's leaf, expired since.
    g.set_time_policy(TimePolicy::SkipChecks);
    let carol_kp = valid_now(&p, &carol);
    let out = g
        .commit()
        .add_member(carol_kp.key_package().clone())
        .build(&p)
        .unwrap();
    let welcome = wire(&out.welcome.unwrap());
    let err = Group::join(
        welcome.clone(),
        &carol,
        &carol_kp,
        Arc::new(BasicCredentialsOnly),
    )
    .join(&p)
    .unwrap_err();
    assert!(matches!(err, Error::LeafLifetimeInvalid { .. }), "{err:?}");
    Group::join(welcome, &carol, &carol_kp, Arc::new(BasicCredentialsOnly))
        .config(GroupConfig::default().with_time(TimePolicy::SkipChecks))
        .join(&p)
        .unwrap();
}

/// RFC 9420 §7.2 asks a client to list the suites it supports, but §7.3 and §10.1 give the
/// receiver no check that the group's suite is listed (MLS++ omits it): such a KeyPackage
/// is accepted by default and refused only under `strict_capabilities`.
#[test]
fn a_key_package_that_omits_the_suite_from_its_capabilities() {
    let p = RustCrypto::default();
    let (alice, bob) = (identity(&p, "alice"), identity(&p, "bob"));
    let mut options = KeyPackageOptions::new(Lifetime::starting_at(now(), 86_400));
    options.capabilities = Some(Capabilities {
        versions: vec![],
        cipher_suites: vec![],
        extensions: vec![],
        proposals: vec![],
        credentials: vec![conclave_mls::messages::CredentialType::BASIC],
    });
    let bob_kp = bundle(&p, &bob, options);

    let mut strict = group(
        &p,
        &alice,
        GroupConfig::default().with_strict_capabilities(true),
    );
    let err = strict
        .commit()
        .add_member(bob_kp.key_package().clone())
        .build(&p)
        .unwrap_err();
    assert!(matches!(err, Error::KeyPackageInvalid(_)), "{err:?}");

    let mut g = group(&p, &alice, GroupConfig::default());
    let mut bob_group = add_and_join(&p, &mut g, &bob, &bob_kp, GroupConfig::default());
    // Bob's leaf (without the suite) is in the tree; he commits, and Alice accepts it.
    let out = bob_group.commit().force_path().build(&p).unwrap();
    let Received::Commit(staged) = g.process(&p, &wire(&out.commit)).unwrap() else {
        panic!("expected a commit")
    };
    g.merge(*staged).unwrap();
    bob_group.merge_pending_commit().unwrap();
    assert_eq!(g.epoch_authenticator(), bob_group.epoch_authenticator());
}

/// Messages in, messages out: a KeyPackage travels as an `MlsMessage`, the Welcome is staged
/// and inspected before it is accepted, and a message of the wrong kind is a typed error.
#[test]
fn staged_welcome_and_message_kinds() {
    let p = RustCrypto::default();
    let (alice, bob) = (identity(&p, "alice"), identity(&p, "bob"));
    let bob_kp = valid_now(&p, &bob);
    let stored = bob_kp.to_bytes().unwrap();
    let bob_kp = KeyPackageBundle::from_bytes(&stored).unwrap();

    let published = wire(&bob_kp.message());
    assert_eq!(published.wire_format(), WireFormat::KEY_PACKAGE);
    let err = published.clone().into_welcome().unwrap_err();
    assert_eq!(
        err,
        Error::WrongMessageKind {
            expected: WireFormat::WELCOME,
            got: WireFormat::KEY_PACKAGE
        }
    );
    assert_eq!(err.kind(), ErrorKind::Misuse);

    let mut g = Group::builder(&alice, Arc::new(BasicCredentialsOnly))
        .group_id(b"staged".to_vec())
        .build(&p)
        .unwrap();
    let out = g
        .commit()
        .add_member(published.clone().into_key_package().unwrap())
        .build(&p)
        .unwrap();
    g.merge_pending_commit().unwrap();

    // A KeyPackage where a Welcome is expected is refused without touching the bundle.
    let err = Group::join(published, &bob, &bob_kp, Arc::new(BasicCredentialsOnly))
        .join(&p)
        .unwrap_err();
    assert!(matches!(err, Error::WrongMessageKind { .. }));

    let staged = Group::join(
        wire(&out.welcome.unwrap()),
        &bob,
        &bob_kp,
        Arc::new(BasicCredentialsOnly),
    )
    .stage(&p)
    .unwrap();
    assert_eq!(staged.group_id(), b"staged");
    assert_eq!(staged.epoch(), 1);
    assert_eq!(staged.members().count(), 2);
    let adder = staged.added_by().unwrap();
    assert_eq!(adder.credential, &Credential::basic("alice"));
    assert_ne!(adder.leaf, staged.own_leaf());
    let bob_group = staged.accept();
    assert_eq!(bob_group.epoch_authenticator(), g.epoch_authenticator());
}

/// A member reading its own proposal or application message back from the Delivery Service
/// is told it is its own, and nothing changes.
#[test]
fn own_messages_read_back() {
    let p = RustCrypto::default();
    let (alice, bob) = (identity(&p, "alice"), identity(&p, "bob"));
    for private in [false, true] {
        let config = GroupConfig::default().with_handshake_wire_format(if private {
            conclave_mls::group::HandshakeWireFormat::Private
        } else {
            conclave_mls::group::HandshakeWireFormat::Public
        });
        let mut g = group(&p, &alice, config.clone());
        let bob_kp = valid_now(&p, &bob);
        let mut b = add_and_join(&p, &mut g, &bob, &bob_kp, config);

        let ct = wire(&g.encrypt_application(&p, b"hello", b"").unwrap());
        let before = g.export_state().unwrap();
        assert!(matches!(
            g.process(&p, &ct).unwrap(),
            Received::OwnMessage {
                content_type: ContentType::Application
            }
        ));
        assert_eq!(g.export_state().unwrap(), before, "nothing changed");
        assert!(matches!(
            b.process(&p, &ct).unwrap(),
            Received::Application { .. }
        ));

        let proposal = wire(&g.propose_update(&p).unwrap());
        assert!(matches!(
            g.process(&p, &proposal).unwrap(),
            Received::OwnMessage {
                content_type: ContentType::Proposal
            }
        ));
        assert!(matches!(
            b.process(&p, &proposal).unwrap(),
            Received::Proposal { .. }
        ));
    }
}

/// The exporter of the epoch a pending commit would create is the one the group has after
/// merging; the out-of-band ratchet tree comes with the commit when the Welcome lacks it.
#[test]
fn pending_epoch_exporter_and_out_of_band_tree() {
    let p = RustCrypto::default();
    let (alice, bob) = (identity(&p, "alice"), identity(&p, "bob"));
    let config = GroupConfig::default().with_ratchet_tree_extension(false);
    let mut g = group(&p, &alice, config.clone());
    assert_eq!(
        g.pending_export_secret(&p, b"ds", b"", 32).unwrap_err(),
        Error::NoPendingCommit
    );
    let bob_kp = valid_now(&p, &bob);
    let out = g
        .commit()
        .add_member(bob_kp.key_package().clone())
        .build(&p)
        .unwrap();
    assert_eq!(g.state(), GroupState::PendingCommit);
    let next_key = g.pending_export_secret(&p, b"ds", b"", 32).unwrap();
    let tree = out
        .ratchet_tree
        .clone()
        .expect("the Welcome does not carry the tree");
    assert_eq!(tree, g.pending_ratchet_tree().unwrap());
    g.merge_pending_commit().unwrap();
    assert_eq!(g.export_secret(&p, b"ds", b"", 32).unwrap(), next_key);
    assert_eq!(g.ratchet_tree(), tree);

    let welcome = wire(&out.welcome.unwrap());
    let err = Group::join(
        welcome.clone(),
        &bob,
        &bob_kp,
        Arc::new(BasicCredentialsOnly),
    )
    .join(&p)
    .unwrap_err();
    assert_eq!(err, Error::MissingRatchetTree);
    let b = Group::join(welcome, &bob, &bob_kp, Arc::new(BasicCredentialsOnly))
        .ratchet_tree(tree)
        .join(&p)
        .unwrap();
    assert_eq!(b.epoch_authenticator(), g.epoch_authenticator());
    assert_eq!(b.members().count(), 2);
    assert_eq!(b.member(b.own_leaf()).unwrap().credential, &bob.credential);
}

/// An external join goes through its builder from a GroupInfo `MlsMessage`; a GroupInfo of
/// another suite is reported as such (not as a Welcome mismatch).
#[test]
fn external_join_builder() {
    let p = RustCrypto::default();
    let (alice, bob) = (identity(&p, "alice"), identity(&p, "bob"));
    let mut g = group(&p, &alice, GroupConfig::default());
    let info = wire(&g.group_info(&p).unwrap());
    let (mut b, commit) = Group::join_external(info.clone(), &bob, Arc::new(BasicCredentialsOnly))
        .build(&p)
        .unwrap();
    let Received::Commit(staged) = g.process(&p, &wire(&commit)).unwrap() else {
        panic!("expected a commit")
    };
    g.merge(*staged).unwrap();
    assert_eq!(g.epoch_authenticator(), b.epoch_authenticator());
    assert_eq!(b.state(), GroupState::Active);
    let ct = b.encrypt_application(&p, b"in", b"").unwrap();
    assert!(matches!(
        g.process(&p, &ct).unwrap(),
        Received::Application { .. }
    ));

    let other = Identity::generate(
        &p,
        CipherSuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519,
        Credential::basic("carol"),
    )
    .unwrap();
    let err = Group::join_external(info, &other, Arc::new(BasicCredentialsOnly))
        .build(&p)
        .unwrap_err();
    assert_eq!(err, Error::GroupInfoCipherSuiteMismatch);
}
