//! Message framing (RFC 9420 §6): MLSMessage, FramedContent, PublicMessage, PrivateMessage
//! and the structures signed, MACed or encrypted for them.
//!
//! Several structures here carry fields whose presence depends on another field
//! (`content_type`, `sender_type`); their `tls_codec` impls are written by hand and refuse to
//! encode a value whose optional fields disagree with that context.

use super::{Commit, GroupContext, GroupInfo, KeyPackage, Mac, Proposal, ProtocolVersion, Welcome};
use crate::codec::VarBytes;
use tls_codec::{
    Deserialize, DeserializeBytes, Error, Serialize, Size, TlsDeserialize, TlsDeserializeBytes,
    TlsSerialize, TlsSize,
};

/// `WireFormat` — RFC 9420 §6, §17.2. Open `u16`, since it also appears as a plain field.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct WireFormat(pub u16);

impl WireFormat {
    /// mls_public_message(1).
    pub const PUBLIC_MESSAGE: Self = Self(1);
    /// mls_private_message(2).
    pub const PRIVATE_MESSAGE: Self = Self(2);
    /// mls_welcome(3).
    pub const WELCOME: Self = Self(3);
    /// mls_group_info(4).
    pub const GROUP_INFO: Self = Self(4);
    /// mls_key_package(5).
    pub const KEY_PACKAGE: Self = Self(5);
}

/// `ContentType` — RFC 9420 §6.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum ContentType {
    /// application(1).
    Application = 1,
    /// proposal(2).
    Proposal = 2,
    /// commit(3).
    Commit = 3,
}

/// `Sender` — RFC 9420 §6: the `SenderType` tag and its field.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
#[repr(u8)]
pub enum Sender {
    /// member(1), with the sender's leaf index.
    #[tls_codec(discriminant = 1)]
    Member(u32),
    /// external(2), with the index into the external_senders extension.
    #[tls_codec(discriminant = 2)]
    External(u32),
    /// new_member_proposal(3).
    #[tls_codec(discriminant = 3)]
    NewMemberProposal,
    /// new_member_commit(4).
    #[tls_codec(discriminant = 4)]
    NewMemberCommit,
}

/// The `content_type`-selected body of a `FramedContent` — RFC 9420 §6.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u8)]
pub enum FramedContentBody {
    /// application(1): application data.
    #[tls_codec(discriminant = 1)]
    Application(VarBytes),
    /// proposal(2).
    #[tls_codec(discriminant = 2)]
    Proposal(Proposal),
    /// commit(3).
    #[tls_codec(discriminant = 3)]
    Commit(Commit),
}

impl FramedContentBody {
    /// The body's content type.
    pub fn content_type(&self) -> ContentType {
        match self {
            Self::Application(_) => ContentType::Application,
            Self::Proposal(_) => ContentType::Proposal,
            Self::Commit(_) => ContentType::Commit,
        }
    }

    /// Size of the body without its `ContentType` tag (as inside PrivateMessageContent).
    fn untagged_len(&self) -> usize {
        match self {
            Self::Application(a) => a.tls_serialized_len(),
            Self::Proposal(p) => p.tls_serialized_len(),
            Self::Commit(c) => c.tls_serialized_len(),
        }
    }

    fn serialize_untagged<W: std::io::Write>(&self, w: &mut W) -> Result<usize, Error> {
        match self {
            Self::Application(a) => a.tls_serialize(w),
            Self::Proposal(p) => p.tls_serialize(w),
            Self::Commit(c) => c.tls_serialize(w),
        }
    }

    fn deserialize_untagged(ct: ContentType, bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        Ok(match ct {
            ContentType::Application => {
                let (a, rest) = VarBytes::tls_deserialize_bytes(bytes)?;
                (Self::Application(a), rest)
            }
            ContentType::Proposal => {
                let (p, rest) = Proposal::tls_deserialize_bytes(bytes)?;
                (Self::Proposal(p), rest)
            }
            ContentType::Commit => {
                let (c, rest) = Commit::tls_deserialize_bytes(bytes)?;
                (Self::Commit(c), rest)
            }
        })
    }
}

