//! The default [`CryptoProvider`]: pure-Rust RustCrypto primitives and the `hpke` crate.
//!
//! ```
//! use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto};
//! let provider = RustCrypto::default();
//! let suite = CipherSuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519;
//! assert_eq!(provider.hash(suite, b"abc").unwrap().len(), 32);
//! ```

mod hpke;
#[cfg(test)]
mod hpke_vectors;
mod rng;
mod signature;
mod symmetric;
mod x25519_kem;
mod x448_kem;

use super::{
    CipherSuite, CryptoError, CryptoProvider, HpkeKeyPair, HpkePrivateKey, HpkeSealItem,
    HpkeSealed, Secret, SignatureKeyPair, SignaturePrivateKey,
};
use rng::ProviderRng;

/// Every cipher suite of RFC 9420 (1–7) and the X-Wing suite, on RustCrypto.
///
/// [`RustCrypto::default`] draws randomness from the operating system;
/// [`RustCrypto::from_seed`] from a ChaCha20 stream, for reproducible tests.
#[derive(Debug, Default)]
pub struct RustCrypto {
    rng: ProviderRng,
    /// The last Ed25519 key that signed, with its public key.
    signing_key: signature::SigningKeyCache,
}

impl RustCrypto {
    /// A provider whose randomness is the ChaCha20 stream of `seed`: every operation becomes
    /// reproducible. Never use it outside tests.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            rng: ProviderRng::seeded(seed),
            signing_key: Default::default(),
        }
    }

    /// A fresh ChaCha20 generator seeded from this provider, for primitives that take an RNG.
    fn child_rng(&self) -> Result<rand_chacha::ChaCha20Rng, CryptoError> {
        self.rng.child()
    }
}

fn suite_error(suite: CipherSuite) -> CryptoError {
    CryptoError::UnsupportedCipherSuite(suite.0)
}

impl CryptoProvider for RustCrypto {
    fn supports(&self, suite: CipherSuite) -> bool {
        suite.is_known()
    }

    fn hash(&self, suite: CipherSuite, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(symmetric::hash(
            suite.hash().ok_or_else(|| suite_error(suite))?,
            data,
        ))
    }

    fn mac(&self, suite: CipherSuite, key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(symmetric::hmac(
            suite.hash().ok_or_else(|| suite_error(suite))?,
            key,
            data,
        ))
    }

    fn kdf_extract(
        &self,
        suite: CipherSuite,
        salt: &[u8],
        ikm: &[u8],
    ) -> Result<Secret, CryptoError> {
        Ok(symmetric::hkdf_extract(
            suite.hash().ok_or_else(|| suite_error(suite))?,
            salt,
            ikm,
        ))
    }

    fn kdf_expand(
        &self,
        suite: CipherSuite,
        prk: &[u8],
        info: &[u8],
        len: usize,
    ) -> Result<Secret, CryptoError> {
        symmetric::hkdf_expand(
            suite.hash().ok_or_else(|| suite_error(suite))?,
            prk,
            info,
            len,
        )
    }

    fn aead_seal(
        &self,
        suite: CipherSuite,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        symmetric::aead_seal(
            suite.aead().ok_or_else(|| suite_error(suite))?,
            key,
            nonce,
            aad,
            plaintext,
        )
    }

