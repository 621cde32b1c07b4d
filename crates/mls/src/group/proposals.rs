//! Proposals: the cache of received ones, the validity of each (RFC 9420 §12.1), of a
//! committed list (§12.2), and applying a list to the tree and context (§12.3).

use super::Group;
use crate::Error;
use crate::codec::Decode;
use crate::crypto::SuiteCrypto;
use crate::messages::{
    Extension, ExtensionType, ExternalSender, ExternalSenders, GroupContext, KeyPackage, LeafNode,
    LeafNodeSource, PreSharedKeyId, Proposal, ProposalRef, Psk, ReInit, RequiredCapabilities,
    ResumptionPskUsage, Sender,
};
use crate::tree::validate::verify_leaf_signature;
use crate::tree::{LeafIndex, RatchetTree};
use std::collections::HashSet;

/// Proposals received in the current epoch, by reference, in arrival order.
#[derive(Debug, Clone, Default)]
pub(super) struct ProposalCache {
    entries: Vec<(ProposalRef, Proposal, Sender)>,
}

impl ProposalCache {
    pub(super) fn insert(&mut self, reference: ProposalRef, proposal: Proposal, sender: Sender) {
        if !self.entries.iter().any(|(r, _, _)| *r == reference) {
            self.entries.push((reference, proposal, sender));
        }
    }
    pub(super) fn get(&self, reference: &ProposalRef) -> Option<(&Proposal, Sender)> {
        self.entries
            .iter()
            .find(|(r, _, _)| r == reference)
            .map(|(_, p, s)| (p, *s))
    }
    pub(super) fn iter(&self) -> impl Iterator<Item = &(ProposalRef, Proposal, Sender)> {
        self.entries.iter()
    }
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// The extension types every implementation supports without listing them (RFC 9420 §7.2).
fn is_default_extension(t: ExtensionType) -> bool {
    (1..=5).contains(&t.0)
}

/// The group's external senders (RFC 9420 §12.1.8.1), empty without the extension.
pub(super) fn external_senders(context: &GroupContext) -> Result<Vec<ExternalSender>, Error> {
    match context
        .extensions
        .iter()
        .find(|e| e.extension_type == ExtensionType::EXTERNAL_SENDERS)
    {
        Some(e) => Ok(ExternalSenders::decode(e.extension_data.as_slice())?.0),
        None => Ok(Vec::new()),
    }
}

fn required_capabilities(extensions: &[Extension]) -> Result<Option<RequiredCapabilities>, Error> {
    extensions
        .iter()
        .find(|e| e.extension_type == ExtensionType::REQUIRED_CAPABILITIES)
        .map(|e| RequiredCapabilities::decode(e.extension_data.as_slice()))
        .transpose()
}

/// Whether `leaf` supports the group's extensions and required capabilities (§7.3, §11.1).
fn leaf_supports(
    leaf: &LeafNode,
    extensions: &[Extension],
    required: Option<&RequiredCapabilities>,
) -> bool {
    let caps = &leaf.content.capabilities;
    let extensions_ok = extensions
        .iter()
        .filter(|e| !is_default_extension(e.extension_type))
        .all(|e| caps.extensions.contains(&e.extension_type));
    let required_ok = required.is_none_or(|r| {
        r.extension_types
            .iter()
            .all(|t| is_default_extension(*t) || caps.extensions.contains(t))
            && r.proposal_types.iter().all(|t| caps.proposals.contains(t))
            && r.credential_types
                .iter()
                .all(|t| caps.credentials.contains(t))
    });
    extensions_ok && required_ok
}

/// Every member supports the group context extensions `extensions` (RFC 9420 §12.1.7).
pub(super) fn check_group_extensions(
    tree: &RatchetTree,
    extensions: &[Extension],
) -> Result<(), Error> {
    let required = required_capabilities(extensions)?;
    for (leaf, node) in tree.leaves() {
        if !leaf_supports(node, extensions, required.as_ref()) {
            return Err(Error::LeafCapabilitiesMissing { leaf });
        }
    }
    Ok(())
}

/// Fails with the named rule unless `ok`.
fn once(ok: bool, rule: &'static str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::ProposalListInvalid(rule))
    }
}

/// What applying a committed proposal list produced (RFC 9420 §12.3).
#[derive(Debug, Clone)]
pub(super) struct Provisional {
    pub(super) tree: RatchetTree,
    pub(super) extensions: Vec<Extension>,
    /// New members' leaves, in the order of the Adds, with their KeyPackages.
    pub(super) added: Vec<(LeafIndex, KeyPackage)>,
    pub(super) removed: Vec<(LeafIndex, LeafNode)>,
    pub(super) updated: Vec<LeafIndex>,
    pub(super) psks: Vec<PreSharedKeyId>,
    pub(super) reinit: Option<ReInit>,
    /// The kem_output of an external commit's ExternalInit (§12.1.5).
    pub(super) external_init: Option<Vec<u8>>,
    pub(super) path_required: bool,
}

