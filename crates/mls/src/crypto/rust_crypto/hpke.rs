//! HPKE (RFC 9180) base mode for every suite's KEM, KDF and AEAD, on the `hpke` crate.
//!
//! Each suite maps to one `(Aead, Kdf, Kem)` triple of the crate's generic API; X448 is our
//! own [`X448HkdfSha512`]. Public keys are in `SerializePublicKey` form (raw X25519/X448,
//! SEC1 uncompressed for the NIST curves, the 1216-byte X-Wing key), private keys in
//! `SerializePrivateKey` form (RFC 9180 §7.1.1–7.1.2; clamped for X25519/X448).

use super::super::{
    AeadAlgorithm, CipherSuite, CryptoError, HashAlgorithm, HpkeKeyPair, HpkePrivateKey,
    HpkeSealItem, HpkeSealed, KemAlgorithm, Secret,
};
use super::symmetric;
use super::x448_kem::X448HkdfSha512;
use super::x25519_kem;
use ::hpke::aead::{Aead, AesGcm128, AesGcm256, ChaCha20Poly1305};
use ::hpke::kdf::{HkdfSha256, HkdfSha384, HkdfSha512, Kdf};
use ::hpke::kem::{DhP256HkdfSha256, DhP384HkdfSha384, DhP521HkdfSha512, X25519HkdfSha256, XWing};
use ::hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use rand_chacha::ChaCha20Rng;

/// Random bytes per seal of [`SharedInfoSealer::seal_batch`].
pub(super) const SEED_LEN: usize = 32;

/// Calls `$f::<Aead, Kdf, Kem>($args)` for the suite's HPKE triple.
macro_rules! with_hpke_suite {
    ($suite:expr, $f:ident($($arg:expr),*)) => {{
        let suite: CipherSuite = $suite;
        match (suite.kem(), suite.hash(), suite.aead()) {
            (Some(KemAlgorithm::DhKemX25519), Some(HashAlgorithm::Sha256), Some(AeadAlgorithm::Aes128Gcm)) =>
                $f::<AesGcm128, HkdfSha256, X25519HkdfSha256>($($arg),*),
            (Some(KemAlgorithm::DhKemP256), Some(HashAlgorithm::Sha256), Some(AeadAlgorithm::Aes128Gcm)) =>
                $f::<AesGcm128, HkdfSha256, DhP256HkdfSha256>($($arg),*),
            (Some(KemAlgorithm::DhKemX25519), Some(HashAlgorithm::Sha256), Some(AeadAlgorithm::ChaCha20Poly1305)) =>
                $f::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>($($arg),*),
            (Some(KemAlgorithm::DhKemX448), Some(HashAlgorithm::Sha512), Some(AeadAlgorithm::Aes256Gcm)) =>
                $f::<AesGcm256, HkdfSha512, X448HkdfSha512>($($arg),*),
            (Some(KemAlgorithm::DhKemP521), Some(HashAlgorithm::Sha512), Some(AeadAlgorithm::Aes256Gcm)) =>
                $f::<AesGcm256, HkdfSha512, DhP521HkdfSha512>($($arg),*),
            (Some(KemAlgorithm::DhKemX448), Some(HashAlgorithm::Sha512), Some(AeadAlgorithm::ChaCha20Poly1305)) =>
                $f::<ChaCha20Poly1305, HkdfSha512, X448HkdfSha512>($($arg),*),
            (Some(KemAlgorithm::DhKemP384), Some(HashAlgorithm::Sha384), Some(AeadAlgorithm::Aes256Gcm)) =>
                $f::<AesGcm256, HkdfSha384, DhP384HkdfSha384>($($arg),*),
            (Some(KemAlgorithm::XWing), Some(HashAlgorithm::Sha256), Some(AeadAlgorithm::ChaCha20Poly1305)) =>
                $f::<ChaCha20Poly1305, HkdfSha256, XWing>($($arg),*),
            _ => Err(CryptoError::UnsupportedCipherSuite(suite.0)),
        }
    }};
}

