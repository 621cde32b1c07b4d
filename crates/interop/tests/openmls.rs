//! Conclave ⇄ OpenMLS 0.9 (`openmls_rust_crypto`, basic credentials), in the suites both
//! implement: 1 (X25519/AES-128-GCM/Ed25519), 2 (P-256/AES-128-GCM/P-256) and 3
//! (X25519/ChaCha20-Poly1305/Ed25519). Every message crosses as serialized `MLSMessage` bytes.

use conclave_interop::{Conclave, EXPORTER_LABEL, Got};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// The OpenMLS side: provider, signer, credential, at most one group. By default handshake
/// messages go out as PublicMessages (Conclave's default) and both wire formats are accepted.
struct OpenMls {
    cs: Ciphersuite,
    policy: WireFormatPolicy,
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

impl OpenMls {
    fn new(name: &str, suite: u16) -> Self {
        let cs = Ciphersuite::try_from(suite).unwrap();
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(cs.signature_algorithm()).unwrap();
        signer.store(provider.storage()).unwrap();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Self {
            cs,
            policy: MIXED_PLAINTEXT_WIRE_FORMAT_POLICY,
            provider,
            signer,
            credential,
            group: None,
        }
    }

    fn group(&mut self) -> &mut MlsGroup {
        self.group.as_mut().expect("in a group")
    }

    fn key_package(&self) -> Vec<u8> {
        let bundle = KeyPackage::builder()
            .build(
                self.cs,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .unwrap();
        MlsMessageOut::from(bundle.key_package().clone())
            .tls_serialize_detached()
            .unwrap()
    }

    fn create_group(&mut self) {
        let group = MlsGroup::builder()
            .ciphersuite(self.cs)
            .use_ratchet_tree_extension(true)
            .with_wire_format_policy(self.policy)
            .build(&self.provider, &self.signer, self.credential.clone())
            .unwrap();
        self.group = Some(group);
    }

    fn join(&mut self, welcome: &[u8]) {
        let MlsMessageBodyIn::Welcome(welcome) = MlsMessageIn::tls_deserialize_exact(welcome)
            .unwrap()
            .extract()
        else {
            panic!("not a Welcome")
        };
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(self.policy)
            .build();
        let staged = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .expect("OpenMLS accepts Conclave's Welcome");
        self.group = Some(staged.into_group(&self.provider).unwrap());
    }

    /// Commits an Add of a KeyPackage (bytes) and merges; returns (commit, welcome).
    fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(key_package)
            .unwrap()
            .extract()
        else {
            panic!("not a KeyPackage")
        };
        let kp = kp
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .expect("OpenMLS accepts Conclave's KeyPackage");
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().unwrap();
        let (commit, welcome, _) = group.add_members(provider, signer, &[kp]).unwrap();
        group.merge_pending_commit(provider).unwrap();
        (
            commit.tls_serialize_detached().unwrap(),
            welcome.tls_serialize_detached().unwrap(),
        )
    }

    fn commit_update(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().unwrap();
        let (commit, _, _) = group
            .self_update(provider, signer, LeafNodeParameters::default())
            .unwrap()
            .into_contents();
        group.merge_pending_commit(provider).unwrap();
        commit.tls_serialize_detached().unwrap()
    }

    /// Commits a Remove of `leaf` and merges it.
    fn remove(&mut self, leaf: u32) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().unwrap();
        let (commit, _, _) = group
            .remove_members(provider, signer, &[LeafNodeIndex::new(leaf)])
            .unwrap();
        group.merge_pending_commit(provider).unwrap();
        commit.tls_serialize_detached().unwrap()
    }

    /// Proposes an Update of our own leaf; returns the proposal message.
    fn propose_update(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().unwrap();
        let (proposal, _) = group
            .propose_self_update(provider, signer, LeafNodeParameters::default())
            .unwrap();
        proposal.tls_serialize_detached().unwrap()
    }

