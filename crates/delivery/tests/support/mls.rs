//! Every use of `conclave-mls` in the DS tests: real groups whose messages go through the DS.

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::group::HandshakeWireFormat;
use conclave_mls::identity::BasicCredentialsOnly;
use conclave_mls::messages::{Credential, Lifetime};
use conclave_mls::{
    CipherSuite, CryptoProvider, Group, GroupConfig, Identity, KeyPackageBundle, KeyPackageOptions,
    LeafIndex, MlsMessage, Received, RustCrypto,
};
use ed25519_dalek::SigningKey;
use std::sync::Arc;

/// The exporter label of the group auth key (the client's derivation, mirrored here).
pub const AUTH_KEY_LABEL: &[u8] = b"conclave ds group auth key";

/// The exporter label of the key that seals external commits for the members.
pub const ENVELOPE_KEY_LABEL: &[u8] = b"conclave ds external commit envelope";

/// What members hand an external joiner inside the sealed GroupInfo bundle.
pub struct ExternalInvite {
    /// The GroupInfo `MLSMessage`.
    pub group_info: Vec<u8>,
    /// The key that seals the joiner's external commit for the members.
    pub envelope_key: Vec<u8>,
    /// The external commit key of the epoch (signs the commit request to the DS).
    pub commit_key: SigningKey,
}

impl ExternalInvite {
    /// The bundle's plaintext: commit key, envelope key, GroupInfo.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.commit_key.to_bytes().to_vec();
        b.extend_from_slice(&self.envelope_key);
        b.extend_from_slice(&self.group_info);
        b
    }

    /// Reads [`Self::to_bytes`].
    pub fn from_bytes(b: &[u8]) -> Self {
        let key: [u8; 32] = b[..32].try_into().expect("commit key");
        ExternalInvite {
            commit_key: SigningKey::from_bytes(&key),
            envelope_key: b[32..48].to_vec(),
            group_info: b[48..].to_vec(),
        }
    }
}

/// A client about to join: its identity, KeyPackage and the KeyPackage's private keys.
pub struct Joiner {
    identity: Identity,
    key_package: KeyPackageBundle,
    /// The KeyPackage as bytes (what a pool would hold, sealed).
    pub bytes: Vec<u8>,
}

/// A commit built but not yet accepted by the DS.
pub struct Proposed {
    /// The commit `MLSMessage`.
    pub commit: Vec<u8>,
    /// The Welcome `MLSMessage`, if the commit adds members.
    pub welcome: Option<Vec<u8>>,
    /// The group auth key of the epoch the commit starts.
    pub next_key: SigningKey,
}

/// What processing a message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Processed {
    /// An application message's plaintext.
    Application(Vec<u8>),
    /// A commit by another member, merged; whether it removed us.
    Commit { removed_us: bool },
    /// Our own commit, merged.
    OwnCommit,
    /// Anything else.
    Other,
}

/// The MLS side of a test.
pub struct Mls {
    provider: RustCrypto,
    suite: CipherSuite,
    policy: Arc<BasicCredentialsOnly>,
}

fn config() -> GroupConfig {
    // Handshakes as PrivateMessages: the DS sees only group id, epoch and content type.
    GroupConfig::default().with_handshake_wire_format(HandshakeWireFormat::Private)
}

impl Mls {
    /// A provider, suite 1 and a test-only credential policy.
    pub fn new() -> Self {
        Mls {
            provider: RustCrypto::default(),
            suite: CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519,
            policy: Arc::new(BasicCredentialsOnly),
        }
    }

    fn identity(&self, name: &str) -> Identity {
        Identity::generate(&self.provider, self.suite, Credential::basic(name)).expect("identity")
    }

    /// A new client with a fresh KeyPackage.
    pub fn joiner(&self, name: &str) -> Joiner {
        let identity = self.identity(name);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let key_package = KeyPackageBundle::generate(
            &self.provider,
            &identity,
            KeyPackageOptions::new(Lifetime::starting_at(now.saturating_sub(60), 86_400)),
        )
        .expect("key package");
        let bytes = key_package.message().encode().expect("encode");
        Joiner {
            identity,
            key_package,
            bytes,
        }
    }

    /// A group created by `name`, at epoch 0.
    pub fn create_group(&self, name: &str, group_id: &[u8]) -> Group {
        Group::builder(&self.identity(name), self.policy.clone())
            .group_id(group_id.to_vec())
            .config(config())
            .build(&self.provider)
            .expect("group")
    }

    /// The group auth key of the group's current epoch.
    pub fn auth_key(&self, group: &Group) -> SigningKey {
        let secret = group
            .export_secret(&self.provider, AUTH_KEY_LABEL, b"", 32)
            .expect("exporter");
        let bytes: [u8; 32] = secret.as_bytes().try_into().expect("32 bytes");
        SigningKey::from_bytes(&bytes)
    }

    fn proposed(&self, group: &Group, out: conclave_mls::CommitOutput) -> Proposed {
        // The next epoch's key, from the exporter of the epoch the pending commit creates.
        let secret = group
            .pending_export_secret(&self.provider, AUTH_KEY_LABEL, b"", 32)
            .expect("pending exporter");
        let bytes: [u8; 32] = secret.as_bytes().try_into().expect("32 bytes");
        Proposed {
            commit: out.commit.encode().expect("encode"),
            welcome: out.welcome.map(|w| w.encode().expect("encode")),
            next_key: SigningKey::from_bytes(&bytes),
        }
    }

