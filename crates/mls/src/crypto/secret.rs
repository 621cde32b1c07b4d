//! Types that hold secret bytes: zeroized on drop, never printed, compared in constant time.

use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Takes ownership of secret bytes.
            pub fn new(bytes: Vec<u8>) -> Self {
                Self(bytes)
            }
            /// Copies secret bytes.
            pub fn from_slice(bytes: &[u8]) -> Self {
                Self(bytes.to_vec())
            }
            /// The secret bytes.
            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }
            /// The length in bytes.
            pub fn len(&self) -> usize {
                self.0.len()
            }
            /// Whether the secret is empty.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(<{} bytes redacted>)"), self.0.len())
            }
        }

        impl PartialEq for $name {
            /// Constant-time comparison.
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }
        impl Eq for $name {}
    };
}

secret_bytes!(
    /// A secret value of the key schedule, the secret tree or a KDF output.
    Secret
);
secret_bytes!(
    /// An HPKE private key in its `SerializePrivateKey` form (RFC 9180 §7.1.2).
    HpkePrivateKey
);
secret_bytes!(
    /// A signature private key: the seed for EdDSA, the big-endian scalar for ECDSA.
    SignaturePrivateKey
);

impl Secret {
    /// The secret bytes, writable (to fill a buffer in place without a copy).
    pub(crate) fn as_mut_bytes(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// A secret of `len` zero bytes (used where RFC 9420 says "a vector of Nh zeros").
    pub fn zero(len: usize) -> Self {
        Self(vec![0; len])
    }
}

/// An HPKE key pair.
#[derive(Clone, Debug)]
pub struct HpkeKeyPair {
    /// The private key.
    pub private_key: HpkePrivateKey,
    /// The public key, serialized (`SerializePublicKey`).
    pub public_key: Vec<u8>,
}

/// A signature key pair.
#[derive(Clone, Debug)]
pub struct SignatureKeyPair {
    /// The private key.
    pub private_key: SignaturePrivateKey,
    /// The public key in its RFC 9420 §5.1.1 form.
    pub public_key: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secret_bytes() {
        let secret = Secret::new(vec![0xab; 4]);
        let shown = format!(
            "{secret:?} {:?} {:?}",
            HpkePrivateKey::from_slice(&[0xab; 4]),
            SignaturePrivateKey::from_slice(&[0xab; 4])
        );
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn zeroize_clears_the_bytes() {
        let mut secret = Secret::new(vec![0x5a; 16]);
        secret.zeroize();
        // `Vec::zeroize` overwrites the bytes and then empties the vector.
        assert!(secret.is_empty());
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(Secret::from_slice(b"abc"), Secret::from_slice(b"abc"));
        assert_ne!(Secret::from_slice(b"abc"), Secret::from_slice(b"abd"));
        assert_ne!(Secret::from_slice(b"abc"), Secret::from_slice(b"ab"));
    }
}
