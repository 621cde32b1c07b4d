//! Credentials (RFC 9420 §5.3).
//!
//! Decision on unknown credential types: RFC 9420 §5.3 defines the body of a credential
//! only for the types it knows (`basic`, `x509`); the `select` has no length prefix, so
//! the body of an unknown type cannot be skipped without knowing its structure. Decoding a
//! [`Credential`] whose type is neither basic nor x509 therefore fails with
//! `tls_codec::Error::UnknownValue`. Unknown and GREASE *credential types* (the
//! [`CredentialType`] values in capabilities and required-capabilities lists) are fully
//! representable, since [`CredentialType`] is an open `u16`.

use crate::codec::VarBytes;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// `CredentialType` (RFC 9420 §5.3, §17.5). Open, so that unknown and GREASE values survive.
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
pub struct CredentialType(pub u16);

impl CredentialType {
    /// basic(1).
    pub const BASIC: Self = Self(0x0001);
    /// x509(2).
    pub const X509: Self = Self(0x0002);

    /// Whether this is a GREASE value (RFC 9420 §13.5).
    pub fn is_grease(self) -> bool {
        crate::codec::is_grease(self.0)
    }
}

/// `struct { opaque cert_data<V>; } Certificate;` — RFC 9420 §5.3.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Certificate {
    /// A DER-encoded X.509 certificate.
    pub cert_data: VarBytes,
}

/// `Credential` — RFC 9420 §5.3: the `credential_type`-selected body.
///
/// Only the RFC-defined types decode; see the module documentation.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u16)]
pub enum Credential {
    /// basic(1): an application-defined identity.
    #[tls_codec(discriminant = 1)]
    Basic {
        /// The identity.
        identity: VarBytes,
    },
    /// x509(2): a certificate chain, leaf first.
    #[tls_codec(discriminant = 2)]
    X509 {
        /// The chain.
        certificates: Vec<Certificate>,
    },
}

impl Credential {
    /// A basic credential naming `identity` (RFC 9420 §5.3: the application decides what the
    /// bytes mean).
    pub fn basic(identity: impl Into<Vec<u8>>) -> Self {
        Self::Basic {
            identity: VarBytes::new(identity.into()),
        }
    }

    /// The credential's type.
    pub fn credential_type(&self) -> CredentialType {
        match self {
            Self::Basic { .. } => CredentialType::BASIC,
            Self::X509 { .. } => CredentialType::X509,
        }
    }
}
