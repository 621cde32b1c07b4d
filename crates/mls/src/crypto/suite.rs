//! Cipher suites (RFC 9420 §5.1, §17.1) and the algorithms each one names.

use tls_codec::{TlsDeserialize, TlsDeserializeBytes, TlsSerialize, TlsSize};

/// An MLS cipher suite identifier (RFC 9420 §17.1).
///
/// Kept as an open `u16` because unknown and GREASE values (§13.5) must survive a decode
/// and re-encode; use [`CipherSuite::is_known`] to ask whether the library knows it.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    TlsSerialize,
    TlsDeserialize,
    TlsDeserializeBytes,
    TlsSize,
)]
pub struct CipherSuite(pub u16);

/// The hash function of a cipher suite (also selects HMAC and HKDF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// The AEAD of a cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadAlgorithm {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

/// The HPKE KEM of a cipher suite (RFC 9180 §7.1 identifiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KemAlgorithm {
    /// DHKEM(P-256, HKDF-SHA256), 0x0010.
    DhKemP256,
    /// DHKEM(P-384, HKDF-SHA384), 0x0011.
    DhKemP384,
    /// DHKEM(P-521, HKDF-SHA512), 0x0012.
    DhKemP521,
    /// DHKEM(X25519, HKDF-SHA256), 0x0020.
    DhKemX25519,
    /// DHKEM(X448, HKDF-SHA512), 0x0021.
    DhKemX448,
    /// X-Wing (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem-06), 0x647a.
    XWing,
}

/// The signature scheme of a cipher suite (TLS SignatureScheme names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// ecdsa_secp256r1_sha256.
    EcdsaP256Sha256,
    /// ecdsa_secp384r1_sha384.
    EcdsaP384Sha384,
    /// ecdsa_secp521r1_sha512.
    EcdsaP521Sha512,
    /// ed25519.
    Ed25519,
    /// ed448.
    Ed448,
}

impl KemAlgorithm {
    /// The RFC 9180 KEM identifier.
    pub fn id(self) -> u16 {
        match self {
            Self::DhKemP256 => 0x0010,
            Self::DhKemP384 => 0x0011,
            Self::DhKemP521 => 0x0012,
            Self::DhKemX25519 => 0x0020,
            Self::DhKemX448 => 0x0021,
            Self::XWing => 0x647a,
        }
    }
    /// `Nsk`: the length of a serialized private key.
    pub fn private_key_len(self) -> usize {
        match self {
            Self::DhKemP256 | Self::DhKemX25519 | Self::XWing => 32,
            Self::DhKemP384 => 48,
            Self::DhKemP521 => 66,
            Self::DhKemX448 => 56,
        }
    }
}

impl HashAlgorithm {
    /// `Nh`: the output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

impl AeadAlgorithm {
    /// `Nk`: the key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }
    /// `Nn`: the nonce length in bytes.
    pub fn nonce_len(self) -> usize {
        12
    }
    /// The RFC 9180 AEAD identifier.
    pub fn id(self) -> u16 {
        match self {
            Self::Aes128Gcm => 0x0001,
            Self::Aes256Gcm => 0x0002,
            Self::ChaCha20Poly1305 => 0x0003,
        }
    }
}

struct Algorithms {
    kem: KemAlgorithm,
    aead: AeadAlgorithm,
    hash: HashAlgorithm,
    signature: SignatureScheme,
}

impl CipherSuite {
    /// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
    pub const MLS_128_DHKEMX25519_AES128GCM_SHA256_ED25519: Self = Self(0x0001);
    /// MLS_128_DHKEMP256_AES128GCM_SHA256_P256.
    pub const MLS_128_DHKEMP256_AES128GCM_SHA256_P256: Self = Self(0x0002);
    /// MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
    pub const MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_ED25519: Self = Self(0x0003);
    /// MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448.
    pub const MLS_256_DHKEMX448_AES256GCM_SHA512_ED448: Self = Self(0x0004);
    /// MLS_256_DHKEMP521_AES256GCM_SHA512_P521.
    pub const MLS_256_DHKEMP521_AES256GCM_SHA512_P521: Self = Self(0x0005);
    /// MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448.
    pub const MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_ED448: Self = Self(0x0006);
    /// MLS_256_DHKEMP384_AES256GCM_SHA384_P384.
    pub const MLS_256_DHKEMP384_AES256GCM_SHA384_P384: Self = Self(0x0007);
    /// `MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519`, code point 0x004D: the X-Wing hybrid
    /// KEM (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem-06, HPKE KEM id 0x647a),
    /// HKDF-SHA256, ChaCha20-Poly1305, SHA-256 and Ed25519.
    ///
    /// IANA has not assigned an X-Wing MLS suite yet. draft-mahy-mls-xwing-00 asked for a "new
    /// assignment" (X-Wing with the suite-1 algorithms); draft-ietf-mls-pq-ciphersuites, which
    /// replaced it, still lists its hybrid suites as `TBD` (with SHAKE256, AES-256-GCM and
    /// SHA-384). 0x004D with exactly these algorithms is what OpenMLS ships
    /// (`MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519`, KEM "XWingKemDraft6") and what
    /// deployments built on it use, so we take it for interoperability; revisit when IANA
    /// assigns a value.
    pub const MLS_XWING: Self = Self(XWING_CODE_POINT);

