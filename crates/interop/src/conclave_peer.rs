//! The Conclave side of the scenarios: [`Conclave`], a `conclave-mls` client (basic
//! credentials unless made with [`Conclave::with_identity`]), driven through the same
//! [`Member`] trait as the peers.

use crate::{CUSTOM_EXTENSION, EXPORTER_LABEL, Member, decode, encode, now};
use conclave_mls::codec::{Decode, Encode};
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, Secret, SuiteCrypto};
use conclave_mls::identity::{BasicCredentialsOnly, IdentityValidator};
use conclave_mls::key_package::default_capabilities;
use conclave_mls::messages::{
    Capabilities, Credential, Extension, ExtensionType, KeyPackage, Lifetime, MlsMessageBody,
    PreSharedKeyId, Proposal, ProtocolVersion, Psk, ReInit, Remove, ResumptionPskUsage,
};
use conclave_mls::{
    Group, GroupConfig, Identity, KeyPackageBundle, KeyPackageOptions, LeafIndex, RatchetTree,
    Received,
};
use std::collections::HashMap;
use std::sync::Arc;

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
    /// Our own proposal or application message read back: nothing changed.
    OwnMessage,
}

/// A Conclave client: identity, a pending KeyPackage, PSKs and at most one group.
pub struct Conclave {
    /// The crypto provider (RustCrypto, system randomness).
    pub provider: RustCrypto,
    /// The client's identity (a basic credential unless made with [`Conclave::with_identity`]).
    pub identity: Identity,
    /// The identity policy of its groups (default: [`BasicCredentialsOnly`]).
    pub validator: Arc<dyn IdentityValidator>,
    name: String,
    key_package: Option<KeyPackageBundle>,
    /// Capabilities of the leaves this client makes (KeyPackages, and the creator's leaf via
    /// `config.leaf_capabilities`); the library's defaults if `None`.
    pub capabilities: Option<Capabilities>,
    /// Local policy of the groups it creates or joins (default: `GroupConfig::default()`).
    pub config: GroupConfig,
    /// External PSKs this client holds (§8.4), by id: given to every join and group.
    pub external_psks: HashMap<Vec<u8>, Secret>,
    /// The group, once created or joined.
    pub group: Option<Group>,
}

impl Conclave {
    /// A client with a basic credential `name` in cipher suite `suite` (RFC 9420 §17.1).
    pub fn new(name: &str, suite: u16) -> Self {
        let provider = RustCrypto::default();
        let identity = Self::identity_in(&provider, name, suite);
        Self::with_identity(name, identity, Arc::new(BasicCredentialsOnly))
    }

    /// A client presenting `identity` (any credential, e.g. an X.509 chain for its signature
    /// key) whose groups accept members by `validator`.
    pub fn with_identity(
        name: &str,
        identity: Identity,
        validator: Arc<dyn IdentityValidator>,
    ) -> Self {
        Self {
            provider: RustCrypto::default(),
            identity,
            validator,
            name: name.to_owned(),
            key_package: None,
            capabilities: None,
            config: GroupConfig::default(),
            external_psks: HashMap::new(),
            group: None,
        }
    }

    fn identity_in(provider: &RustCrypto, name: &str, suite: u16) -> Identity {
        Identity::generate(
            provider,
            CipherSuite(suite),
            Credential::Basic {
                identity: name.as_bytes().to_vec().into(),
            },
        )
        .expect("identity")
    }

    /// A new signature key in `suite`, same credential: for a ReInit to another cipher suite
    /// (§11.2). The current group, if any, is kept.
    pub fn switch_suite(&mut self, suite: u16) {
        self.identity = Self::identity_in(&self.provider, &self.name, suite);
        if self.capabilities.is_some() {
            self.support_custom_extension();
        }
    }

    /// Lists [`CUSTOM_EXTENSION`] in the capabilities of every leaf this client makes from now
    /// on (KeyPackages, a created group's first leaf).
    pub fn support_custom_extension(&mut self) {
        let mut capabilities = default_capabilities(&self.identity);
        capabilities
            .extensions
            .push(ExtensionType(CUSTOM_EXTENSION));
        self.config = self
            .config
            .clone()
            .with_leaf_capabilities(capabilities.clone());
        self.capabilities = Some(capabilities);
    }

    /// Holds the external PSK `id` → `secret` (§8.4), for the current group and later ones.
    pub fn add_external_psk(&mut self, id: &[u8], secret: &[u8]) {
        self.external_psks
            .insert(id.to_vec(), Secret::from_slice(secret));
        if let Some(group) = self.group.as_mut() {
            group.add_external_psk(id.to_vec(), Secret::from_slice(secret));
        }
    }

