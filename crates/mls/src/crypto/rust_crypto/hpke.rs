//! HPKE (RFC 9180) base mode for every suite's KEM. (Being written: see the crypto work item.)

use super::super::{CipherSuite, CryptoError, HpkeKeyPair, HpkePrivateKey, HpkeSealed, Secret};
use rand_chacha::ChaCha20Rng;

pub(super) fn seal(
    suite: CipherSuite,
    _public_key: &[u8],
    _info: &[u8],
    _aad: &[u8],
    _plaintext: &[u8],
    _rng: &mut ChaCha20Rng,
) -> Result<HpkeSealed, CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}

pub(super) fn open(
    suite: CipherSuite,
    _private_key: &HpkePrivateKey,
    _kem_output: &[u8],
    _info: &[u8],
    _aad: &[u8],
    _ciphertext: &[u8],
) -> Result<Secret, CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}

pub(super) fn derive_key_pair(suite: CipherSuite, _ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}

pub(super) fn public_key(
    suite: CipherSuite,
    _private_key: &HpkePrivateKey,
) -> Result<Vec<u8>, CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}