/// Who commits: a member, or a new member joining by external commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Committer {
    Member(LeafIndex),
    External,
}

impl Group {
    /// A LeafNode that replaces or joins the tree (§7.3): signature, capabilities against the
    /// group, identity against the application and (for a replacement) its predecessor.
    pub(super) fn check_leaf(
        &self,
        crypto: &SuiteCrypto<'_>,
        leaf_node: &LeafNode,
        leaf: LeafIndex,
        extensions: &[Extension],
        predecessor: Option<&LeafNode>,
    ) -> Result<(), Error> {
        verify_leaf_signature(crypto, leaf_node, self.group_id(), leaf)?;
        let required = required_capabilities(extensions)?;
        let caps = &leaf_node.content.capabilities;
        if !leaf_supports(leaf_node, extensions, required.as_ref())
            || !caps.cipher_suites.contains(&self.suite)
            || leaf_node
                .content
                .extensions
                .iter()
                .any(|e| !caps.extensions.contains(&e.extension_type))
        {
            return Err(Error::LeafCapabilitiesMissing { leaf });
        }
        // Every credential type in use must be supported by the new leaf, and the new leaf's
        // credential type by everyone (§7.3). Every member passed this check on entering,
        // so a successor with its predecessor's credential type and at least its credential
        // capabilities passes it too, without a scan of the whole tree.
        let own_type = leaf_node.content.credential.credential_type();
        let implied = predecessor.is_some_and(|old| {
            old.content.credential.credential_type() == own_type
                && old
                    .content
                    .capabilities
                    .credentials
                    .iter()
                    .all(|t| caps.credentials.contains(t))
        });
        for (other, node) in self.epoch.tree.leaves().filter(|_| !implied) {
            if !caps
                .credentials
                .contains(&node.content.credential.credential_type())
                || !node.content.capabilities.credentials.contains(&own_type)
            {
                return Err(Error::LeafCapabilitiesMissing {
                    leaf: if other == leaf { leaf } else { other },
                });
            }
        }
        self.validator.validate(
            &leaf_node.content.credential,
            &leaf_node.content.signature_key,
        )?;
        if let Some(old) = predecessor {
            self.validator
                .valid_successor(&old.content.credential, &leaf_node.content.credential)?;
            if old.content.encryption_key == leaf_node.content.encryption_key {
                return Err(Error::UpdateEncryptionKeyUnchanged { leaf });
            }
        }
        Ok(())
    }

    fn check_key_package(
        &self,
        crypto: &SuiteCrypto<'_>,
        kp: &KeyPackage,
        extensions: &[Extension],
    ) -> Result<(), Error> {
        kp.validate(crypto, crypto.provider().current_time())?;
        let leaf = kp.leaf_node();
        let required = required_capabilities(extensions)?;
        if !leaf_supports(leaf, extensions, required.as_ref()) {
            return Err(Error::KeyPackageInvalid(
                "does not support the group's extensions",
            ));
        }
        let caps = &leaf.content.capabilities;
        let own_type = leaf.content.credential.credential_type();
        for (_, node) in self.epoch.tree.leaves() {
            if !caps
                .credentials
                .contains(&node.content.credential.credential_type())
                || !node.content.capabilities.credentials.contains(&own_type)
            {
                return Err(Error::KeyPackageInvalid(
                    "credential types not supported both ways",
                ));
            }
        }
        self.validator
            .validate(&leaf.content.credential, &leaf.content.signature_key)
    }

    fn check_psk(&self, crypto: &SuiteCrypto<'_>, id: &PreSharedKeyId) -> Result<(), Error> {
        if id.psk_nonce.as_slice().len() != crypto.hash_len() {
            return Err(Error::ProposalInvalid("PSK nonce length is not Nh"));
        }
        // §12.1.4: reinit and branch resumption PSKs only in the first commit of a group
        // made by ReInit or branching.
        if let Psk::Resumption { usage, .. } = &id.psk
            && *usage != ResumptionPskUsage::Application
            && self.special_psk != Some(*usage)
        {
            return Err(Error::ProposalInvalid(
                "PreSharedKey proposals take only application resumption PSKs",
            ));
        }
        Ok(())
    }

