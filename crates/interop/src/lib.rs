//! Interoperability tests of `conclave-mls` against OpenMLS 0.9 and mls-rs 0.57 (see `tests/`).
//!
//! This crate holds the drivers the tests share: [`Conclave`] (here), [`openmls_peer::OpenMls`]
//! and [`mls_rs_peer::MlsRs`]. Every message goes out and comes in as serialized `MLSMessage`
//! bytes, the way a Delivery Service carries them; the [`Member`] trait lets one scenario drive
//! any of the three, and [`assert_agree`] checks two members share the epoch.
//!
//! The two-party scenarios are written once, in [`scenarios`], against the [`Peer`] trait
//! (which both peers implement), and run with each peer (`tests/openmls.rs`: suites 1, 2, 3;
//! `tests/mls_rs.rs`: suites 1, 2, 3, 7) by [`two_party_tests!`]; the ReInit and branching
//! tests, where the peers differ, stay in their test files. Each is checked after every step
//! by equal epochs, epoch authenticators, exporter outputs and group context extensions on
//! both sides:
//!
//! - Welcome joins each way, the ratchet tree in the GroupInfo extension (RFC 9420 §12.4.3.3);
//! - Welcome joins each way with the ratchet tree passed out of band (no ratchet_tree
//!   extension; the joiner cannot join without the tree), then a second joiner the same way;
//! - application messages both ways; commits with a path from each side; removes from each
//!   side; Update and Remove proposals by reference (one side proposes, the other commits);
//! - external joins from the other's GroupInfo (§12.4.3.2);
//! - handshake messages as PrivateMessages (§6.3);
//! - a five-leaf group with a blank and unmerged leaves;
//! - GroupContextExtensions (§12.1.7) committed by each side: required_capabilities naming a
//!   private-use extension type every leaf supports, plus that extension itself; also by
//!   reference (one side proposes, the other commits);
//! - external PSKs (§8.4, §12.1.4): committed by value by each side, proposed by one side and
//!   committed by the other, and in the Welcome of an Add (the joiner holds the PSK too);
//! - resumption PSKs (§8.6) of an earlier epoch, usage `application`, committed by each side;
//! - with mls-rs: ReInit (§11.2) committed by each side — to another cipher suite — and the
//!   new group created by either side and joined by the other; subgroup branching (§11.3) each
//!   way;
//! - with OpenMLS, which implements neither: tests that keep the differences visible — it
//!   processes Conclave's ReInit commit but keeps sending in the closed group (§11.2), drops a
//!   ReInit from its own commits, and cannot join a branch (it cannot find the branch PSK).
//!
//! `tests/three_party.rs`: one group of Conclave, OpenMLS and mls-rs (suites 1, 2, 3), each
//! adding and removing members, with application messages and agreement among all.

#![forbid(unsafe_code)]

