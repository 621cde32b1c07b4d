//! Proposals (RFC 9420 §12.1).
//!
//! Custom proposal types: the `select` over `ProposalType` has no length prefix (§12.1), so
//! an unknown type's body cannot be skipped unless its layout is agreed. This library, like
//! OpenMLS and mls-rs, carries a custom proposal's body as `opaque data<V>`
//! ([`Proposal::Custom`]); whether a group accepts a type is decided by its members'
//! capabilities (§12.1, §12.2). [`ProposalType`] is an open `u16`, so unknown and GREASE
//! values survive in capabilities and required-capabilities lists.

use super::{Extension, KeyPackage, LeafNode, PreSharedKeyId, ProtocolVersion};
use crate::codec::VarBytes;
use crate::crypto::CipherSuite;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

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
    pub group_id: VarBytes,
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
    pub kem_output: VarBytes,
}

/// `GroupContextExtensions` — RFC 9420 §12.1.7.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct GroupContextExtensions {
    /// The group's new extensions.
    pub extensions: Vec<Extension>,
}

/// `Proposal` — RFC 9420 §12.1: the `ProposalType` tag and its body. Types beyond the RFC's
/// are [`Proposal::Custom`], their body an opaque byte string (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// add(1).
    Add(Add),
    /// update(2).
    Update(Update),
    /// remove(3).
    Remove(Remove),
    /// psk(4).
    PreSharedKey(PreSharedKey),
    /// reinit(5).
    ReInit(ReInit),
    /// external_init(6).
    ExternalInit(ExternalInit),
    /// group_context_extensions(7).
    GroupContextExtensions(GroupContextExtensions),
    /// A proposal type outside the RFC's registry, its body carried as `opaque data<V>`.
    Custom {
        /// The type (never one of 1–7, never a GREASE value, §13.5).
        proposal_type: ProposalType,
        /// The body.
        data: VarBytes,
    },
}

impl tls_codec::Size for Proposal {
    fn tls_serialized_len(&self) -> usize {
        2 + match self {
            Self::Add(p) => p.tls_serialized_len(),
            Self::Update(p) => p.tls_serialized_len(),
            Self::Remove(p) => p.tls_serialized_len(),
            Self::PreSharedKey(p) => p.tls_serialized_len(),
            Self::ReInit(p) => p.tls_serialized_len(),
            Self::ExternalInit(p) => p.tls_serialized_len(),
            Self::GroupContextExtensions(p) => p.tls_serialized_len(),
            Self::Custom { data, .. } => data.tls_serialized_len(),
        }
    }
}

impl tls_codec::Serialize for Proposal {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, tls_codec::Error> {
        let t = self.proposal_type();
        if let Self::Custom { proposal_type, .. } = self
            && (1..=7).contains(&proposal_type.0)
        {
            return Err(tls_codec::Error::EncodingError(
                "a custom proposal cannot use a type of RFC 9420".into(),
            ));
        }
        let n = t.0.tls_serialize(w)?;
        Ok(n + match self {
            Self::Add(p) => p.tls_serialize(w)?,
            Self::Update(p) => p.tls_serialize(w)?,
            Self::Remove(p) => p.tls_serialize(w)?,
            Self::PreSharedKey(p) => p.tls_serialize(w)?,
            Self::ReInit(p) => p.tls_serialize(w)?,
            Self::ExternalInit(p) => p.tls_serialize(w)?,
            Self::GroupContextExtensions(p) => p.tls_serialize(w)?,
            Self::Custom { data, .. } => data.tls_serialize(w)?,
        })
    }
}

impl tls_codec::DeserializeBytes for Proposal {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), tls_codec::Error> {
        use tls_codec::DeserializeBytes as D;
        let (t, rest) = u16::tls_deserialize_bytes(bytes)?;
        Ok(match t {
            1 => D::tls_deserialize_bytes(rest).map(|(p, r)| (Self::Add(p), r))?,
            2 => D::tls_deserialize_bytes(rest).map(|(p, r)| (Self::Update(p), r))?,
            3 => D::tls_deserialize_bytes(rest).map(|(p, r)| (Self::Remove(p), r))?,
            4 => D::tls_deserialize_bytes(rest).map(|(p, r)| (Self::PreSharedKey(p), r))?,
            5 => D::tls_deserialize_bytes(rest).map(|(p, r)| (Self::ReInit(p), r))?,
            6 => D::tls_deserialize_bytes(rest).map(|(p, r)| (Self::ExternalInit(p), r))?,
            7 => {
                D::tls_deserialize_bytes(rest).map(|(p, r)| (Self::GroupContextExtensions(p), r))?
            }
            other => {
                let (data, r) = VarBytes::tls_deserialize_bytes(rest)?;
                (
                    Self::Custom {
                        proposal_type: ProposalType(other),
                        data,
                    },
                    r,
                )
            }
        })
    }
}

impl tls_codec::Deserialize for Proposal {
    fn tls_deserialize<R: std::io::Read>(r: &mut R) -> Result<Self, tls_codec::Error> {
        use tls_codec::Deserialize as D;
        let t = u16::tls_deserialize(r)?;
        Ok(match t {
            1 => Self::Add(D::tls_deserialize(r)?),
            2 => Self::Update(D::tls_deserialize(r)?),
            3 => Self::Remove(D::tls_deserialize(r)?),
            4 => Self::PreSharedKey(D::tls_deserialize(r)?),
            5 => Self::ReInit(D::tls_deserialize(r)?),
            6 => Self::ExternalInit(D::tls_deserialize(r)?),
            7 => Self::GroupContextExtensions(D::tls_deserialize(r)?),
            other => Self::Custom {
                proposal_type: ProposalType(other),
                data: D::tls_deserialize(r)?,
            },
        })
    }
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
            Self::Custom { proposal_type, .. } => proposal_type.0,
        })
    }
}