/// `FramedContent` — RFC 9420 §6.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct FramedContent {
    /// The group's ID.
    pub group_id: VarBytes,
    /// The epoch the content belongs to.
    pub epoch: u64,
    /// Who sent it.
    pub sender: Sender,
    /// Authenticated but unencrypted application data.
    pub authenticated_data: VarBytes,
    /// The content, tagged with its `ContentType`.
    pub body: FramedContentBody,
}

/// `FramedContentAuthData` — RFC 9420 §6.1: the signature, and the confirmation tag exactly
/// when the content is a commit. It cannot be decoded alone: use
/// [`FramedContentAuthData::deserialize_for`] with the content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedContentAuthData {
    /// `SignWithLabel(., "FramedContentTBS", FramedContentTBS)`.
    pub signature: VarBytes,
    /// Present exactly for commits.
    pub confirmation_tag: Option<Mac>,
}

impl FramedContentAuthData {
    /// Fails unless the confirmation tag is present exactly for commits.
    pub fn check(&self, ct: ContentType) -> Result<(), Error> {
        if (ct == ContentType::Commit) == self.confirmation_tag.is_some() {
            Ok(())
        } else {
            Err(Error::EncodingError(
                "FramedContentAuthData: confirmation_tag must be present exactly for commits"
                    .into(),
            ))
        }
    }

    /// Decodes the auth data of content of type `ct` from the front of `bytes`.
    pub fn deserialize_for(ct: ContentType, bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (signature, rest) = VarBytes::tls_deserialize_bytes(bytes)?;
        let (confirmation_tag, rest) = if ct == ContentType::Commit {
            let (t, rest) = Mac::tls_deserialize_bytes(rest)?;
            (Some(t), rest)
        } else {
            (None, rest)
        };
        Ok((
            Self {
                signature,
                confirmation_tag,
            },
            rest,
        ))
    }

    /// Decodes the auth data of content of type `ct` from a reader.
    pub fn deserialize_for_reader<R: std::io::Read>(
        ct: ContentType,
        r: &mut R,
    ) -> Result<Self, Error> {
        let signature = VarBytes::tls_deserialize(r)?;
        let confirmation_tag = if ct == ContentType::Commit {
            Some(Mac::tls_deserialize(r)?)
        } else {
            None
        };
        Ok(Self {
            signature,
            confirmation_tag,
        })
    }
}

impl Size for FramedContentAuthData {
    fn tls_serialized_len(&self) -> usize {
        self.signature.tls_serialized_len()
            + self
                .confirmation_tag
                .as_ref()
                .map_or(0, Mac::tls_serialized_len)
    }
}

impl Serialize for FramedContentAuthData {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, Error> {
        let mut n = self.signature.tls_serialize(w)?;
        if let Some(t) = &self.confirmation_tag {
            n += t.tls_serialize(w)?;
        }
        Ok(n)
    }
}

/// `PublicMessage` — RFC 9420 §6.2: the membership tag is present exactly for member senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicMessage {
    /// The content.
    pub content: FramedContent,
    /// Its signature and, for commits, confirmation tag.
    pub auth: FramedContentAuthData,
    /// Present exactly when the sender is a member.
    pub membership_tag: Option<Mac>,
}

impl PublicMessage {
    fn check(&self) -> Result<(), Error> {
        self.auth.check(self.content.body.content_type())?;
        if matches!(self.content.sender, Sender::Member(_)) != self.membership_tag.is_some() {
            return Err(Error::EncodingError(
                "PublicMessage: membership_tag must be present exactly for member senders".into(),
            ));
        }
        Ok(())
    }
}

impl Size for PublicMessage {
    fn tls_serialized_len(&self) -> usize {
        self.content.tls_serialized_len()
            + self.auth.tls_serialized_len()
            + self
                .membership_tag
                .as_ref()
                .map_or(0, Mac::tls_serialized_len)
    }
}

