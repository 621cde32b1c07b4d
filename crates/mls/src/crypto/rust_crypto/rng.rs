//! The provider's source of randomness.

use super::CryptoError;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::sync::Mutex;

/// The operating system's generator, or a seeded ChaCha20 stream for reproducible tests.
#[derive(Default)]
// One per provider, so the size of the seeded variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum ProviderRng {
    #[default]
    Os,
    Seeded(Mutex<ChaCha20Rng>),
}

impl core::fmt::Debug for ProviderRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Os => "Os",
            Self::Seeded(_) => "Seeded",
        })
    }
}

impl ProviderRng {
    pub(super) fn seeded(seed: [u8; 32]) -> Self {
        Self::Seeded(Mutex::new(ChaCha20Rng::from_seed(seed)))
    }

    pub(super) fn fill(&self, out: &mut [u8]) -> Result<(), CryptoError> {
        match self {
            Self::Os => getrandom::fill(out).map_err(|_| CryptoError::Rng),
            Self::Seeded(rng) => {
                // A poisoned lock only means another thread panicked mid-draw; the stream
                // itself is still a valid generator.
                let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
                rng.fill_bytes(out);
                Ok(())
            }
        }
    }

    /// A generator for one operation, seeded from this source, so that failures of the OS
    /// generator surface here as an error instead of inside a primitive.
    pub(super) fn child(&self) -> Result<ChaCha20Rng, CryptoError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        self.fill(seed.as_mut())?;
        Ok(ChaCha20Rng::from_seed(*seed))
    }
}
