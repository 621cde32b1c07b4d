//! The records a device keeps in its store (all sealed, see [`crate::store`]).

use crate::directory::Anchors;
use conclave_api::delivery::{Bytes, CommitRequest};
use serde::{Deserialize, Serialize};

/// What a contact needs to add one device to a group: where its Welcomes go and how to claim
/// and open its KeyPackages. Shared only sealed, with contacts and siblings — never with a
/// server in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Card {
    pub(crate) user_id: String,
    pub(crate) device_id: String,
    pub(crate) mailbox_id: String,
    pub(crate) pool_id: String,
    pub(crate) pool_key: Bytes,
    pub(crate) claim_secret: Bytes,
}

/// The device itself (one record).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct DeviceRecord {
    pub(crate) user_id: String,
    pub(crate) device_id: String,
    /// Ed25519 seed of the MLS signature key (also signs AS requests).
    pub(crate) signature_seed: Bytes,
    /// The certificate chain, leaf first.
    pub(crate) certificates: Vec<Bytes>,
    /// X25519 private key of the contact key, and its public half.
    pub(crate) contact_private: Bytes,
    pub(crate) contact_public: Bytes,
    pub(crate) anchors: Anchors,
    /// Set once the DS side is set up.
    pub(crate) mailbox: Option<Mailbox>,
    /// Mailbox entries up to this id were handled.
    pub(crate) mailbox_cursor: i64,
    /// Revocations up to this feed position were handled.
    pub(crate) revocation_cursor: u64,
    /// The self group shared by the user's devices.
    pub(crate) self_group: Option<Bytes>,
    /// Every set-up step after registration is done.
    #[serde(default)]
    pub(crate) setup_complete: bool,
}

/// The device's mailbox and KeyPackage pool.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Mailbox {
    pub(crate) id: String,
    pub(crate) key_seed: Bytes,
    pub(crate) pool_id: String,
    pub(crate) pool_key: Bytes,
    pub(crate) claim_secret: Bytes,
}

/// Where a contact relationship stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContactState {
    /// This user asked; no answer yet.
    Requested,
    /// They asked; this user has not answered.
    Pending,
    /// Both agreed: each holds the other's device cards.
    Accepted,
    /// This user declined their request, or they declined ours.
    Declined,
}

/// A contact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    pub(crate) user_id: String,
    pub(crate) state: ContactState,
    /// Cards of their devices, as they sent them.
    pub(crate) cards: Vec<Card>,
}

/// What a pending commit is for, so that a commit that lost its epoch can be rebuilt on the
/// winner (RFC 9420 §14) — also after a restart.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum Intent {
    /// Add these devices (claimed KeyPackages, as MLSMessage bytes, and their cards).
    Add(Vec<(Bytes, Card)>),
    /// Remove the members with these signature keys.
    Remove(Vec<Bytes>),
    /// Commit the proposals received (e.g. a member's request to leave), and refresh our path.
    Proposals,
    /// Refresh this device's leaf and path for post-compromise security (RFC 9420 §12.4):
    /// unlike [`Intent::Proposals`], still wanted when another commit wins the epoch.
    Update,
}

/// A commit built and recorded before it was submitted (write-ahead).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PendingCommit {
    /// The epoch it ends.
    pub(crate) epoch: u64,
    /// The request sent to the DS.
    pub(crate) request: CommitRequest,
    /// Seed of the next epoch's group auth key.
    pub(crate) next_auth_seed: Bytes,
    /// What it does.
    pub(crate) intent: Intent,
}

/// A group this device is in.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    pub(crate) group_id: Bytes,
    /// `Group::export_state`.
    pub(crate) state: Bytes,
    /// The next log sequence number to read.
    pub(crate) next_seq: u64,
    /// A commit of ours awaiting the DS's verdict.
    pub(crate) pending: Option<PendingCommit>,
    /// An intent whose commit lost its epoch and must be rebuilt.
    pub(crate) retry: Option<Intent>,
    /// This device was removed.
    pub(crate) removed: bool,
    /// This device asked to leave, by a Remove proposal sent in this epoch; asked again in
    /// a later epoch if the commit that ended this one did not include it.
    #[serde(default)]
    pub(crate) leaving: Option<u64>,
}

/// One KeyPackage's private half.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct KeyPackageRecord {
    /// `KeyPackageBundle::to_bytes`.
    pub(crate) bundle: Bytes,
    /// The last-resort one stays after use.
    pub(crate) last_resort: bool,
}

/// Record ids.
pub(crate) const DEVICE_ID: &[u8] = b"device";
/// The user's other devices' cards.
pub(crate) const SIBLINGS_ID: &[u8] = b"siblings";
