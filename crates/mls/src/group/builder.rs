//! The ways into a group, each a builder: create one ([`GroupBuilder`]), join one from a
//! Welcome ([`JoinBuilder`], which yields a [`StagedWelcome`] to inspect before accepting),
//! or join one by external commit ([`ExternalJoinBuilder`]).

use super::external::ExternalJoinRequest;
use super::join::{Continuation, JoinRequest};
use super::{Group, GroupConfig, Member};
use crate::Error;
use crate::crypto::{CryptoProvider, Secret};
use crate::identity::{Identity, IdentityValidator};
use crate::key_package::KeyPackageBundle;
use crate::messages::{Extension, GroupContext, MlsMessage, RatchetTree};
use crate::tree::LeafIndex;
use std::collections::HashMap;
use std::sync::Arc;

/// Builds a new one-member group (RFC 9420 §11). From [`Group::builder`].
///
/// ```
/// use conclave_mls::{CipherSuite, Group, GroupConfig, Identity, RustCrypto};
/// use conclave_mls::identity::BasicCredentialsOnly;
/// use conclave_mls::messages::Credential;
/// use std::sync::Arc;
///
/// let provider = RustCrypto::default();
/// let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
/// let alice = Identity::generate(&provider, suite, Credential::basic(b"alice"))?;
/// let group = Group::builder(&alice, Arc::new(BasicCredentialsOnly))
///     .group_id(b"team".to_vec())
///     .config(GroupConfig::default())
///     .build(&provider)?;
/// assert_eq!(group.group_id(), b"team");
/// # Ok::<(), conclave_mls::Error>(())
/// ```
#[must_use = "a builder does nothing until `build`"]
pub struct GroupBuilder<'a> {
    identity: &'a Identity,
    validator: Arc<dyn IdentityValidator>,
    group_id: Option<Vec<u8>>,
    extensions: Vec<Extension>,
    config: GroupConfig,
}

impl core::fmt::Debug for GroupBuilder<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GroupBuilder")
            .field("group_id", &self.group_id)
            .finish_non_exhaustive()
    }
}

impl<'a> GroupBuilder<'a> {
    /// The group id; by default 16 random bytes from the provider (§11: it SHOULD be
    /// random, so that no two groups share one).
    pub fn group_id(mut self, group_id: Vec<u8>) -> Self {
        self.group_id = Some(group_id);
        self
    }
    /// The GroupContext extensions of epoch 0 (required capabilities, external senders, …).
    pub fn extensions(mut self, extensions: Vec<Extension>) -> Self {
        self.extensions = extensions;
        self
    }
    /// Local policy; [`GroupConfig::default`] otherwise.
    pub fn config(mut self, config: GroupConfig) -> Self {
        self.config = config;
        self
    }
    /// Creates the group, with this client as its only member, at epoch 0.
    pub fn build(self, provider: &dyn CryptoProvider) -> Result<Group, Error> {
        let group_id = match self.group_id {
            Some(id) => id,
            None => {
                let mut id = vec![0u8; 16];
                provider.random_bytes(&mut id)?;
                id
            }
        };
        Group::create_with(
            provider,
            self.identity,
            group_id,
            self.extensions,
            self.config,
            self.validator,
        )
    }
}

/// What a Welcome continues: a fresh group, or a ReInit or branch of one we hold.
enum Resumes<'o> {
    Fresh,
    ReInit(&'o Group),
    Branch(&'o Group),
}

/// Joins a group from a Welcome (RFC 9420 §12.4.3.1). From [`Group::join`].
///
/// [`JoinBuilder::stage`] does every check and computes the group, but returns it as a
/// [`StagedWelcome`] for the application to inspect (who added us, who else is in it) and
/// then [`StagedWelcome::accept`] or drop.
#[must_use = "a builder does nothing until `stage`"]
pub struct JoinBuilder<'a> {
    welcome: MlsMessage,
    identity: &'a Identity,
    key_package: &'a KeyPackageBundle,
    validator: Arc<dyn IdentityValidator>,
    ratchet_tree: Option<RatchetTree>,
    external_psks: HashMap<Vec<u8>, Secret>,
    resumption_psks: HashMap<(Vec<u8>, u64), Secret>,
    config: GroupConfig,
    resumes: Resumes<'a>,
}

