//! Commits (RFC 9420 §12.4): building one, and processing one into a staged commit.

use super::proposals::{Committer, Provisional};
use super::{EpochState, Group};
use crate::Error;
use crate::codec::Encode;
use crate::crypto::{CryptoProvider, Secret, SuiteCrypto};
use crate::key_schedule::JoinerSecret;
use crate::messages::{
    Add, Commit, ConfirmedTranscriptHashInput, ContentType, Extension, FramedContentBody,
    GroupContext, GroupContextExtensions, GroupSecrets, KeyPackage, Mac, MlsMessage,
    MlsMessageBody, PathSecret, PreSharedKey, PreSharedKeyId, Proposal, ProposalOrRef, Psk, ReInit,
    Remove, Sender, Welcome,
};
use crate::protection::{self, VerifiedContent};
use crate::secret_tree::SecretTree;
use crate::transcript::{confirmed_transcript_hash, interim_transcript_hash};
use crate::tree::LeafIndex;
use crate::tree::treekem::{PreparedPath, merge_update_path, prepare_path};
use crate::welcome::{seal_group_info, seal_group_secrets};
use subtle::ConstantTimeEq;

/// Our own commit, sent but not yet accepted by the Delivery Service.
#[derive(Debug)]
pub(super) struct PendingCommit {
    pub(super) message: MlsMessage,
    pub(super) next: EpochState,
}

/// What [`CommitBuilder::build`] produced: the commit to send, and for new members the
/// Welcome; plus a GroupInfo of the new epoch (for external joins).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CommitOutput {
    /// The commit, to hand to the Delivery Service.
    pub commit: MlsMessage,
    /// The Welcome for the members this commit adds, if any.
    pub welcome: Option<MlsMessage>,
    /// A signed GroupInfo of the new epoch, made when the commit adds members (the Welcome
    /// carries it). Otherwise none is made: with the ratchet tree it costs O(n) to encode and
    /// sign, so ask [`Group::group_info`] after merging when one is needed.
    pub group_info: Option<MlsMessage>,
    /// The new epoch's ratchet tree, for joiners who get it out of band: present when the
    /// commit adds members and [`crate::GroupConfig::ratchet_tree_extension`] is off (then
    /// the Welcome does not carry it, §12.4.3.3). Otherwise see
    /// [`Group::pending_ratchet_tree`].
    pub ratchet_tree: Option<crate::messages::RatchetTree>,
}

/// A commit received from another member, checked and computed but not yet applied.
#[derive(Debug)]
pub struct StagedCommit {
    group_id: Vec<u8>,
    from_epoch: u64,
    sender: Sender,
    added: Vec<LeafIndex>,
    removed: Vec<LeafIndex>,
    updated: Vec<LeafIndex>,
    reinit: Option<ReInit>,
    /// The committed proposals, in the commit's order.
    proposals: Vec<Proposal>,
    /// `None` when the commit removes us: there is no next epoch for us.
    next: Option<EpochState>,
}

impl StagedCommit {
    /// Who committed.
    pub fn sender(&self) -> Sender {
        self.sender
    }
    /// The leaves of the members this commit adds.
    pub fn added(&self) -> &[LeafIndex] {
        &self.added
    }
    /// The leaves this commit removes.
    pub fn removed(&self) -> &[LeafIndex] {
        &self.removed
    }
    /// The leaves whose Update proposals this commit applies.
    pub fn updated(&self) -> &[LeafIndex] {
        &self.updated
    }
    /// Whether this commit removes us from the group.
    pub fn removes_us(&self) -> bool {
        self.next.is_none()
    }
    /// The committed proposals, in order (custom ones included, for the application).
    pub fn proposals(&self) -> &[Proposal] {
        &self.proposals
    }
    /// The ReInit this commit carries, if any (§11.2: the group is then closed).
    pub fn reinit(&self) -> Option<&ReInit> {
        self.reinit.as_ref()
    }
    /// The epoch authenticator of the new epoch (None if the commit removes us).
    pub fn epoch_authenticator(&self) -> Option<&[u8]> {
        self.next
            .as_ref()
            .map(|n| n.secrets.epoch_authenticator.as_bytes())
    }
}

