//! X.509 credentials (RFC 9420 §5.3, §5.3.1): certificate-path validation up to configured
//! trust anchors, and the binding of the leaf certificate to the member's MLS signature key.
//!
//! # What is checked
//!
//! For a credential `x509(certificates)` (leaf first), [`X509Validator`] checks:
//!
//! * the chain is non-empty, at most [`MAX_CHAIN_LEN`] certificates, and every certificate
//!   parses as DER (RFC 5280 profile);
//! * each certificate's issuer name equals the next certificate's subject name, and its
//!   signature verifies with the next certificate's public key; the last certificate either
//!   *is* a configured trust anchor (byte for byte) or is issued (name and signature) by one;
//! * every issuer (intermediate or anchor) has basicConstraints `cA = TRUE`, keyCertSign in
//!   its keyUsage when keyUsage is present, and a pathLenConstraint that allows the number of
//!   intermediates below it;
//! * with a clock, every certificate of the path, anchors included, is within its validity
//!   period;
//! * no certificate carries a critical extension this module does not understand;
//! * the leaf's keyUsage, when present, allows digitalSignature;
//! * the leaf's SubjectPublicKeyInfo is a signature key type (Ed25519, Ed448, ECDSA on P-256,
//!   P-384 or P-521) and its key equals the MLS signature key, as raw bytes (Ed25519: the
//!   32-byte key; ECDSA: the uncompressed SEC1 point, the RFC 9420 §5.1.1 forms; a
//!   certificate carrying a compressed point does not match).
//!
//! Supported certificate signature algorithms: ecdsa-with-SHA256 with a P-256 issuer key,
//! ecdsa-with-SHA384 with a P-384 issuer key, and Ed25519. Anything else is rejected.
//!
//! # Identity
//!
//! The client a certificate names is read from its leaf ([`X509Validator::identity`]), in this
//! order:
//!
//! 1. a subjectAltName URI `mls:user@domain` or `mls:user@domain/device-id` (the form the
//!    Conclave AS issues: user and device in one name, so they cannot be mixed up across
//!    certificates);
//! 2. otherwise a single subjectAltName rfc822Name `user@domain` (no device);
//! 3. otherwise the subject's commonName, taken as the user (no device).
//!
//! # Limitations
//!
//! No revocation (CRL, OCSP), no name constraints or policy processing (a critical
//! nameConstraints or certificatePolicies extension is rejected rather than ignored), no
//! extendedKeyUsage check, names compared structurally (not with RFC 5280 §7.1 string
//! preparation), and no path building: the chain must be presented in order.

use super::IdentityValidator;
use crate::Error;
use crate::messages::{Credential, SignaturePublicKey};
use crate::time::TimePolicy;
use std::fmt;
use x509_cert::Certificate as X509Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, SubjectAltName};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// The longest certificate chain accepted in a credential, leaf included.
pub const MAX_CHAIN_LEN: usize = 8;

const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const ID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

// Extensions understood here, so allowed to be critical.
const ID_CE_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const ID_CE_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const ID_CE_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const ID_CE_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
const ID_CE_AUTHORITY_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.35");
const UNDERSTOOD_EXTENSIONS: [ObjectIdentifier; 5] = [
    ID_CE_BASIC_CONSTRAINTS,
    ID_CE_KEY_USAGE,
    ID_CE_SUBJECT_ALT_NAME,
    ID_CE_SUBJECT_KEY_ID,
    ID_CE_AUTHORITY_KEY_ID,
];

/// The URI scheme of the subjectAltName that names an MLS client.
const MLS_URI_SCHEME: &str = "mls:";

/// The client an X.509 credential names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    /// The user, `user@domain` (or a commonName when the certificate has no better name).
    pub user: String,
    /// The device id, when the certificate names one.
    pub device: Option<String>,
}

impl fmt::Display for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.device {
            Some(device) => write!(f, "{}/{}", self.user, device),
            None => f.write_str(&self.user),
        }
    }
}

/// A trust anchor: a root certificate, kept as given and parsed.
#[derive(Clone)]
struct Anchor {
    der: Vec<u8>,
    cert: X509Certificate,
}

