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
//! let message = protection::protect_private(
//!     &crypto, &keys.private_key, &context, &mut alice, &sender_data_secret,
//!     PaddingPolicy::MultipleOf(32), content.clone(), protection::no_confirmation,
//! ).unwrap();
//! let public_key = SignaturePublicKey::from(keys.public_key.clone());
//! let verified = protection::unprotect_private(
//!     &crypto, &message, &context, &mut bob, &sender_data_secret,
//!     |leaf| (leaf == LeafIndex(1)).then(|| public_key.clone()),
//! ).unwrap();
//! assert_eq!(verified.content(), &content);
//! ```

use crate::Error;
use crate::codec::{Decode, Encode};
use crate::crypto::{Secret, SignaturePrivateKey, SuiteCrypto};
use crate::messages::{
    AuthenticatedContent, ConfirmedTranscriptHashInput, ContentType, FramedContent,
    FramedContentAuthData, GroupContext, Mac, PrivateContentAad, PrivateMessage,
    PrivateMessageContent, ProtocolVersion, PublicMessage, Sender, SenderData, SenderDataAad,
    SignaturePublicKey, WireFormat,
};
use crate::secret_tree::{PendingRatchet, RatchetKind, SecretTree, sender_data_key_nonce};
use crate::tree::LeafIndex;
use subtle::ConstantTimeEq;
use crate::codec::VarBytes;
use tls_codec::Size as _;

