//! Exporting a group's state to bytes and importing it back (versioned; not an RFC format).
//!
//! The export holds every secret of the group: the application must store it encrypted.

use super::commit::PendingCommit;
use super::proposals::ProposalCache;
use super::{
    Condition, EpochState, Group, GroupConfig, HandshakeWireFormat, PastEpoch, PastSigners,
};
use crate::Error;
use crate::codec::state::{StateReader, StateWriter};
use crate::crypto::{CipherSuite, Secret, SignaturePrivateKey};
use crate::identity::IdentityValidator;
use crate::key_schedule::EpochSecrets;
use crate::messages::{GroupContext, Mac, MlsMessage, Proposal, ProposalRef, Sender};
use crate::protection::PaddingPolicy;
use crate::secret_tree::{RatchetPolicy, SecretTree};
use crate::time::TimePolicy;
use crate::tree::treekem::TreeKemPrivate;
use crate::tree::{LeafIndex, RatchetTree};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// The magic prefix and format version of an exported group state.
const MAGIC: &[u8; 4] = b"CLGS";
/// Version 2 added [`GroupConfig::strict_capabilities`]; version 1 states still import.
const VERSION: u16 = 2;

fn write_secrets(w: &mut StateWriter, s: &EpochSecrets) -> Result<(), Error> {
    for secret in [
        &s.sender_data_secret,
        &s.encryption_secret,
        &s.exporter_secret,
        &s.external_secret,
        &s.confirmation_key,
        &s.membership_key,
        &s.resumption_psk,
        &s.epoch_authenticator,
        &s.init_secret,
    ] {
        w.bytes(secret.as_bytes())?;
    }
    Ok(())
}

fn read_secrets(r: &mut StateReader<'_>) -> Result<EpochSecrets, Error> {
    let mut next = || r.bytes().map(Secret::from_slice);
    Ok(EpochSecrets {
        sender_data_secret: next()?,
        encryption_secret: next()?,
        exporter_secret: next()?,
        external_secret: next()?,
        confirmation_key: next()?,
        membership_key: next()?,
        resumption_psk: next()?,
        epoch_authenticator: next()?,
        init_secret: next()?,
    })
}

fn write_epoch(w: &mut StateWriter, e: &EpochState) -> Result<(), Error> {
    w.encoded(&e.context)?;
    w.encoded(&e.tree.to_wire())?;
    e.private.write_state(w)?;
    write_secrets(w, &e.secrets)?;
    e.secret_tree.write_state(w)?;
    w.bytes(&e.interim_transcript_hash)?;
    w.encoded(&e.confirmation_tag)?;
    match &e.reinit {
        None => w.bool(false),
        Some(r) => {
            w.bool(true);
            w.encoded(r)?;
        }
    }
    Ok(())
}

fn read_epoch(r: &mut StateReader<'_>) -> Result<EpochState, Error> {
    let context: GroupContext = r.encoded()?;
    let tree = RatchetTree::from_wire(r.encoded()?)?;
    let private = TreeKemPrivate::read_state(r)?;
    if tree.leaf(private.leaf()).is_none() {
        return Err(Error::StateCorrupt("own leaf is blank"));
    }
    Ok(EpochState {
        context,
        tree,
        private,
        secrets: read_secrets(r)?,
        secret_tree: SecretTree::read_state(r)?,
        interim_transcript_hash: r.bytes()?.to_vec(),
        confirmation_tag: r.encoded::<Mac>()?,
        reinit: if r.bool()? { Some(r.encoded()?) } else { None },
    })
}

fn write_config(w: &mut StateWriter, c: &GroupConfig) -> Result<(), Error> {
    w.bool(c.handshake_wire_format == HandshakeWireFormat::Private);
    match c.padding {
        PaddingPolicy::None => w.u32(0),
        PaddingPolicy::MultipleOf(n) => w.u32(n),
    }
    w.u32(c.ratchet.out_of_order_tolerance);
    w.u32(c.ratchet.maximum_forward_distance);
    w.count(c.past_epochs)?;
    w.count(c.resumption_psk_epochs)?;
    w.bool(c.ratchet_tree_extension);
    w.bool(c.external_pub_extension);
    match &c.leaf_capabilities {
        None => w.bool(false),
        Some(caps) => {
            w.bool(true);
            w.encoded(caps)?;
        }
    }
    w.bool(c.strict_capabilities);
    Ok(())
}

