//! The group: MLS's state machine (RFC 9420 §8, §11, §12), sans-IO.
//!
//! A [`Group`] is one member's view of one group. Every operation takes the crypto provider
//! as an argument; nothing is sent or stored by the library. Outgoing commits are *pending*
//! until the application learns that the Delivery Service accepted them
//! ([`Group::merge_pending_commit`]); incoming commits are *staged* ([`StagedCommit`]) for the
//! application to inspect, then merged or dropped.

mod builder;
mod commit;
mod config;
mod external;
mod external_sender;
mod join;
mod process;
mod proposals;
mod resumption;
mod state;

pub use crate::protection::PaddingPolicy;
pub use crate::secret_tree::RatchetPolicy;
pub use builder::{ExternalJoinBuilder, GroupBuilder, JoinBuilder, StagedWelcome};
pub use commit::{CommitBuilder, CommitOutput, StagedCommit};
pub use config::{GroupConfig, HandshakeWireFormat};
pub use external_sender::external_proposal;
pub use process::Received;
use process::{PastEpoch, PastSigners};

use join::JoinRequest;

use crate::Error;
use crate::codec::Encode;
use crate::crypto::{CipherSuite, CryptoProvider, Secret, SignaturePrivateKey, SuiteCrypto};
use crate::identity::{Identity, IdentityValidator};
use crate::key_schedule::EpochSecrets;
use crate::messages::{
    Extension, ExtensionType, ExternalPub, FramedContent, FramedContentBody, GroupContext,
    GroupInfo, GroupInfoTbs, LeafNodeContent, LeafNodeSource, Mac, MlsMessage, MlsMessageBody,
    Proposal, ProtocolVersion, Sender, WireFormat,
};
use crate::protection;
use crate::secret_tree::SecretTree;
use crate::transcript::interim_transcript_hash;
use crate::tree::treekem::{TreeKemPrivate, sign_leaf_node};
use crate::tree::{LeafIndex, RatchetTree};
use proposals::ProposalCache;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// One member of a group: its leaf, credential and keys.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Member<'g> {
    /// Its leaf index: the handle for removing it.
    pub leaf: LeafIndex,
    /// Its credential.
    pub credential: &'g crate::messages::Credential,
    /// Its signature public key.
    pub signature_key: &'g [u8],
    /// Its leaf's HPKE encryption key.
    pub encryption_key: &'g [u8],
}

impl<'g> Member<'g> {
    fn of(leaf: LeafIndex, node: &'g crate::messages::LeafNode) -> Self {
        Self {
            leaf,
            credential: &node.content.credential,
            signature_key: node.content.signature_key.as_slice(),
            encryption_key: node.content.encryption_key.as_slice(),
        }
    }
}

/// The condition of a group, as far as what a member may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupState {
    /// A member in good standing: it may send, propose and commit.
    Active,
    /// A commit of ours awaits the Delivery Service's verdict: merge it
    /// ([`Group::merge_pending_commit`]) or clear it ([`Group::clear_pending_commit`]) before
    /// sending anything else in this epoch (§12.4).
    PendingCommit,
    /// A commit removed us: the group can be read (past messages) but not written.
    Removed,
    /// A ReInit commit closed the group (§11.2): join its successor.
    ClosedByReInit,
}

/// Everything about one epoch that changes with each commit.
#[derive(Debug, Clone)]
pub(crate) struct EpochState {
    pub(crate) context: GroupContext,
    pub(crate) tree: RatchetTree,
    pub(crate) private: TreeKemPrivate,
    pub(crate) secrets: EpochSecrets,
    pub(crate) secret_tree: SecretTree,
    pub(crate) interim_transcript_hash: Vec<u8>,
    pub(crate) confirmation_tag: Mac,
    /// The ReInit this epoch's commit carried: the group is closed (§11.2).
    pub(crate) reinit: Option<crate::messages::ReInit>,
}

impl EpochState {
    /// The keys that protect this epoch's messages (§6).
    pub(crate) fn keys(&self) -> protection::EpochKeys<'_> {
        protection::EpochKeys {
            context: &self.context,
            sender_data_secret: &self.secrets.sender_data_secret,
            membership_key: Some(&self.secrets.membership_key),
        }
    }
}

/// Where a member stands in its group, beside the epoch's own data (a ReInit that closed
/// the group is part of the epoch it ended, see [`EpochState::reinit`]).
#[derive(Debug)]
enum Condition {
    /// In the group, nothing pending.
    Active,
    /// Our commit awaits the Delivery Service's verdict; `PendingCommit::next` is the epoch
    /// it creates.
    Pending(Box<commit::PendingCommit>),
    /// A commit removed us.
    Removed,
}

