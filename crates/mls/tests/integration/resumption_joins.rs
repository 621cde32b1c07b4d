//! Joining a group that continues another one: the new group of a ReInit (RFC 9420 §11.2)
//! and a branched subgroup (§11.3). Real Welcomes are accepted by `Group::join_reinit` and
//! `Group::join_branch`; each rule the joiner checks is then broken once — by the honest API
//! where it allows it, otherwise by a forging creator — and the join is refused with the
//! error naming that rule.
//!
//! A forging creator is a member of the old group who builds the new group by hand instead
//! of with `Group::reinit_group` / `Group::branch`: it creates a group with the parameters of
//! its choosing, registers the old group's resumption PSK and commits it with a reinit or
//! branch usage. The library lets a PreSharedKey carry such a usage only in the first commit
//! of a group made by ReInit or branching (§12.1.4); the forger sets that mark by editing its
//! own exported state (the last byte of the state format), as a modified client could — and
//! likewise puts the old group's PSK among its own when it reuses the old group's id.

use crate::common;

use common::{
    basic_identity as identity, join_request, key_package, required_capabilities, welcome_of,
};
use conclave_mls::Error;
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{Group, GroupConfig, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity, IdentityValidator};
use conclave_mls::internal::tree::LeafIndex;
use conclave_mls::key_package::KeyPackageSecrets;
use conclave_mls::messages::{
    Credential, Extension, KeyPackage, PreSharedKeyId, Proposal, ProtocolVersion, Psk, ReInit,
    ResumptionPskUsage, SignaturePublicKey, Welcome,
};
use std::sync::Arc;

const SUITE: CipherSuite = CipherSuite(1);
/// Another suite with the same hash (SHA-256), so PSKs of the old group fit it.
const NEW_SUITE: CipherSuite = CipherSuite(3);
const OLD_ID: &[u8] = b"old group";
const NEW_ID: &[u8] = b"new group";

/// Alice, Bob and Carol in `OLD_ID` (suite 1), all at the same epoch.
struct Old {
    p: RustCrypto,
    alice: (Identity, Group),
    bob: (Identity, Group),
    carol: (Identity, Group),
}

impl Old {
    fn new() -> Self {
        let p = RustCrypto::default();
        let alice_id = identity(&p, SUITE, "alice");
        let mut alice = common::create(
            &p,
            &alice_id,
            OLD_ID.to_vec(),
            vec![],
            GroupConfig::default(),
            Arc::new(BasicCredentialsOnly),
        )
        .unwrap();
        let bob_id = identity(&p, SUITE, "bob");
        let carol_id = identity(&p, SUITE, "carol");
        let (bob_kp, bob_secrets) = key_package(&p, &bob_id);
        let (carol_kp, carol_secrets) = key_package(&p, &carol_id);
        let out = alice
            .commit()
            .add_member(bob_kp.clone())
            .add_member(carol_kp.clone())
            .build(&p)
            .unwrap();
        alice.merge_pending_commit().unwrap();
        let welcome = welcome_of(out.welcome.as_ref().unwrap());
        let join = |id: &Identity, kp: &KeyPackage, secrets: &KeyPackageSecrets| {
            common::join(&p, request(id, kp, secrets, welcome)).unwrap()
        };
        let bob = join(&bob_id, &bob_kp, &bob_secrets);
        let carol = join(&carol_id, &carol_kp, &carol_secrets);
        let mut old = Old {
            p,
            alice: (alice_id, alice),
            bob: (bob_id, bob),
            carol: (carol_id, carol),
        };
        // One more epoch, so that a PSK of an earlier epoch is at hand.
        old.alice_commits(vec![]);
        old
    }

