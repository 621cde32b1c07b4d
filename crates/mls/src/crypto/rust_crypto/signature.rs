//! Signature schemes: Ed25519, Ed448 and ECDSA. (Being written: see the crypto work item.)

use super::super::{CipherSuite, CryptoError, SignatureKeyPair, SignaturePrivateKey};
use rand_chacha::ChaCha20Rng;

pub(super) fn generate(
    suite: CipherSuite,
    _rng: &mut ChaCha20Rng,
) -> Result<SignatureKeyPair, CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}

pub(super) fn public_key(
    suite: CipherSuite,
    _private_key: &SignaturePrivateKey,
) -> Result<Vec<u8>, CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}

pub(super) fn sign(
    suite: CipherSuite,
    _private_key: &SignaturePrivateKey,
    _message: &[u8],
    _rng: &mut ChaCha20Rng,
) -> Result<Vec<u8>, CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}

pub(super) fn verify(
    suite: CipherSuite,
    _public_key: &[u8],
    _message: &[u8],
    _signature: &[u8],
) -> Result<(), CryptoError> {
    Err(CryptoError::UnsupportedCipherSuite(suite.0))
}
