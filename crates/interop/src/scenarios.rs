//! The two-party scenarios, written once for both peers: Conclave against a [`Peer`] made by a
//! [`NewPeer`], so a scenario can make as many peers as it needs, in the options it needs.
//! `tests/openmls.rs` and `tests/mls_rs.rs` run each in every suite both sides implement
//! (see [`two_party_tests!`](crate::two_party_tests)).

use crate::{
    Conclave, Got, Peer, PeerOptions, assert_agree, assert_injects_external_psk,
    assert_injects_resumption_psk, commits_with_path_both_ways, custom_context_extensions, decode,
    messages_both_ways,
};
use conclave_mls::codec::Encode;
use conclave_mls::group::HandshakeWireFormat;
use conclave_mls::messages::{Add, GroupContextExtensions, MlsMessageBody, PreSharedKey, Proposal};

/// Makes a peer: a client with a basic credential `name` in cipher suite `suite`, set up by
/// the options.
pub type NewPeer<P> = fn(name: &str, suite: u16, options: PeerOptions) -> P;

/// The external PSK both sides hold in the PSK scenarios (§8.4).
const PSK_ID: &[u8] = b"interop external psk";
const PSK_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A Conclave client and a peer in `suite`, both set up by `options`: Conclave mirrors them
/// (handshake wire format, ratchet_tree extension, leaf capabilities) so the two sides match.
pub fn clients<P: Peer>(new_peer: NewPeer<P>, suite: u16, options: PeerOptions) -> (Conclave, P) {
    let mut c = Conclave::new("conclave", suite);
    if options.private_handshake {
        c.config = c
            .config
            .with_handshake_wire_format(HandshakeWireFormat::Private);
    }
    if options.out_of_band_tree {
        c.config = c.config.with_ratchet_tree_extension(false);
    }
    if options.custom_extension {
        c.support_custom_extension();
    }
    (c, new_peer("peer", suite, options))
}

/// Conclave creates a group and adds the peer, which joins from the Welcome; or, if
/// `conclave_creates` is false, the peer creates it and Conclave joins. Both then agree.
pub fn form_group<P: Peer>(c: &mut Conclave, peer: &mut P, conclave_creates: bool) {
    if conclave_creates {
        c.create_group(b"interop group");
        let (_commit, welcome) = c.add(&peer.fresh_key_package());
        peer.join_welcome(&welcome);
    } else {
        peer.create_group();
        let (_commit, welcome) = peer.commit_add(&c.key_package());
        c.join(&welcome).unwrap_or_else(|e| {
            panic!(
                "Conclave accepts {}'s Welcome: {e:?}",
                peer.implementation()
            )
        });
    }
    assert_agree(c, peer);
}

/// [`clients`] in a group formed by [`form_group`].
pub fn pair<P: Peer>(
    new_peer: NewPeer<P>,
    suite: u16,
    options: PeerOptions,
    conclave_creates: bool,
) -> (Conclave, P) {
    let (mut c, mut peer) = clients(new_peer, suite, options);
    form_group(&mut c, &mut peer, conclave_creates);
    (c, peer)
}

/// Conclave creates the group and adds the peer; the peer joins from the Welcome.
pub fn conclave_creates_peer_joins<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = pair(new_peer, suite, PeerOptions::default(), true);
    messages_both_ways(&mut c, &mut peer);
    commits_with_path_both_ways(&mut c, &mut peer);
}

/// The peer creates the group and adds Conclave; Conclave joins from the Welcome.
pub fn peer_creates_conclave_joins<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = pair(new_peer, suite, PeerOptions::default(), false);
    messages_both_ways(&mut c, &mut peer);
    commits_with_path_both_ways(&mut c, &mut peer);
}

/// Conclave removes the peer; the peer sees itself removed.
pub fn conclave_removes_peer<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = pair(new_peer, suite, PeerOptions::default(), true);
    let leaf = peer.leaf_index();
    let commit = c.commit(Some(leaf));
    assert_eq!(peer.deliver(&commit), None);
    assert!(
        !peer.is_member(),
        "{} sees itself removed",
        peer.implementation()
    );
    assert_eq!(c.group().members().count(), 1);
}

