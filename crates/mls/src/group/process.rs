//! Receiving: a message from the Delivery Service becomes application data, a cached
//! proposal, a staged commit, or word that it was our own (RFC 9420 §6, §12.4.2).

use super::{Group, StagedCommit, proposals};
use crate::Error;
use crate::crypto::SuiteCrypto;
use crate::crypto::{CryptoProvider, Secret};
use crate::messages::{
    ContentType, FramedContentBody, GroupContext, MlsMessage, MlsMessageBody, Proposal,
    ProposalRef, ProtocolVersion, Sender, SignaturePublicKey,
};
use crate::protection::{self, VerifiedContent};
use crate::secret_tree::SecretTree;
use crate::tree::{LeafIndex, RatchetTree};
use std::collections::HashMap;

/// What processing an incoming message produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum Received {
    /// Application data from a member.
    Application {
        /// The sender's leaf.
        sender: LeafIndex,
        /// The epoch the message was sent in (possibly a past one).
        epoch: u64,
        /// The plaintext.
        data: Vec<u8>,
        /// The message's authenticated data.
        authenticated_data: Vec<u8>,
    },
    /// A proposal, now cached for the next commit.
    Proposal {
        /// Its reference, by which a commit can include it.
        reference: ProposalRef,
        /// Who proposed it.
        sender: Sender,
        /// The proposal.
        proposal: Box<Proposal>,
    },
    /// A commit from another member, staged: inspect it, then [`Group::merge`] it.
    Commit(Box<StagedCommit>),
    /// Our own pending commit, echoed back by the Delivery Service: it has been merged.
    OwnCommit,
    /// A proposal or application message we sent ourselves, read back from the Delivery
    /// Service (which delivers a group's log to every member, the sender included). Nothing
    /// changed: our own proposals are cached when sent, and our own application messages
    /// cannot be decrypted again (their keys were deleted on sending, §9.2).
    OwnMessage {
        /// Proposal or application.
        content_type: ContentType,
    },
}

/// The keys of a past epoch, kept for late application messages.
#[derive(Debug, Clone)]
pub(super) struct PastEpoch {
    pub(super) context: GroupContext,
    pub(super) secret_tree: SecretTree,
    pub(super) sender_data_secret: Secret,
    /// Who could sign in that epoch.
    pub(super) signers: PastSigners,
}

/// The signature keys of a past epoch's members.
#[derive(Debug, Clone)]
pub(super) enum PastSigners {
    /// The epoch's own tree: its nodes are shared with the epochs after it, so keeping it
    /// costs one pointer per node, where copying the keys out would cost O(n) per commit.
    Tree(RatchetTree),
    /// The keys alone, by leaf, as a state export keeps them.
    Keys(HashMap<LeafIndex, SignaturePublicKey>),
}

impl PastSigners {
    pub(super) fn get(&self, leaf: LeafIndex) -> Option<SignaturePublicKey> {
        match self {
            Self::Tree(tree) => tree.leaf(leaf).map(|l| l.content.signature_key.clone()),
            Self::Keys(keys) => keys.get(&leaf).cloned(),
        }
    }

    /// Every (leaf, key), by leaf.
    pub(super) fn sorted(&self) -> Vec<(LeafIndex, &SignaturePublicKey)> {
        match self {
            Self::Tree(tree) => tree
                .leaves()
                .map(|(i, l)| (i, &l.content.signature_key))
                .collect(),
            Self::Keys(keys) => {
                let mut all: Vec<_> = keys.iter().map(|(l, k)| (*l, k)).collect();
                all.sort_by_key(|(l, _)| l.0);
                all
            }
        }
    }
}

