//! Sealing at rest: every value the local store holds is encrypted and authenticated under
//! a key derived from the owner's passphrase (Argon2id, RFC 9106), and bound to the slot it
//! is stored in, so a value cannot be moved to another slot or another store unnoticed.

use crate::error::Error;
use conclave_mls::{CipherSuite, CryptoProvider, RustCrypto};

/// The AEAD of sealed values: ChaCha20-Poly1305 with a 256-bit key, as the MLS cipher suite
/// 3 defines it (RFC 9420 §17.1), so the store needs no crypto beyond the protocol library's.
const SEAL_SUITE: CipherSuite = CipherSuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519;
const NONCE_LEN: usize = 12;
/// Domain separation of the store key's two uses.
const SEAL_INFO: &[u8] = b"conclave-client store seal";
const NAME_INFO: &[u8] = b"conclave-client store names";

/// Cost of the passphrase hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
}

impl Default for KdfParams {
    /// RFC 9106 §4's second recommended option for memory-constrained settings
    /// (Argon2id, 64 MiB, 3 passes).
    fn default() -> Self {
        Self {
            memory_kib: 64 * 1024,
            iterations: 3,
        }
    }
}

impl KdfParams {
    /// A cheap setting for tests and the demo, where the passphrase protects nothing real.
    pub fn insecure_fast() -> Self {
        Self {
            memory_kib: 64,
            iterations: 1,
        }
    }
}

/// Where the store key comes from.
#[derive(Clone)]
pub enum StoreKey {
    /// A passphrase, stretched with Argon2id and the store's salt.
    Passphrase(String, KdfParams),
    /// A 32-byte key the application keeps elsewhere (for example in the OS keyring).
    Raw([u8; 32]),
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKey::Passphrase(_, p) => write!(f, "StoreKey::Passphrase(<hidden>, {p:?})"),
            StoreKey::Raw(_) => write!(f, "StoreKey::Raw(<hidden>)"),
        }
    }
}

/// The keys that seal and name the store's records.
pub(crate) struct Sealer {
    provider: RustCrypto,
    seal_key: Vec<u8>,
    name_key: Vec<u8>,
}

impl Sealer {
    /// Derives the keys from `key` and the store's `salt`.
    pub(crate) fn new(key: &StoreKey, salt: &[u8]) -> Result<Self, Error> {
        let root = match key {
            StoreKey::Raw(k) => k.to_vec(),
            StoreKey::Passphrase(passphrase, params) => {
                let params = argon2::Params::new(params.memory_kib, params.iterations, 1, Some(32))
                    .map_err(|e| Error::Config(format!("argon2 parameters: {e}")))?;
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params,
                );
                let mut out = vec![0u8; 32];
                argon
                    .hash_password_into(passphrase.as_bytes(), salt, &mut out)
                    .map_err(|e| Error::Config(format!("argon2: {e}")))?;
                out
            }
        };
        let provider = RustCrypto::default();
        let prk = provider.kdf_extract(SEAL_SUITE, salt, &root)?;
        let seal_key = provider
            .kdf_expand(SEAL_SUITE, prk.as_bytes(), SEAL_INFO, 32)?
            .as_bytes()
            .to_vec();
        let name_key = provider
            .kdf_expand(SEAL_SUITE, prk.as_bytes(), NAME_INFO, 32)?
            .as_bytes()
            .to_vec();
        Ok(Self {
            provider,
            seal_key,
            name_key,
        })
    }

    /// Encrypts `plaintext` for the slot `slot` (its table and name).
    pub(crate) fn seal(&self, slot: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| Error::Config(format!("randomness: {e}")))?;
        let mut out = nonce.to_vec();
        out.extend(
            self.provider
                .aead_seal(SEAL_SUITE, &self.seal_key, &nonce, slot, plaintext)?,
        );
        Ok(out)
    }

    /// Decrypts a value sealed for `slot`; [`Error::Unseal`] if the key or the slot is not
    /// the one it was sealed with, or the bytes were changed.
    pub(crate) fn open(&self, slot: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Error> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.provider
            .aead_open(SEAL_SUITE, &self.seal_key, nonce, slot, ciphertext)
            .map(|s| s.as_bytes().to_vec())
            .map_err(|_| Error::Unseal)
    }

    /// The stored name of a record: a keyed hash, so the file does not show which user,
    /// group or KeyPackage a row belongs to.
    pub(crate) fn name(&self, kind: &str, id: &[u8]) -> Result<Vec<u8>, Error> {
        let mut input = Vec::with_capacity(kind.len() + id.len() + 1);
        input.extend_from_slice(kind.as_bytes());
        input.push(0);
        input.extend_from_slice(id);
        Ok(self.provider.mac(SEAL_SUITE, &self.name_key, &input)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_key_and_slot() {
        let a = Sealer::new(
            &StoreKey::Passphrase("correct horse".into(), KdfParams::insecure_fast()),
            b"0123456789abcdef",
        )
        .unwrap();
        let b = Sealer::new(
            &StoreKey::Passphrase("battery staple".into(), KdfParams::insecure_fast()),
            b"0123456789abcdef",
        )
        .unwrap();
        let sealed = a.seal(b"slot-1", b"secret").unwrap();
        assert_eq!(a.open(b"slot-1", &sealed).unwrap(), b"secret");
        assert!(matches!(a.open(b"slot-2", &sealed), Err(Error::Unseal)));
        assert!(matches!(b.open(b"slot-1", &sealed), Err(Error::Unseal)));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(a.open(b"slot-1", &flipped), Err(Error::Unseal)));
        assert!(matches!(
            a.open(b"slot-1", &sealed[..5]),
            Err(Error::Unseal)
        ));
        assert_ne!(
            a.name("group", b"x").unwrap(),
            b.name("group", b"x").unwrap()
        );
        assert_ne!(
            a.name("group", b"x").unwrap(),
            a.name("groupx", b"").unwrap()
        );
    }
}