    /// Proposes the removal of `leaf`; returns the proposal message.
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().unwrap();
        let (proposal, _) = group
            .propose_remove_member(provider, signer, LeafNodeIndex::new(leaf))
            .unwrap();
        proposal.tls_serialize_detached().unwrap()
    }

    /// Commits the stored proposals (by reference) and merges.
    fn commit_pending(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().unwrap();
        let (commit, _, _) = group.commit_to_pending_proposals(provider, signer).unwrap();
        group.merge_pending_commit(provider).unwrap();
        commit.tls_serialize_detached().unwrap()
    }

    /// A GroupInfo with the ratchet tree (and external_pub) as bytes.
    fn group_info(&mut self) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        self.group
            .as_ref()
            .unwrap()
            .export_group_info(provider.crypto(), signer, true)
            .unwrap()
            .tls_serialize_detached()
            .unwrap()
    }

    /// Joins by external commit from a GroupInfo (bytes); returns the commit.
    fn join_external(&mut self, group_info: &[u8]) -> Vec<u8> {
        let MlsMessageBodyIn::GroupInfo(info) = MlsMessageIn::tls_deserialize_exact(group_info)
            .unwrap()
            .extract()
        else {
            panic!("not a GroupInfo")
        };
        let config = MlsGroupJoinConfig::builder()
            .use_ratchet_tree_extension(true)
            .wire_format_policy(self.policy)
            .build();
        let (group, bundle) = MlsGroup::external_commit_builder()
            .with_config(config)
            .build_group(&self.provider, info, self.credential.clone())
            .expect("OpenMLS accepts Conclave's GroupInfo")
            .load_psks(self.provider.storage())
            .unwrap()
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .unwrap()
            .finalize(&self.provider)
            .unwrap();
        self.group = Some(group);
        bundle.into_contents().0.tls_serialize_detached().unwrap()
    }

    fn own_leaf(&mut self) -> u32 {
        self.group().own_leaf_index().u32()
    }

    fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let (provider, signer) = (&self.provider, &self.signer);
        let group = self.group.as_mut().unwrap();
        group
            .create_message(provider, signer, data)
            .unwrap()
            .tls_serialize_detached()
            .unwrap()
    }

    /// Processes a message (bytes); merges commits, stores proposals. Returns application data.
    fn receive(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let message = MlsMessageIn::tls_deserialize_exact(bytes)
            .unwrap()
            .try_into_protocol_message()
            .unwrap();
        let provider = &self.provider;
        let group = self.group.as_mut().unwrap();
        let processed = group
            .process_message(provider, message)
            .expect("OpenMLS processes Conclave's message");
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => Some(m.into_bytes()),
            ProcessedMessageContent::StagedCommitMessage(c) => {
                group.merge_staged_commit(provider, *c).unwrap();
                None
            }
            ProcessedMessageContent::ProposalMessage(p) => {
                group
                    .store_pending_proposal(provider.storage(), *p)
                    .unwrap();
                None
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    fn epoch_authenticator(&mut self) -> Vec<u8> {
        self.group().epoch_authenticator().as_slice().to_vec()
    }

    fn export(&mut self, context: &[u8]) -> Vec<u8> {
        let provider = &self.provider;
        self.group
            .as_ref()
            .unwrap()
            .export_secret(provider.crypto(), EXPORTER_LABEL, context, 32)
            .unwrap()
    }
}

/// Both sides agree on the epoch: authenticator and an exporter output.
fn assert_agree(c: &mut Conclave, o: &mut OpenMls) {
    assert_eq!(c.group().epoch(), o.group().epoch().as_u64());
    assert_eq!(c.epoch_authenticator(), o.epoch_authenticator());
    assert_eq!(c.export(b"ctx"), o.export(b"ctx"));
}

fn messages_both_ways(c: &mut Conclave, o: &mut OpenMls) {
    let ct = c.send(b"hello from Conclave");
    assert_eq!(o.receive(&ct).as_deref(), Some(&b"hello from Conclave"[..]));
    let ct = o.send(b"hello from OpenMLS");
    assert_eq!(c.receive_application(&ct), b"hello from OpenMLS");
}

fn commits_with_path_both_ways(c: &mut Conclave, o: &mut OpenMls) {
    let commit = o.commit_update();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(c, o);
    let commit = c.commit_update();
    assert_eq!(o.receive(&commit), None);
    assert_agree(c, o);
    messages_both_ways(c, o);
}

/// Scenario 1: Conclave creates the group and adds OpenMLS; OpenMLS joins from the Welcome.
fn conclave_creates_openmls_joins(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut o = OpenMls::new("openmls", suite);
    c.create_group(b"interop group 1");
    let (_commit, welcome) = c.add(&o.key_package());
    o.join(&welcome);
    assert_agree(&mut c, &mut o);
    messages_both_ways(&mut c, &mut o);
    commits_with_path_both_ways(&mut c, &mut o);
}

/// Scenario 2: OpenMLS creates the group and adds Conclave; Conclave joins; commits with a
/// path from each side.
fn openmls_creates_conclave_joins(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut o = OpenMls::new("openmls", suite);
    o.create_group();
    let (_commit, welcome) = o.add(&c.key_package());
    c.join(&welcome)
        .expect("Conclave accepts OpenMLS's Welcome");
    assert_agree(&mut c, &mut o);
    messages_both_ways(&mut c, &mut o);

    commits_with_path_both_ways(&mut c, &mut o);
}

/// Scenario 4a: Conclave removes OpenMLS; OpenMLS sees itself removed.
fn conclave_removes_openmls(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut o = OpenMls::new("openmls", suite);
    c.create_group(b"interop group 4a");
    let (_commit, welcome) = c.add(&o.key_package());
    o.join(&welcome);
    let leaf = o.own_leaf();
    let commit = c.commit(Some(leaf));
    assert_eq!(o.receive(&commit), None);
    assert!(!o.group().is_active());
    assert_eq!(c.group().members().count(), 1);
}

/// Scenario 4a: OpenMLS removes Conclave; Conclave sees itself removed.
fn openmls_removes_conclave(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut o = OpenMls::new("openmls", suite);
    o.create_group();
    let (_commit, welcome) = o.add(&c.key_package());
    c.join(&welcome).unwrap();
    let leaf = c.own_leaf();
    let commit = o.remove(leaf);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert!(c.is_removed());
    assert_eq!(o.group().members().count(), 1);
}

/// Scenario 4b: proposals by reference. OpenMLS proposes an Update, Conclave commits it;
/// then Conclave proposes an Update and OpenMLS commits it.
fn update_proposals_by_reference(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut o = OpenMls::new("openmls", suite);
    c.create_group(b"interop group 4b");
    let (_commit, welcome) = c.add(&o.key_package());
    o.join(&welcome);

    let proposal = o.propose_update();
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    assert_eq!(o.receive(&commit), None);
    assert_agree(&mut c, &mut o);
    messages_both_ways(&mut c, &mut o);

    let proposal = c.propose_update();
    assert_eq!(o.receive(&proposal), None);
    let commit = o.commit_pending();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut o);
    messages_both_ways(&mut c, &mut o);
}

