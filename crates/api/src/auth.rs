//! Wire types of the Authentication Service API (RFC 9750 §4, §7).
//!
//! JSON bodies; byte strings are base64url without padding ([`Bytes`]). The AS vouches for
//! the link between a user, a device and the device's MLS signature key: it issues an X.509
//! chain (AS root → issuing CA → device certificate) whose leaf carries that key and names
//! the client by the subjectAltName URI `mls:{user}/{device}`.
//!
//! # Request authentication
//!
//! Registration is authorised by an invitation code or an OpenID Connect ID token, plus a
//! proof of possession of the signature key ([`register_proof_message`]). Every later request
//! is *signed* by a registered device with its signature key: the headers
//! [`HEADER_DEVICE`], [`HEADER_TIMESTAMP`], [`HEADER_NONCE`] and [`HEADER_SIGNATURE`] carry
//! the device id, the Unix time, a fresh random nonce and an Ed25519 signature over
//! [`request_message`]. The AS accepts each nonce once per device while the timestamp is
//! within its window, so a captured request cannot be replayed.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Header naming the device that signed a request.
pub const HEADER_DEVICE: &str = "conclave-device";
/// Header with the request's Unix time in seconds (decimal).
pub const HEADER_TIMESTAMP: &str = "conclave-timestamp";
/// Header with the request's single-use nonce: 16 to 64 characters of the base64url
/// alphabet (for example 16 random bytes, base64url-encoded), never reused by a device.
pub const HEADER_NONCE: &str = "conclave-nonce";
/// Shortest accepted [`HEADER_NONCE`] value, characters.
pub const NONCE_MIN_LEN: usize = 16;
/// Longest accepted [`HEADER_NONCE`] value, characters.
pub const NONCE_MAX_LEN: usize = 64;

/// Whether `nonce` is a well-formed [`HEADER_NONCE`] value.
pub fn valid_nonce(nonce: &str) -> bool {
    (NONCE_MIN_LEN..=NONCE_MAX_LEN).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Header with the Ed25519 signature (base64url, no padding) over [`request_message`].
pub const HEADER_SIGNATURE: &str = "conclave-signature";

/// Domain-separation label of the proof of possession signed at registration.
pub const REGISTER_LABEL: &[u8] = b"conclave-as/v1/register";
/// Domain-separation label of a signed request.
pub const REQUEST_LABEL: &[u8] = b"conclave-as/v2/request";
/// Domain-separation label of a contact key signed by its device.
pub const CONTACT_KEY_LABEL: &[u8] = b"conclave-as/v1/contact-key";
/// Domain-separation label of the key-transparency directory's hashes (akd's
/// `DomainLabel`), shared by the AS and every client that checks its proofs.
pub const KT_DOMAIN_LABEL: &[u8] = b"conclave-as/kt/v1";

/// Concatenates `label` and each field, every one prefixed by its length (u32, big endian),
/// so that no two different field lists give the same bytes.
fn framed(label: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(label.len() + fields.iter().map(|f| f.len() + 4).sum::<usize>() + 4);
    for field in std::iter::once(&label).chain(fields.iter()) {
        // Fields longer than 4 GiB cannot reach this code (bodies are bounded far below).
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// The bytes a device signs to prove possession of `signature_key` when registering with
/// the challenge `nonce` (single use, from [`Challenge`]).
pub fn register_proof_message(nonce: &[u8], signature_key: &[u8]) -> Vec<u8> {
    framed(REGISTER_LABEL, &[nonce, signature_key])
}

/// The bytes a device signs to authenticate one request: its method (`GET`), its path with
/// query (`/v1/users/a%40b/devices`), the timestamp header's value, the nonce header's
/// value, the device id and the body bytes (empty for none).
pub fn request_message(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    device_id: &str,
    body: &[u8],
) -> Vec<u8> {
    framed(
        REQUEST_LABEL,
        &[
            method.as_bytes(),
            path_and_query.as_bytes(),
            timestamp.as_bytes(),
            nonce.as_bytes(),
            device_id.as_bytes(),
            body,
        ],
    )
}

/// The bytes a device signs with its signature key to publish `contact_key` (an HPKE public
/// key) for `device_id`; look-ups return the signature so anyone can check it.
pub fn contact_key_message(user_id: &str, device_id: &str, contact_key: &[u8]) -> Vec<u8> {
    framed(
        CONTACT_KEY_LABEL,
        &[user_id.as_bytes(), device_id.as_bytes(), contact_key],
    )
}

pub use crate::bytes::{Bytes, decode_b64, encode_b64};

/// A stable, machine-readable error code; the HTTP status goes with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the request is malformed (JSON, base64, field values).
    BadRequest,
    /// 401: the request is not signed, or its signature or timestamp is wrong.
    Unauthenticated,
    /// 403: the authenticated device may not do this.
    Forbidden,
    /// 404: no such user, device or resource.
    NotFound,
    /// 403: the invitation code is unknown, used or expired.
    InvalidInvitation,
    /// 401: the signed request's nonce was already used by this device (a replay).
    ReplayedRequest,
    /// 401: the OpenID Connect ID token is refused (signature, issuer, audience, expiry…).
    InvalidIdToken,
    /// 400: the registration challenge is unknown, used or expired.
    InvalidChallenge,
    /// 400: a signature (proof of possession, contact key) does not verify.
    BadSignature,
    /// 409: the signature key is already registered.
    KeyInUse,
    /// 403: the device is revoked.
    DeviceRevoked,
    /// 403: the user is revoked.
    UserRevoked,
    /// 403: the certificate has expired; renewal is only possible before expiry.
    CertificateExpired,
    /// 429: the inbox holds as many requests as it may.
    InboxFull,
    /// 429: too many requests of this kind from this user or device in the current window;
    /// retry in the next one.
    RateLimited,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 422: a Privacy Pass token request is malformed or names a key this issuer does not
    /// hold (RFC 9578 §6.3).
    InvalidTokenRequest,
    /// 500: a server-side failure.
    Internal,
}

/// The body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// A human-readable explanation (not stable).
    pub message: String,
}

/// `POST /v1/challenges`: a fresh single-use nonce to sign at registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Challenge {
    /// Names the challenge in [`RegisterRequest::challenge_id`].
    pub challenge_id: String,
    /// The bytes to sign (see [`register_proof_message`]).
    pub nonce: Bytes,
    /// Unix time after which the challenge is refused.
    pub expires_at: u64,
}

