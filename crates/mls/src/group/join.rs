//! Joining a group from a Welcome (RFC 9420 §12.4.3.1).

use super::proposals::{ProposalCache, check_group_extensions};
use super::{EpochState, Group, GroupConfig};
use crate::Error;
use crate::codec::{Decode, Encode};
use crate::crypto::{CryptoProvider, Secret, SuiteCrypto};
use crate::identity::{Identity, IdentityValidator};
use crate::key_package::KeyPackageSecrets;
use crate::key_schedule::JoinerSecret;
use crate::messages::{
    Credential, ExtensionType, GroupContext, KeyPackage, PreSharedKeyId, Psk, ReInit,
    RequiredCapabilities, ResumptionPskUsage, Welcome,
};
use crate::secret_tree::SecretTree;
use crate::transcript::interim_transcript_hash;
use crate::tree::treekem::TreeKemPrivate;
use crate::tree::{LeafIndex, RatchetTree};
use crate::welcome::{open_group_info, open_group_secrets};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Everything a new member needs to join from a Welcome ([`super::JoinBuilder`] fills it).
pub(super) struct JoinRequest<'a> {
    /// The joiner's identity (its signature key is the KeyPackage's).
    pub(super) identity: &'a Identity,
    /// The KeyPackage the Welcome was made for.
    pub(super) key_package: &'a KeyPackage,
    /// Its private keys.
    pub(super) secrets: &'a KeyPackageSecrets,
    /// The Welcome.
    pub(super) welcome: &'a Welcome,
    /// The ratchet tree, when the Welcome does not carry the ratchet_tree extension.
    pub(super) ratchet_tree: Option<crate::messages::RatchetTree>,
    /// External PSKs the Welcome may name, by id.
    pub(super) external_psks: HashMap<Vec<u8>, Secret>,
    /// Resumption PSKs the Welcome may name (ReInit, branching): (group id, epoch) → PSK.
    pub(super) resumption_psks: HashMap<(Vec<u8>, u64), Secret>,
    /// Local policy.
    pub(super) config: GroupConfig,
    /// The application's identity policy.
    pub(super) validator: Arc<dyn IdentityValidator>,
}

impl core::fmt::Debug for JoinRequest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("JoinRequest").finish_non_exhaustive()
    }
}

/// What a Welcome continues, and so what the joiner checks of it beyond §12.4.3.1.
pub(super) enum Continuation<'o> {
    /// A new group of its own: no reinit or branch PSK may appear (§11.2, §11.3).
    Fresh,
    /// The new group of a ReInit (§11.2) that closed `old`.
    ReInit {
        /// The closed old group.
        old: &'o Group,
        /// The ReInit its last commit carried.
        reinit: &'o ReInit,
    },
    /// A subgroup branched from `old` (§11.3).
    Branch {
        /// The group branched from.
        old: &'o Group,
    },
}