impl core::fmt::Debug for JoinBuilder<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JoinBuilder").finish_non_exhaustive()
    }
}

impl<'a> JoinBuilder<'a> {
    /// The ratchet tree, when the Welcome does not carry it (§12.4.3.3): the committer sends
    /// it alongside ([`crate::CommitOutput::ratchet_tree`]).
    pub fn ratchet_tree(mut self, tree: RatchetTree) -> Self {
        self.ratchet_tree = Some(tree);
        self
    }
    /// An external PSK the Welcome may name (§8.4).
    pub fn external_psk(mut self, id: Vec<u8>, psk: Secret) -> Self {
        self.external_psks.insert(id, psk);
        self
    }
    /// A resumption PSK of another group's epoch the Welcome may name (§8.6).
    pub fn resumption_psk(mut self, group_id: Vec<u8>, epoch: u64, psk: Secret) -> Self {
        self.resumption_psks.insert((group_id, epoch), psk);
        self
    }
    /// Local policy; [`GroupConfig::default`] otherwise.
    pub fn config(mut self, config: GroupConfig) -> Self {
        self.config = config;
        self
    }
    /// The Welcome is of the group that a ReInit closed in `old` (§11.2): checks the new
    /// group against the ReInit and takes the reinit PSK from `old`.
    pub fn reinit_of(mut self, old: &'a Group) -> Self {
        self.resumes = Resumes::ReInit(old);
        self
    }
    /// The Welcome is of a subgroup branched from `old` (§11.3): checks that every new
    /// member is one of `old`'s and takes the branch PSK from `old`.
    pub fn branch_of(mut self, old: &'a Group) -> Self {
        self.resumes = Resumes::Branch(old);
        self
    }

    /// Checks the Welcome and computes the group, without accepting it yet.
    ///
    /// On an error, the KeyPackage bundle (and any old group) remain usable.
    pub fn stage(self, provider: &dyn CryptoProvider) -> Result<StagedWelcome, Error> {
        let welcome = self.welcome.into_welcome()?;
        let request = JoinRequest {
            identity: self.identity,
            key_package: self.key_package.key_package(),
            secrets: self.key_package.secrets(),
            welcome: &welcome,
            ratchet_tree: self.ratchet_tree,
            external_psks: self.external_psks,
            resumption_psks: self.resumption_psks,
            config: self.config,
            validator: self.validator,
        };
        let (group, added_by) = match self.resumes {
            Resumes::Fresh => Group::join_continuing(provider, request, Continuation::Fresh)?,
            Resumes::ReInit(old) => Group::join_reinit(provider, old, request)?,
            Resumes::Branch(old) => Group::join_branch(provider, old, request)?,
        };
        Ok(StagedWelcome { group, added_by })
    }

    /// [`JoinBuilder::stage`] and [`StagedWelcome::accept`] in one step.
    pub fn join(self, provider: &dyn CryptoProvider) -> Result<Group, Error> {
        Ok(self.stage(provider)?.accept())
    }
}

/// A Welcome that passed every check, not yet accepted: inspect the group it joins, then
/// [`StagedWelcome::accept`] it or drop it (then nothing was joined; the KeyPackage's
/// private keys may be deleted either way, since a KeyPackage is used once, §10).
#[derive(Debug)]
pub struct StagedWelcome {
    group: Group,
    added_by: LeafIndex,
}

impl StagedWelcome {
    /// The group id.
    pub fn group_id(&self) -> &[u8] {
        self.group.group_id()
    }
    /// The epoch we join at.
    pub fn epoch(&self) -> u64 {
        self.group.epoch()
    }
    /// The GroupContext, with its extensions.
    pub fn context(&self) -> &GroupContext {
        self.group.context()
    }
    /// The group's extensions.
    pub fn extensions(&self) -> &[Extension] {
        &self.group.context().extensions
    }
    /// The members, ourselves included.
    pub fn members(&self) -> impl Iterator<Item = Member<'_>> {
        self.group.members()
    }
    /// The member who added us: the signer of the Welcome's GroupInfo (§12.4.3.1).
    pub fn added_by(&self) -> Option<Member<'_>> {
        self.group.member(self.added_by)
    }
    /// Our own leaf in the group.
    pub fn own_leaf(&self) -> LeafIndex {
        self.group.own_leaf()
    }
    /// Accepts the Welcome: the group, ready to use.
    pub fn accept(self) -> Group {
        self.group
    }
}

