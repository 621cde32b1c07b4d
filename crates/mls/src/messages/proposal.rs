//! Proposals (RFC 9420 §12.1).
//!
//! Decision on custom proposal types: the `select` over `ProposalType` has no length prefix
//! (§12.1), so the body of a proposal type this library does not know cannot be skipped.
//! Decoding a [`Proposal`] of an unknown type fails with `tls_codec::Error::UnknownValue`;
//! [`ProposalType`] itself is an open `u16`, so unknown and GREASE values survive in
//! capabilities and required-capabilities lists.

use super::{Extension, KeyPackage, LeafNode, PreSharedKeyId, ProtocolVersion};
use crate::crypto::CipherSuite;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize, VLBytes};

/// `ProposalType` — RFC 9420 §12.1, §17.4. Open, so that unknown and GREASE values survive.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct ProposalType(pub u16);

impl ProposalType {
    /// add(1).
    pub const ADD: Self = Self(0x0001);
    /// update(2).
    pub const UPDATE: Self = Self(0x0002);
    /// remove(3).
    pub const REMOVE: Self = Self(0x0003);
    /// psk(4).
    pub const PSK: Self = Self(0x0004);
    /// reinit(5).
    pub const REINIT: Self = Self(0x0005);
    /// external_init(6).
    pub const EXTERNAL_INIT: Self = Self(0x0006);
    /// group_context_extensions(7).
    pub const GROUP_CONTEXT_EXTENSIONS: Self = Self(0x0007);

    /// Whether this is a GREASE value (RFC 9420 §13.5).
    pub fn is_grease(self) -> bool {
        crate::codec::is_grease(self.0)
    }
}

/// `Add` — RFC 9420 §12.1.1.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Add {
    /// The new member's KeyPackage.
    pub key_package: KeyPackage,
}

/// `Update` — RFC 9420 §12.1.2.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Update {
    /// The sender's new leaf.
    pub leaf_node: LeafNode,
}

/// `Remove` — RFC 9420 §12.1.3.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Remove {
    /// The leaf index of the member to remove.
    pub removed: u32,
}

/// `PreSharedKey` — RFC 9420 §12.1.4.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PreSharedKey {
    /// The PSK to inject.
    pub psk: PreSharedKeyId,
}

/// `ReInit` — RFC 9420 §12.1.5.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ReInit {
    /// The new group's ID.
    pub group_id: VLBytes,
    /// The new group's protocol version.
    pub version: ProtocolVersion,
    /// The new group's cipher suite.
    pub cipher_suite: CipherSuite,
    /// The new group's extensions.
    pub extensions: Vec<Extension>,
}

/// `ExternalInit` — RFC 9420 §12.1.6.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalInit {
    /// The KEM output the external joiner's init secret comes from.
    pub kem_output: VLBytes,
}

/// `GroupContextExtensions` — RFC 9420 §12.1.7.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupContextExtensions {
    /// The group's new extensions.
    pub extensions: Vec<Extension>,
}

/// `Proposal` — RFC 9420 §12.1: the `ProposalType` tag and its body. Only the RFC-defined
/// types decode (see the module documentation).
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u16)]
pub enum Proposal {
    /// add(1).
    #[tls_codec(discriminant = 1)]
    Add(Add),
    /// update(2).
    #[tls_codec(discriminant = 2)]
    Update(Update),
    /// remove(3).
    #[tls_codec(discriminant = 3)]
    Remove(Remove),
    /// psk(4).
    #[tls_codec(discriminant = 4)]
    PreSharedKey(PreSharedKey),
    /// reinit(5).
    #[tls_codec(discriminant = 5)]
    ReInit(ReInit),
    /// external_init(6).
    #[tls_codec(discriminant = 6)]
    ExternalInit(ExternalInit),
    /// group_context_extensions(7).
    #[tls_codec(discriminant = 7)]
    GroupContextExtensions(GroupContextExtensions),
}

impl Proposal {
    /// The proposal's type.
    pub fn proposal_type(&self) -> ProposalType {
        ProposalType(match self {
            Self::Add(_) => 1,
            Self::Update(_) => 2,
            Self::Remove(_) => 3,
            Self::PreSharedKey(_) => 4,
            Self::ReInit(_) => 5,
            Self::ExternalInit(_) => 6,
            Self::GroupContextExtensions(_) => 7,
        })
    }
}
