//! Hostile inputs (RFC 9420 §6, §12): every case feeds a forged, replayed, stale or malformed
//! message to a live group and checks that (1) it is refused with its own [`Error`] variant
//! and (2) the receiving group's exported state is byte-identical before and after.
//!
//! Where one check necessarily fires before another (the membership tag covers the
//! confirmation tag; the tree hash covers parent hashes), the test documents the order and
//! reaches the later check by another route.

use crate::common;

use common::{basic, basic_identity, join_request, key_package, now, welcome_of};
use conclave_mls::Error;
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{CipherSuite, RustCrypto, Secret, SuiteCrypto};
use conclave_mls::group::{Group, GroupConfig, HandshakeWireFormat, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity, IdentityValidator};
use conclave_mls::internal::protection;
use conclave_mls::internal::secret_tree::RatchetPolicy;
use conclave_mls::internal::tree::treekem::sign_leaf_node;
use conclave_mls::internal::tree::{LeafIndex, RatchetTree};
use conclave_mls::key_package::KeyPackageSecrets;
use conclave_mls::messages::{
    Add, Commit, Credential, CredentialType, Extension, FramedContent, FramedContentBody,
    GroupContextExtensions, KeyPackage, Mac, MlsMessage, MlsMessageBody, Node, Proposal,
    ProposalOrRef, ProposalRef, ProtocolVersion, PublicMessage, ReInit, Remove, Sender,
    SignaturePublicKey, Welcome,
};
use std::sync::Arc;

const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;

/// A basic identity named `name` in this file's suite.
fn identity(p: &RustCrypto, name: &str) -> Identity {
    basic_identity(p, SUITE, name)
}

struct Member {
    id: Identity,
    group: Group,
}

/// A group of `names.len()` members; member `i` uses `configs(i)` and `validators(i)`.
fn group_with(
    p: &RustCrypto,
    names: &[&str],
    config: impl Fn(usize) -> GroupConfig,
    validator: impl Fn(usize) -> Arc<dyn IdentityValidator>,
) -> Vec<Member> {
    let creator = identity(p, names[0]);
    let mut first = common::create(
        p,
        &creator,
        b"hostile".to_vec(),
        vec![],
        config(0),
        validator(0),
    )
    .unwrap();
    if names.len() == 1 {
        return vec![Member {
            id: creator,
            group: first,
        }];
    }
    let mut builder = first.commit();
    let mut joiners = Vec::new();
    for name in &names[1..] {
        let id = identity(p, name);
        let (kp, secrets) = key_package(p, &id);
        builder = builder.add_member(kp.clone());
        joiners.push((id, kp, secrets));
    }
    let out = builder.build(p).unwrap();
    first.merge_pending_commit().unwrap();
    let welcome = welcome_of(out.welcome.as_ref().unwrap());
    let mut members = vec![Member {
        id: creator,
        group: first,
    }];
    for (i, (id, kp, secrets)) in joiners.into_iter().enumerate() {
        let request = join_request(&id, &kp, &secrets, welcome, config(i + 1), validator(i + 1));
        let group = common::join(p, request).unwrap();
        members.push(Member { id, group });
    }
    members
}

/// The members of the groups built below, in order.
const NAMES: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

/// A group of the first `n` of `NAMES`, all with the default config and basic validator.
fn group(p: &RustCrypto, n: usize) -> Vec<Member> {
    group_configured(p, n, GroupConfig::default())
}

/// A group of the first `n` of `NAMES`, all with `config` and the basic validator.
fn group_configured(p: &RustCrypto, n: usize, config: GroupConfig) -> Vec<Member> {
    group_with(p, &NAMES[..n], |_| config.clone(), |_| basic())
}

fn private_handshakes() -> GroupConfig {
    GroupConfig::default().with_handshake_wire_format(HandshakeWireFormat::Private)
}