pub mod mls_rs_peer;
pub mod openmls_peer;
pub mod scenarios;

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, Secret, SuiteCrypto};
use conclave_mls::group::{ExternalJoinRequest, Group, GroupConfig, JoinRequest, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::key_package::{
    KeyPackageOptions, KeyPackageSecrets, create_key_package, default_capabilities,
};
use conclave_mls::messages::{
    Capabilities, Credential, Extension, ExtensionType, FramedContentBody, KeyPackage, Lifetime,
    MlsMessage, MlsMessageBody, PreSharedKeyId, Proposal, ProposalOrRef, ProtocolVersion, Psk,
    RatchetTree, ReInit, Remove, RequiredCapabilities, ResumptionPskUsage,
};
use conclave_mls::internal::tree::LeafIndex;
use std::collections::HashMap;
use std::sync::Arc;

pub use conclave_mls;

/// The exporter label and context the scenarios compare.
pub const EXPORTER_LABEL: &str = "conclave interop";

/// A private-use extension type (RFC 9420 §17.3: 0xF000–0xFFFF) that the GroupContextExtensions
/// scenarios put in the group context; every leaf lists it in its capabilities (§12.1.7).
pub const CUSTOM_EXTENSION: u16 = 0xff00;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Decodes an `MLSMessage` from bytes (panics on failure: tests only).
pub fn decode(bytes: &[u8]) -> MlsMessage {
    MlsMessage::decode(bytes).expect("Conclave decodes the peer's MLSMessage")
}

/// Encodes an `MLSMessage` to bytes.
pub fn encode(message: &MlsMessage) -> Vec<u8> {
    message.encode().expect("Conclave encodes its MLSMessage")
}

/// The proposals a commit sent as a PublicMessage (bytes) carries by value, in order
/// (§12.4); proposals by reference are left out. Panics if it is not such a commit.
pub fn committed_proposals(commit: &[u8]) -> Vec<Proposal> {
    let MlsMessageBody::PublicMessage(message) = decode(commit).body else {
        panic!("not a PublicMessage");
    };
    let FramedContentBody::Commit(commit) = message.content.body else {
        panic!("not a commit");
    };
    commit
        .proposals
        .into_iter()
        .filter_map(|p| match p {
            ProposalOrRef::Proposal(p) => Some(p),
            ProposalOrRef::Reference(_) => None,
        })
        .collect()
}

/// The PreSharedKeyIDs a commit (bytes, a PublicMessage) injects by value (§12.1.4).
pub fn committed_psks(commit: &[u8]) -> Vec<PreSharedKeyId> {
    committed_proposals(commit)
        .into_iter()
        .filter_map(|p| match p {
            Proposal::PreSharedKey(p) => Some(p.psk),
            _ => None,
        })
        .collect()
}

/// Asserts that a commit (bytes) injects exactly one PSK by value: the external PSK `id`.
pub fn assert_injects_external_psk(commit: &[u8], id: &[u8]) {
    let psks = committed_psks(commit);
    assert_eq!(psks.len(), 1, "one PSK proposal by value");
    assert!(
        matches!(&psks[0].psk, Psk::External { psk_id } if psk_id.as_slice() == id),
        "the external PSK: {:?}",
        psks[0]
    );
}

/// Asserts that a commit (bytes) injects exactly one PSK by value: the resumption PSK of
/// `epoch`, usage `application`.
pub fn assert_injects_resumption_psk(commit: &[u8], epoch: u64) {
    let psks = committed_psks(commit);
    assert_eq!(psks.len(), 1, "one PSK proposal by value");
    assert!(
        matches!(
            &psks[0].psk,
            Psk::Resumption { usage: ResumptionPskUsage::Application, psk_epoch, .. }
                if *psk_epoch == epoch
        ),
        "the resumption PSK of epoch {epoch}: {:?}",
        psks[0]
    );
}

/// The group context extensions the GroupContextExtensions scenarios commit (§12.1.7):
/// required_capabilities (§11.1) naming [`CUSTOM_EXTENSION`] and basic credentials, then
/// [`CUSTOM_EXTENSION`] carrying `data`. Encoded as the wire `Extension extensions<V>`, so
/// each peer can decode it into its own type.
pub fn custom_context_extensions(data: &[u8]) -> Vec<Extension> {
    let required = RequiredCapabilities {
        extension_types: vec![ExtensionType(CUSTOM_EXTENSION)],
        proposal_types: vec![],
        credential_types: vec![conclave_mls::messages::CredentialType::BASIC],
    };
    vec![
        Extension {
            extension_type: ExtensionType::REQUIRED_CAPABILITIES,
            extension_data: required.encode().expect("encode").into(),
        },
        Extension {
            extension_type: ExtensionType(CUSTOM_EXTENSION),
            extension_data: data.to_vec().into(),
        },
    ]
}

/// What one member of a scenario can do, whichever implementation it is: every argument and
/// result that crosses between members is serialized `MLSMessage` bytes.
pub trait Member {
    /// The implementation's name, for messages.
    fn implementation(&self) -> &'static str;
    /// A fresh KeyPackage (`MLSMessage`); its private keys are kept for the join.
    fn fresh_key_package(&mut self) -> Vec<u8>;
    /// Joins from a Welcome (ratchet tree in the GroupInfo extension); panics on failure.
    fn join_welcome(&mut self, welcome: &[u8]);
    /// Commits an Add of `key_package` and merges it; returns (commit, Welcome).
    fn commit_add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>);
    /// Commits a Remove of `leaf` and merges it; returns the commit.
    fn commit_remove(&mut self, leaf: u32) -> Vec<u8>;
    /// Commits with a path (updating our own leaf) and merges it; returns the commit.
    fn commit_path(&mut self) -> Vec<u8>;
    /// Our leaf index.
    fn leaf_index(&mut self) -> u32;
    /// Whether we are (still) a member: a group is held and no commit removed us.
    fn is_member(&mut self) -> bool;
    /// Encrypts application data; returns the PrivateMessage.
    fn send_application(&mut self, data: &[u8]) -> Vec<u8>;
    /// Processes a message: a commit is merged, a proposal cached; application data is
    /// returned. Panics if the implementation rejects the message.
    fn deliver(&mut self, message: &[u8]) -> Option<Vec<u8>>;
    /// The current epoch.
    fn current_epoch(&mut self) -> u64;
    /// The current epoch authenticator (RFC 9420 §8.7).
    fn authenticator(&mut self) -> Vec<u8>;
    /// `MLS-Exporter(EXPORTER_LABEL, context, 32)` (§8.5).
    fn exporter(&mut self, context: &[u8]) -> Vec<u8>;
    /// The group context's extensions, encoded as `Extension extensions<V>` (§5.3).
    fn context_extensions(&mut self) -> Vec<u8>;
}

