//! Privacy Pass redemption: the DS as the origin of publicly verifiable tokens (RFC 9577,
//! RFC 9578 §6, token type 0x0002).
//!
//! With an issuer key configured, creating a mailbox, a pool or a group, and claiming a
//! KeyPackage past a pool's free rate, each cost one token. The Authentication Service
//! issues tokens to registered devices blind, so the DS learns that a registered user
//! pays and never which one: anonymous, but not open (RFC 9750 §8.4.1).
//!
//! - **The challenge** (RFC 9577 §2.1) names the issuer and this DS (`origin_info`), and
//!   binds tokens to a time window through `redemption_context` = SHA-256 of a label, a
//!   secret this DS keeps in its database and the window number (RFC 9577 §2.1.1's "F(current
//!   time window)"). Every client gets the same challenge during a window, so a token
//!   names nobody; a client cannot compute a future window's challenge, so it cannot hoard
//!   tokens for one day; and tokens of the current and the previous window are accepted, so
//!   the spent set needs only those two windows and the pruner drops the rest.
//! - **Verification** ([`PrivacyPass::verify`]): the token must answer one of the two
//!   accepted challenges (its digest), name the one issuer key the DS trusts, and carry a
//!   valid RSASSA-PSS signature under it (RFC 9578 §6.4, `conclave-privacy-pass`).
//! - **Double spending** is refused by the store: a spent token's nonce is inserted under a
//!   primary key ([`crate::store::Store::spend_token`]), so two nodes sharing the database
//!   cannot both accept one token.

use crate::error::ApiError;
use axum::http::{HeaderMap, HeaderValue, header};
use conclave_api::delivery::{Bytes, ErrorCode, PrivacyPass as Info};
use conclave_privacy_pass::{IssuerPublicKey, TokenChallenge, header as pp_header};
use sha2::{Digest, Sha256};

/// Label of the redemption context derivation.
const CONTEXT_LABEL: &[u8] = b"conclave-ds privacy-pass redemption context v1";

/// The shortest window: a minute.
const MIN_WINDOW_SECS: u64 = 60;

/// The number of the window of `window_secs` seconds that `now` (Unix seconds) falls in.
pub fn window_of(now: u64, window_secs: u64) -> i64 {
    i64::try_from(now / window_secs.max(MIN_WINDOW_SECS)).unwrap_or(i64::MAX)
}

/// Why the Privacy Pass settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The issuer key is not an RSASSA-PSS SubjectPublicKeyInfo of 2048 bits (RFC 9578
    /// §6.5).
    #[error("the Privacy Pass issuer key is not a 2048-bit RSASSA-PSS public key")]
    Key,
    /// The issuer or origin name is not a server name (RFC 9577 §2.1.1).
    #[error("the Privacy Pass issuer and origin names must be server names")]
    Name,
}

/// A token that verified and answers an accepted challenge; spend it with
/// [`crate::store::Store::spend_token`] before doing what it pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redeemable {
    /// The token's nonce: what the spent set holds.
    pub nonce: [u8; 32],
    /// The window its challenge names.
    pub window: i64,
}

/// The DS's side of Privacy Pass: the trusted issuer key and the challenges.
pub struct PrivacyPass {
    key: IssuerPublicKey,
    issuer: String,
    origin: String,
    window_secs: u64,
    secret: Vec<u8>,
}

impl std::fmt::Debug for PrivacyPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivacyPass")
            .field("issuer", &self.issuer)
            .field("origin", &self.origin)
            .field("window_secs", &self.window_secs)
            .finish_non_exhaustive()
    }
}

/// Reads an issuer key as an operator hands it over: the SubjectPublicKeyInfo in DER, or
/// the base64url text of the issuer directory's `token-key` (RFC 9578 §4), with or
/// without padding.
pub fn parse_token_key(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.first() == Some(&0x30) {
        return Some(bytes.to_vec());
    }
    let text = std::str::from_utf8(bytes)
        .ok()?
        .trim()
        .trim_end_matches('=');
    Bytes::from_base64(text).map(|b| b.0)
}