    fn aead_open(
        &self,
        suite: CipherSuite,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Secret, CryptoError> {
        symmetric::aead_open(
            suite.aead().ok_or_else(|| suite_error(suite))?,
            key,
            nonce,
            aad,
            ciphertext,
        )
    }

    fn hpke_seal(
        &self,
        suite: CipherSuite,
        public_key: &[u8],
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<HpkeSealed, CryptoError> {
        // One sealing path for one recipient or many: the key schedule checked against the
        // RFC 9180 vectors in `hpke_vectors`.
        let sealer = hpke::SharedInfoSealer::new(suite, info)?;
        let mut seed = zeroize::Zeroizing::new([[0u8; hpke::SEED_LEN]]);
        self.random_bytes(seed.as_flattened_mut())?;
        let mut sealed = sealer.seal_batch(&[(public_key, plaintext)], aad, seed.as_slice())?;
        sealed.pop().ok_or(CryptoError::HpkeSeal)
    }

    fn hpke_seal_to_many(
        &self,
        suite: CipherSuite,
        info: &[u8],
        aad: &[u8],
        items: &[HpkeSealItem<'_>],
    ) -> Result<Vec<HpkeSealed>, CryptoError> {
        let sealer = hpke::SharedInfoSealer::new(suite, info)?;
        // Every item's random bytes in one draw, in item order before any thread starts, so
        // a seeded provider stays reproducible whatever the scheduling (and the OS is asked
        // once, not once per member).
        let mut seeds = zeroize::Zeroizing::new(vec![[0u8; hpke::SEED_LEN]; items.len()]);
        self.random_bytes(seeds.as_flattened_mut())?;
        // Batches small enough to spread over the cores, large enough that the ephemeral
        // keys' shared inversion saves nearly one inversion per seal.
        const BATCH: usize = 64;
        let seal = |(items, seeds): (&[HpkeSealItem<'_>], &[[u8; hpke::SEED_LEN]])| {
            sealer.seal_batch(items, aad, seeds)
        };
        #[cfg(feature = "parallel")]
        let batches: Vec<_> = {
            use rayon::prelude::*;
            items
                .par_chunks(BATCH)
                .zip(seeds.par_chunks(BATCH))
                .map(seal)
                .collect::<Result<_, _>>()?
        };
        #[cfg(not(feature = "parallel"))]
        let batches: Vec<_> = items
            .chunks(BATCH)
            .zip(seeds.chunks(BATCH))
            .map(seal)
            .collect::<Result<_, _>>()?;
        Ok(batches.into_iter().flatten().collect())
    }

    fn hpke_open(
        &self,
        suite: CipherSuite,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Secret, CryptoError> {
        hpke::open(suite, private_key, kem_output, info, aad, ciphertext)
    }

    fn hpke_export_sender(
        &self,
        suite: CipherSuite,
        public_key: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        length: usize,
    ) -> Result<(Vec<u8>, Secret), CryptoError> {
        let mut rng = self.child_rng()?;
        hpke::export_sender(suite, public_key, info, exporter_context, length, &mut rng)
    }

    fn hpke_export_receiver(
        &self,
        suite: CipherSuite,
        private_key: &HpkePrivateKey,
        kem_output: &[u8],
        info: &[u8],
        exporter_context: &[u8],
        length: usize,
    ) -> Result<Secret, CryptoError> {
        hpke::export_receiver(
            suite,
            private_key,
            kem_output,
            info,
            exporter_context,
            length,
        )
    }

    fn hpke_derive_key_pair(
        &self,
        suite: CipherSuite,
        ikm: &[u8],
    ) -> Result<HpkeKeyPair, CryptoError> {
        hpke::derive_key_pair(suite, ikm)
    }

    fn hpke_generate_key_pair(&self, suite: CipherSuite) -> Result<HpkeKeyPair, CryptoError> {
        let kem = suite.kem().ok_or_else(|| suite_error(suite))?;
        let mut ikm = Secret::zero(kem.private_key_len());
        self.random_bytes(ikm.as_mut_bytes())?;
        hpke::derive_key_pair(suite, ikm.as_bytes())
    }

    fn hpke_public_key(
        &self,
        suite: CipherSuite,
        private_key: &HpkePrivateKey,
    ) -> Result<Vec<u8>, CryptoError> {
        hpke::public_key(suite, private_key)
    }

    fn signature_generate_key_pair(
        &self,
        suite: CipherSuite,
    ) -> Result<SignatureKeyPair, CryptoError> {
        let mut rng = self.child_rng()?;
        signature::generate(suite, &mut rng)
    }

    fn signature_public_key(
        &self,
        suite: CipherSuite,
        private_key: &SignaturePrivateKey,
    ) -> Result<Vec<u8>, CryptoError> {
        signature::public_key(suite, private_key)
    }

    fn sign(
        &self,
        suite: CipherSuite,
        private_key: &SignaturePrivateKey,
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        signature::sign(suite, private_key, message, &self.signing_key)
    }

    fn verify(
        &self,
        suite: CipherSuite,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        signature::verify(suite, public_key, message, signature)
    }

    /// Ed25519 uses a batch equation, restricted to items on which it provably agrees with
    /// the strict individual check (see `signature::ed25519::verify_batch`); other schemes
    /// verify one by one. The subgroup checks make the Ed25519 batch about twice as slow as
    /// verifying one by one (two scalar multiplications by ℓ per item); it is sound, not fast.
    fn verify_batch(
        &self,
        suite: CipherSuite,
        items: &[super::SignatureItem<'_>],
    ) -> Result<(), CryptoError> {
        signature::verify_batch(suite, items)
    }

    fn random_bytes(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.rng.fill(out)
    }
}
