//! Commits and update paths (RFC 9420 §12.4, §7.6).

use super::{HpkePublicKey, LeafNode, Proposal, ProposalRef};
use crate::codec::VarBytes;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// `HPKECiphertext` — RFC 9420 §7.6.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct HpkeCiphertext {
    /// The HPKE encapsulated key.
    pub kem_output: VarBytes,
    /// The AEAD ciphertext.
    pub ciphertext: VarBytes,
}

/// `UpdatePathNode` — RFC 9420 §7.6.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct UpdatePathNode {
    /// The node's new HPKE key.
    pub encryption_key: HpkePublicKey,
    /// The path secret, encrypted to each node of the copath node's resolution.
    pub encrypted_path_secret: Vec<HpkeCiphertext>,
}

/// `UpdatePath` — RFC 9420 §7.6.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct UpdatePath {
    /// The committer's new leaf.
    pub leaf_node: LeafNode,
    /// One entry per node of the committer's filtered direct path (§4.1.2).
    pub nodes: Vec<UpdatePathNode>,
}

/// `ProposalOrRef` — RFC 9420 §12.4: a proposal inline or by reference.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
// Plain wire data, built and matched in place; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum ProposalOrRef {
    /// proposal(1).
    #[tls_codec(discriminant = 1)]
    Proposal(Proposal),
    /// reference(2).
    #[tls_codec(discriminant = 2)]
    Reference(ProposalRef),
}

/// `Commit` — RFC 9420 §12.4.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct Commit {
    /// The proposals the commit applies.
    pub proposals: Vec<ProposalOrRef>,
    /// The committer's update path, if any.
    pub path: Option<UpdatePath>,
}
