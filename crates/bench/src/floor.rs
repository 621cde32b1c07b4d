//! The physical floors the harness prints as `"impl":"bare"`: what the primitives alone
//! cost, made with the fastest correct implementations at hand, not with Conclave's own
//! code.
//!
//! **Seals** ([`BareSeals`]): an UpdatePath of a blank tree is one HPKE `SealBase` of a path
//! secret per member (RFC 9420 §12.4.1). Whatever the implementation, each seal needs
//! (RFC 9180 §4.1, §5.1, §6.1): an X25519 key generation and one Diffie–Hellman, five HKDF
//! calls (`ExtractAndExpand` of the KEM, then `secret`, `key` and `base_nonce` of the key
//! schedule; the `info` hash is shared by all seals of one commit and made once), and one
//! AES-128-GCM encryption. Here they are *ring*'s: BoringSSL's X25519 (fiat-crypto field
//! arithmetic with ADX/BMI2 assembly on x86-64, measured 35 µs per DH against 45 µs for
//! curve25519-dalek's ladder on the benchmark VM), HMAC-SHA-256 with the SHA extensions and
//! AES-GCM with AES-NI and carry-less multiplication, on all cores as the commit's seals are.
//! Suite 1 only (X25519, HKDF-SHA256, AES-128-GCM); other suites print no seal floor.
//!
//! **Verifications** ([`BareVerifies`]): a join checks one leaf signature per member.

use crate::client::Result;
use conclave_mls::crypto::{CipherSuite, CryptoProvider, RustCrypto};
use rayon::prelude::*;
use ring::{aead, agreement, hkdf, rand};

/// `suite_id` of the key schedule, suite 1's HPKE triple: "HPKE" || kem 0x0020 || kdf 0x0001
/// || aead 0x0001 (RFC 9180 §5.1).
const HPKE_SUITE_ID: &[u8] = b"HPKE\x00\x20\x00\x01\x00\x01";
/// `suite_id` of the KEM: "KEM" || 0x0020 (RFC 9180 §4.1).
const KEM_SUITE_ID: &[u8] = b"KEM\x00\x20";

/// An HKDF output length for ring.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `LabeledExtract(salt, label, ikm)` (RFC 9180 §4).
fn labeled_extract(suite_id: &[u8], salt: &[u8], label: &[u8], ikm: &[u8]) -> hkdf::Prk {
    let mut input = Vec::with_capacity(7 + suite_id.len() + label.len() + ikm.len());
    for part in [b"HPKE-v1".as_slice(), suite_id, label, ikm] {
        input.extend_from_slice(part);
    }
    hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&input)
}

/// `LabeledExpand(prk, label, info, L)` (RFC 9180 §4).
fn labeled_expand(
    prk: &hkdf::Prk,
    suite_id: &[u8],
    label: &[u8],
    info: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let length = u16::try_from(out.len())?.to_be_bytes();
    prk.expand(
        &[&length, b"HPKE-v1", suite_id, label, info],
        Len(out.len()),
    )
    .and_then(|okm| okm.fill(out))
    .map_err(|_| "HKDF-Expand failed".into())
}

/// `mode_base || psk_id_hash || info_hash` (RFC 9180 §5.1): the LabeledExtracts with an
/// empty salt are HMACs keyed with 32 zero bytes (RFC 5869 §2.2).
fn key_schedule_context(info: &[u8]) -> Vec<u8> {
    let zeros = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[0u8; 32]);
    let mut context = vec![0u8];
    for (label, ikm) in [
        (b"psk_id_hash".as_slice(), b"".as_slice()),
        (b"info_hash", info),
    ] {
        let mut input = Vec::new();
        for part in [b"HPKE-v1".as_slice(), HPKE_SUITE_ID, label, ikm] {
            input.extend_from_slice(part);
        }
        context.extend_from_slice(ring::hmac::sign(&zeros, &input).as_ref());
    }
    context
}

/// The floor of a commit: `count` HPKE seals of a 32-byte path secret on all cores.
pub struct BareSeals {
    keys: Vec<Vec<u8>>,
    /// `mode_base || psk_id_hash || info_hash`, made once (RFC 9180 §5.1).
    context: Vec<u8>,
    /// How many seals one run makes.
    pub count: usize,
}

impl BareSeals {
    /// `count` seals to recipients' keys of `suite`; `None` for suites other than 1.
    pub fn new(suite: u16, count: usize) -> Result<Option<Self>> {
        if suite != 1 {
            return Ok(None);
        }
        let provider = RustCrypto::default();
        let keys = (0..64)
            .map(|_| Ok(provider.hpke_generate_key_pair(CipherSuite(1))?.public_key))
            .collect::<Result<_>>()?;
        // Under one info, as a commit's seals are (an EncryptContext of about this size).
        let context = key_schedule_context(&[7u8; 160]);
        Ok(Some(Self {
            keys,
            context,
            count,
        }))
    }

