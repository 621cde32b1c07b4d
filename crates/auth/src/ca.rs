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
use std::path::{Path, PathBuf};
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

/// The files of a CA directory.
const ROOT_KEY: &str = "root.key";
const ROOT_CERT: &str = "root.der";
const ISSUING_KEY: &str = "issuing.key";
const ISSUING_CERT: &str = "issuing.der";
/// A rotation in progress: the next issuing key and certificate, written whole and synced
/// before [`NEXT_READY`] marks them complete; only then are they renamed into place.
const NEXT_KEY: &str = "issuing.next.key";
const NEXT_CERT: &str = "issuing.next.der";
const NEXT_READY: &str = "issuing.next.ready";
/// Written by earlier versions beside `issuing.der`; the certificate itself is read now.
const LEGACY_NOT_AFTER: &str = "issuing.not_after";

/// The AS certificate authority.
///
/// Loaded from a directory ([`Ca::load_or_create`]), it can replace its issuing CA before
/// that expires ([`Ca::rotate_issuing`]): the root signs a new issuing certificate for a new
/// key. Chains issued before stay valid (they carry the old issuing certificate, which the
/// same root signed), so nothing a client holds changes; only the root is pinned.
pub struct Ca {
    root_der: Vec<u8>,
    root_not_after: u64,
    issuing_der: Vec<u8>,
    issuing_not_after: u64,
    issuer: Issuer<'static, SignerKey>,
    /// Where the keys live, when loaded from files: what a rotation rewrites.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("issuing_not_after", &self.issuing_not_after)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> CaError {
    CaError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    std::fs::read(path).map_err(|e| file_error(path, e))
}

/// Writes `bytes` to `path` and syncs it to disk.
fn write(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    use std::io::Write;
    let mut file = std::fs::File::create(path).map_err(|e| file_error(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(path, e))
}

fn rename(dir: &Path, from: &str, to: &str) -> Result<(), CaError> {
    std::fs::rename(dir.join(from), dir.join(to)).map_err(|e| file_error(&dir.join(from), e))
}

fn remove_if_present(path: &Path) -> Result<(), CaError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(file_error(path, e)),
        _ => Ok(()),
    }
}

/// Syncs the directory itself, so that renames and removals in it survive a crash.
fn sync_dir(dir: &Path) -> Result<(), CaError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_error(dir, e))
}

/// What the CA needs of one of its own certificates: its notAfter and its key.
struct Parsed {
    not_after: u64,
    public_key: Vec<u8>,
}

fn parse(path: &Path, der: &[u8]) -> Result<Parsed, CaError> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| file_error(path, e))?;
    let tbs = cert.tbs_certificate();
    Ok(Parsed {
        not_after: tbs.validity().not_after.to_unix_duration().as_secs(),
        public_key: tbs
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes()
            .to_vec(),
    })
}

impl Ca {
    /// Loads the CA kept in `dir` (`root.der`, `issuing.key`, `issuing.der`, and `root.key`
    /// unless the root is kept offline), creating a new root and issuing CA there first if
    /// `dir` holds no root certificate, and completing a
    /// rotation a crash interrupted (one whose new files were all written is finished; one
    /// whose were not is discarded, and the old issuing CA stays).
    pub fn load_or_create(dir: &Path, now: u64) -> Result<Self, CaError> {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
        // A directory with a root certificate but no root key holds a root kept offline.
        if !dir.join(ROOT_CERT).exists() {
            let root: Arc<dyn Signer> = Arc::new(FileSigner::create(&dir.join(ROOT_KEY))?);
            let issuing: Arc<dyn Signer> = Arc::new(FileSigner::create(&dir.join(ISSUING_KEY))?);
            let (root_der, issuing_der, _) = Self::create_hierarchy(root, &issuing, now)?;
            write(&dir.join(ROOT_CERT), &root_der)?;
            write(&dir.join(ISSUING_CERT), &issuing_der)?;
            sync_dir(dir)?;
        }
        Self::finish_rotation(dir)?;
        let issuing: Arc<dyn Signer> = Arc::new(FileSigner::load(&dir.join(ISSUING_KEY))?);
        let cert_path = dir.join(ISSUING_CERT);
        let issuing_der = read(&cert_path)?;
        let parsed = parse(&cert_path, &issuing_der)?;
        if parsed.public_key != issuing.public_key() {
            return Err(file_error(
                &cert_path,
                "the issuing certificate is not for issuing.key",
            ));
        }
        let mut ca = Self::from_parts(
            read(&dir.join(ROOT_CERT))?,
            issuing_der,
            parsed.not_after,
            issuing,
        );
        ca.root_not_after = parse(&dir.join(ROOT_CERT), &ca.root_der)?.not_after;
        ca.dir = Some(dir.to_path_buf());
        Ok(ca)
    }

