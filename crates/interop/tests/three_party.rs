//! One group of Conclave, OpenMLS 0.9 and mls-rs 0.57, in suites 1, 2 and 3 (the suites all
//! three implement, RFC 9420 §17.1). Each implementation adds and removes members and commits
//! with a path; every member processes every commit, and after each step all members agree
//! (epoch, epoch authenticator, exporter, group context extensions) and each one's application
//! message is read by all the others. Every message crosses as serialized `MLSMessage` bytes.

use conclave_interop::mls_rs_peer::mls_rs;
use conclave_interop::openmls_peer::OpenMls;
use conclave_interop::{Conclave, Member, assert_agree};

/// The group as the members see it: one entry per current member, whatever its
/// implementation.
struct Party {
    members: Vec<Box<dyn Member>>,
}

impl Party {
    /// Delivers `message` from member `from` to every other member.
    fn broadcast(&mut self, from: usize, message: &[u8]) {
        for (i, member) in self.members.iter_mut().enumerate() {
            if i != from {
                assert_eq!(member.deliver(message), None, "a handshake message");
            }
        }
    }

    /// Every member agrees with the first, and every member's message is read by all others.
    fn check(&mut self) {
        let (first, rest) = self.members.split_first_mut().expect("a member");
        for member in rest.iter_mut() {
            assert_agree(first.as_mut(), member.as_mut());
        }
        for from in 0..self.members.len() {
            let text = format!("from member {from}").into_bytes();
            let ct = self.members[from].send_application(&text);
            for (to, member) in self.members.iter_mut().enumerate() {
                if to != from {
                    assert_eq!(
                        member.deliver(&ct).as_deref(),
                        Some(&text[..]),
                        "{} reads member {from}",
                        member.implementation()
                    );
                }
            }
        }
    }

    /// Member `adder` adds `newcomer`; the others process the commit, the newcomer joins.
    fn add(&mut self, adder: usize, mut newcomer: Box<dyn Member>) {
        let key_package = newcomer.fresh_key_package();
        let (commit, welcome) = self.members[adder].commit_add(&key_package);
        self.broadcast(adder, &commit);
        newcomer.join_welcome(&welcome);
        self.members.push(newcomer);
        self.check();
    }

    /// Member `remover` removes member `removed`, which processes the commit and sees itself
    /// removed; it then leaves the party.
    fn remove(&mut self, remover: usize, removed: usize) {
        let leaf = self.members[removed].leaf_index();
        let commit = self.members[remover].commit_remove(leaf);
        self.broadcast(remover, &commit);
        assert!(!self.members[removed].is_member(), "removed");
        self.members.remove(removed);
        self.check();
    }

    /// Member `i` commits with a path; the others process it.
    fn update(&mut self, i: usize) {
        let commit = self.members[i].commit_path();
        self.broadcast(i, &commit);
        self.check();
    }

    /// The index of the first member made by `implementation`.
    fn index_of(&self, implementation: &str) -> usize {
        self.members
            .iter()
            .position(|m| m.implementation() == implementation)
            .expect("such a member")
    }
}

/// Conclave creates the group; OpenMLS and mls-rs join; each of the three commits with a path,
/// adds a member of each other implementation and removes one; all check agreement throughout.
fn three_party(suite: u16) {
    let mut creator = Conclave::new("conclave", suite);
    creator.create_group(b"interop three-party group");
    let mut party = Party {
        members: vec![Box::new(creator)],
    };
    // Conclave adds OpenMLS, then OpenMLS adds mls-rs.
    party.add(0, Box::new(OpenMls::new("openmls", suite)));
    party.add(1, Box::new(mls_rs("mls-rs", suite)));
    for i in 0..3 {
        party.update(i);
    }

    // mls-rs adds a second Conclave and a second OpenMLS; Conclave adds a second mls-rs;
    // OpenMLS adds a third Conclave.
    party.add(2, Box::new(Conclave::new("conclave 2", suite)));
    party.add(2, Box::new(OpenMls::new("openmls 2", suite)));
    party.add(0, Box::new(mls_rs("mls-rs 2", suite)));
    party.add(1, Box::new(Conclave::new("conclave 3", suite)));
    assert_eq!(party.members.len(), 7);

    // Removes by each implementation, each of a member of another implementation:
    // OpenMLS removes "conclave 2" (index 3), mls-rs removes "openmls 2", Conclave removes
    // "mls-rs 2".
    party.remove(1, 3);
    party.remove(2, 3);
    party.remove(0, 3);
    assert_eq!(party.members.len(), 4);

    // The remaining four commit with a path in turn; the blanks left by the removes are
    // refilled by new members of each implementation.
    for i in 0..4 {
        party.update(i);
    }
    party.add(3, Box::new(OpenMls::new("openmls 3", suite)));
    party.add(4, Box::new(mls_rs("mls-rs 3", suite)));
    party.add(5, Box::new(Conclave::new("conclave 4", suite)));
    for i in 0..party.members.len() {
        party.update(i);
    }

    // Finally the original OpenMLS and mls-rs members are removed by the others.
    let openmls = party.index_of("OpenMLS");
    party.remove(2, openmls);
    let mls_rs_member = party.index_of("mls-rs");
    party.remove(0, mls_rs_member);
}

mod suites {
    #[test]
    fn suite_1() {
        super::three_party(1)
    }
    #[test]
    fn suite_2() {
        super::three_party(2)
    }
    #[test]
    fn suite_3() {
        super::three_party(3)
    }
}