/// What authorises a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Authorization {
    /// A one-time invitation code created by the operator for one user.
    Invitation {
        /// The code, as printed by `conclave-as invite`.
        code: String,
    },
    /// An OpenID Connect ID token (a signed JWT) from a configured issuer.
    Oidc {
        /// The compact JWS.
        id_token: String,
    },
}

/// `POST /v1/register`: registers a new device of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Who the user is.
    pub authorization: Authorization,
    /// A challenge from `POST /v1/challenges`.
    pub challenge_id: String,
    /// The device's MLS signature public key (Ed25519, 32 bytes).
    pub signature_key: Bytes,
    /// Ed25519 signature by that key over [`register_proof_message`].
    pub proof: Bytes,
}

/// A device certificate chain: leaf first, then the issuing CA; the AS root (the trust
/// anchor, `GET /v1/root`) is not included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CertificateChain {
    /// DER certificates, leaf first.
    pub certificates: Vec<Bytes>,
    /// The leaf's notAfter, Unix time.
    pub not_after: u64,
}

/// The answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Registered {
    /// The user, `user@domain`.
    pub user_id: String,
    /// The new device's id, chosen by the AS.
    pub device_id: String,
    /// The device's certificate chain.
    pub certificate: CertificateChain,
}

/// `GET /v1/root`: the AS trust anchor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Root {
    /// The self-signed root certificate, DER.
    pub certificate: Bytes,
}

/// A contact key (HPKE public key) with its device's signature over
/// [`contact_key_message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContactKey {
    /// The HPKE public key.
    pub key: Bytes,
    /// Ed25519 signature by the device's signature key.
    pub signature: Bytes,
}

/// One of a user's current devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    /// The device id.
    pub device_id: String,
    /// The device's MLS signature key.
    pub signature_key: Bytes,
    /// Its current certificate chain.
    pub certificate: CertificateChain,
    /// Its contact key, once published.
    pub contact_key: Option<ContactKey>,
}