impl PrivacyPass {
    /// Redemption of tokens under `token_key` (the issuer's SubjectPublicKeyInfo) from
    /// `issuer`, at this DS named `origin`, in windows of `window_secs`; `secret` keys the
    /// redemption contexts and must be the same on every node (the store keeps it).
    pub fn new(
        token_key: &[u8],
        issuer: &str,
        origin: &str,
        window_secs: u64,
        secret: Vec<u8>,
    ) -> Result<Self, SetupError> {
        let key = IssuerPublicKey::from_spki(token_key).map_err(|_| SetupError::Key)?;
        // The names must make a valid challenge; checked once here.
        if origin.contains(',') || TokenChallenge::new(issuer, None, origin).is_err() {
            return Err(SetupError::Name);
        }
        Ok(Self {
            key,
            issuer: issuer.to_owned(),
            origin: origin.to_owned(),
            window_secs: window_secs.max(MIN_WINDOW_SECS),
            secret,
        })
    }

    /// The window `now` (Unix seconds) falls in.
    pub fn window(&self, now: u64) -> i64 {
        window_of(now, self.window_secs)
    }

    fn challenge(&self, window: i64) -> TokenChallenge {
        let mut context = Sha256::new();
        context.update(CONTEXT_LABEL);
        context.update((self.secret.len() as u64).to_be_bytes());
        context.update(&self.secret);
        context.update(window.to_be_bytes());
        TokenChallenge::new(&self.issuer, Some(context.finalize().into()), &self.origin)
            .expect("names checked in PrivacyPass::new")
    }

    /// What `GET /v1/privacy-pass` answers at `now`.
    pub fn info(&self, now: u64) -> Info {
        let window = self.window(now);
        let end = u64::try_from(window.saturating_add(2))
            .unwrap_or(u64::MAX)
            .saturating_mul(self.window_secs);
        Info {
            required: true,
            challenge: Some(Bytes(self.challenge(window).encode())),
            token_key: Some(Bytes(self.key.spki().to_vec())),
            valid_until: Some(end),
        }
    }

    /// The `WWW-Authenticate` header of a refusal at `now` (RFC 9577 §2.1).
    fn www_authenticate(&self, now: u64) -> Option<HeaderValue> {
        let challenge = self.challenge(self.window(now));
        HeaderValue::from_str(&pp_header::www_authenticate(&challenge, &self.key)).ok()
    }

    fn refuse(&self, code: ErrorCode, message: &str, now: u64) -> ApiError {
        ApiError::Token {
            code,
            message: message.to_owned(),
            challenge: self.www_authenticate(now),
        }
    }

    /// The token a request carries, if any, verified: `Ok(None)` when it carries no
    /// `Authorization` header.
    pub fn token(&self, headers: &HeaderMap, now: u64) -> Result<Option<Redeemable>, ApiError> {
        match headers.get(header::AUTHORIZATION) {
            None => Ok(None),
            Some(value) => self.verify(value, now).map(Some),
        }
    }

    /// The token a request must carry, verified.
    pub fn require(&self, headers: &HeaderMap, now: u64) -> Result<Redeemable, ApiError> {
        self.token(headers, now)?.ok_or_else(|| {
            self.refuse(
                ErrorCode::TokenRequired,
                "this request costs a Privacy Pass token (Authorization: PrivateToken token=...)",
                now,
            )
        })
    }

