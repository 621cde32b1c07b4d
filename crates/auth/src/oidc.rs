//! OpenID Connect sign-in: an ID token (a JWS, OpenID Connect Core §2, §3.1.3.7) from a
//! configured issuer authorises registering a device for the user it names.
//!
//! Checked: the signature, with a key of the issuer's JWKS only (never a key named by the
//! token itself), with the algorithm that key is for (so `alg: none` and HMAC-with-a-public-
//! key confusion are refused); `iss` equal to the issuer; `aud` containing a configured
//! audience; `exp` in the future (`nbf`, when present, in the past), with a small leeway.
//! The user id is a configured claim (`email`, `sub`…), suffixed `@domain` when configured
//! so, and must be `local@domain`; when it is `email`, `email_verified` must be `true`; its
//! domain must be one of the issuer's `allowed_domains` when those are configured. The
//! token's `nonce` claim must be the registration challenge's nonce (base64url), binding
//! the token to that one registration.
//!
//! An issuer's keys come from a JWKS file, or from its JWKS URL (`jwks_uri` of its
//! discovery document): fetched at start, again once they are an hour old, and at once
//! when a token names a key id the AS does not hold (the issuer rotated its keys) — at most
//! once per [`REFETCH_INTERVAL`], so that tokens with made-up key ids cannot make the AS
//! flood the issuer.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::path::Path;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Leeway on `exp`/`nbf`, seconds.
const LEEWAY: u64 = 30;
/// Keys fetched from a URL are fetched again once this old.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// The shortest time between two fetches of one issuer's JWKS, unless configured.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// The longest a JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JWKS accepted, bytes.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why a token or a configuration is refused.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The token is refused.
    #[error("ID token refused: {0}")]
    Refused(String),
    /// The configuration is unusable.
    #[error("OIDC configuration: {0}")]
    Config(String),
}

/// One trusted issuer, as configured.
#[derive(Clone, Debug, Deserialize)]
pub struct IssuerConfig {
    /// The `iss` value, e.g. `https://accounts.example.org`.
    pub issuer: String,
    /// Accepted `aud` values (the AS's client ids at that issuer).
    pub audiences: Vec<String>,
    /// The claim that holds the user id (`email` by default).
    #[serde(default = "default_claim")]
    pub user_claim: String,
    /// Appended as `@domain` when the claim has no `@` (for `sub`-style ids).
    #[serde(default)]
    pub user_domain: Option<String>,
    /// The issuer's JWKS file (its published keys); or give `jwks_url`.
    #[serde(default)]
    pub jwks_file: String,
    /// The issuer's JWKS URL (`https://…`), fetched at start and refreshed; or give
    /// `jwks_file`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The user-id domains this issuer may vouch for (case-insensitive); empty: any. An
    /// issuer for `example.org` accounts should list `["example.org"]`, so that it cannot
    /// name users of another domain.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// The shortest time between two fetches of `jwks_url`, seconds (default 30).
    #[serde(default = "default_refetch")]
    pub min_refetch_secs: u64,
}

fn default_refetch() -> u64 {
    REFETCH_INTERVAL.as_secs()
}

fn default_claim() -> String {
    "email".into()
}

/// The OIDC configuration file: `{"issuers": [IssuerConfig…]}` (JSON).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct OidcConfig {
    /// The trusted issuers.
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
}

/// A key of an issuer, ready to verify.
struct IssuerKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// An issuer's current keys.
struct KeySet {
    keys: Vec<IssuerKey>,
    /// When they were fetched (keys from a file: when read).
    fetched: Instant,
    /// When a fetch was last tried, successful or not.
    tried: Instant,
}

/// A trusted issuer with its keys.
pub struct Issuer {
    config: IssuerConfig,
    keys: RwLock<KeySet>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("issuer", &self.config.issuer)
            .field("jwks_url", &self.config.jwks_url)
            .finish()
    }
}

fn parse_keys(jwks: &JwkSet) -> Result<Vec<IssuerKey>, OidcError> {
    jwks.keys
        .iter()
        .map(|jwk| {
            Ok(IssuerKey {
                kid: jwk.common.key_id.clone(),
                algorithm: key_algorithm(jwk)?,
                key: DecodingKey::from_jwk(jwk).map_err(|e| OidcError::Config(e.to_string()))?,
            })
        })
        .collect()
}

/// Fetches and parses a JWKS.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<IssuerKey>, OidcError> {
    let failed = |e: &dyn std::fmt::Display| OidcError::Config(format!("JWKS {url}: {e}"));
    let mut response = http
        .get(url)
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| failed(&e))?;
    if !response.status().is_success() {
        return Err(failed(&response.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(failed(&"larger than 256 KiB"));
        }
    }
    let jwks: JwkSet = serde_json::from_slice(&body).map_err(|e| failed(&e))?;
    let keys = parse_keys(&jwks)?;
    if keys.is_empty() {
        return Err(failed(&"no key"));
    }
    Ok(keys)
}

