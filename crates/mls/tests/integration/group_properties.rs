//! Randomized operation sequences over real groups (RFC 9420 §12): proptest draws a group of
//! 3–8 members and up to 12 operations — adds, removes, updates proposed by one member and
//! committed by another, empty commits with a path, application messages — each performed
//! by a randomly chosen member. Handshakes alternate between PublicMessage and
//! PrivateMessage by member. After every step all members agree on the epoch authenticator
//! and an application message from one member decrypts at every other.

use crate::common;

use common::{basic, basic_identity, join_request, key_package, welcome_of};
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{Group, GroupConfig, HandshakeWireFormat, Received};
use conclave_mls::identity::Identity;
use conclave_mls::messages::MlsMessage;
use proptest::collection::vec;
use proptest::prelude::*;

const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
/// Upper bound on the group size, so a run of Adds stays cheap.
const MAX_MEMBERS: usize = 10;

/// One step; the `usize`s pick members modulo the current group size.
#[derive(Debug, Clone)]
enum Op {
    Add { by: usize },
    Remove { by: usize, target: usize },
    Update { proposer: usize, committer: usize },
    EmptyCommit { by: usize },
    Application { from: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0..MAX_MEMBERS * 4;
    prop_oneof![
        m.clone().prop_map(|by| Op::Add { by }),
        (m.clone(), m.clone()).prop_map(|(by, target)| Op::Remove { by, target }),
        (m.clone(), m.clone()).prop_map(|(proposer, committer)| Op::Update {
            proposer,
            committer
        }),
        m.clone().prop_map(|by| Op::EmptyCommit { by }),
        m.prop_map(|from| Op::Application { from }),
    ]
}

struct World {
    p: RustCrypto,
    groups: Vec<Group>,
    next_name: usize,
}

fn config(n: usize) -> GroupConfig {
    GroupConfig::default().with_handshake_wire_format(if n.is_multiple_of(2) {
        HandshakeWireFormat::Public
    } else {
        HandshakeWireFormat::Private
    })
}

impl World {
    fn new(size: usize) -> Self {
        let p = RustCrypto::default();
        let creator = Self::identity(&p, 0);
        let group = common::create(
            &p,
            &creator,
            b"properties".to_vec(),
            vec![],
            config(0),
            basic(),
        )
        .unwrap();
        let mut world = Self {
            p,
            groups: vec![group],
            next_name: 1,
        };
        for _ in 1..size {
            world.add(0);
        }
        world
    }

    fn identity(p: &RustCrypto, n: usize) -> Identity {
        basic_identity(p, SUITE, &format!("member-{n}"))
    }

    /// Everyone processes `commit`; only `committer` sees it as its own.
    fn deliver(&mut self, committer: usize, commit: &MlsMessage) {
        let p = &self.p;
        let mut removed = Vec::new();
        for (i, g) in self.groups.iter_mut().enumerate() {
            match g.process(p, commit).unwrap() {
                Received::OwnCommit => assert_eq!(i, committer),
                Received::Commit(staged) => {
                    assert_ne!(i, committer);
                    let gone = staged.removes_us();
                    g.merge(*staged).unwrap();
                    assert_eq!(gone, g.is_removed());
                    if gone {
                        removed.push(i);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        for i in removed.into_iter().rev() {
            self.groups.remove(i);
        }
    }

    fn add(&mut self, by: usize) {
        let name = self.next_name;
        self.next_name += 1;
        let id = Self::identity(&self.p, name);
        let (kp, secrets) = key_package(&self.p, &id);
        let out = self.groups[by]
            .commit()
            .add_member(kp.clone())
            .build(&self.p)
            .unwrap();
        self.deliver(by, &out.commit);
        let welcome = welcome_of(out.welcome.as_ref().unwrap());
        let request = join_request(&id, &kp, &secrets, welcome, config(name), basic());
        let group = common::join(&self.p, request).unwrap();
        self.groups.push(group);
    }

    fn apply(&mut self, op: &Op) {
        let n = self.groups.len();
        match *op {
            Op::Add { by } if n < MAX_MEMBERS => self.add(by % n),
            Op::Remove { by, target } if n > 2 => {
                let by = by % n;
                // Any member but the committer.
                let target = (by + 1 + target % (n - 1)) % n;
                let leaf = self.groups[target].own_leaf();
                let out = self.groups[by]
                    .commit()
                    .remove_member(leaf)
                    .build(&self.p)
                    .unwrap();
                self.deliver(by, &out.commit);
                assert_eq!(self.groups.len(), n - 1);
            }
            Op::Update {
                proposer,
                committer,
            } => {
                let proposer = proposer % n;
                let committer = (proposer + 1 + committer % (n - 1)) % n;
                let proposal = self.groups[proposer].propose_update(&self.p).unwrap();
                for (i, g) in self.groups.iter_mut().enumerate() {
                    if i != proposer {
                        assert!(matches!(
                            g.process(&self.p, &proposal).unwrap(),
                            Received::Proposal { .. }
                        ));
                    }
                }
                let out = self.groups[committer].commit().build(&self.p).unwrap();
                self.deliver(committer, &out.commit);
            }
            Op::Application { from } => self.message_from(from % n),
            // Adds beyond the cap, removes below 2 and empty commits: a commit with a path.
            Op::Add { by } | Op::Remove { by, .. } | Op::EmptyCommit { by } => {
                let by = by % n;
                let out = self.groups[by]
                    .commit()
                    .force_path()
                    .build(&self.p)
                    .unwrap();
                self.deliver(by, &out.commit);
            }
        }
    }

    fn message_from(&mut self, from: usize) {
        let text = format!("from {from} in epoch {}", self.groups[from].epoch());
        let expected = self.groups[from].own_leaf();
        let ct = self.groups[from]
            .encrypt_application(&self.p, text.as_bytes(), b"ad")
            .unwrap();
        for (i, g) in self.groups.iter_mut().enumerate() {
            if i == from {
                continue;
            }
            match g.process(&self.p, &ct).unwrap() {
                Received::Application {
                    data,
                    authenticated_data,
                    sender,
                    ..
                } => {
                    assert_eq!(data, text.as_bytes());
                    assert_eq!(authenticated_data, b"ad");
                    assert_eq!(sender, expected);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn check_agreement(&self, step: usize) {
        let first = &self.groups[0];
        for g in &self.groups {
            assert_eq!(g.epoch(), first.epoch(), "step {step}");
            assert_eq!(
                g.epoch_authenticator(),
                first.epoch_authenticator(),
                "step {step}"
            );
            assert_eq!(g.members().count(), self.groups.len(), "step {step}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_operations_keep_members_in_agreement(
        size in 3usize..=8,
        ops in vec(op(), 1..=12),
    ) {
        let mut world = World::new(size);
        world.check_agreement(0);
        for (step, op) in ops.iter().enumerate() {
            world.apply(op);
            world.check_agreement(step + 1);
            // Messages decrypt after every step, from a member that depends on the step.
            let from = step % world.groups.len();
            world.message_from(from);
        }
    }
}
