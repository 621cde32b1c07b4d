//! Conclave ⇄ mls-rs 0.57 (`mls-rs-crypto-rustcrypto`, basic credentials), in suites 1
//! (X25519/AES-128-GCM/Ed25519), 2 (P-256/AES-128-GCM/P-256), 3
//! (X25519/ChaCha20-Poly1305/Ed25519) and 7 (P-384/AES-256-GCM/P-384). Every message
//! crosses as serialized `MLSMessage` bytes. The scenarios both peers share are in
//! `conclave_interop::scenarios`; ReInit and branching, which only mls-rs completes, are here.

use conclave_interop::mls_rs_peer::{MlsRs, mls_rs_with};
use conclave_interop::scenarios::pair;
use conclave_interop::{
    Conclave, Got, PeerOptions, assert_agree, commits_with_path_both_ways, messages_both_ways,
};
use mls_rs::client_builder::MlsConfig;

/// Conclave and mls-rs in a two-member group made by Conclave, after a commit with a path
/// from each side.
fn two_members(suite: u16) -> (Conclave, MlsRs<impl MlsConfig>) {
    let (mut c, mut m) = pair(mls_rs_with, suite, PeerOptions::default(), true);
    commits_with_path_both_ways(&mut c, &mut m);
    (c, m)
}

/// The suite a ReInit moves to: another one both sides implement.
fn other_suite(suite: u16) -> u16 {
    if suite == 1 { 3 } else { 1 }
}

/// ReInit (§11.2) to another cipher suite: one side commits the ReInit (which the other
/// processes; both groups are then closed), then one side creates the new group with the
/// reinit resumption PSK and the other joins it from the Welcome.
fn reinit(suite: u16, conclave_commits: bool, conclave_creates: bool) {
    let (mut c, mut m) = two_members(suite);

    let new_suite = other_suite(suite);
    let new_id = b"interop reinit new";
    if conclave_commits {
        let commit = c.commit_reinit(new_id, new_suite);
        assert_eq!(m.receive(&commit), None);
    } else {
        let commit = m.commit_reinit(new_id, new_suite);
        assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    }
    assert_agree(&mut c, &mut m);
    let reinit = c
        .group()
        .reinit()
        .expect("the group is closed by the ReInit");
    assert_eq!(reinit.cipher_suite.0, new_suite);
    let closed = c.group.as_mut().unwrap();
    assert!(closed.encrypt_application(&c.provider, b"x", b"").is_err());

    c.switch_suite(new_suite);
    m.start_reinit(new_suite);
    if conclave_creates {
        let kp = m.reinit_key_package();
        let welcome = c.create_reinit_group(&[kp]);
        m.join_reinit_group(&welcome);
    } else {
        let kp = c.key_package();
        let welcome = m.create_reinit_group(&[kp]);
        c.join_resumed(&welcome)
            .expect("Conclave joins the ReInit group");
    }
    assert_eq!(c.group().group_id(), new_id);
    assert_eq!(c.group().cipher_suite().0, new_suite);
    assert_eq!(c.group().epoch(), 1);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);
}

/// Subgroup branching (§11.3): one side branches the two-member group into a new group with
/// the branch resumption PSK; the other joins from the Welcome.
fn branch(suite: u16, conclave_branches: bool) {
    let (mut c, mut m) = two_members(suite);

    let sub_id = b"interop branch child";
    if conclave_branches {
        let kp = m.key_package();
        let welcome = c.branch(sub_id, &[kp]);
        m.join_branch(&welcome);
    } else {
        let kp = c.key_package();
        let welcome = m.branch(sub_id, &[kp]);
        c.join_resumed(&welcome).expect("Conclave joins the branch");
    }
    assert_eq!(c.group().group_id(), sub_id);
    assert_eq!(c.group().epoch(), 1);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);
}

/// Runs every scenario in one cipher suite, as `suite_N::scenario`.
macro_rules! in_suite {
    ($name:ident, $suite:expr) => {
        mod $name {
            use conclave_interop::mls_rs_peer::mls_rs_with;

            conclave_interop::two_party_tests!(mls_rs_with, $suite;
                tree_out_of_band_conclave_creates => tree_out_of_band_conclave_creates,
                tree_out_of_band_mls_rs_creates => tree_out_of_band_peer_creates,
                gce_conclave_commits => gce_conclave_commits,
                gce_mls_rs_commits => gce_peer_commits,
                external_psk => external_psk,
                resumption_psk => resumption_psk,
                conclave_creates_mls_rs_joins => conclave_creates_peer_joins,
                mls_rs_creates_conclave_joins => peer_creates_conclave_joins,
                conclave_removes_mls_rs => conclave_removes_peer,
                mls_rs_removes_conclave => peer_removes_conclave,
                remove_proposals_by_reference => remove_proposals_by_reference,
                private_handshake => private_handshake,
                larger_group => larger_group,
                update_proposals_by_reference => update_proposals_by_reference,
                conclave_joins_mls_rs_externally => conclave_joins_peer_externally,
                mls_rs_joins_conclave_externally => peer_joins_conclave_externally,
            );

            #[test]
            fn reinit_conclave_commits_conclave_creates() {
                super::super::reinit($suite, true, true)
            }
            #[test]
            fn reinit_conclave_commits_mls_rs_creates() {
                super::super::reinit($suite, true, false)
            }
            #[test]
            fn reinit_mls_rs_commits_conclave_creates() {
                super::super::reinit($suite, false, true)
            }
            #[test]
            fn reinit_mls_rs_commits_mls_rs_creates() {
                super::super::reinit($suite, false, false)
            }
            #[test]
            fn conclave_branches() {
                super::super::branch($suite, true)
            }
            #[test]
            fn mls_rs_branches() {
                super::super::branch($suite, false)
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