/// `GET /v1/users/{user}/devices`: every current (unrevoked) device of a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserDevices {
    /// The user.
    pub user_id: String,
    /// The devices, oldest first.
    pub devices: Vec<Device>,
    /// The key-transparency proof that these are exactly the user's devices in the
    /// directory at the current epoch (see [`directory_value`]).
    #[serde(default)]
    pub transparency: Option<LookupProof>,
}

/// A key-transparency lookup proof (akd) for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LookupProof {
    /// The directory epoch the proof is for.
    pub epoch: u64,
    /// The directory's root hash at that epoch.
    pub root_hash: Bytes,
    /// The akd `LookupProof`, protobuf-encoded (akd's `proto::specs::types::LookupProof`).
    pub proof: Bytes,
}

/// `GET /v1/kt/head`: the directory's VRF public key and current epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KtHead {
    /// The VRF public key lookup proofs are checked with.
    pub vrf_public_key: Bytes,
    /// The current epoch.
    pub epoch: u64,
    /// Its root hash.
    pub root_hash: Bytes,
}

/// One epoch's root hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EpochRoot {
    /// The epoch.
    pub epoch: u64,
    /// The directory's root hash at that epoch.
    pub root_hash: Bytes,
}

/// `GET /v1/kt/roots?from=A&to=B`: the roots of epochs A to B.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EpochRoots {
    /// In epoch order.
    pub roots: Vec<EpochRoot>,
}

/// `GET /v1/kt/audit?from=A&to=B`: the append-only proof from epoch A to epoch B.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditProof {
    /// First epoch.
    pub from: u64,
    /// Last epoch.
    pub to: u64,
    /// The akd `AppendOnlyProof`, protobuf-encoded.
    pub proof: Bytes,
}

/// The value the key directory holds for a user: each current device's id, signature key
/// and certificate notAfter, sorted by device id, each field length-prefixed. A client
/// recomputes it from a look-up answer and compares it with the proven value.
pub fn directory_value<'a>(devices: impl IntoIterator<Item = (&'a str, &'a [u8], u64)>) -> Vec<u8> {
    let mut devices: Vec<_> = devices.into_iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (id, key, not_after) in devices {
        out.extend_from_slice(&framed(
            b"device",
            &[id.as_bytes(), key, &not_after.to_be_bytes()],
        ));
    }
    out
}

/// One device as the key directory holds it: id, signature key, certificate notAfter.
pub type DirectoryEntry = (String, Vec<u8>, u64);

/// Inverse of [`directory_value`]: the devices in a directory value, or `None` when the
/// bytes are not one.
pub fn parse_directory_value(mut bytes: &[u8]) -> Option<Vec<DirectoryEntry>> {
    fn field<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if rest.len() < len {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        *bytes = rest;
        Some(value)
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if field(&mut bytes)? != b"device" {
            return None;
        }
        let id = std::str::from_utf8(field(&mut bytes)?).ok()?.to_owned();
        let key = field(&mut bytes)?.to_vec();
        let not_after = u64::from_be_bytes(field(&mut bytes)?.try_into().ok()?);
        out.push((id, key, not_after));
    }
    Some(out)
}

/// `POST /v1/devices/{device}/inbox`: a sealed contact request for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelayPost {
    /// Ciphertext sealed to the recipient's contact key; the AS cannot open it.
    pub sealed: Bytes,
}

/// The answer to a relay post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelayPosted {
    /// Unix time after which the request is dropped if not fetched.
    pub expires_at: u64,
}

/// One sealed contact request waiting in an inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelayMessage {
    /// The ciphertext, as posted.
    pub sealed: Bytes,
    /// Unix time it was posted.
    pub received_at: u64,
}

/// `POST /v1/devices/{device}/inbox/fetch`: the inbox's requests, deleted by this fetch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelayMessages {
    /// The requests, oldest first.
    pub messages: Vec<RelayMessage>,
}

/// A revocation request body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevokeRequest {
    /// Why (free text, kept in the feed).
    #[serde(default)]
    pub reason: Option<String>,
}

