//! Extensions (RFC 9420 §13.4, §17.3).

use crate::codec::VarBytes;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// An extension type (RFC 9420 §17.3). Open, so that unknown and GREASE types survive.
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
pub struct ExtensionType(pub u16);

impl ExtensionType {
    /// application_id (§5.3.3).
    pub const APPLICATION_ID: Self = Self(0x0001);
    /// ratchet_tree (§12.4.3.3).
    pub const RATCHET_TREE: Self = Self(0x0002);
    /// required_capabilities (§11.1).
    pub const REQUIRED_CAPABILITIES: Self = Self(0x0003);
    /// external_pub (§12.4.3.2).
    pub const EXTERNAL_PUB: Self = Self(0x0004);
    /// external_senders (§12.1.8.1).
    pub const EXTERNAL_SENDERS: Self = Self(0x0005);

    /// Whether this is a GREASE value (RFC 9420 §13.5).
    pub fn is_grease(self) -> bool {
        crate::codec::is_grease(self.0)
    }
}

/// `struct { ExtensionType extension_type; opaque extension_data<V>; } Extension;`
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Extension {
    /// The extension's type.
    pub extension_type: ExtensionType,
    /// The extension's encoded body.
    pub extension_data: VarBytes,
}

/// The application_id extension body — RFC 9420 §5.3.3: `opaque application_id<V>;`.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ApplicationId(pub VarBytes);

/// The required_capabilities extension body — RFC 9420 §11.1.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct RequiredCapabilities {
    /// Extension types every member must support.
    pub extension_types: Vec<ExtensionType>,
    /// Proposal types every member must support.
    pub proposal_types: Vec<super::ProposalType>,
    /// Credential types every member must support.
    pub credential_types: Vec<super::CredentialType>,
}

/// The external_pub extension body — RFC 9420 §12.4.3.2.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalPub {
    /// The HPKE key external joiners encrypt to.
    pub external_pub: super::HpkePublicKey,
}

/// `ExternalSender` — RFC 9420 §12.1.8.1.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalSender {
    /// The sender's signature key.
    pub signature_key: super::SignaturePublicKey,
    /// The sender's credential.
    pub credential: super::Credential,
}

/// The external_senders extension body — RFC 9420 §12.1.8.1: `ExternalSender external_senders<V>;`.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ExternalSenders(pub Vec<ExternalSender>);