/// The algorithm a JWK is for: its `alg` when given, else the usual one for its key type.
/// Symmetric keys are refused: an issuer's published keys are public.
fn key_algorithm(jwk: &Jwk) -> Result<Algorithm, OidcError> {
    let from_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return Err(OidcError::Config("unsupported EC curve".into())),
        },
        AlgorithmParameters::OctetKeyPair(p) => {
            let x = crate::api::decode_b64(&p.x).unwrap_or_default();
            if p.curve != EllipticCurve::Ed25519 || x.len() != 32 {
                return Err(OidcError::Config("OKP keys must be 32-byte Ed25519".into()));
            }
            Algorithm::EdDSA
        }
        _ => {
            return Err(OidcError::Config(
                "symmetric or unknown key types are not accepted in a JWKS".into(),
            ));
        }
    };
    let Some(declared) = jwk.common.key_algorithm else {
        return Ok(from_type);
    };
    let declared = match declared {
        KeyAlgorithm::HS256 | KeyAlgorithm::HS384 | KeyAlgorithm::HS512 => {
            return Err(OidcError::Config("HMAC keys are not accepted".into()));
        }
        other => Algorithm::try_from(other).map_err(|e| OidcError::Config(e.to_string()))?,
    };
    let same_family = matches!(
        (from_type, declared),
        (
            Algorithm::RS256,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (Algorithm::ES256, Algorithm::ES256)
            | (Algorithm::ES384, Algorithm::ES384)
            | (Algorithm::EdDSA, Algorithm::EdDSA)
    );
    if !same_family {
        return Err(OidcError::Config(format!(
            "JWK alg {declared:?} does not fit its key type"
        )));
    }
    Ok(declared)
}

impl Issuer {
    /// An issuer trusting the keys of `jwks` (refreshed from `config.jwks_url`, if set).
    pub fn new(config: IssuerConfig, jwks: &JwkSet) -> Result<Self, OidcError> {
        Self::with_keys(config, parse_keys(jwks)?)
    }

    fn with_keys(config: IssuerConfig, keys: Vec<IssuerKey>) -> Result<Self, OidcError> {
        if keys.is_empty() {
            return Err(OidcError::Config(format!(
                "issuer {} has no key",
                config.issuer
            )));
        }
        if config.audiences.is_empty() {
            return Err(OidcError::Config(format!(
                "issuer {} has no audience",
                config.issuer
            )));
        }
        let now = Instant::now();
        Ok(Self {
            config,
            keys: RwLock::new(KeySet {
                keys,
                fetched: now,
                tried: now,
            }),
        })
    }

    /// An issuer whose JWKS is read from `config.jwks_file`, or fetched from
    /// `config.jwks_url`.
    pub async fn from_config(
        config: IssuerConfig,
        http: &reqwest::Client,
    ) -> Result<Self, OidcError> {
        match (&config.jwks_url, config.jwks_file.is_empty()) {
            (Some(url), true) => {
                let keys = fetch(http, url).await?;
                Self::with_keys(config, keys)
            }
            (None, false) => {
                let bytes = std::fs::read(&config.jwks_file)
                    .map_err(|e| OidcError::Config(format!("{}: {e}", config.jwks_file)))?;
                let jwks: JwkSet = serde_json::from_slice(&bytes)
                    .map_err(|e| OidcError::Config(format!("{}: {e}", config.jwks_file)))?;
                Self::new(config, &jwks)
            }
            _ => Err(OidcError::Config(format!(
                "issuer {}: give exactly one of jwks_file and jwks_url",
                config.issuer
            ))),
        }
    }

    /// Whether this issuer's keys should be fetched again before verifying `kid`: keys
    /// from a URL that are stale, or that lack `kid` — not more often than
    /// [`REFETCH_INTERVAL`].
    fn wants_refresh(&self, kid: Option<&str>) -> bool {
        if self.config.jwks_url.is_none() {
            return false;
        }
        let Ok(set) = self.keys.read() else {
            return false;
        };
        if set.tried.elapsed() < Duration::from_secs(self.config.min_refetch_secs) {
            return false;
        }
        let unknown =
            kid.is_some_and(|kid| !set.keys.iter().any(|k| k.kid.as_deref() == Some(kid)));
        unknown || set.fetched.elapsed() >= JWKS_MAX_AGE
    }

    /// Fetches the keys again; on failure the old ones stay.
    async fn refresh(&self, http: &reqwest::Client) {
        let Some(url) = &self.config.jwks_url else {
            return;
        };
        if let Ok(mut set) = self.keys.write() {
            set.tried = Instant::now();
        }
        match fetch(http, url).await {
            Ok(keys) => {
                if let Ok(mut set) = self.keys.write() {
                    set.keys = keys;
                    set.fetched = Instant::now();
                }
                tracing::info!(issuer = %self.config.issuer, "JWKS fetched again");
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer, error = %e, "JWKS refresh failed; keeping the old keys")
            }
        }
    }
}