/// The time policy is code, not state: an imported group checks against the system clock
/// until [`Group::set_time_policy`] says otherwise.
fn read_config(r: &mut StateReader<'_>, version: u16) -> Result<GroupConfig, Error> {
    let private = r.bool()?;
    let padding = match r.u32()? {
        0 => PaddingPolicy::None,
        n => PaddingPolicy::MultipleOf(n),
    };
    Ok(GroupConfig {
        handshake_wire_format: if private {
            HandshakeWireFormat::Private
        } else {
            HandshakeWireFormat::Public
        },
        padding,
        ratchet: RatchetPolicy {
            out_of_order_tolerance: r.u32()?,
            maximum_forward_distance: r.u32()?,
        },
        past_epochs: r.u32()? as usize,
        resumption_psk_epochs: r.u32()? as usize,
        ratchet_tree_extension: r.bool()?,
        external_pub_extension: r.bool()?,
        leaf_capabilities: if r.bool()? { Some(r.encoded()?) } else { None },
        time: TimePolicy::default(),
        strict_capabilities: version >= 2 && r.bool()?,
    })
}

impl Group {
    /// The group's whole state as bytes (format version 2; version 1 still imports), for the application to store
    /// (encrypted: it holds every secret of the group) and [`Group::import_state`] later.
    pub fn export_state(&self) -> Result<Vec<u8>, Error> {
        let mut w = StateWriter::default();
        w.out.extend_from_slice(MAGIC);
        w.u16(VERSION);
        write_config(&mut w, &self.config)?;
        w.u16(self.suite.0);
        w.bytes(self.signer.as_bytes())?;
        write_epoch(&mut w, &self.epoch)?;
        let proposals: Vec<_> = self.proposals.iter().collect();
        w.count(proposals.len())?;
        for (reference, proposal, sender) in proposals {
            w.encoded(reference)?;
            w.encoded(proposal)?;
            w.encoded(sender)?;
        }
        match self.condition.pending() {
            None => w.bool(false),
            Some(p) => {
                w.bool(true);
                w.encoded(&p.message)?;
                write_epoch(&mut w, &p.next)?;
            }
        }
        w.count(self.past_epochs.len())?;
        for past in &self.past_epochs {
            w.encoded(&past.context)?;
            past.secret_tree.write_state(&mut w)?;
            w.bytes(past.sender_data_secret.as_bytes())?;
            let keys = past.signers.sorted();
            w.count(keys.len())?;
            for (leaf, key) in keys {
                w.u32(leaf.0);
                w.encoded(key)?;
            }
        }
        w.count(self.resumption_psks.len())?;
        for (epoch, psk) in &self.resumption_psks {
            w.u64(*epoch);
            w.bytes(psk.as_bytes())?;
        }
        let mut external: Vec<_> = self.external_psks.iter().collect();
        external.sort_by(|a, b| a.0.cmp(b.0));
        w.count(external.len())?;
        for (id, psk) in external {
            w.bytes(id)?;
            w.bytes(psk.as_bytes())?;
        }
        w.bool(self.condition.is_removed());
        w.count(self.update_keys.len())?;
        for (public, private) in &self.update_keys {
            w.bytes(public)?;
            w.bytes(private.as_bytes())?;
        }
        let mut foreign: Vec<_> = self.foreign_resumption_psks.iter().collect();
        foreign.sort_by(|a, b| a.0.cmp(b.0));
        w.count(foreign.len())?;
        for ((group_id, epoch), psk) in foreign {
            w.bytes(group_id)?;
            w.u64(*epoch);
            w.bytes(psk.as_bytes())?;
        }
        match self.special_psk {
            None => w.u8(0),
            Some(usage) => w.u8(usage as u8),
        }
        Ok(w.out)
    }