/// The peer removes Conclave; Conclave sees itself removed.
pub fn peer_removes_conclave<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = pair(new_peer, suite, PeerOptions::default(), false);
    let leaf = c.own_leaf();
    let commit = peer.commit_remove(leaf);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert!(c.is_removed());
    assert_eq!(peer.member_count(), 1);
}

/// Proposals by reference: the peer proposes an Update, Conclave commits it; then Conclave
/// proposes an Update and the peer commits it.
pub fn update_proposals_by_reference<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = pair(new_peer, suite, PeerOptions::default(), true);
    let proposal = peer.propose_update();
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);

    let proposal = c.propose_update();
    assert_eq!(peer.deliver(&proposal), None);
    let commit = peer.commit_pending();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);
}

/// Conclave joins the peer's group by external commit (§12.4.3.2).
pub fn conclave_joins_peer_externally<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = clients(new_peer, suite, PeerOptions::default());
    peer.create_group();
    let commit = c.join_external(&peer.group_info()).unwrap_or_else(|e| {
        panic!(
            "Conclave accepts {}'s GroupInfo: {e:?}",
            peer.implementation()
        )
    });
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);
}

/// The peer joins Conclave's group by external commit.
pub fn peer_joins_conclave_externally<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = clients(new_peer, suite, PeerOptions::default());
    c.create_group(b"interop group");
    let commit = peer.join_external(&c.group_info());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);
}

/// A three-member group made by Conclave `a`: the peer, then Conclave `b`.
fn three_members<P: Peer>(new_peer: NewPeer<P>, suite: u16) -> (Conclave, P, Conclave) {
    let mut a = Conclave::new("conclave a", suite);
    let mut peer = new_peer("peer", suite, PeerOptions::default());
    let mut b = Conclave::new("conclave b", suite);
    a.create_group(b"interop group of three");
    let (_commit, welcome) = a.add(&peer.fresh_key_package());
    peer.join_welcome(&welcome);
    let (commit, welcome) = a.add(&b.key_package());
    assert_eq!(peer.deliver(&commit), None);
    b.join(&welcome).unwrap();
    assert_agree(&mut b, &mut peer);
    (a, peer, b)
}

/// Remove proposals by reference. The peer proposes removing Conclave `b` and Conclave `a`
/// commits it; then Conclave `a` proposes it and the peer commits it.
pub fn remove_proposals_by_reference<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut a, mut peer, mut b) = three_members(new_peer, suite);
    let leaf = b.own_leaf();
    let proposal = peer.propose_remove(leaf);
    assert_eq!(a.receive(&proposal).unwrap(), Got::Proposal);
    assert_eq!(b.receive(&proposal).unwrap(), Got::Proposal);
    let commit = a.commit(None);
    assert_eq!(peer.deliver(&commit), None);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_agree(&mut a, &mut peer);
    assert_eq!(peer.member_count(), 2);

    let (mut a, mut peer, mut b) = three_members(new_peer, suite);
    let leaf = b.own_leaf();
    let proposal = a.propose_remove(leaf);
    assert_eq!(peer.deliver(&proposal), None);
    assert_eq!(b.receive(&proposal).unwrap(), Got::Proposal);
    let commit = peer.commit_pending();
    assert_eq!(a.receive(&commit).unwrap(), Got::Commit);
    assert_eq!(b.receive(&commit).unwrap(), Got::Commit);
    assert!(b.is_removed());
    assert_agree(&mut a, &mut peer);
    messages_both_ways(&mut a, &mut peer);
}

/// Handshake messages as PrivateMessages on both sides (RFC 9420 §6.3): Conclave with
/// `HandshakeWireFormat::Private`, the peer with [`PeerOptions::private_handshake`]. Commits
/// with a path and Update proposals by reference, both ways.
pub fn private_handshake<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let options = PeerOptions {
        private_handshake: true,
        ..PeerOptions::default()
    };
    let (mut c, mut peer) = pair(new_peer, suite, options, true);
    commits_with_path_both_ways(&mut c, &mut peer);

    let proposal = peer.propose_update();
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    // MLSMessage: version (2 bytes), then wire_format: mls_private_message(2).
    assert_eq!((&proposal[2..4], &commit[2..4]), (&[0, 2][..], &[0, 2][..]));
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    let proposal = c.propose_update();
    assert_eq!(peer.deliver(&proposal), None);
    let commit = peer.commit_pending();
    assert_eq!((&proposal[2..4], &commit[2..4]), (&[0, 2][..], &[0, 2][..]));
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);
}

