//! Interoperability tests of `conclave-mls` against OpenMLS and mls-rs (see `tests/`).
//!
//! This crate holds only the Conclave side shared by the tests: a client whose every message
//! goes out and comes in as serialized `MLSMessage` bytes, the way a Delivery Service carries
//! them. The peers' helpers live in their test files.
//!
//! Scenarios (`tests/openmls.rs`: suites 1, 2, 3; `tests/mls_rs.rs`: suites 1, 2, 3, 7),
//! each checked by equal epoch authenticators and exporter outputs on both sides:
//! Welcome joins each way (ratchet tree in the GroupInfo extension), application messages
//! both ways, commits with a path from each side, removes from each side, Update and Remove
//! proposals by reference (one side proposes, the other commits), external joins from the
//! other's GroupInfo, handshake messages as PrivateMessages, and a five-leaf group with a
//! blank and unmerged leaves.

use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{CipherSuite, RustCrypto};
use conclave_mls::group::{ExternalJoinRequest, Group, GroupConfig, JoinRequest, Received};
use conclave_mls::identity::{BasicCredentialsOnly, Identity};
use conclave_mls::key_package::{KeyPackageOptions, KeyPackageSecrets, create_key_package};
use conclave_mls::messages::{
    Credential, KeyPackage, Lifetime, MlsMessage, MlsMessageBody, Proposal, ProtocolVersion, Remove,
};
use conclave_mls::tree::LeafIndex;
use std::collections::HashMap;
use std::sync::Arc;

pub use conclave_mls;

/// The exporter label and context the scenarios compare.
pub const EXPORTER_LABEL: &str = "conclave interop";

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

/// What receiving a message did.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    /// Application data.
    Application(Vec<u8>),
    /// A proposal, cached.
    Proposal,
    /// Another member's commit, merged.
    Commit,
    /// Our own commit echoed back, merged.
    OwnCommit,
}

/// A Conclave client: identity, a pending KeyPackage and at most one group.
pub struct Conclave {
    /// The crypto provider (RustCrypto, system randomness).
    pub provider: RustCrypto,
    /// The client's identity (basic credential).
    pub identity: Identity,
    key_package: Option<(KeyPackage, KeyPackageSecrets)>,
    /// Local policy of the groups it creates or joins (default: `GroupConfig::default()`).
    pub config: GroupConfig,
    /// The group, once created or joined.
    pub group: Option<Group>,
}

impl Conclave {
    /// A client with a basic credential `name` in cipher suite `suite` (RFC 9420 §17.1).
    pub fn new(name: &str, suite: u16) -> Self {
        let provider = RustCrypto::default();
        let identity = Identity::generate(
            &provider,
            CipherSuite(suite),
            Credential::Basic {
                identity: name.as_bytes().to_vec().into(),
            },
        )
        .expect("identity");
        Self {
            provider,
            identity,
            key_package: None,
            config: GroupConfig::default(),
            group: None,
        }
    }

    /// A fresh KeyPackage as `MLSMessage` bytes; its secrets are kept for the join.
    pub fn key_package(&mut self) -> Vec<u8> {
        let options = KeyPackageOptions::new(Lifetime::starting_at(now() - 60, 86_400));
        let (kp, secrets) =
            create_key_package(&self.provider, &self.identity, options).expect("key package");
        let message = MlsMessage {
            version: ProtocolVersion::MLS10,
            body: MlsMessageBody::KeyPackage(kp.clone()),
        };
        self.key_package = Some((kp, secrets));
        encode(&message)
    }

    /// Creates a one-member group.
    pub fn create_group(&mut self, group_id: &[u8]) {
        self.group = Some(
            Group::create(
                &self.provider,
                &self.identity,
                group_id.to_vec(),
                vec![],
                self.config.clone(),
                Arc::new(BasicCredentialsOnly),
            )
            .expect("create group"),
        );
    }

    /// The group (panics if none).
    pub fn group(&mut self) -> &mut Group {
        self.group.as_mut().expect("in a group")
    }

    /// Joins from a Welcome received as bytes, with the KeyPackage made last.
    pub fn join(&mut self, welcome: &[u8]) -> Result<(), conclave_mls::Error> {
        let MlsMessageBody::Welcome(welcome) = decode(welcome).body else {
            panic!("not a Welcome");
        };
        let (kp, secrets) = self.key_package.as_ref().expect("a KeyPackage was made");
        let group = Group::join(
            &self.provider,
            JoinRequest {
                identity: &self.identity,
                key_package: kp,
                secrets,
                welcome: &welcome,
                ratchet_tree: None,
                external_psks: HashMap::new(),
                resumption_psks: HashMap::new(),
                config: self.config.clone(),
                validator: Arc::new(BasicCredentialsOnly),
            },
        )?;
        self.group = Some(group);
        Ok(())
    }

