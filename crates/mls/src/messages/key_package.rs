//! KeyPackages (RFC 9420 §10).

use super::{Extension, HpkePublicKey, LeafNode, ProtocolVersion};
use crate::codec::VarBytes;
use crate::crypto::CipherSuite;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// `KeyPackageTBS` — RFC 9420 §10: everything a KeyPackage signs.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct KeyPackageTbs {
    /// The protocol version (mls10).
    pub version: ProtocolVersion,
    /// The cipher suite the KeyPackage is for.
    pub cipher_suite: CipherSuite,
    /// The HPKE key Welcome secrets are encrypted to.
    pub init_key: HpkePublicKey,
    /// The leaf the new member will occupy.
    pub leaf_node: LeafNode,
    /// The KeyPackage's extensions.
    pub extensions: Vec<Extension>,
}

/// `KeyPackage` — RFC 9420 §10: a [`KeyPackageTbs`] and its signature.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct KeyPackage {
    /// The signed content.
    pub tbs: KeyPackageTbs,
    /// `SignWithLabel(., "KeyPackageTBS", KeyPackageTBS)`.
    pub signature: VarBytes,
}

impl KeyPackage {
    /// `KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)` (RFC 9420 §5.2).
    pub fn reference(
        &self,
        crypto: &crate::crypto::SuiteCrypto<'_>,
    ) -> Result<super::KeyPackageRef, crate::Error> {
        use crate::codec::Encode;
        Ok(crypto
            .ref_hash(b"MLS 1.0 KeyPackage Reference", &self.encode()?)?
            .into())
    }
}