/// Joins a group by external commit (RFC 9420 §12.4.3.2), or rejoins it after losing state
/// ([`ExternalJoinBuilder::resync`]). From [`Group::join_external`].
#[must_use = "a builder does nothing until `build`"]
pub struct ExternalJoinBuilder<'a> {
    group_info: MlsMessage,
    identity: &'a Identity,
    validator: Arc<dyn IdentityValidator>,
    ratchet_tree: Option<RatchetTree>,
    resync: Option<LeafIndex>,
    authenticated_data: Vec<u8>,
    config: GroupConfig,
}

impl core::fmt::Debug for ExternalJoinBuilder<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExternalJoinBuilder")
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

impl ExternalJoinBuilder<'_> {
    /// The ratchet tree, if the GroupInfo does not carry it.
    pub fn ratchet_tree(mut self, tree: RatchetTree) -> Self {
        self.ratchet_tree = Some(tree);
        self
    }
    /// Removes our own old leaf in the same commit: a resync after lost state (§12.4.3.2).
    pub fn resync(mut self, old_leaf: LeafIndex) -> Self {
        self.resync = Some(old_leaf);
        self
    }
    /// Authenticated data carried with the commit.
    pub fn authenticated_data(mut self, data: Vec<u8>) -> Self {
        self.authenticated_data = data;
        self
    }
    /// Local policy; [`GroupConfig::default`] otherwise.
    pub fn config(mut self, config: GroupConfig) -> Self {
        self.config = config;
        self
    }
    /// Verifies the GroupInfo and its tree and makes the external commit.
    ///
    /// Returns the group, already in the new epoch, and the commit to send. If the Delivery
    /// Service refuses the commit (another commit won the epoch), drop the group and build
    /// again from a fresh GroupInfo.
    pub fn build(self, provider: &dyn CryptoProvider) -> Result<(Group, MlsMessage), Error> {
        let group_info = self.group_info.into_group_info()?;
        Group::join_external_with(
            provider,
            ExternalJoinRequest {
                identity: self.identity,
                group_info: &group_info,
                ratchet_tree: self.ratchet_tree,
                resync: self.resync,
                authenticated_data: self.authenticated_data,
                config: self.config,
                validator: self.validator,
            },
        )
    }
}

impl Group {
    /// Starts building a new group with `identity` as its creator, under the application's
    /// identity policy `validator`.
    pub fn builder(identity: &Identity, validator: Arc<dyn IdentityValidator>) -> GroupBuilder<'_> {
        GroupBuilder {
            identity,
            validator,
            group_id: None,
            extensions: Vec::new(),
            config: GroupConfig::default(),
        }
    }

    /// Starts joining from `welcome` (an `MlsMessage` carrying a Welcome), made for the
    /// KeyPackage of `key_package`, as `identity` under the identity policy `validator`.
    pub fn join<'a>(
        welcome: MlsMessage,
        identity: &'a Identity,
        key_package: &'a KeyPackageBundle,
        validator: Arc<dyn IdentityValidator>,
    ) -> JoinBuilder<'a> {
        JoinBuilder {
            welcome,
            identity,
            key_package,
            validator,
            ratchet_tree: None,
            external_psks: HashMap::new(),
            resumption_psks: HashMap::new(),
            config: GroupConfig::default(),
            resumes: Resumes::Fresh,
        }
    }

    /// Starts joining by external commit from `group_info` (an `MlsMessage` carrying a
    /// GroupInfo with the external_pub extension), as `identity` under `validator`.
    pub fn join_external(
        group_info: MlsMessage,
        identity: &Identity,
        validator: Arc<dyn IdentityValidator>,
    ) -> ExternalJoinBuilder<'_> {
        ExternalJoinBuilder {
            group_info,
            identity,
            validator,
            ratchet_tree: None,
            resync: None,
            authenticated_data: Vec::new(),
            config: GroupConfig::default(),
        }
    }
}