    /// Alice commits `proposals`; Bob and Carol process the commit.
    fn alice_commits(&mut self, proposals: Vec<Proposal>) {
        let mut builder = self.alice.1.commit();
        for proposal in proposals {
            builder = builder.proposal(proposal);
        }
        let out = builder.build(&self.p).unwrap();
        self.alice.1.merge_pending_commit().unwrap();
        for group in [&mut self.bob.1, &mut self.carol.1] {
            match group.process(&self.p, &out.commit).unwrap() {
                Received::Commit(staged) => group.merge(*staged).unwrap(),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            self.alice.1.epoch_authenticator(),
            self.bob.1.epoch_authenticator()
        );
    }

    /// Alice commits a ReInit into `NEW_ID`, suite `NEW_SUITE`, with `extensions`.
    fn close(&mut self, version: ProtocolVersion, extensions: Vec<Extension>) -> ReInit {
        let reinit = ReInit {
            group_id: NEW_ID.to_vec().into(),
            version,
            cipher_suite: NEW_SUITE,
            extensions,
        };
        self.alice_commits(vec![Proposal::ReInit(reinit.clone())]);
        assert_eq!(self.bob.1.reinit(), Some(&reinit));
        reinit
    }

    /// The resumption PSK id of `OLD_ID`'s `epoch` with `usage`.
    fn psk_id(&self, usage: ResumptionPskUsage, epoch: u64) -> PreSharedKeyId {
        PreSharedKeyId {
            psk: Psk::Resumption {
                usage,
                psk_group_id: OLD_ID.to_vec().into(),
                psk_epoch: epoch,
            },
            psk_nonce: vec![7; 32].into(),
        }
    }
}

fn request<'a>(
    identity: &'a Identity,
    key_package: &'a KeyPackage,
    secrets: &'a KeyPackageSecrets,
    welcome: &'a Welcome,
) -> common::JoinRequest<'a> {
    request_with(
        identity,
        key_package,
        secrets,
        welcome,
        Arc::new(BasicCredentialsOnly),
    )
}

fn request_with<'a>(
    identity: &'a Identity,
    key_package: &'a KeyPackage,
    secrets: &'a KeyPackageSecrets,
    welcome: &'a Welcome,
    validator: Arc<dyn IdentityValidator>,
) -> common::JoinRequest<'a> {
    let config = GroupConfig::default();
    join_request(identity, key_package, secrets, welcome, config, validator)
}

/// How a forging creator builds its new group.
struct Forgery {
    /// The creator's identity (its suite is the new group's).
    creator: Identity,
    group_id: Vec<u8>,
    extensions: Vec<Extension>,
    /// Empty commits before the one that adds the joiners (0: the Welcome is for epoch 1).
    extra_epochs: usize,
    /// Resumption PSKs to inject with the adding commit, each with its value's source epoch.
    psks: Vec<PreSharedKeyId>,
    /// The mark that lets those PSKs through the creator's own proposal checks.
    mark: Option<ResumptionPskUsage>,
}

impl Forgery {
    fn new(creator: Identity, group_id: &[u8]) -> Self {
        Forgery {
            creator,
            group_id: group_id.to_vec(),
            extensions: vec![],
            extra_epochs: 0,
            psks: vec![],
            mark: None,
        }
    }

