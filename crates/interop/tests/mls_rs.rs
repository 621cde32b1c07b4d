//! Conclave ⇄ mls-rs 0.57 (`mls-rs-crypto-rustcrypto`, basic credentials), in suites 1
//! (X25519/AES-128-GCM/Ed25519), 2 (P-256/AES-128-GCM/P-256), 3
//! (X25519/ChaCha20-Poly1305/Ed25519) and 7 (P-384/AES-256-GCM/P-384). Every message
//! crosses as serialized `MLSMessage` bytes.

use conclave_interop::{Conclave, EXPORTER_LABEL, Got};
use mls_rs::client_builder::MlsConfig;
use mls_rs::group::{CommitEffect, ReceivedMessage};
use mls_rs::identity::SigningIdentity;
use mls_rs::identity::basic::{BasicCredential, BasicIdentityProvider};
use mls_rs::mls_rules::{DefaultMlsRules, EncryptionOptions};
use mls_rs::{CipherSuite, CipherSuiteProvider, Client, CryptoProvider, Group, MlsMessage};
use mls_rs_crypto_rustcrypto::RustCryptoProvider;

/// The mls-rs side: a client and at most one group. mls-rs sends handshake messages as
/// PublicMessages and puts the ratchet tree in Welcomes by default, like Conclave.
struct MlsRs<C: MlsConfig> {
    client: Client<C>,
    group: Option<Group<C>>,
}

fn mls_rs(name: &str, suite: u16) -> MlsRs<impl MlsConfig> {
    mls_rs_with(name, suite, false)
}

/// An mls-rs client that sends handshake messages as PrivateMessages if `private`.
fn mls_rs_with(name: &str, suite: u16, private: bool) -> MlsRs<impl MlsConfig> {
    let cs = CipherSuite::new(suite);
    let provider = RustCryptoProvider::default();
    let suite = provider.cipher_suite_provider(cs).unwrap();
    let (secret, public) = suite.signature_key_generate().unwrap();
    let credential = BasicCredential::new(name.as_bytes().to_vec()).into_credential();
    let client = Client::builder()
        .identity_provider(BasicIdentityProvider)
        .mls_rules(DefaultMlsRules::new().with_encryption_options({
            let mut options = EncryptionOptions::default();
            options.encrypt_control_messages = private;
            options
        }))
        .crypto_provider(provider)
        .signing_identity(SigningIdentity::new(credential, public), secret, cs)
        .build();
    MlsRs {
        client,
        group: None,
    }
}

impl<C: MlsConfig> MlsRs<C> {
    fn group(&mut self) -> &mut Group<C> {
        self.group.as_mut().expect("in a group")
    }

    fn key_package(&self) -> Vec<u8> {
        self.client
            .generate_key_package_message(Default::default(), Default::default(), None)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    fn create_group(&mut self) {
        self.group = Some(self.client.group_builder().unwrap().build().unwrap());
    }

    fn join(&mut self, welcome: &[u8]) {
        let welcome = MlsMessage::from_bytes(welcome).unwrap();
        let (group, _) = self
            .client
            .join_group(None, &welcome, None)
            .expect("mls-rs accepts Conclave's Welcome");
        self.group = Some(group);
    }

    /// Commits an Add of a KeyPackage (bytes) and applies it; returns (commit, welcome).
    fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let kp = MlsMessage::from_bytes(key_package).unwrap();
        let group = self.group();
        let out = group
            .commit_builder()
            .add_member(kp)
            .expect("mls-rs accepts Conclave's KeyPackage")
            .build()
            .unwrap();
        group.apply_pending_commit().unwrap();
        (
            out.commit_message.to_bytes().unwrap(),
            out.welcome_messages[0].to_bytes().unwrap(),
        )
    }

    /// Commits the received proposals by reference and applies it; with none, an empty
    /// commit, which carries a path (RFC 9420 §12.4).
    fn commit_update(&mut self) -> Vec<u8> {
        let group = self.group();
        let out = group.commit(vec![]).unwrap();
        group.apply_pending_commit().unwrap();
        out.commit_message.to_bytes().unwrap()
    }

