//! The AS certificate authority (RFC 9750 §4, §7: issue credentials with a defined lifetime).
//!
//! Chain: **AS root** (self-signed, the trust anchor clients pin) → **issuing CA** → **device
//! certificate**. Certificate profile of a device (what `conclave-mls`'s X.509 validator
//! expects, RFC 9420 §5.3):
//! - subjectPublicKeyInfo: the device's MLS signature key (Ed25519), so the certificate *is*
//!   the device's MLS credential;
//! - subjectAltName: the URI `mls:{user}/{device}` (user `local@domain`, device id printable,
//!   without `/`): user and device in one name;
//! - keyUsage digitalSignature, basicConstraints cA false, a random 128-bit serial;
//! - validity: from one minute before issuance (clock skew) for the configured lifetime,
//!   never past the issuing CA's own notAfter.
//!
//! All three keys are Ed25519 behind [`Signer`]; the AS never sees a device's private key
//! (§8.4.3).

use crate::signer::{FileSigner, Signer, SignerError};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose,
    SanType, SerialNumber,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;

const ROOT_NAME: &str = "Conclave AS root";
const ISSUING_NAME: &str = "Conclave AS issuing CA";
/// Lifetime of a new root: 20 years.
const ROOT_LIFETIME: u64 = 20 * 365 * 86_400;
/// Lifetime of a new issuing CA: 5 years.
const ISSUING_LIFETIME: u64 = 5 * 365 * 86_400;
/// Clock skew allowed on a new certificate's notBefore.
const SKEW: u64 = 60;

/// A CA failure.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A key could not be used.
    #[error(transparent)]
    Signer(#[from] SignerError),
    /// A certificate could not be built.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A CA file is missing or unreadable.
    #[error("CA file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A name cannot go into a certificate.
    #[error("invalid name: {0}")]
    Name(String),
    /// The time cannot be represented.
    #[error("time out of range")]
    Time,
}

/// An Ed25519 public key as rcgen wants it.
struct PublicKey([u8; 32]);

impl rcgen::PublicKeyData for PublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

/// A [`Signer`] as rcgen wants it.
struct SignerKey {
    signer: Arc<dyn Signer>,
    public: [u8; 32],
}

impl SignerKey {
    fn new(signer: Arc<dyn Signer>) -> Self {
        let public = signer.public_key();
        Self { signer, public }
    }
}

impl rcgen::PublicKeyData for SignerKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

impl rcgen::SigningKey for SignerKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.signer
            .sign(msg)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

fn datetime(unix: u64) -> Result<time::OffsetDateTime, CaError> {
    let unix = i64::try_from(unix).map_err(|_| CaError::Time)?;
    time::OffsetDateTime::from_unix_timestamp(unix).map_err(|_| CaError::Time)
}

/// The subject key identifier: the first 20 bytes of SHA-256 of the key.
fn key_id(public: &[u8]) -> KeyIdMethod {
    KeyIdMethod::PreSpecified(Sha256::digest(public)[..20].to_vec())
}

fn random_serial() -> Result<SerialNumber, CaError> {
    let mut bytes = crate::signer::random_32()?[..16].to_vec();
    bytes[0] &= 0x7f; // a positive INTEGER
    bytes[0] |= 0x01; // and no leading zero byte to strip
    Ok(SerialNumber::from(bytes))
}

fn ca_params(
    name: &str,
    public: &[u8],
    not_before: u64,
    not_after: u64,
    path_len: Option<u8>,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.serial_number = Some(random_serial()?);
    params.not_before = datetime(not_before)?;
    params.not_after = datetime(not_after)?;
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.key_identifier_method = key_id(public);
    Ok(params)
}