/// An [`IdentityValidator`] for X.509 credentials: validates each credential's chain up to one
/// of the configured trust anchors and checks that its leaf certificate carries the member's
/// signature key. See the [module documentation](self) for the exact checks.
///
/// Every rejection is an [`Error::CredentialRejected`] whose message says which certificate
/// (by its position in the chain, 0 being the leaf) failed which check.
///
/// ```
/// use conclave_mls::identity::x509::X509Validator;
/// use conclave_mls::time::TimePolicy;
///
/// // Trust anchors must parse as DER certificates.
/// assert!(X509Validator::new([b"not a certificate"], TimePolicy::system()).is_err());
/// // And there must be at least one.
/// assert!(X509Validator::new(Vec::<Vec<u8>>::new(), TimePolicy::system()).is_err());
/// ```
///
/// A validator is built from DER root certificates and a [`TimePolicy`]:
///
/// ```no_run
/// # use conclave_mls::identity::x509::X509Validator;
/// # use conclave_mls::time::TimePolicy;
/// # let as_root_der: Vec<u8> = Vec::new();
/// // Validity periods checked against the system clock …
/// let validator = X509Validator::new([&as_root_der], TimePolicy::system())?;
/// // … or at a fixed instant.
/// let validator = validator.with_time(TimePolicy::at(1_790_000_000));
/// # Ok::<(), conclave_mls::Error>(())
/// ```
#[derive(Clone)]
pub struct X509Validator {
    anchors: Vec<Anchor>,
    time: TimePolicy,
}

impl fmt::Debug for X509Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let anchors: Vec<String> = self
            .anchors
            .iter()
            .map(|a| a.cert.tbs_certificate().subject().to_string())
            .collect();
        f.debug_struct("X509Validator")
            .field("anchors", &anchors)
            .field("time", &self.time)
            .finish()
    }
}

fn reject(message: impl fmt::Display) -> Error {
    Error::CredentialRejected(format!("x509: {message}"))
}