/// The label of the content signature (RFC 9420 §6.1).
const FRAMED_CONTENT_TBS: &[u8] = b"FramedContentTBS";

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
fn check_group_epoch(context: &GroupContext, group_id: &[u8], epoch: u64) -> Result<(), Error> {
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
fn tbs(
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
fn sign<F>(
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
fn verify(
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
fn check_auth(auth: &FramedContentAuthData, ct: ContentType) -> Result<(), Error> {
    match (ct == ContentType::Commit, auth.confirmation_tag.is_some()) {
        (true, false) => Err(Error::MissingConfirmationTag),
        (false, true) => Err(Error::UnexpectedConfirmationTag),
        _ => Ok(()),
    }
}

/// `membership_tag = MAC(membership_key, AuthenticatedContentTBM)` (RFC 9420 §6.2).
fn membership_tag(
    crypto: &SuiteCrypto<'_>,
    membership_key: &Secret,
    content: &FramedContent,
    auth: &FramedContentAuthData,
    context: &GroupContext,
) -> Result<Vec<u8>, Error> {
    let tbs = tbs(WireFormat::PUBLIC_MESSAGE, content, context)?;
    membership_tag_over(crypto, membership_key, tbs, auth)
}

/// The membership tag over an already encoded `FramedContentTBS` (RFC 9420 §6.2).
fn membership_tag_over(
    crypto: &SuiteCrypto<'_>,
    membership_key: &Secret,
    mut tbm: Vec<u8>,
    auth: &FramedContentAuthData,
) -> Result<Vec<u8>, Error> {
    tbm.extend_from_slice(&auth.encode()?);
    Ok(crypto.mac(membership_key.as_bytes(), &tbm)?)
}

/// Protects `content` as a PublicMessage (RFC 9420 §6.2): signs it, asks `confirm` for the
/// confirmation tag of a commit, and adds the membership tag for a member sender (which
/// needs `membership_key`). Application data is refused (§6.2: it MUST NOT be sent as a
/// PublicMessage), as is content for another group or epoch than `context`'s.
pub fn protect_public<F>(
    crypto: &SuiteCrypto<'_>,
    signer: &SignaturePrivateKey,
    context: &GroupContext,
    membership_key: Option<&Secret>,
    content: FramedContent,
    confirm: F,
) -> Result<PublicMessage, Error>
where
    F: FnOnce(&ConfirmedTranscriptHashInput) -> Result<Mac, Error>,
{
    if content.body.content_type() == ContentType::Application {
        return Err(Error::ApplicationDataInPublicMessage);
    }
    check_group_epoch(context, content.group_id.as_slice(), content.epoch)?;
    let membership_key = match content.sender {
        Sender::Member(_) => Some(membership_key.ok_or(Error::MissingMembershipKey)?),
        _ => None,
    };
    let signed = sign(
        crypto,
        signer,
        WireFormat::PUBLIC_MESSAGE,
        content,
        context,
        confirm,
    )?;
    let membership_tag = match membership_key {
        Some(key) => Some(Mac::from(membership_tag(
            crypto,
            key,
            &signed.content,
            &signed.auth,
            context,
        )?)),
        None => None,
    };
    Ok(PublicMessage {
        content: signed.content,
        auth: signed.auth,
        membership_tag,
    })
}

/// Unprotects a PublicMessage (RFC 9420 §6.2): checks the group and epoch against
/// `context`, refuses application data, checks the membership tag of a member sender in
/// constant time, and verifies the signature with the key `sender_key` gives for the sender
/// (`None`: [`Error::SenderNotMember`] for a member, [`Error::UnknownSender`] otherwise).
pub fn unprotect_public<K>(
    crypto: &SuiteCrypto<'_>,
    message: &PublicMessage,
    context: &GroupContext,
    membership_key: Option<&Secret>,
    sender_key: K,
) -> Result<VerifiedContent, Error>
where
    K: FnOnce(&Sender) -> Option<SignaturePublicKey>,
{
    let content = &message.content;
    check_group_epoch(context, content.group_id.as_slice(), content.epoch)?;
    if content.body.content_type() == ContentType::Application {
        return Err(Error::ApplicationDataInPublicMessage);
    }
    check_auth(&message.auth, content.body.content_type())?;
    // Encoded once for both the membership tag and the signature (§6.1, §6.2).
    let to_be_signed = tbs(WireFormat::PUBLIC_MESSAGE, content, context)?;
    match (content.sender, &message.membership_tag) {
        (Sender::Member(_), Some(tag)) => {
            let key = membership_key.ok_or(Error::MissingMembershipKey)?;
            let expected = membership_tag_over(crypto, key, to_be_signed.clone(), &message.auth)?;
            if !bool::from(expected.as_slice().ct_eq(tag.as_slice())) {
                return Err(Error::MembershipTagMismatch);
            }
        }
        (Sender::Member(_), None) => return Err(Error::MissingMembershipTag),
        (_, Some(_)) => return Err(Error::UnexpectedMembershipTag),
        (_, None) => {}
    }
    let public_key = sender_key(&content.sender).ok_or(match content.sender {
        Sender::Member(leaf) => Error::SenderNotMember(LeafIndex(leaf)),
        other => Error::UnknownSender(other),
    })?;
    crypto
        .verify_with_label(
            public_key.as_slice(),
            FRAMED_CONTENT_TBS,
            &to_be_signed,
            message.auth.signature.as_slice(),
        )
        .map_err(|_| Error::InvalidContentSignature)?;
    let authenticated = AuthenticatedContent {
        wire_format: WireFormat::PUBLIC_MESSAGE,
        content: content.clone(),
        auth: message.auth.clone(),
    };
    Ok(VerifiedContent {
        content: authenticated,
    })
}

/// The ratchet a content type is encrypted with (RFC 9420 §6.3.1, §9).
fn ratchet_kind(ct: ContentType) -> RatchetKind {
    match ct {
        ContentType::Application => RatchetKind::Application,
        ContentType::Proposal | ContentType::Commit => RatchetKind::Handshake,
    }
}

/// XORs the reuse guard into the first four bytes of the nonce (RFC 9420 §6.3.1).
fn guarded_nonce(nonce: &Secret, reuse_guard: [u8; 4]) -> Secret {
    let mut out = nonce.clone();
    for (b, g) in out.as_mut_bytes().iter_mut().zip(reuse_guard) {
        *b ^= g;
    }
    out
}

/// Protects `content` as a PrivateMessage (RFC 9420 §6.3): signs it (asking `confirm` for
/// a commit's confirmation tag), encrypts it with the next key of the sender's handshake or
/// application ratchet, the nonce XORed with a fresh 4-byte reuse guard from the provider,
/// pads it as `padding` says, and encrypts the SenderData with the key and nonce derived
/// from `sender_data_secret` and the ciphertext sample (§6.3.2). The sender must be a member.
#[allow(clippy::too_many_arguments)]
pub fn protect_private<F>(
    crypto: &SuiteCrypto<'_>,
    signer: &SignaturePrivateKey,
    context: &GroupContext,
    tree: &mut SecretTree,
    sender_data_secret: &Secret,
    padding: PaddingPolicy,
    content: FramedContent,
    confirm: F,
) -> Result<PrivateMessage, Error>
where
    F: FnOnce(&ConfirmedTranscriptHashInput) -> Result<Mac, Error>,
{
    protect_private_authenticated(
        crypto,
        signer,
        context,
        tree,
        sender_data_secret,
        padding,
        content,
        confirm,
    )
    .map(|(message, _)| message)
}

/// [`protect_private`], also returning the signed AuthenticatedContent inside the message
/// (a sender needs it for the ProposalRef of its own proposal, §5.2).
#[allow(clippy::too_many_arguments)]
pub fn protect_private_authenticated<F>(
    crypto: &SuiteCrypto<'_>,
    signer: &SignaturePrivateKey,
    context: &GroupContext,
    tree: &mut SecretTree,
    sender_data_secret: &Secret,
    padding: PaddingPolicy,
    content: FramedContent,
    confirm: F,
) -> Result<(PrivateMessage, AuthenticatedContent), Error>
where
    F: FnOnce(&ConfirmedTranscriptHashInput) -> Result<Mac, Error>,
{
    let Sender::Member(leaf) = content.sender else {
        return Err(Error::PrivateMessageFromNonMember);
    };
    check_group_epoch(context, content.group_id.as_slice(), content.epoch)?;
    let signed = sign(
        crypto,
        signer,
        WireFormat::PRIVATE_MESSAGE,
        content,
        context,
        confirm,
    )?;
    let authenticated = signed.clone();
    let AuthenticatedContent { content, auth, .. } = signed;
    let content_type = content.body.content_type();

    let mut plaintext = PrivateMessageContent {
        body: content.body,
        auth,
        padding_len: 0,
    };
    plaintext.padding_len = padding.padding_for(tls_codec::Size::tls_serialized_len(&plaintext));
    let plaintext = plaintext.encode()?;

    let key = tree.next_key(crypto, LeafIndex(leaf), ratchet_kind(content_type))?;
    let mut reuse_guard = [0u8; 4];
    crypto.provider().random_bytes(&mut reuse_guard)?;
    let aad = PrivateContentAad {
        group_id: content.group_id.clone(),
        epoch: content.epoch,
        content_type,
        authenticated_data: content.authenticated_data.clone(),
    }
    .encode()?;
    let ciphertext = crypto.aead_seal(
        key.key.as_bytes(),
        guarded_nonce(&key.nonce, reuse_guard).as_bytes(),
        &aad,
        &plaintext,
    )?;

    let sender_data = SenderData {
        leaf_index: leaf,
        generation: key.generation,
        reuse_guard,
    }
    .encode()?;
    let sender_data_aad = SenderDataAad {
        group_id: content.group_id.clone(),
        epoch: content.epoch,
        content_type,
    }
    .encode()?;
    let (sd_key, sd_nonce) =
        sender_data_key_nonce(crypto, sender_data_secret.as_bytes(), &ciphertext)?;
    let encrypted_sender_data = crypto.aead_seal(
        sd_key.as_bytes(),
        sd_nonce.as_bytes(),
        &sender_data_aad,
        &sender_data,
    )?;
    let message = PrivateMessage {
        group_id: content.group_id,
        epoch: content.epoch,
        content_type,
        authenticated_data: content.authenticated_data,
        encrypted_sender_data: VarBytes::new(encrypted_sender_data),
        ciphertext: VarBytes::new(ciphertext),
    };
    Ok((message, authenticated))
}

/// Unprotects a PrivateMessage (RFC 9420 §6.3): checks the group and epoch against
/// `context`, decrypts the SenderData (§6.3.2), asks `member_key` for the signature key of
/// the leaf it names (`None`: not a member, [`Error::SenderNotMember`]), decrypts the
/// content with that leaf's ratchet key of the given generation, checks that the padding
/// is all zeros and verifies the signature (§6.1).
///
/// The secret tree changes only if all of that succeeds: then the generation's key is
/// consumed, so the same message a second time fails with [`Error::RatchetKeyUsed`].
pub fn unprotect_private<K>(
    crypto: &SuiteCrypto<'_>,
    message: &PrivateMessage,
    context: &GroupContext,
    tree: &mut SecretTree,
    sender_data_secret: &Secret,
    member_key: K,
) -> Result<VerifiedContent, Error>
where
    K: FnOnce(LeafIndex) -> Option<SignaturePublicKey>,
{
    let (verified, consumed) = unprotect_private_staged(
        crypto,
        message,
        context,
        tree,
        sender_data_secret,
        member_key,
    )?;
    tree.apply(consumed)?;
    Ok(verified)
}

/// [`unprotect_private`] without touching the secret tree: the key the message used comes
/// back as a [`PendingRatchet`] for the caller to [`SecretTree::apply`] once it accepts the
/// message (a group accepts a handshake message only after checking its content). Nothing
/// is copied, however many senders the tree has ratchets for.
pub fn unprotect_private_staged<K>(
    crypto: &SuiteCrypto<'_>,
    message: &PrivateMessage,
    context: &GroupContext,
    tree: &SecretTree,
    sender_data_secret: &Secret,
    member_key: K,
) -> Result<(VerifiedContent, PendingRatchet), Error>
where
    K: FnOnce(LeafIndex) -> Option<SignaturePublicKey>,
{
    check_group_epoch(context, message.group_id.as_slice(), message.epoch)?;
    let content_type = message.content_type;

    let sender_data_aad = SenderDataAad {
        group_id: message.group_id.clone(),
        epoch: message.epoch,
        content_type,
    }
    .encode()?;
    let (sd_key, sd_nonce) = sender_data_key_nonce(
        crypto,
        sender_data_secret.as_bytes(),
        message.ciphertext.as_slice(),
    )?;
    let sender_data = crypto
        .aead_open(
            sd_key.as_bytes(),
            sd_nonce.as_bytes(),
            &sender_data_aad,
            message.encrypted_sender_data.as_slice(),
        )
        .map_err(|_| Error::SenderDataDecryptFailed)?;
    let sender_data = SenderData::decode(sender_data.as_bytes())?;
    let leaf = LeafIndex(sender_data.leaf_index);
    let public_key = member_key(leaf).ok_or(Error::SenderNotMember(leaf))?;

    let (key, pending) = tree.peek_key_for_generation(
        crypto,
        leaf,
        ratchet_kind(content_type),
        sender_data.generation,
    )?;
    let aad = PrivateContentAad {
        group_id: message.group_id.clone(),
        epoch: message.epoch,
        content_type,
        authenticated_data: message.authenticated_data.clone(),
    }
    .encode()?;
    let plaintext = crypto
        .aead_open(
            key.key.as_bytes(),
            guarded_nonce(&key.nonce, sender_data.reuse_guard).as_bytes(),
            &aad,
            message.ciphertext.as_slice(),
        )
        .map_err(|_| Error::ContentDecryptFailed)?;
    let (decoded, padding) =
        PrivateMessageContent::deserialize_unchecked_padding(content_type, plaintext.as_bytes())?;
    if padding.iter().any(|b| *b != 0) {
        return Err(Error::NonZeroPadding);
    }
    check_auth(&decoded.auth, content_type)?;
    let authenticated = AuthenticatedContent {
        wire_format: WireFormat::PRIVATE_MESSAGE,
        content: FramedContent {
            group_id: message.group_id.clone(),
            epoch: message.epoch,
            sender: Sender::Member(leaf.0),
            authenticated_data: message.authenticated_data.clone(),
            body: decoded.body,
        },
        auth: decoded.auth,
    };
    verify(crypto, &authenticated, context, &public_key)?;
    Ok((
        VerifiedContent {
            content: authenticated,
        },
        pending,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CipherSuite, CryptoProvider, RustCrypto};
    use crate::messages::{FramedContentBody, Proposal, Remove};
    use crate::secret_tree::RatchetPolicy;
    use crate::tree::TreeSize;

    const SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;

    struct Fixture {
        provider: RustCrypto,
        signer: SignaturePrivateKey,
        public: SignaturePublicKey,
        context: GroupContext,
        membership_key: Secret,
        sender_data_secret: Secret,
        tree: SecretTree,
    }

    fn fixture() -> Fixture {
        let provider = RustCrypto::default();
        let keys = provider.signature_generate_key_pair(SUITE).unwrap();
        let tree = SecretTree::new(
            TreeSize::from_leaf_count(4).unwrap(),
            Secret::new(vec![3; 32]),
            RatchetPolicy::default(),
        );
        Fixture {
            provider,
            signer: keys.private_key,
            public: SignaturePublicKey::from(keys.public_key),
            context: GroupContext {
                version: ProtocolVersion::MLS10,
                cipher_suite: SUITE,
                group_id: VarBytes::new(b"group".to_vec()),
                epoch: 9,
                tree_hash: VarBytes::new(vec![4; 32]),
                confirmed_transcript_hash: VarBytes::new(vec![5; 32]),
                extensions: vec![],
            },
            membership_key: Secret::new(vec![6; 32]),
            sender_data_secret: Secret::new(vec![7; 32]),
            tree,
        }
    }

    impl Fixture {
        fn crypto(&self) -> SuiteCrypto<'_> {
            SuiteCrypto::new(&self.provider, SUITE).unwrap()
        }

        fn content(&self, body: FramedContentBody) -> FramedContent {
            FramedContent {
                group_id: self.context.group_id.clone(),
                epoch: self.context.epoch,
                sender: Sender::Member(1),
                authenticated_data: VarBytes::new(vec![1, 2, 3]),
                body,
            }
        }

        fn proposal(&self) -> FramedContent {
            self.content(FramedContentBody::Proposal(Proposal::Remove(Remove {
                removed: 2,
            })))
        }

        fn application(&self) -> FramedContent {
            self.content(FramedContentBody::Application(VarBytes::new(vec![
                0xaa;
                100
            ])))
        }

        /// Leaves 0, 1 and 2 are members, all with the same key; leaf 3 is blank.
        fn lookup(&self) -> impl Fn(LeafIndex) -> Option<SignaturePublicKey> + '_ {
            |leaf| (leaf.0 < 3).then(|| self.public.clone())
        }

        fn public(&self) -> PublicMessage {
            let c = self.crypto();
            protect_public(
                &c,
                &self.signer,
                &self.context,
                Some(&self.membership_key),
                self.proposal(),
                no_confirmation,
            )
            .unwrap()
        }

        fn open_public(&self, m: &PublicMessage) -> Result<VerifiedContent, Error> {
            let lookup = self.lookup();
            unprotect_public(
                &self.crypto(),
                m,
                &self.context,
                Some(&self.membership_key),
                |s| match s {
                    Sender::Member(l) => lookup(LeafIndex(*l)),
                    _ => None,
                },
            )
        }

        fn private(&self, content: FramedContent) -> PrivateMessage {
            let mut sender = self.tree.clone();
            protect_private(
                &self.crypto(),
                &self.signer,
                &self.context,
                &mut sender,
                &self.sender_data_secret,
                PaddingPolicy::MultipleOf(64),
                content,
                no_confirmation,
            )
            .unwrap()
        }

        /// Unprotects with the fixture's tree and checks the tree is unchanged on failure.
        fn open_private(&mut self, m: &PrivateMessage) -> Result<VerifiedContent, Error> {
            let before = self.tree.clone();
            let c = SuiteCrypto::new(&self.provider, SUITE).unwrap();
            let public = self.public.clone();
            let result = unprotect_private(
                &c,
                m,
                &self.context,
                &mut self.tree,
                &self.sender_data_secret,
                |leaf| (leaf.0 < 3).then(|| public.clone()),
            );
            if result.is_err() {
                assert_eq!(
                    self.tree, before,
                    "a failed unprotect changed the secret tree"
                );
            } else {
                assert_ne!(self.tree, before, "a successful unprotect consumes a key");
            }
            result
        }
    }

    #[test]
    fn public_round_trip_and_membership_tag() {
        let f = fixture();
        let m = f.public();
        let v = f.open_public(&m).unwrap();
        assert_eq!(v.content(), &f.proposal());
        assert_eq!(v.wire_format(), WireFormat::PUBLIC_MESSAGE);

        let mut bad = m.clone();
        bad.membership_tag = Some(Mac::from(vec![0; 32]));
        assert_eq!(f.open_public(&bad), Err(Error::MembershipTagMismatch));
        // A changed authenticated_data breaks the tag before the signature is looked at.
        let mut bad = m.clone();
        bad.content.authenticated_data = VarBytes::new(vec![9]);
        assert_eq!(f.open_public(&bad), Err(Error::MembershipTagMismatch));
        // Without the membership key nothing can be checked.
        let c = f.crypto();
        assert_eq!(
            unprotect_public(&c, &m, &f.context, None, |_| Some(f.public.clone())),
            Err(Error::MissingMembershipKey)
        );
    }

    #[test]
    fn public_wrong_signature() {
        let f = fixture();
        let other = f.provider.signature_generate_key_pair(SUITE).unwrap();
        let c = f.crypto();
        // Signed by another key, with a valid membership tag.
        let m = protect_public(
            &c,
            &other.private_key,
            &f.context,
            Some(&f.membership_key),
            f.proposal(),
            no_confirmation,
        )
        .unwrap();
        assert_eq!(f.open_public(&m), Err(Error::InvalidContentSignature));
        // An unknown member.
        let mut m = f.public();
        m.content.sender = Sender::Member(3);
        let tag = membership_tag(&c, &f.membership_key, &m.content, &m.auth, &f.context).unwrap();
        m.membership_tag = Some(Mac::from(tag));
        assert_eq!(f.open_public(&m), Err(Error::SenderNotMember(LeafIndex(3))));
    }

    #[test]
    fn public_wrong_group_or_epoch() {
        let f = fixture();
        let mut m = f.public();
        m.content.epoch = 8;
        assert_eq!(
            f.open_public(&m),
            Err(Error::WrongEpoch {
                expected: 9,
                got: 8
            })
        );
        let mut m = f.public();
        m.content.group_id = VarBytes::new(b"other".to_vec());
        assert_eq!(f.open_public(&m), Err(Error::WrongGroupId));
        // Protecting content of another epoch is refused too.
        let mut content = f.proposal();
        content.epoch = 10;
        let c = f.crypto();
        assert!(matches!(
            protect_public(
                &c,
                &f.signer,
                &f.context,
                Some(&f.membership_key),
                content,
                no_confirmation
            ),
            Err(Error::WrongEpoch { .. })
        ));
    }

    #[test]
    fn application_data_never_in_public_message() {
        let f = fixture();
        let c = f.crypto();
        assert_eq!(
            protect_public(
                &c,
                &f.signer,
                &f.context,
                Some(&f.membership_key),
                f.application(),
                no_confirmation
            ),
            Err(Error::ApplicationDataInPublicMessage)
        );
        // Received: refused even when tag and signature are valid.
        let mut m = f.public();
        m.content.body = FramedContentBody::Application(VarBytes::new(vec![1]));
        let tbs_bytes = tbs(WireFormat::PUBLIC_MESSAGE, &m.content, &f.context).unwrap();
        m.auth.signature = VarBytes::new(
            c.sign_with_label(&f.signer, FRAMED_CONTENT_TBS, &tbs_bytes)
                .unwrap(),
        );
        let tag = membership_tag(&c, &f.membership_key, &m.content, &m.auth, &f.context).unwrap();
        m.membership_tag = Some(Mac::from(tag));
        assert_eq!(
            f.open_public(&m),
            Err(Error::ApplicationDataInPublicMessage)
        );
    }

    #[test]
    fn private_round_trip_then_replay() {
        let mut f = fixture();
        for content in [f.application(), f.proposal()] {
            let m = f.private(content.clone());
            assert_eq!(
                m.ciphertext.as_slice().len() % 64,
                16,
                "padded, plus the tag"
            );
            let v = f.open_private(&m).unwrap();
            assert_eq!(v.content(), &content);
            assert_eq!(v.wire_format(), WireFormat::PRIVATE_MESSAGE);
            assert_eq!(
                f.open_private(&m).err(),
                Some(Error::RatchetKeyUsed { generation: 0 })
            );
        }
    }

    /// The staged form leaves the tree alone; its key is spent when the caller applies it,
    /// and a second message opened against the same tree state cannot be applied after it.
    #[test]
    fn private_staged_spends_only_when_applied() {
        let f = fixture();
        let first = f.private(f.application());
        let c = SuiteCrypto::new(&f.provider, SUITE).unwrap();
        let before = f.tree.clone();
        let lookup = |leaf: LeafIndex| (leaf.0 < 3).then(|| f.public.clone());
        let open = |tree: &SecretTree| {
            unprotect_private_staged(&c, &first, &f.context, tree, &f.sender_data_secret, lookup)
        };
        let (verified, consumed) = open(&f.tree).unwrap();
        assert_eq!(verified.content(), &f.application());
        assert_eq!(f.tree, before, "staging changed the tree");
        let (_, stale) = open(&f.tree).unwrap();
        let mut tree = f.tree.clone();
        tree.apply(consumed).unwrap();
        assert_ne!(tree, before);
        assert_eq!(tree.apply(stale), Err(Error::StaleRatchetUpdate));
        assert_eq!(
            open(&tree).err(),
            Some(Error::RatchetKeyUsed { generation: 0 })
        );
    }

    #[test]
    fn private_tampering_burns_nothing() {
        let mut f = fixture();
        let m = f.private(f.application());

        let mut bad = m.clone();
        let mut ct = bad.ciphertext.as_slice().to_vec();
        let last = ct.len() - 1; // beyond the sender-data sample
        ct[last] ^= 1;
        bad.ciphertext = VarBytes::new(ct);
        assert_eq!(
            f.open_private(&bad).err(),
            Some(Error::ContentDecryptFailed)
        );

        let mut bad = m.clone();
        bad.authenticated_data = VarBytes::new(vec![]);
        assert_eq!(
            f.open_private(&bad).err(),
            Some(Error::ContentDecryptFailed)
        );

        let mut bad = m.clone();
        let mut sd = bad.encrypted_sender_data.as_slice().to_vec();
        sd[0] ^= 1;
        bad.encrypted_sender_data = VarBytes::new(sd);
        assert_eq!(
            f.open_private(&bad).err(),
            Some(Error::SenderDataDecryptFailed)
        );

        let mut bad = m.clone();
        bad.epoch = 10;
        assert_eq!(
            f.open_private(&bad).err(),
            Some(Error::WrongEpoch {
                expected: 9,
                got: 10
            })
        );
        let mut bad = m.clone();
        bad.group_id = VarBytes::new(b"other".to_vec());
        assert_eq!(f.open_private(&bad).err(), Some(Error::WrongGroupId));

        // After all that, the genuine message still opens.
        assert!(f.open_private(&m).is_ok());
    }

    #[test]
    fn private_forged_signature_burns_nothing() {
        let mut f = fixture();
        let other = f.provider.signature_generate_key_pair(SUITE).unwrap();
        let c = f.crypto();
        // A member who knows the group secrets but signs with the wrong key, at the same
        // generation as the genuine message.
        let forged = protect_private(
            &c,
            &other.private_key,
            &f.context,
            &mut f.tree.clone(),
            &f.sender_data_secret,
            PaddingPolicy::None,
            f.application(),
            no_confirmation,
        )
        .unwrap();
        let genuine = f.private(f.application());
        assert_eq!(
            f.open_private(&forged).err(),
            Some(Error::InvalidContentSignature)
        );
        assert!(f.open_private(&genuine).is_ok());
    }

    #[test]
    fn private_sender_not_member() {
        let mut f = fixture();
        let mut content = f.application();
        content.sender = Sender::Member(3);
        let m = f.private(content);
        assert_eq!(
            f.open_private(&m).err(),
            Some(Error::SenderNotMember(LeafIndex(3)))
        );
        // Only members send PrivateMessages.
        let mut content = f.proposal();
        content.sender = Sender::External(0);
        let c = f.crypto();
        assert_eq!(
            protect_private(
                &c,
                &f.signer,
                &f.context,
                &mut f.tree.clone(),
                &f.sender_data_secret,
                PaddingPolicy::None,
                content,
                no_confirmation
            ),
            Err(Error::PrivateMessageFromNonMember)
        );
    }

    /// Encrypts `plaintext` as leaf 1's next application message, as [`protect_private`]
    /// would, but without building the plaintext from content.
    fn seal_raw(f: &Fixture, plaintext: &[u8]) -> PrivateMessage {
        let c = f.crypto();
        let mut sender = f.tree.clone();
        let key = sender
            .next_key(&c, LeafIndex(1), RatchetKind::Application)
            .unwrap();
        let ct = ContentType::Application;
        let aad = PrivateContentAad {
            group_id: f.context.group_id.clone(),
            epoch: f.context.epoch,
            content_type: ct,
            authenticated_data: VarBytes::new(vec![]),
        }
        .encode()
        .unwrap();
        let guard = [1, 2, 3, 4];
        let ciphertext = c
            .aead_seal(
                key.key.as_bytes(),
                guarded_nonce(&key.nonce, guard).as_bytes(),
                &aad,
                plaintext,
            )
            .unwrap();
        let sd = SenderData {
            leaf_index: 1,
            generation: key.generation,
            reuse_guard: guard,
        }
        .encode()
        .unwrap();
        let sd_aad = SenderDataAad {
            group_id: f.context.group_id.clone(),
            epoch: f.context.epoch,
            content_type: ct,
        }
        .encode()
        .unwrap();
        let (k, n) =
            sender_data_key_nonce(&c, f.sender_data_secret.as_bytes(), &ciphertext).unwrap();
        PrivateMessage {
            group_id: f.context.group_id.clone(),
            epoch: f.context.epoch,
            content_type: ct,
            authenticated_data: VarBytes::new(vec![]),
            encrypted_sender_data: VarBytes::new(
                c.aead_seal(k.as_bytes(), n.as_bytes(), &sd_aad, &sd)
                    .unwrap(),
            ),
            ciphertext: VarBytes::new(ciphertext),
        }
    }

    #[test]
    fn private_non_zero_padding() {
        let mut f = fixture();
        let mut content = f.application();
        content.authenticated_data = VarBytes::new(vec![]);
        let to_sign = tbs(WireFormat::PRIVATE_MESSAGE, &content, &f.context).unwrap();
        let signature = f
            .crypto()
            .sign_with_label(&f.signer, FRAMED_CONTENT_TBS, &to_sign)
            .unwrap();
        let pmc = PrivateMessageContent {
            body: content.body.clone(),
            auth: FramedContentAuthData {
                signature: VarBytes::new(signature),
                confirmation_tag: None,
            },
            padding_len: 8,
        };
        let good = pmc.encode().unwrap();
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] = 1;
        assert_eq!(
            f.open_private(&seal_raw(&f, &bad)).err(),
            Some(Error::NonZeroPadding)
        );
        // The same plaintext with zero padding is fine: only the padding was wrong.
        assert_eq!(
            f.open_private(&seal_raw(&f, &good)).unwrap().content(),
            &content
        );
    }
}