    /// Verifies an `Authorization: PrivateToken token=…` header (RFC 9577 §2.2).
    pub fn verify(&self, value: &HeaderValue, now: u64) -> Result<Redeemable, ApiError> {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| pp_header::parse_authorization(v).ok())
            .ok_or_else(|| {
                self.refuse(
                    ErrorCode::TokenRequired,
                    "the Authorization header is not one PrivateToken token of type 2",
                    now,
                )
            })?;
        // RFC 9577 §2.2: the token must answer this origin's challenge: the current window's
        // or the previous one's.
        let current = self.window(now);
        let Some(window) = [current, current.saturating_sub(1)]
            .into_iter()
            .find(|w| self.challenge(*w).digest() == *token.challenge_digest())
        else {
            return Err(self.refuse(
                ErrorCode::TokenExpired,
                "the token answers a challenge this DS does not accept now; fetch /v1/privacy-pass",
                now,
            ));
        };
        self.key.verify(&token).map_err(|_| {
            self.refuse(
                ErrorCode::InvalidToken,
                "the token does not verify under the issuer key this DS trusts",
                now,
            )
        })?;
        Ok(Redeemable {
            nonce: *token.nonce(),
            window,
        })
    }

    /// The refusal of a token the store says was spent.
    pub fn spent(&self, now: u64) -> ApiError {
        self.refuse(ErrorCode::TokenSpent, "the token was already redeemed", now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_privacy_pass::IssuerKey;

    fn token_for(issuer: &IssuerKey, challenge: &[u8]) -> HeaderValue {
        let key = issuer.public_key();
        let (request, pending) = conclave_privacy_pass::request(key, challenge).expect("request");
        let token = pending
            .finish(key, &issuer.issue(&request).expect("issue"))
            .expect("finish");
        HeaderValue::from_str(&pp_header::authorization(&token)).expect("header")
    }

    fn code(e: ApiError) -> ErrorCode {
        match e {
            ApiError::Token { code, .. } => code,
            other => panic!("{other:?}"),
        }
    }

    /// A token answers its window's challenge: good in that window and the next, refused
    /// (`token_expired`) after; a challenge is the same for everyone in a window, differs
    /// between windows and between DS deployments (their secrets).
    #[test]
    fn tokens_live_for_their_window_and_the_next() {
        let issuer = IssuerKey::generate().expect("key");
        let window = 3_600;
        let pp = PrivacyPass::new(
            issuer.public_key().spki(),
            "as.example",
            "ds.example",
            window,
            vec![7; 32],
        )
        .expect("pp");
        let t0 = 1_000 * window + 5;
        let info = pp.info(t0);
        assert_eq!(info.valid_until, Some(1_002 * window));
        assert_eq!(pp.info(t0 + 100).challenge, info.challenge);
        assert_ne!(pp.info(t0 + window).challenge, info.challenge);
        let other = PrivacyPass::new(
            issuer.public_key().spki(),
            "as.example",
            "ds.example",
            window,
            vec![8; 32],
        )
        .expect("pp");
        assert_ne!(other.info(t0).challenge, info.challenge);

        let header = token_for(&issuer, &info.challenge.expect("challenge").0);
        let ok = pp.verify(&header, t0).expect("now");
        assert_eq!(ok.window, 1_000);
        pp.verify(&header, t0 + window).expect("in the next window");
        assert_eq!(
            code(
                pp.verify(&header, t0 + 2 * window)
                    .expect_err("two windows on")
            ),
            ErrorCode::TokenExpired
        );
        // Another deployment's challenge: not this DS's.
        assert_eq!(
            code(other.verify(&header, t0).expect_err("other secret")),
            ErrorCode::TokenExpired
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let issuer = IssuerKey::generate().expect("key");
        let spki = issuer.public_key().spki();
        assert!(matches!(
            PrivacyPass::new(&spki[1..], "a", "b", 60, vec![]),
            Err(SetupError::Key)
        ));
        for (issuer_name, origin) in [("", "ds"), ("a,b", "ds"), ("as", "a b"), ("as", "x,y")] {
            assert!(
                matches!(
                    PrivacyPass::new(spki, issuer_name, origin, 60, vec![]),
                    Err(SetupError::Name)
                ),
                "{issuer_name:?} {origin:?}"
            );
        }
        // The directory's base64url text, padded or not, or the DER itself.
        use base64::Engine as _;
        let text = base64::engine::general_purpose::URL_SAFE.encode(spki);
        assert_eq!(parse_token_key(text.as_bytes()).as_deref(), Some(spki));
        assert_eq!(
            parse_token_key(format!("{text}\n").as_bytes()).as_deref(),
            Some(spki)
        );
        assert_eq!(parse_token_key(spki).as_deref(), Some(spki));
        assert_eq!(parse_token_key(b"!!"), None);
    }
}
