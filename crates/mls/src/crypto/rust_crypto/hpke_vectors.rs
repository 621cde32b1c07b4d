//! The official RFC 9180 test vectors, run through the same `hpke` crate types (and our
//! X448 KEM) that the provider uses, for every (KEM, KDF, AEAD) an MLS suite uses, in all
//! four modes.
//!
//! The vectors are not in the repository: set `HPKE_TEST_VECTORS` to a folder that holds
//! `test-vectors.json` (from cfrg/draft-irtf-cfrg-hpke, also RFC 9180 Appendix A).

use super::hpke::SharedInfoSealer;
use super::x448_kem::X448HkdfSha512;
use crate::crypto::CipherSuite;
use ::hpke::aead::{Aead, AesGcm128, AesGcm256, ChaCha20Poly1305};
use ::hpke::kdf::{HkdfSha256, HkdfSha384, HkdfSha512, Kdf};
use ::hpke::kem::{DhP256HkdfSha256, DhP384HkdfSha384, DhP521HkdfSha512, X25519HkdfSha256, XWing};
use ::hpke::rand_core::{TryCryptoRng, TryRng};
use ::hpke::{Deserializable, Kem, OpModeR, OpModeS, PskBundle, Serializable};
use core::convert::Infallible;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Vector {
    mode: u8,
    kem_id: u16,
    kdf_id: u16,
    aead_id: u16,
    info: String,
    ikmR: String,
    ikmE: String,
    ikmS: Option<String>,
    skRm: String,
    skEm: String,
    skSm: Option<String>,
    pkRm: String,
    pkEm: String,
    pkSm: Option<String>,
    psk: Option<String>,
    psk_id: Option<String>,
    enc: String,
    encryptions: Vec<Encryption>,
    exports: Vec<Export>,
}

#[derive(Deserialize)]
struct Encryption {
    aad: String,
    ct: String,
    pt: String,
}

#[derive(Deserialize)]
struct Export {
    exporter_context: String,
    #[serde(rename = "L")]
    len: usize,
    exported_value: String,
}

/// Hands out exactly the bytes it was built with (the vector's `ikmE`), and records any
/// attempt to draw more, so the test can check that encapsulation draws exactly `Nsk` bytes
/// and derives the ephemeral pair from them.
struct ReplayRng {
    bytes: Vec<u8>,
    pos: usize,
    overdrawn: bool,
}

impl TryRng for ReplayRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            match self.bytes.get(self.pos) {
                Some(b) => *byte = *b,
                None => self.overdrawn = true,
            }
            self.pos += 1;
        }
        Ok(())
    }
}
impl TryCryptoRng for ReplayRng {}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    hex::decode(s).map_err(|e| format!("bad hex: {e}"))
}

fn check_eq(what: &str, got: &[u8], want: &[u8]) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {}, want {}",
            hex::encode(got),
            hex::encode(want)
        ))
    }
}

/// Derives a pair from `ikm` and checks it against the vector's serialized keys. Private keys
/// are compared after a DeserializePrivateKey/SerializePrivateKey round trip of the expected
/// value, because the vectors list X25519/X448 keys unclamped while RFC 9180 §7.1.2 has
/// SerializePrivateKey clamp.
fn derive_and_check<K: Kem>(
    name: &str,
    ikm: &str,
    sk_m: &str,
    pk_m: &str,
) -> Result<(K::PrivateKey, K::PublicKey), String> {
    let (sk, pk) = K::derive_keypair(&unhex(ikm)?);
    check_eq(&format!("pk{name}m"), &pk.to_bytes(), &unhex(pk_m)?)?;
    let expected_sk = K::PrivateKey::from_bytes(&unhex(sk_m)?)
        .map_err(|e| format!("sk{name}m does not deserialize: {e}"))?;
    check_eq(
        &format!("sk{name}m"),
        &sk.to_bytes(),
        &expected_sk.to_bytes(),
    )?;
    check_eq(
        &format!("pk(sk{name}m)"),
        &K::sk_to_pk(&expected_sk).to_bytes(),
        &unhex(pk_m)?,
    )?;
    Ok((sk, pk))
}

