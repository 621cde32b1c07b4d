//! Transcript hashes (RFC 9420 §8.2): a running hash over the commits of a group.
//!
//! ```text
//! confirmed_transcript_hash_[n] = Hash(interim_transcript_hash_[n-1] || ConfirmedTranscriptHashInput_[n])
//! interim_transcript_hash_[n]   = Hash(confirmed_transcript_hash_[n] || InterimTranscriptHashInput_[n])
//! ```

use crate::crypto::{CryptoError, SuiteCrypto};

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
