//! Leaf nodes (RFC 9420 §7.2) with their capabilities (§7.2) and lifetime.

use super::{Credential, HpkePublicKey, SignaturePublicKey};
use super::{CredentialType, Extension, ExtensionType, ProposalType, ProtocolVersion};
use crate::codec::VarBytes;
use crate::crypto::CipherSuite;
use tls_codec::{
    Deserialize, DeserializeBytes, Error, Serialize, Size, TlsDeserialize, TlsDeserializeBytes,
    TlsSerialize, TlsSize,
};

/// `Capabilities` — RFC 9420 §7.2. Every list keeps unknown and GREASE values (§13.5).
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Capabilities {
    /// Supported protocol versions.
    pub versions: Vec<ProtocolVersion>,
    /// Supported cipher suites.
    pub cipher_suites: Vec<CipherSuite>,
    /// Supported non-default extension types.
    pub extensions: Vec<ExtensionType>,
    /// Supported non-default proposal types.
    pub proposals: Vec<ProposalType>,
    /// Supported credential types.
    pub credentials: Vec<CredentialType>,
}

/// `Lifetime` — RFC 9420 §7.2: seconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Lifetime {
    /// Not valid before this time.
    pub not_before: u64,
    /// Not valid after this time.
    pub not_after: u64,
}

/// `LeafNodeSource` and its `select`ed fields — RFC 9420 §7.2.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum LeafNodeSource {
    /// key_package(1): the leaf came in a KeyPackage.
    #[tls_codec(discriminant = 1)]
    KeyPackage {
        /// The KeyPackage's validity period.
        lifetime: Lifetime,
    },
    /// update(2): the leaf came in an Update proposal.
    #[tls_codec(discriminant = 2)]
    Update,
    /// commit(3): the leaf came in a Commit's UpdatePath.
    #[tls_codec(discriminant = 3)]
    Commit {
        /// The parent hash of the leaf's parent (§7.9).
        parent_hash: VarBytes,
    },
}

/// The fields of a `LeafNode` (RFC 9420 §7.2) that precede `signature`.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct LeafNodeContent {
    /// The leaf's HPKE key.
    pub encryption_key: HpkePublicKey,
    /// The member's signature key.
    pub signature_key: SignaturePublicKey,
    /// The member's credential.
    pub credential: Credential,
    /// What the member supports.
    pub capabilities: Capabilities,
    /// Where the leaf came from, with the source-specific field.
    pub leaf_node_source: LeafNodeSource,
    /// The leaf's extensions.
    pub extensions: Vec<Extension>,
}

/// `LeafNode` — RFC 9420 §7.2: the content and a signature over [`LeafNodeTbs`].
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct LeafNode {
    /// Everything but the signature.
    pub content: LeafNodeContent,
    /// `SignWithLabel(., "LeafNodeTBS", LeafNodeTBS)`.
    pub signature: VarBytes,
}

/// The group binding of a [`LeafNodeTbs`] for the update and commit sources — RFC 9420 §7.2.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct LeafNodeGroupBinding {
    /// The group's ID.
    pub group_id: VarBytes,
    /// The leaf's index in the tree.
    pub leaf_index: u32,
}

/// `LeafNodeTBS` — RFC 9420 §7.2: the content, plus `group_id` and `leaf_index` exactly when
/// the source is update or commit. Encoding fails if `binding` does not match the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafNodeTbs {
    /// The leaf's content.
    pub content: LeafNodeContent,
    /// Present for the update and commit sources, absent for key_package.
    pub binding: Option<LeafNodeGroupBinding>,
}

impl LeafNodeTbs {
    fn check(&self) -> Result<(), Error> {
        let needs = !matches!(
            self.content.leaf_node_source,
            LeafNodeSource::KeyPackage { .. }
        );
        if needs == self.binding.is_some() {
            Ok(())
        } else {
            Err(Error::EncodingError(
                "LeafNodeTBS: group_id/leaf_index must be present exactly for update/commit".into(),
            ))
        }
    }
}

impl Size for LeafNodeTbs {
    fn tls_serialized_len(&self) -> usize {
        self.content.tls_serialized_len()
            + self
                .binding
                .as_ref()
                .map_or(0, LeafNodeGroupBinding::tls_serialized_len)
    }
}

impl Serialize for LeafNodeTbs {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, Error> {
        self.check()?;
        let mut n = self.content.tls_serialize(w)?;
        if let Some(b) = &self.binding {
            n += b.tls_serialize(w)?;
        }
        Ok(n)
    }
}

impl DeserializeBytes for LeafNodeTbs {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (content, rest) = LeafNodeContent::tls_deserialize_bytes(bytes)?;
        let (binding, rest) = match content.leaf_node_source {
            LeafNodeSource::KeyPackage { .. } => (None, rest),
            _ => {
                let (b, rest) = LeafNodeGroupBinding::tls_deserialize_bytes(rest)?;
                (Some(b), rest)
            }
        };
        Ok((Self { content, binding }, rest))
    }
}

impl Deserialize for LeafNodeTbs {
    fn tls_deserialize<R: std::io::Read>(r: &mut R) -> Result<Self, Error> {
        let content = LeafNodeContent::tls_deserialize(r)?;
        let binding = match content.leaf_node_source {
            LeafNodeSource::KeyPackage { .. } => None,
            _ => Some(LeafNodeGroupBinding::tls_deserialize(r)?),
        };
        Ok(Self { content, binding })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decode, Encode};

    fn content(source: LeafNodeSource) -> LeafNodeContent {
        LeafNodeContent {
            encryption_key: HpkePublicKey::from(vec![1; 32]),
            signature_key: SignaturePublicKey::from(vec![2; 32]),
            credential: Credential::Basic {
                identity: VarBytes::new(b"alice".to_vec()),
            },
            capabilities: Capabilities {
                versions: vec![ProtocolVersion::MLS10],
                cipher_suites: vec![CipherSuite(1), CipherSuite(0x0a0a)],
                extensions: vec![ExtensionType(0x1a1a)],
                proposals: vec![ProposalType(0x2a2a)],
                credentials: vec![CredentialType::BASIC, CredentialType(0x3a3a)],
            },
            leaf_node_source: source,
            extensions: vec![],
        }
    }

    #[test]
    fn tbs_binding_follows_source() {
        let binding = LeafNodeGroupBinding {
            group_id: VarBytes::new(b"g".to_vec()),
            leaf_index: 5,
        };
        let cases = [
            (
                LeafNodeSource::KeyPackage {
                    lifetime: Lifetime {
                        not_before: 1,
                        not_after: 2,
                    },
                },
                false,
            ),
            (LeafNodeSource::Update, true),
            (
                LeafNodeSource::Commit {
                    parent_hash: VarBytes::new(vec![4; 32]),
                },
                true,
            ),
        ];
        for (source, bound) in cases {
            let tbs = LeafNodeTbs {
                content: content(source),
                binding: bound.then(|| binding.clone()),
            };
            let bytes = tbs.encode().unwrap();
            assert_eq!(bytes.len(), tbs.tls_serialized_len());
            assert_eq!(LeafNodeTbs::decode(&bytes).unwrap(), tbs);
            let mut reader = bytes.as_slice();
            assert_eq!(LeafNodeTbs::tls_deserialize(&mut reader).unwrap(), tbs);
            let flipped = LeafNodeTbs {
                binding: (!bound).then(|| binding.clone()),
                ..tbs
            };
            assert!(flipped.encode().is_err());
        }
    }
}