fn check_vector<A: Aead, F: Kdf, K: Kem>(v: &Vector, suite: u16) -> Result<(), String> {
    let (_, _pk_e) = derive_and_check::<K>("E", &v.ikmE, &v.skEm, &v.pkEm)?;
    let (sk_r, pk_r) = derive_and_check::<K>("R", &v.ikmR, &v.skRm, &v.pkRm)?;
    let sender = match (&v.ikmS, &v.skSm, &v.pkSm) {
        (Some(ikm), Some(sk), Some(pk)) => Some(derive_and_check::<K>("S", ikm, sk, pk)?),
        _ => None,
    };
    let psk = v.psk.as_deref().map(unhex).transpose()?;
    let psk_id = v.psk_id.as_deref().map(unhex).transpose()?;
    let bundle = match (&psk, &psk_id) {
        (Some(psk), Some(id)) => {
            Some(PskBundle::new(psk, id).map_err(|e| format!("psk bundle: {e}"))?)
        }
        _ => None,
    };
    let (mode_s, mode_r) = match (v.mode, bundle, sender) {
        (0, None, None) => (OpModeS::Base, OpModeR::Base),
        (1, Some(b), None) => (OpModeS::Psk(b), OpModeR::Psk(b)),
        (2, None, Some((sk, pk))) => (OpModeS::Auth((sk, pk.clone())), OpModeR::Auth(pk)),
        (3, Some(b), Some((sk, pk))) => (
            OpModeS::AuthPsk((sk, pk.clone()), b),
            OpModeR::AuthPsk(pk, b),
        ),
        (mode, ..) => return Err(format!("mode {mode} with inconsistent inputs")),
    };
    let info = unhex(&v.info)?;

    // Encap with the ephemeral key fixed: the RNG replays ikmE.
    let ikm_e = unhex(&v.ikmE)?;
    let mut rng = ReplayRng {
        bytes: ikm_e.clone(),
        pos: 0,
        overdrawn: false,
    };
    let (enc, mut ctx_s) =
        ::hpke::setup_sender_with_rng::<A, F, K>(&mode_s, &pk_r, &info, &mut rng)
            .map_err(|e| format!("setup_sender: {e}"))?;
    let nsk = <K::PrivateKey as Serializable>::size();
    if rng.overdrawn || rng.pos != ikm_e.len() || rng.pos != nsk {
        return Err(format!(
            "encap drew {} random bytes; ikmE has {}, Nsk is {nsk}",
            rng.pos,
            ikm_e.len()
        ));
    }
    check_eq("enc", &enc.to_bytes(), &unhex(&v.enc)?)?;

    let enc_r = K::EncappedKey::from_bytes(&unhex(&v.enc)?)
        .map_err(|e| format!("enc does not deserialize: {e}"))?;
    let mut ctx_r = ::hpke::setup_receiver::<A, F, K>(&mode_r, &sk_r, &enc_r, &info)
        .map_err(|e| format!("setup_receiver: {e}"))?;

    for (i, e) in v.encryptions.iter().enumerate() {
        let (aad, pt) = (unhex(&e.aad)?, unhex(&e.pt)?);
        let ct = ctx_s
            .seal(&pt, &aad)
            .map_err(|err| format!("seal #{i}: {err}"))?;
        check_eq(&format!("ct #{i}"), &ct, &unhex(&e.ct)?)?;
        let opened = ctx_r
            .open(&ct, &aad)
            .map_err(|err| format!("open #{i}: {err}"))?;
        check_eq(&format!("pt #{i}"), &opened, &pt)?;
    }
    if v.mode == 0 {
        check_shared_info_sealer(v, suite, &pk_r.to_bytes())?;
    }
    for (i, x) in v.exports.iter().enumerate() {
        let context = unhex(&x.exporter_context)?;
        let mut out_s = vec![0u8; x.len];
        let mut out_r = vec![0u8; x.len];
        ctx_s
            .export(&context, &mut out_s)
            .map_err(|err| format!("export #{i}: {err}"))?;
        ctx_r
            .export(&context, &mut out_r)
            .map_err(|err| format!("export #{i}: {err}"))?;
        check_eq(
            &format!("export #{i} (sender)"),
            &out_s,
            &unhex(&x.exported_value)?,
        )?;
        check_eq(
            &format!("export #{i} (receiver)"),
            &out_r,
            &unhex(&x.exported_value)?,
        )?;
    }
    Ok(())
}