impl Serialize for PublicMessage {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, Error> {
        self.check()?;
        let mut n = self.content.tls_serialize(w)?;
        n += self.auth.tls_serialize(w)?;
        if let Some(t) = &self.membership_tag {
            n += t.tls_serialize(w)?;
        }
        Ok(n)
    }
}

impl DeserializeBytes for PublicMessage {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (content, rest) = FramedContent::tls_deserialize_bytes(bytes)?;
        let (auth, rest) =
            FramedContentAuthData::deserialize_for(content.body.content_type(), rest)?;
        let (membership_tag, rest) = if matches!(content.sender, Sender::Member(_)) {
            let (t, rest) = Mac::tls_deserialize_bytes(rest)?;
            (Some(t), rest)
        } else {
            (None, rest)
        };
        let msg = Self {
            content,
            auth,
            membership_tag,
        };
        Ok((msg, rest))
    }
}

impl Deserialize for PublicMessage {
    fn tls_deserialize<R: std::io::Read>(r: &mut R) -> Result<Self, Error> {
        let content = FramedContent::tls_deserialize(r)?;
        let auth = FramedContentAuthData::deserialize_for_reader(content.body.content_type(), r)?;
        let membership_tag = if matches!(content.sender, Sender::Member(_)) {
            Some(Mac::tls_deserialize(r)?)
        } else {
            None
        };
        Ok(Self {
            content,
            auth,
            membership_tag,
        })
    }
}

/// `PrivateMessage` — RFC 9420 §6.3.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PrivateMessage {
    /// The group's ID.
    pub group_id: VarBytes,
    /// The epoch.
    pub epoch: u64,
    /// The type of the encrypted content.
    pub content_type: ContentType,
    /// Authenticated but unencrypted application data.
    pub authenticated_data: VarBytes,
    /// The encrypted [`SenderData`].
    pub encrypted_sender_data: VarBytes,
    /// The encrypted [`PrivateMessageContent`].
    pub ciphertext: VarBytes,
}

/// `PrivateMessageContent` — RFC 9420 §6.3.1: the untagged content, its auth data, and
/// `padding_len` zero bytes. It has no length prefix, so it is decoded from a whole
/// plaintext with [`PrivateMessageContent::deserialize_for`]; every padding byte must be zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateMessageContent {
    /// The content (its type is `PrivateMessage.content_type`, not encoded here).
    pub body: FramedContentBody,
    /// Signature and, for commits, confirmation tag.
    pub auth: FramedContentAuthData,
    /// The number of zero bytes of padding.
    pub padding_len: usize,
}

impl PrivateMessageContent {
    /// Decodes a whole decrypted plaintext for content of type `ct`: the trailing bytes after
    /// the auth data are padding and must all be zero (RFC 9420 §6.3.1).
    pub fn deserialize_for(ct: ContentType, plaintext: &[u8]) -> Result<Self, Error> {
        let (content, padding) = Self::deserialize_unchecked_padding(ct, plaintext)?;
        if padding.iter().any(|b| *b != 0) {
            return Err(Error::DecodingError(
                "PrivateMessageContent: non-zero padding".into(),
            ));
        }
        Ok(content)
    }

    /// Like [`PrivateMessageContent::deserialize_for`], but returns the padding bytes
    /// unchecked, for a caller that reports non-zero padding as its own error.
    pub fn deserialize_unchecked_padding(
        ct: ContentType,
        plaintext: &[u8],
    ) -> Result<(Self, &[u8]), Error> {
        let (body, rest) = FramedContentBody::deserialize_untagged(ct, plaintext)?;
        let (auth, padding) = FramedContentAuthData::deserialize_for(ct, rest)?;
        let content = Self {
            body,
            auth,
            padding_len: padding.len(),
        };
        Ok((content, padding))
    }
}

impl Size for PrivateMessageContent {
    fn tls_serialized_len(&self) -> usize {
        self.body.untagged_len() + self.auth.tls_serialized_len() + self.padding_len
    }
}