/// One entry of the revocation feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Revocation {
    /// Position in the feed; strictly increasing.
    pub seq: u64,
    /// The user.
    pub user_id: String,
    /// The revoked device.
    pub device_id: String,
    /// The revoked device's signature key, to find its leaf in groups.
    pub signature_key: Bytes,
    /// Unix time of the revocation.
    pub revoked_at: u64,
    /// Why, if given.
    pub reason: Option<String>,
}

/// `GET /v1/revocations?after=SEQ&limit=N`: revocations after a cursor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RevocationFeed {
    /// Entries with `seq > after`, in order.
    pub revocations: Vec<Revocation>,
    /// The cursor to pass as `after` next time.
    pub next: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips_and_is_strict() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(250))
                .collect();
            let s = encode_b64(&bytes);
            assert!(!s.contains('='));
            assert_eq!(decode_b64(&s).as_deref(), Some(&bytes[..]));
        }
        assert_eq!(encode_b64(b"\xfb\xff"), "-_8");
        assert_eq!(decode_b64("-_8"), Some(b"\xfb\xff".to_vec()));
        assert_eq!(decode_b64("-_9"), None, "non-zero unused bits");
        assert_eq!(decode_b64("a"), None);
        assert_eq!(decode_b64("ab+/"), None, "standard alphabet refused");
        assert_eq!(decode_b64("ab=="), None);
    }

    #[test]
    fn directory_values_parse_back() {
        let value = directory_value([("b", &[2u8; 32][..], 7), ("a", &[1u8; 32][..], 9)]);
        assert_eq!(
            parse_directory_value(&value),
            Some(vec![
                ("a".to_owned(), vec![1; 32], 9),
                ("b".to_owned(), vec![2; 32], 7)
            ])
        );
        assert_eq!(parse_directory_value(&[]), Some(vec![]));
        assert_eq!(parse_directory_value(&value[..value.len() - 1]), None);
        assert_eq!(parse_directory_value(&[0, 0, 0, 9, 1]), None);
    }

    #[test]
    fn framing_separates_fields() {
        assert_ne!(
            request_message("GET", "/ab", "1", "n", "d", b""),
            request_message("GET", "/a", "b1", "n", "d", b"")
        );
        assert_ne!(
            register_proof_message(b"ab", b"c"),
            register_proof_message(b"a", b"bc")
        );
    }

    #[test]
    fn error_codes_are_snake_case() {
        let body = ErrorBody {
            code: ErrorCode::InvalidIdToken,
            message: "x".into(),
        };
        let json = serde_json::to_string(&body).unwrap_or_default();
        assert!(json.contains("\"invalid_id_token\""), "{json}");
    }
}

/// The most Privacy Pass token requests one `POST /v1/tokens` may carry.
pub const MAX_TOKEN_REQUESTS: usize = 32;

/// `POST /v1/tokens` (signed by a device): blinded Privacy Pass token requests, each a
/// TLS-encoded `TokenRequest` of token type 0x0002 (RFC 9578 §6.1). The AS signs them
/// blind, so it never sees the tokens the Delivery Service later redeems; it counts them
/// against the user's budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenRequests {
    /// One to [`MAX_TOKEN_REQUESTS`] requests.
    pub requests: Vec<Bytes>,
}

/// The answer to [`TokenRequests`]: a TLS-encoded `TokenResponse` (RFC 9578 §6.2) for
/// each request, in the same order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponses {
    /// The blind signatures.
    pub responses: Vec<Bytes>,
}

/// `GET /.well-known/private-token-issuer-directory` (RFC 9578 §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuerDirectory {
    /// Where token requests go, relative to the directory.
    #[serde(rename = "issuer-request-uri")]
    pub issuer_request_uri: String,
    /// The issuer's keys, the one to use first.
    #[serde(rename = "token-keys")]
    pub token_keys: Vec<IssuerTokenKey>,
}

/// One key of an [`IssuerDirectory`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssuerTokenKey {
    /// The token type (2: blind RSA, RFC 9578 §8.2.2).
    #[serde(rename = "token-type")]
    pub token_type: u16,
    /// The public key, base64url with padding (RFC 9578 §4).
    #[serde(rename = "token-key")]
    pub token_key: String,
}
