//! Group policy: wire formats, padding, how much of the past to keep, time.

use crate::messages::Capabilities;
use crate::protection::PaddingPolicy;
use crate::secret_tree::RatchetPolicy;
use crate::time::TimePolicy;

/// How handshake messages (proposals and commits) travel (RFC 9420 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HandshakeWireFormat {
    /// As PublicMessages: the Delivery Service can see and order them.
    #[default]
    Public,
    /// As PrivateMessages: only members can read them.
    Private,
}

/// A group's local policy. None of it is on the wire; members may differ.
///
/// Built from [`GroupConfig::default`] with the `with_*` methods, so that a new setting in a
/// later version breaks no caller:
///
/// ```
/// use conclave_mls::GroupConfig;
/// use conclave_mls::group::HandshakeWireFormat;
///
/// let config = GroupConfig::default()
///     .with_handshake_wire_format(HandshakeWireFormat::Private)
///     .with_past_epochs(4);
/// assert_eq!(config.past_epochs, 4);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    pub leaf_capabilities: Option<Capabilities>,
    /// Against which clock KeyPackage and leaf lifetimes are checked (§7.3, §10.1).
    pub time: TimePolicy,
    /// Refuse a KeyPackage or leaf whose capabilities do not list the group's cipher suite
    /// and version. RFC 9420 asks this of the sender (§7.2: a client MUST list all values
    /// it supports) but not of the receiver (§7.3, §10.1 list no such check), and some
    /// implementations omit the suite, so it is off by default.
    pub strict_capabilities: bool,
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
            time: TimePolicy::default(),
            strict_capabilities: false,
        }
    }
}

impl GroupConfig {
    /// Sets [`GroupConfig::handshake_wire_format`].
    pub fn with_handshake_wire_format(mut self, format: HandshakeWireFormat) -> Self {
        self.handshake_wire_format = format;
        self
    }
    /// Sets [`GroupConfig::padding`].
    pub fn with_padding(mut self, padding: PaddingPolicy) -> Self {
        self.padding = padding;
        self
    }
    /// Sets [`GroupConfig::ratchet`].
    pub fn with_ratchet(mut self, ratchet: RatchetPolicy) -> Self {
        self.ratchet = ratchet;
        self
    }
    /// Sets [`GroupConfig::past_epochs`].
    pub fn with_past_epochs(mut self, epochs: usize) -> Self {
        self.past_epochs = epochs;
        self
    }
    /// Sets [`GroupConfig::resumption_psk_epochs`].
    pub fn with_resumption_psk_epochs(mut self, epochs: usize) -> Self {
        self.resumption_psk_epochs = epochs;
        self
    }
    /// Sets [`GroupConfig::ratchet_tree_extension`].
    pub fn with_ratchet_tree_extension(mut self, on: bool) -> Self {
        self.ratchet_tree_extension = on;
        self
    }
    /// Sets [`GroupConfig::external_pub_extension`].
    pub fn with_external_pub_extension(mut self, on: bool) -> Self {
        self.external_pub_extension = on;
        self
    }
    /// Sets [`GroupConfig::leaf_capabilities`].
    pub fn with_leaf_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.leaf_capabilities = Some(capabilities);
        self
    }
    /// Sets [`GroupConfig::time`].
    pub fn with_time(mut self, time: TimePolicy) -> Self {
        self.time = time;
        self
    }
    /// Sets [`GroupConfig::strict_capabilities`].
    pub fn with_strict_capabilities(mut self, on: bool) -> Self {
        self.strict_capabilities = on;
        self
    }
    /// The time policy.
    pub fn time(&self) -> &TimePolicy {
        &self.time
    }
}
