//! The CA's signing keys behind a [`Signer`] trait, so that an HSM (RFC 9750 §8.4.3: "keep
//! the AS root signing keys in HSMs") can replace the file-backed [`FileSigner`].

use ed25519_dalek::Signer as _;
use std::io::Write;
use std::path::Path;

/// A signing failure.
#[derive(Debug, thiserror::Error)]
pub enum SignerError {
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The key file does not hold a 32-byte Ed25519 seed.
    #[error("key file {0} is not a 32-byte Ed25519 seed")]
    Malformed(String),
    /// The operating system's random generator failed.
    #[error("random generator: {0}")]
    Random(String),
    /// The signing device refused or failed.
    #[error("signing failed: {0}")]
    Failed(String),
}

/// An Ed25519 signing key the AS cannot necessarily read: a file today, an HSM tomorrow.
pub trait Signer: Send + Sync {
    /// The Ed25519 public key (32 bytes).
    fn public_key(&self) -> [u8; 32];
    /// An Ed25519 signature (64 bytes) over `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// An Ed25519 key whose 32-byte seed is kept in a file (mode 0600).
pub struct FileSigner {
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for FileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSigner")
            .field("public_key", &self.key.verifying_key())
            .finish_non_exhaustive()
    }
}

/// 32 random bytes from the operating system.
pub(crate) fn random_32() -> Result<[u8; 32], SignerError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SignerError::Random(e.to_string()))?;
    Ok(bytes)
}

impl FileSigner {
    /// Loads the key at `path`.
    pub fn load(path: &Path) -> Result<Self, SignerError> {
        let io = |source| SignerError::Io {
            path: path.display().to_string(),
            source,
        };
        let bytes = std::fs::read(path).map_err(io)?;
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| SignerError::Malformed(path.display().to_string()))?;
        Ok(Self {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Creates a fresh key and writes it to `path`, which must not exist.
    pub fn create(path: &Path) -> Result<Self, SignerError> {
        let io = |source| SignerError::Io {
            path: path.display().to_string(),
            source,
        };
        let seed = random_32()?;
        write_secret_file(path, &seed).map_err(io)?;
        Ok(Self {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }
}

impl Signer for FileSigner {
    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        Ok(self.key.sign(message).to_bytes().to_vec())
    }
}

/// Writes `bytes` to a new file at `path` (which must not exist), readable by its owner
/// only (mode 0600), synced to disk: how the AS keeps every secret key it makes.
pub(crate) fn write_secret_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// A 32-byte secret seed kept in a file (mode 0600), created at `path` if absent: how the
/// key-transparency VRF key is kept.
pub fn load_or_create_seed(path: &Path) -> Result<[u8; 32], SignerError> {
    let signer = if path.exists() {
        FileSigner::load(path)?
    } else {
        FileSigner::create(path)?
    };
    Ok(signer.key.to_bytes())
}