    /// Whether `proposal` from `sender` is valid on its own in the current epoch (§12.1).
    pub(super) fn check_proposal_from(
        &self,
        crypto: &SuiteCrypto<'_>,
        proposal: &Proposal,
        sender: Sender,
    ) -> Result<(), Error> {
        let allowed = match sender {
            Sender::Member(_) => !matches!(proposal, Proposal::ExternalInit(_)),
            Sender::External(_) | Sender::NewMemberProposal | Sender::NewMemberCommit
                if matches!(proposal, Proposal::Custom { .. }) =>
            {
                false
            }
            // §12.1.8.1: external senders may propose Add, Remove, PSK, ReInit and GCE.
            Sender::External(_) => matches!(
                proposal,
                Proposal::Add(_)
                    | Proposal::Remove(_)
                    | Proposal::PreSharedKey(_)
                    | Proposal::ReInit(_)
                    | Proposal::GroupContextExtensions(_)
            ),
            Sender::NewMemberProposal => matches!(proposal, Proposal::Add(_)),
            Sender::NewMemberCommit => true,
        };
        if !allowed {
            return Err(Error::ProposalInvalid(
                "this sender may not send this proposal type",
            ));
        }
        let extensions = &self.epoch.context.extensions;
        match proposal {
            Proposal::Add(add) => self.check_key_package(crypto, &add.key_package, extensions),
            Proposal::Update(update) => {
                let Sender::Member(leaf) = sender else {
                    return Err(Error::ProposalInvalid("an Update must come from a member"));
                };
                let leaf = LeafIndex(leaf);
                let old = self.epoch.tree.leaf(leaf).ok_or(Error::BlankLeaf(leaf))?;
                if !matches!(
                    update.leaf_node.content.leaf_node_source,
                    LeafNodeSource::Update
                ) {
                    return Err(Error::LeafSourceMismatch { leaf });
                }
                self.check_leaf(crypto, &update.leaf_node, leaf, extensions, Some(old))
            }
            Proposal::Remove(remove) => {
                let leaf = LeafIndex(remove.removed);
                self.epoch
                    .tree
                    .leaf(leaf)
                    .map(|_| ())
                    .ok_or(Error::BlankLeaf(leaf))
            }
            Proposal::PreSharedKey(psk) => self.check_psk(crypto, &psk.psk),
            Proposal::ReInit(reinit) => {
                if reinit.version.0 < self.epoch.context.version.0 {
                    return Err(Error::ProposalInvalid("ReInit to an older version"));
                }
                Ok(())
            }
            Proposal::ExternalInit(_) => Ok(()),
            Proposal::Custom { proposal_type, .. } => {
                // §12.1, §13.5: never a GREASE type, and every member must support it.
                if crate::codec::is_grease(proposal_type.0) {
                    return Err(Error::ProposalInvalid("a GREASE proposal type"));
                }
                if self
                    .epoch
                    .tree
                    .leaves()
                    .any(|(_, l)| !l.content.capabilities.proposals.contains(proposal_type))
                {
                    return Err(Error::ProposalInvalid(
                        "a custom proposal type not every member supports",
                    ));
                }
                Ok(())
            }
            Proposal::GroupContextExtensions(gce) => {
                check_group_extensions(&self.epoch.tree, &gce.extensions)
            }
        }
    }

