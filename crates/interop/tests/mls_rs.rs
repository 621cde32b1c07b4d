//! Conclave ⇄ mls-rs 0.57 (`mls-rs-crypto-rustcrypto`, basic credentials), in suites 1
//! (X25519/AES-128-GCM/Ed25519), 2 (P-256/AES-128-GCM/P-256), 3
//! (X25519/ChaCha20-Poly1305/Ed25519) and 7 (P-384/AES-256-GCM/P-384). Every message
//! crosses as serialized `MLSMessage` bytes.

use conclave_interop::conclave_mls::codec::Encode;
use conclave_interop::conclave_mls::messages::{GroupContextExtensions, PreSharedKey, Proposal};
use conclave_interop::mls_rs_peer::{MlsRs, MlsRsOptions, mls_rs, mls_rs_with};
use conclave_interop::{
    Conclave, Got, assert_agree, assert_injects_external_psk, assert_injects_resumption_psk,
    commits_with_path_both_ways, custom_context_extensions, messages_both_ways,
};
use mls_rs::client_builder::MlsConfig;

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
    let mut m = mls_rs_with(
        "mls-rs",
        suite,
        MlsRsOptions {
            private_handshake: true,
            ..Default::default()
        },
    );
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

/// The five-leaf group of [`conclave_interop::larger_group`], with this peer.
fn larger_group(suite: u16) {
    conclave_interop::larger_group(&mut mls_rs("peer", suite), suite);
}

/// The external PSK both sides hold in the PSK scenarios (§8.4).
const PSK_ID: &[u8] = b"interop external psk";
const PSK_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// mls-rs options with the ratchet tree out of band.
fn out_of_band() -> MlsRsOptions {
    MlsRsOptions {
        out_of_band_tree: true,
        ..Default::default()
    }
}

/// Ratchet tree out of band (§12.4.3.3): Conclave creates the group without the ratchet_tree
/// extension and adds mls-rs, which joins with Conclave's tree; then mls-rs (no extension
/// either) adds Conclave `b`, which cannot join from the Welcome alone but joins with
/// mls-rs's tree.
fn tree_out_of_band_conclave_creates(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    c.config.ratchet_tree_extension = false;
    let mut m = mls_rs_with("mls-rs", suite, out_of_band());
    c.create_group(b"interop tree out of band c");
    let (_commit, welcome) = c.add(&m.key_package());
    assert!(!c.group_info_has_tree());
    m.try_join(&welcome, Some(&c.ratchet_tree()))
        .expect("mls-rs joins with Conclave's tree");
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);

    let mut b = Conclave::new("conclave b", suite);
    let (commit, welcome) = m.add(&b.key_package());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert!(matches!(
        b.join(&welcome),
        Err(conclave_interop::conclave_mls::Error::MissingRatchetTree)
    ));
    b.join_with_tree(&welcome, Some(&m.ratchet_tree()))
        .expect("Conclave joins with mls-rs's tree");
    assert_agree(&mut b, &mut m);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut b, &mut m);
}

/// Ratchet tree out of band, the other way: mls-rs creates the group without the extension
/// and adds Conclave, which joins with mls-rs's tree; then Conclave adds mls-rs `n`, which
/// joins with Conclave's tree.
fn tree_out_of_band_mls_rs_creates(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    c.config.ratchet_tree_extension = false;
    let mut m = mls_rs_with("mls-rs", suite, out_of_band());
    m.create_group();
    let (_commit, welcome) = m.add(&c.key_package());
    assert!(matches!(
        c.join(&welcome),
        Err(conclave_interop::conclave_mls::Error::MissingRatchetTree)
    ));
    c.join_with_tree(&welcome, Some(&m.ratchet_tree()))
        .expect("Conclave joins with mls-rs's tree");
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);

    let mut n = mls_rs_with("mls-rs n", suite, out_of_band());
    let (commit, welcome) = c.add(&n.key_package());
    assert_eq!(m.receive(&commit), None);
    assert!(!c.group_info_has_tree());
    n.try_join(&welcome, Some(&c.ratchet_tree()))
        .expect("mls-rs joins with Conclave's tree");
    assert_agree(&mut c, &mut n);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut n);
}

