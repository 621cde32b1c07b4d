//! The library's error type.

use crate::crypto::CryptoError;

/// Everything that can go wrong in the library. Each variant names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cryptographic primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Bytes did not decode as the expected structure (RFC 9420 §2.1).
    #[error("decoding failed: {0}")]
    Decode(String),
    /// A structure could not be encoded (a length beyond 2^30 − 1, §2.1.2).
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl From<tls_codec::Error> for Error {
    fn from(e: tls_codec::Error) -> Self {
        Error::Decode(e.to_string())
    }
}