    fn with_psks(&self, mut group: Group) -> Group {
        for (id, secret) in &self.external_psks {
            group.add_external_psk(id.clone(), secret.clone());
        }
        group
    }

    /// A fresh KeyPackage as `MLSMessage` bytes; its secrets are kept for the join.
    pub fn key_package(&mut self) -> Vec<u8> {
        let mut options = KeyPackageOptions::new(Lifetime::starting_at(now() - 60, 86_400));
        options.capabilities = self.capabilities.clone();
        let bundle = KeyPackageBundle::generate(&self.provider, &self.identity, options)
            .expect("key package");
        let message = encode(&bundle.message());
        self.key_package = Some(bundle);
        message
    }

    /// Creates a one-member group.
    pub fn create_group(&mut self, group_id: &[u8]) {
        let group = Group::builder(&self.identity, self.validator.clone())
            .group_id(group_id.to_vec())
            .config(self.config.clone())
            .build(&self.provider)
            .expect("create group");
        self.group = Some(self.with_psks(group));
    }

    /// The group (panics if none).
    pub fn group(&mut self) -> &mut Group {
        self.group.as_mut().expect("in a group")
    }

    /// Joins from a Welcome received as bytes, with the KeyPackage made last.
    pub fn join(&mut self, welcome: &[u8]) -> Result<(), conclave_mls::Error> {
        self.join_with_tree(welcome, None)
    }

    /// Joins from a Welcome with the ratchet tree passed out of band (an encoded
    /// `RatchetTree`, §12.4.3.3) when `tree` is given.
    pub fn join_with_tree(
        &mut self,
        welcome: &[u8],
        tree: Option<&[u8]>,
    ) -> Result<(), conclave_mls::Error> {
        self.join_inner(welcome, tree, None)
    }

    /// Joins a group that resumes the current one — a ReInit's new group (§11.2) or a branch
    /// (§11.3) — from its Welcome, joining with
    /// [`reinit_of`](conclave_mls::group::JoinBuilder::reinit_of) when a ReInit closed the
    /// current group and [`branch_of`](conclave_mls::group::JoinBuilder::branch_of) otherwise;
    /// both check the Welcome against the current group and take its resumption PSKs. The current group is then replaced.
    pub fn join_resumed(&mut self, welcome: &[u8]) -> Result<(), conclave_mls::Error> {
        let old = self.group.take().expect("in the old group");
        let joined = self.join_inner(welcome, None, Some(&old));
        if joined.is_err() {
            self.group = Some(old);
        }
        joined
    }

    fn join_inner(
        &mut self,
        welcome: &[u8],
        tree: Option<&[u8]>,
        resumed: Option<&Group>,
    ) -> Result<(), conclave_mls::Error> {
        let welcome = decode(welcome);
        assert!(
            matches!(welcome.body, MlsMessageBody::Welcome(_)),
            "not a Welcome"
        );
        let bundle = self.key_package.as_ref().expect("a KeyPackage was made");
        let mut join = Group::join(welcome, &self.identity, bundle, self.validator.clone())
            .config(self.config.clone());
        if let Some(tree) = tree {
            join = join.ratchet_tree(RatchetTree::decode(tree).expect("decode RatchetTree"));
        }
        for (id, secret) in &self.external_psks {
            join = join.external_psk(id.clone(), secret.clone());
        }
        join = match resumed {
            None => join,
            Some(old) if old.reinit().is_some() => join.reinit_of(old),
            Some(old) => join.branch_of(old),
        };
        let group = join.join(&self.provider)?;
        self.group = Some(group);
        Ok(())
    }

    /// The group's ratchet tree, encoded as `RatchetTree` (§12.4.3.3), to pass out of band.
    pub fn ratchet_tree(&mut self) -> Vec<u8> {
        self.group().ratchet_tree().encode().expect("encode tree")
    }

