//! OpenID Connect registration over real HTTP: a valid ID token registers a device; expired,
//! wrong-issuer, wrong-audience, forged, `alg: none` and algorithm-confusion tokens are
//! refused. The tests make their own issuer keys and JWKS.

mod support;

use conclave_as::api::{self, Authorization, ErrorCode};
use conclave_as::config::Config;
use conclave_as::oidc::{Issuer, IssuerConfig, Oidc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use support::{Engine, TestServer, random32, unix_now};

const ISSUER: &str = "https://id.example.org";
const AUDIENCE: &str = "conclave-as";

struct TestIssuer {
    key: ed25519_dalek::SigningKey,
    kid: String,
}

impl TestIssuer {
    fn new() -> Self {
        Self::with_kid("k1")
    }

    fn with_kid(kid: &str) -> Self {
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(&random32()),
            kid: kid.into(),
        }
    }

    fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        let x = api::encode_b64(&self.key.verifying_key().to_bytes());
        serde_json::from_value(serde_json::json!({
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]
        }))
        .unwrap()
    }

    fn token(&self, claims: serde_json::Value) -> String {
        let der = self.key.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    }
}

fn claims(iss: &str, aud: &str, exp: u64, email: &str) -> serde_json::Value {
    serde_json::json!({"iss": iss, "aud": aud, "exp": exp, "iat": unix_now(), "sub": "1234", "email": email, "email_verified": true})
}

/// `claims` bound to the registration challenge `nonce`.
fn bound(mut claims: serde_json::Value, nonce: &[u8]) -> serde_json::Value {
    claims["nonce"] = serde_json::json!(api::encode_b64(nonce));
    claims
}

async fn server(engine: Engine, issuer: &TestIssuer) -> TestServer {
    let config = IssuerConfig {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        user_claim: "email".into(),
        user_domain: None,
        jwks_file: String::new(),
        jwks_url: None,
        allowed_domains: vec!["example.org".into()],
        min_refetch_secs: 30,
    };
    let oidc = Oidc::new(vec![Issuer::new(config, &issuer.jwks()).unwrap()]);
    TestServer::start_with(engine, oidc, Config::default()).await
}

fn oidc(token: String) -> Authorization {
    Authorization::Oidc { id_token: token }
}

