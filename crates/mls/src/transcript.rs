//! Transcript hashes (RFC 9420 §8.2): a running hash over the commits of a group.
//!
//! ```text
//! confirmed_transcript_hash_[n] = Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])
//! interim_transcript_hash_[n]   = Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n])
//! ```

use crate::Error;
use crate::codec::Encode;
use crate::crypto::{CryptoError, SuiteCrypto};
use crate::messages::{AuthenticatedContent, ConfirmedTranscriptHashInput, ContentType};

/// `Hash(interim_before || ConfirmedTranscriptHashInput)`, where the input is the encoded
/// `{wire_format, content, signature}` of the commit's AuthenticatedContent.
pub fn confirmed_transcript_hash(
    crypto: &SuiteCrypto<'_>,
    interim_before: &[u8],
    confirmed_input: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut data = Vec::with_capacity(interim_before.len() + confirmed_input.len());
    data.extend_from_slice(interim_before);
    data.extend_from_slice(confirmed_input);
    crypto.hash(&data)
}

/// `Hash(confirmed || InterimTranscriptHashInput)`, the input being `opaque confirmation_tag<V>`.
pub fn interim_transcript_hash(
    crypto: &SuiteCrypto<'_>,
    confirmed: &[u8],
    confirmation_tag: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut data = Vec::with_capacity(confirmed.len() + confirmation_tag.len() + 4);
    data.extend_from_slice(confirmed);
    let len = u32::try_from(confirmation_tag.len()).map_err(|_| CryptoError::KdfLength)?;
    crate::codec::write_varint(len, &mut data).map_err(|_| CryptoError::KdfLength)?;
    data.extend_from_slice(confirmation_tag);
    crypto.hash(&data)
}

/// The confirmed and interim transcript hashes of an epoch (RFC 9420 §8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptHashes {
    /// `confirmed_transcript_hash`: goes into the GroupContext.
    pub confirmed: Vec<u8>,
    /// `interim_transcript_hash`: the starting point for the next commit.
    pub interim: Vec<u8>,
}

impl TranscriptHashes {
    /// The hashes after `commit`, an AuthenticatedContent carrying a Commit, given the
    /// interim transcript hash of the epoch it was sent in.
    pub fn after_commit(
        crypto: &SuiteCrypto<'_>,
        interim_before: &[u8],
        commit: &AuthenticatedContent,
    ) -> Result<Self, Error> {
        if commit.content.body.content_type() != ContentType::Commit {
            return Err(Error::NotACommit);
        }
        let tag = commit
            .auth
            .confirmation_tag
            .as_ref()
            .ok_or(Error::MissingConfirmationTag)?;
        let input = ConfirmedTranscriptHashInput {
            wire_format: commit.wire_format,
            content: commit.content.clone(),
            signature: commit.auth.signature.clone(),
        };
        let confirmed = confirmed_transcript_hash(crypto, interim_before, &input.encode()?)?;
        let interim = interim_transcript_hash(crypto, &confirmed, tag.0.as_slice())?;
        Ok(Self { confirmed, interim })
    }
}