    /// Builds the group from `old_member`'s state of the old group; returns the Welcome for
    /// `key_packages`.
    fn build(self, p: &RustCrypto, old_member: &Group, key_packages: &[KeyPackage]) -> Welcome {
        let mut group = common::create(
            p,
            &self.creator,
            self.group_id,
            self.extensions,
            GroupConfig::default(),
            Arc::new(BasicCredentialsOnly),
        )
        .unwrap();
        for _ in 0..self.extra_epochs {
            group.commit().build(p).unwrap();
            group.merge_pending_commit().unwrap();
        }
        // A PSK naming the forger's own group id is looked up among the group's own epochs:
        // the forger puts the old group's value in place of its current epoch's.
        let mut own_psk = None;
        for id in &self.psks {
            if let Psk::Resumption {
                psk_group_id,
                psk_epoch,
                ..
            } = &id.psk
            {
                // The value comes from the old group when it names the old group, else any.
                let value = old_member
                    .resumption_psk(*psk_epoch)
                    .or_else(|| old_member.resumption_psk(old_member.epoch()))
                    .unwrap()
                    .clone();
                if psk_group_id.as_slice() == group.group_id() {
                    own_psk = Some((*psk_epoch, value));
                } else {
                    group.add_resumption_psk(psk_group_id.as_slice().to_vec(), *psk_epoch, value);
                }
            }
        }
        if self.mark.is_some() || own_psk.is_some() {
            let mut state = group.export_state().unwrap();
            if let Some(usage) = self.mark {
                *state.last_mut().unwrap() = usage as u8;
            }
            if let Some((epoch, value)) = own_psk {
                // State entry of a resumption PSK: u64 epoch, u32 length, the bytes.
                let entry = |epoch: u64, psk: &[u8]| {
                    let mut e = epoch.to_be_bytes().to_vec();
                    e.extend_from_slice(&u32::try_from(psk.len()).unwrap().to_be_bytes());
                    e.extend_from_slice(psk);
                    e
                };
                let current = group.resumption_psk(group.epoch()).unwrap();
                let from = entry(group.epoch(), current.as_bytes());
                let to = entry(epoch, value.as_bytes());
                let at = state
                    .windows(from.len())
                    .position(|w| w == from.as_slice())
                    .unwrap();
                state[at..at + to.len()].copy_from_slice(&to);
            }
            group = Group::import_state(&state, Arc::new(BasicCredentialsOnly)).unwrap();
        }
        let mut builder = group.commit();
        for id in self.psks {
            builder = builder.psk(id);
        }
        for kp in key_packages {
            builder = builder.add_member(kp.clone());
        }
        let out = builder.build(p).unwrap();
        welcome_of(out.welcome.as_ref().unwrap()).clone()
    }
}

// ---------------------------------------------------------------------------------------
// ReInit (§11.2)
// ---------------------------------------------------------------------------------------

/// Bob's KeyPackage in `suite` for the new group.
fn bob_new(old: &Old, suite: CipherSuite) -> (Identity, KeyPackage, KeyPackageSecrets) {
    let id = Identity::generate(&old.p, suite, old.bob.0.credential.clone()).unwrap();
    let (kp, secrets) = key_package(&old.p, &id);
    (id, kp, secrets)
}

/// A forged ReInit group: Alice in `suite`, the reinit PSK of the closing epoch.
fn reinit_forgery(old: &Old, suite: CipherSuite, group_id: &[u8]) -> Forgery {
    let creator = Identity::generate(&old.p, suite, old.alice.0.credential.clone()).unwrap();
    let mut forgery = Forgery::new(creator, group_id);
    forgery.psks = vec![old.psk_id(ResumptionPskUsage::Reinit, old.alice.1.epoch())];
    forgery.mark = Some(ResumptionPskUsage::Reinit);
    forgery
}

/// Bob joins the forged group's Welcome with `join_reinit`.
fn bob_joins_reinit(old: &Old, forgery: Forgery, bob_suite: CipherSuite) -> Result<Group, Error> {
    let (id, kp, secrets) = bob_new(old, bob_suite);
    let welcome = forgery.build(&old.p, &old.alice.1, std::slice::from_ref(&kp));
    common::join_resuming(
        &old.p,
        common::Resumes::ReInit(&old.bob.1),
        request(&id, &kp, &secrets, &welcome),
    )
}