/// A two-member group whose leaves both list the private-use extension type.
fn custom_pair(suite: u16, conclave_creates: bool) -> (Conclave, MlsRs<impl MlsConfig>) {
    let mut c = Conclave::new("conclave", suite);
    c.support_custom_extension();
    let mut m = mls_rs_with(
        "mls-rs",
        suite,
        MlsRsOptions {
            custom_extension: true,
            ..Default::default()
        },
    );
    if conclave_creates {
        c.create_group(b"interop gce");
        let (_commit, welcome) = c.add(&m.key_package());
        m.join(&welcome);
    } else {
        m.create_group();
        let (_commit, welcome) = m.add(&c.key_package());
        c.join(&welcome).expect("Conclave joins");
    }
    assert_agree(&mut c, &mut m);
    (c, m)
}

/// GroupContextExtensions (§12.1.7) committed by Conclave and processed by mls-rs:
/// required_capabilities naming a private-use extension type, and that extension; then
/// mls-rs proposes new extensions and Conclave commits them by reference.
fn gce_conclave_commits(suite: u16) {
    let (mut c, mut m) = custom_pair(suite, true);
    let extensions = custom_context_extensions(b"set by Conclave");
    let commit = c.commit_extensions(extensions.clone());
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);

    let extensions = custom_context_extensions(b"proposed by mls-rs");
    let proposal = m.propose_extensions(&extensions.encode().unwrap());
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut m);
}

/// GroupContextExtensions committed by mls-rs and processed by Conclave; then Conclave
/// proposes new extensions and mls-rs commits them by reference.
fn gce_mls_rs_commits(suite: u16) {
    let (mut c, mut m) = custom_pair(suite, false);
    let extensions = custom_context_extensions(b"set by mls-rs");
    let commit = m.commit_extensions(&extensions.encode().unwrap());
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);

    let extensions = custom_context_extensions(b"proposed by Conclave");
    let proposal = c.propose(Proposal::GroupContextExtensions(GroupContextExtensions {
        extensions: extensions.clone(),
    }));
    assert_eq!(m.receive(&proposal), None);
    let commit = m.commit_update();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);
    assert_eq!(c.group().context().extensions, extensions);
    messages_both_ways(&mut c, &mut m);
}

/// External PSKs (§8.4): both hold the same PSK. Conclave commits a PreSharedKey proposal and
/// mls-rs processes it; mls-rs commits one and Conclave processes it; each proposes one the
/// other commits by reference; then each adds a new member (holding the PSK) with a PSK in
/// the same commit, so the PSK is also in the Welcome's GroupSecrets (§12.4.3.1).
fn external_psk(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    c.add_external_psk(PSK_ID, PSK_SECRET);
    let mut m = mls_rs("mls-rs", suite);
    m.add_external_psk(PSK_ID, PSK_SECRET);
    c.create_group(b"interop external psk");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);

    let commit = c.commit_psk(c.external_psk_id(PSK_ID));
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    let commit = m.commit_external_psk(PSK_ID);
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);

    let proposal = m.propose_external_psk(PSK_ID);
    assert_eq!(c.receive(&proposal).unwrap(), Got::Proposal);
    let commit = c.commit(None);
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    let proposal = c.propose(Proposal::PreSharedKey(PreSharedKey {
        psk: c.external_psk_id(PSK_ID),
    }));
    assert_eq!(m.receive(&proposal), None);
    let commit = m.commit_update();
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);

    // Conclave adds mls-rs `n` with the PSK in the same commit.
    let mut n = mls_rs("mls-rs n", suite);
    n.add_external_psk(PSK_ID, PSK_SECRET);
    let kp = conclave_interop::decode(&n.key_package());
    let conclave_interop::conclave_mls::messages::MlsMessageBody::KeyPackage(kp) = kp.body else {
        panic!("not a KeyPackage")
    };
    let (commit, welcome) = c.commit_proposals(vec![
        Proposal::Add(conclave_interop::conclave_mls::messages::Add { key_package: kp }),
        Proposal::PreSharedKey(PreSharedKey {
            psk: c.external_psk_id(PSK_ID),
        }),
    ]);
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(m.receive(&commit), None);
    n.join(&welcome.expect("a Welcome"));
    assert_agree(&mut c, &mut n);
    assert_agree(&mut c, &mut m);

    // mls-rs adds Conclave `d` with the PSK in the same commit.
    let mut d = Conclave::new("conclave d", suite);
    d.add_external_psk(PSK_ID, PSK_SECRET);
    let (commit, welcome) = m.add_with_external_psk(&d.key_package(), PSK_ID);
    assert_injects_external_psk(&commit, PSK_ID);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_eq!(n.receive(&commit), None);
    d.join(&welcome).expect("Conclave joins with the PSK");
    assert_agree(&mut d, &mut m);
    assert_agree(&mut c, &mut n);
    messages_both_ways(&mut d, &mut m);
}