    /// Commits an Add of the KeyPackage (`MLSMessage` bytes) and merges it at once.
    /// Returns (commit, welcome) as bytes.
    pub fn add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (commit, welcome) =
            self.commit_proposals(vec![Proposal::Add(conclave_mls::messages::Add {
                key_package: key_package_of(key_package),
            })]);
        (commit, welcome.expect("a Welcome"))
    }

    /// [`Conclave::add`], or the library's refusal (the KeyPackage's credential is not
    /// acceptable to [`Conclave::validator`], say); the group is unchanged on refusal.
    pub fn try_add(
        &mut self,
        key_package: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), conclave_mls::Error> {
        let (commit, welcome) =
            self.try_commit_proposals(vec![Proposal::Add(conclave_mls::messages::Add {
                key_package: key_package_of(key_package),
            })])?;
        Ok((commit, welcome.expect("a Welcome")))
    }

    /// Commits the cached proposals (by reference) and `proposals` (by value), and merges it.
    /// Returns the commit and the Welcome, if it adds members.
    pub fn commit_proposals(&mut self, proposals: Vec<Proposal>) -> (Vec<u8>, Option<Vec<u8>>) {
        self.try_commit_proposals(proposals).expect("commit")
    }

    fn try_commit_proposals(
        &mut self,
        proposals: Vec<Proposal>,
    ) -> Result<(Vec<u8>, Option<Vec<u8>>), conclave_mls::Error> {
        let group = self.group.as_mut().expect("in a group");
        let mut builder = group.commit();
        for proposal in proposals {
            builder = builder.proposal(proposal);
        }
        let out = builder.build(&self.provider)?;
        group.merge_pending_commit().expect("merge");
        Ok((encode(&out.commit), out.welcome.as_ref().map(encode)))
    }

    /// Commits a GroupContextExtensions proposal replacing the extensions (§12.1.7).
    pub fn commit_extensions(&mut self, extensions: Vec<Extension>) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        let out = group
            .commit()
            .group_context_extensions(extensions)
            .build(&self.provider)
            .expect("commit GroupContextExtensions");
        group.merge_pending_commit().expect("merge");
        encode(&out.commit)
    }

    /// A fresh `psk_nonce` of length Nh (§8.4).
    pub fn psk_nonce(&self) -> Vec<u8> {
        let crypto = SuiteCrypto::new(&self.provider, self.identity.suite).expect("suite");
        let mut nonce = vec![0; crypto.hash_len()];
        self.provider.random_bytes(&mut nonce).expect("random");
        nonce
    }

    /// A PreSharedKeyID naming the external PSK `id`, with a fresh nonce (§8.4).
    pub fn external_psk_id(&self, id: &[u8]) -> PreSharedKeyId {
        PreSharedKeyId {
            psk: Psk::External {
                psk_id: id.to_vec().into(),
            },
            psk_nonce: self.psk_nonce().into(),
        }
    }

    /// A PreSharedKeyID naming the resumption PSK of `epoch` of the current group, usage
    /// `application` (§8.6), with a fresh nonce.
    pub fn resumption_psk_id(&mut self, epoch: u64) -> PreSharedKeyId {
        let group_id = self.group().group_id().to_vec();
        PreSharedKeyId {
            psk: Psk::Resumption {
                usage: ResumptionPskUsage::Application,
                psk_group_id: group_id.into(),
                psk_epoch: epoch,
            },
            psk_nonce: self.psk_nonce().into(),
        }
    }

    /// Commits a PreSharedKey proposal for `psk` (by value) and merges it.
    pub fn commit_psk(&mut self, psk: PreSharedKeyId) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        let out = group
            .commit()
            .psk(psk)
            .build(&self.provider)
            .expect("commit PSK");
        group.merge_pending_commit().expect("merge");
        encode(&out.commit)
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

    /// Sends `proposal` as a proposal message (to be committed by reference).
    pub fn propose(&mut self, proposal: Proposal) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        encode(&group.propose(&self.provider, proposal).expect("propose"))
    }

    /// Proposes the removal of `leaf`; returns the proposal message.
    pub fn propose_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.propose(Proposal::Remove(Remove { removed: leaf }))
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

    /// Commits a ReInit (§12.1.5) to a group `group_id` in `suite` (same version, no
    /// extensions) and merges it; the group is then closed. Returns the commit.
    pub fn commit_reinit(&mut self, group_id: &[u8], suite: u16) -> Vec<u8> {
        let reinit = ReInit {
            group_id: group_id.to_vec().into(),
            version: ProtocolVersion::MLS10,
            cipher_suite: CipherSuite(suite),
            extensions: vec![],
        };
        self.commit_proposals(vec![Proposal::ReInit(reinit)]).0
    }

    /// After a ReInit commit closed the group: creates the new group it describes, adding
    /// `key_packages` (in the new suite; see [`Conclave::switch_suite`]) with the reinit
    /// resumption PSK (§11.2). Returns the Welcome; the new group replaces the old.
    pub fn create_reinit_group(&mut self, key_packages: &[Vec<u8>]) -> Vec<u8> {
        let kps = key_packages.iter().map(|k| key_package_of(k)).collect();
        let old = self.group.as_ref().expect("in the old group");
        let (mut group, out) = old
            .reinit_group(&self.provider, &self.identity, kps, self.config.clone())
            .expect("create the ReInit group");
        group.merge_pending_commit().expect("merge");
        self.group = Some(self.with_psks(group));
        encode(&out.welcome.expect("a Welcome"))
    }

    /// Branches the current group into a subgroup `group_id` with the members of
    /// `key_packages` (§11.3). Returns the Welcome; the subgroup replaces the group.
    pub fn branch(&mut self, group_id: &[u8], key_packages: &[Vec<u8>]) -> Vec<u8> {
        let kps = key_packages.iter().map(|k| key_package_of(k)).collect();
        let old = self.group.as_ref().expect("in a group");
        let extensions = old.context().extensions.clone();
        let (mut group, out) = old
            .branch(
                &self.provider,
                &self.identity,
                group_id.to_vec(),
                extensions,
                kps,
                self.config.clone(),
            )
            .expect("branch");
        group.merge_pending_commit().expect("merge");
        self.group = Some(self.with_psks(group));
        encode(&out.welcome.expect("a Welcome"))
    }

    /// A signed GroupInfo (with ratchet tree and external_pub) as bytes.
    pub fn group_info(&mut self) -> Vec<u8> {
        let group = self.group.as_mut().expect("in a group");
        encode(&group.group_info(&self.provider).expect("group info"))
    }

    /// Whether the GroupInfos this member signs — those of its Welcomes too — carry the
    /// ratchet_tree extension (§12.4.3.3).
    pub fn group_info_has_tree(&mut self) -> bool {
        let info = decode(&self.group_info())
            .into_group_info()
            .expect("a GroupInfo");
        info.tbs
            .extensions
            .iter()
            .any(|e| e.extension_type == ExtensionType::RATCHET_TREE)
    }

    /// Joins by external commit from a GroupInfo (bytes); returns the commit.
    pub fn join_external(&mut self, group_info: &[u8]) -> Result<Vec<u8>, conclave_mls::Error> {
        let group_info = decode(group_info);
        assert!(
            matches!(group_info.body, MlsMessageBody::GroupInfo(_)),
            "not a GroupInfo"
        );
        let (group, commit) =
            Group::join_external(group_info, &self.identity, self.validator.clone())
                .config(self.config.clone())
                .build(&self.provider)?;
        self.group = Some(self.with_psks(group));
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
            Received::OwnMessage { .. } => Got::OwnMessage,
            other => panic!("Conclave received something new: {other:?}"),
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

fn key_package_of(bytes: &[u8]) -> KeyPackage {
    decode(bytes).into_key_package().expect("not a KeyPackage")
}

impl Member for Conclave {
    fn implementation(&self) -> &'static str {
        "Conclave"
    }
    fn fresh_key_package(&mut self) -> Vec<u8> {
        self.key_package()
    }
    fn join_welcome(&mut self, welcome: &[u8]) {
        self.join(welcome).expect("Conclave joins from the Welcome");
    }
    fn commit_add(&mut self, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
        self.add(key_package)
    }
    fn commit_remove(&mut self, leaf: u32) -> Vec<u8> {
        self.commit(Some(leaf))
    }
    fn commit_path(&mut self) -> Vec<u8> {
        self.commit_update()
    }
    fn leaf_index(&mut self) -> u32 {
        self.own_leaf()
    }
    fn is_member(&mut self) -> bool {
        self.group.as_ref().is_some_and(|g| !g.is_removed())
    }
    fn send_application(&mut self, data: &[u8]) -> Vec<u8> {
        self.send(data)
    }
    fn deliver(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        match self
            .receive(message)
            .expect("Conclave processes the message")
        {
            Got::Application(data) => Some(data),
            _ => None,
        }
    }
    fn current_epoch(&mut self) -> u64 {
        self.group().epoch()
    }
    fn authenticator(&mut self) -> Vec<u8> {
        self.epoch_authenticator()
    }
    fn exporter(&mut self, context: &[u8]) -> Vec<u8> {
        self.export(context)
    }
    fn context_extensions(&mut self) -> Vec<u8> {
        self.group()
            .context()
            .extensions
            .encode()
            .expect("encode extensions")
    }
}