    /// Commits an Add of the KeyPackage (`MLSMessage` bytes) and merges it at once.
    /// Returns (commit, welcome) as bytes.
    pub fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let MlsMessageBody::KeyPackage(kp) = decode(key_package).body else {
            panic!("not a KeyPackage");
        };
        let out = self
            .group
            .as_mut()
            .expect("in a group")
            .commit()
            .add_member(kp)
            .build(&self.provider)
            .expect("commit add");
        self.group().merge_pending_commit().expect("merge");
        (
            encode(&out.commit),
            encode(&out.welcome.expect("a Welcome")),
        )
    }

    /// Commits with a path (a full update of our leaf) and merges it. Returns the commit.
    pub fn commit_update(&mut self) -> Vec<u8> {
        let out = self
            .group
            .as_mut()
            .expect("in a group")
            .commit()
            .force_path()
            .build(&self.provider)
            .expect("commit with path");
        self.group().merge_pending_commit().expect("merge");
        encode(&out.commit)
    }

    /// Commits whatever proposals are cached (by reference), plus a Remove of `leaf` if any,
    /// and merges it. Returns the commit.
    pub fn commit(&mut self, remove: Option<u32>) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        let mut builder = group.commit();
        if let Some(leaf) = remove {
            builder = builder.remove_member(LeafIndex(leaf));
        }
        let out = builder.build(&self.provider).expect("commit");
        group.merge_pending_commit().expect("merge");
        encode(&out.commit)
    }

    /// Proposes the removal of `leaf`; returns the proposal message.
    pub fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        let message = group
            .propose(&self.provider, Proposal::Remove(Remove { removed: leaf }))
            .expect("propose remove");
        encode(&message)
    }

    /// Proposes an Update of our own leaf; returns the proposal message.
    pub fn propose_update(&mut self) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        encode(
            &group
                .propose_update(&self.provider)
                .expect("propose update"),
        )
    }

    /// A signed GroupInfo (with ratchet tree and external_pub) as bytes.
    pub fn group_info(&mut self) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        encode(&group.group_info(&self.provider).expect("group info"))
    }

    /// Joins by external commit from a GroupInfo (bytes); returns the commit.
    pub fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>, conclave_mls::Error> {
        let MlsMessageBody::GroupInfo(info) = decode(group_info).body else {
            panic!("not a GroupInfo");
        };
        let (group, commit) = Group::join_external(
            &self.provider,
            ExternalJoinRequest {
                identity: &self.identity,
                group_info: &info,
                ratchet_tree: None,
                resync: None,
                authenticated_data: vec![],
                config: self.config.clone(),
                validator: Arc::new(BasicCredentialsOnly),
            },
        )?;
        self.group = Some(group);
        Ok(encode(&commit))
    }

    /// Our leaf index.
    pub fn own_leaf(&mut self) -> u32 {
        self.group().own_leaf().0
    }

    /// Whether a commit removed us.
    pub fn is_removed(&mut self) -> bool {
        self.group().is_removed()
    }

    /// Encrypts application data; returns the PrivateMessage as bytes.
    pub fn send(&mut self, data: &[u8]) -> Vec<u8> {
        let message = self
            .group
            .as_mut()
            .expect("in a group")
            .encrypt_application(&self.provider, data, b"")
            .expect("encrypt");
        encode(&message)
    }

    /// Processes a message received as bytes; a commit from another member is merged.
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Got, conclave_mls::Error> {
        let message = decode(bytes);
        let group = self.group.as_mut().expect("in a group");
        Ok(match group.process(&self.provider, &message)? {
            Received::Commit(staged) => {
                group.merge(*staged)?;
                Got::Commit
            }
            Received::Application { data, .. } => Got::Application(data),
            Received::Proposal { .. } => Got::Proposal,
            Received::OwnCommit => Got::OwnCommit,
        })
    }

    /// Receives application data and returns it.
    pub fn receive_application(&mut self, bytes: &[u8]) -> Vec<u8> {
        match self.receive(bytes).expect("process application message") {
            Got::Application(data) => data,
            other => panic!("expected application data, got {other:?}"),
        }
    }

    /// The group's epoch authenticator.
    pub fn epoch_authenticator(&mut self) -> Vec<u8> {
        self.group().epoch_authenticator().to_vec()
    }

    /// `MLS-Exporter(EXPORTER_LABEL, context, 32)` of the current epoch.
    pub fn export(&mut self, context: &[u8]) -> Vec<u8> {
        self.group
            .as_ref()
            .expect("in a group")
            .export_secret(&self.provider, EXPORTER_LABEL.as_bytes(), context, 32)
            .expect("export")
            .as_bytes()
            .to_vec()
    }
}
