//! Signature schemes: Ed25519, Ed448 (RFC 8032, pure, empty context) and ECDSA over P-256,
//! P-384 and P-521 with SHA-256, SHA-384 and SHA-512.
//!
//! Encodings follow RFC 9420 §5.1.1–5.1.2: EdDSA public keys are the raw RFC 8032 encoding,
//! ECDSA public keys the SEC1 uncompressed point; ECDSA signatures are DER `Ecdsa-Sig-Value`.
//! Private keys are the raw EdDSA seed (32 or 57 bytes) or the big-endian ECDSA scalar.

use super::super::{
    CipherSuite, CryptoError, SignatureKeyPair, SignaturePrivateKey, SignatureScheme,
};
use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

const ED25519_SEED_LEN: usize = 32;
const ED448_SEED_LEN: usize = 57;

fn scheme(suite: CipherSuite) -> Result<SignatureScheme, CryptoError> {
    suite
        .signature()
        .ok_or(CryptoError::UnsupportedCipherSuite(suite.0))
}

/// Implements the ECDSA operations for one curve crate (`p256`, `p384`, `p521`); each crate's
/// `Signer`/`Verifier` hashes with the curve's RFC 9420 hash (SHA-256/384/512).
macro_rules! ecdsa_curve {
    ($module:ident, $curve:ident, $scalar_len:literal) => {
        mod $module {
            use super::super::super::{CryptoError, SignatureKeyPair, SignaturePrivateKey};
            use $curve::ecdsa::signature::{Signer, Verifier};
            use $curve::ecdsa::{Signature, SigningKey, VerifyingKey};
            use $curve::elliptic_curve::Generate;
            use $curve::elliptic_curve::sec1::ToSec1Point;

            /// The length of a scalar (and of a field element) in bytes.
            const SCALAR_LEN: usize = $scalar_len;

            fn signing_key(private_key: &[u8]) -> Result<SigningKey, CryptoError> {
                // The big-endian scalar, in its fixed field-size form or as a minimal integer
                // (other implementations strip leading zero bytes: a P-521 scalar may be 65
                // bytes). Shorter forms are left-padded; anything longer is refused.
                if private_key.is_empty() || private_key.len() > SCALAR_LEN {
                    return Err(CryptoError::InvalidKey);
                }
                let mut padded = zeroize::Zeroizing::new([0u8; SCALAR_LEN]);
                padded[SCALAR_LEN - private_key.len()..].copy_from_slice(private_key);
                SigningKey::from_slice(padded.as_ref()).map_err(|_| CryptoError::InvalidKey)
            }

            fn encode_public(key: &VerifyingKey) -> Vec<u8> {
                key.as_affine().to_sec1_point(false).as_bytes().to_vec()
            }

            pub(super) fn generate(rng: &mut rand_chacha::ChaCha20Rng) -> SignatureKeyPair {
                let key = SigningKey::generate_from_rng(rng);
                let scalar = zeroize::Zeroizing::new(key.to_bytes());
                SignatureKeyPair {
                    private_key: SignaturePrivateKey::from_slice(&scalar),
                    public_key: encode_public(key.verifying_key()),
                }
            }

            pub(super) fn public_key(private_key: &[u8]) -> Result<Vec<u8>, CryptoError> {
                Ok(encode_public(signing_key(private_key)?.verifying_key()))
            }

            /// Deterministic ECDSA (RFC 6979), DER-encoded.
            pub(super) fn sign(private_key: &[u8], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
                let signature: Signature = signing_key(private_key)?
                    .try_sign(message)
                    .map_err(|_| CryptoError::InvalidKey)?;
                Ok(signature.to_der().as_bytes().to_vec())
            }

            pub(super) fn verify(
                public_key: &[u8],
                message: &[u8],
                signature: &[u8],
            ) -> Result<(), CryptoError> {
                // RFC 9420 §5.1.1: the uncompressed form only (0x04 || X || Y).
                if public_key.len() != 1 + 2 * SCALAR_LEN || public_key.first() != Some(&0x04) {
                    return Err(CryptoError::InvalidKey);
                }
                let key = VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| CryptoError::InvalidKey)?;
                let signature =
                    Signature::from_der(signature).map_err(|_| CryptoError::InvalidSignature)?;
                key.verify(message, &signature)
                    .map_err(|_| CryptoError::InvalidSignature)
            }
        }
    };
}