/// How a peer (OpenMLS or mls-rs) is set up for a scenario. The default is each library's own
/// setup, which is also Conclave's default: handshake messages as PublicMessages and the
/// ratchet tree in Welcomes and GroupInfos.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerOptions {
    /// Send handshake messages as PrivateMessages (RFC 9420 §6.3); OpenMLS then also refuses
    /// PublicMessages.
    pub private_handshake: bool,
    /// Leave the ratchet_tree extension out of Welcomes and GroupInfos (§12.4.3.3): the tree
    /// goes out of band.
    pub out_of_band_tree: bool,
    /// List [`CUSTOM_EXTENSION`] in the capabilities of its leaves.
    pub custom_extension: bool,
}

/// What the two-party [`scenarios`] ask of the other implementation beyond [`Member`]: group
/// creation, proposals, external joins, out-of-band trees and PSKs. As with [`Member`], every
/// argument and result that crosses is serialized `MLSMessage` bytes or another wire encoding.
pub trait Peer: Member {
    /// Creates a one-member group; the implementation picks the group ID.
    fn create_group(&mut self);
    /// Joins from a Welcome with the ratchet tree (an encoded `RatchetTree`) passed out of
    /// band if `tree` is given; returns the implementation's error as text on failure.
    fn try_join(&mut self, welcome: &[u8], tree: Option<&[u8]>) -> Result<(), String>;
    /// The group's ratchet tree, encoded as `RatchetTree` (§12.4.3.3).
    fn ratchet_tree(&mut self) -> Vec<u8>;
    /// A signed GroupInfo with the ratchet tree and external_pub (§12.4.3.2).
    fn group_info(&mut self) -> Vec<u8>;
    /// Joins by external commit from a GroupInfo; returns the commit.
    fn join_external(&mut self, group_info: &[u8]) -> Vec<u8>;
    /// How many members the group has.
    fn member_count(&mut self) -> usize;
    /// Proposes an Update of our own leaf; returns the proposal message.
    fn propose_update(&mut self) -> Vec<u8>;
    /// Proposes the removal of `leaf`; returns the proposal message.
    fn propose_remove(&mut self, leaf: u32) -> Vec<u8>;
    /// Proposes GroupContextExtensions (§12.1.7) with `extensions`, the wire encoding of
    /// `Extension extensions<V>`; returns the proposal message.
    fn propose_extensions(&mut self, extensions: &[u8]) -> Vec<u8>;
    /// Proposes the external PSK `id` with a fresh nonce; returns the proposal message.
    fn propose_external_psk(&mut self, id: &[u8]) -> Vec<u8>;
    /// Commits the proposals it has received (by reference) and merges; with none, a commit
    /// with a path. Returns the commit.
    fn commit_pending(&mut self) -> Vec<u8>;
    /// Commits a GroupContextExtensions proposal with `extensions` (as in
    /// [`Peer::propose_extensions`]) by value and merges; returns the commit.
    fn commit_extensions(&mut self, extensions: &[u8]) -> Vec<u8>;
    /// Holds the external PSK `id` → `secret` (§8.4), for this group and later ones.
    fn add_external_psk(&mut self, id: &[u8], secret: &[u8]);
    /// Commits a PreSharedKey proposal for the external PSK `id` by value and merges; returns
    /// the commit.
    fn commit_external_psk(&mut self, id: &[u8]) -> Vec<u8>;
    /// Commits an Add of `key_package` and a PreSharedKey proposal for the external PSK `id`,
    /// both by value, and merges; returns (commit, Welcome).
    fn add_with_external_psk(&mut self, key_package: &[u8], id: &[u8]) -> (Vec<u8>, Vec<u8>);
    /// Commits a PreSharedKey proposal for the resumption PSK of `epoch` of this group, usage
    /// `application` (§8.6), by value and merges; returns the commit.
    fn commit_resumption_psk(&mut self, epoch: u64) -> Vec<u8>;
}

/// Defines one `#[test]` per `test => scenario` pair, each running the two-party
/// `scenarios::scenario` with the peer made by `new_peer` (a [`scenarios::NewPeer`]) in cipher
/// suite `suite`, e.g. `two_party_tests!(OpenMls::with_options, 1; external_psk =>
/// external_psk)`. The test name is given apart from the scenario so each test file can name
/// its tests after its peer.
#[macro_export]
macro_rules! two_party_tests {
    ($new_peer:expr, $suite:expr; $($test:ident => $scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                $crate::scenarios::$scenario($new_peer, $suite)
            }
        )*
    };
}

