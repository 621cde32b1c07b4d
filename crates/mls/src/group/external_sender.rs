//! Proposals from outside the group: an external sender named in the group's
//! external_senders extension (RFC 9420 §12.1.8.1), e.g. a server that removes a device.

use crate::Error;
use crate::crypto::{CipherSuite, CryptoProvider, SignaturePrivateKey, SuiteCrypto};
use crate::messages::{
    FramedContent, FramedContentBody, GroupContext, MlsMessage, MlsMessageBody, Proposal,
    ProtocolVersion, Sender,
};
use crate::protection;

/// Signs `proposal` as external sender number `sender_index` of the group `group_id` at
/// `epoch` (§12.1.8.1: Add, Remove, PreSharedKey, ReInit or GroupContextExtensions), as a
/// PublicMessage without membership tag.
pub fn external_proposal(
    provider: &dyn CryptoProvider,
    suite: CipherSuite,
    signer: &SignaturePrivateKey,
    sender_index: u32,
    group_id: &[u8],
    epoch: u64,
    proposal: Proposal,
) -> Result<MlsMessage, Error> {
    let crypto = SuiteCrypto::new(provider, suite)?;
    // An external sender's signature does not cover the GroupContext (§6.1); only the group
    // id and epoch of this context are used, to frame the content.
    let context = GroupContext {
        version: ProtocolVersion::MLS10,
        cipher_suite: suite,
        group_id: group_id.to_vec().into(),
        epoch,
        tree_hash: Vec::new().into(),
        confirmed_transcript_hash: Vec::new().into(),
        extensions: vec![],
    };
    let content = FramedContent {
        group_id: group_id.to_vec().into(),
        epoch,
        sender: Sender::External(sender_index),
        authenticated_data: Vec::new().into(),
        body: FramedContentBody::Proposal(proposal),
    };
    // An external sender holds none of the epoch's secrets: it signs a PublicMessage and
    // adds no membership tag (§6.2); the context is not part of its signature (§6.1).
    let no_secret = crate::crypto::Secret::new(Vec::new());
    let keys = protection::EpochKeys {
        context: &context,
        sender_data_secret: &no_secret,
        membership_key: None,
    };
    let message =
        protection::protect_public(&crypto, signer, &keys, content, protection::no_confirmation)?;
    Ok(MlsMessage {
        version: ProtocolVersion::MLS10,
        body: MlsMessageBody::PublicMessage(message),
    })
}