/// Our own base-mode key schedule ([`SharedInfoSealer`], used to seal a Welcome to many
/// joiners) must produce the vector's `enc` and first ciphertext from the same `ikmE`.
fn check_shared_info_sealer(v: &Vector, suite: u16, pk_r: &[u8]) -> Result<(), String> {
    let first = v.encryptions.first().ok_or("no encryptions")?;
    let sealer = SharedInfoSealer::new(CipherSuite(suite), &unhex(&v.info)?)
        .map_err(|e| format!("sealer: {e}"))?;
    let mut rng = ReplayRng {
        bytes: unhex(&v.ikmE)?,
        pos: 0,
        overdrawn: false,
    };
    let sealed = sealer
        .seal(pk_r, &unhex(&first.aad)?, &unhex(&first.pt)?, &mut rng)
        .map_err(|e| format!("shared-info seal: {e}"))?;
    check_eq("shared-info enc", &sealed.kem_output, &unhex(&v.enc)?)?;
    check_eq("shared-info ct #0", &sealed.ciphertext, &unhex(&first.ct)?)
}

/// Runs `v` if an MLS suite uses its (KEM, KDF, AEAD); `None` if none does.
fn run(v: &Vector) -> Option<Result<(), String>> {
    Some(match (v.kem_id, v.kdf_id, v.aead_id) {
        // Suite 1.
        (0x0020, 0x0001, 0x0001) => check_vector::<AesGcm128, HkdfSha256, X25519HkdfSha256>(v, 1),
        // Suite 2.
        (0x0010, 0x0001, 0x0001) => check_vector::<AesGcm128, HkdfSha256, DhP256HkdfSha256>(v, 2),
        // Suite 3.
        (0x0020, 0x0001, 0x0003) => {
            check_vector::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(v, 3)
        }
        // Suite 4.
        (0x0021, 0x0003, 0x0002) => check_vector::<AesGcm256, HkdfSha512, X448HkdfSha512>(v, 4),
        // Suite 5.
        (0x0012, 0x0003, 0x0002) => check_vector::<AesGcm256, HkdfSha512, DhP521HkdfSha512>(v, 5),
        // Suite 6.
        (0x0021, 0x0003, 0x0003) => {
            check_vector::<ChaCha20Poly1305, HkdfSha512, X448HkdfSha512>(v, 6)
        }
        // Suite 7.
        (0x0011, 0x0002, 0x0002) => check_vector::<AesGcm256, HkdfSha384, DhP384HkdfSha384>(v, 7),
        // The X-Wing suite (0x004D); X-Wing has no Auth modes.
        (0x647a, 0x0001, 0x0003) => check_vector::<ChaCha20Poly1305, HkdfSha256, XWing>(v, 0x004d),
        _ => return None,
    })
}

/// Per (KEM, KDF, AEAD): vectors passed, vectors run, and the modes seen.
#[derive(Default)]
struct Tally(usize, usize, Vec<u8>);

#[test]
fn rfc9180_test_vectors() {
    let Some(dir) = std::env::var_os("HPKE_TEST_VECTORS") else {
        println!(
            "HPKE_TEST_VECTORS is not set: skipping the RFC 9180 vectors. Get test-vectors.json \
             from https://github.com/cfrg/draft-irtf-cfrg-hpke (RFC 9180 Appendix A) and set \
             HPKE_TEST_VECTORS to the folder that holds it."
        );
        return;
    };
    let path = std::path::Path::new(&dir).join("test-vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "HPKE_TEST_VECTORS is set but {} is unreadable: {e}",
            path.display()
        )
    });
    let vectors: Vec<Vector> = serde_json::from_str(&text).expect("test-vectors.json parses");

    let mut by_combination: BTreeMap<(u16, u16, u16), Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut passed, mut total, mut skipped) = (0, 0, 0);
    for v in &vectors {
        let Some(result) = run(v) else {
            skipped += 1;
            continue;
        };
        total += 1;
        let entry = by_combination
            .entry((v.kem_id, v.kdf_id, v.aead_id))
            .or_default();
        entry.1 += 1;
        entry.2.push(v.mode);
        match result {
            Ok(()) => {
                passed += 1;
                entry.0 += 1;
            }
            Err(e) => failures.push(format!(
                "kem {:#06x} kdf {:#06x} aead {:#06x} mode {}: {e}",
                v.kem_id, v.kdf_id, v.aead_id, v.mode
            )),
        }
    }
    for ((kem, kdf, aead), Tally(ok, n, modes)) in &by_combination {
        println!("  kem {kem:#06x} kdf {kdf:#06x} aead {aead:#06x}: {ok}/{n} (modes {modes:?})");
    }
    println!(
        "hpke vectors: {passed}/{total} ({} combinations); {skipped} vectors of other combinations skipped",
        by_combination.len()
    );
    assert!(
        failures.is_empty(),
        "failing vectors:\n{}",
        failures.join("\n")
    );
    assert!(total > 0, "no vector matched an MLS suite");
}
