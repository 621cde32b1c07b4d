//! Joining by external commit (RFC 9420 §12.4.3.2), including resync: a member that lost
//! its state replaces its own old leaf.

use super::join::{tree_of, verify_signer_and_tree};
use super::proposals::{Committer, ProposalCache};
use super::{EpochState, Group, GroupConfig};
use crate::Error;
use crate::codec::Decode;
use crate::crypto::{CryptoProvider, Secret, SuiteCrypto};
use crate::identity::{Identity, IdentityValidator};
use crate::key_schedule::{EpochSecrets, external_init};
use crate::messages::{
    ExtensionType, ExternalInit, ExternalPub, GroupInfo, LeafNode, LeafNodeContent, LeafNodeSource,
    MlsMessage, Proposal, ProposalOrRef, Remove, Sender,
};
use crate::secret_tree::SecretTree;
use crate::transcript::interim_transcript_hash;
use crate::tree::LeafIndex;
use crate::tree::treekem::TreeKemPrivate;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// Everything a client needs to join a group by external commit
/// ([`super::ExternalJoinBuilder`] fills it).
pub(super) struct ExternalJoinRequest<'a> {
    /// The joiner's identity.
    pub(super) identity: &'a Identity,
    /// The group's signed GroupInfo, with the external_pub extension.
    pub(super) group_info: &'a GroupInfo,
    /// The ratchet tree, if the GroupInfo does not carry it.
    pub(super) ratchet_tree: Option<crate::messages::RatchetTree>,
    /// Our own old leaf, to remove in the same commit (resync).
    pub(super) resync: Option<LeafIndex>,
    /// Authenticated data carried with the commit.
    pub(super) authenticated_data: Vec<u8>,
    /// Local policy.
    pub(super) config: GroupConfig,
    /// The application's identity policy.
    pub(super) validator: Arc<dyn IdentityValidator>,
}

impl core::fmt::Debug for ExternalJoinRequest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExternalJoinRequest")
            .field("resync", &self.resync)
            .finish_non_exhaustive()
    }
}

impl Group {
    /// Joins by external commit (RFC 9420 §12.4.3.2): verifies the GroupInfo and its tree,
    /// derives the init secret from the group's external_pub (§8.3), and commits an
    /// ExternalInit (plus a Remove of `resync`) with a path from a new leaf.
    ///
    /// Returns the group, already in the new epoch, and the commit to send. If the Delivery
    /// Service refuses the commit (another commit won the epoch), drop the group and retry
    /// with a fresh GroupInfo.
    pub(super) fn join_external_with(
        provider: &dyn CryptoProvider,
        request: ExternalJoinRequest<'_>,
    ) -> Result<(Self, MlsMessage), Error> {
        let info = request.group_info;
        let context = info.tbs.group_context.clone();
        let suite = context.cipher_suite;
        if suite != request.identity.suite {
            return Err(Error::GroupInfoCipherSuiteMismatch);
        }
        let crypto = SuiteCrypto::new(provider, suite)?;
        let mut tree = tree_of(info, request.ratchet_tree)?;
        let (signed, valid_tree) = verify_signer_and_tree(
            request.config.time.now(),
            &crypto,
            info,
            &mut tree,
            request.validator.as_ref(),
        );
        signed?;
        valid_tree?;
        let external_pub = info
            .tbs
            .extensions
            .iter()
            .find(|e| e.extension_type == ExtensionType::EXTERNAL_PUB)
            .map(|e| ExternalPub::decode(e.extension_data.as_slice()))
            .transpose()?
            .ok_or(Error::MissingExternalPub)?;
        let (kem_output, init_secret) =
            external_init(&crypto, external_pub.external_pub.as_slice())?;
        let interim = interim_transcript_hash(
            &crypto,
            context.confirmed_transcript_hash.as_slice(),
            info.tbs.confirmation_tag.as_slice(),
        )?;

        // The joiner has none of the old epoch's secrets. The state below stands in for that
        // epoch only as far as a commit needs it: its tree, context and transcript. Its
        // secrets are random and never used: the init secret comes from the ExternalInit,
        // an external commit has no membership tag, and is never a PrivateMessage.
        let mut placeholder = vec![0u8; crypto.hash_len()];
        provider.random_bytes(&mut placeholder)?;
        let secrets = EpochSecrets::from_epoch_secret(&crypto, &Secret::new(placeholder))?;
        let secret_tree = SecretTree::new(
            tree.size(),
            secrets.encryption_secret.clone(),
            request.config.ratchet,
        );
        let leaf_keys = provider.hpke_generate_key_pair(suite)?;
        let mut group = Group {
            config: request.config,
            suite,
            signer: request.identity.signer.clone(),
            epoch: EpochState {
                context,
                tree,
                private: TreeKemPrivate::new(LeafIndex(0), leaf_keys.private_key.clone()),
                secrets,
                secret_tree,
                interim_transcript_hash: interim,
                confirmation_tag: info.tbs.confirmation_tag.clone(),
                reinit: None,
            },
            proposals: ProposalCache::default(),
            condition: super::Condition::Active,
            past_epochs: VecDeque::new(),
            resumption_psks: BTreeMap::new(),
            external_psks: HashMap::new(),
            validator: request.validator,
            update_keys: Vec::new(),
            foreign_resumption_psks: HashMap::new(),
            special_psk: None,
        };

        let mut list = vec![(
            Proposal::ExternalInit(ExternalInit {
                kem_output: kem_output.into(),
            }),
            Sender::NewMemberCommit,
        )];
        if let Some(old) = request.resync {
            list.push((
                Proposal::Remove(Remove { removed: old.0 }),
                Sender::NewMemberCommit,
            ));
        }
        let refs = list
            .iter()
            .map(|(p, _)| ProposalOrRef::Proposal(p.clone()))
            .collect();
        let mut provisional = group.apply_proposals(&crypto, Committer::External, &list)?;
        // Our leaf goes where an Add would put it; `prepare_path` re-keys and signs it.
        let content = LeafNodeContent {
            encryption_key: leaf_keys.public_key.into(),
            signature_key: request.identity.signature_key.clone(),
            credential: request.identity.credential.clone(),
            capabilities: group
                .config
                .leaf_capabilities
                .clone()
                .unwrap_or_else(|| crate::key_package::default_capabilities(request.identity)),
            leaf_node_source: LeafNodeSource::Commit {
                parent_hash: Vec::new().into(),
            },
            extensions: vec![],
        };
        let own = provisional.tree.add_leaf(LeafNode {
            content,
            signature: Vec::new().into(),
        })?;
        group.epoch.private = TreeKemPrivate::new(own, leaf_keys.private_key);
        let output = group.build_commit(
            &crypto,
            provisional,
            refs,
            true,
            request.authenticated_data,
            Sender::NewMemberCommit,
            init_secret,
        )?;
        group.merge_pending_commit()?;
        Ok((group, output.commit))
    }
}