impl Serialize for PrivateMessageContent {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, Error> {
        self.auth.check(self.body.content_type())?;
        let mut n = self.body.serialize_untagged(w)?;
        n += self.auth.tls_serialize(w)?;
        let zeros = [0u8; 256];
        let mut left = self.padding_len;
        while left > 0 {
            let k = left.min(zeros.len());
            w.write_all(&zeros[..k])?;
            left -= k;
        }
        Ok(n + self.padding_len)
    }
}

/// `SenderData` — RFC 9420 §6.3.2.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct SenderData {
    /// The sender's leaf index.
    pub leaf_index: u32,
    /// The ratchet generation of the key used.
    pub generation: u32,
    /// XORed into the first four bytes of the nonce.
    pub reuse_guard: [u8; 4],
}

/// `SenderDataAAD` — RFC 9420 §6.3.2.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct SenderDataAad {
    /// The group's ID.
    pub group_id: VarBytes,
    /// The epoch.
    pub epoch: u64,
    /// The content type.
    pub content_type: ContentType,
}

/// `PrivateContentAAD` — RFC 9420 §6.3.1.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct PrivateContentAad {
    /// The group's ID.
    pub group_id: VarBytes,
    /// The epoch.
    pub epoch: u64,
    /// The content type.
    pub content_type: ContentType,
    /// The message's authenticated data.
    pub authenticated_data: VarBytes,
}

/// `AuthenticatedContent` — RFC 9420 §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedContent {
    /// The wire format the content travelled in.
    pub wire_format: WireFormat,
    /// The content.
    pub content: FramedContent,
    /// Signature and, for commits, confirmation tag.
    pub auth: FramedContentAuthData,
}

impl Size for AuthenticatedContent {
    fn tls_serialized_len(&self) -> usize {
        self.wire_format.tls_serialized_len()
            + self.content.tls_serialized_len()
            + self.auth.tls_serialized_len()
    }
}

impl Serialize for AuthenticatedContent {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, Error> {
        self.auth.check(self.content.body.content_type())?;
        Ok(self.wire_format.tls_serialize(w)?
            + self.content.tls_serialize(w)?
            + self.auth.tls_serialize(w)?)
    }
}

impl DeserializeBytes for AuthenticatedContent {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (wire_format, rest) = WireFormat::tls_deserialize_bytes(bytes)?;
        let (content, rest) = FramedContent::tls_deserialize_bytes(rest)?;
        let (auth, rest) =
            FramedContentAuthData::deserialize_for(content.body.content_type(), rest)?;
        let value = Self {
            wire_format,
            content,
            auth,
        };
        Ok((value, rest))
    }
}

impl Deserialize for AuthenticatedContent {
    fn tls_deserialize<R: std::io::Read>(r: &mut R) -> Result<Self, Error> {
        let wire_format = WireFormat::tls_deserialize(r)?;
        let content = FramedContent::tls_deserialize(r)?;
        let auth = FramedContentAuthData::deserialize_for_reader(content.body.content_type(), r)?;
        Ok(Self {
            wire_format,
            content,
            auth,
        })
    }
}

/// `FramedContentTBS` — RFC 9420 §6.1: the group context is present exactly for member and
/// new_member_commit senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramedContentTbs {
    /// The protocol version (mls10).
    pub version: ProtocolVersion,
    /// The wire format the content travels in.
    pub wire_format: WireFormat,
    /// The content.
    pub content: FramedContent,
    /// Present exactly for member and new_member_commit senders.
    pub context: Option<GroupContext>,
}

fn sender_needs_context(sender: &Sender) -> bool {
    matches!(sender, Sender::Member(_) | Sender::NewMemberCommit)
}

impl Size for FramedContentTbs {
    fn tls_serialized_len(&self) -> usize {
        self.version.tls_serialized_len()
            + self.wire_format.tls_serialized_len()
            + self.content.tls_serialized_len()
            + self
                .context
                .as_ref()
                .map_or(0, GroupContext::tls_serialized_len)
    }
}