/// The AS certificate authority.
pub struct Ca {
    root_der: Vec<u8>,
    issuing_der: Vec<u8>,
    issuing_not_after: u64,
    issuer: Issuer<'static, SignerKey>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("issuing_not_after", &self.issuing_not_after)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    std::fs::read(path).map_err(|e| CaError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    std::fs::write(path, bytes).map_err(|e| CaError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

impl Ca {
    /// Loads the CA kept in `dir` (`root.key`, `root.der`, `issuing.key`, `issuing.der`,
    /// `issuing.not_after`), creating a new root and issuing CA there first if `dir` holds
    /// none.
    pub fn load_or_create(dir: &Path, now: u64) -> Result<Self, CaError> {
        std::fs::create_dir_all(dir).map_err(|e| CaError::File {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        if !dir.join("root.key").exists() {
            let root: Arc<dyn Signer> = Arc::new(FileSigner::create(&dir.join("root.key"))?);
            let issuing: Arc<dyn Signer> = Arc::new(FileSigner::create(&dir.join("issuing.key"))?);
            let (root_der, issuing_der, not_after) = Self::create_hierarchy(root, &issuing, now)?;
            write(&dir.join("root.der"), &root_der)?;
            write(&dir.join("issuing.der"), &issuing_der)?;
            write(
                &dir.join("issuing.not_after"),
                not_after.to_string().as_bytes(),
            )?;
        }
        let issuing: Arc<dyn Signer> = Arc::new(FileSigner::load(&dir.join("issuing.key"))?);
        let not_after_path = dir.join("issuing.not_after");
        let not_after = String::from_utf8_lossy(&read(&not_after_path)?)
            .trim()
            .parse()
            .map_err(|_| CaError::File {
                path: not_after_path.display().to_string(),
                message: "not a Unix time".into(),
            })?;
        Ok(Self::from_parts(
            read(&dir.join("root.der"))?,
            read(&dir.join("issuing.der"))?,
            not_after,
            issuing,
        ))
    }

    /// Creates a self-signed root with `root` and an issuing CA certificate for `issuing`
    /// signed by it: `(root DER, issuing DER, issuing notAfter)`.
    pub fn create_hierarchy(
        root: Arc<dyn Signer>,
        issuing: &Arc<dyn Signer>,
        now: u64,
    ) -> Result<(Vec<u8>, Vec<u8>, u64), CaError> {
        let root_key = SignerKey::new(root);
        let root_params = ca_params(
            ROOT_NAME,
            &root_key.public,
            now - SKEW.min(now),
            now + ROOT_LIFETIME,
            None,
        )?;
        let root_der = root_params.self_signed(&root_key)?.der().to_vec();
        let root_issuer = Issuer::new(root_params, root_key);
        let issuing_key = PublicKey(issuing.public_key());
        let not_after = now + ISSUING_LIFETIME;
        let mut issuing_params = ca_params(
            ISSUING_NAME,
            &issuing_key.0,
            now - SKEW.min(now),
            not_after,
            Some(0),
        )?;
        issuing_params.use_authority_key_identifier_extension = true;
        let issuing_der = issuing_params
            .signed_by(&issuing_key, &root_issuer)?
            .der()
            .to_vec();
        Ok((root_der, issuing_der, not_after))
    }

    /// A CA from its parts: the root certificate, the issuing CA certificate (named
    /// "Conclave AS issuing CA", as [`Ca::create_hierarchy`] makes it), its notAfter, and
    /// the issuing key (a file, an HSM…).
    pub fn from_parts(
        root_der: Vec<u8>,
        issuing_der: Vec<u8>,
        issuing_not_after: u64,
        issuing: Arc<dyn Signer>,
    ) -> Self {
        let key = SignerKey::new(issuing);
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, ISSUING_NAME);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.key_identifier_method = key_id(&key.public);
        Self {
            root_der,
            issuing_der,
            issuing_not_after,
            issuer: Issuer::new(params, key),
        }
    }

    /// The root certificate (DER): the trust anchor.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// Issues a device certificate for `signature_key` naming `user`/`device`, valid from
    /// `now` for `lifetime` seconds (capped by the issuing CA's notAfter): the chain (leaf,
    /// issuing CA) and the leaf's notAfter.
    pub fn issue(
        &self,
        user: &str,
        device: &str,
        signature_key: &[u8; 32],
        now: u64,
        lifetime: u64,
    ) -> Result<(Vec<Vec<u8>>, u64), CaError> {
        let not_after = (now + lifetime).min(self.issuing_not_after);
        let uri = format!("mls:{user}/{device}");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, device);
        params.serial_number = Some(random_serial()?);
        params.not_before = datetime(now - SKEW.min(now))?;
        params.not_after = datetime(not_after)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names = vec![SanType::URI(
            uri.clone().try_into().map_err(|_| CaError::Name(uri))?,
        )];
        params.key_identifier_method = key_id(signature_key);
        params.use_authority_key_identifier_extension = true;
        let leaf = params
            .signed_by(&PublicKey(*signature_key), &self.issuer)?
            .der()
            .to_vec();
        Ok((vec![leaf, self.issuing_der.clone()], not_after))
    }
}