async fn oidc_suite(engine: Engine) {
    let issuer = TestIssuer::new();
    let server = server(engine, &issuer).await;
    let exp = unix_now() + 600;

    // Valid.
    let device = server
        .register_with(|n| {
            oidc(issuer.token(bound(claims(ISSUER, AUDIENCE, exp, "alice@example.org"), n)))
        })
        .await
        .expect("valid token");
    assert_eq!(device.user_id, "alice@example.org");
    support::mls::validate(
        &server.root_der,
        &device.chain(),
        &device.public_key(),
        server.now(),
    )
    .expect("valid chain");

    let refused = |reply: Result<support::Device, support::Reply>| {
        reply
            .err()
            .expect("refused")
            .assert_error(401, ErrorCode::InvalidIdToken)
    };
    // Expired.
    refused(
        server
            .register_with(|n| {
                oidc(issuer.token(bound(
                    claims(ISSUER, AUDIENCE, unix_now() - 3600, "alice@example.org"),
                    n,
                )))
            })
            .await,
    );
    // Wrong issuer.
    refused(
        server
            .register_with(|n| {
                oidc(issuer.token(bound(
                    claims("https://evil.example", AUDIENCE, exp, "alice@example.org"),
                    n,
                )))
            })
            .await,
    );
    // Wrong audience.
    refused(
        server
            .register_with(|n| {
                oidc(issuer.token(bound(
                    claims(ISSUER, "another-app", exp, "alice@example.org"),
                    n,
                )))
            })
            .await,
    );
    // Forged: signed by another key under the same kid.
    let forger = TestIssuer::new();
    refused(
        server
            .register_with(|n| {
                oidc(forger.token(bound(claims(ISSUER, AUDIENCE, exp, "alice@example.org"), n)))
            })
            .await,
    );
    // alg: none, unsigned.
    let header = api::encode_b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = api::encode_b64(
        claims(ISSUER, AUDIENCE, exp, "alice@example.org")
            .to_string()
            .as_bytes(),
    );
    refused(server.register(oidc(format!("{header}.{body}."))).await);
    // Algorithm confusion: HS256 with the issuer's public key as the HMAC secret.
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims(ISSUER, AUDIENCE, exp, "alice@example.org"),
        &EncodingKey::from_secret(&issuer.key.verifying_key().to_bytes()).unwrap(),
    )
    .unwrap();
    refused(server.register(oidc(confused)).await);
    // A valid token whose claim is not a user@domain id.
    refused(
        server
            .register_with(|n| {
                oidc(issuer.token(bound(claims(ISSUER, AUDIENCE, exp, "not-an-address"), n)))
            })
            .await,
    );
    // An unverified email address.
    let mut unverified = claims(ISSUER, AUDIENCE, exp, "alice@example.org");
    unverified["email_verified"] = serde_json::json!(false);
    refused(
        server
            .register_with(|n| oidc(issuer.token(bound(unverified.clone(), n))))
            .await,
    );
    // An email whose verification the provider does not state.
    let mut unstated = claims(ISSUER, AUDIENCE, exp, "alice@example.org");
    unstated.as_object_mut().unwrap().remove("email_verified");
    refused(
        server
            .register_with(|n| oidc(issuer.token(bound(unstated.clone(), n))))
            .await,
    );
    // A domain this issuer may not vouch for.
    refused(
        server
            .register_with(|n| {
                oidc(issuer.token(bound(claims(ISSUER, AUDIENCE, exp, "alice@evil.org"), n)))
            })
            .await,
    );
    // Not bound to the registration: no nonce, or another challenge's nonce (a token
    // captured from one registration cannot serve for another).
    refused(
        server
            .register(oidc(issuer.token(claims(
                ISSUER,
                AUDIENCE,
                exp,
                "alice@example.org",
            ))))
            .await,
    );
    let (_, body) = server.raw("POST", "/v1/challenges", &[], b"").await;
    let other: api::Challenge = serde_json::from_slice(&body).unwrap();
    let captured = issuer.token(bound(
        claims(ISSUER, AUDIENCE, exp, "alice@example.org"),
        &other.nonce.0,
    ));
    refused(server.register(oidc(captured)).await);
    // Garbage.
    refused(server.register(oidc("a.b.c".into())).await);
    server.finish().await;
}

#[tokio::test]
async fn oidc_registration_sqlite() {
    oidc_suite(Engine::Sqlite).await;
}

#[tokio::test]
async fn oidc_registration_postgres() {
    oidc_suite(Engine::Postgres).await;
}

#[test]
fn symmetric_keys_are_refused_in_a_jwks() {
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(serde_json::json!({
        "keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}]
    }))
    .unwrap();
    let config = IssuerConfig {
        issuer: ISSUER.into(),
        audiences: vec![AUDIENCE.into()],
        user_claim: "email".into(),
        user_domain: None,
        jwks_file: String::new(),
        jwks_url: None,
        min_refetch_secs: 30,
        allowed_domains: Vec::new(),
    };
    assert!(Issuer::new(config, &jwks).is_err());
}

