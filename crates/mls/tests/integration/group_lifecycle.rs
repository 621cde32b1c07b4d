//! End-to-end group flows through the public API: create, add, join, talk, update, remove,
//! in several cipher suites, with every member's epoch authenticator compared at each step.

use crate::common;

use common::{basic, basic_identity, join_request, key_package, one_day, welcome_of};
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{Group, GroupConfig, HandshakeWireFormat, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::internal::tree::LeafIndex;
use conclave_mls::key_package::{KeyPackageOptions, create_key_package};
use conclave_mls::messages::{MlsMessage, MlsMessageBody};
use std::sync::Arc;

struct Member {
    identity: Identity,
    group: Group,
}

fn config(private_handshake: bool) -> GroupConfig {
    GroupConfig::default().with_handshake_wire_format(if private_handshake {
        HandshakeWireFormat::Private
    } else {
        HandshakeWireFormat::Public
    })
}

/// A group `group_id` of basic credentials, created by `creator` with `config`.
fn create_group(p: &RustCrypto, creator: &Identity, group_id: &[u8], config: GroupConfig) -> Group {
    common::create(p, creator, group_id.to_vec(), vec![], config, basic()).unwrap()
}

/// Alice alone in a new group `group_id` of `suite`.
fn alice_alone(p: &RustCrypto, suite: CipherSuite, group_id: &[u8], private: bool) -> Vec<Member> {
    let alice = basic_identity(p, suite, "alice");
    let group = create_group(p, &alice, group_id, config(private));
    vec![Member {
        identity: alice,
        group,
    }]
}

/// `committer` adds `joiner` with a KeyPackage made from `options` and merges the commit at
/// once; returns the joiner's group, joined from the Welcome with `config(false)`.
fn add_and_join(
    p: &RustCrypto,
    committer: &mut Group,
    joiner: &Identity,
    options: KeyPackageOptions,
) -> Group {
    let (kp, secrets) = create_key_package(p, joiner, options).unwrap();
    let out = committer.commit().add_member(kp.clone()).build(p).unwrap();
    committer.merge_pending_commit().unwrap();
    let welcome = welcome_of(out.welcome.as_ref().unwrap());
    let request = join_request(joiner, &kp, &secrets, welcome, config(false), basic());
    common::join(p, request).unwrap()
}

/// Adds a new member named `name` through `adder`; everyone else processes the commit.
fn add(p: &RustCrypto, members: &mut Vec<Member>, adder: usize, name: &str, private: bool) {
    let suite = members[0].group.cipher_suite();
    let id = basic_identity(p, suite, name);
    let (kp, secrets) = key_package(p, &id);
    let out = members[adder]
        .group
        .commit()
        .add_member(kp.clone())
        .build(p)
        .unwrap();
    deliver(p, members, adder, &out.commit);
    let welcome = welcome_of(out.welcome.as_ref().expect("a Welcome"));
    let request = join_request(&id, &kp, &secrets, welcome, config(private), basic());
    let group = common::join(p, request).unwrap();
    members.push(Member {
        identity: id,
        group,
    });
    assert_agree(members);
}

/// The sender's own commit comes back from the DS; everyone else stages and merges it.
fn deliver(p: &RustCrypto, members: &mut [Member], sender: usize, commit: &MlsMessage) {
    for (i, m) in members.iter_mut().enumerate() {
        match m.group.process(p, commit).unwrap() {
            Received::OwnCommit => assert_eq!(i, sender),
            Received::Commit(staged) => {
                assert_ne!(i, sender);
                m.group.merge(*staged).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn assert_agree(members: &[Member]) {
    let first = members[0].group.epoch_authenticator().to_vec();
    for m in members {
        assert_eq!(m.group.epoch_authenticator(), first.as_slice());
        assert_eq!(m.group.epoch(), members[0].group.epoch());
    }
}

fn talk(p: &RustCrypto, members: &mut [Member], from: usize, text: &[u8]) {
    let expected_sender = members[from].group.own_leaf();
    let ct = members[from]
        .group
        .encrypt_application(p, text, b"ad")
        .unwrap();
    for (i, m) in members.iter_mut().enumerate() {
        if i == from {
            continue;
        }
        match m.group.process(p, &ct).unwrap() {
            Received::Application {
                sender,
                data,
                authenticated_data,
                ..
            } => {
                assert_eq!(sender, expected_sender);
                assert_eq!(data, text);
                assert_eq!(authenticated_data, b"ad");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn lifecycle(suite: CipherSuite, private: bool) {
    let p = RustCrypto::default();
    let mut members = alice_alone(&p, suite, b"group", private);
    for (i, name) in ["bob", "carol", "dave", "erin"].iter().enumerate() {
        add(&p, &mut members, i, name, private);
    }
    for from in 0..members.len() {
        talk(
            &p,
            &mut members,
            from,
            format!("hello from {from}").as_bytes(),
        );
    }
    // An empty commit with a path from a member in the middle.
    let out = members[2].group.commit().force_path().build(&p).unwrap();
    deliver(&p, &mut members, 2, &out.commit);
    assert_agree(&members);
    // A proposal by one member, committed by another (by reference).
    let proposal = members[3]
        .group
        .propose(
            &p,
            conclave_mls::messages::Proposal::Remove(conclave_mls::messages::Remove { removed: 1 }),
        )
        .unwrap();
    for i in [0, 1, 2, 4] {
        assert!(matches!(
            members[i].group.process(&p, &proposal).unwrap(),
            Received::Proposal { .. }
        ));
    }
    let out = members[0].group.commit().build(&p).unwrap();
    // Bob (leaf 1) is removed: he sees a commit that removes him.
    for (i, m) in members.iter_mut().enumerate() {
        match m.group.process(&p, &out.commit).unwrap() {
            Received::OwnCommit => assert_eq!(i, 0),
            Received::Commit(staged) => {
                assert_eq!(staged.removed(), &[LeafIndex(1)]);
                assert_eq!(staged.removes_us(), i == 1);
                m.group.merge(*staged).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let bob = members.remove(1);
    assert!(bob.group.epoch() < members[0].group.epoch());
    assert_agree(&members);
    // The next member added takes bob's blank leaf.
    add(&p, &mut members, 3, "frank", private);
    assert_eq!(members[4].group.own_leaf(), LeafIndex(1));
    let _ = &members[4].identity;
    // Every member goes through export and import and carries on.
    for m in members.iter_mut() {
        let bytes = m.group.export_state().unwrap();
        let restored = Group::import_state(&bytes, Arc::new(BasicCredentialsOnly)).unwrap();
        assert_eq!(
            restored.export_state().unwrap(),
            bytes,
            "export∘import is the identity"
        );
        m.group = restored;
    }
    talk_all(&p, &mut members);
    // Grace joins by external commit from a GroupInfo.
    external_join(&p, &mut members, "grace", None, private);
    // Carol lost her state: she rejoins externally, replacing her own leaf (resync).
    let carol = members.remove(2);
    let carol_leaf = carol.group.own_leaf();
    external_join(
        &p,
        &mut members,
        "carol",
        Some((carol.identity, carol_leaf)),
        private,
    );
    talk_all(&p, &mut members);
    let exported: Vec<_> = members
        .iter()
        .map(|m| m.group.export_secret(&p, b"test", b"ctx", 32).unwrap())
        .collect();
    assert!(exported.windows(2).all(|w| w[0] == w[1]));
}

fn talk_all(p: &RustCrypto, members: &mut [Member]) {
    for from in 0..members.len() {
        let ct = members[from]
            .group
            .encrypt_application(p, b"hi", b"")
            .unwrap();
        for (i, m) in members.iter_mut().enumerate() {
            if i != from {
                assert!(matches!(
                    m.group.process(p, &ct).unwrap(),
                    Received::Application { .. }
                ));
            }
        }
    }
}

fn external_join(
    p: &RustCrypto,
    members: &mut Vec<Member>,
    name: &str,
    resync: Option<(Identity, LeafIndex)>,
    private: bool,
) {
    let suite = members[0].group.cipher_suite();
    let info = members[0].group.group_info(p).unwrap();
    let MlsMessageBody::GroupInfo(info) = info.body else {
        panic!()
    };
    let (id, old) = match resync {
        Some((id, leaf)) => (id, Some(leaf)),
        None => (basic_identity(p, suite, name), None),
    };
    let (group, commit) = common::join_external(
        p,
        common::ExternalJoinRequest {
            identity: &id,
            group_info: &info,
            ratchet_tree: None,
            resync: old,
            authenticated_data: vec![],
            config: config(private),
            validator: basic(),
        },
    )
    .unwrap();
    for m in members.iter_mut() {
        match m.group.process(p, &commit).unwrap() {
            Received::Commit(staged) => {
                assert_eq!(staged.removed(), old.as_slice());
                m.group.merge(*staged).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    members.push(Member {
        identity: id,
        group,
    });
    assert_agree(members);
}

#[test]
fn lifecycle_suite_1_public_handshakes() {
    lifecycle(CipherSuite(1), false);
}

#[test]
fn lifecycle_suite_3_private_handshakes() {
    lifecycle(CipherSuite(3), true);
}

#[test]
fn lifecycle_suite_2_p256() {
    lifecycle(CipherSuite(2), false);
}

#[test]
fn lifecycle_suite_5_p521_private() {
    lifecycle(CipherSuite(5), true);
}

#[test]
fn corrupt_state_is_an_error_never_a_panic() {
    let p = RustCrypto::default();
    let mut members = alice_alone(&p, CipherSuite(1), b"g", false);
    add(&p, &mut members, 0, "bob", false);
    let bytes = members[0].group.export_state().unwrap();
    for cut in 0..bytes.len() {
        assert!(
            Group::import_state(&bytes[..cut], Arc::new(BasicCredentialsOnly)).is_err(),
            "prefix {cut}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Group::import_state(&longer, Arc::new(BasicCredentialsOnly)).is_err());
    let mut version = bytes.clone();
    version[5] ^= 0x80;
    assert!(matches!(
        Group::import_state(&version, Arc::new(BasicCredentialsOnly)),
        Err(conclave_mls::Error::StateVersion(_))
    ));
    for i in (0..bytes.len()).step_by(7) {
        let mut flipped = bytes.clone();
        flipped[i] ^= 0xff;
        let _ = Group::import_state(&flipped, Arc::new(BasicCredentialsOnly));
    }
}

/// Custom proposal types (§12.1): accepted only when every member lists the type in its
/// capabilities; carried as opaque data to the application. GREASE values in capabilities and
/// extensions are tolerated (§13.5).
#[test]
fn custom_proposals_gated_by_capabilities_and_grease_tolerated() {
    use conclave_mls::key_package::default_capabilities;
    use conclave_mls::messages::{Extension, ExtensionType, Proposal, ProposalType};
    let p = RustCrypto::default();
    let suite = CipherSuite(1);
    let custom = ProposalType(0xF0A0);
    let grease_ext = ExtensionType(0x1A1A);
    let caps = |id: &Identity, with_custom: bool| {
        let mut c = default_capabilities(id);
        if with_custom {
            c.proposals.push(custom);
        }
        c.proposals.push(ProposalType(0x2A2A)); // GREASE
        c.extensions.push(grease_ext);
        c
    };
    let alice = basic_identity(&p, suite, "alice");
    let mut alice_group = create_group(&p, &alice, b"c", config(false));
    // Bob supports the custom type and sends GREASE in his capabilities and leaf extensions.
    let bob = basic_identity(&p, suite, "bob");
    let mut opts = one_day();
    opts.capabilities = Some(caps(&bob, true));
    opts.leaf_extensions = vec![Extension {
        extension_type: grease_ext,
        extension_data: b"grease".to_vec().into(),
    }];
    let mut bob_group = add_and_join(&p, &mut alice_group, &bob, opts);
    // Alice's leaf does not list the custom type: Bob may not propose it.
    let proposal = Proposal::Custom {
        proposal_type: custom,
        data: b"payload".to_vec().into(),
    };
    assert!(matches!(
        bob_group.propose(&p, proposal.clone()),
        Err(conclave_mls::Error::ProposalInvalid(_))
    ));
    assert!(
        bob_group
            .commit()
            .proposal(proposal.clone())
            .build(&p)
            .is_err()
    );
    // In a group where every member lists the type, it goes through to the application.
    let carol = basic_identity(&p, suite, "carol");
    let carol_config = config(false).with_leaf_capabilities(caps(&carol, true));
    let mut carol_group = create_group(&p, &carol, b"c2", carol_config);
    let dave = basic_identity(&p, suite, "dave");
    let mut opts = one_day();
    opts.capabilities = Some(caps(&dave, true));
    let mut dave_group = add_and_join(&p, &mut carol_group, &dave, opts);
    let message = dave_group.propose(&p, proposal.clone()).unwrap();
    assert!(matches!(
        carol_group.process(&p, &message).unwrap(),
        Received::Proposal { .. }
    ));
    let out = carol_group.commit().build(&p).unwrap();
    assert!(matches!(
        carol_group.process(&p, &out.commit).unwrap(),
        Received::OwnCommit
    ));
    let Received::Commit(staged) = dave_group.process(&p, &out.commit).unwrap() else {
        panic!()
    };
    assert_eq!(staged.proposals(), std::slice::from_ref(&proposal));
    dave_group.merge(*staged).unwrap();
    assert_eq!(
        carol_group.epoch_authenticator(),
        dave_group.epoch_authenticator()
    );
    let grease = Proposal::Custom {
        proposal_type: ProposalType(0x3A3A),
        data: vec![].into(),
    };
    assert!(matches!(
        bob_group.propose(&p, grease),
        Err(conclave_mls::Error::ProposalInvalid(_))
    ));
    assert_eq!(
        alice_group.epoch_authenticator(),
        bob_group.epoch_authenticator()
    );
}
