//! The only module of the DS that uses `conclave-mls`: it decodes an `MLSMessage` and reads
//! its framing header (RFC 9420 §6), which is all the DS ever learns of a message
//! (RFC 9750 §8.1). Kept small so a change of the library's API is adapted here only.
//!
//! Only PrivateMessages are taken into a group log. A PublicMessage would show the DS the
//! sender's leaf index and, in a commit's UpdatePath or an Add, the credentials — the
//! certificates the AS issued — which would let whoever runs both services tie the group to
//! the people in it (DESIGN.md, "The system: who knows what").

use conclave_mls::codec::Decode;
use conclave_mls::messages::{ContentType, MlsMessage, MlsMessageBody};

/// What a group log entry is, from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Application message.
    Application,
    /// Proposal.
    Proposal,
    /// Commit.
    Commit,
}

/// The framing header of a PublicMessage or PrivateMessage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The opaque group id.
    pub group_id: Vec<u8>,
    /// The epoch.
    pub epoch: u64,
    /// The content type.
    pub kind: Kind,
}

/// Why a body is not a message the group log accepts.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// Not a decodable `MLSMessage`.
    #[error("not a well-formed MLSMessage: {0}")]
    Decode(String),
    /// A Welcome, GroupInfo or KeyPackage: not for a group log.
    #[error("wire format {0} is not a group message")]
    NotAGroupMessage(u16),
    /// A PublicMessage: refused, its framing and content are in the clear.
    #[error(
        "a PublicMessage is refused: send handshakes as PrivateMessages, and an external \
         commit in a sealed envelope"
    )]
    PublicMessage,
}

/// Decodes a PrivateMessage and returns its framing header; refuses a PublicMessage.
pub fn header(bytes: &[u8]) -> Result<Header, HeaderError> {
    let message = MlsMessage::decode(bytes).map_err(|e| HeaderError::Decode(e.to_string()))?;
    let kind = |ct: ContentType| match ct {
        ContentType::Application => Kind::Application,
        ContentType::Proposal => Kind::Proposal,
        ContentType::Commit => Kind::Commit,
    };
    match &message.body {
        MlsMessageBody::PublicMessage(_) => Err(HeaderError::PublicMessage),
        MlsMessageBody::PrivateMessage(m) => Ok(Header {
            group_id: m.group_id.as_slice().to_vec(),
            epoch: m.epoch,
            kind: kind(m.content_type),
        }),
        other => Err(HeaderError::NotAGroupMessage(other.wire_format().0)),
    }
}

/// Whether the bytes decode as an `MLSMessage` of any kind: a sealed envelope (AEAD
/// ciphertext) does not, so this catches an external commit sent in the clear.
pub fn is_mls_message(bytes: &[u8]) -> bool {
    MlsMessage::decode(bytes).is_ok()
}

/// Whether the bytes are an `MLSMessage` carrying a Welcome.
pub fn is_welcome(bytes: &[u8]) -> bool {
    matches!(
        MlsMessage::decode(bytes).map(|m| m.body),
        Ok(MlsMessageBody::Welcome(_))
    )
}