    /// Commits a Remove of `leaf` and applies it.
    fn remove(&mut self, leaf: u32) -> Vec<u8> {
        let group = self.group();
        let out = group
            .commit_builder()
            .remove_member(leaf)
            .unwrap()
            .build()
            .unwrap();
        group.apply_pending_commit().unwrap();
        out.commit_message.to_bytes().unwrap()
    }

    /// Proposes an Update of our own leaf; returns the proposal message.
    fn propose_update(&mut self) -> Vec<u8> {
        self.group()
            .propose_update(vec![])
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    /// Proposes the removal of `leaf`; returns the proposal message.
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.group()
            .propose_remove(leaf, vec![])
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    /// A GroupInfo with the ratchet tree and external_pub, as bytes.
    fn group_info(&mut self) -> Vec<u8> {
        self.group()
            .group_info_message_allowing_ext_commit(true)
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    /// Joins by external commit from a GroupInfo (bytes); returns the commit.
    fn join_external(&mut self, group_info: &[u8]) -> Vec<u8> {
        let info = MlsMessage::from_bytes(group_info).unwrap();
        let (group, commit) = self
            .client
            .commit_external(info)
            .expect("mls-rs accepts Conclave's GroupInfo");
        self.group = Some(group);
        commit.to_bytes().unwrap()
    }

    /// Processes a commit (bytes) and says whether it removed us.
    fn receive_commit_removes_us(&mut self, bytes: &[u8]) -> bool {
        let message = MlsMessage::from_bytes(bytes).unwrap();
        match self.group().process_incoming_message(message).unwrap() {
            ReceivedMessage::Commit(c) => matches!(c.effect, CommitEffect::Removed { .. }),
            other => panic!("expected a commit, got {other:?}"),
        }
    }

    fn send(&mut self, data: &[u8]) -> Vec<u8> {
        self.group()
            .encrypt_application_message(data, vec![])
            .unwrap()
            .to_bytes()
            .unwrap()
    }

    /// Processes a message (bytes); commits are applied. Returns application data.
    fn receive(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        let message = MlsMessage::from_bytes(bytes).unwrap();
        match self
            .group()
            .process_incoming_message(message)
            .expect("mls-rs processes Conclave's message")
        {
            ReceivedMessage::ApplicationMessage(m) => Some(m.data().to_vec()),
            _ => None,
        }
    }

    fn epoch_authenticator(&mut self) -> Vec<u8> {
        self.group()
            .epoch_authenticator()
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    fn export(&mut self, context: &[u8]) -> Vec<u8> {
        self.group()
            .export_secret(EXPORTER_LABEL.as_bytes(), context, 32)
            .unwrap()
            .as_bytes()
            .to_vec()
    }
}

/// Both sides agree on the epoch: authenticator and an exporter output.
fn assert_agree<C: MlsConfig>(c: &mut Conclave, m: &mut MlsRs<C>) {
    assert_eq!(c.group().epoch(), m.group().current_epoch());
    assert_eq!(c.epoch_authenticator(), m.epoch_authenticator());
    assert_eq!(c.export(b"ctx"), m.export(b"ctx"));
}

fn messages_both_ways<C: MlsConfig>(c: &mut Conclave, m: &mut MlsRs<C>) {
    let ct = c.send(b"hello from Conclave");
    assert_eq!(m.receive(&ct).as_deref(), Some(&b"hello from Conclave"[..]));
    let ct = m.send(b"hello from mls-rs");
    assert_eq!(c.receive_application(&ct), b"hello from mls-rs");
}

fn commits_with_path_both_ways<C: MlsConfig>(c: &mut Conclave, m: &mut MlsRs<C>) {
    let commit = m.commit_update();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(c, m);
    let commit = c.commit_update();
    assert_eq!(m.receive(&commit), None);
    assert_agree(c, m);
    messages_both_ways(c, m);
}

/// Conclave creates the group and adds mls-rs; mls-rs joins from the Welcome.
fn conclave_creates_mls_rs_joins(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    c.create_group(b"interop group 3a");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);
}

/// mls-rs creates the group and adds Conclave; Conclave joins from the Welcome.
fn mls_rs_creates_conclave_joins(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    m.create_group();
    let (_commit, welcome) = m.add(&c.key_package());
    c.join(&welcome).expect("Conclave accepts mls-rs's Welcome");
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);
}

/// Conclave removes mls-rs; mls-rs sees itself removed.
fn conclave_removes_mls_rs(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    c.create_group(b"interop group 4a");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);
    let leaf = m.group().current_member_index();
    let commit = c.commit(Some(leaf));
    assert!(m.receive_commit_removes_us(&commit));
    assert_eq!(c.group().members().count(), 1);
}