impl Condition {
    fn pending(&self) -> Option<&commit::PendingCommit> {
        match self {
            Self::Pending(p) => Some(p),
            _ => None,
        }
    }
    /// The pending commit, if any, leaving the member active.
    fn take_pending(&mut self) -> Option<commit::PendingCommit> {
        match std::mem::replace(self, Self::Active) {
            Self::Pending(p) => Some(*p),
            other => {
                *self = other;
                None
            }
        }
    }
    fn is_removed(&self) -> bool {
        matches!(self, Self::Removed)
    }
}

/// One member's state of one MLS group.
pub struct Group {
    config: GroupConfig,
    suite: CipherSuite,
    signer: SignaturePrivateKey,
    epoch: EpochState,
    proposals: ProposalCache,
    /// Where this member stands: one value, so that "removed with a commit pending" cannot
    /// be represented.
    condition: Condition,
    past_epochs: VecDeque<PastEpoch>,
    resumption_psks: BTreeMap<u64, Secret>,
    external_psks: HashMap<Vec<u8>, Secret>,
    validator: std::sync::Arc<dyn IdentityValidator>,
    /// Private keys of our own Update proposals, by new encryption key, until committed.
    update_keys: Vec<(Vec<u8>, crate::crypto::HpkePrivateKey)>,
    /// Resumption PSKs of other groups (ReInit, branching): (group id, epoch) → PSK.
    foreign_resumption_psks: HashMap<(Vec<u8>, u64), Secret>,
    /// Set on a group created by [`Group::branch`] or [`Group::reinit`] until its first
    /// commit: only then may a PreSharedKey carry a branch/reinit resumption PSK (§12.1.4).
    special_psk: Option<crate::messages::ResumptionPskUsage>,
}

impl core::fmt::Debug for Group {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Group")
            .field("suite", &self.suite)
            .field("epoch", &self.epoch.context.epoch)
            .field("own_leaf", &self.epoch.private.leaf())
            .field("members", &self.epoch.tree.leaves().count())
            .finish_non_exhaustive()
    }
}