/// Builds a commit. Every proposal cached in the epoch is included by reference (§12.4:
/// a committer must include the valid proposals it received); more can be added by value.
pub struct CommitBuilder<'g> {
    group: &'g mut Group,
    proposals: Vec<Proposal>,
    force_path: bool,
    authenticated_data: Vec<u8>,
}

impl core::fmt::Debug for CommitBuilder<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CommitBuilder")
            .field("proposals", &self.proposals.len())
            .finish_non_exhaustive()
    }
}

impl<'g> CommitBuilder<'g> {
    /// Adds the client of `key_package`.
    pub fn add_member(mut self, key_package: KeyPackage) -> Self {
        self.proposals.push(Proposal::Add(Add { key_package }));
        self
    }
    /// Removes the member at `leaf`.
    pub fn remove_member(mut self, leaf: LeafIndex) -> Self {
        self.proposals
            .push(Proposal::Remove(Remove { removed: leaf.0 }));
        self
    }
    /// Injects a PSK (§8.4); the nonce must be fresh, of length Nh.
    pub fn psk(mut self, psk: PreSharedKeyId) -> Self {
        self.proposals
            .push(Proposal::PreSharedKey(PreSharedKey { psk }));
        self
    }
    /// Replaces the group context extensions (§12.1.7).
    pub fn group_context_extensions(mut self, extensions: Vec<Extension>) -> Self {
        self.proposals
            .push(Proposal::GroupContextExtensions(GroupContextExtensions {
                extensions,
            }));
        self
    }
    /// Any proposal, by value.
    pub fn proposal(mut self, proposal: Proposal) -> Self {
        self.proposals.push(proposal);
        self
    }
    /// Sends an UpdatePath even when no proposal requires one (a "full" commit, §12.4).
    pub fn force_path(mut self) -> Self {
        self.force_path = true;
        self
    }
    /// Authenticated data carried (unencrypted) with the commit.
    pub fn authenticated_data(mut self, data: Vec<u8>) -> Self {
        self.authenticated_data = data;
        self
    }

    /// Builds the commit and keeps the new epoch pending until
    /// [`Group::merge_pending_commit`] (the Delivery Service accepted it) or
    /// [`Group::clear_pending_commit`].
    pub fn build(self, provider: &dyn CryptoProvider) -> Result<CommitOutput, Error> {
        let group = self.group;
        let crypto = group.crypto(provider)?;
        let me = group.own_leaf();
        let own = Sender::Member(me.0);
        let mut cached = Vec::new();
        for (reference, proposal, sender) in group.proposals.iter() {
            // A cached proposal that no longer applies (e.g. removes us) is left out.
            if matches!(proposal, Proposal::Remove(r) if r.removed == me.0)
                || matches!(proposal, Proposal::Update(_) if *sender == own)
            {
                continue;
            }
            cached.push((reference.clone(), proposal.clone(), *sender));
        }
        let by_value: Vec<(Proposal, Sender)> =
            self.proposals.into_iter().map(|p| (p, own)).collect();
        let committer = Committer::Member(me);
        let list_of = |chosen: &[&(crate::messages::ProposalRef, Proposal, Sender)]| {
            chosen
                .iter()
                .map(|(_, p, s)| (p.clone(), *s))
                .chain(by_value.iter().cloned())
                .collect::<Vec<_>>()
        };
        let mut chosen: Vec<_> = cached.iter().collect();
        if group
            .apply_proposals(&crypto, committer, &list_of(&chosen))
            .is_err()
        {
            // §12.2: received proposals may conflict with each other (two Removes of one
            // leaf) or be invalid once applied (a KeyPackage reusing a key in the tree); the
            // committer commits a valid subset instead of being unable to commit at all.
            // Greedily keep, in arrival order, each one that still leaves a valid list.
            chosen.clear();
            for entry in &cached {
                let mut trial = chosen.clone();
                trial.push(entry);
                if group
                    .apply_proposals(&crypto, committer, &list_of(&trial))
                    .is_ok()
                {
                    chosen = trial;
                }
            }
        }
        let list = list_of(&chosen);
        let refs: Vec<ProposalOrRef> = chosen
            .iter()
            .map(|(r, _, _)| ProposalOrRef::Reference(r.clone()))
            .chain(
                by_value
                    .iter()
                    .map(|(p, _)| ProposalOrRef::Proposal(p.clone())),
            )
            .collect();
        let provisional = group.apply_proposals(&crypto, committer, &list)?;
        let init_secret = group.epoch.secrets.init_secret.clone();
        group.build_commit(
            &crypto,
            provisional,
            refs,
            self.force_path,
            self.authenticated_data,
            own,
            init_secret,
        )
    }
}