/// mls-rs removes Conclave; Conclave sees itself removed.
fn mls_rs_removes_conclave(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    m.create_group();
    let (_commit, welcome) = m.add(&c.key_package());
    c.join(&welcome).unwrap();
    let leaf = c.own_leaf();
    let commit = m.remove(leaf);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert!(c.is_removed());
    assert_eq!(m.group().roster().members_iter().count(), 1);
}

/// Proposals by reference: mls-rs proposes an Update, Conclave commits it; then Conclave
/// proposes an Update and mls-rs commits it.
fn update_proposals_by_reference(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    c.create_group(b"interop group 4b");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);

    let proposal = m.propose_update();
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);

    let proposal = c.propose_update();
    assert_eq!(m.receive(&proposal), None);
    let commit = m.commit_update();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
}

/// Conclave joins mls-rs's group by external commit.
fn conclave_joins_mls_rs_externally(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    m.create_group();
    let commit = c
        .join_external(&m.group_info())
        .expect("Conclave accepts mls-rs's GroupInfo");
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
}

/// mls-rs joins Conclave's group by external commit.
fn mls_rs_joins_conclave_externally(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    c.create_group(b"interop group 4c");
    let commit = m.join_external(&c.group_info());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
}

/// A three-member group made by Conclave `a`: mls-rs, then Conclave `b`.
fn three_members(suite: u16) -> (Conclave, MlsRs<impl MlsConfig>, Conclave) {
    let mut a = Conclave::new("conclave a", suite);
    let mut m = mls_rs("mls-rs", suite);
    let mut b = Conclave::new("conclave b", suite);
    a.create_group(b"interop group 4b3");
    let (_commit, welcome) = a.add(&m.key_package());
    m.join(&welcome);
    let (commit, welcome) = a.add(&b.key_package());
    assert_eq!(m.receive(&commit), None);
    b.join(&welcome).unwrap();
    assert_agree(&mut b, &mut m);
    (a, m, b)
}

