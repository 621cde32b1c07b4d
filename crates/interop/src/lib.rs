//! Interoperability tests of `conclave-mls` against OpenMLS 0.9 and mls-rs 0.57 (see `tests/`).
//!
//! This crate holds the drivers the tests share, one module each: [`conclave_peer::Conclave`],
//! [`openmls_peer::OpenMls`] and [`mls_rs_peer::MlsRs`]. Every message goes out and comes in
//! as serialized `MLSMessage` bytes, the way a Delivery Service carries them; the [`Member`]
//! trait lets one scenario drive any of the three, and [`assert_agree`] checks two members
//! share the epoch.
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
//!
//! `tests/mls_rs_x509.rs`: X.509 credentials issued by the Authentication Service's CA
//! (`conclave-as`), checked by `conclave-mls`'s validator on one side and by mls-rs's own
//! `X509IdentityProvider` (RustCrypto validator) on the other, both anchored at the AS root:
//! groups formed each way (suites 1 and 3), and each side refusing the other's KeyPackage
//! whose chain has another root, another key, or has expired.

#![forbid(unsafe_code)]

pub mod conclave_peer;
pub mod mls_rs_peer;
pub mod openmls_peer;
pub mod scenarios;

pub use conclave_peer::{Conclave, Got};

use conclave_mls::MlsMessage;
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::messages::{
    Extension, ExtensionType, FramedContentBody, MlsMessageBody, PreSharedKeyId, Proposal,
    ProposalOrRef, Psk, RequiredCapabilities, ResumptionPskUsage,
};

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