/// Scenario 4c: Conclave joins OpenMLS's group by external commit.
fn conclave_joins_openmls_externally(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut o = OpenMls::new("openmls", suite);
    o.create_group();
    let commit = c
        .join_external(&o.group_info())
        .expect("Conclave accepts OpenMLS's GroupInfo");
    assert_eq!(o.receive(&commit), None);
    assert_agree(&mut c, &mut o);
    messages_both_ways(&mut c, &mut o);
}

/// Scenario 4c: OpenMLS joins Conclave's group by external commit.
fn openmls_joins_conclave_externally(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut o = OpenMls::new("openmls", suite);
    c.create_group(b"interop group 4c");
    let commit = o.join_external(&c.group_info());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut o);
    messages_both_ways(&mut c, &mut o);
}

/// A three-member group made by Conclave `a`: OpenMLS, then Conclave `b`.
fn three_members(suite: u16) -> (Conclave, OpenMls, Conclave) {
    let mut a = Conclave::new("conclave a", suite);
    let mut o = OpenMls::new("openmls", suite);
    let mut b = Conclave::new("conclave b", suite);
    a.create_group(b"interop group 4b3");
    let (_commit, welcome) = a.add(&o.key_package());
    o.join(&welcome);
    let (commit, welcome) = a.add(&b.key_package());
    assert_eq!(o.receive(&commit), None);
    b.join(&welcome).unwrap();
    assert_agree(&mut b, &mut o);
    (a, o, b)
}

