//! PrivateMessage (RFC 9420 §6.3): signed, then encrypted under the sender's ratchet, with
//! the sender's identity encrypted apart.

use super::{
    EpochKeys, PaddingPolicy, VerifiedContent, check_auth, check_group_epoch, sign, verify,
};
use crate::Error;
use crate::codec::VarBytes;
use crate::codec::{Decode, Encode};
use crate::crypto::{Secret, SignaturePrivateKey, SuiteCrypto};
use crate::messages::{
    AuthenticatedContent, ConfirmedTranscriptHashInput, ContentType, FramedContent, Mac,
    PrivateContentAad, PrivateMessage, PrivateMessageContent, Sender, SenderData, SenderDataAad,
    SignaturePublicKey, WireFormat,
};
use crate::secret_tree::{PendingRatchet, RatchetKind, SecretTree, sender_data_key_nonce};
use crate::tree::LeafIndex;

/// The ratchet a content type is encrypted with (RFC 9420 §6.3.1, §9).
fn ratchet_kind(ct: ContentType) -> RatchetKind {
    match ct {
        ContentType::Application => RatchetKind::Application,
        ContentType::Proposal | ContentType::Commit => RatchetKind::Handshake,
    }
}

/// XORs the reuse guard into the first four bytes of the nonce (RFC 9420 §6.3.1).
pub(super) fn guarded_nonce(nonce: &Secret, reuse_guard: [u8; 4]) -> Secret {
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
pub fn protect_private<F>(
    crypto: &SuiteCrypto<'_>,
    signer: &SignaturePrivateKey,
    keys: &EpochKeys<'_>,
    tree: &mut SecretTree,
    padding: PaddingPolicy,
    content: FramedContent,
    confirm: F,
) -> Result<PrivateMessage, Error>
where
    F: FnOnce(&ConfirmedTranscriptHashInput) -> Result<Mac, Error>,
{
    protect_private_authenticated(crypto, signer, keys, tree, padding, content, confirm)
        .map(|(message, _)| message)
}

/// [`protect_private`], also returning the signed AuthenticatedContent inside the message
/// (a sender needs it for the ProposalRef of its own proposal, §5.2).
pub fn protect_private_authenticated<F>(
    crypto: &SuiteCrypto<'_>,
    signer: &SignaturePrivateKey,
    keys: &EpochKeys<'_>,
    tree: &mut SecretTree,
    padding: PaddingPolicy,
    content: FramedContent,
    confirm: F,
) -> Result<(PrivateMessage, AuthenticatedContent), Error>
where
    F: FnOnce(&ConfirmedTranscriptHashInput) -> Result<Mac, Error>,
{
    let EpochKeys {
        context,
        sender_data_secret,
        ..
    } = *keys;
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
    keys: &EpochKeys<'_>,
    tree: &mut SecretTree,
    member_key: K,
) -> Result<VerifiedContent, Error>
where
    K: FnOnce(LeafIndex) -> Option<SignaturePublicKey>,
{
    let (verified, consumed) = unprotect_private_staged(crypto, message, keys, tree, member_key)?;
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
    keys: &EpochKeys<'_>,
    tree: &SecretTree,
    member_key: K,
) -> Result<(VerifiedContent, PendingRatchet), Error>
where
    K: FnOnce(LeafIndex) -> Option<SignaturePublicKey>,
{
    let EpochKeys {
        context,
        sender_data_secret,
        ..
    } = *keys;
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
