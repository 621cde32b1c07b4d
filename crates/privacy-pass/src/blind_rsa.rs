//! RSA blind signatures, RFC 9474, in the variant RFC 9578 §6 uses:
//! RSABSSA-SHA384-PSS-Deterministic (SHA-384, MGF1 with SHA-384, a 48-byte salt, and the
//! identity message preparation, §4.1).
//!
//! The raw RSA operations are RustCrypto's (`rsa::hazmat`: constant-time big integers,
//! the private operation blinded and checked); this module adds what RFC 9474 puts
//! around them: the PSS encoding of the message (RFC 8017 §9.1.1), the client's blinding
//! (§4.2) and unblinding (§4.4), and the signer's check (§4.3).

use crate::Error;
use crypto_bigint::{BoxedUint, NonZero, RandomMod};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

/// Hash output length of SHA-384, and the salt length (RFC 9578 §6: sLen = 48).
const H_LEN: usize = 48;
const S_LEN: usize = 48;

/// The modulus length in bytes of the keys this crate takes (RFC 9578 §6: 2048 bits).
pub const MODULUS_LEN: usize = 256;

/// A random number source for the blinding and the salt: the operating system's.
pub(crate) fn rng() -> getrandom::SysRng {
    getrandom::SysRng
}

/// MGF1 with SHA-384 (RFC 8017 §B.2.1).
fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + H_LEN);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut h = Sha384::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of `message` with `salt`, for a modulus of
/// `mod_bits` bits (emBits = mod_bits - 1).
fn emsa_pss_encode(message: &[u8], salt: &[u8; S_LEN], mod_bits: usize) -> Result<Vec<u8>, Error> {
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    if em_len < H_LEN + S_LEN + 2 {
        return Err(Error::Key);
    }
    let m_hash = Sha384::digest(message);
    let mut h = Sha384::new();
    h.update([0u8; 8]);
    h.update(m_hash);
    h.update(salt);
    let h = h.finalize();
    // DB = PS || 0x01 || salt, masked.
    let db_len = em_len - H_LEN - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - S_LEN - 1] = 0x01;
    db[db_len - S_LEN..].copy_from_slice(salt);
    for (b, m) in db.iter_mut().zip(mgf1(&h, db_len)) {
        *b ^= m;
    }
    // The leftmost 8·emLen − emBits bits are zero.
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let mut em = db;
    em.extend_from_slice(&h);
    em.push(0xbc);
    Ok(em)
}

fn to_uint(bytes: &[u8], key: &PublicKey) -> Result<BoxedUint, Error> {
    BoxedUint::from_be_slice(bytes, key.n_bits_precision()).map_err(|_| Error::Malformed)
}

/// `int_to_bytes(x, modulus_len)`.
fn to_bytes(x: &BoxedUint) -> Result<Vec<u8>, Error> {
    let bytes = x.to_be_bytes();
    if bytes.len() < MODULUS_LEN || bytes[..bytes.len() - MODULUS_LEN].iter().any(|b| *b != 0) {
        return Err(Error::Key);
    }
    Ok(bytes[bytes.len() - MODULUS_LEN..].to_vec())
}

fn modulus(key: &PublicKey) -> &NonZero<BoxedUint> {
    key.n()
}

/// The client's secret of one blinding: the inverse of its blind.
pub struct BlindInverse(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for BlindInverse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindInverse(..)")
    }
}