/// An issuer's JWKS endpoint on loopback: serves the current key set, counts fetches, and
/// can be taken down.
#[derive(Clone)]
struct JwksEndpoint {
    jwks: std::sync::Arc<std::sync::Mutex<Option<jsonwebtoken::jwk::JwkSet>>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksEndpoint {
    async fn start(jwks: jsonwebtoken::jwk::JwkSet) -> (JwksEndpoint, String) {
        let endpoint = JwksEndpoint {
            jwks: std::sync::Arc::new(std::sync::Mutex::new(Some(jwks))),
            fetches: Default::default(),
        };
        let state = endpoint.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let state = state.clone();
                async move {
                    state
                        .fetches
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    match state.jwks.lock().unwrap().clone() {
                        Some(jwks) => Ok(axum::Json(jwks)),
                        None => Err(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (endpoint, url)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Keys by URL: fetched at start; when the issuer rotates, a token with the new key id
/// makes the AS fetch again (not sooner than `min_refetch_secs`), made-up key ids do not
/// make it hammer the issuer, and an issuer that is down leaves the old keys in use.
#[tokio::test]
async fn jwks_by_url_follows_key_rotation() {
    let old = TestIssuer::with_kid("2026-11");
    let new = TestIssuer::with_kid("2026-12");
    let (endpoint, url) = JwksEndpoint::start(old.jwks()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("oidc.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&serde_json::json!({"issuers": [{
            "issuer": ISSUER, "audiences": [AUDIENCE], "jwks_url": url,
            "allowed_domains": ["example.org"], "min_refetch_secs": 1
        }]}))
        .unwrap(),
    )
    .unwrap();
    let oidc = Oidc::load(&config).await.expect("JWKS fetched at start");
    assert_eq!(endpoint.fetches(), 1);
    let server = TestServer::start_with(Engine::Sqlite, oidc, Config::default()).await;
    register_as(&server, &old, "a1@example.org")
        .await
        .expect("old key");
    assert_eq!(endpoint.fetches(), 1, "fresh keys are not fetched again");

    // The issuer rotates; the AS fetches the new set when a token names the new key.
    *endpoint.jwks.lock().unwrap() = Some(new.jwks());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    register_as(&server, &new, "a2@example.org")
        .await
        .expect("new key after a fetch");
    assert_eq!(endpoint.fetches(), 2);
    // The old key is gone from the set.
    register_as(&server, &old, "a3@example.org")
        .await
        .err()
        .expect("old key refused")
        .assert_error(401, ErrorCode::InvalidIdToken);

    // Made-up key ids: at most one fetch per interval.
    let forger = TestIssuer::with_kid("made-up");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let before = endpoint.fetches();
    for user in ["f1@example.org", "f2@example.org", "f3@example.org"] {
        register_as(&server, &forger, user)
            .await
            .err()
            .expect("forged")
            .assert_error(401, ErrorCode::InvalidIdToken);
    }
    assert_eq!(
        endpoint.fetches(),
        before + 1,
        "one fetch for three unknown key ids"
    );

    // The issuer goes down: the keys held stay in use.
    *endpoint.jwks.lock().unwrap() = None;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    register_as(&server, &forger, "f4@example.org")
        .await
        .err()
        .expect("forged")
        .assert_error(401, ErrorCode::InvalidIdToken);
    register_as(&server, &new, "a4@example.org")
        .await
        .expect("held keys still verify");
    server.finish().await;
}

async fn register_as(
    server: &TestServer,
    issuer: &TestIssuer,
    user: &str,
) -> Result<support::Device, support::Reply> {
    let exp = unix_now() + 600;
    server
        .register_with(|n| oidc(issuer.token(bound(claims(ISSUER, AUDIENCE, exp, user), n))))
        .await
}

/// A configuration naming both a file and a URL, or neither, is refused at start.
#[tokio::test]
async fn jwks_source_must_be_one() {
    let dir = tempfile::tempdir().unwrap();
    for issuer in [
        serde_json::json!({"issuer": ISSUER, "audiences": [AUDIENCE]}),
        serde_json::json!({"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_file": "x.json", "jwks_url": "http://127.0.0.1:1/jwks.json"}),
    ] {
        let path = dir.path().join("oidc.json");
        std::fs::write(
            &path,
            serde_json::to_vec(&serde_json::json!({"issuers": [issuer]})).unwrap(),
        )
        .unwrap();
        let err = Oidc::load(&path).await.expect_err("refused");
        assert!(err.to_string().contains("exactly one"), "{err}");
    }
    // An unreachable URL fails the start with a clear error.
    let path = dir.path().join("oidc.json");
    std::fs::write(
        &path,
        serde_json::to_vec(&serde_json::json!({"issuers": [{"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_url": "http://127.0.0.1:1/jwks.json"}]})).unwrap(),
    )
    .unwrap();
    let err = Oidc::load(&path).await.expect_err("unreachable");
    assert!(
        err.to_string()
            .contains("JWKS http://127.0.0.1:1/jwks.json"),
        "{err}"
    );
}
