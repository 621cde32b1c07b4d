//! The whole protocol end to end (RFC 9420 §11–§12): a group grows from 2 to 20 members in
//! several cipher suites, exercising every proposal type, commits with and without a path,
//! proposals by reference, external proposals, external joins and resync, every kind of PSK,
//! subgroup branching and ReInit. After every step all members' epoch authenticators agree
//! and an application message reaches everyone.

use crate::common;

use common::{basic, basic_identity, join_request, key_package, required_capabilities};
use conclave_mls::codec::Encode;
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, Secret};
use conclave_mls::group::{
    CommitOutput, Group, GroupConfig, HandshakeWireFormat, Received, external_proposal,
};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::key_package::KeyPackageSecrets;
use conclave_mls::messages::{
    Credential, Extension, ExtensionType, ExternalSender, ExternalSenders, KeyPackage, MlsMessage,
    MlsMessageBody, PreSharedKeyId, Proposal, ProtocolVersion, Psk, ReInit, Remove,
    ResumptionPskUsage,
};
use std::collections::HashMap;
use std::sync::Arc;

struct Member {
    name: String,
    identity: Identity,
    group: Group,
}

/// How newcomers join: plainly, or continuing a group of `World` (§11.2 ReInit, §11.3
/// branch), each from its own state of that group (a branch member `x-branch` from `x`'s).
#[derive(Clone, Copy)]
enum Via<'w> {
    Plain,
    Branch(&'w World),
    ReInit(&'w World),
}

struct World {
    p: RustCrypto,
    suite: CipherSuite,
    members: Vec<Member>,
    counter: usize,
}

impl World {
    fn config(&self, i: usize) -> GroupConfig {
        // Alternate wire formats so both kinds of handshake meet each other.
        GroupConfig::default().with_handshake_wire_format(if i.is_multiple_of(2) {
            HandshakeWireFormat::Public
        } else {
            HandshakeWireFormat::Private
        })
    }

    fn identity(&mut self, suite: CipherSuite, name: &str) -> Identity {
        basic_identity(&self.p, suite, name)
    }

    fn key_package(&self, id: &Identity) -> (KeyPackage, KeyPackageSecrets) {
        key_package(&self.p, id)
    }

    fn index_of(&self, name: &str) -> usize {
        self.members.iter().position(|m| m.name == name).unwrap()
    }

    /// The group that the newcomer `name` of a branch or ReInit continues.
    fn old_group_of(&self, name: &str) -> &Group {
        let own = name.strip_suffix("-branch").unwrap_or(name);
        &self.members[self.index_of(own)].group
    }

    /// Everyone processes `commit`; the committer sees its own commit come back.
    fn deliver(&mut self, committer: Option<usize>, commit: &MlsMessage) {
        let p = &self.p;
        for (i, m) in self.members.iter_mut().enumerate() {
            match m
                .group
                .process(p, commit)
                .unwrap_or_else(|e| panic!("{} processing: {e}", m.name))
            {
                Received::OwnCommit => assert_eq!(Some(i), committer),
                Received::Commit(staged) => {
                    assert_ne!(Some(i), committer);
                    m.group.merge(*staged).unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn deliver_proposal(&mut self, from: Option<usize>, proposal: &MlsMessage) {
        let p = &self.p;
        for (i, m) in self.members.iter_mut().enumerate() {
            if Some(i) == from {
                continue;
            }
            assert!(
                matches!(
                    m.group.process(p, proposal).unwrap(),
                    Received::Proposal { .. }
                ),
                "{}",
                m.name
            );
        }
    }

    fn join_all(
        &mut self,
        out: &CommitOutput,
        new: Vec<(String, Identity, KeyPackage, KeyPackageSecrets)>,
        via: Via<'_>,
        external: HashMap<Vec<u8>, Secret>,
    ) {
        let MlsMessageBody::Welcome(welcome) = &out.welcome.as_ref().expect("a Welcome").body
        else {
            panic!()
        };
        for (name, identity, kp, secrets) in new {
            let i = self.members.len();
            let request = common::JoinRequest {
                external_psks: external.clone(),
                ..join_request(&identity, &kp, &secrets, welcome, self.config(i), basic())
            };
            let group = match via {
                Via::Plain => common::join(&self.p, request),
                Via::Branch(w) => common::join_resuming(
                    &self.p,
                    common::Resumes::Branch(w.old_group_of(&name)),
                    request,
                ),
                Via::ReInit(w) => common::join_resuming(
                    &self.p,
                    common::Resumes::ReInit(w.old_group_of(&name)),
                    request,
                ),
            }
            .unwrap_or_else(|e| panic!("{name} joining: {e}"));
            self.members.push(Member {
                name,
                identity,
                group,
            });
        }
    }

    fn check(&mut self) {
        let first = self.members[0].group.epoch_authenticator().to_vec();
        for m in &self.members {
            assert_eq!(
                m.group.epoch_authenticator(),
                first.as_slice(),
                "{} disagrees",
                m.name
            );
        }
        self.counter += 1;
        let from = self.counter % self.members.len();
        let text = format!("message {}", self.counter);
        let ct = self.members[from]
            .group
            .encrypt_application(&self.p, text.as_bytes(), b"")
            .unwrap();
        let p = &self.p;
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != from {
                match m.group.process(p, &ct).unwrap() {
                    Received::Application { data, .. } => assert_eq!(data, text.as_bytes()),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }

    /// `adder` adds `names` in one commit.
    fn add(&mut self, adder: usize, names: &[&str]) {
        let suite = self.suite;
        let mut new = Vec::new();
        let mut builder_kps = Vec::new();
        for name in names {
            let id = self.identity(suite, name);
            let (kp, secrets) = self.key_package(&id);
            builder_kps.push(kp.clone());
            new.push((name.to_string(), id, kp, secrets));
        }
        let mut b = self.members[adder].group.commit();
        for kp in builder_kps {
            b = b.add_member(kp);
        }
        let out = b.build(&self.p).unwrap();
        self.deliver(Some(adder), &out.commit);
        self.join_all(&out, new, Via::Plain, HashMap::new());
        self.check();
    }

    fn remove_member(&mut self, name: &str) -> Member {
        let i = self.index_of(name);
        self.members.remove(i)
    }
}

fn run(suite: CipherSuite) {
    let p = RustCrypto::default();
    let mut w = World {
        p,
        suite,
        members: vec![],
        counter: 0,
    };
    let server = w.p.signature_generate_key_pair(suite).unwrap();
    let external_senders = ExternalSenders(vec![ExternalSender {
        signature_key: server.public_key.clone().into(),
        credential: Credential::Basic {
            identity: b"delivery service".to_vec().into(),
        },
    }]);
    let extensions = vec![Extension {
        extension_type: ExtensionType::EXTERNAL_SENDERS,
        extension_data: external_senders.encode().unwrap().into(),
    }];
    let alice = w.identity(suite, "alice");
    let group = common::create(
        &w.p,
        &alice,
        b"conclave".to_vec(),
        extensions.clone(),
        w.config(0),
        Arc::new(BasicCredentialsOnly),
    )
    .unwrap();
    w.members.push(Member {
        name: "alice".into(),
        identity: alice,
        group,
    });

    // 1 → 2, then batches by different adders (commits without a path: adds only).
    w.add(0, &["m1"]);
    w.add(1, &["m2", "m3"]);
    w.add(2, &["m4", "m5", "m6"]);
    // An Add proposed by one member and committed by reference by another.
    let id = w.identity(suite, "m7");
    let (kp, secrets) = w.key_package(&id);
    let prop = w.members[3]
        .group
        .propose(
            &w.p,
            Proposal::Add(conclave_mls::messages::Add {
                key_package: kp.clone(),
            }),
        )
        .unwrap();
    w.deliver_proposal(Some(3), &prop);
    let out = w.members[5].group.commit().build(&w.p).unwrap();
    w.deliver(Some(5), &out.commit);
    w.join_all(
        &out,
        vec![("m7".into(), id, kp, secrets)],
        Via::Plain,
        HashMap::new(),
    );
    w.check();

    // A full commit (path) and an Update proposal committed by someone else.
    let out = w.members[4]
        .group
        .commit()
        .force_path()
        .build(&w.p)
        .unwrap();
    w.deliver(Some(4), &out.commit);
    w.check();
    let upd = w.members[6].group.propose_update(&w.p).unwrap();
    w.deliver_proposal(Some(6), &upd);
    let out = w.members[2].group.commit().build(&w.p).unwrap();
    w.deliver(Some(2), &out.commit);
    w.check();

    // Grow to 20.
    w.add(7, &["m8", "m9", "m10", "m11"]);
    w.add(0, &["m12", "m13", "m14", "m15", "m16", "m17", "m18", "m19"]);
    assert_eq!(w.members.len(), 20);

    // Remove by value, and a Remove proposed by the external sender.
    let target = w.members[w.index_of("m3")].group.own_leaf();
    let out = w.members[1]
        .group
        .commit()
        .remove_member(target)
        .build(&w.p)
        .unwrap();
    w.deliver(Some(1), &out.commit);
    w.remove_member("m3");
    w.check();
    let victim = w.index_of("m9");
    let leaf = w.members[victim].group.own_leaf();
    let (gid, epoch) = (
        w.members[0].group.group_id().to_vec(),
        w.members[0].group.epoch(),
    );
    let ext = external_proposal(
        &w.p,
        suite,
        &server.private_key,
        0,
        &gid,
        epoch,
        Proposal::Remove(Remove { removed: leaf.0 }),
    )
    .unwrap();
    w.deliver_proposal(None, &ext);
    let out = w.members[0].group.commit().build(&w.p).unwrap();
    w.deliver(Some(0), &out.commit);
    let removed = w.remove_member("m9");
    assert!(removed.group.is_removed());
    w.check();

    // PSKs: external, and resumption of an earlier epoch of this group.
    let nh = w.members[0]
        .group
        .export_secret(&w.p, b"nh", b"", 1)
        .map(|_| ())
        .ok();
    let _ = nh;
    let hash_len = conclave_mls::crypto::SuiteCrypto::new(&w.p, suite)
        .unwrap()
        .hash_len();
    for m in w.members.iter_mut() {
        m.group
            .add_external_psk(b"psk-1".to_vec(), Secret::new(vec![0x42; 32]));
    }
    let out = w.members[3]
        .group
        .commit()
        .psk(PreSharedKeyId {
            psk: Psk::External {
                psk_id: b"psk-1".to_vec().into(),
            },
            psk_nonce: vec![1; hash_len].into(),
        })
        .build(&w.p)
        .unwrap();
    w.deliver(Some(3), &out.commit);
    w.check();
    let previous = w.members[0].group.epoch() - 1;
    let out = w.members[8]
        .group
        .commit()
        .psk(PreSharedKeyId {
            psk: Psk::Resumption {
                usage: ResumptionPskUsage::Application,
                psk_group_id: gid.clone().into(),
                psk_epoch: previous,
            },
            psk_nonce: vec![2; hash_len].into(),
        })
        .build(&w.p)
        .unwrap();
    w.deliver(Some(8), &out.commit);
    w.check();

    // GroupContextExtensions: keep the external sender, add required_capabilities.
    let mut new_extensions = extensions.clone();
    new_extensions.push(required_capabilities());
    let out = w.members[10]
        .group
        .commit()
        .group_context_extensions(new_extensions)
        .build(&w.p)
        .unwrap();
    w.deliver(Some(10), &out.commit);
    w.check();

    // External join, then a resync by a member that "lost" its state.
    for (name, resync) in [("ext", None), ("m5", Some("m5"))] {
        let info = w.members[0].group.group_info(&w.p).unwrap();
        let MlsMessageBody::GroupInfo(info) = info.body else {
            panic!()
        };
        let (identity, old) = match resync {
            Some(n) => {
                let m = w.remove_member(n);
                (m.identity, Some(m.group.own_leaf()))
            }
            None => (w.identity(suite, name), None),
        };
        let (group, commit) = common::join_external(
            &w.p,
            common::ExternalJoinRequest {
                identity: &identity,
                group_info: &info,
                ratchet_tree: None,
                resync: old,
                authenticated_data: vec![],
                config: w.config(1),
                validator: Arc::new(BasicCredentialsOnly),
            },
        )
        .unwrap();
        w.deliver(None, &commit);
        w.members.push(Member {
            name: name.into(),
            identity,
            group,
        });
        w.check();
    }

    // Subgroup branching: alice branches with two members.
    let mut branch_new = Vec::new();
    let mut kps = Vec::new();
    for name in ["m1", "m2"] {
        let i = w.index_of(name);
        let identity = w.members[i].identity.clone();
        let (kp, secrets) = w.key_package(&identity);
        kps.push(kp.clone());
        branch_new.push((format!("{name}-branch"), identity, kp, secrets));
    }
    let alice_id = w.members[0].identity.clone();
    let (mut branch_group, out) = w.members[0]
        .group
        .branch(
            &w.p,
            &alice_id,
            b"branch".to_vec(),
            vec![],
            kps,
            GroupConfig::default(),
        )
        .unwrap();
    branch_group.merge_pending_commit().unwrap();
    let mut bw = World {
        p: RustCrypto::default(),
        suite,
        members: vec![Member {
            name: "alice-branch".into(),
            identity: alice_id.clone(),
            group: branch_group,
        }],
        counter: 0,
    };
    bw.join_all(&out, branch_new, Via::Branch(&w), HashMap::new());
    bw.check();

    // ReInit into another group id (and, for suite 1, another cipher suite).
    let new_suite = if suite == CipherSuite(1) {
        CipherSuite(3)
    } else {
        suite
    };
    let reinit = ReInit {
        group_id: b"reinit".to_vec().into(),
        version: ProtocolVersion::MLS10,
        cipher_suite: new_suite,
        extensions: vec![],
    };
    let out = w.members[2]
        .group
        .commit()
        .proposal(Proposal::ReInit(reinit))
        .build(&w.p)
        .unwrap();
    w.deliver(Some(2), &out.commit);
    for m in &w.members {
        assert!(m.group.reinit().is_some());
    }
    assert!(
        w.members[0]
            .group
            .encrypt_application(&w.p, b"x", b"")
            .is_err(),
        "a closed group sends nothing"
    );
    let creator = w.index_of("m4");
    let creator_id = w.identity(new_suite, "m4");
    let mut new = Vec::new();
    let mut kps = Vec::new();
    for (i, m) in w.members.iter().enumerate() {
        if i == creator {
            continue;
        }
        let id = Identity::generate(&w.p, new_suite, m.identity.credential.clone()).unwrap();
        let (kp, secrets) = key_package(&w.p, &id);
        kps.push(kp.clone());
        new.push((m.name.clone(), id, kp, secrets));
    }
    let (mut reinit_group, out) = w.members[creator]
        .group
        .reinit_group(&w.p, &creator_id, kps, GroupConfig::default())
        .unwrap();
    reinit_group.merge_pending_commit().unwrap();
    assert_eq!(reinit_group.epoch(), 1, "§11.2: the Welcome's epoch is 1");
    let mut rw = World {
        p: RustCrypto::default(),
        suite: new_suite,
        members: vec![Member {
            name: "m4".into(),
            identity: creator_id,
            group: reinit_group,
        }],
        counter: 0,
    };
    rw.join_all(&out, new, Via::ReInit(&w), HashMap::new());
    assert_eq!(rw.members.len(), w.members.len());
    rw.check();
}

#[test]
fn protocol_suite_1() {
    run(CipherSuite(1));
}

#[test]
fn protocol_suite_2() {
    run(CipherSuite(2));
}

#[test]
fn protocol_suite_3() {
    run(CipherSuite(3));
}

#[test]
fn protocol_suite_7() {
    run(CipherSuite(7));
}
