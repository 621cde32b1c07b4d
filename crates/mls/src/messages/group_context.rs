//! The group context (RFC 9420 §8.1).

use super::Extension;
use crate::codec::VarBytes;
use crate::crypto::CipherSuite;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// `enum { reserved(0), mls10(1), (65535) } ProtocolVersion;` — open for GREASE.
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
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    /// MLS 1.0.
    pub const MLS10: Self = Self(1);
}

/// The state every member agrees on in an epoch (RFC 9420 §8.1).
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupContext {
    /// Always mls10 for this library.
    pub version: ProtocolVersion,
    /// The group's cipher suite.
    pub cipher_suite: CipherSuite,
    /// The application-chosen group identifier.
    pub group_id: VarBytes,
    /// The epoch number.
    pub epoch: u64,
    /// The root tree hash of the ratchet tree (§7.8).
    pub tree_hash: VarBytes,
    /// The confirmed transcript hash (§8.2).
    pub confirmed_transcript_hash: VarBytes,
    /// The group's extensions.
    pub extensions: Vec<Extension>,
}
