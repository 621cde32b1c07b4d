//! Proposals: the cache of received ones, the validity of each (RFC 9420 §12.1), of a
//! committed list (§12.2), and applying a list to the tree and context (§12.3).

use super::Group;
use crate::Error;
use crate::codec::Decode;
use crate::crypto::SuiteCrypto;
use crate::identity::IdentityValidator;
use crate::messages::{
    Capabilities, CredentialType, Extension, ExtensionType, ExternalSender, ExternalSenders,
    GroupContext, KeyPackage, LeafNode, LeafNodeSource, PreSharedKeyId, Proposal, ProposalRef, Psk,
    ReInit, RequiredCapabilities, ResumptionPskUsage, Sender,
};
use crate::tree::validate::verify_leaf_signature;
use crate::tree::{LeafIndex, RatchetTree};
use std::collections::HashSet;
use std::sync::OnceLock;

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

/// The credential types the members use and the sets they support, gathered from the tree
/// at most once per proposal list and only if a new leaf needs them (§7.3): a KeyPackage
/// is acceptable if it supports every type in use and every member supports its type, which
/// is the same as comparing it with each member, but O(n + k) for k Adds into n leaves
/// rather than O(n·k).
pub(super) struct CredentialSupport<'t> {
    tree: &'t RatchetTree,
    gathered: OnceLock<(Vec<CredentialType>, Vec<&'t [CredentialType]>)>,
}

impl<'t> CredentialSupport<'t> {
    pub(super) fn of(tree: &'t RatchetTree) -> Self {
        Self {
            tree,
            gathered: OnceLock::new(),
        }
    }

    /// Whether a leaf with `capabilities` and a credential of type `own` can join: it
    /// supports each member's credential type and each member supports `own`.
    fn admits(&self, capabilities: &Capabilities, own: CredentialType) -> bool {
        let (in_use, supported) = self.gathered.get_or_init(|| {
            let mut in_use = Vec::new();
            let mut supported: HashSet<&'t [CredentialType]> = HashSet::new();
            for (_, node) in self.tree.leaves() {
                let used = node.content.credential.credential_type();
                if !in_use.contains(&used) {
                    in_use.push(used);
                }
                supported.insert(node.content.capabilities.credentials.as_slice());
            }
            (in_use, supported.into_iter().collect())
        });
        in_use.iter().all(|t| capabilities.credentials.contains(t))
            && supported.iter().all(|s| s.contains(&own))
    }
}

/// §12.2: no two Adds of one client, and no Add of a client already in `tree` (the tree
/// after the list's Removes). Equal signature keys name one client, and so do equal
/// [`IdentityValidator::client_id`]s. One pass over the tree: each member's signature key
/// is looked up among the sorted new ones, and its client id computed only if a new
/// credential has one.
fn check_new_clients(
    tree: &RatchetTree,
    validator: &dyn IdentityValidator,
    adds: &[&LeafNode],
) -> Result<(), Error> {
    let twice = Error::ProposalListInvalid("two Adds of the same client");
    let mut keys: Vec<&[u8]> = adds
        .iter()
        .map(|l| l.content.signature_key.as_slice())
        .collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(twice);
    }
    let mut clients = HashSet::new();
    for leaf in adds {
        if let Some(id) = validator.client_id(&leaf.content.credential)
            && !clients.insert(id)
        {
            return Err(twice);
        }
    }
    let present = tree.leaves().any(|(_, member)| {
        keys.binary_search(&member.content.signature_key.as_slice())
            .is_ok()
            || (!clients.is_empty()
                && validator
                    .client_id(&member.content.credential)
                    .is_some_and(|id| clients.contains(&id)))
    });
    if present {
        return Err(Error::ProposalListInvalid(
            "an Add of a client already in the group",
        ));
    }
    Ok(())
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
            || (self.config.strict_capabilities && !caps.cipher_suites.contains(&self.suite))
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
        if !implied {
            for (other, node) in self.epoch.tree.leaves() {
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
        members: &CredentialSupport<'_>,
    ) -> Result<(), Error> {
        kp.validate(
            crypto,
            self.config.time.now(),
            self.config.strict_capabilities,
        )?;
        let leaf = kp.leaf_node();
        let required = required_capabilities(extensions)?;
        if !leaf_supports(leaf, extensions, required.as_ref()) {
            return Err(Error::KeyPackageInvalid(
                "does not support the group's extensions",
            ));
        }
        let own_type = leaf.content.credential.credential_type();
        if !members.admits(&leaf.content.capabilities, own_type) {
            return Err(Error::KeyPackageInvalid(
                "credential types not supported both ways",
            ));
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
        let members = CredentialSupport::of(&self.epoch.tree);
        self.check_proposal_among(crypto, proposal, sender, &members)
    }

    /// [`Self::check_proposal_from`] with the members' credential support gathered once
    /// for a whole list.
    fn check_proposal_among(
        &self,
        crypto: &SuiteCrypto<'_>,
        proposal: &Proposal,
        sender: Sender,
        members: &CredentialSupport<'_>,
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
            Proposal::Add(add) => {
                self.check_key_package(crypto, &add.key_package, extensions, members)
            }
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
        let members = CredentialSupport::of(&self.epoch.tree);
        let checked_in_parallel = cfg!(feature = "parallel") && list.len() > 8;
        #[cfg(feature = "parallel")]
        if checked_in_parallel {
            use rayon::prelude::*;
            let checked: Vec<Result<(), Error>> = list
                .par_iter()
                .map(|(p, s)| self.check_proposal_among(crypto, p, *s, &members))
                .collect();
            checked.into_iter().collect::<Result<(), Error>>()?;
        }
        for (proposal, sender) in list {
            if !checked_in_parallel {
                self.check_proposal_among(crypto, proposal, *sender, &members)?;
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
        let adds: Vec<&KeyPackage> = list
            .iter()
            .filter_map(|(p, _)| match p {
                Proposal::Add(a) => Some(&a.key_package),
                _ => None,
            })
            .collect();
        let new_leaves: Vec<&LeafNode> = adds.iter().map(|kp| kp.leaf_node()).collect();
        if !adds.is_empty() {
            check_new_clients(&tree, &*self.validator, &new_leaves)?;
        }
        let mut added = Vec::with_capacity(adds.len());
        // Each Add takes the leftmost blank leaf (§12.1.1), so the next one lies further right.
        let mut first_free = LeafIndex(0);
        for (kp, leaf_node) in adds.into_iter().zip(new_leaves) {
            let leaf = tree.add_leaf_after(first_free, leaf_node.clone())?;
            first_free = LeafIndex(leaf.0 + 1);
            added.push((leaf, kp.clone()));
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