/// Remove proposals by reference. mls-rs proposes removing Conclave `b` and Conclave `a`
/// commits it; then Conclave `a` proposes it and mls-rs commits it.
fn remove_proposals_by_reference(suite: u16) {
    let (mut a, mut m, mut b) = three_members(suite);
    let leaf = b.own_leaf();
    let proposal = m.propose_remove(leaf);
    assert_eq!(a.receive(&proposal).unwrap(), Got::Proposal);
    assert_eq!(b.receive(&proposal).unwrap(), Got::Proposal);
    let commit = a.commit(None);
    assert_eq!(m.receive(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_agree(&mut a, &mut m);
    assert_eq!(m.group().roster().members_iter().count(), 2);

    let (mut a, mut m, mut b) = three_members(suite);
    let leaf = b.own_leaf();
    let proposal = a.propose_remove(leaf);
    assert_eq!(m.receive(&proposal), None);
    assert_eq!(b.receive(&proposal).unwrap(), Got::Proposal);
    let commit = m.commit_update();
    assert_eq!(a.receive(&commit).unwrap(), Got::Commit);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_agree(&mut a, &mut m);
    messages_both_ways(&mut a, &mut m);
}

/// Handshake messages as PrivateMessages on both sides (RFC 9420 §6.3): Conclave with
/// `HandshakeWireFormat::Private`, mls-rs with `encrypt_control_messages`. Commits with a
/// path and Update proposals by reference, both ways.
fn private_handshake(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    c.config.handshake_wire_format =
        conclave_interop::conclave_mls::group::HandshakeWireFormat::Private;
    let mut m = mls_rs_with("mls-rs", suite, true);
    c.create_group(b"interop group private");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);
    assert_agree(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);

    let proposal = m.propose_update();
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    // MLSMessage: version (2 bytes), then wire_format: mls_private_message(2).
    assert_eq!((&proposal[2..4], &commit[2..4]), (&[0, 2][..], &[0, 2][..]));
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    let proposal = c.propose_update();
    assert_eq!(m.receive(&proposal), None);
    let commit = m.commit_update();
    assert_eq!((&proposal[2..4], &commit[2..4]), (&[0, 2][..], &[0, 2][..]));
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
}

/// A five-leaf group with blanks and unmerged leaves: Conclave `a` creates it and adds the
/// peer, then Conclave `b` and `c`; `a` removes `b` (a blank leaf); the peer adds Conclave
/// `d` (which takes the blank leaf, unmerged in its parents); then `c`, the peer and `d`
/// commit with a path. Every member processes every commit.
fn larger_group(suite: u16) {
    let mut a = Conclave::new("a", suite);
    let mut m = mls_rs("peer", suite);
    let mut b = Conclave::new("b", suite);
    let mut c = Conclave::new("c", suite);
    let mut d = Conclave::new("d", suite);
    a.create_group(b"interop larger group");
    let (_commit, welcome) = a.add(&m.key_package());
    m.join(&welcome);
    let (commit, welcome) = a.add(&b.key_package());
    assert_eq!(m.receive(&commit), None);
    b.join(&welcome).unwrap();
    let (commit, welcome) = a.add(&c.key_package());
    assert_eq!(m.receive(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    c.join(&welcome).unwrap();

    let leaf = b.own_leaf();
    let commit = a.commit(Some(leaf));
    assert_eq!(m.receive(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);

    let (commit, welcome) = m.add(&d.key_package());
    for x in [&mut a, &mut c] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    d.join(&welcome)
        .expect("Conclave joins from the peer's Welcome");
    assert_eq!(d.own_leaf(), leaf);

    let commit = c.commit_update();
    assert_eq!(m.receive(&commit), None);
    for x in [&mut a, &mut d] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    let commit = m.commit_update();
    for x in [&mut a, &mut c, &mut d] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    let commit = d.commit_update();
    assert_eq!(m.receive(&commit), None);
    for x in [&mut a, &mut c] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    for x in [&mut a, &mut c, &mut d] {
        assert_agree(x, &mut m);
    }
    let ct = m.send(b"to all");
    for x in [&mut a, &mut c, &mut d] {
        assert_eq!(x.receive_application(&ct), b"to all");
    }
    messages_both_ways(&mut d, &mut m);
}

/// Runs every scenario in one cipher suite, as `suite_N::scenario`.
macro_rules! in_suite {
    ($name:ident, $suite:expr) => {
        mod $name {
            #[test]
            fn conclave_creates_mls_rs_joins() {
                super::super::conclave_creates_mls_rs_joins($suite)
            }
            #[test]
            fn mls_rs_creates_conclave_joins() {
                super::super::mls_rs_creates_conclave_joins($suite)
            }
            #[test]
            fn conclave_removes_mls_rs() {
                super::super::conclave_removes_mls_rs($suite)
            }
            #[test]
            fn mls_rs_removes_conclave() {
                super::super::mls_rs_removes_conclave($suite)
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
            fn conclave_joins_mls_rs_externally() {
                super::super::conclave_joins_mls_rs_externally($suite)
            }
            #[test]
            fn mls_rs_joins_conclave_externally() {
                super::super::mls_rs_joins_conclave_externally($suite)
            }
        }
    };
}

/// The suites both sides implement (RFC 9420 §17.1).
mod suites {
    in_suite!(suite_1, 1);
    in_suite!(suite_2, 2);
    in_suite!(suite_3, 3);
    in_suite!(suite_7, 7);
}