/// Both members agree on the epoch: number, authenticator, an exporter output and the group
/// context extensions (which the authenticator already implies, via the GroupContext in the
/// key schedule, §8).
pub fn assert_agree<A: Member + ?Sized, B: Member + ?Sized>(a: &mut A, b: &mut B) {
    let (x, y) = (a.implementation(), b.implementation());
    assert_eq!(a.current_epoch(), b.current_epoch(), "epoch: {x} vs {y}");
    assert_eq!(
        a.authenticator(),
        b.authenticator(),
        "epoch authenticator: {x} vs {y}"
    );
    assert_eq!(
        a.exporter(b"ctx"),
        b.exporter(b"ctx"),
        "exporter: {x} vs {y}"
    );
    assert_eq!(
        a.context_extensions(),
        b.context_extensions(),
        "group context extensions: {x} vs {y}"
    );
}

/// `from` sends application data; `to` decrypts the same bytes.
pub fn message<A: Member + ?Sized, B: Member + ?Sized>(from: &mut A, to: &mut B) {
    let text = format!("hello from {}", from.implementation()).into_bytes();
    let ct = from.send_application(&text);
    assert_eq!(to.deliver(&ct), Some(text), "{} reads", to.implementation());
}

/// Application data from Conclave to the peer and back (the peer's reply names it).
pub fn messages_both_ways<P: Member + ?Sized>(c: &mut Conclave, peer: &mut P) {
    let ct = c.send(b"hello from Conclave");
    assert_eq!(
        peer.deliver(&ct).as_deref(),
        Some(&b"hello from Conclave"[..])
    );
    let text = format!("hello from {}", peer.implementation()).into_bytes();
    let ct = peer.send_application(&text);
    assert_eq!(c.receive_application(&ct), text);
}

/// A commit with a path from the peer, processed by Conclave, then one from Conclave,
/// processed by the peer; both agree after each, then exchange messages.
pub fn commits_with_path_both_ways<P: Member + ?Sized>(c: &mut Conclave, peer: &mut P) {
    let commit = peer.commit_path();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(c, peer);
    let commit = c.commit_update();
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(c, peer);
    messages_both_ways(c, peer);
}

