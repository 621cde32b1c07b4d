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
}

impl TestIssuer {
    fn new() -> Self {
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(&random32()),
        }
    }

    fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        let x = api::encode_b64(&self.key.verifying_key().to_bytes());
        serde_json::from_value(serde_json::json!({
            "keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA", "use": "sig"}]
        }))
        .unwrap()
    }

    fn token(&self, claims: serde_json::Value) -> String {
        let der = self.key.to_pkcs8_der().unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
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
        allowed_domains: vec!["example.org".into()],
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
        allowed_domains: Vec::new(),
    };
    assert!(Issuer::new(config, &jwks).is_err());
}