#[test]
fn reinit_welcome_is_accepted_by_join_reinit_only() {
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let (bob_id, bob_kp, bob_secrets) = bob_new(&old, NEW_SUITE);
    let creator = Identity::generate(&old.p, NEW_SUITE, old.alice.0.credential.clone()).unwrap();
    let (mut new, out) = old
        .alice
        .1
        .reinit_group(
            &old.p,
            &creator,
            vec![bob_kp.clone()],
            GroupConfig::default(),
        )
        .unwrap();
    new.merge_pending_commit().unwrap();
    let welcome = welcome_of(out.welcome.as_ref().unwrap());
    let req = || request(&bob_id, &bob_kp, &bob_secrets, welcome);

    // §11.2: "Resumption PSKs with usage `reinit` MUST NOT be used in other contexts".
    assert_eq!(
        common::join(&old.p, req()).unwrap_err(),
        Error::ResumptionPskOutOfContext {
            usage: ResumptionPskUsage::Reinit
        }
    );
    assert_eq!(
        common::join_resuming(&old.p, common::Resumes::Branch(&old.bob.1), req()).unwrap_err(),
        Error::ResumptionPskUsageMismatch {
            expected: ResumptionPskUsage::Branch,
            got: ResumptionPskUsage::Reinit
        }
    );
    // The ReInit join needs a group the ReInit closed.
    let open = Old::new();
    assert_eq!(
        common::join_resuming(&old.p, common::Resumes::ReInit(&open.bob.1), req()).unwrap_err(),
        Error::OldGroupNotReInitialized
    );

    // Nothing was lost by the refusals: the same KeyPackage and old group join now.
    let bob = common::join_resuming(&old.p, common::Resumes::ReInit(&old.bob.1), req()).unwrap();
    assert_eq!(bob.group_id(), NEW_ID);
    assert_eq!(bob.cipher_suite(), NEW_SUITE);
    assert_eq!(bob.epoch(), 1);
    assert_eq!(bob.epoch_authenticator(), new.epoch_authenticator());
    assert!(old.bob.1.reinit().is_some(), "the old group is untouched");
}

#[test]
fn reinit_with_the_honest_parameters_by_hand_is_accepted() {
    // The forging path itself, with nothing wrong, yields an acceptable Welcome.
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    let bob = bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap();
    assert_eq!(bob.epoch(), 1);
}

#[test]
fn reinit_in_another_cipher_suite_is_refused() {
    // The ReInit says suite 3; the creator stays in suite 1 (and so does Bob's KeyPackage).
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let forgery = reinit_forgery(&old, SUITE, NEW_ID);
    assert_eq!(
        bob_joins_reinit(&old, forgery, SUITE).unwrap_err(),
        Error::ReInitCipherSuiteMismatch
    );
}

#[test]
fn reinit_under_another_group_id_is_refused() {
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let forgery = reinit_forgery(&old, NEW_SUITE, b"not the ReInit's id");
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ReInitGroupIdMismatch
    );
}

#[test]
fn reinit_with_other_extensions_is_refused() {
    // The ReInit names a required_capabilities extension; the creator leaves it out.
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![required_capabilities()]);
    let forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ReInitExtensionsMismatch
    );
    // And the other way round: extensions the ReInit did not name.
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let mut forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    forgery.extensions = vec![required_capabilities()];
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ReInitExtensionsMismatch
    );
}

#[test]
fn reinit_in_another_version_is_refused() {
    // The ReInit asks for a later protocol version; the new group is still mls10.
    let mut old = Old::new();
    old.close(ProtocolVersion(2), vec![]);
    let forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ReInitVersionMismatch
    );
}

#[test]
fn reinit_welcome_not_for_epoch_one_is_refused() {
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let mut forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    forgery.extra_epochs = 1;
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ResumptionEpochNotOne { epoch: 2 }
    );
}

#[test]
fn reinit_psk_of_another_epoch_is_refused() {
    // §11.2: the PSK's epoch is the one after the commit covering the ReInit.
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let closing = old.alice.1.epoch();
    let mut forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    forgery.psks = vec![old.psk_id(ResumptionPskUsage::Reinit, closing - 1)];
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ReInitPskWrongEpoch {
            expected: closing,
            got: closing - 1
        }
    );
}

#[test]
fn reinit_psk_of_another_group_is_refused() {
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let mut forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    forgery.psks = vec![PreSharedKeyId {
        psk: Psk::Resumption {
            usage: ResumptionPskUsage::Reinit,
            psk_group_id: b"some other group".to_vec().into(),
            psk_epoch: old.alice.1.epoch(),
        },
        psk_nonce: vec![7; 32].into(),
    }];
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ResumptionPskWrongGroup
    );
}