/// Calls `$f::<Kem>($args)` for the suite's KEM.
macro_rules! with_kem {
    ($suite:expr, $f:ident($($arg:expr),*)) => {{
        let suite: CipherSuite = $suite;
        match suite.kem() {
            Some(KemAlgorithm::DhKemX25519) => $f::<X25519HkdfSha256>($($arg),*),
            Some(KemAlgorithm::DhKemP256) => $f::<DhP256HkdfSha256>($($arg),*),
            Some(KemAlgorithm::DhKemP384) => $f::<DhP384HkdfSha384>($($arg),*),
            Some(KemAlgorithm::DhKemP521) => $f::<DhP521HkdfSha512>($($arg),*),
            Some(KemAlgorithm::DhKemX448) => $f::<X448HkdfSha512>($($arg),*),
            Some(KemAlgorithm::XWing) => $f::<XWing>($($arg),*),
            None => Err(CryptoError::UnsupportedCipherSuite(suite.0)),
        }
    }};
}

fn export_sender_with<A: Aead, F: Kdf, K: Kem>(
    public_key: &[u8],
    info: &[u8],
    exporter_context: &[u8],
    length: usize,
    rng: &mut ChaCha20Rng,
) -> Result<(Vec<u8>, Secret), CryptoError> {
    let pk = K::PublicKey::from_bytes(public_key).map_err(|_| CryptoError::InvalidKey)?;
    let (enc, ctx) = ::hpke::setup_sender_with_rng::<A, F, K>(&OpModeS::Base, &pk, info, rng)
        .map_err(|_| CryptoError::HpkeSeal)?;
    let mut out = vec![0u8; length];
    ctx.export(exporter_context, &mut out)
        .map_err(|_| CryptoError::KdfLength)?;
    Ok((enc.to_bytes().to_vec(), Secret::new(out)))
}

fn export_receiver_with<A: Aead, F: Kdf, K: Kem>(
    private_key: &HpkePrivateKey,
    kem_output: &[u8],
    info: &[u8],
    exporter_context: &[u8],
    length: usize,
) -> Result<Secret, CryptoError> {
    let sk =
        K::PrivateKey::from_bytes(private_key.as_bytes()).map_err(|_| CryptoError::InvalidKey)?;
    let enc = K::EncappedKey::from_bytes(kem_output).map_err(|_| CryptoError::HpkeOpen)?;
    let ctx = ::hpke::setup_receiver::<A, F, K>(&OpModeR::Base, &sk, &enc, info)
        .map_err(|_| CryptoError::HpkeOpen)?;
    let mut out = vec![0u8; length];
    ctx.export(exporter_context, &mut out)
        .map_err(|_| CryptoError::KdfLength)?;
    Ok(Secret::new(out))
}

/// `SetupBaseS(pkR, info)` then `Export(exporter_context, L)` (RFC 9180 §5.3).
pub(super) fn export_sender(
    suite: CipherSuite,
    public_key: &[u8],
    info: &[u8],
    exporter_context: &[u8],
    length: usize,
    rng: &mut ChaCha20Rng,
) -> Result<(Vec<u8>, Secret), CryptoError> {
    with_hpke_suite!(
        suite,
        export_sender_with(public_key, info, exporter_context, length, rng)
    )
}

/// `SetupBaseR(enc, skR, info)` then `Export(exporter_context, L)` (RFC 9180 §5.3).
pub(super) fn export_receiver(
    suite: CipherSuite,
    private_key: &HpkePrivateKey,
    kem_output: &[u8],
    info: &[u8],
    exporter_context: &[u8],
    length: usize,
) -> Result<Secret, CryptoError> {
    let private_key = &normalized_private_key(suite, private_key)?;
    with_hpke_suite!(
        suite,
        export_receiver_with(private_key, kem_output, info, exporter_context, length)
    )
}