impl Serialize for FramedContentTbs {
    fn tls_serialize<W: std::io::Write>(&self, w: &mut W) -> Result<usize, Error> {
        write_framed_content_tbs(
            w,
            self.version,
            self.wire_format,
            &self.content,
            self.context.as_ref(),
        )
    }
}

/// The encoding of `ConfirmedTranscriptHashInput` (RFC 9420 §8.2) from borrowed parts, the
/// same bytes as [`ConfirmedTranscriptHashInput`]'s: a receiver hashes a commit's content
/// without copying it.
pub(crate) fn confirmed_transcript_hash_input(
    wire_format: WireFormat,
    content: &FramedContent,
    signature: &VarBytes,
) -> Result<Vec<u8>, Error> {
    let mut out =
        Vec::with_capacity(content.tls_serialized_len() + signature.tls_serialized_len() + 2);
    wire_format.tls_serialize(&mut out)?;
    content.tls_serialize(&mut out)?;
    signature.tls_serialize(&mut out)?;
    Ok(out)
}

/// Writes `FramedContentTBS` (RFC 9420 §6.1) from borrowed parts: signing and verifying
/// encode it without first copying the content, which for a commit in a large adds-only tree
/// carries a ciphertext per member.
pub(crate) fn write_framed_content_tbs<W: std::io::Write>(
    w: &mut W,
    version: ProtocolVersion,
    wire_format: WireFormat,
    content: &FramedContent,
    context: Option<&GroupContext>,
) -> Result<usize, Error> {
    if sender_needs_context(&content.sender) != context.is_some() {
        return Err(Error::EncodingError(
            "FramedContentTBS: context must be present exactly for member and \
             new_member_commit senders"
                .into(),
        ));
    }
    let mut n =
        version.tls_serialize(w)? + wire_format.tls_serialize(w)? + content.tls_serialize(w)?;
    if let Some(c) = context {
        n += c.tls_serialize(w)?;
    }
    Ok(n)
}

impl DeserializeBytes for FramedContentTbs {
    fn tls_deserialize_bytes(bytes: &[u8]) -> Result<(Self, &[u8]), Error> {
        let (version, rest) = ProtocolVersion::tls_deserialize_bytes(bytes)?;
        let (wire_format, rest) = WireFormat::tls_deserialize_bytes(rest)?;
        let (content, rest) = FramedContent::tls_deserialize_bytes(rest)?;
        let (context, rest) = if sender_needs_context(&content.sender) {
            let (c, rest) = GroupContext::tls_deserialize_bytes(rest)?;
            (Some(c), rest)
        } else {
            (None, rest)
        };
        let value = Self {
            version,
            wire_format,
            content,
            context,
        };
        Ok((value, rest))
    }
}

impl Deserialize for FramedContentTbs {
    fn tls_deserialize<R: std::io::Read>(r: &mut R) -> Result<Self, Error> {
        let version = ProtocolVersion::tls_deserialize(r)?;
        let wire_format = WireFormat::tls_deserialize(r)?;
        let content = FramedContent::tls_deserialize(r)?;
        let context = if sender_needs_context(&content.sender) {
            Some(GroupContext::tls_deserialize(r)?)
        } else {
            None
        };
        Ok(Self {
            version,
            wire_format,
            content,
            context,
        })
    }
}

/// `ConfirmedTranscriptHashInput` — RFC 9420 §8.2.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct ConfirmedTranscriptHashInput {
    /// The wire format the commit travelled in.
    pub wire_format: WireFormat,
    /// The commit's content.
    pub content: FramedContent,
    /// The commit's signature.
    pub signature: VarBytes,
}

/// `InterimTranscriptHashInput` — RFC 9420 §8.2.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct InterimTranscriptHashInput {
    /// The commit's confirmation tag.
    pub confirmation_tag: Mac,
}

