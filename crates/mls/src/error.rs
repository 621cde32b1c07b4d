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
    /// More PSKs than a PSKLabel can count (RFC 9420 §8.4: `uint16 count`).
    #[error("{0} PSKs exceed the 65535 a PSKLabel can count")]
    TooManyPsks(usize),
    /// A leaf index beyond the tree.
    #[error("{0:?} is outside the tree")]
    LeafOutOfRange(crate::tree::LeafIndex),
    /// The secret-tree leaf was already consumed (RFC 9420 §9: secrets are deleted after use).
    #[error("the secret of {0:?} has already been consumed")]
    SecretTreeLeafConsumed(crate::tree::LeafIndex),
    /// The key of this generation was already used or deleted: a replay, or a message later
    /// than the out-of-order window (RFC 9420 §9.2).
    #[error("the key of generation {generation} was already used or has been deleted")]
    RatchetKeyUsed {
        /// The generation asked for.
        generation: u32,
    },
    /// A generation further ahead of the ratchet than the configured maximum.
    #[error("generation {generation} is too far ahead of the ratchet at {current}")]
    RatchetTooFarAhead {
        /// The generation asked for.
        generation: u32,
        /// The ratchet's current generation.
        current: u32,
    },
    /// A sender ratchet reached generation 2^32 − 1 (RFC 9420 §9.1: the generation is a uint32).
    #[error("the sender ratchet is exhausted")]
    RatchetExhausted,
    /// Content that must be a commit is not one.
    #[error("the content is not a commit")]
    NotACommit,
    /// Content that must be a proposal is not one.
    #[error("the content is not a proposal")]
    NotAProposal,
    /// A commit without its confirmation tag (RFC 9420 §6.1: present exactly for commits).
    #[error("a commit must carry a confirmation tag")]
    MissingConfirmationTag,
    /// The Welcome's cipher suite differs from the KeyPackage's (RFC 9420 §12.4.3.1).
    #[error("the Welcome's cipher suite does not match the KeyPackage's")]
    WelcomeCipherSuiteMismatch,
    /// No entry of the Welcome is for one of our KeyPackages (RFC 9420 §12.4.3.1).
    #[error("the Welcome holds no secrets for this KeyPackage")]
    WelcomeNotForUs,
    /// The GroupSecrets did not decrypt with the KeyPackage's init key.
    #[error("the Welcome's group secrets did not decrypt")]
    GroupSecretsDecryptFailed,
    /// The GroupInfo of a Welcome did not decrypt with the welcome key.
    #[error("the Welcome's GroupInfo did not decrypt")]
    GroupInfoDecryptFailed,
    /// The GroupInfo signature does not verify with the signer's key (RFC 9420 §12.4.3).
    #[error("the GroupInfo signature is invalid")]
    GroupInfoSignatureInvalid,
    /// A confirmation tag differs from MAC(confirmation_key, confirmed_transcript_hash)
    /// (RFC 9420 §8.2, §12.4.3.1).
    #[error("the confirmation tag does not match")]
    ConfirmationTagMismatch,
    /// A structure could not be encoded (a length beyond 2^30 − 1, §2.1.2).
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl From<tls_codec::Error> for Error {
    fn from(e: tls_codec::Error) -> Self {
        Error::Decode(e.to_string())
    }
}