ecdsa_curve!(ecdsa_p256, p256, 32);
ecdsa_curve!(ecdsa_p384, p384, 48);
ecdsa_curve!(ecdsa_p521, p521, 66);

mod ed25519 {
    use super::super::super::CryptoError;
    use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

    fn signing_key(private_key: &[u8]) -> Result<SigningKey, CryptoError> {
        let seed: &[u8; super::ED25519_SEED_LEN] = private_key
            .try_into()
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(SigningKey::from_bytes(seed))
    }

    pub(super) fn public_key(private_key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(signing_key(private_key)?
            .verifying_key()
            .to_bytes()
            .to_vec())
    }

    /// The last Ed25519 key that signed, kept by the provider: the private key is the
    /// RFC 8032 seed, from which `SigningKey::from_bytes` derives the public key `A` that
    /// every signature hashes (§5.1.6), a fixed-base multiplication that was two fifths of a
    /// signature, and a member signs every message with the same key. The key is compared in
    /// constant time and zeroized when replaced or dropped (`SigningKey` is ZeroizeOnDrop).
    #[derive(Default)]
    pub(in super::super) struct SigningKeyCache(std::sync::Mutex<Option<SigningKey>>);

    impl core::fmt::Debug for SigningKeyCache {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("SigningKeyCache")
        }
    }

    impl SigningKeyCache {
        /// The signing key of `private_key`, from the cache when it is the last one used.
        fn get(&self, private_key: &[u8]) -> Result<SigningKey, CryptoError> {
            use subtle::ConstantTimeEq;
            // A poisoned lock only means another thread panicked while holding it; the
            // cached key is a valid key either way.
            let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some(key) if bool::from(key.as_bytes().as_slice().ct_eq(private_key)) => {
                    Ok(key.clone())
                }
                _ => Ok(slot.insert(signing_key(private_key)?).clone()),
            }
        }
    }

    pub(super) fn sign(
        cache: &SigningKeyCache,
        private_key: &[u8],
        message: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        use ed25519_dalek::Signer;
        // Signed outside the lock: concurrent signers do not wait for each other.
        Ok(cache.get(private_key)?.sign(message).to_bytes().to_vec())
    }

    /// Strict verification (`verify_strict`): rejects small-order public keys and `R`
    /// components and non-canonical encodings, so that whether a signature is accepted does
    /// not depend on the verifier (ZIP-215 vs. cofactored vs. cofactorless). MLS members must
    /// all agree on the validity of a commit, and a later batch verifier must accept exactly
    /// the signatures that this individual check accepts; strict mode is the conservative
    /// common ground.
    ///
    /// Computed without `verify_strict`'s decompression of `R`, which costs a field square
    /// root per signature (a sixth of the whole check): both checks compare the canonical
    /// encoding of `[s]B - [k]A` with the bytes of `R`, so once the plain equation holds `R`
    /// is a canonical point encoding, and it is a small-order point exactly when it is one of
    /// the eight canonical encodings of the 8-torsion points. A small-order `A` is refused
    /// as `verify_strict` does. `strict_verdict_at_plain_cost` checks the two agree.
    pub(super) fn verify(
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        use ed25519_dalek::Verifier;
        let public_key: &[u8; 32] = public_key.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| CryptoError::InvalidKey)?;
        let signature =
            Signature::from_slice(signature).map_err(|_| CryptoError::InvalidSignature)?;
        if key.is_weak() || small_order_encodings().contains(signature.r_bytes()) {
            return Err(CryptoError::InvalidSignature);
        }
        key.verify(message, &signature)
            .map_err(|_| CryptoError::InvalidSignature)
    }

    /// The canonical encodings of the eight points of order dividing 8.
    fn small_order_encodings() -> &'static [[u8; 32]; 8] {
        static ENCODINGS: std::sync::OnceLock<[[u8; 32]; 8]> = std::sync::OnceLock::new();
        ENCODINGS.get_or_init(|| {
            curve25519_dalek::constants::EIGHT_TORSION.map(|p| p.compress().to_bytes())
        })
    }

    /// Whether the batch equation decides `(key, signature)` exactly as [`verify`] does:
    /// `S` is canonical (`< ℓ`), `R` is the canonical encoding of a point, and both `R` and
    /// the public key `A` are non-identity points of the prime-order subgroup (so neither
    /// has a small-order or mixed-order torsion component).
    fn batchable(key: &VerifyingKey, signature: &Signature) -> bool {
        use curve25519_dalek::edwards::CompressedEdwardsY;
        use curve25519_dalek::scalar::Scalar;
        use curve25519_dalek::traits::IsIdentity;
        if Option::<Scalar>::from(Scalar::from_canonical_bytes(*signature.s_bytes())).is_none() {
            return false;
        }
        let r_bytes = CompressedEdwardsY(*signature.r_bytes());
        let Some(r) = r_bytes.decompress() else {
            return false;
        };
        let a = key.to_edwards();
        r.compress() == r_bytes
            && !r.is_identity()
            && !a.is_identity()
            && r.is_torsion_free()
            && a.is_torsion_free()
    }

    /// Batch verification that accepts exactly the batches in which [`verify`] (strict)
    /// accepts every item.
    ///
    /// Items that are not [`batchable`] are verified one by one with [`verify`]. The rest go
    /// through ed25519-dalek's batch equation `[-Σ zᵢsᵢ]B + Σ zᵢRᵢ + Σ (zᵢhᵢ)Aᵢ = 0`, with
    /// 128-bit `zᵢ` derived from a transcript of every signature and `hᵢ`. Writing
    /// `Eᵢ = [sᵢ]B - Rᵢ - [hᵢ]Aᵢ`, strict verification accepts item `i` iff `Eᵢ = 0` (`R` is
    /// canonical, so comparing encodings is comparing points), and the batch accepts iff
    /// `Σ zᵢEᵢ = 0`. If every `Eᵢ` is zero the batch accepts. Because `B`, `Rᵢ` and `Aᵢ` are
    /// in the prime-order subgroup, so is every `Eᵢ`, and a non-zero one cancels only if
    /// the `zᵢ` hit one value mod ℓ: probability about 2^-128 per try, with the `zᵢ` fixed by
    /// the inputs. The torsion checks are what rule out the known gap: a torsion `Eᵢ` that
    /// vanishes for `zᵢ ≡ 0 mod 8`, which would let the batch accept what strict rejects.
    pub(super) fn verify_batch(
        items: &[super::super::super::SignatureItem<'_>],
    ) -> Result<(), CryptoError> {
        let mut keys = Vec::with_capacity(items.len());
        let mut signatures = Vec::with_capacity(items.len());
        let mut messages: Vec<&[u8]> = Vec::with_capacity(items.len());
        for &(public_key, message, signature) in items {
            let bytes: &[u8; 32] = public_key.try_into().map_err(|_| CryptoError::InvalidKey)?;
            let key = VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey)?;
            let sig =
                Signature::from_slice(signature).map_err(|_| CryptoError::InvalidSignature)?;
            if batchable(&key, &sig) {
                keys.push(key);
                signatures.push(sig);
                messages.push(message);
            } else {
                verify(public_key, message, signature)?;
            }
        }
        if keys.is_empty() {
            return Ok(());
        }
        ed25519_dalek::verify_batch(&messages, &signatures, &keys)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

mod ed448 {
    use super::super::super::CryptoError;
    use ed448_goldilocks::{Signature, SigningKey, VerifyingKey};

    fn signing_key(private_key: &[u8]) -> Result<SigningKey, CryptoError> {
        if private_key.len() != super::ED448_SEED_LEN {
            return Err(CryptoError::InvalidKey);
        }
        SigningKey::try_from(private_key).map_err(|_| CryptoError::InvalidKey)
    }

    pub(super) fn public_key(private_key: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(signing_key(private_key)?
            .verifying_key()
            .to_bytes()
            .to_vec())
    }

    /// Pure Ed448 with an empty context (RFC 8032 §5.2; RFC 9420 uses no context).
    pub(super) fn sign(private_key: &[u8], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(signing_key(private_key)?
            .sign_raw(message)
            .to_bytes()
            .to_vec())
    }

    pub(super) fn verify(
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let public_key: &[u8; 57] = public_key.try_into().map_err(|_| CryptoError::InvalidKey)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| CryptoError::InvalidKey)?;
        let signature =
            Signature::from_slice(signature).map_err(|_| CryptoError::InvalidSignature)?;
        key.verify_raw(&signature, message)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

/// Verifies every `(public_key, message, signature)` item; `Ok` exactly when [`verify`]
/// accepts each one. Ed25519 batches (see `ed25519::verify_batch`), the rest one by one.
pub(super) fn verify_batch(
    suite: CipherSuite,
    items: &[super::super::SignatureItem<'_>],
) -> Result<(), CryptoError> {
    match scheme(suite)? {
        SignatureScheme::Ed25519 => ed25519::verify_batch(items),
        _ => items
            .iter()
            .try_for_each(|&(public_key, message, signature)| {
                verify(suite, public_key, message, signature)
            }),
    }
}

/// A fresh key pair: a random seed for EdDSA, a random non-zero scalar for ECDSA.
pub(super) fn generate(
    suite: CipherSuite,
    rng: &mut ChaCha20Rng,
) -> Result<SignatureKeyPair, CryptoError> {
    let seed_len = match scheme(suite)? {
        SignatureScheme::Ed25519 => ED25519_SEED_LEN,
        SignatureScheme::Ed448 => ED448_SEED_LEN,
        SignatureScheme::EcdsaP256Sha256 => return Ok(ecdsa_p256::generate(rng)),
        SignatureScheme::EcdsaP384Sha384 => return Ok(ecdsa_p384::generate(rng)),
        SignatureScheme::EcdsaP521Sha512 => return Ok(ecdsa_p521::generate(rng)),
    };
    let mut seed = vec![0u8; seed_len];
    rng.fill_bytes(&mut seed);
    let private_key = SignaturePrivateKey::new(seed);
    let public_key = public_key(suite, &private_key)?;
    Ok(SignatureKeyPair {
        private_key,
        public_key,
    })
}

/// The RFC 9420 §5.1.1 public key of a private key.
pub(super) fn public_key(
    suite: CipherSuite,
    private_key: &SignaturePrivateKey,
) -> Result<Vec<u8>, CryptoError> {
    let sk = private_key.as_bytes();
    match scheme(suite)? {
        SignatureScheme::Ed25519 => ed25519::public_key(sk),
        SignatureScheme::Ed448 => ed448::public_key(sk),
        SignatureScheme::EcdsaP256Sha256 => ecdsa_p256::public_key(sk),
        SignatureScheme::EcdsaP384Sha384 => ecdsa_p384::public_key(sk),
        SignatureScheme::EcdsaP521Sha512 => ecdsa_p521::public_key(sk),
    }
}

pub(super) use ed25519::SigningKeyCache;

/// Signs `message`; Ed25519 keys go through the provider's `cache`. EdDSA is deterministic
/// by definition and ECDSA uses RFC 6979 nonces, so no randomness is drawn.
pub(super) fn sign(
    suite: CipherSuite,
    private_key: &SignaturePrivateKey,
    message: &[u8],
    cache: &SigningKeyCache,
) -> Result<Vec<u8>, CryptoError> {
    let sk = private_key.as_bytes();
    match scheme(suite)? {
        SignatureScheme::Ed25519 => ed25519::sign(cache, sk, message),
        SignatureScheme::Ed448 => ed448::sign(sk, message),
        SignatureScheme::EcdsaP256Sha256 => ecdsa_p256::sign(sk, message),
        SignatureScheme::EcdsaP384Sha384 => ecdsa_p384::sign(sk, message),
        SignatureScheme::EcdsaP521Sha512 => ecdsa_p521::sign(sk, message),
    }
}

/// Verifies `signature` on `message`; a malformed key gives [`CryptoError::InvalidKey`], a
/// malformed or wrong signature [`CryptoError::InvalidSignature`].
pub(super) fn verify(
    suite: CipherSuite,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    match scheme(suite)? {
        SignatureScheme::Ed25519 => ed25519::verify(public_key, message, signature),
        SignatureScheme::Ed448 => ed448::verify(public_key, message, signature),
        SignatureScheme::EcdsaP256Sha256 => ecdsa_p256::verify(public_key, message, signature),
        SignatureScheme::EcdsaP384Sha384 => ecdsa_p384::verify(public_key, message, signature),
        SignatureScheme::EcdsaP521Sha512 => ecdsa_p521::verify(public_key, message, signature),
    }
}

/// The provider's signing-key cache gives the signature of the key it is asked for, whichever
/// key signed last.
#[cfg(test)]
mod cache_tests {
    use super::super::super::{CipherSuite, SignaturePrivateKey};
    use super::{SigningKeyCache, sign, verify};
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn signs_with_the_key_asked_for() {
        let suite = CipherSuite(1);
        let cache = SigningKeyCache::default();
        let seeds = [
            [1u8; 32], [2u8; 32], [1u8; 32], [1u8; 32], [3u8; 32], [2u8; 32],
        ];
        for (i, seed) in seeds.iter().enumerate() {
            let message = [i as u8; 40];
            let key = SigningKey::from_bytes(seed);
            let ours = sign(
                suite,
                &SignaturePrivateKey::from_slice(seed),
                &message,
                &cache,
            )
            .expect("sign");
            assert_eq!(ours, key.sign(&message).to_bytes().to_vec());
            verify(suite, key.verifying_key().as_bytes(), &message, &ours).expect("verifies");
        }
    }
}

/// The batch path of Ed25519 must accept exactly what strict one-by-one verification does,
/// including on keys and signatures built to sit in the gap between the two equations.
#[cfg(test)]
mod batch_tests {
    use super::super::super::{CipherSuite, CryptoError, SignatureItem};
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    const SUITE: CipherSuite = CipherSuite(1);

    fn challenge(r: &EdwardsPoint, a: &EdwardsPoint, message: &[u8]) -> Scalar {
        let mut h = Sha512::new();
        h.update(r.compress().as_bytes());
        h.update(a.compress().as_bytes());
        h.update(message);
        let wide: [u8; 64] = h.finalize().into();
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    /// A hand-made Ed25519 signature with public key `A = [a]B + T` and nonce point
    /// `R = [r]B`: `s = r + h·a`. With a torsion `T`, strict verification holds iff
    /// `[h]T = 0`.
    fn forge(a: u64, torsion: usize, r: u64, message: &[u8]) -> (Vec<u8>, Vec<u8>, Scalar) {
        let (a, r) = (Scalar::from(a), Scalar::from(r));
        let big_a = B * a + EIGHT_TORSION[torsion];
        let big_r = B * r;
        let h = challenge(&big_r, &big_a, message);
        let s = r + h * a;
        let sig = [big_r.compress().to_bytes(), s.to_bytes()].concat();
        (big_a.compress().to_bytes().to_vec(), sig, h)
    }

    fn one_by_one(items: &[SignatureItem<'_>]) -> Result<(), CryptoError> {
        items
            .iter()
            .try_for_each(|&(k, m, s)| super::verify(SUITE, k, m, s))
    }

    /// Honest signatures from the provider, as batch padding.
    fn honest(n: u32) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        use super::super::super::CryptoProvider;
        let p = super::super::RustCrypto::from_seed([9; 32]);
        (0..n)
            .map(|i| {
                let k = p.signature_generate_key_pair(SUITE).unwrap();
                let m = i.to_be_bytes().to_vec();
                let s = p.sign(SUITE, &k.private_key, &m).unwrap();
                (k.public_key, m, s)
            })
            .collect()
    }

    fn agree(extra: &[(Vec<u8>, Vec<u8>, Vec<u8>)]) -> Result<(), CryptoError> {
        let mut all = honest(5);
        all.extend_from_slice(extra);
        let items: Vec<SignatureItem<'_>> = all
            .iter()
            .map(|(k, m, s)| (k.as_slice(), m.as_slice(), s.as_slice()))
            .collect();
        let batch = super::verify_batch(SUITE, &items);
        assert_eq!(batch.is_ok(), one_by_one(&items).is_ok());
        batch
    }

    #[test]
    fn honest_batch_verifies() {
        assert_eq!(agree(&[]), Ok(()));
        assert_eq!(super::verify_batch(SUITE, &[]), Ok(()));
    }

    #[test]
    fn tampered_message_is_rejected() {
        let mut bad = honest(1);
        bad[0].1.push(0);
        assert!(agree(&bad).is_err());
    }

    /// The identity key with `R = identity`, `s = 0` satisfies the equation for every
    /// message; strict verification rejects the small-order key, and so must the batch.
    #[test]
    fn small_order_key_is_rejected() {
        let identity = EdwardsPoint::default().compress().to_bytes();
        let sig = [identity, [0; 32]].concat();
        for t in [0, 1, 2, 4] {
            let key = EIGHT_TORSION[t].compress().to_bytes().to_vec();
            assert!(agree(&[(key, b"anything".to_vec(), sig.clone())]).is_err());
        }
    }

    /// `s + ℓ` still satisfies the (mod ℓ) equation, but is not canonical.
    #[test]
    fn non_canonical_s_is_rejected() {
        let (key, mut sig, _) = forge(12345, 0, 777, b"msg");
        assert_eq!(
            agree(&[(key.clone(), b"msg".to_vec(), sig.clone())]),
            Ok(())
        );
        // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
        let ell: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (b, l) in sig[32..].iter_mut().zip(ell) {
            let v = u16::from(*b) + u16::from(l) + carry;
            *b = v as u8;
            carry = v >> 8;
        }
        assert!(agree(&[(key, b"msg".to_vec(), sig)]).is_err());
    }

    /// A mixed-order key (`[a]B` plus an 8-torsion point): strict verification accepts a
    /// signature exactly when `[h]T = 0`. With `h ≢ 0 mod 8` the error term is a torsion
    /// point that the plain batch equation misses whenever its random `z ≡ 0 mod 8`; the
    /// batch path must reject it every time, and accept the `h ≡ 0 mod 8` one.
    #[test]
    fn mixed_order_key_agrees_with_strict() {
        let (mut accepted, mut rejected, mut plain_batch_gap) = (0, 0, 0);
        for r in 1..200u64 {
            let message = r.to_be_bytes().to_vec();
            let (key, sig, h) = forge(4242, 1, r, &message);
            let strict = super::verify(SUITE, &key, &message, &sig).is_ok();
            assert_eq!(strict, h.as_bytes()[0] % 8 == 0);
            // The unguarded batch equation, to show the gap is real.
            let vk =
                ed25519_dalek::VerifyingKey::from_bytes(&key.clone().try_into().unwrap()).unwrap();
            let ds = ed25519_dalek::Signature::from_slice(&sig).unwrap();
            let plain = ed25519_dalek::verify_batch(&[&message[..]], &[ds], &[vk]).is_ok();
            if plain && !strict {
                plain_batch_gap += 1;
            }
            let batch = agree(&[(key, message, sig)]);
            assert_eq!(batch.is_ok(), strict);
            if strict {
                accepted += 1;
            } else {
                rejected += 1;
            }
        }
        assert!(accepted > 0 && rejected > 0);
        assert!(
            plain_batch_gap > 0,
            "the plain batch never disagreed with strict"
        );
    }

    /// The fast strict check decides like ed25519-dalek's `verify_strict` on honest
    /// signatures, tampered ones, mixed-order keys, small-order keys, small-order and
    /// mixed-order `R`.
    #[test]
    fn strict_verdict_at_plain_cost() {
        let strict = |k: &[u8], m: &[u8], s: &[u8]| {
            let vk = ed25519_dalek::VerifyingKey::from_bytes(k.try_into().unwrap()).ok();
            let sig = ed25519_dalek::Signature::from_slice(s).ok();
            matches!((vk, sig), (Some(vk), Some(sig)) if vk.verify_strict(m, &sig).is_ok())
        };
        let mut cases = honest(3);
        cases[2].1.push(1);
        for (t, torsion) in EIGHT_TORSION.iter().enumerate() {
            for r in 1..12u64 {
                let m = r.to_be_bytes().to_vec();
                let (k, s, _) = forge(31 + r, t, r, &m);
                cases.push((k, m, s));
            }
            // Small-order key with an identity R and s = 0: the equation holds for any
            // message.
            let key = torsion.compress().to_bytes().to_vec();
            let identity = EdwardsPoint::default().compress().to_bytes();
            cases.push((key, b"x".to_vec(), [identity, [0; 32]].concat()));
            // Small-order R = T with a prime-order key: valid under the plain equation only
            // for T = identity (s = h·a).
            let a = Scalar::from(7u64 + t as u64);
            let big_a = B * a;
            let big_r = *torsion;
            let h = challenge(&big_r, &big_a, b"y");
            let sig = [big_r.compress().to_bytes(), (h * a).to_bytes()].concat();
            cases.push((big_a.compress().to_bytes().to_vec(), b"y".to_vec(), sig));
        }
        let mut accepted = 0;
        for (k, m, s) in &cases {
            let ours = super::verify(SUITE, k, m, s).is_ok();
            assert_eq!(ours, strict(k, m, s));
            accepted += usize::from(ours);
        }
        assert!(accepted > 2 && accepted < cases.len());
    }

    /// A torsion component in `R` instead of the key: `R = [r]B + T` breaks the strict
    /// equation by the torsion point `T` alone.
    #[test]
    fn mixed_order_r_is_rejected() {
        let a = Scalar::from(99u64);
        let big_a = B * a;
        let big_r = B * Scalar::from(5u64) + EIGHT_TORSION[4];
        let h = challenge(&big_r, &big_a, b"m");
        let s = Scalar::from(5u64) + h * a;
        let sig = [big_r.compress().to_bytes(), s.to_bytes()].concat();
        let key = big_a.compress().to_bytes().to_vec();
        assert!(agree(&[(key, b"m".to_vec(), sig)]).is_err());
    }
}