    /// Every suite this library implements, in code-point order.
    pub const ALL: [Self; 8] = [
        Self(1),
        Self(2),
        Self(3),
        Self(4),
        Self(5),
        Self(6),
        Self(7),
        Self::MLS_XWING,
    ];

    fn algorithms(self) -> Option<Algorithms> {
        use AeadAlgorithm::*;
        use HashAlgorithm::*;
        use KemAlgorithm::*;
        use SignatureScheme::*;
        let (kem, aead, hash, signature) = match self.0 {
            0x0001 => (DhKemX25519, Aes128Gcm, Sha256, Ed25519),
            0x0002 => (DhKemP256, Aes128Gcm, Sha256, EcdsaP256Sha256),
            0x0003 => (DhKemX25519, ChaCha20Poly1305, Sha256, Ed25519),
            0x0004 => (DhKemX448, Aes256Gcm, Sha512, Ed448),
            0x0005 => (DhKemP521, Aes256Gcm, Sha512, EcdsaP521Sha512),
            0x0006 => (DhKemX448, ChaCha20Poly1305, Sha512, Ed448),
            0x0007 => (DhKemP384, Aes256Gcm, Sha384, EcdsaP384Sha384),
            XWING_CODE_POINT => XWING_ALGORITHMS,
            _ => return None,
        };
        Some(Algorithms {
            kem,
            aead,
            hash,
            signature,
        })
    }

    /// Whether this library knows the suite's algorithms.
    pub fn is_known(self) -> bool {
        self.algorithms().is_some()
    }
    /// The suite's HPKE KEM, if the suite is known.
    pub fn kem(self) -> Option<KemAlgorithm> {
        self.algorithms().map(|a| a.kem)
    }
    /// The suite's AEAD, if the suite is known.
    pub fn aead(self) -> Option<AeadAlgorithm> {
        self.algorithms().map(|a| a.aead)
    }
    /// The suite's hash function, if the suite is known.
    pub fn hash(self) -> Option<HashAlgorithm> {
        self.algorithms().map(|a| a.hash)
    }
    /// The suite's signature scheme, if the suite is known.
    pub fn signature(self) -> Option<SignatureScheme> {
        self.algorithms().map(|a| a.signature)
    }
}

/// Code point for the X-Wing suite: OpenMLS's de-facto value, not (yet) an IANA assignment;
/// see [`CipherSuite::MLS_XWING`].
const XWING_CODE_POINT: u16 = 0x004D;
const XWING_ALGORITHMS: (KemAlgorithm, AeadAlgorithm, HashAlgorithm, SignatureScheme) = (
    KemAlgorithm::XWing,
    AeadAlgorithm::ChaCha20Poly1305,
    HashAlgorithm::Sha256,
    SignatureScheme::Ed25519,
);

impl core::fmt::Debug for CipherSuite {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CipherSuite({:#06x})", self.0)
    }
}
