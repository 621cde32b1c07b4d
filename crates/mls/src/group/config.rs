//! Group policy: wire formats, padding, how much of the past to keep.

use crate::protection::PaddingPolicy;
use crate::secret_tree::RatchetPolicy;

/// How handshake messages (proposals and commits) travel (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HandshakeWireFormat {
    /// As PublicMessages: the Delivery Service can see and order them.
    #[default]
    Public,
    /// As PrivateMessages: only members can read them.
    Private,
}

/// A group's local policy. None of it is on the wire; members may differ.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// How this member sends proposals and commits.
    pub handshake_wire_format: HandshakeWireFormat,
    /// Padding of PrivateMessages (§6.3).
    pub padding: PaddingPolicy,
    /// Out-of-order tolerance within an epoch (§9).
    pub ratchet: RatchetPolicy,
    /// How many past epochs keep their keys so late application messages still decrypt.
    pub past_epochs: usize,
    /// How many past epochs keep their resumption PSK (§8.6).
    pub resumption_psk_epochs: usize,
    /// Whether a GroupInfo (and Welcome) carries the ratchet_tree extension (§12.4.3.3).
    pub ratchet_tree_extension: bool,
    /// Whether a GroupInfo carries external_pub, allowing external commits (§12.4.3.2).
    pub external_pub_extension: bool,
    /// The capabilities of the leaf this member creates (as group creator or external
    /// joiner); the library's defaults if `None`.
    pub leaf_capabilities: Option<crate::messages::Capabilities>,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            handshake_wire_format: HandshakeWireFormat::Public,
            padding: PaddingPolicy::default(),
            ratchet: RatchetPolicy::default(),
            past_epochs: 2,
            resumption_psk_epochs: 4,
            ratchet_tree_extension: true,
            external_pub_extension: true,
            leaf_capabilities: None,
        }
    }
}