impl Group {
    /// Starts a commit (RFC 9420 §12.4).
    pub fn commit(&mut self) -> CommitBuilder<'_> {
        CommitBuilder {
            group: self,
            proposals: Vec::new(),
            force_path: false,
            authenticated_data: Vec::new(),
        }
    }

    /// The ratchet tree of the epoch our pending commit would create, in its wire form
    /// (§12.4.3.3); [`Error::NoPendingCommit`] when there is none.
    pub fn pending_ratchet_tree(&self) -> Result<crate::messages::RatchetTree, Error> {
        let pending = self.condition.pending().ok_or(Error::NoPendingCommit)?;
        Ok(pending.next.tree.to_wire())
    }

    /// Installs our pending commit's epoch: the Delivery Service accepted it.
    pub fn merge_pending_commit(&mut self) -> Result<(), Error> {
        let pending = self
            .condition
            .take_pending()
            .ok_or(Error::NoPendingCommit)?;
        self.install_epoch(pending.next);
        Ok(())
    }

    /// Applies a staged commit received from another member.
    pub fn merge(&mut self, staged: StagedCommit) -> Result<(), Error> {
        if staged.group_id != self.group_id() || staged.from_epoch != self.epoch() {
            return Err(Error::StaleStagedCommit);
        }
        match staged.next {
            Some(next) => {
                self.install_epoch(next);
                Ok(())
            }
            None => {
                self.condition = super::Condition::Removed;
                Ok(())
            }
        }
    }

    /// The PSK values behind `ids`, in order (§8.4).
    fn psk_values(&self, ids: &[PreSharedKeyId]) -> Result<Vec<(PreSharedKeyId, Secret)>, Error> {
        ids.iter()
            .map(|id| {
                let value = match &id.psk {
                    Psk::External { psk_id } => self.external_psks.get(psk_id.as_slice()).cloned(),
                    Psk::Resumption {
                        psk_group_id,
                        psk_epoch,
                        ..
                    } => {
                        if psk_group_id.as_slice() == self.group_id() {
                            self.resumption_psks.get(psk_epoch).cloned()
                        } else {
                            self.foreign_resumption_psks
                                .get(&(psk_group_id.as_slice().to_vec(), *psk_epoch))
                                .cloned()
                        }
                    }
                };
                value.map(|v| (id.clone(), v)).ok_or(Error::MissingPsk)
            })
            .collect()
    }

    fn psk_secret(
        &self,
        crypto: &SuiteCrypto<'_>,
        ids: &[PreSharedKeyId],
    ) -> Result<Secret, Error> {
        let values = self.psk_values(ids)?;
        let pairs: Vec<(PreSharedKeyId, &[u8])> = values
            .iter()
            .map(|(id, v)| (id.clone(), v.as_bytes()))
            .collect();
        crate::psk::psk_secret(crypto, &pairs)
    }

    fn provisional_context(&self, tree_hash: Vec<u8>, extensions: Vec<Extension>) -> GroupContext {
        GroupContext {
            epoch: self.epoch.context.epoch + 1,
            tree_hash: tree_hash.into(),
            extensions,
            ..self.epoch.context.clone()
        }
    }

    /// The key schedule of the next epoch from the commit's confirmed transcript input.
    fn next_epoch_secrets(
        &self,
        crypto: &SuiteCrypto<'_>,
        provisional: &GroupContext,
        confirmed_input: &[u8],
        commit_secret: &Secret,
        psk_secret: &Secret,
        init_secret: &[u8],
    ) -> Result<
        (
            GroupContext,
            JoinerSecret,
            crate::key_schedule::EpochSecrets,
        ),
        Error,
    > {
        let confirmed = confirmed_transcript_hash(
            crypto,
            &self.epoch.interim_transcript_hash,
            confirmed_input,
        )?;
        let context = GroupContext {
            confirmed_transcript_hash: confirmed.into(),
            ..provisional.clone()
        };
        let context_bytes = context.encode()?;
        let joiner = JoinerSecret::derive(
            crypto,
            init_secret,
            commit_secret.as_bytes(),
            &context_bytes,
        )?;
        let secrets = joiner.epoch_secrets(crypto, psk_secret.as_bytes(), &context_bytes)?;
        Ok((context, joiner, secrets))
    }

    /// Builds a commit from a validated proposal list. `sender` is our member leaf, or
    /// `NewMemberCommit` for an external commit (whose `init_secret` comes from its
    /// ExternalInit, §8.3, and whose leaf must already be in `provisional.tree`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build_commit(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        provisional: Provisional,
        proposals: Vec<ProposalOrRef>,
        force_path: bool,
        authenticated_data: Vec<u8>,
        sender: Sender,
        init_secret: Secret,
    ) -> Result<CommitOutput, Error> {
        self.check_open()?;
        let Provisional {
            mut tree,
            extensions,
            added,
            psks,
            path_required,
            reinit,
            ..
        } = provisional;
        let mut private = self.epoch.private.clone();
        let new_members: Vec<LeafIndex> = added.iter().map(|(l, _)| *l).collect();
        let mut prepared: Option<PreparedPath> = None;
        let path = if path_required || force_path {
            let content = tree
                .leaf(self.own_leaf())
                .ok_or(Error::BlankLeaf(self.own_leaf()))?
                .content
                .clone();
            let p = prepare_path(
                crypto,
                &mut tree,
                &mut private,
                content,
                &self.signer,
                self.group_id(),
            )?;
            let ctx = self.provisional_context(tree.root_hash(crypto)?, extensions.clone());
            let update_path = p.encrypt(crypto, &tree, &ctx.encode()?, &new_members)?;
            prepared = Some(p);
            Some(update_path)
        } else {
            None
        };
        let commit_secret = prepared
            .as_ref()
            .map(|p| p.commit_secret().clone())
            .unwrap_or_else(|| Secret::zero(crypto.hash_len()));
        let psk_secret = self.psk_secret(crypto, &psks)?;
        let provisional_ctx = self.provisional_context(tree.root_hash(crypto)?, extensions);

        let mut content = self.framed(
            FramedContentBody::Commit(Commit { proposals, path }),
            &authenticated_data,
        );
        content.sender = sender;
        let member = matches!(sender, Sender::Member(_));
        let mut computed = None;
        let confirm = |input: &ConfirmedTranscriptHashInput| -> Result<Mac, Error> {
            let (context, joiner, secrets) = self.next_epoch_secrets(
                crypto,
                &provisional_ctx,
                &input.encode()?,
                &commit_secret,
                &psk_secret,
                init_secret.as_bytes(),
            )?;
            let tag: Mac = secrets
                .confirmation_tag(crypto, context.confirmed_transcript_hash.as_slice())?
                .into();
            computed = Some((context, joiner, secrets, tag.clone()));
            Ok(tag)
        };
        let private_wire =
            member && self.config.handshake_wire_format == super::HandshakeWireFormat::Private;
        let body = if private_wire {
            let mut secret_tree = self.epoch.secret_tree.clone();
            let m = protection::protect_private(
                crypto,
                &self.signer,
                &self.epoch.keys(),
                &mut secret_tree,
                self.config.padding,
                content,
                confirm,
            )?;
            self.epoch.secret_tree = secret_tree;
            MlsMessageBody::PrivateMessage(m)
        } else {
            let keys = protection::EpochKeys {
                membership_key: member.then_some(&self.epoch.secrets.membership_key),
                ..self.epoch.keys()
            };
            MlsMessageBody::PublicMessage(protection::protect_public(
                crypto,
                &self.signer,
                &keys,
                content,
                confirm,
            )?)
        };
        let (context, joiner, secrets, tag) = computed.ok_or(Error::MissingConfirmationTag)?;
        let interim = interim_transcript_hash(
            crypto,
            context.confirmed_transcript_hash.as_slice(),
            tag.as_slice(),
        )?;
        let secret_tree = SecretTree::new(
            tree.size(),
            secrets.encryption_secret.clone(),
            self.config.ratchet,
        );
        let next = EpochState {
            context,
            tree,
            private,
            secrets,
            secret_tree,
            interim_transcript_hash: interim,
            confirmation_tag: tag,
            reinit,
        };
        let (welcome, group_info) = if added.is_empty() {
            (None, None)
        } else {
            let group_info = self.build_group_info(crypto, &next)?;
            let welcome_secret = joiner.welcome_secret(crypto, psk_secret.as_bytes())?;
            let encrypted_group_info = seal_group_info(crypto, &group_info, &welcome_secret)?;
            let joiners = added
                .iter()
                .map(|(leaf, kp)| {
                    let path_secret = prepared
                        .as_ref()
                        .and_then(|p| p.path_secret_for(*leaf))
                        .map(|(_, s)| PathSecret {
                            path_secret: s.as_bytes().to_vec().into(),
                        });
                    let group_secrets = GroupSecrets {
                        joiner_secret: joiner.as_bytes().to_vec().into(),
                        path_secret,
                        psks: psks.clone(),
                    };
                    Ok((
                        kp.reference(crypto)?,
                        kp.tbs.init_key.as_slice(),
                        group_secrets,
                    ))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            // The HPKE info of every seal is the encrypted GroupInfo, which carries the whole
            // ratchet tree; it is hashed once for all joiners, not once each.
            let secrets = seal_group_secrets(crypto, &encrypted_group_info, &joiners)?;
            (
                Some(Self::wrap(MlsMessageBody::Welcome(Welcome {
                    cipher_suite: self.suite,
                    secrets,
                    encrypted_group_info: encrypted_group_info.into(),
                }))),
                Some(Self::wrap(MlsMessageBody::GroupInfo(group_info))),
            )
        };
        // §12.4.3.3: without the ratchet_tree extension, joiners get the tree out of band.
        let ratchet_tree =
            (welcome.is_some() && !self.config.ratchet_tree_extension).then(|| next.tree.to_wire());
        let commit = Self::wrap(body);
        self.condition = super::Condition::Pending(Box::new(PendingCommit {
            message: commit.clone(),
            next,
        }));
        Ok(CommitOutput {
            commit,
            welcome,
            group_info,
            ratchet_tree,
        })
    }

    /// Processes a verified commit from another member into a [`StagedCommit`] (§12.4.2).
    pub(super) fn stage_commit(
        &self,
        crypto: &SuiteCrypto<'_>,
        verified: VerifiedContent,
    ) -> Result<StagedCommit, Error> {
        if self.condition.is_removed() {
            return Err(Error::RemovedFromGroup);
        }
        let authenticated = verified.authenticated_content();
        let FramedContentBody::Commit(commit) = &authenticated.content.body else {
            return Err(Error::NotACommit);
        };
        let sender = verified.sender();
        let committer = match sender {
            Sender::Member(leaf) if LeafIndex(leaf) == self.own_leaf() => {
                // Our own commit comes back byte-identical and is matched in `process`;
                // anything else claiming to be ours is not something we sent.
                return Err(Error::UnexpectedMessage);
            }
            Sender::Member(leaf) => Committer::Member(LeafIndex(leaf)),
            Sender::NewMemberCommit => Committer::External,
            _ => return Err(Error::UnexpectedMessage),
        };
        let mut list = Vec::with_capacity(commit.proposals.len());
        for p in &commit.proposals {
            match p {
                ProposalOrRef::Proposal(p) => list.push((p.clone(), sender)),
                ProposalOrRef::Reference(r) => {
                    let (p, s) = self.proposals.get(r).ok_or(Error::UnknownProposalRef)?;
                    list.push((p.clone(), s));
                }
            }
        }
        let mut provisional = self.apply_proposals(crypto, committer, &list)?;
        if (provisional.path_required || committer == Committer::External) && commit.path.is_none()
        {
            return Err(Error::PathRequired);
        }
        // §12.4.2: an external committer takes the leftmost blank leaf (or a new one); with a
        // resync Remove, its new leaf must be a valid successor of the removed one (§12.2).
        let (sender_leaf, predecessor, init_secret) = match committer {
            Committer::Member(leaf) => {
                let old = provisional
                    .tree
                    .leaf(leaf)
                    .cloned()
                    .ok_or(Error::BlankLeaf(leaf))?;
                (leaf, Some(old), self.epoch.secrets.init_secret.clone())
            }
            Committer::External => {
                let path = commit.path.as_ref().ok_or(Error::PathRequired)?;
                let leaf = provisional.tree.add_leaf(path.leaf_node.clone())?;
                let old = provisional.removed.first().map(|(_, node)| node.clone());
                let kem_output = provisional
                    .external_init
                    .as_deref()
                    .ok_or(Error::ProposalListInvalid("an external commit's proposals"))?;
                (
                    leaf,
                    old,
                    self.epoch
                        .secrets
                        .external_init_secret(crypto, kem_output)?,
                )
            }
        };
        let added_leaves: Vec<LeafIndex> = provisional.added.iter().map(|(l, _)| *l).collect();
        let removed_leaves: Vec<LeafIndex> = provisional.removed.iter().map(|(l, _)| *l).collect();
        let staged = |next| StagedCommit {
            group_id: self.group_id().to_vec(),
            from_epoch: self.epoch(),
            sender,
            added: added_leaves.clone(),
            removed: removed_leaves.clone(),
            updated: provisional.updated.clone(),
            reinit: provisional.reinit.clone(),
            proposals: list.iter().map(|(p, _)| p.clone()).collect(),
            next,
        };
        // The psks must be available whether or not we stay (§12.4.2).
        let psk_secret = self.psk_secret(crypto, &provisional.psks)?;
        // Moved, not cloned: the provisional tree is this commit's own copy.
        let mut tree = provisional.tree;
        let mut private = self.epoch.private.clone();
        if provisional.updated.contains(&self.own_leaf()) {
            // Someone committed our Update: our leaf now has the key we proposed (§12.1.2).
            let me = self.own_leaf();
            let key = tree
                .leaf(me)
                .ok_or(Error::BlankLeaf(me))?
                .content
                .encryption_key
                .clone();
            let private_key = self
                .update_keys
                .iter()
                .find(|(public, _)| public.as_slice() == key.as_slice())
                .map(|(_, k)| k.clone())
                .ok_or(Error::MissingUpdateKey)?;
            private.set_leaf(me, private_key);
        }
        let removed_us = removed_leaves.contains(&self.own_leaf());

        let commit_secret = match &commit.path {
            Some(path) => {
                self.check_leaf(
                    crypto,
                    &path.leaf_node,
                    sender_leaf,
                    &provisional.extensions,
                    predecessor.as_ref(),
                )?;
                let merged = merge_update_path(crypto, &mut tree, sender_leaf, path)?;
                // §12.4.2, §15.4: the new leaf and path keys appear nowhere else.
                tree.verify_keys_unique_at(&merged.changed_nodes())?;
                if removed_us {
                    return Ok(staged(None));
                }
                let ctx = self
                    .provisional_context(tree.root_hash(crypto)?, provisional.extensions.clone());
                merged
                    .decrypt(crypto, &tree, &mut private, &ctx.encode()?, &added_leaves)?
                    .0
            }
            None => {
                if removed_us {
                    return Ok(staged(None));
                }
                Secret::zero(crypto.hash_len())
            }
        };
        let provisional_ctx =
            self.provisional_context(tree.root_hash(crypto)?, provisional.extensions.clone());
        let input = crate::messages::confirmed_transcript_hash_input(
            authenticated.wire_format,
            &authenticated.content,
            &authenticated.auth.signature,
        )?;
        let (context, _, secrets) = self.next_epoch_secrets(
            crypto,
            &provisional_ctx,
            &input,
            &commit_secret,
            &psk_secret,
            init_secret.as_bytes(),
        )?;
        let tag = authenticated
            .auth
            .confirmation_tag
            .as_ref()
            .ok_or(Error::MissingConfirmationTag)?;
        let expected =
            secrets.confirmation_tag(crypto, context.confirmed_transcript_hash.as_slice())?;
        if !bool::from(expected.as_slice().ct_eq(tag.as_slice())) {
            return Err(Error::ConfirmationTagMismatch);
        }
        debug_assert_eq!(
            authenticated.content.body.content_type(),
            ContentType::Commit
        );
        let interim = interim_transcript_hash(
            crypto,
            context.confirmed_transcript_hash.as_slice(),
            tag.as_slice(),
        )?;
        let secret_tree = SecretTree::new(
            tree.size(),
            secrets.encryption_secret.clone(),
            self.config.ratchet,
        );
        Ok(staged(Some(EpochState {
            context,
            tree,
            private,
            secrets,
            secret_tree,
            interim_transcript_hash: interim,
            confirmation_tag: tag.clone(),
            reinit: provisional.reinit.clone(),
        })))
    }
}