impl Group {
    /// Creates a one-member group (RFC 9420 §11) with `group_id` and `extensions`
    /// ([`Group::builder`] is the public way in).
    ///
    /// The creator's leaf takes its content from `identity` and `capabilities`; `lifetime`
    /// of a creator's leaf is not checked by anyone but is required by the wire format.
    pub(super) fn create_with(
        provider: &dyn CryptoProvider,
        identity: &Identity,
        group_id: Vec<u8>,
        extensions: Vec<Extension>,
        config: GroupConfig,
        validator: std::sync::Arc<dyn IdentityValidator>,
    ) -> Result<Self, Error> {
        let crypto = SuiteCrypto::new(provider, identity.suite)?;
        validator.validate(&identity.credential, &identity.signature_key)?;
        let encryption = provider.hpke_generate_key_pair(identity.suite)?;
        let content = LeafNodeContent {
            encryption_key: encryption.public_key.into(),
            signature_key: identity.signature_key.clone(),
            credential: identity.credential.clone(),
            capabilities: config
                .leaf_capabilities
                .clone()
                .unwrap_or_else(|| crate::key_package::default_capabilities(identity)),
            leaf_node_source: LeafNodeSource::KeyPackage {
                lifetime: crate::messages::Lifetime {
                    not_before: 0,
                    not_after: u64::MAX,
                },
            },
            extensions: vec![],
        };
        let leaf = sign_leaf_node(&crypto, content, &identity.signer, &group_id, LeafIndex(0))?;
        let mut tree = RatchetTree::new(leaf);
        let context = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: identity.suite,
            group_id: group_id.into(),
            epoch: 0,
            tree_hash: tree.root_hash(&crypto)?.into(),
            confirmed_transcript_hash: Vec::new().into(),
            extensions,
        };
        proposals::check_group_extensions(&tree, &context.extensions)?;
        // §11: the epoch secret of epoch 0 is fresh randomness.
        let mut epoch_secret = vec![0u8; crypto.hash_len()];
        provider.random_bytes(&mut epoch_secret)?;
        let secrets = EpochSecrets::from_epoch_secret(&crypto, &Secret::new(epoch_secret))?;
        let confirmation_tag: Mac = secrets.confirmation_tag(&crypto, &[])?.into();
        let interim = interim_transcript_hash(&crypto, &[], confirmation_tag.as_slice())?;
        let secret_tree = SecretTree::new(
            tree.size(),
            secrets.encryption_secret.clone(),
            config.ratchet,
        );
        let private = TreeKemPrivate::new(LeafIndex(0), encryption.private_key);
        let mut group = Self {
            config,
            suite: identity.suite,
            signer: identity.signer.clone(),
            epoch: EpochState {
                context,
                tree,
                private,
                secrets,
                secret_tree,
                interim_transcript_hash: interim,
                confirmation_tag,
                reinit: None,
            },
            proposals: ProposalCache::default(),
            condition: Condition::Active,
            past_epochs: VecDeque::new(),
            resumption_psks: BTreeMap::new(),
            external_psks: HashMap::new(),
            validator,
            update_keys: Vec::new(),
            foreign_resumption_psks: HashMap::new(),
            special_psk: None,
        };
        group.remember_resumption_psk();
        Ok(group)
    }

    /// The group's cipher suite.
    pub fn cipher_suite(&self) -> CipherSuite {
        self.suite
    }
    /// The group id.
    pub fn group_id(&self) -> &[u8] {
        self.epoch.context.group_id.as_slice()
    }
    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.context.epoch
    }
    /// The current GroupContext.
    pub fn context(&self) -> &GroupContext {
        &self.epoch.context
    }
    /// The ratchet tree in its wire form (§12.4.3.3), for a joiner who gets it out of band.
    /// O(n) to copy: for a count or a look-up use [`Group::members`] or [`Group::member`].
    pub fn ratchet_tree(&self) -> crate::messages::RatchetTree {
        self.epoch.tree.to_wire()
    }
    /// The internal ratchet tree, with its caches. Not a stable API.
    #[doc(hidden)]
    pub fn internal_tree(&self) -> &RatchetTree {
        &self.epoch.tree
    }
    /// This member's leaf.
    pub fn own_leaf(&self) -> LeafIndex {
        self.epoch.private.leaf()
    }
    /// The members, by leaf.
    pub fn members(&self) -> impl Iterator<Item = Member<'_>> {
        self.epoch.tree.leaves().map(|(i, l)| Member::of(i, l))
    }
    /// The member at `leaf`, if that leaf is not blank.
    pub fn member(&self, leaf: LeafIndex) -> Option<Member<'_>> {
        self.epoch.tree.leaf(leaf).map(|l| Member::of(leaf, l))
    }
    /// How many members the group has.
    pub fn member_count(&self) -> usize {
        self.epoch.tree.leaves().count()
    }
    /// The group's condition: active, with a pending commit, removed, or closed by ReInit.
    pub fn state(&self) -> GroupState {
        if self.condition.is_removed() {
            GroupState::Removed
        } else if self.epoch.reinit.is_some() {
            GroupState::ClosedByReInit
        } else if self.condition.pending().is_some() {
            GroupState::PendingCommit
        } else {
            GroupState::Active
        }
    }
    /// Changes against which clock lifetimes are checked (an imported group uses the
    /// system clock, since a clock is code, not state).
    pub fn set_time_policy(&mut self, time: crate::time::TimePolicy) {
        self.config.time = time;
    }
    /// The local policy.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }
    /// The epoch authenticator (RFC 9420 §8.7): equal for all members iff they agree.
    pub fn epoch_authenticator(&self) -> &[u8] {
        self.epoch.secrets.epoch_authenticator.as_bytes()
    }
    /// `MLS-Exporter(label, context, length)` of the current epoch (RFC 9420 §8.5).
    pub fn export_secret(
        &self,
        provider: &dyn CryptoProvider,
        label: &[u8],
        context: &[u8],
        length: usize,
    ) -> Result<Secret, Error> {
        Ok(self
            .epoch
            .secrets
            .export(&self.crypto(provider)?, label, context, length)?)
    }
    /// `MLS-Exporter(label, context, length)` of the epoch our pending commit would create,
    /// before the Delivery Service accepts it: a client can register the next epoch's
    /// Delivery Service key together with the commit. Fails with [`Error::NoPendingCommit`]
    /// when there is none.
    pub fn pending_export_secret(
        &self,
        provider: &dyn CryptoProvider,
        label: &[u8],
        context: &[u8],
        length: usize,
    ) -> Result<Secret, Error> {
        let pending = self.condition.pending().ok_or(Error::NoPendingCommit)?;
        Ok(pending
            .next
            .secrets
            .export(&self.crypto(provider)?, label, context, length)?)
    }
    /// Whether a commit of ours awaits the Delivery Service's verdict.
    pub fn has_pending_commit(&self) -> bool {
        self.condition.pending().is_some()
    }
    /// Drops our pending commit (the Delivery Service refused it).
    pub fn clear_pending_commit(&mut self) {
        self.condition.take_pending();
    }
    /// Registers an external PSK (RFC 9420 §8.4) under `id`.
    pub fn add_external_psk(&mut self, id: Vec<u8>, psk: Secret) {
        self.external_psks.insert(id, psk);
    }

    fn crypto<'a>(&self, provider: &'a dyn CryptoProvider) -> Result<SuiteCrypto<'a>, Error> {
        Ok(SuiteCrypto::new(provider, self.suite)?)
    }

    fn remember_resumption_psk(&mut self) {
        self.resumption_psks.insert(
            self.epoch.context.epoch,
            self.epoch.secrets.resumption_psk.clone(),
        );
        while self.resumption_psks.len() > self.config.resumption_psk_epochs.max(1) {
            self.resumption_psks.pop_first();
        }
    }

    fn wrap(body: MlsMessageBody) -> MlsMessage {
        MlsMessage {
            version: ProtocolVersion::MLS10,
            body,
        }
    }

    /// Protects content as a PublicMessage or PrivateMessage and wraps it; also returns the
    /// signed AuthenticatedContent.
    fn send_content(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        content: FramedContent,
        private: bool,
    ) -> Result<(MlsMessage, crate::messages::AuthenticatedContent), Error> {
        if private {
            let keys = protection::EpochKeys {
                context: &self.epoch.context,
                sender_data_secret: &self.epoch.secrets.sender_data_secret,
                membership_key: Some(&self.epoch.secrets.membership_key),
            };
            let (message, authenticated) = protection::protect_private_authenticated(
                crypto,
                &self.signer,
                &keys,
                &mut self.epoch.secret_tree,
                self.config.padding,
                content,
                protection::no_confirmation,
            )?;
            Ok((
                Self::wrap(MlsMessageBody::PrivateMessage(message)),
                authenticated,
            ))
        } else {
            let message = protection::protect_public(
                crypto,
                &self.signer,
                &self.epoch.keys(),
                content,
                protection::no_confirmation,
            )?;
            let authenticated = crate::messages::AuthenticatedContent {
                wire_format: WireFormat::PUBLIC_MESSAGE,
                content: message.content.clone(),
                auth: message.auth.clone(),
            };
            Ok((
                Self::wrap(MlsMessageBody::PublicMessage(message)),
                authenticated,
            ))
        }
    }

    fn framed(&self, body: FramedContentBody, authenticated_data: &[u8]) -> FramedContent {
        FramedContent {
            group_id: self.epoch.context.group_id.clone(),
            epoch: self.epoch.context.epoch,
            sender: Sender::Member(self.own_leaf().0),
            authenticated_data: authenticated_data.to_vec().into(),
            body,
        }
    }

    /// Encrypts application data as a PrivateMessage (RFC 9420 §6.3).
    pub fn encrypt_application(
        &mut self,
        provider: &dyn CryptoProvider,
        data: &[u8],
        authenticated_data: &[u8],
    ) -> Result<MlsMessage, Error> {
        self.check_open()?;
        if self.condition.pending().is_some() {
            // §12.4: after sending a commit, a member must not send application data in the
            // old epoch; the application should wait for the commit's fate.
            return Err(Error::PendingCommit);
        }
        let crypto = self.crypto(provider)?;
        let content = self.framed(
            FramedContentBody::Application(data.to_vec().into()),
            authenticated_data,
        );
        Ok(self.send_content(&crypto, content, true)?.0)
    }

    /// Whether a ReInit commit closed the group (§11.2): then it sends nothing more.
    pub fn reinit(&self) -> Option<&crate::messages::ReInit> {
        self.epoch.reinit.as_ref()
    }

    /// Whether a commit removed this member.
    pub fn is_removed(&self) -> bool {
        self.condition.is_removed()
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.condition.is_removed() {
            return Err(Error::RemovedFromGroup);
        }
        if self.epoch.reinit.is_some() {
            return Err(Error::GroupClosedByReInit);
        }
        Ok(())
    }

    /// The resumption PSK of `epoch` of this group, if still kept (§8.6), for a ReInit or
    /// branch Welcome.
    pub fn resumption_psk(&self, epoch: u64) -> Option<&Secret> {
        self.resumption_psks.get(&epoch)
    }

    /// Registers the resumption PSK of another group's epoch (§8.6).
    pub fn add_resumption_psk(&mut self, group_id: Vec<u8>, epoch: u64, psk: Secret) {
        self.foreign_resumption_psks.insert((group_id, epoch), psk);
    }

    /// Proposes an Update of our own leaf (§12.1.2): a fresh encryption key, the same
    /// credential. The new private key is kept until a commit applies the Update.
    pub fn propose_update(&mut self, provider: &dyn CryptoProvider) -> Result<MlsMessage, Error> {
        self.check_open()?;
        let crypto = self.crypto(provider)?;
        let me = self.own_leaf();
        let mut content = self
            .epoch
            .tree
            .leaf(me)
            .ok_or(Error::BlankLeaf(me))?
            .content
            .clone();
        let keys = provider.hpke_generate_key_pair(self.suite)?;
        content.encryption_key = keys.public_key.clone().into();
        content.leaf_node_source = LeafNodeSource::Update;
        let leaf_node = sign_leaf_node(&crypto, content, &self.signer, self.group_id(), me)?;
        let message = self.propose(
            provider,
            Proposal::Update(crate::messages::Update { leaf_node }),
        )?;
        self.update_keys.push((keys.public_key, keys.private_key));
        Ok(message)
    }

    /// Sends a proposal by itself (to be committed by someone, possibly us).
    pub fn propose(
        &mut self,
        provider: &dyn CryptoProvider,
        proposal: Proposal,
    ) -> Result<MlsMessage, Error> {
        self.check_open()?;
        let crypto = self.crypto(provider)?;
        let sender = Sender::Member(self.own_leaf().0);
        self.check_proposal_from(&crypto, &proposal, sender)?;
        let content = self.framed(FramedContentBody::Proposal(proposal.clone()), &[]);
        let private = self.config.handshake_wire_format == HandshakeWireFormat::Private;
        let (message, authenticated) = self.send_content(&crypto, content, private)?;
        let reference = authenticated.proposal_reference(&crypto)?;
        self.proposals.insert(reference, proposal, sender);
        Ok(message)
    }

    /// A signed GroupInfo of the current epoch (RFC 9420 §12.4.3), with the ratchet tree and
    /// external_pub as the config says, for external joins.
    pub fn group_info(&self, provider: &dyn CryptoProvider) -> Result<MlsMessage, Error> {
        let crypto = self.crypto(provider)?;
        let info = self.build_group_info(&crypto, &self.epoch)?;
        Ok(Self::wrap(MlsMessageBody::GroupInfo(info)))
    }

    fn build_group_info(
        &self,
        crypto: &SuiteCrypto<'_>,
        epoch: &EpochState,
    ) -> Result<GroupInfo, Error> {
        let mut extensions = Vec::new();
        if self.config.ratchet_tree_extension {
            extensions.push(Extension {
                extension_type: ExtensionType::RATCHET_TREE,
                extension_data: epoch.tree.to_wire().encode()?.into(),
            });
        }
        if self.config.external_pub_extension {
            let external = epoch.secrets.external_key_pair(crypto)?;
            extensions.push(Extension {
                extension_type: ExtensionType::EXTERNAL_PUB,
                extension_data: ExternalPub {
                    external_pub: external.public_key.into(),
                }
                .encode()?
                .into(),
            });
        }
        // §13.5: a GroupInfo SHOULD carry a GREASE extension, which receivers must ignore.
        let seed = epoch
            .secrets
            .epoch_authenticator
            .as_bytes()
            .first()
            .copied()
            .unwrap_or(0);
        extensions.push(Extension {
            extension_type: ExtensionType(crate::codec::grease(seed)),
            extension_data: Vec::new().into(),
        });
        let tbs = GroupInfoTbs {
            group_context: epoch.context.clone(),
            extensions,
            confirmation_tag: epoch.confirmation_tag.clone(),
            signer: epoch.private.leaf().0,
        };
        GroupInfo::sign(crypto, tbs, &self.signer)
    }

    /// Installs `next` as the current epoch, keeping the old one's keys for late messages.
    fn install_epoch(&mut self, next: EpochState) {
        let old = std::mem::replace(&mut self.epoch, next);
        if self.config.past_epochs > 0 {
            self.past_epochs.push_back(PastEpoch {
                signers: PastSigners::Tree(old.tree),
                context: old.context,
                secret_tree: old.secret_tree,
                sender_data_secret: old.secrets.sender_data_secret.clone(),
            });
            while self.past_epochs.len() > self.config.past_epochs {
                self.past_epochs.pop_front();
            }
        }
        self.proposals.clear();
        self.condition.take_pending();
        self.update_keys.clear();
        self.special_psk = None;
        self.remember_resumption_psk();
    }
}