impl X509Validator {
    /// A validator trusting `anchors` (DER-encoded root certificates), checking validity
    /// periods as `time` says.
    ///
    /// Fails if no anchor is given or one does not parse.
    pub fn new<I, B>(anchors: I, time: TimePolicy) -> Result<Self, Error>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let anchors = anchors
            .into_iter()
            .enumerate()
            .map(|(i, der)| {
                let der = der.as_ref();
                X509Certificate::from_der(der)
                    .map(|cert| Anchor {
                        der: der.to_vec(),
                        cert,
                    })
                    .map_err(|e| reject(format_args!("trust anchor {i} does not parse: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if anchors.is_empty() {
            return Err(reject("no trust anchor configured"));
        }
        Ok(Self { anchors, time })
    }

    /// Checks validity periods as `time` says from now on.
    pub fn with_time(mut self, time: TimePolicy) -> Self {
        self.time = time;
        self
    }

    /// The client named by `credential`'s leaf certificate (see the
    /// [module documentation](self) for where the name is read from).
    ///
    /// This only reads the leaf: it does not validate the chain, which
    /// [`IdentityValidator::validate`] does.
    pub fn identity(credential: &Credential) -> Result<ClientIdentity, Error> {
        let der = match credential {
            Credential::X509 { certificates } => certificates
                .first()
                .ok_or_else(|| reject("the certificate chain is empty"))?,
            _ => return Err(reject("not an X.509 credential")),
        };
        let leaf = parse(der.cert_data.as_slice(), 0)?;
        identity_of(&leaf)
    }

    /// Validates the chain of `certificates` (leaf first) up to an anchor.
    fn validate_chain(
        &self,
        certificates: &[X509Certificate],
        ders: &[&[u8]],
    ) -> Result<(), Error> {
        let now = self.time.now();
        for (i, cert) in certificates.iter().enumerate() {
            check_certificate(cert, now, &format!("certificate {i}"))?;
        }
        for (i, pair) in certificates.windows(2).enumerate() {
            check_issued(&pair[1], &pair[0], i, &format!("certificate {}", i + 1), i)?;
        }
        let (Some(last), Some(last_der)) = (certificates.last(), ders.last()) else {
            return Err(reject("the certificate chain is empty"));
        };
        let last_index = certificates.len() - 1;
        if self.anchors.iter().any(|a| a.der == *last_der) {
            return Ok(());
        }
        let issuer_name = last.tbs_certificate().issuer();
        let mut failure = None;
        for (k, anchor) in self.anchors.iter().enumerate() {
            if anchor.cert.tbs_certificate().subject() != issuer_name {
                continue;
            }
            let label = format!("trust anchor {k}");
            let result = check_certificate(&anchor.cert, now, &label)
                .and_then(|()| check_issued(&anchor.cert, last, last_index, &label, last_index));
            match result {
                Ok(()) => return Ok(()),
                Err(e) => failure = Some(e),
            }
        }
        Err(failure.unwrap_or_else(|| {
            reject(format_args!(
                "certificate {last_index} is issued by \"{issuer_name}\", which is not a trust anchor"
            ))
        }))
    }
}

/// Parses certificate `index` of a chain.
fn parse(der: &[u8], index: usize) -> Result<X509Certificate, Error> {
    X509Certificate::from_der(der)
        .map_err(|e| reject(format_args!("certificate {index} does not parse: {e}")))
}

/// Checks on one certificate alone: validity period and critical extensions.
fn check_certificate(cert: &X509Certificate, now: Option<u64>, label: &str) -> Result<(), Error> {
    let tbs = cert.tbs_certificate();
    if let Some(now) = now {
        let validity = tbs.validity();
        let not_before = validity.not_before.to_unix_duration().as_secs();
        let not_after = validity.not_after.to_unix_duration().as_secs();
        if now < not_before {
            return Err(reject(format_args!(
                "{label} is not valid yet (notBefore {not_before}, now {now})"
            )));
        }
        if now > not_after {
            return Err(reject(format_args!(
                "{label} has expired (notAfter {not_after}, now {now})"
            )));
        }
    }
    for ext in tbs.extensions().into_iter().flatten() {
        if ext.critical && !UNDERSTOOD_EXTENSIONS.contains(&ext.extn_id) {
            return Err(reject(format_args!(
                "{label} has an unsupported critical extension {}",
                ext.extn_id
            )));
        }
    }
    Ok(())
}

/// Checks that `issuer` (named `label`) issued `child` (certificate `child_index`), with
/// `intermediates_below` CA certificates between the issuer and the leaf.
fn check_issued(
    issuer: &X509Certificate,
    child: &X509Certificate,
    child_index: usize,
    label: &str,
    intermediates_below: usize,
) -> Result<(), Error> {
    let issuer_tbs = issuer.tbs_certificate();
    let child_tbs = child.tbs_certificate();
    if child_tbs.issuer() != issuer_tbs.subject() {
        return Err(reject(format_args!(
            "certificate {child_index} names issuer \"{}\" but {label} is \"{}\"",
            child_tbs.issuer(),
            issuer_tbs.subject()
        )));
    }
    let constraints = issuer_tbs
        .get_extension::<BasicConstraints>()
        .map_err(|e| {
            reject(format_args!(
                "{label} has a malformed basicConstraints: {e}"
            ))
        })?;
    match constraints {
        Some((_, bc)) if bc.ca => {
            if let Some(max) = bc.path_len_constraint {
                if intermediates_below > usize::from(max) {
                    return Err(reject(format_args!(
                        "{label} allows {max} intermediate certificates below it, \
                         the chain has {intermediates_below}"
                    )));
                }
            }
        }
        _ => {
            return Err(reject(format_args!(
                "{label} issues certificate {child_index} but is not a CA (basicConstraints cA)"
            )));
        }
    }
    let key_usage = issuer_tbs
        .get_extension::<KeyUsage>()
        .map_err(|e| reject(format_args!("{label} has a malformed keyUsage: {e}")))?;
    if let Some((_, ku)) = key_usage {
        if !ku.key_cert_sign() {
            return Err(reject(format_args!(
                "{label} issues certificate {child_index} but its keyUsage lacks keyCertSign"
            )));
        }
    }
    verify_signature(issuer, child)
        .map_err(|e| reject(format_args!("certificate {child_index}: {e}")))
}

/// The certificate signature algorithms supported.
#[derive(Clone, Copy, Debug)]
enum SignatureAlgorithm {
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    Ed25519,
}

impl SignatureAlgorithm {
    fn from_identifier(alg: &AlgorithmIdentifierOwned) -> Result<Self, String> {
        let scheme = if alg.oid == ECDSA_WITH_SHA256 {
            Self::EcdsaP256Sha256
        } else if alg.oid == ECDSA_WITH_SHA384 {
            Self::EcdsaP384Sha384
        } else if alg.oid == ID_ED25519 {
            Self::Ed25519
        } else {
            return Err(format!("unsupported signature algorithm {}", alg.oid));
        };
        // RFC 5758 §3.2 and RFC 8410 §3: the parameters are absent.
        if alg.parameters.is_some() {
            return Err(format!("signature algorithm {} has parameters", alg.oid));
        }
        Ok(scheme)
    }
}

/// Verifies `child`'s signature with `issuer`'s public key.
fn verify_signature(issuer: &X509Certificate, child: &X509Certificate) -> Result<(), String> {
    let alg = child.signature_algorithm();
    if alg != child.tbs_certificate().signature() {
        return Err("the outer and inner signature algorithms differ".into());
    }
    let scheme = SignatureAlgorithm::from_identifier(alg)?;
    let signature = child
        .signature()
        .as_bytes()
        .ok_or("the signature is not a whole number of bytes")?;
    // Parsing is strict DER, so re-encoding gives back the signed bytes.
    let tbs = child
        .tbs_certificate()
        .to_der()
        .map_err(|e| format!("cannot encode the signed part: {e}"))?;
    let spki = issuer.tbs_certificate().subject_public_key_info();
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or("the issuer's public key is not a whole number of bytes")?;
    let curve = || {
        spki.algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .ok_or_else(|| "the issuer's EC key names no curve".to_owned())
    };
    let key_matches = match scheme {
        SignatureAlgorithm::EcdsaP256Sha256 => {
            spki.algorithm.oid == ID_EC_PUBLIC_KEY && curve()? == SECP256R1
        }
        SignatureAlgorithm::EcdsaP384Sha384 => {
            spki.algorithm.oid == ID_EC_PUBLIC_KEY && curve()? == SECP384R1
        }
        SignatureAlgorithm::Ed25519 => spki.algorithm.oid == ID_ED25519,
    };
    if !key_matches {
        return Err(format!(
            "the signature algorithm {:?} does not match the issuer's key type {}",
            scheme, spki.algorithm.oid
        ));
    }
    let invalid = || "the signature does not verify with the issuer's key".to_owned();
    match scheme {
        SignatureAlgorithm::EcdsaP256Sha256 => {
            use p256::ecdsa::signature::Verifier;
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(key)
                .map_err(|_| "the issuer's P-256 key is invalid".to_owned())?;
            let sig = p256::ecdsa::Signature::from_der(signature).map_err(|_| invalid())?;
            key.verify(&tbs, &sig).map_err(|_| invalid())
        }
        SignatureAlgorithm::EcdsaP384Sha384 => {
            use p384::ecdsa::signature::Verifier;
            let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(key)
                .map_err(|_| "the issuer's P-384 key is invalid".to_owned())?;
            let sig = p384::ecdsa::Signature::from_der(signature).map_err(|_| invalid())?;
            key.verify(&tbs, &sig).map_err(|_| invalid())
        }
        SignatureAlgorithm::Ed25519 => {
            let key: [u8; 32] = key
                .try_into()
                .map_err(|_| "the issuer's Ed25519 key is not 32 bytes".to_owned())?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
                .map_err(|_| "the issuer's Ed25519 key is invalid".to_owned())?;
            let sig = ed25519_dalek::Signature::from_slice(signature).map_err(|_| invalid())?;
            key.verify_strict(&tbs, &sig).map_err(|_| invalid())
        }
    }
}

/// Whether a SubjectPublicKeyInfo algorithm is one of the MLS signature key types
/// (RFC 9420 §5.1.1): Ed25519, Ed448, or an ECDSA key on P-256, P-384 or P-521. Comparing
/// key bytes alone would let a certificate for, say, an X25519 key stand for an Ed25519 key.
fn is_signature_key_type(alg: &AlgorithmIdentifierOwned) -> bool {
    if alg.oid == ID_EC_PUBLIC_KEY {
        alg.parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())
            .is_some_and(|curve| [SECP256R1, SECP384R1, SECP521R1].contains(&curve))
    } else {
        (alg.oid == ID_ED25519 || alg.oid == ID_ED448) && alg.parameters.is_none()
    }
}

/// A leaf with a keyUsage extension must allow digitalSignature: its key signs MLS messages.
fn check_leaf_usage(leaf: &X509Certificate) -> Result<(), Error> {
    let key_usage = leaf
        .tbs_certificate()
        .get_extension::<KeyUsage>()
        .map_err(|e| reject(format_args!("certificate 0 has a malformed keyUsage: {e}")))?;
    match key_usage {
        Some((_, ku)) if !ku.digital_signature() => Err(reject(
            "the leaf certificate's keyUsage lacks digitalSignature",
        )),
        _ => Ok(()),
    }
}

/// The client a leaf certificate names.
fn identity_of(leaf: &X509Certificate) -> Result<ClientIdentity, Error> {
    let tbs = leaf.tbs_certificate();
    let san = tbs
        .get_extension::<SubjectAltName>()
        .map_err(|e| reject(format_args!("the leaf has a malformed subjectAltName: {e}")))?;
    let names: &[GeneralName] = match &san {
        Some((_, SubjectAltName(names))) => names,
        None => &[],
    };
    let mut uris = names.iter().filter_map(|n| match n {
        GeneralName::UniformResourceIdentifier(uri)
            if uri
                .as_bytes()
                .get(..MLS_URI_SCHEME.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(MLS_URI_SCHEME.as_bytes())) =>
        {
            Some(uri.as_str())
        }
        _ => None,
    });
    if let Some(uri) = uris.next() {
        if uris.any(|other| other != uri) {
            return Err(reject("the leaf names several different mls: URIs"));
        }
        return parse_mls_uri(uri);
    }
    let mut emails = names.iter().filter_map(|n| match n {
        GeneralName::Rfc822Name(email) => Some(email.as_str()),
        _ => None,
    });
    if let Some(email) = emails.next() {
        if emails.any(|other| other != email) {
            return Err(reject("the leaf names several different rfc822Names"));
        }
        check_user(email)?;
        return Ok(ClientIdentity {
            user: email.to_owned(),
            device: None,
        });
    }
    let cn = tbs
        .subject()
        .common_name()
        .map_err(|e| reject(format_args!("the leaf's commonName is malformed: {e}")))?
        .ok_or_else(|| {
            reject("the leaf names no client (no mls: URI, rfc822Name or commonName)")
        })?;
    let user = cn.value();
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(reject(
            "the leaf's commonName is empty or has control characters",
        ));
    }
    Ok(ClientIdentity {
        user: user.into_owned(),
        device: None,
    })
}

/// `mls:user@domain` or `mls:user@domain/device-id`.
fn parse_mls_uri(uri: &str) -> Result<ClientIdentity, Error> {
    let rest = uri.get(MLS_URI_SCHEME.len()..).unwrap_or_default();
    let (user, device) = match rest.split_once('/') {
        Some((user, device)) => {
            if device.is_empty() || device.contains('/') || !is_printable(device) {
                return Err(reject(format_args!("bad device id in \"{uri}\"")));
            }
            (user, Some(device.to_owned()))
        }
        None => (rest, None),
    };
    check_user(user)?;
    Ok(ClientIdentity {
        user: user.to_owned(),
        device,
    })
}

/// A user name must be `local@domain`, both parts non-empty and printable.
fn check_user(user: &str) -> Result<(), Error> {
    match user.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && is_printable(user) =>
        {
            Ok(())
        }
        _ => Err(reject(format_args!(
            "\"{user}\" is not of the form user@domain"
        ))),
    }
}