/// The peer's options with the ratchet tree out of band.
fn out_of_band() -> PeerOptions {
    PeerOptions {
        out_of_band_tree: true,
        ..PeerOptions::default()
    }
}

/// Asserts that Conclave `c` cannot join from `welcome` alone: it carries no ratchet tree.
fn assert_needs_tree(c: &mut Conclave, welcome: &[u8]) {
    assert!(matches!(
        c.join(welcome),
        Err(conclave_mls::Error::MissingRatchetTree)
    ));
}

/// Ratchet tree out of band (§12.4.3.3): Conclave creates the group without the ratchet_tree
/// extension and adds the peer, which joins with Conclave's tree; then the peer (no extension
/// either) adds Conclave `b`, which cannot join from the Welcome alone but joins with the
/// peer's tree.
pub fn tree_out_of_band_conclave_creates<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = clients(new_peer, suite, out_of_band());
    c.create_group(b"interop tree out of band c");
    let (_commit, welcome) = c.add(&peer.fresh_key_package());
    // A failed join would consume OpenMLS's KeyPackage, so check Conclave's GroupInfo instead
    // of trying the peer without the tree.
    assert!(!c.group_info_has_tree());
    let tree = c.ratchet_tree();
    peer.try_join(&welcome, Some(&tree))
        .expect("the peer joins with Conclave's tree");
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);
    commits_with_path_both_ways(&mut c, &mut peer);

    let mut b = Conclave::new("conclave b", suite);
    let (commit, welcome) = peer.commit_add(&b.key_package());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_needs_tree(&mut b, &welcome);
    b.join_with_tree(&welcome, Some(&peer.ratchet_tree()))
        .expect("Conclave joins with the peer's tree");
    assert_agree(&mut b, &mut peer);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut b, &mut peer);
}

/// Ratchet tree out of band, the other way: the peer creates the group without the extension
/// and adds Conclave, which joins with the peer's tree; then Conclave adds a second peer `n`,
/// which joins with Conclave's tree.
pub fn tree_out_of_band_peer_creates<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = clients(new_peer, suite, out_of_band());
    peer.create_group();
    let (_commit, welcome) = peer.commit_add(&c.key_package());
    assert_needs_tree(&mut c, &welcome);
    c.join_with_tree(&welcome, Some(&peer.ratchet_tree()))
        .expect("Conclave joins with the peer's tree");
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);
    commits_with_path_both_ways(&mut c, &mut peer);

    let mut n = new_peer("peer n", suite, out_of_band());
    let (commit, welcome) = c.add(&n.fresh_key_package());
    assert_eq!(peer.deliver(&commit), None);
    assert!(!c.group_info_has_tree());
    let tree = c.ratchet_tree();
    n.try_join(&welcome, Some(&tree))
        .expect("the peer joins with Conclave's tree");
    assert_agree(&mut c, &mut n);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut n);
}

/// A two-member group whose leaves both list the private-use extension type.
fn custom_pair<P: Peer>(new_peer: NewPeer<P>, suite: u16, conclave_creates: bool) -> (Conclave, P) {
    let options = PeerOptions {
        custom_extension: true,
        ..PeerOptions::default()
    };
    pair(new_peer, suite, options, conclave_creates)
}

/// GroupContextExtensions (§12.1.7) committed by Conclave and processed by the peer:
/// required_capabilities naming a private-use extension type, and that extension; then the
/// peer proposes new extensions and Conclave commits them by reference.
pub fn gce_conclave_commits<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = custom_pair(new_peer, suite, true);
    let extensions = custom_context_extensions(b"set by Conclave");
    let commit = c.commit_extensions(extensions.clone());
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut peer);
    commits_with_path_both_ways(&mut c, &mut peer);

    let data = format!("proposed by {}", peer.implementation());
    let extensions = custom_context_extensions(data.as_bytes());
    let proposal = peer.propose_extensions(&extensions.encode().unwrap());
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut peer);
}

