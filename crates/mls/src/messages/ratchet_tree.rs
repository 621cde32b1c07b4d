//! Ratchet tree nodes and the serialized tree (RFC 9420 §7.1, §7.2, §12.4.3.3).

use super::{HpkePublicKey, LeafNode};
use crate::codec::VarBytes;
use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// `ParentNode` — RFC 9420 §7.1.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ParentNode {
    /// The node's HPKE key.
    pub encryption_key: HpkePublicKey,
    /// The parent hash of this node's parent (§7.9).
    pub parent_hash: VarBytes,
    /// Leaves added under this node since it was last set.
    pub unmerged_leaves: Vec<u32>,
}

/// `Node` — RFC 9420 §12.4.3.3: a `NodeType` tag and the leaf or parent.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
// Plain wire data, built and matched in place; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Node {
    /// leaf(1).
    #[tls_codec(discriminant = 1)]
    Leaf(LeafNode),
    /// parent(2).
    #[tls_codec(discriminant = 2)]
    Parent(ParentNode),
}

/// `optional<Node> ratchet_tree<V>;` — RFC 9420 §12.4.3.3: the tree in array order, blank
/// nodes as `None`. Also the body of the ratchet_tree extension.
#[derive(
    Debug, Clone, PartialEq, Eq, Default, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct RatchetTree(pub Vec<Option<Node>>);