/// Scenario 4b: Remove proposals by reference. OpenMLS proposes removing Conclave `b` and
/// Conclave `a` commits it; then Conclave `a` proposes it and OpenMLS commits it.
fn remove_proposals_by_reference(suite: u16) {
    let (mut a, mut o, mut b) = three_members(suite);
    let leaf = b.own_leaf();
    let proposal = o.propose_remove(leaf);
    assert_eq!(a.receive(&proposal).unwrap(), Got::Proposal);
    assert_eq!(b.receive(&proposal).unwrap(), Got::Proposal);
    let commit = a.commit(None);
    assert_eq!(o.receive(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_agree(&mut a, &mut o);
    assert_eq!(o.group().members().count(), 2);

    let (mut a, mut o, mut b) = three_members(suite);
    let leaf = b.own_leaf();
    let proposal = a.propose_remove(leaf);
    assert_eq!(o.receive(&proposal), None);
    assert_eq!(b.receive(&proposal).unwrap(), Got::Proposal);
    let commit = o.commit_pending();
    assert_eq!(a.receive(&commit).unwrap(), Got::Commit);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_agree(&mut a, &mut o);
    messages_both_ways(&mut a, &mut o);
}

/// Handshake messages as PrivateMessages on both sides (RFC 9420 §6.3): Conclave with
/// `HandshakeWireFormat::Private`, OpenMLS with its pure-ciphertext policy (which rejects
/// PublicMessages). Commits with a path and Update proposals by reference, both ways.
fn private_handshake(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    c.config.handshake_wire_format =
        conclave_interop::conclave_mls::group::HandshakeWireFormat::Private;
    let mut o = OpenMls::new("openmls", suite);
    o.policy = PURE_CIPHERTEXT_WIRE_FORMAT_POLICY;
    c.create_group(b"interop group private");
    let (_commit, welcome) = c.add(&o.key_package());
    o.join(&welcome);
    assert_agree(&mut c, &mut o);
    commits_with_path_both_ways(&mut c, &mut o);

    let proposal = o.propose_update();
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    // MLSMessage: version (2 bytes), then wire_format: mls_private_message(2).
    assert_eq!((&proposal[2..4], &commit[2..4]), (&[0, 2][..], &[0, 2][..]));
    assert_eq!(o.receive(&commit), None);
    assert_agree(&mut c, &mut o);
    let proposal = c.propose_update();
    assert_eq!(o.receive(&proposal), None);
    let commit = o.commit_pending();
    assert_eq!((&proposal[2..4], &commit[2..4]), (&[0, 2][..], &[0, 2][..]));
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut o);
    messages_both_ways(&mut c, &mut o);
}

/// A five-leaf group with blanks and unmerged leaves: Conclave `a` creates it and adds the
/// peer, then Conclave `b` and `c`; `a` removes `b` (a blank leaf); the peer adds Conclave
/// `d` (which takes the blank leaf, unmerged in its parents); then `c`, the peer and `d`
/// commit with a path. Every member processes every commit.
fn larger_group(suite: u16) {
    let mut a = Conclave::new("a", suite);
    let mut o = OpenMls::new("peer", suite);
    let mut b = Conclave::new("b", suite);
    let mut c = Conclave::new("c", suite);
    let mut d = Conclave::new("d", suite);
    a.create_group(b"interop larger group");
    let (_commit, welcome) = a.add(&o.key_package());
    o.join(&welcome);
    let (commit, welcome) = a.add(&b.key_package());
    assert_eq!(o.receive(&commit), None);
    b.join(&welcome).unwrap();
    let (commit, welcome) = a.add(&c.key_package());
    assert_eq!(o.receive(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    c.join(&welcome).unwrap();

    let leaf = b.own_leaf();
    let commit = a.commit(Some(leaf));
    assert_eq!(o.receive(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);

    let (commit, welcome) = o.add(&d.key_package());
    for x in [&mut a, &mut c] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    d.join(&welcome)
        .expect("Conclave joins from the peer's Welcome");
    assert_eq!(d.own_leaf(), leaf);

    let commit = c.commit_update();
    assert_eq!(o.receive(&commit), None);
    for x in [&mut a, &mut d] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    let commit = o.commit_update();
    for x in [&mut a, &mut c, &mut d] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    let commit = d.commit_update();
    assert_eq!(o.receive(&commit), None);
    for x in [&mut a, &mut c] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    for x in [&mut a, &mut c, &mut d] {
        assert_agree(x, &mut o);
    }
    let ct = o.send(b"to all");
    for x in [&mut a, &mut c, &mut d] {
        assert_eq!(x.receive_application(&ct), b"to all");
    }
    messages_both_ways(&mut d, &mut o);
}

/// Runs every scenario in one cipher suite, as `suite_N::scenario`.
macro_rules! in_suite {
    ($name:ident, $suite:expr) => {
        mod $name {
            #[test]
            fn conclave_creates_openmls_joins() {
                super::super::conclave_creates_openmls_joins($suite)
            }
            #[test]
            fn openmls_creates_conclave_joins() {
                super::super::openmls_creates_conclave_joins($suite)
            }
            #[test]
            fn conclave_removes_openmls() {
                super::super::conclave_removes_openmls($suite)
            }
            #[test]
            fn openmls_removes_conclave() {
                super::super::openmls_removes_conclave($suite)
            }
            #[test]
            fn remove_proposals_by_reference() {
                super::super::remove_proposals_by_reference($suite)
            }
            #[test]
            fn private_handshake() {
                super::super::private_handshake($suite)
            }
            #[test]
            fn larger_group() {
                super::super::larger_group($suite)
            }
            #[test]
            fn update_proposals_by_reference() {
                super::super::update_proposals_by_reference($suite)
            }
            #[test]
            fn conclave_joins_openmls_externally() {
                super::super::conclave_joins_openmls_externally($suite)
            }
            #[test]
            fn openmls_joins_conclave_externally() {
                super::super::openmls_joins_conclave_externally($suite)
            }
        }
    };
}

/// The suites both sides implement (RFC 9420 §17.1).
mod suites {
    in_suite!(suite_1, 1);
    in_suite!(suite_2, 2);
    in_suite!(suite_3, 3);
}