/// A five-leaf group with blanks and unmerged leaves: Conclave `a` creates it and adds the
/// peer, then Conclave `b` and `c`; `a` removes `b` (a blank leaf); the peer adds Conclave
/// `d` (which takes the blank leaf, unmerged in its parents); then `c`, the peer and `d`
/// commit with a path. Every member processes every commit.
pub fn larger_group<P: Member + ?Sized>(peer: &mut P, suite: u16) {
    let mut a = Conclave::new("a", suite);
    let mut b = Conclave::new("b", suite);
    let mut c = Conclave::new("c", suite);
    let mut d = Conclave::new("d", suite);
    a.create_group(b"interop larger group");
    let (_commit, welcome) = a.add(&peer.fresh_key_package());
    peer.join_welcome(&welcome);
    let (commit, welcome) = a.add(&b.key_package());
    assert_eq!(peer.deliver(&commit), None);
    b.join(&welcome).unwrap();
    let (commit, welcome) = a.add(&c.key_package());
    assert_eq!(peer.deliver(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    c.join(&welcome).unwrap();

    let leaf = b.own_leaf();
    let commit = a.commit(Some(leaf));
    assert_eq!(peer.deliver(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);

    let (commit, welcome) = peer.commit_add(&d.key_package());
    for x in [&mut a, &mut c] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    d.join(&welcome)
        .expect("Conclave joins from the peer's Welcome");
    assert_eq!(d.own_leaf(), leaf);

    let commit = c.commit_update();
    assert_eq!(peer.deliver(&commit), None);
    for x in [&mut a, &mut d] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    let commit = peer.commit_path();
    for x in [&mut a, &mut c, &mut d] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    let commit = d.commit_update();
    assert_eq!(peer.deliver(&commit), None);
    for x in [&mut a, &mut c] {
        assert_eq!(x.receive(&commit).unwrap(), Got::Commit);
    }
    for x in [&mut a, &mut c, &mut d] {
        assert_agree(x, peer);
    }
    let ct = peer.send_application(b"to all");
    for x in [&mut a, &mut c, &mut d] {
        assert_eq!(x.receive_application(&ct), b"to all");
    }
    messages_both_ways(&mut d, peer);
}

/// What receiving a message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// Application data.
    Application(Vec<u8>),
    /// A proposal, cached.
    Proposal,
    /// Another member's commit, merged.
    Commit,
    /// Our own commit echoed back, merged.
    OwnCommit,
}

/// A Conclave client: identity, a pending KeyPackage, PSKs and at most one group.
pub struct Conclave {
    /// The crypto provider (RustCrypto, system randomness).
    pub provider: RustCrypto,
    /// The client's identity (basic credential).
    pub identity: Identity,
    name: String,
    key_package: Option<(KeyPackage, KeyPackageSecrets)>,
    /// Capabilities of the leaves this client makes (KeyPackages, and the creator's leaf via
    /// `config.leaf_capabilities`); the library's defaults if `None`.
    pub capabilities: Option<Capabilities>,
    /// Local policy of the groups it creates or joins (default: `GroupConfig::default()`).
    pub config: GroupConfig,
    /// External PSKs this client holds (§8.4), by id: given to every join and group.
    pub external_psks: HashMap<Vec<u8>, Secret>,
    /// The group, once created or joined.
    pub group: Option<Group>,
}

impl Conclave {
    /// A client with a basic credential `name` in cipher suite `suite` (RFC 9420 §17.1).
    pub fn new(name: &str, suite: u16) -> Self {
        let provider = RustCrypto::default();
        let identity = Self::identity_in(&provider, name, suite);
        Self {
            provider,
            identity,
            name: name.to_owned(),
            key_package: None,
            capabilities: None,
            config: GroupConfig::default(),
            external_psks: HashMap::new(),
            group: None,
        }
    }

    fn identity_in(provider: &RustCrypto, name: &str, suite: u16) -> Identity {
        Identity::generate(
            provider,
            CipherSuite(suite),
            Credential::Basic {
                identity: name.as_bytes().to_vec().into(),
            },
        )
        .expect("identity")
    }

    /// A new signature key in `suite`, same credential: for a ReInit to another cipher suite
    /// (§11.2). The current group, if any, is kept.
    pub fn switch_suite(&mut self, suite: u16) {
        self.identity = Self::identity_in(&self.provider, &self.name, suite);
        if self.capabilities.is_some() {
            self.support_custom_extension();
        }
    }

    /// Lists [`CUSTOM_EXTENSION`] in the capabilities of every leaf this client makes from now
    /// on (KeyPackages, a created group's first leaf).
    pub fn support_custom_extension(&mut self) {
        let mut capabilities = default_capabilities(&self.identity);
        capabilities
            .extensions
            .push(ExtensionType(CUSTOM_EXTENSION));
        self.config.leaf_capabilities = Some(capabilities.clone());
        self.capabilities = Some(capabilities);
    }

    /// Holds the external PSK `id` → `secret` (§8.4), for the current group and later ones.
    pub fn add_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        self.external_psks
            .insert(id.to_vec(), Secret::from_slice(secret));
        if let Some(group) = self.group.as_mut() {
            group.add_external_psk(id.to_vec(), Secret::from_slice(secret));
        }
    }

    fn with_psks(&self, mut group: Group) -> Group {
        for (id, secret) in &self.external_psks {
            group.add_external_psk(id.clone(), secret.clone());
        }
        group
    }

    /// A fresh KeyPackage as `MLSMessage` bytes; its secrets are kept for the join.
    pub fn key_package(&mut self) -> Vec<u8> {
        let mut options = KeyPackageOptions::new(Lifetime::starting_at(now() - 60, 86_400));
        options.capabilities = self.capabilities.clone();
        let (kp, secrets) =
            create_key_package(&self.provider, &self.identity, options).expect("key package");
        let message = MlsMessage {
            version: ProtocolVersion::MLS10,
            body: MlsMessageBody::KeyPackage(kp.clone()),
        };
        self.key_package = Some((kp, secrets));
        encode(&message)
    }

    /// Creates a one-member group.
    pub fn create_group(&mut self, group_id: &[u8]) {
        let group = Group::create(
            &self.provider,
            &self.identity,
            group_id.to_vec(),
            vec![],
            self.config.clone(),
            Arc::new(BasicCredentialsOnly),
        )
        .expect("create group");
        self.group = Some(self.with_psks(group));
    }

    /// The group (panics if none).
    pub fn group(&mut self) -> &mut Group {
        self.group.as_mut().expect("in a group")
    }

    /// Joins from a Welcome received as bytes, with the KeyPackage made last.
    pub fn join(&mut self, welcome: &[u8]) -> Result<(), conclave_mls::Error> {
        self.join_with_tree(welcome, None)
    }

    /// Joins from a Welcome with the ratchet tree passed out of band (an encoded
    /// `RatchetTree`, §12.4.3.3) when `tree` is given.
    pub fn join_with_tree(
        &mut self,
        welcome: &[u8],
        tree: Option<&[u8]>,
    ) -> Result<(), conclave_mls::Error> {
        self.join_inner(welcome, tree, None)
    }

    /// Joins a group that resumes the current one — a ReInit's new group (§11.2) or a branch
    /// (§11.3) — from its Welcome, with [`Group::join_reinit`] when a ReInit closed the
    /// current group and [`Group::join_branch`] otherwise; both check the Welcome against the
    /// current group and take its resumption PSKs. The current group is then replaced.
    pub fn join_resumed(&mut self, welcome: &[u8]) -> Result<(), conclave_mls::Error> {
        let old = self.group.take().expect("in the old group");
        let joined = self.join_inner(welcome, None, Some(&old));
        if joined.is_err() {
            self.group = Some(old);
        }
        joined
    }

    fn join_inner(
        &mut self,
        welcome: &[u8],
        tree: Option<&[u8]>,
        resumed: Option<&Group>,
    ) -> Result<(), conclave_mls::Error> {
        let MlsMessageBody::Welcome(welcome) = decode(welcome).body else {
            panic!("not a Welcome");
        };
        let ratchet_tree = tree.map(|t| RatchetTree::decode(t).expect("decode RatchetTree"));
        let (kp, secrets) = self.key_package.as_ref().expect("a KeyPackage was made");
        let request = JoinRequest {
            identity: &self.identity,
            key_package: kp,
            secrets,
            welcome: &welcome,
            ratchet_tree,
            external_psks: self.external_psks.clone(),
            resumption_psks: HashMap::new(),
            config: self.config.clone(),
            validator: Arc::new(BasicCredentialsOnly),
        };
        let group = match resumed {
            None => Group::join(&self.provider, request),
            Some(old) if old.reinit().is_some() => Group::join_reinit(&self.provider, old, request),
            Some(old) => Group::join_branch(&self.provider, old, request),
        }?;
        self.group = Some(group);
        Ok(())
    }

    /// The group's ratchet tree, encoded as `RatchetTree` (§12.4.3.3), to pass out of band.
    pub fn ratchet_tree(&mut self) -> Vec<u8> {
        self.group().tree().to_wire().encode().expect("encode tree")
    }

    /// Commits an Add of the KeyPackage (`MLSMessage` bytes) and merges it at once.
    /// Returns (commit, welcome) as bytes.
    pub fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let MlsMessageBody::KeyPackage(kp) = decode(key_package).body else {
            panic!("not a KeyPackage");
        };
        let (commit, welcome) =
            self.commit_proposals(vec![Proposal::Add(conclave_mls::messages::Add {
                key_package: kp,
            })]);
        (commit, welcome.expect("a Welcome"))
    }

    /// Commits the cached proposals (by reference) and `proposals` (by value), and merges it.
    /// Returns the commit and the Welcome, if it adds members.
    pub fn commit_proposals(&mut self, proposals: Vec<Proposal>) -> (Vec<u8>, Option<Vec<u8>>) {
        let group = self.group.as_mut().expect("in a group");
        let mut builder = group.commit();
        for proposal in proposals {
            builder = builder.proposal(proposal);
        }
        let out = builder.build(&self.provider).expect("commit");
        group.merge_pending_commit().expect("merge");
        (encode(&out.commit), out.welcome.as_ref().map(encode))
    }

    /// Commits a GroupContextExtensions proposal replacing the extensions (§12.1.7).
    pub fn commit_extensions(&mut self, extensions: Vec<Extension>) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        let out = group
            .commit()
            .group_context_extensions(extensions)
            .build(&self.provider)
            .expect("commit GroupContextExtensions");
        group.merge_pending_commit().expect("merge");
        encode(&out.commit)
    }

    /// A fresh `psk_nonce` of length Nh (§8.4).
    pub fn psk_nonce(&self) -> Vec<u8> {
        let crypto = SuiteCrypto::new(&self.provider, self.identity.suite).expect("suite");
        let mut nonce = vec![0; crypto.hash_len()];
        self.provider.random_bytes(&mut nonce).expect("random");
        nonce
    }

    /// A PreSharedKeyID naming the external PSK `id`, with a fresh nonce (§8.4).
    pub fn external_psk_id(&self, id: &[u8]) -> PreSharedKeyId {
        PreSharedKeyId {
            psk: Psk::External {
                psk_id: id.to_vec().into(),
            },
            psk_nonce: self.psk_nonce().into(),
        }
    }

    /// A PreSharedKeyID naming the resumption PSK of `epoch` of the current group, usage
    /// `application` (§8.6), with a fresh nonce.
    pub fn resumption_psk_id(&mut self, epoch: u64) -> PreSharedKeyId {
        let group_id = self.group().group_id().to_vec();
        PreSharedKeyId {
            psk: Psk::Resumption {
                usage: ResumptionPskUsage::Application,
                psk_group_id: group_id.into(),
                psk_epoch: epoch,
            },
            psk_nonce: self.psk_nonce().into(),
        }
    }

    /// Commits a PreSharedKey proposal for `psk` (by value) and merges it.
    pub fn commit_psk(&mut self, psk: PreSharedKeyId) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        let out = group
            .commit()
            .psk(psk)
            .build(&self.provider)
            .expect("commit PSK");
        group.merge_pending_commit().expect("merge");
        encode(&out.commit)
    }

    /// Commits with a path (a full update of our leaf) and merges it. Returns the commit.
    pub fn commit_update(&mut self) -> Vec<u8> {
        let out = self
            .group
            .as_mut()
            .expect("in a group")
            .commit()
            .force_path()
            .build(&self.provider)
            .expect("commit with path");
        self.group().merge_pending_commit().expect("merge");
        encode(&out.commit)
    }

    /// Commits whatever proposals are cached (by reference), plus a Remove of `leaf` if any,
    /// and merges it. Returns the commit.
    pub fn commit(&mut self, remove: Option<u32>) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        let mut builder = group.commit();
        if let Some(leaf) = remove {
            builder = builder.remove_member(LeafIndex(leaf));
        }
        let out = builder.build(&self.provider).expect("commit");
        group.merge_pending_commit().expect("merge");
        encode(&out.commit)
    }

    /// Sends `proposal` as a proposal message (to be committed by reference).
    pub fn propose(&mut self, proposal: Proposal) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        encode(&group.propose(&self.provider, proposal).expect("propose"))
    }

    /// Proposes the removal of `leaf`; returns the proposal message.
    pub fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.propose(Proposal::Remove(Remove { removed: leaf }))
    }

    /// Proposes an Update of our own leaf; returns the proposal message.
    pub fn propose_update(&mut self) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        encode(
            &group
                .propose_update(&self.provider)
                .expect("propose update"),
        )
    }

    /// Commits a ReInit (§12.1.5) to a group `group_id` in `suite` (same version, no
    /// extensions) and merges it; the group is then closed. Returns the commit.
    pub fn commit_reinit(&mut self, group_id: &[u8], suite: u16) -> Vec<u8> {
        let reinit = ReInit {
            group_id: group_id.to_vec().into(),
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(suite),
            extensions: vec![],
        };
        self.commit_proposals(vec![Proposal::ReInit(reinit)]).0
    }

    /// After a ReInit commit closed the group: creates the new group it describes, adding
    /// `key_packages` (in the new suite; see [`Conclave::switch_suite`]) with the reinit
    /// resumption PSK (§11.2). Returns the Welcome; the new group replaces the old.
    pub fn create_reinit_group(&mut self, key_packages: &[Vec<u8>]) -> Vec<u8> {
        let kps = key_packages.iter().map(|k| key_package_of(k)).collect();
        let old = self.group.as_ref().expect("in the old group");
        let (mut group, out) = old
            .reinit_group(&self.provider, &self.identity, kps, self.config.clone())
            .expect("create the ReInit group");
        group.merge_pending_commit().expect("merge");
        self.group = Some(self.with_psks(group));
        encode(&out.welcome.expect("a Welcome"))
    }

    /// Branches the current group into a subgroup `group_id` with the members of
    /// `key_packages` (§11.3). Returns the Welcome; the subgroup replaces the group.
    pub fn branch(&mut self, group_id: &[u8], key_packages: &[Vec<u8>]) -> Vec<u8> {
        let kps = key_packages.iter().map(|k| key_package_of(k)).collect();
        let old = self.group.as_ref().expect("in a group");
        let extensions = old.context().extensions.clone();
        let (mut group, out) = old
            .branch(
                &self.provider,
                &self.identity,
                group_id.to_vec(),
                extensions,
                kps,
                self.config.clone(),
            )
            .expect("branch");
        group.merge_pending_commit().expect("merge");
        self.group = Some(self.with_psks(group));
        encode(&out.welcome.expect("a Welcome"))
    }

    /// A signed GroupInfo (with ratchet tree and external_pub) as bytes.
    pub fn group_info(&mut self) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        encode(&group.group_info(&self.provider).expect("group info"))
    }

    /// Whether the GroupInfos this member signs — those of its Welcomes too — carry the
    /// ratchet_tree extension (§12.4.3.3).
    pub fn group_info_has_tree(&mut self) -> bool {
        let MlsMessageBody::GroupInfo(info) = decode(&self.group_info()).body else {
            panic!("not a GroupInfo");
        };
        info.tbs
            .extensions
            .iter()
            .any(|e| e.extension_type == ExtensionType::RATCHET_TREE)
    }

    /// Joins by external commit from a GroupInfo (bytes); returns the commit.
    pub fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>, conclave_mls::Error> {
        let MlsMessageBody::GroupInfo(info) = decode(group_info).body else {
            panic!("not a GroupInfo");
        };
        let (group, commit) = Group::join_external(
            &self.provider,
            ExternalJoinRequest {
                identity: &self.identity,
                group_info: &info,
                ratchet_tree: None,
                resync: None,
                authenticated_data: vec![],
                config: self.config.clone(),
                validator: Arc::new(BasicCredentialsOnly),
            },
        )?;
        self.group = Some(self.with_psks(group));
        Ok(encode(&commit))
    }

    /// Our leaf index.
    pub fn own_leaf(&mut self) -> u32 {
        self.group().own_leaf().0
    }

    /// Whether a commit removed us.
    pub fn is_removed(&mut self) -> bool {
        self.group().is_removed()
    }

    /// Encrypts application data; returns the PrivateMessage as bytes.
    pub fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let message = self
            .group
            .as_mut()
            .expect("in a group")
            .encrypt_application(&self.provider, data, b"")
            .expect("encrypt");
        encode(&message)
    }

    /// Processes a message received as bytes; a commit from another member is merged.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Got, conclave_mls::Error> {
        let message = decode(bytes);
        let group = self.group.as_mut().expect("in a group");
        Ok(match group.process(&self.provider, &message)? {
            Received::Commit(staged) => {
                group.merge(*staged)?;
                Got::Commit
            }
            Received::Application { data, .. } => Got::Application(data),
            Received::Proposal { .. } => Got::Proposal,
            Received::OwnCommit => Got::OwnCommit,
        })
    }

    /// Receives application data and returns it.
    pub fn receive_application(&mut self, bytes: &[u8]) -> Vec<u8> {
        match self.receive(bytes).expect("process application message") {
            Got::Application(data) => data,
            other => panic!("expected application data, got {other:?}"),
        }
    }

    /// The group's epoch authenticator.
    pub fn epoch_authenticator(&mut self) -> Vec<u8> {
        self.group().epoch_authenticator().to_vec()
    }

    /// `MLS-Exporter(EXPORTER_LABEL, context, 32)` of the current epoch.
    pub fn export(&mut self, context: &[u8]) -> Vec<u8> {
        self.group
            .as_ref()
            .expect("in a group")
            .export_secret(&self.provider, EXPORTER_LABEL.as_bytes(), context, 32)
            .expect("export")
            .as_bytes()
            .to_vec()
    }
}

