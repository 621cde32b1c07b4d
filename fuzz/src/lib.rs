//! Shared fixture of the fuzz targets: a small live group built deterministically (every
//! random choice comes from `RustCrypto::from_seed`), and the real messages of that group
//! used as seed corpus. The targets and the `seeds` binary build the very same fixture, so
//! the seeds written by `seeds` are valid inputs for the state the targets restore.

use conclave_mls::codec::Encode;
use conclave_mls::group::HandshakeWireFormat;
use conclave_mls::identity::BasicCredentialsOnly;
use conclave_mls::messages::{Credential, Lifetime, Proposal, Remove, Welcome};
use conclave_mls::{
    CipherSuite, Group, GroupConfig, Identity, IdentityValidator, KeyPackageBundle,
    KeyPackageOptions, MlsMessage, Received, RustCrypto,
};
use std::sync::{Arc, OnceLock};

/// Suite 1.
pub const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;

/// A fixed, wide lifetime so that the fixture does not depend on the clock.
const LIFETIME: Lifetime = Lifetime {
    not_before: 1_600_000_000,
    not_after: 4_000_000_000,
};

/// Everything the targets need, as bytes or owned values (no `Group` is shared).
pub struct Fixture {
    /// Alice's exported state at epoch 1 (members: alice, bob, carol): the receiver of
    /// `process_message`.
    pub receiver_state: Vec<u8>,
    /// Real messages alice can process at that epoch: application messages, proposals and
    /// commits from bob (public handshakes) and carol (private handshakes), each made from
    /// a fresh copy of the sender's state so each is valid on its own.
    pub messages: Vec<(String, Vec<u8>)>,
    /// Dave, with a KeyPackage and its secrets, and a Welcome (an MlsMessage) adding him.
    pub joiner: Identity,
    /// Dave's KeyPackage and its private keys.
    pub joiner_key_package: KeyPackageBundle,
    /// The MlsMessage bytes of the Welcome that adds dave.
    pub welcome: Vec<u8>,
    /// A GroupInfo (MlsMessage bytes) of epoch 1, with the ratchet tree extension.
    pub group_info: Vec<u8>,
    /// The ratchet tree of epoch 1 (wire form).
    pub ratchet_tree: Vec<u8>,
}

/// The identity policy of every group of the fixture.
pub fn validator() -> Arc<dyn IdentityValidator> {
    Arc::new(BasicCredentialsOnly)
}

/// A deterministic provider.
pub fn provider(seed: u8) -> RustCrypto {
    RustCrypto::from_seed([seed; 32])
}

fn identity(p: &RustCrypto, name: &str) -> Identity {
    Identity::generate(
        p,
        SUITE,
        Credential::Basic {
            identity: name.as_bytes().to_vec().into(),
        },
    )
    .unwrap()
}

fn key_package(p: &RustCrypto, id: &Identity) -> KeyPackageBundle {
    KeyPackageBundle::generate(p, id, KeyPackageOptions::new(LIFETIME)).unwrap()
}

fn config(handshake: HandshakeWireFormat) -> GroupConfig {
    GroupConfig::default().with_handshake_wire_format(handshake)
}

fn join(
    p: &RustCrypto,
    id: &Identity,
    kp: &KeyPackageBundle,
    welcome: &MlsMessage,
    handshake: HandshakeWireFormat,
) -> Group {
    Group::join(welcome.clone(), id, kp, validator())
        .config(config(handshake))
        .join(p)
        .unwrap()
}

fn copy(state: &[u8]) -> Group {
    Group::import_state(state, validator()).unwrap()
}

