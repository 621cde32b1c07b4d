//! Pre-shared key identifiers (RFC 9420 §8.4).

use crate::codec::VarBytes;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// `ResumptionPSKUsage` (§8.4).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum ResumptionPskUsage {
    /// application(1).
    Application = 1,
    /// reinit(2).
    Reinit = 2,
    /// branch(3).
    Branch = 3,
}

/// The `psktype`-selected part of a [`PreSharedKeyId`].
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum Psk {
    /// external(1): a key the application shares out of band.
    #[tls_codec(discriminant = 1)]
    External {
        /// The application's name for the key.
        psk_id: VarBytes,
    },
    /// resumption(2): the `resumption_psk` of an epoch of a group.
    #[tls_codec(discriminant = 2)]
    Resumption {
        /// Why the resumption secret is used.
        usage: ResumptionPskUsage,
        /// The group whose secret it is.
        psk_group_id: VarBytes,
        /// The epoch whose secret it is.
        psk_epoch: u64,
    },
}

/// `PreSharedKeyID` (§8.4).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PreSharedKeyId {
    /// Which key.
    pub psk: Psk,
    /// A fresh random value of length Nh for each use.
    pub psk_nonce: VarBytes,
}