/// GroupContextExtensions committed by the peer and processed by Conclave; then Conclave
/// proposes new extensions and the peer commits them by reference.
pub fn gce_peer_commits<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = custom_pair(new_peer, suite, false);
    let data = format!("set by {}", peer.implementation());
    let extensions = custom_context_extensions(data.as_bytes());
    let commit = peer.commit_extensions(&extensions.encode().unwrap());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut peer);
    commits_with_path_both_ways(&mut c, &mut peer);

    let extensions = custom_context_extensions(b"proposed by Conclave");
    let proposal = c.propose(Proposal::GroupContextExtensions(GroupContextExtensions {
        extensions: extensions.clone(),
    }));
    assert_eq!(peer.deliver(&proposal), None);
    let commit = peer.commit_pending();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut peer);
}

/// External PSKs (§8.4): both hold the same PSK. Conclave commits a PreSharedKey proposal and
/// the peer processes it; the peer commits one and Conclave processes it; each proposes one
/// the other commits by reference; then each adds a new member (holding the PSK) with a PSK
/// in the same commit, so the PSK is also in the Welcome's GroupSecrets (§12.4.3.1).
pub fn external_psk<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = clients(new_peer, suite, PeerOptions::default());
    c.add_external_psk(PSK_ID, PSK_SECRET);
    peer.add_external_psk(PSK_ID, PSK_SECRET);
    form_group(&mut c, &mut peer, true);

    let commit = c.commit_psk(c.external_psk_id(PSK_ID));
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    let commit = peer.commit_external_psk(PSK_ID);
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);

    let proposal = peer.propose_external_psk(PSK_ID);
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    let proposal = c.propose(Proposal::PreSharedKey(PreSharedKey {
        psk: c.external_psk_id(PSK_ID),
    }));
    assert_eq!(peer.deliver(&proposal), None);
    let commit = peer.commit_pending();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);

    // Conclave adds a second peer `n` with the PSK in the same commit.
    let mut n = new_peer("peer n", suite, PeerOptions::default());
    n.add_external_psk(PSK_ID, PSK_SECRET);
    let MlsMessageBody::KeyPackage(kp) = decode(&n.fresh_key_package()).body else {
        panic!("not a KeyPackage")
    };
    let (commit, welcome) = c.commit_proposals(vec![
        Proposal::Add(Add { key_package: kp }),
        Proposal::PreSharedKey(PreSharedKey {
            psk: c.external_psk_id(PSK_ID),
        }),
    ]);
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(peer.deliver(&commit), None);
    n.join_welcome(&welcome.expect("a Welcome"));
    assert_agree(&mut c, &mut n);
    assert_agree(&mut c, &mut peer);

    // The peer adds Conclave `d` with the PSK in the same commit.
    let mut d = Conclave::new("conclave d", suite);
    d.add_external_psk(PSK_ID, PSK_SECRET);
    let (commit, welcome) = peer.add_with_external_psk(&d.key_package(), PSK_ID);
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_eq!(n.deliver(&commit), None);
    d.join(&welcome).expect("Conclave joins with the PSK");
    assert_agree(&mut d, &mut peer);
    assert_agree(&mut c, &mut n);
    messages_both_ways(&mut d, &mut peer);
}

/// Resumption PSKs (§8.6, usage `application`) of earlier epochs of the group: Conclave
/// commits one and the peer processes it, then the peer commits one and Conclave processes it.
pub fn resumption_psk<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    let (mut c, mut peer) = pair(new_peer, suite, PeerOptions::default(), true);
    commits_with_path_both_ways(&mut c, &mut peer);
    let epoch = c.group().epoch();

    let psk = c.resumption_psk_id(epoch - 1);
    let commit = c.commit_psk(psk);
    assert_injects_resumption_psk(&commit, epoch - 1);
    assert_eq!(peer.deliver(&commit), None);
    assert_agree(&mut c, &mut peer);
    let commit = peer.commit_resumption_psk(epoch - 2);
    assert_injects_resumption_psk(&commit, epoch - 2);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut peer);
    messages_both_ways(&mut c, &mut peer);
    commits_with_path_both_ways(&mut c, &mut peer);
}

/// The five-leaf group of [`crate::larger_group`], with a peer made by `new_peer`.
pub fn larger_group<P: Peer>(new_peer: NewPeer<P>, suite: u16) {
    crate::larger_group(&mut new_peer("peer", suite, PeerOptions::default()), suite);
}