impl Fixture {
    /// Builds the fixture from scratch (deterministic).
    pub fn build() -> Self {
        let p = provider(42);
        let alice_id = identity(&p, "alice");
        let bob_id = identity(&p, "bob");
        let carol_id = identity(&p, "carol");
        let dave_id = identity(&p, "dave");
        let bob_kp = key_package(&p, &bob_id);
        let carol_kp = key_package(&p, &carol_id);
        let dave_kp = key_package(&p, &dave_id);
        let erin_kp = key_package(&p, &identity(&p, "erin"));

        let mut alice = Group::builder(&alice_id, validator())
            .group_id(b"fuzz group".to_vec())
            .config(config(HandshakeWireFormat::Public))
            .build(&p)
            .unwrap();
        let out = alice
            .commit()
            .add_member(bob_kp.key_package().clone())
            .add_member(carol_kp.key_package().clone())
            .build(&p)
            .unwrap();
        alice.merge_pending_commit().unwrap();
        let welcome = out.welcome.expect("a Welcome");
        let bob = join(&p, &bob_id, &bob_kp, &welcome, HandshakeWireFormat::Public);
        let carol = join(
            &p,
            &carol_id,
            &carol_kp,
            &welcome,
            HandshakeWireFormat::Private,
        );
        assert_eq!(alice.epoch_authenticator(), bob.epoch_authenticator());
        assert_eq!(alice.epoch_authenticator(), carol.epoch_authenticator());

        let receiver_state = alice.export_state().unwrap();
        let bob_state = bob.export_state().unwrap();
        let carol_state = carol.export_state().unwrap();

        let mut messages = Vec::new();
        let mut push =
            |name: &str, m: MlsMessage| messages.push((name.to_string(), m.encode().unwrap()));
        for (who, state) in [("bob", &bob_state), ("carol", &carol_state)] {
            push(
                &format!("{who}_application"),
                copy(state)
                    .encrypt_application(&p, b"hello alice", b"authenticated data")
                    .unwrap(),
            );
            push(
                &format!("{who}_update_proposal"),
                copy(state).propose_update(&p).unwrap(),
            );
            push(
                &format!("{who}_remove_proposal"),
                copy(state)
                    .propose(&p, Proposal::Remove(Remove { removed: 0 }))
                    .unwrap(),
            );
            push(
                &format!("{who}_empty_commit"),
                copy(state).commit().force_path().build(&p).unwrap().commit,
            );
            let out = copy(state)
                .commit()
                .add_member(erin_kp.key_package().clone())
                .build(&p)
                .unwrap();
            push(&format!("{who}_add_commit"), out.commit);
            push(&format!("{who}_add_welcome"), out.welcome.unwrap());
            push(&format!("{who}_group_info"), out.group_info.unwrap());
        }
        let out = copy(&bob_state)
            .commit()
            .remove_member(copy(&carol_state).own_leaf())
            .build(&p)
            .unwrap();
        push("bob_remove_commit", out.commit);

        // Sanity: alice accepts every proposal, commit and application message.
        for (name, bytes) in &messages {
            if name.ends_with("welcome") || name.ends_with("group_info") {
                continue;
            }
            let m = <MlsMessage as conclave_mls::codec::Decode>::decode(bytes).unwrap();
            match copy(&receiver_state).process(&p, &m) {
                Ok(
                    Received::Application { .. } | Received::Proposal { .. } | Received::Commit(_),
                ) => {}
                other => panic!("seed {name}: {other:?}"),
            }
        }

        let mut alice2 = copy(&receiver_state);
        let out = alice2
            .commit()
            .add_member(dave_kp.key_package().clone())
            .build(&p)
            .unwrap();
        let welcome = out.welcome.unwrap().encode().unwrap();
        let group_info = alice2.group_info(&p).unwrap().encode().unwrap();
        let ratchet_tree = {
            let m = <MlsMessage as conclave_mls::codec::Decode>::decode(&welcome).unwrap();
            let dave = join(&p, &dave_id, &dave_kp, &m, HandshakeWireFormat::Public);
            dave.ratchet_tree().encode().unwrap()
        };

        Fixture {
            receiver_state,
            messages,
            joiner: dave_id,
            joiner_key_package: dave_kp,
            welcome,
            group_info,
            ratchet_tree,
        }
    }

    /// The fixture of this process, built on first use.
    pub fn get() -> &'static Fixture {
        static FIXTURE: OnceLock<Fixture> = OnceLock::new();
        FIXTURE.get_or_init(Fixture::build)
    }

    /// Just the Welcome body of [`Fixture::welcome`].
    pub fn welcome_body(&self) -> Welcome {
        let m = <MlsMessage as conclave_mls::codec::Decode>::decode(&self.welcome).unwrap();
        m.into_welcome().unwrap()
    }
}