fn key_package_of(bytes: &[u8]) -> KeyPackage {
    match decode(bytes).body {
        MlsMessageBody::KeyPackage(kp) => kp,
        _ => panic!("not a KeyPackage"),
    }
}

impl Member for Conclave {
    fn implementation(&self) -> &'static str {
        "Conclave"
    }
    fn fresh_key_package(&mut self) -> Vec<u8> {
        self.key_package()
    }
    fn join_welcome(&mut self, welcome: &[u8]) {
        self.join(welcome).expect("Conclave joins from the Welcome");
    }
    fn commit_add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.add(key_package)
    }
    fn commit_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.commit(Some(leaf))
    }
    fn commit_path(&mut self) -> Vec<u8> {
        self.commit_update()
    }
    fn leaf_index(&mut self) -> u32 {
        self.own_leaf()
    }
    fn is_member(&mut self) -> bool {
        self.group.as_ref().is_some_and(|g| !g.is_removed())
    }
    fn send_application(&mut self, data: &[u8]) -> Vec<u8> {
        self.send(data)
    }
    fn deliver(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        match self
            .receive(message)
            .expect("Conclave processes the message")
        {
            Got::Application(data) => Some(data),
            _ => None,
        }
    }
    fn current_epoch(&mut self) -> u64 {
        self.group().epoch()
    }
    fn authenticator(&mut self) -> Vec<u8> {
        self.epoch_authenticator()
    }
    fn exporter(&mut self, context: &[u8]) -> Vec<u8> {
        self.export(context)
    }
    fn context_extensions(&mut self) -> Vec<u8> {
        self.group()
            .context()
            .extensions
            .encode()
            .expect("encode extensions")
    }
}