/// The `wire_format`-selected body of an `MLSMessage` — RFC 9420 §6.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
#[repr(u16)]
pub enum MlsMessageBody {
    /// mls_public_message(1).
    #[tls_codec(discriminant = 1)]
    PublicMessage(PublicMessage),
    /// mls_private_message(2).
    #[tls_codec(discriminant = 2)]
    PrivateMessage(PrivateMessage),
    /// mls_welcome(3).
    #[tls_codec(discriminant = 3)]
    Welcome(Welcome),
    /// mls_group_info(4).
    #[tls_codec(discriminant = 4)]
    GroupInfo(GroupInfo),
    /// mls_key_package(5).
    #[tls_codec(discriminant = 5)]
    KeyPackage(KeyPackage),
}

impl MlsMessageBody {
    /// The body's wire format.
    pub fn wire_format(&self) -> WireFormat {
        WireFormat(match self {
            Self::PublicMessage(_) => 1,
            Self::PrivateMessage(_) => 2,
            Self::Welcome(_) => 3,
            Self::GroupInfo(_) => 4,
            Self::KeyPackage(_) => 5,
        })
    }
}

/// `MLSMessage` — RFC 9420 §6: the version and the wire-format-tagged body.
#[derive(
    Debug, Clone, PartialEq, Eq, TlsSerialize, TlsDeserialize, TlsDeserializeBytes, TlsSize,
)]
pub struct MlsMessage {
    /// The protocol version.
    pub version: ProtocolVersion,
    /// The message, tagged with its wire format.
    pub body: MlsMessageBody,
}

impl MlsMessage {
    /// Wraps `body` as an MLS 1.0 message.
    pub fn new(body: MlsMessageBody) -> Self {
        Self {
            version: ProtocolVersion::MLS10,
            body,
        }
    }

    /// The message's wire format.
    pub fn wire_format(&self) -> WireFormat {
        self.body.wire_format()
    }

    /// The group id, epoch and content type a Delivery Service may read of a handshake or
    /// application message (RFC 9420 §6: they travel in the clear in both framings); `None`
    /// for a Welcome, GroupInfo or KeyPackage.
    pub fn framing(&self) -> Option<Framing<'_>> {
        match &self.body {
            MlsMessageBody::PublicMessage(m) => Some(Framing {
                group_id: m.content.group_id.as_slice(),
                epoch: m.content.epoch,
                content_type: m.content.body.content_type(),
                sender: Some(m.content.sender),
            }),
            MlsMessageBody::PrivateMessage(m) => Some(Framing {
                group_id: m.group_id.as_slice(),
                epoch: m.epoch,
                content_type: m.content_type,
                sender: None,
            }),
            _ => None,
        }
    }

    fn wrong_kind(&self, expected: WireFormat) -> crate::Error {
        crate::Error::WrongMessageKind {
            expected,
            got: self.wire_format(),
        }
    }

    /// The Welcome this message carries.
    pub fn into_welcome(self) -> Result<Welcome, crate::Error> {
        match self.body {
            MlsMessageBody::Welcome(w) => Ok(w),
            _ => Err(self.wrong_kind(WireFormat::WELCOME)),
        }
    }

    /// The KeyPackage this message carries.
    pub fn into_key_package(self) -> Result<KeyPackage, crate::Error> {
        match self.body {
            MlsMessageBody::KeyPackage(k) => Ok(k),
            _ => Err(self.wrong_kind(WireFormat::KEY_PACKAGE)),
        }
    }

    /// The GroupInfo this message carries.
    pub fn into_group_info(self) -> Result<GroupInfo, crate::Error> {
        match self.body {
            MlsMessageBody::GroupInfo(g) => Ok(g),
            _ => Err(self.wrong_kind(WireFormat::GROUP_INFO)),
        }
    }
}

/// What the framing of a handshake or application message says in the clear (RFC 9420 §6):
/// all a Delivery Service needs to order and route it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Framing<'a> {
    /// The group the message belongs to.
    pub group_id: &'a [u8],
    /// The epoch it was sent in.
    pub epoch: u64,
    /// Application, proposal or commit.
    pub content_type: ContentType,
    /// The sender, visible in a PublicMessage only (a PrivateMessage encrypts it).
    pub sender: Option<Sender>,
}