    /// One seal to `public_key` (RFC 9180 §6.1 `SealBase`): `(enc, ciphertext)`.
    fn seal(
        &self,
        random: &rand::SystemRandom,
        public_key: &[u8],
        plaintext: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let unspecified = |_| "ring failed";
        let ephemeral = agreement::EphemeralPrivateKey::generate(&agreement::X25519, random)
            .map_err(unspecified)?;
        let enc = ephemeral.compute_public_key().map_err(unspecified)?;
        let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, public_key);
        let mut kem_context = [0u8; 64];
        kem_context[..32].copy_from_slice(enc.as_ref());
        kem_context[32..].copy_from_slice(public_key);
        // ExtractAndExpand(dh, kem_context) (§4.1).
        let mut shared_secret = [0u8; 32];
        agreement::agree_ephemeral(ephemeral, &peer, |dh| {
            let eae_prk = labeled_extract(KEM_SUITE_ID, b"", b"eae_prk", dh);
            labeled_expand(
                &eae_prk,
                KEM_SUITE_ID,
                b"shared_secret",
                &kem_context,
                &mut shared_secret,
            )
        })
        .map_err(unspecified)??;
        // KeyScheduleS (§5.1, base mode).
        let secret = labeled_extract(HPKE_SUITE_ID, &shared_secret, b"secret", b"");
        let (mut key, mut nonce) = ([0u8; 16], [0u8; 12]);
        labeled_expand(&secret, HPKE_SUITE_ID, b"key", &self.context, &mut key)?;
        labeled_expand(
            &secret,
            HPKE_SUITE_ID,
            b"base_nonce",
            &self.context,
            &mut nonce,
        )?;
        let key = aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::AES_128_GCM, &key).map_err(unspecified)?,
        );
        let mut ciphertext = plaintext.to_vec();
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut ciphertext,
        )
        .map_err(unspecified)?;
        Ok((enc.as_ref().to_vec(), ciphertext))
    }

    /// The `count` seals, on all cores.
    pub fn run(&self) -> Result<()> {
        let random = rand::SystemRandom::new();
        let secret = [1u8; 32];
        (0..self.count).into_par_iter().try_for_each(|i| {
            self.seal(&random, &self.keys[i % self.keys.len()], &secret)
                .map(|sealed| drop(std::hint::black_box(sealed)))
                .map_err(|e| e.to_string())
        })?;
        Ok(())
    }
}

/// The floor of a join: one signature verification per member on all cores.
pub struct BareVerifies {
    provider: RustCrypto,
    suite: CipherSuite,
    signed: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    count: usize,
}

impl BareVerifies {
    /// `count` verifications of signatures of `suite`.
    pub fn new(suite: u16, count: usize) -> Result<Self> {
        let provider = RustCrypto::default();
        let suite = CipherSuite(suite);
        let signed = (0..64u8)
            .map(|i| {
                let pair = provider.signature_generate_key_pair(suite)?;
                let message = vec![i; 250];
                let signature = provider.sign(suite, &pair.private_key, &message)?;
                Ok((pair.public_key, message, signature))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            provider,
            suite,
            signed,
            count,
        })
    }

    /// The `count` verifications, on all cores.
    pub fn run(&self) -> Result<()> {
        (0..self.count).into_par_iter().try_for_each(|i| {
            let (key, message, signature) = &self.signed[i % self.signed.len()];
            self.provider
                .verify(self.suite, key, message, signature)
                .map_err(|e| e.to_string())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor's seal is a real RFC 9180 seal: Conclave opens it.
    #[test]
    fn floor_seals_open() {
        let provider = RustCrypto::default();
        let suite = CipherSuite(1);
        let pair = provider.hpke_generate_key_pair(suite).expect("key pair");
        let info = b"MLS 1.0 UpdatePathNode";
        let floor = BareSeals {
            keys: vec![],
            context: key_schedule_context(info),
            count: 0,
        };
        let (enc, ciphertext) = floor
            .seal(&rand::SystemRandom::new(), &pair.public_key, &[1u8; 32])
            .expect("seal");
        let opened = provider
            .hpke_open(suite, &pair.private_key, &enc, info, b"", &ciphertext)
            .expect("Conclave opens the floor's seal");
        assert_eq!(opened.as_bytes(), &[1u8; 32]);
    }
}