impl BlindInverse {
    /// Its bytes (`int_to_bytes(inv, modulus_len)`), to keep a pending request across a
    /// restart.
    pub fn to_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Back from [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != MODULUS_LEN {
            return Err(Error::Malformed);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }
}

/// Checks that `key` is one this crate signs or verifies with: 2048 bits.
pub(crate) fn check_key(key: &PublicKey) -> Result<(), Error> {
    if key.size() != MODULUS_LEN {
        return Err(Error::Key);
    }
    Ok(())
}

/// Blind (RFC 9474 §4.2): the blinded message to send to the signer, and the inverse of
/// the blind to finalize with.
pub fn blind(key: &PublicKey, message: &[u8]) -> Result<(Vec<u8>, BlindInverse), Error> {
    let mut salt = [0u8; S_LEN];
    getrandom::fill(&mut salt).map_err(|_| Error::Rng)?;
    let n = modulus(key);
    let mut rng = rng();
    loop {
        let r = BoxedUint::try_random_mod_vartime(&mut rng, n).map_err(|_| Error::Rng)?;
        if let Some(done) = blind_with(key, message, &salt, &r)? {
            return Ok(done);
        }
    }
}

/// [`blind`] with a given salt and blind `r`; `None` when `r` has no inverse (then the
/// caller draws another).
pub(crate) fn blind_with(
    key: &PublicKey,
    message: &[u8],
    salt: &[u8; S_LEN],
    r: &BoxedUint,
) -> Result<Option<(Vec<u8>, BlindInverse)>, Error> {
    check_key(key)?;
    let n = modulus(key);
    let encoded = emsa_pss_encode(message, salt, key.n().bit_width() as usize)?;
    let m = to_uint(&encoded, key)?;
    // §4.2 step 4: m must be invertible mod n (else it reveals a factor of n).
    if bool::from(m.invert_mod(n).is_none()) {
        return Err(Error::Key);
    }
    let Some(inv) = Option::<BoxedUint>::from(r.invert_mod(n)) else {
        return Ok(None);
    };
    // x = RSAVP1(pk, r) = r^e mod n; z = m · x mod n.
    let x = rsa::hazmat::rsa_encrypt(key, r).map_err(|_| Error::Key)?;
    let z = m.mul_mod(&x, n);
    Ok(Some((
        to_bytes(&z)?,
        BlindInverse(Zeroizing::new(to_bytes(&inv)?)),
    )))
}

/// BlindSign (RFC 9474 §4.3): the signer's private operation on a blinded message,
/// checked against the public key before it is returned.
pub fn blind_sign(key: &PrivateKey, blinded: &[u8]) -> Result<Vec<u8>, Error> {
    let public = key.to_public_key();
    check_key(&public)?;
    if blinded.len() != MODULUS_LEN {
        return Err(Error::Malformed);
    }
    let m = to_uint(blinded, &public)?;
    if m >= *public.n().as_ref() {
        return Err(Error::Malformed);
    }
    // RSASP1 with the crate's own base blinding, then RSAVP1 of the result must give m back
    // (§4.3 step 3; rsa_decrypt_and_check does exactly that comparison).
    let s = rsa::hazmat::rsa_decrypt_and_check(key, Some(&mut rng()), &m)
        .map_err(|_| Error::Signing)?;
    to_bytes(&s)
}

/// Finalize (RFC 9474 §4.4): unblinds the signer's answer and verifies it as an
/// RSASSA-PSS signature of `message`; the signature, or an error if the signer cheated.
pub fn finalize(
    key: &PublicKey,
    message: &[u8],
    blind_signature: &[u8],
    inverse: &BlindInverse,
) -> Result<Vec<u8>, Error> {
    check_key(key)?;
    if blind_signature.len() != MODULUS_LEN {
        return Err(Error::Malformed);
    }
    let n = modulus(key);
    let z = to_uint(blind_signature, key)?;
    let inv = to_uint(inverse.to_bytes(), key)?;
    let s = to_bytes(&z.mul_mod(&inv, n))?;
    verify(key, message, &s)?;
    Ok(s)
}

/// RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with SHA-384, MGF1-SHA-384 and a 48-byte salt.
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8]) -> Result<(), Error> {
    use rsa::signature::Verifier as _;
    check_key(key)?;
    let verifier = rsa::pss::VerifyingKey::<Sha384>::new_with_salt_len(key.clone(), S_LEN);
    let signature = rsa::pss::Signature::try_from(signature).map_err(|_| Error::BadSignature)?;
    verifier
        .verify(message, &signature)
        .map_err(|_| Error::BadSignature)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One 2048-bit key for the tests of this crate (generating one takes a while).
    pub(crate) fn key() -> &'static PrivateKey {
        static KEY: std::sync::OnceLock<PrivateKey> = std::sync::OnceLock::new();
        KEY.get_or_init(|| PrivateKey::new(&mut rng(), 2048).expect("key"))
    }

    #[test]
    fn blind_sign_finalize_verify() {
        let sk = key();
        let pk = sk.to_public_key();
        let (blinded, inv) = blind(&pk, b"message").expect("blind");
        assert_eq!(blinded.len(), MODULUS_LEN);
        let blind_sig = blind_sign(sk, &blinded).expect("sign");
        let sig = finalize(&pk, b"message", &blind_sig, &inv).expect("finalize");
        verify(&pk, b"message", &sig).expect("verify");
        assert!(matches!(
            verify(&pk, b"another", &sig),
            Err(Error::BadSignature)
        ));
        // The signer cannot hand back anything but the signature of the blinded message.
        let mut forged = blind_sig.clone();
        forged[100] ^= 1;
        assert!(finalize(&pk, b"message", &forged, &inv).is_err());
        // Two blindings of one message look unrelated to the signer.
        let (again, _) = blind(&pk, b"message").expect("blind");
        assert_ne!(again, blinded);
    }

    #[test]
    fn the_signer_refuses_what_is_not_a_blinded_message() {
        let sk = key();
        assert!(matches!(
            blind_sign(sk, &[0xff; 256]),
            Err(Error::Malformed)
        ));
        assert!(matches!(blind_sign(sk, &[1; 255]), Err(Error::Malformed)));
        assert!(matches!(blind_sign(sk, &[]), Err(Error::Malformed)));
    }

    #[test]
    fn pss_encoding_has_the_shape_of_rfc_8017() {
        let em = emsa_pss_encode(b"m", &[7; S_LEN], 2048).expect("encode");
        assert_eq!(em.len(), 256);
        assert_eq!(em[255], 0xbc);
        assert_eq!(em[0] & 0x80, 0);
    }
}