impl Continuation<'_> {
    /// The resumption PSK usage that marks this kind of Welcome.
    fn usage(&self) -> Option<ResumptionPskUsage> {
        match self {
            Continuation::Fresh => None,
            Continuation::ReInit { .. } => Some(ResumptionPskUsage::Reinit),
            Continuation::Branch { .. } => Some(ResumptionPskUsage::Branch),
        }
    }

    /// Checks the GroupSecrets' PSK list: §12.4.3.1 (at most one reinit/branch PSK), §11.2
    /// (exactly one, usage `reinit`, naming the old group's epoch after the ReInit commit),
    /// §11.3 (exactly one, usage `branch`, naming the old group).
    fn check_psks(&self, psks: &[PreSharedKeyId]) -> Result<(), Error> {
        let mut special = psks.iter().filter_map(|id| match &id.psk {
            Psk::Resumption {
                usage,
                psk_group_id,
                psk_epoch,
            } if *usage != ResumptionPskUsage::Application => {
                Some((*usage, psk_group_id.as_slice(), *psk_epoch))
            }
            _ => None,
        });
        let first = special.next();
        if special.next().is_some() {
            return Err(Error::WelcomeMultipleResumptionPsks);
        }
        let Some(expected) = self.usage() else {
            return match first {
                Some((usage, _, _)) => Err(Error::ResumptionPskOutOfContext { usage }),
                None => Ok(()),
            };
        };
        let (usage, group_id, epoch) = first.ok_or(Error::ResumptionPskAbsent { expected })?;
        if usage != expected {
            return Err(Error::ResumptionPskUsageMismatch {
                expected,
                got: usage,
            });
        }
        match self {
            Continuation::Fresh => Ok(()),
            Continuation::ReInit { old, .. } => {
                if group_id != old.group_id() {
                    return Err(Error::ResumptionPskWrongGroup);
                }
                // The ReInit commit's epoch is the closed group's last: it stays current.
                if epoch != old.epoch() {
                    return Err(Error::ReInitPskWrongEpoch {
                        expected: old.epoch(),
                        got: epoch,
                    });
                }
                Ok(())
            }
            // Any epoch of the old group may be branched from; its PSK must be available.
            Continuation::Branch { old } => {
                if group_id != old.group_id() {
                    return Err(Error::ResumptionPskWrongGroup);
                }
                Ok(())
            }
        }
    }

    /// Checks the new group's GroupContext: epoch 1 for both (§11.2, §11.3); version,
    /// cipher suite, group id and extensions of the ReInit (§11.2); version and cipher
    /// suite of the old group for a branch (§11.3), under a new group id (§12.4.3.1).
    fn check_context(&self, context: &GroupContext) -> Result<(), Error> {
        let epoch_one = || match context.epoch {
            1 => Ok(()),
            epoch => Err(Error::ResumptionEpochNotOne { epoch }),
        };
        match self {
            Continuation::Fresh => {}
            Continuation::ReInit { reinit, .. } => {
                epoch_one()?;
                if context.version != reinit.version {
                    return Err(Error::ReInitVersionMismatch);
                }
                if context.cipher_suite != reinit.cipher_suite {
                    return Err(Error::ReInitCipherSuiteMismatch);
                }
                if context.group_id != reinit.group_id {
                    return Err(Error::ReInitGroupIdMismatch);
                }
                if context.extensions != reinit.extensions {
                    return Err(Error::ReInitExtensionsMismatch);
                }
            }
            Continuation::Branch { old } => {
                epoch_one()?;
                if context.version != old.context().version {
                    return Err(Error::BranchVersionMismatch);
                }
                if context.cipher_suite != old.cipher_suite() {
                    return Err(Error::BranchCipherSuiteMismatch);
                }
                if context.group_id.as_slice() == old.group_id() {
                    return Err(Error::BranchGroupIdReused);
                }
            }
        }
        Ok(())
    }

    /// §11.3: each leaf of a branch must "match some LeafNode in the original group", that
    /// is, present a credential whose identifiers the application considers equivalent:
    /// an equal credential, or one the identity policy calls the same client. The old
    /// group's members are those of its current epoch, as this client knows them.
    fn check_tree(
        &self,
        tree: &RatchetTree,
        validator: &dyn IdentityValidator,
    ) -> Result<(), Error> {
        let Continuation::Branch { old } = self else {
            return Ok(());
        };
        let old_credentials: HashSet<&Credential> = old.members().map(|m| m.credential).collect();
        let old_clients: HashSet<Vec<u8>> = old_credentials
            .iter()
            .filter_map(|c| validator.client_id(c))
            .collect();
        for (leaf, node) in tree.leaves() {
            let credential = &node.content.credential;
            let matched = old_credentials.contains(credential)
                || validator
                    .client_id(credential)
                    .is_some_and(|id| old_clients.contains(&id));
            if !matched {
                return Err(Error::BranchLeafNotInOldGroup { leaf });
            }
        }
        Ok(())
    }
}