/// The trusted issuers.
#[derive(Debug, Default)]
pub struct Oidc {
    issuers: Vec<Issuer>,
    http: reqwest::Client,
}

impl Oidc {
    /// Trusting `issuers`.
    pub fn new(issuers: Vec<Issuer>) -> Self {
        Self {
            issuers,
            http: reqwest::Client::new(),
        }
    }

    /// Reads the configuration file at `path`, and every JWKS it names (files read, URLs
    /// fetched).
    pub async fn load(path: &Path) -> Result<Self, OidcError> {
        let bytes = std::fs::read(path)
            .map_err(|e| OidcError::Config(format!("{}: {e}", path.display())))?;
        let config: OidcConfig = serde_json::from_slice(&bytes)
            .map_err(|e| OidcError::Config(format!("{}: {e}", path.display())))?;
        let http = reqwest::Client::new();
        let mut issuers = Vec::new();
        for issuer in config.issuers {
            issuers.push(Issuer::from_config(issuer, &http).await?);
        }
        Ok(Self { issuers, http })
    }

    /// Verifies `token` as [`Oidc::verify`] does, first fetching again the keys of an
    /// issuer configured by URL when they are stale or lack the token's key id.
    pub async fn verify_fresh(
        &self,
        token: &str,
        challenge_nonce: &[u8],
    ) -> Result<String, OidcError> {
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
        for issuer in &self.issuers {
            if issuer.wants_refresh(kid.as_deref()) {
                issuer.refresh(&self.http).await;
            }
        }
        self.verify(token, challenge_nonce)
    }

    /// Whether any issuer is configured.
    pub fn is_enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// Verifies `token` and returns the user id it names. The token must carry the
    /// registration challenge's nonce, base64url-encoded, in its `nonce` claim (OpenID
    /// Connect Core §3.1.2.1: the client sends it in the authentication request), so that a
    /// token is bound to one registration and a token captured elsewhere cannot be replayed.
    pub fn verify(&self, token: &str, challenge_nonce: &[u8]) -> Result<String, OidcError> {
        let refused = |m: String| OidcError::Refused(m);
        // The header is read only to pick a key; `alg: none` or an unknown alg fails here.
        let header = jsonwebtoken::decode_header(token).map_err(|e| refused(e.to_string()))?;
        let mut last = refused("no configured issuer has a key for this token".into());
        for issuer in &self.issuers {
            let Ok(set) = issuer.keys.read() else {
                continue;
            };
            for key in &set.keys {
                if header.kid.is_some() && key.kid.is_some() && header.kid != key.kid {
                    continue;
                }
                if header.alg != key.algorithm {
                    continue;
                }
                let mut validation = Validation::new(key.algorithm);
                validation.leeway = LEEWAY;
                validation.validate_nbf = true;
                validation.set_issuer(&[&issuer.config.issuer]);
                validation.set_audience(&issuer.config.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud"]);
                match jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    token,
                    &key.key,
                    &validation,
                ) {
                    Ok(data) => {
                        let expected = crate::api::encode_b64(challenge_nonce);
                        if data.claims.get("nonce").and_then(|v| v.as_str())
                            != Some(expected.as_str())
                        {
                            return Err(refused(
                                "the token's nonce is not the registration challenge's".into(),
                            ));
                        }
                        return user_id(&issuer.config, &data.claims);
                    }
                    Err(e) => last = refused(e.to_string()),
                }
            }
        }
        Err(last)
    }
}

fn user_id(
    config: &IssuerConfig,
    claims: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, OidcError> {
    let value = claims
        .get(&config.user_claim)
        .and_then(|v| v.as_str())
        .ok_or_else(|| OidcError::Refused(format!("no string claim {}", config.user_claim)))?;
    // OpenID Connect Core §5.1: an address the provider has not verified names nobody;
    // `email_verified` must be present and true.
    if config.user_claim == "email"
        && claims.get("email_verified").and_then(|v| v.as_bool()) != Some(true)
    {
        return Err(OidcError::Refused(
            "the email address is not verified".into(),
        ));
    }
    let user = match (&config.user_domain, value.contains('@')) {
        (Some(domain), false) => format!("{value}@{domain}"),
        _ => value.to_owned(),
    };
    if !crate::valid_user_id(&user) {
        return Err(OidcError::Refused(format!(
            "claim {} is not a user@domain id",
            config.user_claim
        )));
    }
    let domain = user.rsplit_once('@').map_or("", |(_, d)| d);
    if !config.allowed_domains.is_empty()
        && !config
            .allowed_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    {
        return Err(OidcError::Refused(format!(
            "this issuer may not vouch for users of {domain}"
        )));
    }
    Ok(user)
}
