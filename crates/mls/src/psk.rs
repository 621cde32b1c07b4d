//! Combining pre-shared keys into the key schedule (RFC 9420 §8.4).

use crate::Error;
use crate::codec::Encode;
use crate::crypto::{Secret, SuiteCrypto};
use crate::messages::PreSharedKeyId;

/// `psk_secret` from the PSKs of a commit or Welcome, in their listed order (RFC 9420 §8.4).
///
/// With no PSKs the result is Nh zero bytes.
pub fn psk_secret(
    crypto: &SuiteCrypto<'_>,
    psks: &[(PreSharedKeyId, &[u8])],
) -> Result<Secret, Error> {
    let nh = crypto.hash_len();
    let count = u16::try_from(psks.len()).map_err(|_| Error::TooManyPsks(psks.len()))?;
    let zero = vec![0u8; nh];
    let mut secret = Secret::zero(nh);
    for (index, (id, psk)) in psks.iter().enumerate() {
        // PSKLabel = PreSharedKeyID || uint16 index || uint16 count.
        let mut label = id.encode()?;
        label.extend_from_slice(&(index as u16).to_be_bytes());
        label.extend_from_slice(&count.to_be_bytes());
        let extracted = crypto.extract(&zero, psk)?;
        let input = crypto.expand_with_label(extracted.as_bytes(), b"derived psk", &label, nh)?;
        secret = crypto.extract(input.as_bytes(), secret.as_bytes())?;
    }
    Ok(secret)
}