/// Resumption PSKs (§8.6, usage `application`) of earlier epochs of the group: Conclave
/// commits one and mls-rs processes it, then mls-rs commits one and Conclave processes it.
fn resumption_psk(suite: u16) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    c.create_group(b"interop resumption psk");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);
    commits_with_path_both_ways(&mut c, &mut m);
    let epoch = c.group().epoch();

    let psk = c.resumption_psk_id(epoch - 1);
    let commit = c.commit_psk(psk);
    assert_injects_resumption_psk(&commit, epoch - 1);
    assert_eq!(m.receive(&commit), None);
    assert_agree(&mut c, &mut m);
    let commit = m.commit_resumption_psk(epoch - 2);
    assert_injects_resumption_psk(&commit, epoch - 2);
    assert_eq!(c.receive(&commit).unwrap(), Got::Commit);
    assert_agree(&mut c, &mut m);
    messages_both_ways(&mut c, &mut m);
    commits_with_path_both_ways(&mut c, &mut m);
}

/// The suite a ReInit moves to: another one both sides implement.
fn other_suite(suite: u16) -> u16 {
    if suite == 1 { 3 } else { 1 }
}

/// ReInit (§11.2) to another cipher suite: one side commits the ReInit (which the other
/// processes; both groups are then closed), then one side creates the new group with the
/// reinit resumption PSK and the other joins it from the Welcome.
fn reinit(suite: u16, conclave_commits: bool, conclave_creates: bool) {
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    c.create_group(b"interop reinit old");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);
    commits_with_path_both_ways(&mut c, &mut m);

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
    let mut c = Conclave::new("conclave", suite);
    let mut m = mls_rs("mls-rs", suite);
    c.create_group(b"interop branch parent");
    let (_commit, welcome) = c.add(&m.key_package());
    m.join(&welcome);
    commits_with_path_both_ways(&mut c, &mut m);

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

fn reinit_conclave_commits_conclave_creates(suite: u16) {
    reinit(suite, true, true)
}
fn reinit_conclave_commits_mls_rs_creates(suite: u16) {
    reinit(suite, true, false)
}
fn reinit_mls_rs_commits_conclave_creates(suite: u16) {
    reinit(suite, false, true)
}
fn reinit_mls_rs_commits_mls_rs_creates(suite: u16) {
    reinit(suite, false, false)
}
fn conclave_branches(suite: u16) {
    branch(suite, true)
}
fn mls_rs_branches(suite: u16) {
    branch(suite, false)
}

/// Runs every scenario in one cipher suite, as `suite_N::scenario`.
macro_rules! in_suite {
    ($name:ident, $suite:expr) => {
        mod $name {
            #[test]
            fn tree_out_of_band_conclave_creates() {
                super::super::tree_out_of_band_conclave_creates($suite)
            }
            #[test]
            fn tree_out_of_band_mls_rs_creates() {
                super::super::tree_out_of_band_mls_rs_creates($suite)
            }
            #[test]
            fn gce_conclave_commits() {
                super::super::gce_conclave_commits($suite)
            }
            #[test]
            fn gce_mls_rs_commits() {
                super::super::gce_mls_rs_commits($suite)
            }
            #[test]
            fn external_psk() {
                super::super::external_psk($suite)
            }
            #[test]
            fn resumption_psk() {
                super::super::resumption_psk($suite)
            }
            #[test]
            fn reinit_conclave_commits_conclave_creates() {
                super::super::reinit_conclave_commits_conclave_creates($suite)
            }
            #[test]
            fn reinit_conclave_commits_mls_rs_creates() {
                super::super::reinit_conclave_commits_mls_rs_creates($suite)
            }
            #[test]
            fn reinit_mls_rs_commits_conclave_creates() {
                super::super::reinit_mls_rs_commits_conclave_creates($suite)
            }
            #[test]
            fn reinit_mls_rs_commits_mls_rs_creates() {
                super::super::reinit_mls_rs_commits_mls_rs_creates($suite)
            }
            #[test]
            fn conclave_branches() {
                super::super::conclave_branches($suite)
            }
            #[test]
            fn mls_rs_branches() {
                super::super::mls_rs_branches($suite)
            }
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
