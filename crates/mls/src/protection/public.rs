//! PublicMessage (RFC 9420 §6.2): signed, membership-tagged, not encrypted.

use super::{
    EpochKeys, FRAMED_CONTENT_TBS, VerifiedContent, check_auth, check_group_epoch, sign, tbs,
};
use crate::Error;
use crate::codec::Encode;
use crate::crypto::{Secret, SignaturePrivateKey, SuiteCrypto};
use crate::messages::{
    AuthenticatedContent, ConfirmedTranscriptHashInput, ContentType, FramedContent,
    FramedContentAuthData, GroupContext, Mac, PublicMessage, Sender, SignaturePublicKey,
    WireFormat,
};
use crate::tree::LeafIndex;
use subtle::ConstantTimeEq;

/// `membership_tag = MAC(membership_key, AuthenticatedContentTBM)` (RFC 9420 §6.2).
pub(super) fn membership_tag(
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
    keys: &EpochKeys<'_>,
    content: FramedContent,
    confirm: F,
) -> Result<PublicMessage, Error>
where
    F: FnOnce(&ConfirmedTranscriptHashInput) -> Result<Mac, Error>,
{
    let EpochKeys {
        context,
        membership_key,
        ..
    } = *keys;
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
    keys: &EpochKeys<'_>,
    sender_key: K,
) -> Result<VerifiedContent, Error>
where
    K: FnOnce(&Sender) -> Option<SignaturePublicKey>,
{
    let EpochKeys {
        context,
        membership_key,
        ..
    } = *keys;
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
