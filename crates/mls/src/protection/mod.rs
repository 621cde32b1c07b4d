//! Message protection (RFC 9420 §6): turning [`FramedContent`] into a signed
//! [`PublicMessage`] or an encrypted [`PrivateMessage`], and back.
//!
//! Unprotecting yields a [`VerifiedContent`]: an [`AuthenticatedContent`] whose signature
//! (§6.1) and, for a member's PublicMessage, membership tag (§6.2) have been checked. It has
//! no public constructor, so code that takes a `VerifiedContent` can only be handed content
//! that went through these checks. The confirmation tag of a commit is *not* checked here:
//! it needs the next epoch's key schedule (§8.1), which the commit processing computes.
//!
//! Receiving a PrivateMessage is transactional: the secret tree only gives up the key of
//! a generation (§9.2) once the content decrypted, parsed with zero padding and its signature
//! verified. A forged or corrupted message leaves the [`SecretTree`] exactly as it was.
//!
//! ```
//! use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto, Secret, SuiteCrypto};
//! use conclave_mls::messages::{
//!     FramedContent, FramedContentBody, GroupContext, ProtocolVersion, Sender,
//!     SignaturePublicKey,
//! };
//! use conclave_mls::internal::protection::{self, PaddingPolicy};
//! use conclave_mls::internal::secret_tree::{RatchetPolicy, SecretTree};
//! use conclave_mls::internal::tree::{LeafIndex, TreeSize};
//! use conclave_mls::codec::VarBytes;
//!
//! let provider = RustCrypto::default();
//! let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
//! let crypto = SuiteCrypto::new(&provider, suite).unwrap();
//! let keys = provider.signature_generate_key_pair(suite).unwrap();
//! let context = GroupContext {
//!     version: ProtocolVersion::MLS10,
//!     cipher_suite: suite,
//!     group_id: VarBytes::new(b"group".to_vec()),
//!     epoch: 3,
//!     tree_hash: VarBytes::new(vec![0; 32]),
//!     confirmed_transcript_hash: VarBytes::new(vec![0; 32]),
//!     extensions: vec![],
//! };
//! let size = TreeSize::from_leaf_count(2).unwrap();
//! let encryption_secret = Secret::new(vec![1; 32]);
//! let sender_data_secret = Secret::new(vec![2; 32]);
//! let mut alice = SecretTree::new(size, encryption_secret.clone(), RatchetPolicy::default());
//! let mut bob = SecretTree::new(size, encryption_secret, RatchetPolicy::default());
//!
//! let content = FramedContent {
//!     group_id: context.group_id.clone(),
//!     epoch: context.epoch,
//!     sender: Sender::Member(1),
//!     authenticated_data: VarBytes::new(vec![]),
//!     body: FramedContentBody::Application(VarBytes::new(b"hello".to_vec())),
//! };
//! let epoch = protection::EpochKeys {
//!     context: &context,
//!     sender_data_secret: &sender_data_secret,
//!     membership_key: None,
//! };
//! let message = protection::protect_private(
//!     &crypto, &keys.private_key, &epoch, &mut alice,
//!     PaddingPolicy::MultipleOf(32), content.clone(), protection::no_confirmation,
//! ).unwrap();
//! let public_key = SignaturePublicKey::from(keys.public_key.clone());
//! let verified = protection::unprotect_private(
//!     &crypto, &message, &epoch, &mut bob,
//!     |leaf| (leaf == LeafIndex(1)).then(|| public_key.clone()),
//! ).unwrap();
//! assert_eq!(verified.content(), &content);
//! ```

use crate::Error;
use crate::codec::VarBytes;
use crate::crypto::{Secret, SignaturePrivateKey, SuiteCrypto};
use crate::messages::{
    AuthenticatedContent, ConfirmedTranscriptHashInput, ContentType, FramedContent,
    FramedContentAuthData, GroupContext, Mac, ProtocolVersion, Sender, SignaturePublicKey,
    WireFormat,
};
use tls_codec::Size as _;

mod private;
mod public;
#[cfg(test)]
mod tests;

pub use private::{
    protect_private, protect_private_authenticated, unprotect_private, unprotect_private_staged,
};
pub use public::{protect_public, unprotect_public};

/// The keys of one epoch that protect its messages (RFC 9420 §6): the GroupContext every
/// signature and tag covers, the sender-data secret of PrivateMessages (§6.3.2) and the
/// membership key of a member's PublicMessages (§6.2). The epoch's secret tree travels
/// apart: sending ratchets it forward, receiving only looks until the message is accepted.
#[derive(Debug, Clone, Copy)]
pub struct EpochKeys<'a> {
    /// The epoch's GroupContext.
    pub context: &'a GroupContext,
    /// `sender_data_secret` (§8).
    pub sender_data_secret: &'a Secret,
    /// `membership_key` (§8); `None` where there is none (an external sender, a joiner
    /// by external commit).
    pub membership_key: Option<&'a Secret>,
}

/// The label of the content signature (RFC 9420 §6.1).
pub(super) const FRAMED_CONTENT_TBS: &[u8] = b"FramedContentTBS";

/// Content whose authenticity has been checked: its signature over `FramedContentTBS`
/// (RFC 9420 §6.1) and, for a member's PublicMessage, its membership tag (§6.2). Only
/// [`unprotect_public`] and [`unprotect_private`] create one. The confirmation tag of a
/// commit is not yet checked (§8.1: that needs the new epoch's confirmation key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedContent {
    content: AuthenticatedContent,
}

