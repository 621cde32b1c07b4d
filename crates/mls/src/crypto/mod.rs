//! Cryptography: cipher suites, secret-holding types and the [`CryptoProvider`] trait.
//!
//! The protocol code never calls a cryptographic library directly: every primitive goes
//! through a [`CryptoProvider`], and so does all randomness, which lets tests make any
//! operation reproducible. [`RustCrypto`] is the default provider.

mod labeled;
#[cfg(feature = "rust-crypto")]
pub mod rust_crypto;
mod secret;
mod suite;

pub use labeled::SuiteCrypto;
#[cfg(feature = "rust-crypto")]
pub use rust_crypto::RustCrypto;
pub use secret::{HpkeKeyPair, HpkePrivateKey, Secret, SignatureKeyPair, SignaturePrivateKey};
pub use suite::{AeadAlgorithm, CipherSuite, HashAlgorithm, KemAlgorithm, SignatureScheme};

/// A failure inside a cryptographic primitive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The provider does not implement this cipher suite.
    #[error("cipher suite {0:#06x} is not supported")]
    UnsupportedCipherSuite(u16),
    /// A key had the wrong length or was not a valid point/scalar for its algorithm.
    #[error("invalid key for the cipher suite")]
    InvalidKey,
    /// A signature did not verify (or was malformed).
    #[error("signature verification failed")]
    InvalidSignature,
    /// AEAD decryption failed: wrong key, nonce, associated data or a modified ciphertext.
    #[error("AEAD decryption failed")]
    AeadOpen,
    /// AEAD encryption failed (plaintext too long).
    #[error("AEAD encryption failed")]
    AeadSeal,
    /// HPKE encapsulation or encryption failed.
    #[error("HPKE encryption failed")]
    HpkeSeal,
    /// HPKE decapsulation or decryption failed.
    #[error("HPKE decryption failed")]
    HpkeOpen,
    /// A KDF was asked for more output than it can produce, or got an invalid PRK.
    #[error("invalid KDF length or key")]
    KdfLength,
    /// The random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// A structure to be signed or verified could not be encoded (RFC 9420 §2.1.2 limits).
    #[error("signed content could not be encoded")]
    Encoding,
}

/// The output of a single-shot HPKE encryption (RFC 9180 §6.1, base mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HpkeSealed {
    /// The encapsulated key (`enc`).
    pub kem_output: Vec<u8>,
    /// The AEAD ciphertext, tag included.
    pub ciphertext: Vec<u8>,
}

/// One item of [`CryptoProvider::hpke_seal_to_many`]: `(public_key, plaintext)`.
pub type HpkeSealItem<'a> = (&'a [u8], &'a [u8]);

/// One item of [`CryptoProvider::verify_batch`]: `(public_key, message, signature)`.
pub type SignatureItem<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// The cryptographic primitives MLS needs, for each cipher suite (RFC 9420 §5.1).
///
/// Keys are passed in their wire (RFC 9420 §5.1.1) or `SerializePrivateKey` form. All
/// randomness used by any method comes from the provider itself, so a provider built from
/// a seed makes every operation reproducible.
pub trait CryptoProvider: Send + Sync {
    /// Whether every primitive of `suite` is available.
    fn supports(&self, suite: CipherSuite) -> bool;