    /// A commit adding the joiners.
    pub fn commit_add(&self, group: &mut Group, joiners: &[&Joiner]) -> Proposed {
        let mut builder = group.commit();
        for j in joiners {
            builder = builder.add_member(j.key_package.key_package().clone());
        }
        let out = builder.build(&self.provider).expect("commit");
        self.proposed(group, out)
    }

    /// A commit removing the member at `leaf`.
    pub fn commit_remove(&self, group: &mut Group, leaf: u32) -> Proposed {
        let out = group
            .commit()
            .remove_member(LeafIndex(leaf))
            .build(&self.provider)
            .expect("commit");
        self.proposed(group, out)
    }

    /// An empty commit (a key update of the committer's path).
    pub fn commit_update(&self, group: &mut Group) -> Proposed {
        let out = group.commit().build(&self.provider).expect("commit");
        self.proposed(group, out)
    }

    /// The DS accepted our pending commit.
    pub fn accepted(&self, group: &mut Group) {
        group.merge_pending_commit().expect("merge");
    }

    /// The DS refused our pending commit.
    pub fn refused(&self, group: &mut Group) {
        group.clear_pending_commit();
    }

    /// Joins from a Welcome received as bytes.
    pub fn join(&self, joiner: &Joiner, welcome: &[u8]) -> Group {
        let message = MlsMessage::decode(welcome).expect("decode");
        Group::join(
            message,
            &joiner.identity,
            &joiner.key_package,
            self.policy.clone(),
        )
        .config(config())
        .join(&self.provider)
        .expect("join")
    }

    /// Encrypts an application message.
    pub fn encrypt(&self, group: &mut Group, data: &[u8]) -> Vec<u8> {
        group
            .encrypt_application(&self.provider, data, b"")
            .expect("encrypt")
            .encode()
            .expect("encode")
    }

    /// Processes a message received as bytes; commits are merged.
    pub fn process(&self, group: &mut Group, bytes: &[u8]) -> Processed {
        let message = MlsMessage::decode(bytes).expect("decode");
        match group.process(&self.provider, &message).expect("process") {
            Received::Application { data, .. } => Processed::Application(data),
            Received::Commit(staged) => {
                let removed_us = staged.removes_us();
                group.merge(*staged).expect("merge");
                Processed::Commit { removed_us }
            }
            Received::OwnCommit => Processed::OwnCommit,
            _ => Processed::Other,
        }
    }

    /// The key of the group's current epoch that seals external commits (AES-128-GCM).
    pub fn envelope_key(&self, group: &Group) -> Vec<u8> {
        group
            .export_secret(&self.provider, ENVELOPE_KEY_LABEL, b"", 16)
            .expect("exporter")
            .as_bytes()
            .to_vec()
    }

    /// What a member puts in the sealed GroupInfo bundle for the current epoch.
    pub fn external_invite(&self, group: &Group) -> ExternalInvite {
        ExternalInvite {
            group_info: group
                .group_info(&self.provider)
                .expect("group info")
                .encode()
                .expect("encode"),
            envelope_key: self.envelope_key(group),
            commit_key: SigningKey::from_bytes(&crate::support::random()),
        }
    }

    /// AES-128-GCM under `key` with a random nonce, prefixed to the ciphertext.
    pub fn seal(&self, key: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = crate::support::random();
        let mut out = nonce.to_vec();
        out.extend(
            self.provider
                .aead_seal(self.suite, key, &nonce, b"", plaintext)
                .expect("seal"),
        );
        out
    }

    /// Opens [`Self::seal`].
    pub fn open(&self, key: &[u8], sealed: &[u8]) -> Vec<u8> {
        self.provider
            .aead_open(self.suite, key, &sealed[..12], b"", &sealed[12..])
            .expect("open")
            .as_bytes()
            .to_vec()
    }

    /// Joins by external commit from the invite: the group (in the new epoch) and the
    /// commit in the clear, with the new epoch's auth key.
    pub fn join_external(&self, name: &str, invite: &ExternalInvite) -> (Group, Proposed) {
        let message = MlsMessage::decode(&invite.group_info).expect("decode");
        let (group, commit) =
            Group::join_external(message, &self.identity(name), self.policy.clone())
                .config(config())
                .build(&self.provider)
                .expect("external join");
        let next_key = self.auth_key(&group);
        let proposed = Proposed {
            commit: commit.encode().expect("encode"),
            welcome: None,
            next_key,
        };
        (group, proposed)
    }

    /// The group's epoch.
    pub fn epoch(&self, group: &Group) -> u64 {
        group.epoch()
    }

    /// The member's leaf index.
    pub fn leaf(&self, group: &Group) -> u32 {
        group.own_leaf().0
    }

    /// Whether the two members agree on the epoch (same epoch authenticator).
    pub fn in_sync(&self, a: &Group, b: &Group) -> bool {
        a.epoch_authenticator() == b.epoch_authenticator()
    }
}