/// The checks a joiner makes of a tree it receives (RFC 9420 §12.4.3.1): the tree hash is the
/// GroupContext's, every parent is parent-hash valid, every leaf is valid (signature,
/// lifetime, capabilities, credential types, the application's identity policy), unmerged
/// leaves are consistent and no key appears twice.
pub(super) fn verify_tree(
    now: Option<u64>,
    crypto: &SuiteCrypto<'_>,
    tree: &mut RatchetTree,
    context: &crate::messages::GroupContext,
    validator: &dyn IdentityValidator,
) -> Result<(), Error> {
    let required = context
        .extensions
        .iter()
        .find(|e| e.extension_type == ExtensionType::REQUIRED_CAPABILITIES)
        .map(|e| RequiredCapabilities::decode(e.extension_data.as_slice()))
        .transpose()?;
    // Hashes, parent hashes, leaves (signatures checked on all cores), unmerged leaves, keys.
    tree.validate_for_join(
        crypto,
        context.group_id.as_slice(),
        context.tree_hash.as_slice(),
        now,
        required.as_ref(),
    )?;
    check_group_extensions(tree, &context.extensions)?;
    for (_, leaf) in tree.leaves() {
        validator.validate(&leaf.content.credential, &leaf.content.signature_key)?;
    }
    Ok(())
}

/// Verifies a GroupInfo's signature against its signer's leaf (RFC 9420 §12.4.3) and
/// validates the tree (§12.4.3.1, [`verify_tree`]) at the same time: the signature hashes the
/// whole GroupInfo, ratchet tree included, on one core while the tree's checks use the
/// others. Both verdicts are returned, for the caller to report in the RFC's order.
pub(super) fn verify_signer_and_tree(
    now: Option<u64>,
    crypto: &SuiteCrypto<'_>,
    group_info: &crate::messages::GroupInfo,
    tree: &mut RatchetTree,
    validator: &dyn IdentityValidator,
) -> (Result<LeafIndex, Error>, Result<(), Error>) {
    let signer = LeafIndex(group_info.tbs.signer);
    let key = tree.leaf(signer).map(|l| l.content.signature_key.clone());
    let signature = move || {
        let key = key.ok_or(Error::BlankLeaf(signer))?;
        group_info.verify(crypto, key.as_slice())?;
        Ok(signer)
    };
    let context = &group_info.tbs.group_context;
    #[cfg(feature = "parallel")]
    return rayon::join(signature, || {
        verify_tree(now, crypto, tree, context, validator)
    });
    #[cfg(not(feature = "parallel"))]
    return (
        signature(),
        verify_tree(now, crypto, tree, context, validator),
    );
}

/// The ratchet tree of a GroupInfo: its ratchet_tree extension, or the one supplied.
pub(super) fn tree_of(
    group_info: &crate::messages::GroupInfo,
    supplied: Option<crate::messages::RatchetTree>,
) -> Result<RatchetTree, Error> {
    let wire = match group_info
        .tbs
        .extensions
        .iter()
        .find(|e| e.extension_type == ExtensionType::RATCHET_TREE)
    {
        Some(e) => crate::messages::RatchetTree::decode(e.extension_data.as_slice())?,
        None => supplied.ok_or(Error::MissingRatchetTree)?,
    };
    RatchetTree::from_wire(wire)
}