    /// Restores a group from [`Group::export_state`] bytes. Corrupt or truncated input is an
    /// error, never a panic; the identity policy is supplied again (it is code, not state).
    pub fn import_state(
        bytes: &[u8],
        validator: Arc<dyn IdentityValidator>,
    ) -> Result<Self, Error> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(Error::StateCorrupt("not a group state"))?;
        let mut r = StateReader::new(rest);
        let version = r.u16()?;
        if !(1..=VERSION).contains(&version) {
            return Err(Error::StateVersion(version));
        }
        let config = read_config(&mut r, version)?;
        let suite = CipherSuite(r.u16()?);
        let signer = SignaturePrivateKey::from_slice(r.bytes()?);
        let epoch = read_epoch(&mut r)?;
        if epoch.context.cipher_suite != suite {
            return Err(Error::StateCorrupt("cipher suite"));
        }
        let mut proposals = ProposalCache::default();
        for _ in 0..r.count(12)? {
            let reference: ProposalRef = r.encoded()?;
            let proposal: Proposal = r.encoded()?;
            let sender: Sender = r.encoded()?;
            proposals.insert(reference, proposal, sender);
        }
        let pending = if r.bool()? {
            let message: MlsMessage = r.encoded()?;
            Some(PendingCommit {
                message,
                next: read_epoch(&mut r)?,
            })
        } else {
            None
        };
        let mut past_epochs = VecDeque::new();
        for _ in 0..r.count(16)? {
            let context: GroupContext = r.encoded()?;
            let secret_tree = SecretTree::read_state(&mut r)?;
            let sender_data_secret = Secret::from_slice(r.bytes()?);
            let mut signature_keys = HashMap::new();
            for _ in 0..r.count(8)? {
                let leaf = LeafIndex(r.u32()?);
                signature_keys.insert(leaf, r.encoded()?);
            }
            past_epochs.push_back(PastEpoch {
                context,
                secret_tree,
                sender_data_secret,
                signers: PastSigners::Keys(signature_keys),
            });
        }
        let mut resumption_psks = BTreeMap::new();
        for _ in 0..r.count(12)? {
            let epoch = r.u64()?;
            resumption_psks.insert(epoch, Secret::from_slice(r.bytes()?));
        }
        let mut external_psks = HashMap::new();
        for _ in 0..r.count(8)? {
            let id = r.bytes()?.to_vec();
            external_psks.insert(id, Secret::from_slice(r.bytes()?));
        }
        let removed = r.bool()?;
        let mut update_keys = Vec::new();
        for _ in 0..r.count(8)? {
            let public = r.bytes()?.to_vec();
            update_keys.push((
                public,
                crate::crypto::HpkePrivateKey::from_slice(r.bytes()?),
            ));
        }
        let mut foreign_resumption_psks = HashMap::new();
        for _ in 0..r.count(16)? {
            let group_id = r.bytes()?.to_vec();
            let epoch = r.u64()?;
            foreign_resumption_psks.insert((group_id, epoch), Secret::from_slice(r.bytes()?));
        }
        let special_psk = match r.u8()? {
            0 => None,
            2 => Some(crate::messages::ResumptionPskUsage::Reinit),
            3 => Some(crate::messages::ResumptionPskUsage::Branch),
            _ => return Err(Error::StateCorrupt("special PSK usage")),
        };
        r.finish()?;
        let condition = match (removed, pending) {
            (false, None) => Condition::Active,
            (false, Some(p)) => Condition::Pending(Box::new(p)),
            (true, None) => Condition::Removed,
            (true, Some(_)) => {
                return Err(Error::StateCorrupt("removed with a commit pending"));
            }
        };
        Ok(Group {
            config,
            suite,
            signer,
            epoch,
            proposals,
            condition,
            past_epochs,
            resumption_psks,
            external_psks,
            validator,
            update_keys,
            foreign_resumption_psks,
            special_psk,
        })
    }
}
