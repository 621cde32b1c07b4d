//! Hash, HMAC, HKDF and AEAD for every suite.

use super::super::{AeadAlgorithm, CryptoError, HashAlgorithm, Secret};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha384, Sha512};

pub(super) fn hash(alg: HashAlgorithm, data: &[u8]) -> Vec<u8> {
    match alg {
        HashAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
        HashAlgorithm::Sha384 => Sha384::digest(data).to_vec(),
        HashAlgorithm::Sha512 => Sha512::digest(data).to_vec(),
    }
}

macro_rules! hmac_with {
    ($hash:ty, $key:expr, $parts:expr) => {{
        // HMAC accepts keys of any length (RFC 2104 §2), so keying cannot fail.
        let mut mac = <Hmac<$hash> as KeyInit>::new_from_slice($key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in $parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    }};
}

pub(super) fn hmac(alg: HashAlgorithm, key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac_parts(alg, key, &[data])
}

/// HMAC of the concatenation of `parts`, without building it.
fn hmac_parts(alg: HashAlgorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        HashAlgorithm::Sha256 => hmac_with!(Sha256, key, parts),
        HashAlgorithm::Sha384 => hmac_with!(Sha384, key, parts),
        HashAlgorithm::Sha512 => hmac_with!(Sha512, key, parts),
    }
}

/// HKDF-Extract is HMAC(salt, ikm) (RFC 5869 §2.2); an empty salt means HashLen zeros.
pub(super) fn hkdf_extract(alg: HashAlgorithm, salt: &[u8], ikm: &[u8]) -> Secret {
    hkdf_extract_parts(alg, salt, &[ikm])
}

/// [`hkdf_extract`] of the concatenation of `ikm_parts`, without building it (HPKE's
/// LabeledExtract prefixes a label to inputs that can be megabytes long).
pub(super) fn hkdf_extract_parts(alg: HashAlgorithm, salt: &[u8], ikm_parts: &[&[u8]]) -> Secret {
    let zeros;
    let salt = if salt.is_empty() {
        zeros = vec![0u8; alg.output_len()];
        &zeros[..]
    } else {
        salt
    };
    Secret::new(hmac_parts(alg, salt, ikm_parts))
}

/// HKDF-Expand (RFC 5869 §2.3), written over HMAC so that any PRK length is accepted,
/// as MLS secrets of other lengths (e.g. external PSKs) flow through Expand too.
pub(super) fn hkdf_expand(
    alg: HashAlgorithm,
    prk: &[u8],
    info: &[u8],
    len: usize,
) -> Result<Secret, CryptoError> {
    let n = alg.output_len();
    if len > 255 * n {
        return Err(CryptoError::KdfLength);
    }
    let mut okm = Vec::with_capacity(len + n);
    let mut previous: Vec<u8> = Vec::new();
    let mut counter = 1u8;
    let mut block_input = Vec::with_capacity(n + info.len() + 1);
    while okm.len() < len {
        block_input.clear();
        block_input.extend_from_slice(&previous);
        block_input.extend_from_slice(info);
        block_input.push(counter);
        zeroize::Zeroize::zeroize(&mut previous);
        previous = hmac(alg, prk, &block_input);
        okm.extend_from_slice(&previous);
        counter = counter.wrapping_add(1);
    }
    zeroize::Zeroize::zeroize(&mut previous);
    zeroize::Zeroize::zeroize(&mut block_input);
    okm.truncate(len);
    Ok(Secret::new(okm))
}

fn seal_with<A: Aead + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    msg: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = A::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
    let nonce = aes_gcm::aead::Nonce::<A>::try_from(nonce).map_err(|_| CryptoError::InvalidKey)?;
    cipher
        .encrypt(&nonce, Payload { msg, aad })
        .map_err(|_| CryptoError::AeadSeal)
}

fn open_with<A: Aead + KeyInit>(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    msg: &[u8],
) -> Result<Secret, CryptoError> {
    let cipher = A::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
    let nonce = aes_gcm::aead::Nonce::<A>::try_from(nonce).map_err(|_| CryptoError::InvalidKey)?;
    cipher
        .decrypt(&nonce, Payload { msg, aad })
        .map(Secret::new)
        .map_err(|_| CryptoError::AeadOpen)
}

pub(super) fn aead_seal(
    alg: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    match alg {
        AeadAlgorithm::Aes128Gcm => seal_with::<aes_gcm::Aes128Gcm>(key, nonce, aad, plaintext),
        AeadAlgorithm::Aes256Gcm => seal_with::<aes_gcm::Aes256Gcm>(key, nonce, aad, plaintext),
        AeadAlgorithm::ChaCha20Poly1305 => {
            seal_with::<chacha20poly1305::ChaCha20Poly1305>(key, nonce, aad, plaintext)
        }
    }
}

pub(super) fn aead_open(
    alg: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Secret, CryptoError> {
    match alg {
        AeadAlgorithm::Aes128Gcm => open_with::<aes_gcm::Aes128Gcm>(key, nonce, aad, ciphertext),
        AeadAlgorithm::Aes256Gcm => open_with::<aes_gcm::Aes256Gcm>(key, nonce, aad, ciphertext),
        AeadAlgorithm::ChaCha20Poly1305 => {
            open_with::<chacha20poly1305::ChaCha20Poly1305>(key, nonce, aad, ciphertext)
        }
    }
}
