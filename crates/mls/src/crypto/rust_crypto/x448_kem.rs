//! DHKEM(X448, HKDF-SHA512), KEM id 0x0021 (RFC 9180 §4.1, §7.1), on the `x448` crate.
//!
//! The `hpke` crate has no X448, so this module implements its [`Kem`] trait; the crate's
//! generic key schedule, AEAD contexts and single-shot API then work with it unchanged.

use super::super::HashAlgorithm;
use super::symmetric;
use ::hpke::hybrid_array::typenum::{U56, U64};
use ::hpke::kem::SharedSecret;
use ::hpke::rand_core::CryptoRng;
use ::hpke::{Deserializable, HpkeError, Kem, Serializable};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `Ndh`, `Npk`, `Nsk` and `Nenc` of DHKEM(X448): all 56 bytes (RFC 9180 §7.1, Table 2).
const N: usize = 56;
/// `Nsecret` of DHKEM(X448, HKDF-SHA512): the output length of SHA-512.
const N_SECRET: usize = 64;
/// `suite_id = concat("KEM", I2OSP(kem_id, 2))` (RFC 9180 §4.1).
const SUITE_ID: &[u8] = b"KEM\x00\x21";
const VERSION_LABEL: &[u8] = b"HPKE-v1";

/// DHKEM(X448, HKDF-SHA512) for the `hpke` crate's generic API.
#[derive(Debug, Clone, Copy)]
pub(super) struct X448HkdfSha512;

/// An X448 public key: the 56-byte little-endian u-coordinate (RFC 7748 §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct PublicKey([u8; N]);

/// An X448 private key, kept clamped: RFC 9180 §7.1.2 says `SerializePrivateKey` MUST clamp
/// its output and `DeserializePrivateKey` MUST clamp its input.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(super) struct PrivateKey([u8; N]);

/// The encapsulated key: the sender's ephemeral public key.
#[derive(Clone, Debug)]
pub(super) struct EncappedKey(PublicKey);

fn clamp(mut bytes: [u8; N]) -> [u8; N] {
    // RFC 7748 §5, decodeScalar448.
    bytes[0] &= 252;
    bytes[N - 1] |= 128;
    bytes
}

fn to_array(bytes: &[u8]) -> Result<[u8; N], HpkeError> {
    bytes
        .try_into()
        .map_err(|_| HpkeError::IncorrectInputLength(N, bytes.len()))
}

impl Serializable for PublicKey {
    type OutputSize = U56;
    fn write_exact(&self, buf: &mut [u8]) {
        // The trait requires `buf.len() == Self::size()` and lets us panic otherwise; the
        // crate only ever calls this with a buffer of that size.
        buf.copy_from_slice(&self.0);
    }
}

impl Deserializable for PublicKey {
    /// Accepts any 56-byte u-coordinate except the low-order points, whose Diffie-Hellman
    /// output would be all zeros (RFC 7748 §6.2, RFC 9180 §7.1.4).
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let bytes = to_array(encoded)?;
        if x448::PublicKey::from_bytes(&bytes).is_none() {
            return Err(HpkeError::ValidationError);
        }
        Ok(Self(bytes))
    }
}

impl Serializable for PrivateKey {
    type OutputSize = U56;
    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let mut bytes = to_array(encoded)?;
        let key = Self(clamp(bytes));
        bytes.zeroize();
        Ok(key)
    }
}

impl ConstantTimeEq for PrivateKey {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl Serializable for EncappedKey {
    type OutputSize = U56;
    fn write_exact(&self, buf: &mut [u8]) {
        self.0.write_exact(buf);
    }
}

impl Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        PublicKey::from_bytes(encoded).map(Self)
    }
}

/// `DH(sk, pk)`, rejecting an all-zero output (RFC 9180 §7.1.4).
fn dh(sk: &PrivateKey, pk: &PublicKey) -> Option<zeroize::Zeroizing<[u8; N]>> {
    let out = zeroize::Zeroizing::new(x448::x448(sk.0, pk.0)?);
    let all_zero: bool = out.ct_eq(&[0u8; N]).into();
    (!all_zero).then_some(out)
}

/// `LabeledExtract(salt, label, ikm)` (RFC 9180 §4) with the KEM's suite id.
fn labeled_extract(salt: &[u8], label: &[u8], ikm: &[u8]) -> super::super::Secret {
    let labeled_ikm = zeroize::Zeroizing::new([VERSION_LABEL, SUITE_ID, label, ikm].concat());
    symmetric::hkdf_extract(HashAlgorithm::Sha512, salt, &labeled_ikm)
}

/// `LabeledExpand(prk, label, info, L)` (RFC 9180 §4) with the KEM's suite id.
fn labeled_expand(
    prk: &[u8],
    label: &[u8],
    info: &[u8],
    len: u16,
) -> Result<super::super::Secret, HpkeError> {
    let labeled_info = [&len.to_be_bytes()[..], VERSION_LABEL, SUITE_ID, label, info].concat();
    symmetric::hkdf_expand(HashAlgorithm::Sha512, prk, &labeled_info, usize::from(len))
        .map_err(|_| HpkeError::KdfOutputTooLong)
}

