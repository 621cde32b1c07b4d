//! Conclave ⇄ OpenMLS 0.9 (`openmls_rust_crypto`, basic credentials), in the suites both
//! implement: 1 (X25519/AES-128-GCM/Ed25519), 2 (P-256/AES-128-GCM/P-256) and 3
//! (X25519/ChaCha20-Poly1305/Ed25519). Every message crosses as serialized `MLSMessage` bytes.
//! The scenarios both peers share are in `conclave_interop::scenarios`; the tests of what
//! OpenMLS does not implement (ReInit, branching) are here.

use conclave_interop::conclave_mls::codec::Encode;
use conclave_interop::conclave_mls::crypto::CipherSuite;
use conclave_interop::conclave_mls::messages::{ProtocolVersion, ReInit};
use conclave_interop::openmls_peer::OpenMls;
use conclave_interop::scenarios::pair;
use conclave_interop::{Got, Peer, PeerOptions, assert_agree, commits_with_path_both_ways};
use openmls::prelude::ReInitProposal;
use openmls::prelude::tls_codec::Deserialize as _;

/// ReInit (§11.2) with OpenMLS 0.9, which implements no ReInit: it processes a commit with a
/// ReInit and agrees on the epoch, but keeps the group open. §11.2: "A member who has sent
/// or received a Commit containing a ReInit proposal MUST NOT use the group to send messages
/// anymore." This test keeps that difference visible: after Conclave commits a ReInit,
/// Conclave refuses to encrypt in the closed group while OpenMLS still does. OpenMLS also
/// offers no way to create or join the new group (no reinit resumption PSK in a new group),
/// so the ReInit cannot be completed with it; and it cannot commit a ReInit (see below).
fn reinit_openmls_keeps_group_open(suite: u16) {
    let (mut c, mut o) = pair(OpenMls::with_options, suite, PeerOptions::default(), true);
    let commit = c.commit_reinit(b"interop reinit openmls new", suite);
    assert_eq!(o.receive(&commit), None);
    assert_agree(&mut c, &mut o);
    assert!(c.group().reinit().is_some());
    let closed = c.group.as_mut().unwrap();
    assert!(closed.encrypt_application(&c.provider, b"x", b"").is_err());
    // The departure from §11.2: OpenMLS still sends in the closed group.
    assert!(o.group().is_active());
    let _still_sent = o.send(b"after the ReInit");

    // Nor can OpenMLS commit a ReInit: given one by value (decoded from the wire `ReInit`,
    // §12.1.5), its commit builder filters it out (proposal_store.rs: "TODO #751"), so the
    // commit carries no proposal at all and closes nothing.
    let (mut c, mut o) = pair(OpenMls::with_options, suite, PeerOptions::default(), false);
    let reinit = ReInit {
        group_id: b"interop reinit openmls new".to_vec().into(),
        version: ProtocolVersion::MLS10,
        cipher_suite: CipherSuite(suite),
        extensions: vec![],
    };
    let reinit = ReInitProposal::tls_deserialize_exact(reinit.encode().unwrap()).unwrap();
    let (commit, _) = o.commit_with(
        &[],
        vec![openmls::prelude::Proposal::ReInit(Box::new(reinit))],
    );
    assert!(conclave_interop::committed_proposals(&commit).is_empty());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut o);
    assert!(c.group().reinit().is_none());
}

/// Subgroup branching (§11.3) with OpenMLS 0.9: unsupported. OpenMLS has no call to create a
/// branch, and it cannot join one: it looks up a resumption PSK named in a Welcome among the
/// new group's own (empty) store of past epochs, so the branch PSK of the parent group is
/// never found. Conclave branches a group with OpenMLS; OpenMLS fails to join.
fn branch_openmls_cannot_join(suite: u16) {
    let (mut c, mut o) = pair(OpenMls::with_options, suite, PeerOptions::default(), true);
    commits_with_path_both_ways(&mut c, &mut o);
    let welcome = c.branch(b"interop branch openmls child", &[o.key_package()]);
    let error = o
        .try_join(&welcome, None)
        .expect_err("OpenMLS cannot join a branch");
    assert!(error.contains("Psk"), "{error}");
}

/// Runs every scenario in one cipher suite, as `suite_N::scenario`.
macro_rules! in_suite {
    ($name:ident, $suite:expr) => {
        mod $name {
            use conclave_interop::openmls_peer::OpenMls;

            conclave_interop::two_party_tests!(OpenMls::with_options, $suite;
                tree_out_of_band_conclave_creates => tree_out_of_band_conclave_creates,
                tree_out_of_band_openmls_creates => tree_out_of_band_peer_creates,
                gce_conclave_commits => gce_conclave_commits,
                gce_openmls_commits => gce_peer_commits,
                external_psk => external_psk,
                resumption_psk => resumption_psk,
                conclave_creates_openmls_joins => conclave_creates_peer_joins,
                openmls_creates_conclave_joins => peer_creates_conclave_joins,
                conclave_removes_openmls => conclave_removes_peer,
                openmls_removes_conclave => peer_removes_conclave,
                remove_proposals_by_reference => remove_proposals_by_reference,
                private_handshake => private_handshake,
                larger_group => larger_group,
                update_proposals_by_reference => update_proposals_by_reference,
                conclave_joins_openmls_externally => conclave_joins_peer_externally,
                openmls_joins_conclave_externally => peer_joins_conclave_externally,
            );

            #[test]
            fn reinit_openmls_keeps_group_open() {
                super::super::reinit_openmls_keeps_group_open($suite)
            }
            #[test]
            fn branch_openmls_cannot_join() {
                super::super::branch_openmls_cannot_join($suite)
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