    /// Validates a committed list (§12.2) and applies it (§12.3) to copies of the tree and
    /// extensions.
    pub(super) fn apply_proposals(
        &self,
        crypto: &SuiteCrypto<'_>,
        committer: Committer,
        list: &[(Proposal, Sender)],
    ) -> Result<Provisional, Error> {
        let mut touched = HashSet::new();
        let mut psk_ids = HashSet::new();
        let (mut gce, mut reinit, mut external_init) = (None, None, None);
        let mut path_required = list.is_empty();
        // Each proposal on its own (§12.1): independent checks, with a KeyPackage's two
        // signatures per Add, so a long list is checked on all cores; the first failure in
        // list order is the one reported, as sequentially.
        let checked_in_parallel = cfg!(feature = "parallel") && list.len() > 8;
        #[cfg(feature = "parallel")]
        if checked_in_parallel {
            use rayon::prelude::*;
            let checked: Vec<Result<(), Error>> = list
                .par_iter()
                .map(|(p, s)| self.check_proposal_from(crypto, p, *s))
                .collect();
            checked.into_iter().collect::<Result<(), Error>>()?;
        }
        for (proposal, sender) in list {
            if !checked_in_parallel {
                self.check_proposal_from(crypto, proposal, *sender)?;
            }
            // §12.4: only Add, PreSharedKey and ReInit may be committed without a path.
            if !matches!(
                proposal,
                Proposal::Add(_) | Proposal::PreSharedKey(_) | Proposal::ReInit(_)
            ) {
                path_required = true;
            }
            match (proposal, sender) {
                (Proposal::Update(_), Sender::Member(l)) => {
                    if committer == Committer::Member(LeafIndex(*l)) {
                        return Err(Error::ProposalListInvalid("the committer's own Update"));
                    }
                    if !touched.insert(*l) {
                        return Err(Error::ProposalListInvalid(
                            "two Updates/Removes for one leaf",
                        ));
                    }
                }
                (Proposal::Remove(r), _) => {
                    if committer == Committer::Member(LeafIndex(r.removed)) {
                        return Err(Error::ProposalListInvalid("a Remove of the committer"));
                    }
                    if !touched.insert(r.removed) {
                        return Err(Error::ProposalListInvalid(
                            "two Updates/Removes for one leaf",
                        ));
                    }
                }
                (Proposal::PreSharedKey(p), _) => {
                    let fresh = psk_ids.insert(p.psk.clone());
                    once(fresh, "a PSK twice")?;
                }
                (Proposal::GroupContextExtensions(g), _) => {
                    let first = gce.replace(g.extensions.clone()).is_none();
                    once(first, "two GroupContextExtensions")?;
                }
                (Proposal::ReInit(r), _) => reinit = Some(r.clone()),
                (Proposal::ExternalInit(e), _) => {
                    let first = external_init
                        .replace(e.kem_output.as_slice().to_vec())
                        .is_none();
                    once(first, "two ExternalInits")?;
                }
                _ => {}
            }
        }
        if reinit.is_some() && list.len() > 1 {
            return Err(Error::ProposalListInvalid("a ReInit with other proposals"));
        }
        match committer {
            Committer::Member(_) if external_init.is_some() => {
                return Err(Error::ProposalListInvalid(
                    "an ExternalInit in a member's commit",
                ));
            }
            Committer::External => {
                let removes = list
                    .iter()
                    .filter(|(p, _)| matches!(p, Proposal::Remove(_)))
                    .count();
                let others = list.iter().any(|(p, _)| {
                    !matches!(
                        p,
                        Proposal::ExternalInit(_) | Proposal::Remove(_) | Proposal::PreSharedKey(_)
                    )
                });
                if external_init.is_none() || removes > 1 || others {
                    return Err(Error::ProposalListInvalid("an external commit's proposals"));
                }
            }
            _ => {}
        }

        let mut tree = self.epoch.tree.clone();
        let extensions = gce.unwrap_or_else(|| self.epoch.context.extensions.clone());
        // §12.3 order: GroupContextExtensions, Updates, Removes, Adds.
        let mut updated = Vec::new();
        for (proposal, sender) in list {
            if let (Proposal::Update(u), Sender::Member(l)) = (proposal, sender) {
                tree.update_leaf(LeafIndex(*l), u.leaf_node.clone())?;
                updated.push(LeafIndex(*l));
            }
        }
        let mut removed = Vec::new();
        for (proposal, _) in list {
            if let Proposal::Remove(r) = proposal {
                let leaf = LeafIndex(r.removed);
                let node = tree.leaf(leaf).cloned().ok_or(Error::BlankLeaf(leaf))?;
                tree.remove_leaf(leaf)?;
                removed.push((leaf, node));
            }
        }
        let mut added = Vec::new();
        let mut seen_keys = HashSet::new();
        for (proposal, _) in list {
            if let Proposal::Add(a) = proposal {
                let leaf_node = a.key_package.leaf_node();
                if !seen_keys.insert(leaf_node.content.signature_key.clone()) {
                    return Err(Error::ProposalListInvalid("two Adds of the same client"));
                }
                if tree.leaves().any(|(_, l)| {
                    self.validator
                        .same_client(&l.content.credential, &leaf_node.content.credential)
                        || l.content.signature_key == leaf_node.content.signature_key
                }) {
                    return Err(Error::ProposalListInvalid(
                        "an Add of a client already in the group",
                    ));
                }
                let leaf = tree.add_leaf(leaf_node.clone())?;
                added.push((leaf, a.key_package.clone()));
            }
        }
        if list
            .iter()
            .any(|(p, _)| matches!(p, Proposal::GroupContextExtensions(_)))
        {
            check_group_extensions(&tree, &extensions)?;
        }
        // Only updated and added leaves bring new keys (§7.3); the rest was unique already.
        let changed: Vec<_> = updated
            .iter()
            .chain(added.iter().map(|(l, _)| l))
            .map(|l| l.node())
            .collect();
        tree.verify_keys_unique_at(&changed)?;
        let psks = list
            .iter()
            .filter_map(|(p, _)| match p {
                Proposal::PreSharedKey(p) => Some(p.psk.clone()),
                _ => None,
            })
            .collect();
        Ok(Provisional {
            tree,
            extensions,
            added,
            removed,
            updated,
            psks,
            reinit,
            external_init,
            path_required,
        })
    }
}