#[test]
fn reinit_welcome_without_reinit_psk_is_refused() {
    // A plain new group with the ReInit's parameters but no link to the old group.
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let mut forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    forgery.psks = vec![];
    forgery.mark = None;
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::ResumptionPskAbsent {
            expected: ResumptionPskUsage::Reinit
        }
    );
}

#[test]
fn welcome_with_two_reinit_psks_is_refused() {
    // §12.4.3.1: a reinit or branch PSK must be the only such PSK.
    let mut old = Old::new();
    old.close(ProtocolVersion::MLS10, vec![]);
    let closing = old.alice.1.epoch();
    let mut forgery = reinit_forgery(&old, NEW_SUITE, NEW_ID);
    forgery.psks = vec![
        old.psk_id(ResumptionPskUsage::Reinit, closing),
        old.psk_id(ResumptionPskUsage::Reinit, closing - 1),
    ];
    assert_eq!(
        bob_joins_reinit(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::WelcomeMultipleResumptionPsks
    );
}

// ---------------------------------------------------------------------------------------
// Branching (§11.3)
// ---------------------------------------------------------------------------------------

/// Alice branches `OLD_ID` into `NEW_ID` with `key_packages`; returns the Welcome.
fn alice_branches(old: &Old, key_packages: Vec<KeyPackage>) -> (Group, Welcome) {
    let (mut group, out) = old
        .alice
        .1
        .branch(
            &old.p,
            &old.alice.0,
            NEW_ID.to_vec(),
            vec![],
            key_packages,
            GroupConfig::default(),
        )
        .unwrap();
    group.merge_pending_commit().unwrap();
    (group, welcome_of(out.welcome.as_ref().unwrap()).clone())
}

/// A forged branch: Alice in `suite`, the branch PSK of the current epoch.
fn branch_forgery(old: &Old, suite: CipherSuite, group_id: &[u8]) -> Forgery {
    let creator = if suite == SUITE {
        old.alice.0.clone()
    } else {
        Identity::generate(&old.p, suite, old.alice.0.credential.clone()).unwrap()
    };
    let mut forgery = Forgery::new(creator, group_id);
    forgery.psks = vec![old.psk_id(ResumptionPskUsage::Branch, old.alice.1.epoch())];
    forgery.mark = Some(ResumptionPskUsage::Branch);
    forgery
}

/// Bob joins the forged branch with `join_branch`, with a KeyPackage in `suite`.
fn bob_joins_branch(old: &Old, forgery: Forgery, suite: CipherSuite) -> Result<Group, Error> {
    let (id, kp, secrets) = bob_new(old, suite);
    let welcome = forgery.build(&old.p, &old.alice.1, std::slice::from_ref(&kp));
    common::join_resuming(
        &old.p,
        common::Resumes::Branch(&old.bob.1),
        request(&id, &kp, &secrets, &welcome),
    )
}

#[test]
fn branch_welcome_is_accepted_by_join_branch_only() {
    let old = Old::new();
    let (bob_kp, bob_secrets) = key_package(&old.p, &old.bob.0);
    let (new, welcome) = alice_branches(&old, vec![bob_kp.clone()]);
    let req = || request(&old.bob.0, &bob_kp, &bob_secrets, &welcome);

    // §11.3: "Resumption PSKs with usage `branch` MUST NOT be used in other contexts".
    assert_eq!(
        common::join(&old.p, req()).unwrap_err(),
        Error::ResumptionPskOutOfContext {
            usage: ResumptionPskUsage::Branch
        }
    );
    let mut closed = Old::new();
    closed.close(ProtocolVersion::MLS10, vec![]);
    assert_eq!(
        common::join_resuming(&old.p, common::Resumes::ReInit(&closed.bob.1), req()).unwrap_err(),
        Error::ResumptionPskUsageMismatch {
            expected: ResumptionPskUsage::Reinit,
            got: ResumptionPskUsage::Branch
        }
    );
    // Another group that happens to have the same id and epoch: its resumption PSK is not
    // the one the branch injected, so the GroupInfo does not decrypt.
    let other = Old::new();
    assert_eq!(
        common::join_resuming(&old.p, common::Resumes::Branch(&other.bob.1), req()).unwrap_err(),
        Error::GroupInfoDecryptFailed
    );

    let bob = common::join_resuming(&old.p, common::Resumes::Branch(&old.bob.1), req()).unwrap();
    assert_eq!(bob.group_id(), NEW_ID);
    assert_eq!(bob.epoch(), 1);
    assert_eq!(bob.members().count(), 2);
    assert_eq!(bob.epoch_authenticator(), new.epoch_authenticator());
}

#[test]
fn branch_from_an_earlier_epoch_is_accepted() {
    // Alice branches at epoch e; Bob has moved on to e + 1 but still keeps e's PSK.
    let mut old = Old::new();
    let (bob_kp, bob_secrets) = key_package(&old.p, &old.bob.0);
    let (new, welcome) = alice_branches(&old, vec![bob_kp.clone()]);
    old.alice_commits(vec![]);
    let bob = common::join_resuming(
        &old.p,
        common::Resumes::Branch(&old.bob.1),
        request(&old.bob.0, &bob_kp, &bob_secrets, &welcome),
    )
    .unwrap();
    assert_eq!(bob.epoch_authenticator(), new.epoch_authenticator());
}

#[test]
fn branch_with_a_leaf_not_in_the_old_group_is_refused() {
    // Alice's branch adds Dave, who never was in the old group.
    let old = Old::new();
    let (bob_kp, bob_secrets) = key_package(&old.p, &old.bob.0);
    let dave = identity(&old.p, SUITE, "dave");
    let (dave_kp, _) = key_package(&old.p, &dave);
    let (new, welcome) = alice_branches(&old, vec![bob_kp.clone(), dave_kp]);
    let dave_leaf = new
        .members()
        .find(|m| *m.credential == dave.credential)
        .map(|m| m.leaf)
        .unwrap();
    assert_eq!(
        common::join_resuming(
            &old.p,
            common::Resumes::Branch(&old.bob.1),
            request(&old.bob.0, &bob_kp, &bob_secrets, &welcome)
        )
        .unwrap_err(),
        Error::BranchLeafNotInOldGroup { leaf: dave_leaf }
    );
}

/// Basic credentials whose names are compared without regard to case: "Carol" and "carol"
/// are the same client to this application.
struct CaseInsensitive;

impl IdentityValidator for CaseInsensitive {
    fn validate(&self, credential: &Credential, key: &SignaturePublicKey) -> Result<(), Error> {
        BasicCredentialsOnly.validate(credential, key)
    }
    fn valid_successor(&self, old: &Credential, new: &Credential) -> Result<(), Error> {
        BasicCredentialsOnly.valid_successor(old, new)
    }
    fn client_id(&self, credential: &Credential) -> Option<Vec<u8>> {
        match credential {
            Credential::Basic { identity } => Some(identity.as_slice().to_ascii_lowercase()),
            _ => None,
        }
    }
}

#[test]
fn branch_leaves_match_by_the_applications_notion_of_identity() {
    // Carol comes back as "CAROL": not an equal credential, but the same client to an
    // application that ignores case (§11.3: "considered equivalent by the application").
    let old = Old::new();
    let (bob_kp, bob_secrets) = key_package(&old.p, &old.bob.0);
    let carol_again = identity(&old.p, SUITE, "CAROL");
    let (carol_kp, _) = key_package(&old.p, &carol_again);
    let (new, welcome) = alice_branches(&old, vec![bob_kp.clone(), carol_kp]);
    let strict = common::join_resuming(
        &old.p,
        common::Resumes::Branch(&old.bob.1),
        request(&old.bob.0, &bob_kp, &bob_secrets, &welcome),
    );
    assert!(matches!(strict, Err(Error::BranchLeafNotInOldGroup { .. })));
    let bob = common::join_resuming(
        &old.p,
        common::Resumes::Branch(&old.bob.1),
        request_with(
            &old.bob.0,
            &bob_kp,
            &bob_secrets,
            &welcome,
            Arc::new(CaseInsensitive),
        ),
    )
    .unwrap();
    assert_eq!(bob.epoch_authenticator(), new.epoch_authenticator());
    assert_eq!(bob.own_leaf(), LeafIndex(1));
}

#[test]
fn branch_with_the_honest_parameters_by_hand_is_accepted() {
    let old = Old::new();
    let forgery = branch_forgery(&old, SUITE, NEW_ID);
    assert_eq!(bob_joins_branch(&old, forgery, SUITE).unwrap().epoch(), 1);
}

#[test]
fn branch_in_another_cipher_suite_is_refused() {
    let old = Old::new();
    let forgery = branch_forgery(&old, NEW_SUITE, NEW_ID);
    assert_eq!(
        bob_joins_branch(&old, forgery, NEW_SUITE).unwrap_err(),
        Error::BranchCipherSuiteMismatch
    );
}

#[test]
fn branch_welcome_not_for_epoch_one_is_refused() {
    let old = Old::new();
    let mut forgery = branch_forgery(&old, SUITE, NEW_ID);
    forgery.extra_epochs = 2;
    assert_eq!(
        bob_joins_branch(&old, forgery, SUITE).unwrap_err(),
        Error::ResumptionEpochNotOne { epoch: 3 }
    );
}

#[test]
fn branch_reusing_the_old_group_id_is_refused() {
    let old = Old::new();
    let forgery = branch_forgery(&old, SUITE, OLD_ID);
    assert_eq!(
        bob_joins_branch(&old, forgery, SUITE).unwrap_err(),
        Error::BranchGroupIdReused
    );
}

#[test]
fn branch_psk_of_another_group_is_refused() {
    let old = Old::new();
    let mut forgery = branch_forgery(&old, SUITE, NEW_ID);
    forgery.psks = vec![PreSharedKeyId {
        psk: Psk::Resumption {
            usage: ResumptionPskUsage::Branch,
            psk_group_id: b"some other group".to_vec().into(),
            psk_epoch: old.alice.1.epoch(),
        },
        psk_nonce: vec![7; 32].into(),
    }];
    assert_eq!(
        bob_joins_branch(&old, forgery, SUITE).unwrap_err(),
        Error::ResumptionPskWrongGroup
    );
}

#[test]
fn branch_welcome_without_branch_psk_is_refused() {
    let old = Old::new();
    let mut forgery = branch_forgery(&old, SUITE, NEW_ID);
    forgery.psks = vec![];
    forgery.mark = None;
    assert_eq!(
        bob_joins_branch(&old, forgery, SUITE).unwrap_err(),
        Error::ResumptionPskAbsent {
            expected: ResumptionPskUsage::Branch
        }
    );
}

#[test]
fn plain_welcome_with_a_branch_psk_is_refused() {
    // A Welcome for epoch 2 of an ordinary-looking group that smuggles in a branch PSK:
    // `Group::join` refuses it whatever the epoch.
    let old = Old::new();
    let mut forgery = branch_forgery(&old, SUITE, NEW_ID);
    forgery.extra_epochs = 1;
    let (kp, secrets) = key_package(&old.p, &old.bob.0);
    let welcome = forgery.build(&old.p, &old.alice.1, std::slice::from_ref(&kp));
    let mut req = request(&old.bob.0, &kp, &secrets, &welcome);
    let epoch = old.bob.1.epoch();
    req.resumption_psks.insert(
        (OLD_ID.to_vec(), epoch),
        old.bob.1.resumption_psk(epoch).unwrap().clone(),
    );
    assert_eq!(
        common::join(&old.p, req).unwrap_err(),
        Error::ResumptionPskOutOfContext {
            usage: ResumptionPskUsage::Branch
        }
    );
}