impl From<Welcome> for MlsMessage {
    fn from(welcome: Welcome) -> Self {
        Self::new(MlsMessageBody::Welcome(welcome))
    }
}

impl From<KeyPackage> for MlsMessage {
    fn from(key_package: KeyPackage) -> Self {
        Self::new(MlsMessageBody::KeyPackage(key_package))
    }
}

impl From<GroupInfo> for MlsMessage {
    fn from(group_info: GroupInfo) -> Self {
        Self::new(MlsMessageBody::GroupInfo(group_info))
    }
}

impl AuthenticatedContent {
    /// `ProposalRef = RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent)` for content
    /// that carries a proposal (RFC 9420 §5.2).
    pub fn proposal_reference(
        &self,
        crypto: &crate::crypto::SuiteCrypto<'_>,
    ) -> Result<super::ProposalRef, crate::Error> {
        use crate::codec::Encode;
        if self.content.body.content_type() != ContentType::Proposal {
            return Err(crate::Error::NotAProposal);
        }
        Ok(crypto
            .ref_hash(b"MLS 1.0 Proposal Reference", &self.encode()?)?
            .into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decode, Encode};
    use crate::messages::{Proposal, Remove};

    fn content(sender: Sender, body: FramedContentBody) -> FramedContent {
        FramedContent {
            group_id: VarBytes::new(b"group".to_vec()),
            epoch: 7,
            sender,
            authenticated_data: VarBytes::new(vec![1, 2]),
            body,
        }
    }

    fn commit_body() -> FramedContentBody {
        FramedContentBody::Commit(Commit {
            proposals: vec![],
            path: None,
        })
    }

    fn auth(tag: bool) -> FramedContentAuthData {
        FramedContentAuthData {
            signature: VarBytes::new(vec![9; 4]),
            confirmation_tag: tag.then(|| Mac::from(vec![5; 3])),
        }
    }

    #[test]
    fn private_message_content_padding() {
        let pmc = PrivateMessageContent {
            body: FramedContentBody::Proposal(Proposal::Remove(Remove { removed: 3 })),
            auth: auth(false),
            padding_len: 10,
        };
        let bytes = pmc.encode().unwrap();
        assert_eq!(bytes.len(), pmc.tls_serialized_len());
        assert!(bytes.ends_with(&[0; 10]));
        let back = PrivateMessageContent::deserialize_for(ContentType::Proposal, &bytes).unwrap();
        assert_eq!(back, pmc);
        // No padding at all is fine too.
        let unpadded = &bytes[..bytes.len() - 10];
        let back = PrivateMessageContent::deserialize_for(ContentType::Proposal, unpadded).unwrap();
        assert_eq!(back.padding_len, 0);
        // A non-zero padding byte anywhere is rejected.
        for i in bytes.len() - 10..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] = 1;
            assert!(PrivateMessageContent::deserialize_for(ContentType::Proposal, &bad).is_err());
        }
        // Truncation inside the auth data fails.
        assert!(
            PrivateMessageContent::deserialize_for(ContentType::Proposal, &bytes[..3]).is_err()
        );
    }

    #[test]
    fn private_message_content_commit_needs_tag() {
        let pmc = PrivateMessageContent {
            body: commit_body(),
            auth: auth(true),
            padding_len: 300,
        };
        let bytes = pmc.encode().unwrap();
        let back = PrivateMessageContent::deserialize_for(ContentType::Commit, &bytes).unwrap();
        assert_eq!(back, pmc);
        let wrong = PrivateMessageContent {
            auth: auth(false),
            ..pmc
        };
        assert!(wrong.encode().is_err());
    }

    #[test]
    fn public_message_membership_tag_follows_sender() {
        let member = PublicMessage {
            content: content(Sender::Member(1), commit_body()),
            auth: auth(true),
            membership_tag: Some(Mac::from(vec![7; 2])),
        };
        let bytes = member.encode().unwrap();
        assert_eq!(PublicMessage::decode(&bytes).unwrap(), member);
        let mut reader = bytes.as_slice();
        assert_eq!(PublicMessage::tls_deserialize(&mut reader).unwrap(), member);

        let external = PublicMessage {
            content: content(
                Sender::External(0),
                FramedContentBody::Proposal(Proposal::Remove(Remove { removed: 1 })),
            ),
            auth: auth(false),
            membership_tag: None,
        };
        let bytes = external.encode().unwrap();
        assert_eq!(PublicMessage::decode(&bytes).unwrap(), external);

        let bad = PublicMessage {
            membership_tag: None,
            ..member.clone()
        };
        assert!(bad.encode().is_err());
        let bad = PublicMessage {
            auth: auth(false),
            ..member
        };
        assert!(bad.encode().is_err());
    }

    #[test]
    fn framed_content_tbs_context_follows_sender() {
        let ctx = GroupContext {
            version: ProtocolVersion::MLS10,
            cipher_suite: crate::CipherSuite(1),
            group_id: VarBytes::new(b"group".to_vec()),
            epoch: 7,
            tree_hash: VarBytes::new(vec![1; 32]),
            confirmed_transcript_hash: VarBytes::new(vec![2; 32]),
            extensions: vec![],
        };
        for (sender, has_ctx) in [
            (Sender::Member(0), true),
            (Sender::NewMemberCommit, true),
            (Sender::External(2), false),
            (Sender::NewMemberProposal, false),
        ] {
            let tbs = FramedContentTbs {
                version: ProtocolVersion::MLS10,
                wire_format: WireFormat::PUBLIC_MESSAGE,
                content: content(
                    sender,
                    FramedContentBody::Application(VarBytes::new(vec![3])),
                ),
                context: has_ctx.then(|| ctx.clone()),
            };
            let bytes = tbs.encode().unwrap();
            assert_eq!(bytes.len(), tbs.tls_serialized_len());
            assert_eq!(FramedContentTbs::decode(&bytes).unwrap(), tbs);
            let flipped = FramedContentTbs {
                context: (!has_ctx).then(|| ctx.clone()),
                ..tbs
            };
            assert!(flipped.encode().is_err());
        }
    }

    #[test]
    fn authenticated_content_round_trip() {
        let ac = AuthenticatedContent {
            wire_format: WireFormat::PRIVATE_MESSAGE,
            content: content(Sender::Member(4), commit_body()),
            auth: auth(true),
        };
        let bytes = ac.encode().unwrap();
        assert_eq!(AuthenticatedContent::decode(&bytes).unwrap(), ac);
        for cut in 0..bytes.len() {
            assert!(AuthenticatedContent::decode(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn unknown_types_are_refused() {
        // A proposal of a custom type carries an opaque body: it decodes as Custom and
        // re-encodes byte for byte; a truncated body is still an error.
        let custom = Proposal::decode(&[0x00, 0x08, 0x01, 0xaa]).unwrap();
        assert!(
            matches!(&custom, Proposal::Custom { proposal_type, data } if proposal_type.0 == 8 && data.as_slice() == [0xaa])
        );
        assert_eq!(custom.encode().unwrap(), vec![0x00, 0x08, 0x01, 0xaa]);
        assert!(Proposal::decode(&[0x0a, 0x0a, 0x02, 0x00]).is_err());
        // A custom proposal may not claim an RFC type.
        let fake = Proposal::Custom {
            proposal_type: super::super::ProposalType(1),
            data: vec![].into(),
        };
        assert!(fake.encode().is_err());
        // Likewise an unknown credential type.
        assert!(crate::messages::Credential::decode(&[0x00, 0x03, 0x00]).is_err());
        // And an unknown wire format inside an MLSMessage.
        assert!(MlsMessage::decode(&[0x00, 0x01, 0x00, 0x06]).is_err());
    }
}