impl VerifiedContent {
    /// The verified AuthenticatedContent (RFC 9420 §6).
    pub fn authenticated_content(&self) -> &AuthenticatedContent {
        &self.content
    }
    /// The verified FramedContent (RFC 9420 §6).
    pub fn content(&self) -> &FramedContent {
        &self.content.content
    }
    /// The authenticated sender (RFC 9420 §6).
    pub fn sender(&self) -> Sender {
        self.content.content.sender
    }
    /// The wire format the content arrived in (RFC 9420 §6).
    pub fn wire_format(&self) -> WireFormat {
        self.content.wire_format
    }
    /// The verified AuthenticatedContent, by value (RFC 9420 §6).
    pub fn into_authenticated_content(self) -> AuthenticatedContent {
        self.content
    }
}

/// How much zero padding a PrivateMessageContent gets (RFC 9420 §6.3.1: the amount is the
/// sender's choice; padding hides the exact length of the content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PaddingPolicy {
    /// No padding.
    #[default]
    None,
    /// Pad the encoded content and auth data up to a multiple of this many bytes (0 and 1
    /// mean no padding).
    MultipleOf(u32),
}

impl PaddingPolicy {
    fn padding_for(self, len: usize) -> usize {
        match self {
            Self::None | Self::MultipleOf(0 | 1) => 0,
            Self::MultipleOf(n) => {
                let n = n as usize;
                (n - len % n) % n
            }
        }
    }
}

/// The `confirm` argument for content that is not a commit: never called for it, and fails
/// with [`Error::MissingConfirmationTag`] if it is (RFC 9420 §6.1).
pub fn no_confirmation(_: &ConfirmedTranscriptHashInput) -> Result<Mac, Error> {
    Err(Error::MissingConfirmationTag)
}

/// Fails unless the content belongs to the group and epoch of `context` (RFC 9420 §6).
pub(super) fn check_group_epoch(
    context: &GroupContext,
    group_id: &[u8],
    epoch: u64,
) -> Result<(), Error> {
    if group_id != context.group_id.as_slice() {
        return Err(Error::WrongGroupId);
    }
    if epoch != context.epoch {
        return Err(Error::WrongEpoch {
            expected: context.epoch,
            got: epoch,
        });
    }
    Ok(())
}

/// `FramedContentTBS` for `content` (RFC 9420 §6.1): the group context is included exactly
/// for member and new_member_commit senders.
pub(super) fn tbs(
    wire_format: WireFormat,
    content: &FramedContent,
    context: &GroupContext,
) -> Result<Vec<u8>, Error> {
    let with_context = matches!(content.sender, Sender::Member(_) | Sender::NewMemberCommit);
    let mut out = Vec::with_capacity(content.tls_serialized_len() + 256);
    crate::messages::write_framed_content_tbs(
        &mut out,
        ProtocolVersion::MLS10,
        wire_format,
        content,
        with_context.then_some(context),
    )?;
    Ok(out)
}

/// Signs `content` for `wire_format` and, for a commit, asks `confirm` for the confirmation
/// tag over the signed content (RFC 9420 §6.1, §8.2).
pub(super) fn sign<F>(
    crypto: &SuiteCrypto<'_>,
    signer: &SignaturePrivateKey,
    wire_format: WireFormat,
    content: FramedContent,
    context: &GroupContext,
    confirm: F,
) -> Result<AuthenticatedContent, Error>
where
    F: FnOnce(&ConfirmedTranscriptHashInput) -> Result<Mac, Error>,
{
    let to_sign = tbs(wire_format, &content, context)?;
    let signature = VarBytes::new(crypto.sign_with_label(signer, FRAMED_CONTENT_TBS, &to_sign)?);
    let confirmation_tag = if content.body.content_type() == ContentType::Commit {
        let input = ConfirmedTranscriptHashInput {
            wire_format,
            content: content.clone(),
            signature: signature.clone(),
        };
        Some(confirm(&input)?)
    } else {
        None
    };
    Ok(AuthenticatedContent {
        wire_format,
        content,
        auth: FramedContentAuthData {
            signature,
            confirmation_tag,
        },
    })
}

/// Verifies the signature of `content` with `public_key` (RFC 9420 §6.1).
pub(super) fn verify(
    crypto: &SuiteCrypto<'_>,
    content: &AuthenticatedContent,
    context: &GroupContext,
    public_key: &SignaturePublicKey,
) -> Result<(), Error> {
    let signed = tbs(content.wire_format, &content.content, context)?;
    crypto
        .verify_with_label(
            public_key.as_slice(),
            FRAMED_CONTENT_TBS,
            &signed,
            content.auth.signature.as_slice(),
        )
        .map_err(|_| Error::InvalidContentSignature)
}

/// Fails unless the confirmation tag is present exactly for commits (RFC 9420 §6.1).
pub(super) fn check_auth(auth: &FramedContentAuthData, ct: ContentType) -> Result<(), Error> {
    match (ct == ContentType::Commit, auth.confirmation_tag.is_some()) {
        (true, false) => Err(Error::MissingConfirmationTag),
        (false, true) => Err(Error::UnexpectedConfirmationTag),
        _ => Ok(()),
    }
}