/// `ExtractAndExpand(dh, kem_context)` (RFC 9180 §4.1).
fn extract_and_expand(
    dh: &[u8],
    kem_context: &[u8],
) -> Result<SharedSecret<X448HkdfSha512>, HpkeError> {
    let prk = labeled_extract(b"", b"eae_prk", dh);
    // N_SECRET (64) fits in u16.
    let okm = labeled_expand(
        prk.as_bytes(),
        b"shared_secret",
        kem_context,
        N_SECRET as u16,
    )?;
    let mut shared = SharedSecret::<X448HkdfSha512>::default();
    if okm.len() != shared.0.len() {
        return Err(HpkeError::KdfOutputTooLong);
    }
    shared.0.copy_from_slice(okm.as_bytes());
    Ok(shared)
}

/// The shared secret of (Auth)Encap / (Auth)Decap, from the DH outputs and the public keys.
fn shared_secret(
    dh_eph: &[u8],
    dh_static: Option<&[u8]>,
    enc: &PublicKey,
    pk_recip: &PublicKey,
    pk_sender: Option<&PublicKey>,
) -> Result<SharedSecret<X448HkdfSha512>, HpkeError> {
    let mut dh = zeroize::Zeroizing::new(Vec::with_capacity(2 * N));
    dh.extend_from_slice(dh_eph);
    let mut kem_context = Vec::with_capacity(3 * N);
    kem_context.extend_from_slice(&enc.0);
    kem_context.extend_from_slice(&pk_recip.0);
    if let (Some(dh_static), Some(pk_sender)) = (dh_static, pk_sender) {
        dh.extend_from_slice(dh_static);
        kem_context.extend_from_slice(&pk_sender.0);
    }
    extract_and_expand(&dh, &kem_context)
}

impl Kem for X448HkdfSha512 {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U64;
    const KEM_ID: u16 = 0x0021;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        PublicKey(x448::x448_unchecked(sk.0, x448::X448_BASEPOINT_BYTES))
    }

    /// RFC 9180 §7.1.3: `dkp_prk = LabeledExtract("", "dkp_prk", ikm)`,
    /// `sk = LabeledExpand(dkp_prk, "sk", "", Nsk)`, then clamp.
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let prk = labeled_extract(b"", b"dkp_prk", ikm);
        let mut sk_bytes = [0u8; N];
        // Expanding 56 bytes from a SHA-512 PRK is always within HKDF's 255 * 64 limit, so
        // this cannot fail; the trait gives no way to report an error, and we never panic.
        if let Ok(okm) = labeled_expand(prk.as_bytes(), b"sk", b"", N as u16) {
            if okm.len() == N {
                sk_bytes.copy_from_slice(okm.as_bytes());
            }
        }
        let sk = PrivateKey(clamp(sk_bytes));
        sk_bytes.zeroize();
        let pk = Self::sk_to_pk(&sk);
        (sk, pk)
    }

    fn decap(
        sk_recip: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        encapped_key: &EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        let dh_eph = dh(sk_recip, &encapped_key.0).ok_or(HpkeError::DecapError)?;
        let dh_static = match pk_sender_id {
            Some(pk_sender) => Some(dh(sk_recip, pk_sender).ok_or(HpkeError::DecapError)?),
            None => None,
        };
        let pk_recip = Self::sk_to_pk(sk_recip);
        shared_secret(
            dh_eph.as_slice(),
            dh_static.as_ref().map(|d| d.as_slice()),
            &encapped_key.0,
            &pk_recip,
            pk_sender_id,
        )
    }

    /// Draws `Nsk` (56) bytes from `csprng` and derives the ephemeral pair from them, as the
    /// `hpke` crate's own DHKEMs do (`gen_keypair_with_rng`).
    fn encap_with_rng(
        pk_recip: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        csprng: &mut impl CryptoRng,
    ) -> Result<(SharedSecret<Self>, EncappedKey), HpkeError> {
        let (sk_eph, pk_eph) = Self::gen_keypair_with_rng(csprng);
        let dh_eph = dh(&sk_eph, pk_recip).ok_or(HpkeError::EncapError)?;
        let dh_static = match sender_id_keypair {
            Some((sk_sender, _)) => Some(dh(sk_sender, pk_recip).ok_or(HpkeError::EncapError)?),
            None => None,
        };
        let shared = shared_secret(
            dh_eph.as_slice(),
            dh_static.as_ref().map(|d| d.as_slice()),
            &pk_eph,
            pk_recip,
            sender_id_keypair.map(|(_, pk)| pk),
        )?;
        Ok((shared, EncappedKey(pk_eph)))
    }
}