fn open_with<A: Aead, F: Kdf, K: Kem>(
    private_key: &HpkePrivateKey,
    kem_output: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Secret, CryptoError> {
    let sk =
        K::PrivateKey::from_bytes(private_key.as_bytes()).map_err(|_| CryptoError::InvalidKey)?;
    let enc = K::EncappedKey::from_bytes(kem_output).map_err(|_| CryptoError::HpkeOpen)?;
    ::hpke::single_shot_open::<A, F, K>(&OpModeR::Base, &sk, &enc, info, ciphertext, aad)
        .map(Secret::new)
        .map_err(|_| CryptoError::HpkeOpen)
}

fn derive_with<K: Kem>(ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
    let (sk, pk) = K::derive_keypair(ikm);
    let mut sk_bytes = sk.to_bytes();
    let private_key = HpkePrivateKey::from_slice(&sk_bytes);
    zeroize::Zeroize::zeroize(sk_bytes.as_mut_slice());
    Ok(HpkeKeyPair {
        private_key,
        public_key: pk.to_bytes().to_vec(),
    })
}

fn public_key_with<K: Kem>(private_key: &HpkePrivateKey) -> Result<Vec<u8>, CryptoError> {
    let sk =
        K::PrivateKey::from_bytes(private_key.as_bytes()).map_err(|_| CryptoError::InvalidKey)?;
    Ok(K::sk_to_pk(&sk).to_bytes().to_vec())
}

/// Single-shot base-mode `OpenBase(enc, skR, info, aad, ct)` (RFC 9180 §6.1).
pub(super) fn open(
    suite: CipherSuite,
    private_key: &HpkePrivateKey,
    kem_output: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Secret, CryptoError> {
    let private_key = &normalized_private_key(suite, private_key)?;
    with_hpke_suite!(
        suite,
        open_with(private_key, kem_output, info, aad, ciphertext)
    )
}

/// NIST-curve private keys are big-endian scalars; other implementations export them as
/// minimal integers (a P-521 key may be 65 bytes). Left-pad those to `Nsk`; anything longer
/// than `Nsk`, and short keys of other KEMs, stay as they are and fail to deserialize.
fn normalized_private_key(
    suite: CipherSuite,
    private_key: &HpkePrivateKey,
) -> Result<HpkePrivateKey, CryptoError> {
    let kem = suite
        .kem()
        .ok_or(CryptoError::UnsupportedCipherSuite(suite.0))?;
    let nsk = kem.private_key_len();
    let bytes = private_key.as_bytes();
    let nist = matches!(
        kem,
        KemAlgorithm::DhKemP256 | KemAlgorithm::DhKemP384 | KemAlgorithm::DhKemP521
    );
    if !nist || bytes.is_empty() || bytes.len() >= nsk {
        return Ok(private_key.clone());
    }
    let mut padded = vec![0u8; nsk];
    padded[nsk - bytes.len()..].copy_from_slice(bytes);
    Ok(HpkePrivateKey::new(padded))
}

/// `DeriveKeyPair(ikm)` of the suite's KEM (RFC 9180 §7.1.3).
pub(super) fn derive_key_pair(suite: CipherSuite, ikm: &[u8]) -> Result<HpkeKeyPair, CryptoError> {
    with_kem!(suite, derive_with(ikm))
}

/// The public key of an HPKE private key.
pub(super) fn public_key(
    suite: CipherSuite,
    private_key: &HpkePrivateKey,
) -> Result<Vec<u8>, CryptoError> {
    let private_key = &normalized_private_key(suite, private_key)?;
    with_kem!(suite, public_key_with(private_key))
}

fn encap_with<K: Kem>(
    public_key: &[u8],
    rng: &mut impl ::hpke::rand_core::CryptoRng,
) -> Result<(Secret, Vec<u8>), CryptoError> {
    let pk = K::PublicKey::from_bytes(public_key).map_err(|_| CryptoError::InvalidKey)?;
    // `SharedSecret` zeroizes itself on drop; the copy lives in a `Secret`, which does too.
    let (shared, enc) = K::encap_with_rng(&pk, None, rng).map_err(|_| CryptoError::HpkeSeal)?;
    Ok((Secret::from_slice(&shared.0), enc.to_bytes().to_vec()))
}

/// The RFC 9180 KDF identifier of HKDF with `hash` (§7.2).
fn kdf_id(hash: HashAlgorithm) -> u16 {
    match hash {
        HashAlgorithm::Sha256 => 0x0001,
        HashAlgorithm::Sha384 => 0x0002,
        HashAlgorithm::Sha512 => 0x0003,
    }
}

/// Base-mode sealing (RFC 9180 §5.1, §6.1): every `hpke_seal` of the provider, and many
/// recipients under one `info` at once.
///
/// The key-schedule context `mode || psk_id_hash || info_hash` depends on `info` only
/// through its hash, so it is computed once here instead of once per recipient. That matters
/// for a Welcome, whose `info` is the encrypted GroupInfo with the whole ratchet tree
/// (RFC 9420 §12.4.3.1): megabytes in a large group, hashed once per joiner otherwise. Each
/// seal then costs what the KEM and two short expansions cost. The KEM is the `hpke`
/// crate's; the key schedule and the AEAD are ours, checked against the RFC 9180 vectors.
pub(super) struct SharedInfoSealer {
    suite: CipherSuite,
    hash: HashAlgorithm,
    aead: AeadAlgorithm,
    suite_id: [u8; 10],
    context: Vec<u8>,
}

impl SharedInfoSealer {
    /// Hashes `info` into the base-mode key-schedule context of `suite`.
    pub(super) fn new(suite: CipherSuite, info: &[u8]) -> Result<Self, CryptoError> {
        let unsupported = || CryptoError::UnsupportedCipherSuite(suite.0);
        let kem = suite.kem().ok_or_else(unsupported)?;
        let hash = suite.hash().ok_or_else(unsupported)?;
        let aead = suite.aead().ok_or_else(unsupported)?;
        // suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2) (§5.1)
        let mut suite_id = [0u8; 10];
        suite_id[..4].copy_from_slice(b"HPKE");
        suite_id[4..6].copy_from_slice(&kem.id().to_be_bytes());
        suite_id[6..8].copy_from_slice(&kdf_id(hash).to_be_bytes());
        suite_id[8..].copy_from_slice(&aead.id().to_be_bytes());
        let mut sealer = Self {
            suite,
            hash,
            aead,
            suite_id,
            context: Vec::new(),
        };
        // Base mode: no PSK, so psk_id is empty (§5.1.1).
        let psk_id_hash = sealer.labeled_extract(b"", b"psk_id_hash", b"");
        let info_hash = sealer.labeled_extract(b"", b"info_hash", info);
        let mut context = Vec::with_capacity(1 + 2 * hash.output_len());
        context.push(0x00); // mode_base
        context.extend_from_slice(psk_id_hash.as_bytes());
        context.extend_from_slice(info_hash.as_bytes());
        sealer.context = context;
        Ok(sealer)
    }

    /// `LabeledExtract(salt, label, ikm)` (§4).
    fn labeled_extract(&self, salt: &[u8], label: &[u8], ikm: &[u8]) -> Secret {
        symmetric::hkdf_extract_parts(self.hash, salt, &[b"HPKE-v1", &self.suite_id, label, ikm])
    }

    /// `LabeledExpand(prk, label, info, L)` (§4).
    fn labeled_expand(&self, prk: &[u8], label: &[u8], len: usize) -> Result<Secret, CryptoError> {
        let length = u16::try_from(len).map_err(|_| CryptoError::KdfLength)?;
        let mut info = Vec::with_capacity(2 + 7 + 10 + label.len() + self.context.len());
        info.extend_from_slice(&length.to_be_bytes());
        info.extend_from_slice(b"HPKE-v1");
        info.extend_from_slice(&self.suite_id);
        info.extend_from_slice(label);
        info.extend_from_slice(&self.context);
        symmetric::hkdf_expand(self.hash, prk, &info, len)
    }

    /// `(key, base_nonce)` from a KEM shared secret (§5.1, base mode: `psk` is empty).
    fn key_and_nonce(&self, shared_secret: &[u8]) -> Result<(Secret, Secret), CryptoError> {
        let secret = self.labeled_extract(shared_secret, b"secret", b"");
        let key = self.labeled_expand(secret.as_bytes(), b"key", self.aead.key_len())?;
        let nonce = self.labeled_expand(secret.as_bytes(), b"base_nonce", self.aead.nonce_len())?;
        Ok((key, nonce))
    }

    /// `SealBase(pkR, info, aad, pt)` (§6.1): the first message of a fresh context, so its
    /// nonce is `base_nonce` itself. The ephemeral key comes from `rng` (Nsk bytes of
    /// `ikmE`, §7.1.3).
    pub(super) fn seal(
        &self,
        public_key: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl ::hpke::rand_core::CryptoRng,
    ) -> Result<HpkeSealed, CryptoError> {
        let encapsulated = match self.suite.kem() {
            // The hot path of a commit: one fixed-base multiplication instead of the crate's
            // two. `ikmE` is drawn exactly as the crate's `GenerateKeyPair` draws it (Nsk
            // bytes, §7.1.3), so a seeded provider seals the same bytes either way.
            Some(KemAlgorithm::DhKemX25519) => {
                let mut ikm_e = zeroize::Zeroizing::new([0u8; x25519_kem::KEY_LEN]);
                rng.fill_bytes(ikm_e.as_mut_slice());
                x25519_kem::encap(public_key, ikm_e.as_slice())?
            }
            _ => with_kem!(self.suite, encap_with(public_key, rng))?,
        };
        self.seal_encapsulated(encapsulated, aad, plaintext)
    }

    /// [`Self::seal`] to every `(pkR, pt)` of `items`, item `i`'s ephemeral key drawn from
    /// the 32 bytes `seeds[i]`: for X25519 they are its `ikmE` and the ephemeral public keys
    /// are made as one batch (`x25519_kem::encap_batch`); other KEMs draw theirs from a
    /// ChaCha20 stream seeded with them.
    pub(super) fn seal_batch(
        &self,
        items: &[HpkeSealItem<'_>],
        aad: &[u8],
        seeds: &[[u8; SEED_LEN]],
    ) -> Result<Vec<HpkeSealed>, CryptoError> {
        if self.suite.kem() != Some(KemAlgorithm::DhKemX25519) {
            return items
                .iter()
                .zip(seeds)
                .map(|((public_key, plaintext), seed)| {
                    let mut rng = <ChaCha20Rng as rand_core::SeedableRng>::from_seed(*seed);
                    self.seal(public_key, aad, plaintext, &mut rng)
                })
                .collect();
        }
        let recipients: Vec<&[u8]> = items.iter().map(|(public_key, _)| *public_key).collect();
        x25519_kem::encap_batch(&recipients, seeds)?
            .into_iter()
            .zip(items)
            .map(|(encapsulated, (_, plaintext))| {
                self.seal_encapsulated(encapsulated?, aad, plaintext)
            })
            .collect()
    }

    /// The key schedule and the AEAD of a seal whose `Encap` is done (§5.1, §6.1).
    fn seal_encapsulated(
        &self,
        (shared_secret, kem_output): (Secret, Vec<u8>),
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<HpkeSealed, CryptoError> {
        let (key, nonce) = self.key_and_nonce(shared_secret.as_bytes())?;
        let ciphertext =
            symmetric::aead_seal(self.aead, key.as_bytes(), nonce.as_bytes(), aad, plaintext)?;
        Ok(HpkeSealed {
            kem_output,
            ciphertext,
        })
    }
}