fn is_printable(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_graphic())
}

impl IdentityValidator for X509Validator {
    fn validate(
        &self,
        credential: &Credential,
        signature_key: &SignaturePublicKey,
    ) -> Result<(), Error> {
        let Credential::X509 { certificates } = credential else {
            return Err(reject("not an X.509 credential"));
        };
        if certificates.is_empty() {
            return Err(reject("the certificate chain is empty"));
        }
        if certificates.len() > MAX_CHAIN_LEN {
            return Err(reject(format_args!(
                "the chain has {} certificates, more than {MAX_CHAIN_LEN}",
                certificates.len()
            )));
        }
        let ders: Vec<&[u8]> = certificates
            .iter()
            .map(|c| c.cert_data.as_slice())
            .collect();
        let parsed = ders
            .iter()
            .enumerate()
            .map(|(i, der)| parse(der, i))
            .collect::<Result<Vec<_>, _>>()?;
        self.validate_chain(&parsed, &ders)?;
        check_leaf_usage(&parsed[0])?;
        // RFC 9420 §5.3.1: the credential must bind the member's signature key.
        let leaf_spki = parsed[0].tbs_certificate().subject_public_key_info();
        if !is_signature_key_type(&leaf_spki.algorithm) {
            return Err(reject(format_args!(
                "the leaf certifies a {} key, not a signature key",
                leaf_spki.algorithm.oid
            )));
        }
        let leaf_key = leaf_spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| reject("the leaf's public key is not a whole number of bytes"))?;
        if leaf_key != signature_key.as_slice() {
            return Err(reject(
                "the leaf certificate's public key is not the member's signature key",
            ));
        }
        identity_of(&parsed[0]).map(|_| ())
    }

    fn valid_successor(&self, old: &Credential, new: &Credential) -> Result<(), Error> {
        let old = Self::identity(old)?;
        let new = Self::identity(new)?;
        if old.user != new.user {
            return Err(reject(format_args!(
                "the user cannot change from \"{}\" to \"{}\"",
                old.user, new.user
            )));
        }
        if old.device != new.device {
            return Err(reject(format_args!(
                "the device of \"{}\" cannot change from {:?} to {:?}",
                old.user, old.device, new.device
            )));
        }
        Ok(())
    }

    /// A certificate names a client by its user and device: the id is the user's length
    /// (four bytes, big-endian), the user and the device. Without a device id a certificate
    /// names only a user, whose devices may be several clients, so it names no client.
    fn client_id(&self, credential: &Credential) -> Option<Vec<u8>> {
        let identity = Self::identity(credential).ok()?;
        let device = identity.device?;
        let user = identity.user.as_bytes();
        let mut id = Vec::with_capacity(4 + user.len() + device.len());
        id.extend_from_slice(&u32::try_from(user.len()).ok()?.to_be_bytes());
        id.extend_from_slice(user);
        id.extend_from_slice(device.as_bytes());
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mls_uris() {
        assert_eq!(
            parse_mls_uri("mls:alice@example.com/phone").unwrap(),
            ClientIdentity {
                user: "alice@example.com".into(),
                device: Some("phone".into())
            }
        );
        assert_eq!(parse_mls_uri("mls:alice@example.com").unwrap().device, None);
        for bad in [
            "mls:",
            "mls:alice",
            "mls:@example.com",
            "mls:alice@",
            "mls:a@b@c",
            "mls:alice@example.com/",
            "mls:alice@example.com/a/b",
            "mls:alice @example.com",
        ] {
            assert!(parse_mls_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        let validator = X509Validator {
            anchors: Vec::new(),
            time: TimePolicy::SkipChecks,
        };
        let key = SignaturePublicKey::from(vec![4u8; 65]);
        for len in 0..64 {
            let cred = Credential::X509 {
                certificates: vec![crate::messages::Certificate {
                    cert_data: vec![0x30; len].into(),
                }],
            };
            assert!(validator.validate(&cred, &key).is_err());
            assert!(X509Validator::identity(&cred).is_err());
        }
        assert!(
            validator
                .validate(
                    &Credential::X509 {
                        certificates: vec![]
                    },
                    &key
                )
                .is_err()
        );
    }
}