    /// Completes or discards a rotation a crash interrupted (see [`Ca::rotate_issuing`]).
    fn finish_rotation(dir: &Path) -> Result<(), CaError> {
        if dir.join(NEXT_READY).exists() {
            // Complete: the certificate goes first, then the key, so that a crash in between
            // is caught by the key check at load and finished by the next start.
            if dir.join(NEXT_CERT).exists() {
                rename(dir, NEXT_CERT, ISSUING_CERT)?;
            }
            if dir.join(NEXT_KEY).exists() {
                rename(dir, NEXT_KEY, ISSUING_KEY)?;
            }
            remove_if_present(&dir.join(LEGACY_NOT_AFTER))?;
            sync_dir(dir)?;
            remove_if_present(&dir.join(NEXT_READY))?;
        } else {
            remove_if_present(&dir.join(NEXT_KEY))?;
            remove_if_present(&dir.join(NEXT_CERT))?;
        }
        sync_dir(dir)
    }

    /// Whether the issuing CA should be replaced at `now`: less than `margin` seconds of it
    /// remain (give it twice the device certificate lifetime, so that no device certificate
    /// is ever cut short by its issuer's expiry).
    pub fn rotation_due(&self, now: u64, margin: u64) -> bool {
        self.issuing_not_after < now.saturating_add(margin)
    }

    /// Replaces the issuing CA of the CA loaded from its directory: a new issuing key, a
    /// certificate for it signed by the root key (`root.key` must be in the directory; a root
    /// kept offline rotates with its own tooling), valid from `now` for five years or to
    /// the root's notAfter, whichever is first. The files are replaced so that a crash at any
    /// point leaves either the old issuing CA or the new one. Returns the reloaded CA.
    pub fn rotate_issuing(&self, now: u64) -> Result<Self, CaError> {
        let dir = self.dir.as_deref().ok_or_else(|| CaError::File {
            path: "-".into(),
            message: "this CA was not loaded from a directory".into(),
        })?;
        let root_path = dir.join(ROOT_KEY);
        if !root_path.exists() {
            return Err(file_error(&root_path, "the root key is needed to rotate"));
        }
        let root: Arc<dyn Signer> = Arc::new(FileSigner::load(&root_path)?);
        if root.public_key().as_slice() != parse(&dir.join(ROOT_CERT), &self.root_der)?.public_key {
            return Err(file_error(&root_path, "root.key does not match root.der"));
        }
        Self::finish_rotation(dir)?;
        let next: Arc<dyn Signer> = Arc::new(FileSigner::create(&dir.join(NEXT_KEY))?);
        let root_issuer = Self::root_issuer(root, self.root_not_after)?;
        let not_after = (now + ISSUING_LIFETIME).min(self.root_not_after);
        let next_der = Self::issuing_certificate(&root_issuer, &next, now, not_after)?;
        write(&dir.join(NEXT_CERT), &next_der)?;
        sync_dir(dir)?;
        write(&dir.join(NEXT_READY), b"")?;
        sync_dir(dir)?;
        Self::finish_rotation(dir)?;
        Self::load_or_create(dir, now)
    }

    /// The root as an rcgen issuer: its name and key identifier as in `root.der`.
    fn root_issuer(
        root: Arc<dyn Signer>,
        root_not_after: u64,
    ) -> Result<Issuer<'static, SignerKey>, CaError> {
        let key = SignerKey::new(root);
        // Only the name and key identifier reach the child certificate: they match the root
        // certificate's because both come from the same constants and key.
        let params = ca_params(ROOT_NAME, &key.public, 0, root_not_after, None)?;
        Ok(Issuer::new(params, key))
    }

    /// An issuing CA certificate for `issuing`, signed by `root`.
    fn issuing_certificate(
        root: &Issuer<'static, SignerKey>,
        issuing: &Arc<dyn Signer>,
        now: u64,
        not_after: u64,
    ) -> Result<Vec<u8>, CaError> {
        let issuing_key = PublicKey(issuing.public_key());
        let mut params = ca_params(
            ISSUING_NAME,
            &issuing_key.0,
            now - SKEW.min(now),
            not_after,
            Some(0),
        )?;
        params.use_authority_key_identifier_extension = true;
        Ok(params.signed_by(&issuing_key, root)?.der().to_vec())
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
        let not_after = now + ISSUING_LIFETIME;
        let issuing_der = Self::issuing_certificate(&root_issuer, issuing, now, not_after)?;
        Ok((root_der, issuing_der, not_after))
    }

    /// A CA from its parts: the root certificate, the issuing CA certificate (named
    /// "Conclave AS issuing CA", as [`Ca::create_hierarchy`] makes it), its notAfter, and
    /// the issuing key (a file, an HSM…). Such a CA does not rotate itself.
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
            root_not_after: u64::MAX,
            issuing_der,
            issuing_not_after,
            issuer: Issuer::new(params, key),
            dir: None,
        }
    }

    /// The root certificate (DER): the trust anchor.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The issuing CA certificate (DER), second in every chain this CA issues now.
    pub fn issuing_der(&self) -> &[u8] {
        &self.issuing_der
    }

    /// When the issuing CA certificate expires (Unix seconds).
    pub fn issuing_not_after(&self) -> u64 {
        self.issuing_not_after
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