/// Delivers a commit to everyone; the committer merges its own.
fn deliver(p: &RustCrypto, members: &mut [Member], commit: &MlsMessage) {
    for m in members.iter_mut() {
        match m.group.process(p, commit).unwrap() {
            Received::OwnCommit => {}
            Received::Commit(staged) => m.group.merge(*staged).unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Round-trips a message through its wire encoding, as a Delivery Service would.
fn wire(m: &MlsMessage) -> MlsMessage {
    MlsMessage::decode(&m.encode().unwrap()).unwrap()
}

/// Processes `message` in `group`, asserting it fails and leaves the state untouched.
fn reject(p: &RustCrypto, group: &mut Group, message: &MlsMessage) -> Error {
    let before = group.export_state().unwrap();
    let err = group
        .process(p, message)
        .expect_err("a hostile message was accepted");
    assert_eq!(
        before,
        group.export_state().unwrap(),
        "state changed after rejecting with {err:?}"
    );
    err
}

fn public(m: &MlsMessage) -> PublicMessage {
    match &m.body {
        MlsMessageBody::PublicMessage(pm) => pm.clone(),
        _ => panic!("not a PublicMessage"),
    }
}

fn wrap_public(pm: PublicMessage) -> MlsMessage {
    MlsMessage {
        version: ProtocolVersion::MLS10,
        body: MlsMessageBody::PublicMessage(pm),
    }
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at] ^= 0x01;
    v
}

/// A NewMemberProposal Add of `kp`, signed by `signer` (§12.1.8.2: it must be the
/// KeyPackage's own key).
fn new_member_add(p: &RustCrypto, group: &Group, kp: &KeyPackage, signer: &Identity) -> MlsMessage {
    let crypto = SuiteCrypto::new(p, SUITE).unwrap();
    let content = FramedContent {
        group_id: group.group_id().to_vec().into(),
        epoch: group.epoch(),
        sender: Sender::NewMemberProposal,
        authenticated_data: vec![].into(),
        body: FramedContentBody::Proposal(Proposal::Add(Add {
            key_package: kp.clone(),
        })),
    };
    let pm = protection::protect_public(
        &crypto,
        &signer.signer,
        &keys_of(group.context(), None),
        content,
        protection::no_confirmation,
    )
    .unwrap();
    wrap_public(pm)
}

#[test]
fn bad_content_signature() {
    let p = RustCrypto::default();
    let mut m = group(&p, 2);
    let dave = identity(&p, "dave");
    let eve = identity(&p, "eve");
    let (kp, _) = key_package(&p, &dave);
    // Signed by Eve, claiming to be Dave's KeyPackage: no membership tag protects a
    // new member's proposal, so the signature check is what refuses it.
    let forged = new_member_add(&p, &m[0].group, &kp, &eve);
    let err = reject(&p, &mut m[0].group, &forged);
    assert!(matches!(err, Error::InvalidContentSignature), "{err:?}");
    // One flipped signature byte of a genuine one fails the same way.
    let mut pm = public(&new_member_add(&p, &m[0].group, &kp, &dave));
    pm.auth.signature = flip(pm.auth.signature.as_slice(), 5).into();
    let err = reject(&p, &mut m[0].group, &wrap_public(pm));
    assert!(matches!(err, Error::InvalidContentSignature), "{err:?}");
    // Control: the genuine proposal is accepted.
    let genuine = new_member_add(&p, &m[0].group, &kp, &dave);
    assert!(matches!(
        m[0].group.process(&p, &genuine).unwrap(),
        Received::Proposal { .. }
    ));
}

#[test]
fn wrong_membership_tag() {
    let p = RustCrypto::default();
    let mut m = group(&p, 3);
    let proposal = m[1].group.propose_update(&p).unwrap();
    let mut pm = public(&proposal);
    let tag = pm.membership_tag.clone().unwrap();
    pm.membership_tag = Some(Mac::from(flip(tag.as_slice(), 0)));
    let err = reject(&p, &mut m[0].group, &wrap_public(pm.clone()));
    assert!(matches!(err, Error::MembershipTagMismatch), "{err:?}");
    // A member's PublicMessage without any membership tag.
    pm.membership_tag = None;
    let err = reject(&p, &mut m[0].group, &wrap_public(pm));
    assert!(matches!(err, Error::MissingMembershipTag), "{err:?}");
    // A flipped signature byte is caught by the membership tag first: it covers the auth data.
    let mut pm = public(&proposal);
    pm.auth.signature = flip(pm.auth.signature.as_slice(), 3).into();
    let err = reject(&p, &mut m[0].group, &wrap_public(pm));
    assert!(matches!(err, Error::MembershipTagMismatch), "{err:?}");
    // Control.
    assert!(matches!(
        m[0].group.process(&p, &proposal).unwrap(),
        Received::Proposal { .. }
    ));
}

/// An external commit into `m`'s group by a fresh client; returns the commit.
fn external_commit(p: &RustCrypto, m: &mut [Member], joiner: &Identity) -> MlsMessage {
    let info = match m[0].group.group_info(p).unwrap().body {
        MlsMessageBody::GroupInfo(gi) => gi,
        _ => unreachable!(),
    };
    let (_, commit) = common::join_external(
        p,
        common::ExternalJoinRequest {
            identity: joiner,
            group_info: &info,
            ratchet_tree: None,
            resync: None,
            authenticated_data: vec![],
            config: GroupConfig::default(),
            validator: basic(),
        },
    )
    .unwrap();
    commit
}

/// Re-signs an external commit after `edit` changed its content (the committer's own key
/// signs; no membership tag exists for a new member).
fn resign_external(
    p: &RustCrypto,
    group: &Group,
    commit: &MlsMessage,
    signer: &Identity,
    edit: impl FnOnce(&mut Commit),
) -> MlsMessage {
    let crypto = SuiteCrypto::new(p, SUITE).unwrap();
    let pm = public(commit);
    let tag = pm.auth.confirmation_tag.clone().unwrap();
    let mut content = pm.content.clone();
    let FramedContentBody::Commit(c) = &mut content.body else {
        unreachable!()
    };
    edit(c);
    let pm = protection::protect_public(
        &crypto,
        &signer.signer,
        &keys_of(group.context(), None),
        content,
        |_| Ok(tag),
    )
    .unwrap();
    wrap_public(pm)
}

#[test]
fn wrong_confirmation_tag() {
    let p = RustCrypto::default();
    let mut m = group(&p, 3);
    // Order: a member's PublicMessage commit has a membership tag over the auth data, so a
    // flipped confirmation tag is caught there first.
    let out = m[1].group.commit().force_path().build(&p).unwrap();
    let mut pm = public(&out.commit);
    let tag = pm.auth.confirmation_tag.clone().unwrap();
    pm.auth.confirmation_tag = Some(Mac::from(flip(tag.as_slice(), 0)));
    let err = reject(&p, &mut m[0].group, &wrap_public(pm));
    assert!(matches!(err, Error::MembershipTagMismatch), "{err:?}");
    m[1].group.clear_pending_commit();
    // An external commit has no membership tag, and the signature does not cover the
    // confirmation tag (§6.1): the key schedule's check is what refuses it.
    let frank = identity(&p, "frank");
    let commit = external_commit(&p, &mut m, &frank);
    let mut pm = public(&commit);
    let tag = pm.auth.confirmation_tag.clone().unwrap();
    pm.auth.confirmation_tag = Some(Mac::from(flip(tag.as_slice(), 7)));
    let forged = wrap_public(pm);
    for member in m.iter_mut() {
        let err = reject(&p, &mut member.group, &forged);
        assert!(matches!(err, Error::ConfirmationTagMismatch), "{err:?}");
    }
    // Control: the genuine external commit is accepted.
    deliver(&p, &mut m, &commit);
}

#[test]
fn replayed_private_messages() {
    let p = RustCrypto::default();
    let mut m = group_configured(&p, 3, private_handshakes());
    // Application.
    let ct = wire(&m[1].group.encrypt_application(&p, b"once", b"").unwrap());
    assert!(matches!(
        m[0].group.process(&p, &ct).unwrap(),
        Received::Application { .. }
    ));
    let err = reject(&p, &mut m[0].group, &ct);
    assert!(matches!(err, Error::RatchetKeyUsed { .. }), "{err:?}");
    // Handshake: a proposal as a PrivateMessage.
    let proposal = wire(&m[1].group.propose_update(&p).unwrap());
    assert!(matches!(&proposal.body, MlsMessageBody::PrivateMessage(_)));
    assert!(matches!(
        m[0].group.process(&p, &proposal).unwrap(),
        Received::Proposal { .. }
    ));
    let err = reject(&p, &mut m[0].group, &proposal);
    assert!(matches!(err, Error::RatchetKeyUsed { .. }), "{err:?}");
    // Handshake: a commit as a PrivateMessage, replayed after it was merged is for an old
    // epoch (handshake messages of a past epoch are stale).
    let out = m[2].group.commit().force_path().build(&p).unwrap();
    let commit = wire(&out.commit);
    let before = m[0].group.export_state().unwrap();
    let Received::Commit(staged) = m[0].group.process(&p, &commit).unwrap() else {
        panic!()
    };
    // A commit processed but not merged: replaying it hits the spent handshake key.
    let err = reject(&p, &mut m[0].group, &commit);
    assert!(matches!(err, Error::RatchetKeyUsed { .. }), "{err:?}");
    assert_ne!(before, m[0].group.export_state().unwrap());
    m[0].group.merge(*staged).unwrap();
    // Replayed after the merge, it is for the past epoch whose handshake key is spent: the
    // kept keys of a past epoch (`past_epochs`) catch it before the epoch check.
    let err = reject(&p, &mut m[0].group, &commit);
    assert!(matches!(err, Error::RatchetKeyUsed { .. }), "{err:?}");
    // A handshake of the past epoch that was never seen is refused as stale.
    let late = wire(&m[1].group.propose_update(&p).unwrap());
    let err = reject(&p, &mut m[0].group, &late);
    assert!(matches!(err, Error::WrongEpoch { .. }), "{err:?}");
}

#[test]
fn generation_too_far_ahead() {
    let p = RustCrypto::default();
    let config = GroupConfig::default().with_ratchet(RatchetPolicy::new(4, 8));
    let mut m = group_configured(&p, 2, config);
    let mut sent = Vec::new();
    for i in 0..12u8 {
        sent.push(m[1].group.encrypt_application(&p, &[i], b"").unwrap());
    }
    // Generation 11 is more than 8 ahead of generation 0.
    let err = reject(&p, &mut m[0].group, &sent[11]);
    assert!(
        matches!(err, Error::RatchetTooFarAhead { generation: 11, .. }),
        "{err:?}"
    );
    // Control: within the distance it decrypts, and a skipped key beyond the tolerance is
    // gone afterwards.
    assert!(matches!(
        m[0].group.process(&p, &sent[8]).unwrap(),
        Received::Application { .. }
    ));
    let err = reject(&p, &mut m[0].group, &sent[0]);
    assert!(matches!(err, Error::RatchetKeyUsed { .. }), "{err:?}");
    assert!(matches!(
        m[0].group.process(&p, &sent[11]).unwrap(),
        Received::Application { .. }
    ));
}

#[test]
fn message_from_removed_member() {
    let p = RustCrypto::default();
    let config = GroupConfig::default().with_past_epochs(0);
    let mut m = group_configured(&p, 3, config);
    // Carol keeps a copy of her state from before her removal.
    let carol_old = m[2].group.export_state().unwrap();
    let out = m[0]
        .group
        .commit()
        .remove_member(LeafIndex(2))
        .build(&p)
        .unwrap();
    deliver(&p, &mut m, &out.commit);
    assert!(m[2].group.is_removed());
    // The removed member cannot send from its current state.
    assert!(matches!(
        m[2].group.encrypt_application(&p, b"x", b""),
        Err(Error::RemovedFromGroup)
    ));
    assert!(matches!(
        m[2].group.propose_update(&p),
        Err(Error::RemovedFromGroup)
    ));
    // From the stale copy, an application message and a proposal are for an epoch the
    // members no longer accept.
    let mut stale = Group::import_state(&carol_old, basic()).unwrap();
    let ct = stale.encrypt_application(&p, b"still here", b"").unwrap();
    let err = reject(&p, &mut m[1].group, &ct);
    assert!(
        matches!(
            err,
            Error::WrongEpoch {
                expected: 2,
                got: 1
            }
        ),
        "{err:?}"
    );
    let proposal = stale.propose_update(&p).unwrap();
    let err = reject(&p, &mut m[1].group, &proposal);
    assert!(matches!(err, Error::WrongEpoch { .. }), "{err:?}");
    // The same content moved to the current epoch fails the membership tag: Carol has no
    // membership key of it.
    let mut pm = public(&proposal);
    pm.content.epoch = m[1].group.epoch();
    let err = reject(&p, &mut m[1].group, &wrap_public(pm));
    assert!(matches!(err, Error::MembershipTagMismatch), "{err:?}");
    // A stale commit too.
    let out = stale.commit().force_path().build(&p).unwrap();
    let err = reject(&p, &mut m[1].group, &out.commit);
    assert!(matches!(err, Error::WrongEpoch { .. }), "{err:?}");
}

#[test]
fn epoch_older_than_window() {
    let p = RustCrypto::default();
    let config = GroupConfig::default().with_past_epochs(1);
    let mut m = group_configured(&p, 2, config);
    let old = m[1].group.encrypt_application(&p, b"late", b"").unwrap();
    let recent = m[1]
        .group
        .encrypt_application(&p, b"late too", b"")
        .unwrap();
    let epoch = m[1].group.epoch();
    let out = m[0].group.commit().force_path().build(&p).unwrap();
    deliver(&p, &mut m, &out.commit);
    // One epoch back is inside the window.
    assert!(matches!(
        m[0].group.process(&p, &recent).unwrap(),
        Received::Application { epoch: e, .. } if e == epoch
    ));
    let out = m[0].group.commit().force_path().build(&p).unwrap();
    deliver(&p, &mut m, &out.commit);
    let err = reject(&p, &mut m[0].group, &old);
    assert!(
        matches!(err, Error::WrongEpoch { expected, got } if got == epoch && expected == epoch + 2),
        "{err:?}"
    );
    // A future epoch is refused too.
    let mut future = old.clone();
    if let MlsMessageBody::PrivateMessage(pm) = &mut future.body {
        pm.epoch = epoch + 7;
    }
    let err = reject(&p, &mut m[0].group, &future);
    assert!(matches!(err, Error::WrongEpoch { .. }), "{err:?}");
}

/// Treats equal basic identities as the same client (§12.2: an Add of a client already in
/// the group is invalid).
struct SameNameSameClient;

impl IdentityValidator for SameNameSameClient {
    fn validate(&self, c: &Credential, k: &SignaturePublicKey) -> Result<(), Error> {
        BasicCredentialsOnly.validate(c, k)
    }
    fn valid_successor(&self, old: &Credential, new: &Credential) -> Result<(), Error> {
        BasicCredentialsOnly.valid_successor(old, new)
    }
    fn client_id(&self, credential: &Credential) -> Option<Vec<u8>> {
        match credential {
            Credential::Basic { identity } => Some(identity.as_slice().to_vec()),
            _ => None,
        }
    }
}

#[test]
fn add_of_client_already_in_group() {
    let p = RustCrypto::default();
    // Alice's policy accepts a second device with Bob's name; Carol's sees the same client.
    let mut m = group_with(
        &p,
        &NAMES[..3],
        |_| GroupConfig::default(),
        |i| {
            if i == 2 {
                Arc::new(SameNameSameClient)
            } else {
                basic()
            }
        },
    );
    // Sending side: a KeyPackage with the signature key of a member is refused by the builder.
    let (bob_again, _) = key_package(&p, &m[1].id);
    let err = m[0]
        .group
        .commit()
        .add_member(bob_again)
        .build(&p)
        .unwrap_err();
    assert!(
        matches!(err, Error::ProposalListInvalid(s) if s.contains("already in the group")),
        "{err:?}"
    );
    // Two Adds of one client in one commit.
    let dave = identity(&p, "dave");
    let (kp1, _) = key_package(&p, &dave);
    let (kp2, _) = key_package(&p, &dave);
    let err = m[0]
        .group
        .commit()
        .add_member(kp1)
        .add_member(kp2)
        .build(&p)
        .unwrap_err();
    assert!(
        matches!(err, Error::ProposalListInvalid(s) if s.contains("two Adds")),
        "{err:?}"
    );
    // Receiving side: a new device named "bob", which Carol's policy calls the same client.
    let bob2 = identity(&p, "bob");
    let (kp, _) = key_package(&p, &bob2);
    let out = m[0].group.commit().add_member(kp).build(&p).unwrap();
    let err = reject(&p, &mut m[2].group, &out.commit);
    assert!(
        matches!(err, Error::ProposalListInvalid(s) if s.contains("already in the group")),
        "{err:?}"
    );
    // Control: Bob's policy accepts it.
    assert!(matches!(
        m[1].group.process(&p, &out.commit).unwrap(),
        Received::Commit(_)
    ));
    // Two devices named "erin" with keys of their own, added in one commit: Carol's policy
    // sees one client twice, Bob's two clients.
    let erin_phone = identity(&p, "erin");
    let erin_laptop = identity(&p, "erin");
    let (kp1, _) = key_package(&p, &erin_phone);
    let (kp2, _) = key_package(&p, &erin_laptop);
    let out = m[1]
        .group
        .commit()
        .add_member(kp1)
        .add_member(kp2)
        .build(&p)
        .unwrap();
    let err = reject(&p, &mut m[2].group, &out.commit);
    assert!(
        matches!(err, Error::ProposalListInvalid(s) if s.contains("two Adds")),
        "{err:?}"
    );
}

#[test]
fn key_package_that_does_not_support_the_credentials_in_use() {
    let p = RustCrypto::default();
    let mut m = group(&p, 3);
    let dave = identity(&p, "dave");
    let (kp, _) = key_package(&p, &dave);
    // Dave's leaf supports only X.509, while every member uses a basic credential (§7.3).
    let x509_only = resigned_key_package(&p, &dave, &kp, |kp| {
        kp.tbs.leaf_node.content.capabilities.credentials = vec![CredentialType::X509];
    });
    let err = m[0]
        .group
        .commit()
        .add_member(x509_only.clone())
        .build(&p)
        .unwrap_err();
    assert!(
        matches!(err, Error::KeyPackageInvalid(s) if s.contains("credential types")),
        "{err:?}"
    );
    m[0].group.clear_pending_commit();
    let message = new_member_add(&p, &m[0].group, &x509_only, &dave);
    let err = reject(&p, &mut m[1].group, &message);
    assert!(
        matches!(err, Error::KeyPackageInvalid(s) if s.contains("credential types")),
        "{err:?}"
    );
    // Control: the same KeyPackage supporting both types is added, beside another newcomer.
    let both = resigned_key_package(&p, &dave, &kp, |kp| {
        kp.tbs.leaf_node.content.capabilities.credentials =
            vec![CredentialType::BASIC, CredentialType::X509];
    });
    let (erin, _) = key_package(&p, &identity(&p, "erin"));
    let out = m[0]
        .group
        .commit()
        .add_member(both)
        .add_member(erin)
        .build(&p)
        .unwrap();
    assert!(matches!(
        m[1].group.process(&p, &out.commit).unwrap(),
        Received::Commit(_)
    ));
}

/// `kp` re-signed by `id` after `edit` changed its leaf content and TBS: a KeyPackage
/// whose signatures are valid but whose keys are hostile.
fn resigned_key_package(
    p: &RustCrypto,
    id: &Identity,
    kp: &KeyPackage,
    edit: impl FnOnce(&mut KeyPackage),
) -> KeyPackage {
    let crypto = SuiteCrypto::new(p, SUITE).unwrap();
    let mut kp = kp.clone();
    edit(&mut kp);
    kp.tbs.leaf_node = sign_leaf_node(
        &crypto,
        kp.tbs.leaf_node.content.clone(),
        &id.signer,
        &[],
        LeafIndex(0),
    )
    .unwrap();
    kp.signature = crypto
        .sign_with_label(&id.signer, b"KeyPackageTBS", &kp.tbs.encode().unwrap())
        .unwrap()
        .into();
    kp
}

#[test]
fn key_package_with_duplicate_keys() {
    let p = RustCrypto::default();
    let mut m = group(&p, 2);
    let dave = identity(&p, "dave");
    let (kp, _) = key_package(&p, &dave);
    // Control: re-signing alone keeps it valid.
    let same = resigned_key_package(&p, &dave, &kp, |_| {});
    let message = new_member_add(&p, &m[0].group, &same, &dave);
    assert!(matches!(
        m[0].group.process(&p, &message).unwrap(),
        Received::Proposal { .. }
    ));
    // init_key equal to the leaf's encryption key (§10.1).
    let dup = resigned_key_package(&p, &dave, &kp, |kp| {
        kp.tbs.init_key = kp
            .tbs
            .leaf_node
            .content
            .encryption_key
            .as_slice()
            .to_vec()
            .into();
    });
    let message = new_member_add(&p, &m[0].group, &dup, &dave);
    let err = reject(&p, &mut m[0].group, &message);
    assert!(
        matches!(err, Error::KeyPackageInvalid(s) if s.contains("init key")),
        "{err:?}"
    );
    let err = m[0].group.commit().add_member(dup).build(&p).unwrap_err();
    assert!(matches!(err, Error::KeyPackageInvalid(_)), "{err:?}");
    m[0].group.clear_pending_commit();
    // A leaf encryption key that a member already holds (§7.3): refused when the Add is
    // applied to the tree.
    let bob_key = m[0]
        .group
        .internal_tree()
        .leaf(LeafIndex(1))
        .unwrap()
        .content
        .encryption_key
        .clone();
    let erin = identity(&p, "erin");
    let (erin_kp, _) = key_package(&p, &erin);
    let clash = resigned_key_package(&p, &erin, &erin_kp, |kp| {
        kp.tbs.leaf_node.content.encryption_key = bob_key;
    });
    let before = m[0].group.export_state().unwrap();
    let err = m[0].group.commit().add_member(clash).build(&p).unwrap_err();
    assert!(
        matches!(err, Error::DuplicateEncryptionKey { .. }),
        "{err:?}"
    );
    assert_eq!(before, m[0].group.export_state().unwrap());
}

/// The membership key of the current epoch, recovered from a member's own exported state:
/// the test plays an insider who forges commits. The candidate that makes `genuine` (a
/// member's PublicMessage of this epoch) verify is the key.
fn membership_key(
    p: &RustCrypto,
    holder: &Group,
    genuine: &MlsMessage,
    sender: &Identity,
) -> Secret {
    let crypto = SuiteCrypto::new(p, SUITE).unwrap();
    let pm = public(genuine);
    let state = holder.export_state().unwrap();
    let n = crypto.hash_len();
    for start in 0..state.len().saturating_sub(n) {
        let candidate = Secret::from_slice(&state[start..start + n]);
        let ok = protection::unprotect_public(
            &crypto,
            &pm,
            &keys_of(holder.context(), Some(&candidate)),
            |_| Some(sender.signature_key.clone()),
        );
        if ok.is_ok() {
            return candidate;
        }
    }
    panic!("membership key not found in the state");
}

/// An insider's forged commit: `commit` as sent by `leaf`, signed with its key, tagged with
/// the real membership key and an arbitrary confirmation tag.
fn forge_commit(
    p: &RustCrypto,
    group: &Group,
    leaf: LeafIndex,
    signer: &Identity,
    key: &Secret,
    commit: Commit,
) -> MlsMessage {
    let crypto = SuiteCrypto::new(p, SUITE).unwrap();
    let content = FramedContent {
        group_id: group.group_id().to_vec().into(),
        epoch: group.epoch(),
        sender: Sender::Member(leaf.0),
        authenticated_data: vec![].into(),
        body: FramedContentBody::Commit(commit),
    };
    let pm = protection::protect_public(
        &crypto,
        &signer.signer,
        &keys_of(group.context(), Some(key)),
        content,
        |_| Ok(Mac::from(vec![0x5a; 32])),
    )
    .unwrap();
    wrap_public(pm)
}

/// The insider Bob's (leaf 1) forged commit of `proposals`, without a path.
fn forge_from_bob(
    p: &RustCrypto,
    m: &[Member],
    key: &Secret,
    proposals: Vec<ProposalOrRef>,
) -> MlsMessage {
    let commit = Commit {
        proposals,
        path: None,
    };
    forge_commit(p, &m[0].group, LeafIndex(1), &m[1].id, key, commit)
}

/// Rejects `message` at every member but the insider Bob (leaf 1), each time checking that
/// the state is untouched; returns the errors.
fn reject_by_all_but_bob(p: &RustCrypto, m: &mut [Member], message: &MlsMessage) -> Vec<Error> {
    [0, 2, 3]
        .into_iter()
        .map(|i| reject(p, &mut m[i].group, message))
        .collect()
}

/// Four members; Bob (leaf 1) is the insider. Returns the group and the membership key.
fn insider_setup(p: &RustCrypto) -> (Vec<Member>, Secret) {
    let mut m = group(p, 4);
    // A genuine PublicMessage of this epoch from Carol (never delivered), to recognise the
    // key by.
    let genuine = m[2].group.propose_update(p).unwrap();
    let key = membership_key(p, &m[1].group, &genuine, &m[2].id);
    (m, key)
}

fn by_value(proposals: Vec<Proposal>) -> Vec<ProposalOrRef> {
    proposals.into_iter().map(ProposalOrRef::Proposal).collect()
}

fn gce() -> Proposal {
    Proposal::GroupContextExtensions(GroupContextExtensions {
        extensions: Vec::<Extension>::new(),
    })
}

fn remove(leaf: u32) -> Proposal {
    Proposal::Remove(Remove { removed: leaf })
}

#[test]
fn forged_commits_breaking_proposal_list_rules() {
    let p = RustCrypto::default();
    let (mut m, key) = insider_setup(&p);
    let reinit = Proposal::ReInit(ReInit {
        group_id: b"next".to_vec().into(),
        version: ProtocolVersion::MLS10,
        cipher_suite: SUITE,
        extensions: vec![],
    });
    let cases: Vec<(Vec<Proposal>, &str)> = vec![
        (
            vec![remove(3), remove(3)],
            "two Updates/Removes for one leaf",
        ),
        (vec![remove(1)], "a Remove of the committer"),
        (vec![gce(), gce()], "two GroupContextExtensions"),
        (
            vec![reinit.clone(), remove(3)],
            "a ReInit with other proposals",
        ),
    ];
    for (proposals, rule) in cases {
        let forged = forge_from_bob(&p, &m, &key, by_value(proposals.clone()));
        for err in reject_by_all_but_bob(&p, &mut m, &forged) {
            assert!(
                matches!(err, Error::ProposalListInvalid(s) if s == rule),
                "{rule}: {err:?}"
            );
        }
        // The builder refuses the same list on the sending side.
        let mut builder = m[1].group.commit();
        for proposal in proposals {
            builder = builder.proposal(proposal);
        }
        let err = builder.build(&p).unwrap_err();
        assert!(
            matches!(err, Error::ProposalListInvalid(s) if s == rule),
            "{rule}: {err:?}"
        );
        assert!(!m[1].group.has_pending_commit());
    }
}

#[test]
fn forged_commit_removing_the_committer_by_reference() {
    let p = RustCrypto::default();
    let (mut m, key) = insider_setup(&p);
    // Carol proposes to remove Bob; Bob commits it by reference.
    let proposal = m[2].group.propose(&p, remove(1)).unwrap();
    let mut reference = None;
    for i in [0, 1, 3] {
        match m[i].group.process(&p, &proposal).unwrap() {
            Received::Proposal { reference: r, .. } => reference = Some(r),
            other => panic!("{other:?}"),
        }
    }
    let by_reference = vec![ProposalOrRef::Reference(reference.unwrap())];
    let forged = forge_from_bob(&p, &m, &key, by_reference);
    for err in reject_by_all_but_bob(&p, &mut m, &forged) {
        assert!(
            matches!(err, Error::ProposalListInvalid("a Remove of the committer")),
            "{err:?}"
        );
    }
}

#[test]
fn forged_commit_with_unknown_reference() {
    let p = RustCrypto::default();
    let (mut m, key) = insider_setup(&p);
    let unknown = ProposalOrRef::Reference(ProposalRef(vec![0xab; 32].into()));
    let forged = forge_from_bob(&p, &m, &key, vec![unknown]);
    let err = reject(&p, &mut m[0].group, &forged);
    assert!(matches!(err, Error::UnknownProposalRef), "{err:?}");
    // Genuinely: Dave's proposal reached Bob but not Alice; Bob's commit names it.
    let proposal = m[3].group.propose(&p, remove(2)).unwrap();
    assert!(matches!(
        m[1].group.process(&p, &proposal).unwrap(),
        Received::Proposal { .. }
    ));
    let out = m[1].group.commit().build(&p).unwrap();
    let err = reject(&p, &mut m[0].group, &out.commit);
    assert!(matches!(err, Error::UnknownProposalRef), "{err:?}");
    // Control: a member that has the proposal accepts the commit.
    assert!(matches!(
        m[3].group.process(&p, &out.commit).unwrap(),
        Received::Commit(_)
    ));
}

#[test]
fn forged_commit_missing_required_path() {
    let p = RustCrypto::default();
    let (mut m, key) = insider_setup(&p);
    for proposals in [vec![], vec![remove(3)], vec![gce()]] {
        let forged = forge_from_bob(&p, &m, &key, by_value(proposals));
        for err in reject_by_all_but_bob(&p, &mut m, &forged) {
            assert!(matches!(err, Error::PathRequired), "{err:?}");
        }
    }
}

#[test]
fn forged_commit_with_wrong_confirmation_tag() {
    let p = RustCrypto::default();
    let (mut m, key) = insider_setup(&p);
    // An Add needs no path, so the commit is valid up to its confirmation tag.
    let frank = identity(&p, "frank");
    let (kp, _) = key_package(&p, &frank);
    let add = by_value(vec![Proposal::Add(Add { key_package: kp })]);
    let forged = forge_from_bob(&p, &m, &key, add);
    for err in reject_by_all_but_bob(&p, &mut m, &forged) {
        assert!(matches!(err, Error::ConfirmationTagMismatch), "{err:?}");
    }
}

#[test]
fn forged_commit_claiming_to_be_ours() {
    let p = RustCrypto::default();
    let (mut m, key) = insider_setup(&p);
    let bob = m[1].id.clone();
    // Signed by Bob but naming Alice's leaf: the signature is checked with Alice's key.
    let forged = forge_commit(
        &p,
        &m[0].group,
        LeafIndex(0),
        &bob,
        &key,
        Commit {
            proposals: vec![],
            path: None,
        },
    );
    let err = reject(&p, &mut m[2].group, &forged);
    assert!(matches!(err, Error::InvalidContentSignature), "{err:?}");
}

/// A change made to a commit before it is re-signed.
type CommitEdit = Box<dyn Fn(&mut Commit)>;

#[test]
fn external_commit_with_forbidden_proposals() {
    let p = RustCrypto::default();
    let mut m = group(&p, 3);
    let frank = identity(&p, "frank");
    let commit = external_commit(&p, &mut m, &frank);
    let group = &m[0].group;
    let cases: Vec<(CommitEdit, &str)> = vec![
        (
            Box::new(|c: &mut Commit| c.proposals.extend(by_value(vec![remove(2), remove(2)]))),
            "two Updates/Removes for one leaf",
        ),
        (
            Box::new(|c: &mut Commit| c.proposals.extend(by_value(vec![gce(), gce()]))),
            "two GroupContextExtensions",
        ),
        (
            Box::new(|c: &mut Commit| c.proposals.extend(by_value(vec![gce()]))),
            "an external commit's proposals",
        ),
        (
            Box::new(|c: &mut Commit| c.proposals.retain(|_| false)),
            "an external commit's proposals",
        ),
    ];
    let forged: Vec<(MlsMessage, &str)> = cases
        .into_iter()
        .map(|(edit, rule)| (resign_external(&p, group, &commit, &frank, edit), rule))
        .collect();
    for (message, rule) in &forged {
        for member in m.iter_mut() {
            let err = reject(&p, &mut member.group, message);
            assert!(
                matches!(err, Error::ProposalListInvalid(s) if s == *rule),
                "{rule}: {err:?}"
            );
        }
    }
    // Without its path, an external commit has no key to verify its signature with.
    let stripped = resign_external(&p, &m[0].group, &commit, &frank, |c| c.path = None);
    let err = reject(&p, &mut m[0].group, &stripped);
    assert!(
        matches!(err, Error::UnknownSender(Sender::NewMemberCommit)),
        "{err:?}"
    );
    // Control: the re-signed but unchanged commit is accepted.
    let same = resign_external(&p, &m[0].group, &commit, &frank, |_| {});
    assert!(matches!(
        m[0].group.process(&p, &same).unwrap(),
        Received::Commit(_)
    ));
}

#[test]
fn welcome_for_someone_else() {
    let p = RustCrypto::default();
    let mut m = group(&p, 2);
    let dave = identity(&p, "dave");
    let erin = identity(&p, "erin");
    let (dave_kp, dave_secrets) = key_package(&p, &dave);
    let (erin_kp, erin_secrets) = key_package(&p, &erin);
    let out = m[0]
        .group
        .commit()
        .add_member(dave_kp.clone())
        .build(&p)
        .unwrap();
    let welcome = welcome_of(&wire(out.welcome.as_ref().unwrap())).clone();
    let join = |id: &Identity, kp: &KeyPackage, secrets: &KeyPackageSecrets, w: &Welcome| {
        let request = join_request(id, kp, secrets, w, GroupConfig::default(), basic());
        common::join(&p, request)
    };
    let err = join(&erin, &erin_kp, &erin_secrets, &welcome).unwrap_err();
    assert!(matches!(err, Error::WelcomeNotForUs), "{err:?}");
    // Erin's KeyPackage reference pasted onto Dave's entry: the secrets do not open.
    let crypto = SuiteCrypto::new(&p, SUITE).unwrap();
    let mut pasted = welcome.clone();
    pasted.secrets[0].new_member = erin_kp.reference(&crypto).unwrap();
    let err = join(&erin, &erin_kp, &erin_secrets, &pasted).unwrap_err();
    assert!(matches!(err, Error::GroupSecretsDecryptFailed), "{err:?}");
    // A corrupted GroupInfo ciphertext: the group secrets are HPKE-encrypted with the
    // encrypted GroupInfo as context (§12.4.3.1), so their decryption fails first.
    let mut corrupt = welcome.clone();
    corrupt.encrypted_group_info = flip(corrupt.encrypted_group_info.as_slice(), 3).into();
    let err = join(&dave, &dave_kp, &dave_secrets, &corrupt).unwrap_err();
    assert!(matches!(err, Error::GroupSecretsDecryptFailed), "{err:?}");
    // Control.
    join(&dave, &dave_kp, &dave_secrets, &welcome).unwrap();
}

#[test]
fn broken_parent_hash_in_joiner_tree() {
    let p = RustCrypto::default();
    let names = &NAMES[..3];
    let no_tree = || GroupConfig::default().with_ratchet_tree_extension(false);
    let mut m = group_with(&p, &names[..1], |_| no_tree(), |_| basic());
    // Grow with paths so that parent nodes are set.
    for name in &names[1..] {
        let id = identity(&p, name);
        let (kp, secrets) = key_package(&p, &id);
        let out = m[0]
            .group
            .commit()
            .add_member(kp.clone())
            .force_path()
            .build(&p)
            .unwrap();
        deliver(&p, &mut m, &out.commit);
        let welcome = welcome_of(out.welcome.as_ref().unwrap());
        let request = common::JoinRequest {
            ratchet_tree: Some(m[0].group.ratchet_tree()),
            ..join_request(&id, &kp, &secrets, welcome, no_tree(), basic())
        };
        let group = common::join(&p, request).unwrap();
        m.push(Member { id, group });
    }
    let out = m[0].group.commit().force_path().build(&p).unwrap();
    deliver(&p, &mut m, &out.commit);
    let dave = identity(&p, "dave");
    let (kp, secrets) = key_package(&p, &dave);
    let out = m[1]
        .group
        .commit()
        .add_member(kp.clone())
        .build(&p)
        .unwrap();
    m[1].group.merge_pending_commit().unwrap();
    let good = m[1].group.ratchet_tree();
    // Break a parent: flip a byte of the first non-blank parent's encryption key.
    let mut broken = good.clone();
    let at = broken
        .0
        .iter()
        .position(|n| matches!(n, Some(Node::Parent(_))))
        .expect("a parent node");
    let Some(Node::Parent(parent)) = &mut broken.0[at] else {
        unreachable!()
    };
    parent.encryption_key = flip(parent.encryption_key.as_slice(), 0).into();
    let welcome = welcome_of(out.welcome.as_ref().unwrap());
    let join = |tree| {
        let request = common::JoinRequest {
            ratchet_tree: Some(tree),
            ..join_request(&dave, &kp, &secrets, welcome, no_tree(), basic())
        };
        common::join(&p, request)
    };
    // Order: the tree hash covers every parent node, and is checked against the signed
    // GroupContext before the parent hashes.
    let err = join(broken.clone()).unwrap_err();
    assert!(matches!(err, Error::TreeHashMismatch), "{err:?}");
    // Against its own tree hash (a committer who signed the broken tree), the parent-hash
    // check is what refuses it.
    let crypto = SuiteCrypto::new(&p, SUITE).unwrap();
    let mut tree = RatchetTree::from_wire(broken).unwrap();
    let own_hash = tree.clone().root_hash(&crypto).unwrap();
    let err = tree
        .validate_for_join(&crypto, m[1].group.group_id(), &own_hash, Some(now()), None)
        .unwrap_err();
    assert!(matches!(err, Error::ParentHashMismatch { .. }), "{err:?}");
    // Control.
    join(good).unwrap();
}

#[test]
fn malformed_encodings() {
    let p = RustCrypto::default();
    let mut m = group(&p, 2);
    let out = m[0].group.commit().force_path().build(&p).unwrap();
    let bytes = out.commit.encode().unwrap();
    assert_eq!(MlsMessage::decode(&bytes).unwrap(), out.commit);
    // Every truncation.
    for len in 0..bytes.len() {
        let err = MlsMessage::decode(&bytes[..len]).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "len {len}: {err:?}");
    }
    // Trailing bytes.
    let mut long = bytes.clone();
    long.extend_from_slice(&[0, 0, 0]);
    let err = MlsMessage::decode(&long).unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    // The group id's length (offset 4, after version and wire format) in a two-byte form.
    assert_eq!(bytes[4] as usize, m[0].group.group_id().len());
    let mut non_minimal = bytes[..4].to_vec();
    non_minimal.extend_from_slice(&[0x40, bytes[4]]);
    non_minimal.extend_from_slice(&bytes[5..]);
    let err = MlsMessage::decode(&non_minimal).unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    // A four-byte length far beyond the input, and the reserved eight-byte prefix.
    for prefix in [
        &[0xbf, 0xff, 0xff, 0xff][..],
        &[0xc0, 0, 0, 0, 0, 0, 0, 7][..],
    ] {
        let mut huge = bytes[..4].to_vec();
        huge.extend_from_slice(prefix);
        huge.extend_from_slice(&bytes[5..]);
        let err = MlsMessage::decode(&huge).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
    }
    // Unknown version and wire format.
    let mut version = bytes.clone();
    version[1] = 9;
    match MlsMessage::decode(&version) {
        Err(e) => assert!(matches!(e, Error::Decode(_)), "{e:?}"),
        Ok(msg) => {
            let err = reject(&p, &mut m[1].group, &msg);
            assert!(matches!(err, Error::WrongProtocolVersion), "{err:?}");
        }
    }
    let mut format = bytes.clone();
    format[3] = 0x77;
    let err = MlsMessage::decode(&format).unwrap_err();
    assert!(matches!(err, Error::Decode(_)), "{err:?}");
    // A single flipped bit anywhere never panics and never changes the receiver.
    let before = m[1].group.export_state().unwrap();
    for i in 0..bytes.len() {
        let mangled = flip(&bytes, i);
        if let Ok(msg) = MlsMessage::decode(&mangled) {
            if msg == out.commit {
                continue;
            }
            assert!(m[1].group.process(&p, &msg).is_err(), "bit {i}");
        }
    }
    assert_eq!(before, m[1].group.export_state().unwrap());
}

#[test]
fn conflicting_cached_proposals_do_not_block_commits() {
    let p = RustCrypto::default();
    let mut m = group(&p, 4);
    // Bob and Carol both propose to remove Dave; a hostile new member proposes an Add whose
    // leaf reuses Bob's encryption key (valid alone, invalid once applied to the tree).
    let from_bob = m[1].group.propose(&p, remove(3)).unwrap();
    let from_carol = m[2].group.propose(&p, remove(3)).unwrap();
    let erin = identity(&p, "erin");
    let (erin_kp, _) = key_package(&p, &erin);
    let bob_key = m[0]
        .group
        .internal_tree()
        .leaf(LeafIndex(1))
        .unwrap()
        .content
        .encryption_key
        .clone();
    let clash = resigned_key_package(&p, &erin, &erin_kp, |kp| {
        kp.tbs.leaf_node.content.encryption_key = bob_key;
    });
    let hostile = new_member_add(&p, &m[0].group, &clash, &erin);
    for message in [&from_bob, &from_carol, &hostile] {
        for (i, member) in m.iter_mut().enumerate() {
            if (i == 1 && message == &from_bob) || (i == 2 && message == &from_carol) {
                continue;
            }
            assert!(matches!(
                member.group.process(&p, message).unwrap(),
                Received::Proposal { .. }
            ));
        }
    }
    // §12.2: the committer commits a valid subset of what it received, rather than being
    // unable to commit at all for the rest of the epoch.
    let out = m[0].group.commit().build(&p).unwrap();
    deliver(&p, &mut m, &out.commit);
    assert!(m[3].group.is_removed());
    assert_eq!(m[0].group.members().count(), 3);
    assert_eq!(
        m[0].group.epoch_authenticator(),
        m[1].group.epoch_authenticator()
    );
    // A by-value proposal that is itself invalid is still refused.
    let err = m[0]
        .group
        .commit()
        .remove_member(LeafIndex(0))
        .build(&p)
        .unwrap_err();
    assert!(
        matches!(err, Error::ProposalListInvalid("a Remove of the committer")),
        "{err:?}"
    );
}

#[test]
fn current_epoch_message_naming_a_removed_member() {
    let p = RustCrypto::default();
    let (mut m, _) = insider_setup(&p);
    let carol = m[2].id.clone();
    let out = m[0]
        .group
        .commit()
        .remove_member(LeafIndex(2))
        .build(&p)
        .unwrap();
    deliver(&p, &mut m, &out.commit);
    // The membership key of the new epoch, as the insider Bob holds it.
    let genuine = m[3].group.propose_update(&p).unwrap();
    let key = membership_key(&p, &m[1].group, &genuine, &m[3].id);
    // Carol's leaf is blank now: a correctly tagged message naming it, signed with her key.
    let crypto = SuiteCrypto::new(&p, SUITE).unwrap();
    let content = FramedContent {
        group_id: m[0].group.group_id().to_vec().into(),
        epoch: m[0].group.epoch(),
        sender: Sender::Member(2),
        authenticated_data: vec![].into(),
        body: FramedContentBody::Proposal(remove(1)),
    };
    let pm = protection::protect_public(
        &crypto,
        &carol.signer,
        &keys_of(m[0].group.context(), Some(&key)),
        content,
        protection::no_confirmation,
    )
    .unwrap();
    let err = reject(&p, &mut m[0].group, &wrap_public(pm));
    assert!(
        matches!(err, Error::SenderNotMember(LeafIndex(2))),
        "{err:?}"
    );
    // A commit naming the blank leaf, and one naming a leaf beyond the tree.
    for leaf in [2, 40] {
        let forged = forge_commit(
            &p,
            &m[0].group,
            LeafIndex(leaf),
            &carol,
            &key,
            Commit {
                proposals: vec![],
                path: None,
            },
        );
        let err = reject(&p, &mut m[0].group, &forged);
        assert!(
            matches!(err, Error::SenderNotMember(LeafIndex(l)) if l == leaf),
            "{err:?}"
        );
    }
}

#[test]
fn generation_beyond_the_default_window() {
    let p = RustCrypto::default();
    let mut m = group(&p, 2);
    let mut last = None;
    for i in 0..1002u32 {
        last = Some(
            m[1].group
                .encrypt_application(&p, &i.to_be_bytes(), b"")
                .unwrap(),
        );
    }
    // Generation 1001, more than the default 1000 ahead of generation 0.
    let err = reject(&p, &mut m[0].group, &last.unwrap());
    assert!(
        matches!(
            err,
            Error::RatchetTooFarAhead {
                generation: 1001,
                current: 0
            }
        ),
        "{err:?}"
    );
}

/// The keys a PublicMessage needs: `context` and, for a member, `membership_key`.
fn keys_of<'a>(
    context: &'a conclave_mls::messages::GroupContext,
    membership_key: Option<&'a conclave_mls::crypto::Secret>,
) -> protection::EpochKeys<'a> {
    static NO_SECRET: std::sync::LazyLock<conclave_mls::crypto::Secret> =
        std::sync::LazyLock::new(|| conclave_mls::crypto::Secret::new(Vec::new()));
    protection::EpochKeys {
        context,
        sender_data_secret: &NO_SECRET,
        membership_key,
    }
}