impl Group {
    /// Processes a message from the Delivery Service (RFC 9420 §6, §12.4.2).
    ///
    /// A rejected message leaves the group exactly as it was.
    pub fn process(
        &mut self,
        provider: &dyn CryptoProvider,
        message: &MlsMessage,
    ) -> Result<Received, Error> {
        if message.version != ProtocolVersion::MLS10 {
            return Err(Error::WrongProtocolVersion);
        }
        if let Some(pending) = self.condition.pending()
            && pending.message == *message
        {
            self.merge_pending_commit()?;
            return Ok(Received::OwnCommit);
        }
        let crypto = self.crypto(provider)?;
        let verified =
            match &message.body {
                MlsMessageBody::PublicMessage(m) => {
                    if m.content.group_id.as_slice() != self.group_id() {
                        return Err(Error::WrongGroupId);
                    }
                    if m.content.epoch != self.epoch() {
                        return Err(Error::WrongEpoch {
                            expected: self.epoch(),
                            got: m.content.epoch,
                        });
                    }
                    let tree = &self.epoch.tree;
                    let external_senders = proposals::external_senders(&self.epoch.context)?;
                    // An external committer signs with the key of the leaf its path brings (§12.4.3.2).
                    let new_member_key = match &m.content.body {
                        FramedContentBody::Commit(c) => c
                            .path
                            .as_ref()
                            .map(|p| p.leaf_node.content.signature_key.clone()),
                        _ => None,
                    };
                    protection::unprotect_public(&crypto, m, &self.epoch.keys(), |sender| {
                        match sender {
                            Sender::Member(leaf) => tree
                                .leaf(LeafIndex(*leaf))
                                .map(|l| l.content.signature_key.clone()),
                            Sender::External(i) => external_senders
                                .get(*i as usize)
                                .map(|s| s.signature_key.clone()),
                            Sender::NewMemberCommit => new_member_key,
                            Sender::NewMemberProposal => match &m.content.body {
                                FramedContentBody::Proposal(Proposal::Add(a)) => {
                                    Some(a.key_package.leaf_node().content.signature_key.clone())
                                }
                                _ => None,
                            },
                        }
                    })?
                }
                MlsMessageBody::PrivateMessage(m) => {
                    if m.group_id.as_slice() != self.group_id() {
                        return Err(Error::WrongGroupId);
                    }
                    if m.epoch != self.epoch() {
                        return self.process_past_private(&crypto, m);
                    }
                    let tree = &self.epoch.tree;
                    let me = self.own_leaf();
                    let own = std::cell::Cell::new(false);
                    let opened = protection::unprotect_private_staged(
                        &crypto,
                        m,
                        &self.epoch.keys(),
                        &self.epoch.secret_tree,
                        |leaf| {
                            // Our own message: its key was deleted when we sent it (§9.2).
                            own.set(leaf == me);
                            (leaf != me)
                                .then(|| tree.leaf(leaf).map(|l| l.content.signature_key.clone()))
                                .flatten()
                        },
                    );
                    if own.get() {
                        return Ok(Received::OwnMessage {
                            content_type: m.content_type,
                        });
                    }
                    let (verified, consumed) = opened?;
                    // Handshake content changes nothing until it is accepted below; application
                    // data is delivered now, so its key is spent now.
                    if !matches!(verified.content().body, FramedContentBody::Application(_)) {
                        let result = self.process_handshake(&crypto, verified);
                        if result.is_ok() {
                            self.epoch.secret_tree.apply(consumed)?;
                        }
                        return result;
                    }
                    self.epoch.secret_tree.apply(consumed)?;
                    verified
                }
                _ => return Err(Error::UnexpectedMessage),
            };
        match &verified.content().body {
            FramedContentBody::Application(data) => {
                let Sender::Member(leaf) = verified.sender() else {
                    return Err(Error::UnexpectedMessage);
                };
                Ok(Received::Application {
                    sender: LeafIndex(leaf),
                    epoch: verified.content().epoch,
                    data: data.as_slice().to_vec(),
                    authenticated_data: verified.content().authenticated_data.as_slice().to_vec(),
                })
            }
            _ => self.process_handshake(&crypto, verified),
        }
    }

    fn process_handshake(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        verified: VerifiedContent,
    ) -> Result<Received, Error> {
        match &verified.content().body {
            FramedContentBody::Proposal(proposal) => {
                let sender = verified.sender();
                if matches!(sender, Sender::Member(l) if l == self.own_leaf().0) {
                    return Ok(Received::OwnMessage {
                        content_type: ContentType::Proposal,
                    });
                }
                self.check_proposal_from(crypto, proposal, sender)?;
                let reference = verified
                    .authenticated_content()
                    .proposal_reference(crypto)?;
                let proposal = proposal.clone();
                self.proposals
                    .insert(reference.clone(), proposal.clone(), sender);
                Ok(Received::Proposal {
                    reference,
                    sender,
                    proposal: Box::new(proposal),
                })
            }
            FramedContentBody::Commit(_) => {
                let staged = self.stage_commit(crypto, verified)?;
                Ok(Received::Commit(Box::new(staged)))
            }
            FramedContentBody::Application(_) => Err(Error::UnexpectedMessage),
        }
    }

    /// Application messages of a recent past epoch (kept per [`GroupConfig::past_epochs`]).
    fn process_past_private(
        &mut self,
        crypto: &SuiteCrypto<'_>,
        message: &crate::messages::PrivateMessage,
    ) -> Result<Received, Error> {
        let current = self.epoch();
        let me = self.own_leaf();
        let past = self
            .past_epochs
            .iter_mut()
            .find(|p| p.context.epoch == message.epoch)
            .ok_or(Error::WrongEpoch {
                expected: current,
                got: message.epoch,
            })?;
        let signers = &past.signers;
        let own = std::cell::Cell::new(false);
        let keys = protection::EpochKeys {
            context: &past.context,
            sender_data_secret: &past.sender_data_secret,
            membership_key: None,
        };
        let opened = protection::unprotect_private_staged(
            crypto,
            message,
            &keys,
            &past.secret_tree,
            |leaf| {
                own.set(leaf == me);
                if leaf == me { None } else { signers.get(leaf) }
            },
        );
        if own.get() {
            return Ok(Received::OwnMessage {
                content_type: message.content_type,
            });
        }
        let (verified, consumed) = opened?;
        let FramedContentBody::Application(data) = &verified.content().body else {
            // Handshake messages of a past epoch are stale: their epoch is over.
            return Err(Error::WrongEpoch {
                expected: current,
                got: message.epoch,
            });
        };
        let Sender::Member(leaf) = verified.sender() else {
            return Err(Error::UnexpectedMessage);
        };
        past.secret_tree.apply(consumed)?;
        Ok(Received::Application {
            sender: LeafIndex(leaf),
            epoch: message.epoch,
            data: data.as_slice().to_vec(),
            authenticated_data: verified.content().authenticated_data.as_slice().to_vec(),
        })
    }
}