impl Group {
    /// Joins from a Welcome (RFC 9420 §12.4.3.1): decrypts the group secrets and GroupInfo,
    /// verifies the GroupInfo signature and the whole tree (tree hash, parent hashes, every
    /// leaf, unmerged leaves, key uniqueness), finds our leaf, installs the path secret, runs
    /// the key schedule and checks the confirmation tag; plus the checks `continuation` asks
    /// for. Returns the group and the leaf of the member who signed the GroupInfo.
    pub(super) fn join_continuing(
        provider: &dyn CryptoProvider,
        request: JoinRequest<'_>,
        continuation: Continuation<'_>,
    ) -> Result<(Self, LeafIndex), Error> {
        let suite = request.welcome.cipher_suite;
        if suite != request.key_package.tbs.cipher_suite || suite != request.identity.suite {
            return Err(Error::WelcomeCipherSuiteMismatch);
        }
        let crypto = SuiteCrypto::new(provider, suite)?;
        let reference = request.key_package.reference(&crypto)?;
        let group_secrets = open_group_secrets(
            &crypto,
            request.welcome,
            &reference,
            &request.secrets.init_private_key,
        )?;

        // §12.4.3.1: at most one reinit/branch resumption PSK, and (§11.2, §11.3) it must be
        // the one linking this Welcome to the old group — or absent from a plain join.
        continuation.check_psks(&group_secrets.psks)?;
        // §12.4.3.1: every PSK must be available.
        let mut psks = Vec::with_capacity(group_secrets.psks.len());
        for id in &group_secrets.psks {
            let value = match &id.psk {
                Psk::External { psk_id } => request.external_psks.get(psk_id.as_slice()),
                Psk::Resumption {
                    psk_group_id,
                    psk_epoch,
                    ..
                } => request
                    .resumption_psks
                    .get(&(psk_group_id.as_slice().to_vec(), *psk_epoch)),
            };
            psks.push((id.clone(), value.cloned().ok_or(Error::MissingPsk)?));
        }
        let pairs: Vec<(PreSharedKeyId, &[u8])> = psks
            .iter()
            .map(|(i, v)| (i.clone(), v.as_bytes()))
            .collect();
        let psk_secret = crate::psk::psk_secret(&crypto, &pairs)?;

        let joiner =
            JoinerSecret::from_secret(Secret::from_slice(group_secrets.joiner_secret.as_slice()));
        let welcome_secret = joiner.welcome_secret(&crypto, psk_secret.as_bytes())?;
        let group_info = open_group_info(&crypto, request.welcome, &welcome_secret)?;
        let context = group_info.tbs.group_context.clone();
        if context.cipher_suite != suite {
            return Err(Error::WelcomeCipherSuiteMismatch);
        }

        let mut tree = tree_of(&group_info, request.ratchet_tree)?;
        let (signed, valid_tree) = verify_signer_and_tree(
            request.config.time.now(),
            &crypto,
            &group_info,
            &mut tree,
            request.validator.as_ref(),
        );
        let signer = signed?;
        // §11.2, §11.3: the new group's parameters, now authenticated by the signature.
        continuation.check_context(&context)?;
        valid_tree?;
        // §11.3: every leaf of a branch is a member of the old group.
        continuation.check_tree(&tree, request.validator.as_ref())?;

        let own_leaf_node = request.key_package.leaf_node();
        let me = tree
            .leaves()
            .find(|(_, l)| *l == own_leaf_node)
            .map(|(i, _)| i)
            .ok_or(Error::WelcomeNotForUs)?;
        let mut private = TreeKemPrivate::new(me, request.secrets.encryption_private_key.clone());
        if let Some(path_secret) = &group_secrets.path_secret {
            let ancestor = tree.size().common_ancestor(me.node(), signer.node());
            private.install_path_secret(
                &crypto,
                &tree,
                ancestor,
                Secret::from_slice(path_secret.path_secret.as_slice()),
            )?;
        }

        let secrets = joiner.epoch_secrets(&crypto, psk_secret.as_bytes(), &context.encode()?)?;
        let tag =
            secrets.confirmation_tag(&crypto, context.confirmed_transcript_hash.as_slice())?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            tag.as_slice(),
            group_info.tbs.confirmation_tag.as_slice(),
        )) {
            return Err(Error::ConfirmationTagMismatch);
        }
        let interim =
            interim_transcript_hash(&crypto, context.confirmed_transcript_hash.as_slice(), &tag)?;
        let secret_tree = SecretTree::new(
            tree.size(),
            secrets.encryption_secret.clone(),
            request.config.ratchet,
        );
        let mut group = Group {
            config: request.config,
            suite,
            signer: request.identity.signer.clone(),
            epoch: EpochState {
                context,
                tree,
                private,
                secrets,
                secret_tree,
                interim_transcript_hash: interim,
                confirmation_tag: group_info.tbs.confirmation_tag.clone(),
                reinit: None,
            },
            proposals: ProposalCache::default(),
            condition: super::Condition::Active,
            past_epochs: VecDeque::new(),
            resumption_psks: BTreeMap::new(),
            external_psks: request.external_psks,
            validator: request.validator,
            update_keys: Vec::new(),
            foreign_resumption_psks: HashMap::new(),
            special_psk: None,
        };
        group.remember_resumption_psk();
        Ok((group, signer))
    }
}