    /// `Hash(data)` with the suite's hash function.
    fn hash(&self, suite: CipherSuite, data: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// `MAC(key, data)`: HMAC with the suite's hash function.
    fn mac(&self, suite: CipherSuite, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// `KDF.Extract(salt, ikm)`: HKDF-Extract with the suite's hash function.
    fn kdf_extract(
        &self,
        suite: CipherSuite,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<Secret, CryptoError>;
    /// `KDF.Expand(prk, info, len)`: HKDF-Expand with the suite's hash function.
    fn kdf_expand(
        &self,
        suite: CipherSuite,
        prk: &[u8],
        info: &[u8],
        len: usize,
    ) -> Result<Secret, CryptoError>;

    /// AEAD encryption with the suite's AEAD; the tag is appended to the ciphertext.
    fn aead_seal(
        &self,
        suite: CipherSuite,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// AEAD decryption with the suite's AEAD.
    fn aead_open(
        &self,
        suite: CipherSuite,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Secret, CryptoError>;

    /// Single-shot HPKE base-mode encryption to `public_key` (RFC 9180 §6.1).
    fn hpke_seal(
        &self,
        suite: CipherSuite,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<HpkeSealed, CryptoError>;
    /// Single-shot HPKE base-mode encryption of each `(public_key, plaintext)` item, all
    /// under one `info` and `aad`: the same as [`Self::hpke_seal`] on each item, results in
    /// item order, failing if any fails.
    ///
    /// The default seals one by one. The base-mode key schedule depends on `info` only
    /// through its hash (RFC 9180 §5.1), so a provider can hash it once for all items, which
    /// matters when `info` is large: a Welcome's is its encrypted GroupInfo, which carries
    /// the ratchet tree (RFC 9420 §12.4.3.1). [`crate::RustCrypto`] does that, and seals on
    /// all cores with the `parallel` feature.
    fn hpke_seal_to_many(
        &self,
        suite: CipherSuite,
        info: &[u8],
        aad: &[u8],
        items: &[HpkeSealItem<'_>],
    ) -> Result<Vec<HpkeSealed>, CryptoError> {
        items
            .iter()
            .map(|(public_key, plaintext)| self.hpke_seal(suite, public_key, info, aad, plaintext))
            .collect()
    }
    /// Single-shot HPKE base-mode decryption with `private_key` (RFC 9180 §6.1).
    fn hpke_open(
        &self,
        suite: CipherSuite,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Secret, CryptoError>;
    /// `SetupBaseS(public_key, info)` and `Export(exporter_context, length)` on the sender's
    /// context (RFC 9180 §5.1, §5.3); returns the encapsulated key and the exported secret.
    fn hpke_export_sender(
        &self,
        suite: CipherSuite,
        public_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        length: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError>;
    /// `SetupBaseR(kem_output, private_key, info)` and `Export(exporter_context, length)`
    /// (RFC 9180 §5.1, §5.3).
    fn hpke_export_receiver(
        &self,
        suite: CipherSuite,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        length: usize,
    ) -> Result<Secret, CryptoError>;
    /// `KEM.DeriveKeyPair(ikm)` (RFC 9180 §7.1.3).
    fn hpke_derive_key_pair(
        &self,
        suite: CipherSuite,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError>;
    /// A fresh random HPKE key pair for the suite's KEM.
    fn hpke_generate_key_pair(&self, suite: CipherSuite) -> Result<HpkeKeyPair, CryptoError>;
    /// The public key that belongs to an HPKE private key.
    fn hpke_public_key(
        &self,
        suite: CipherSuite,
        private_key: &HpkePrivateKey,
    ) -> Result<Vec<u8>, CryptoError>;

    /// A fresh random signature key pair for the suite's signature scheme.
    fn signature_generate_key_pair(
        &self,
        suite: CipherSuite,
    ) -> Result<SignatureKeyPair, CryptoError>;
    /// The public key that belongs to a signature private key.
    fn signature_public_key(
        &self,
        suite: CipherSuite,
        private_key: &SignaturePrivateKey,
    ) -> Result<Vec<u8>, CryptoError>;
    /// Signs `message` (EdDSA: the message itself; ECDSA: over its hash, DER-encoded).
    fn sign(
        &self,
        suite: CipherSuite,
        private_key: &SignaturePrivateKey,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError>;
    /// Verifies a signature made by [`CryptoProvider::sign`].
    fn verify(
        &self,
        suite: CipherSuite,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError>;

    /// Verifies several signatures at once: `Ok` exactly when [`CryptoProvider::verify`]
    /// accepts every `(public_key, message, signature)` item (an empty batch is `Ok`).
    ///
    /// A provider may use a faster batch equation, but it must never accept a batch holding
    /// an item that `verify` rejects, nor reject one where `verify` accepts them all: members
    /// verifying the same tree one way or the other must agree. On failure the error does not
    /// say which item failed; locate it with `verify`. The default verifies one by one.
    fn verify_batch(
        &self,
        suite: CipherSuite,
        items: &[SignatureItem<'_>],
    ) -> Result<(), CryptoError> {
        items
            .iter()
            .try_for_each(|(public_key, message, signature)| {
                self.verify(suite, public_key, message, signature)
            })
    }

    /// Fills `out` with cryptographically secure random bytes.
    fn random_bytes(&self, out: &mut [u8]) -> Result<(), CryptoError>;
}
