//! Anonymous but not open (issue 19): with a Privacy Pass issuer key, the DS sells mailbox,
//! pool and group creation, and claims past a pool's free rate, for one token each (RFC
//! 9578 §6, type 2), on both engines; a token is spent once, on this node or another; a
//! refused token stores nothing and a creation that fails gives its token back.
//!
//! The issuer here is `conclave-privacy-pass`'s `IssuerKey` — the very code the AS signs
//! with (`conclave_as::tokens`) — so the DS is tested without the AS running.

#[macro_use]
mod support;

use conclave_api::delivery::*;
use conclave_privacy_pass::{IssuerKey, IssuerPublicKey, Token, header};
use support::*;

/// One issuer key for the whole file (a 2048-bit key takes a moment to make).
fn issuer() -> &'static IssuerKey {
    static KEY: std::sync::OnceLock<IssuerKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| IssuerKey::generate().expect("issuer key"))
}

/// A DS node that takes tokens of [`issuer`].
async fn paid_env(engine: Engine, claims_per_minute: u32) -> Env {
    Env::with(engine, |c| {
        c.privacy_pass_token_key = Some(issuer().public_key().spki().to_vec());
        c.claims_per_minute = claims_per_minute;
    })
    .await
}

/// What the DS asks for now.
async fn terms(client: &Client) -> PrivacyPass {
    let r = client.empty("GET", "/v1/privacy-pass", Sign::No).await;
    assert_eq!(r.status, 200);
    r.json()
}

/// A token for `challenge`, through the whole client-issuer exchange, signed by `key`.
fn mint_with(key: &IssuerKey, challenge: &[u8]) -> Token {
    let public = IssuerPublicKey::from_spki(key.public_key().spki()).expect("key");
    let (request, pending) = conclave_privacy_pass::request(&public, challenge).expect("request");
    let response = key.issue(&request).expect("issue");
    pending.finish(&public, &response).expect("finish")
}

/// A token for the DS's current challenge.
async fn mint(client: &Client) -> Token {
    let t = terms(client).await;
    assert!(t.required);
    assert_eq!(
        t.token_key.as_ref().map(|k| k.0.as_slice()),
        Some(issuer().public_key().spki())
    );
    mint_with(issuer(), &t.challenge.expect("challenge").0)
}

/// `POST path` with JSON `body`, signed as asked, with `authorization` if any.
async fn post(
    client: &Client,
    path: &str,
    body: &impl serde::Serialize,
    sign: Sign<'_>,
    authorization: Option<String>,
) -> Resp {
    let body = serde_json::to_vec(body).expect("json");
    let mut p = client.prepare("POST", path, body, "application/json", sign, None);
    if let Some(a) = authorization {
        p.headers.push(("authorization", a));
    }
    client.send(&p).await
}

fn paid(token: &Token) -> Option<String> {
    Some(header::authorization(token))
}

async fn create_mailbox(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    auth: Option<String>,
) -> Resp {
    let body = CreateMailboxRequest {
        public_key: Bytes(key.verifying_key().to_bytes().to_vec()),
    };
    post(client, "/v1/mailboxes", &body, Sign::No, auth).await
}

/// Every creation costs one token; without one, with a forged, foreign, expired or spent
/// one, the DS answers 401 with the code that says why and the challenge to pay with,
/// and stores nothing.
async fn creations_cost_one_token_each(engine: Engine) {
    let env = paid_env(engine, 100_000).await;
    let c = &env.client;
    let t = terms(c).await;
    let (challenge, valid_until) = (
        t.challenge.clone().expect("challenge"),
        t.valid_until.expect("until"),
    );
    assert!(valid_until > conclave_ds::auth::now());

    // No token: 401 token_required, with the challenge and key in WWW-Authenticate.
    let key = new_key();
    let body = CreateMailboxRequest {
        public_key: Bytes(key.verifying_key().to_bytes().to_vec()),
    };
    let url = format!("{}/v1/mailboxes", c.base);
    let r = c.http.post(&url).json(&body).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 401);
    let www = r
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .expect("WWW-Authenticate")
        .to_owned();
    let (c2, k2) = header::parse_www_authenticate(&www).expect("parse challenge");
    assert_eq!(
        (c2, k2.as_slice()),
        (challenge.0.clone(), issuer().public_key().spki())
    );
    let error: ErrorBody = r.json().await.expect("json");
    assert_eq!(error.code, ErrorCode::TokenRequired);

    // Refusals, each typed, none storing anything.
    let good = mint(c).await;
    let other_issuer = IssuerKey::generate().expect("key");
    let foreign = mint_with(&other_issuer, &challenge.0);
    let other_origin = conclave_privacy_pass::TokenChallenge::new("conclave-as", None, "elsewhere")
        .expect("challenge");
    let elsewhere = mint_with(issuer(), &other_origin.encode());
    let mut forged = good.encode();
    forged[200] ^= 1;
    let forged_header = format!(
        "PrivateToken token=\"{}\"",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, &forged)
    );
    for (auth, code) in [
        ("Bearer abc".to_string(), ErrorCode::TokenRequired),
        (
            "PrivateToken token=\"AAAA\"".to_string(),
            ErrorCode::TokenRequired,
        ),
        (header::authorization(&foreign), ErrorCode::InvalidToken),
        (header::authorization(&elsewhere), ErrorCode::TokenExpired),
        (forged_header, ErrorCode::InvalidToken),
    ] {
        let r = create_mailbox(c, &new_key(), Some(auth.clone())).await;
        assert_eq!((r.status, r.code()), (401, code), "{auth}");
    }
    assert_eq!(env.db.count_rows("mailboxes").await, 0);
    assert_eq!(env.db.count_rows("spent_tokens").await, 0);

    // A good token pays for one mailbox, once.
    let r = create_mailbox(c, &key, paid(&good)).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let mailbox = r.json::<CreateMailboxResponse>().mailbox_id;
    let r = create_mailbox(c, &new_key(), paid(&good)).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::TokenSpent));
    assert_eq!(env.db.count_rows("mailboxes").await, 1);
    assert_eq!(env.db.count_rows("spent_tokens").await, 1);

    // A pool costs one (the mailbox signature alone is not enough).
    let secret = random::<32>();
    let pool_body = CreatePoolRequest {
        claim_secret: Bytes(secret.to_vec()),
    };
    let path = format!("/v1/mailboxes/{mailbox}/pools");
    let r = post(c, &path, &pool_body, Sign::Mailbox(&key), None).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::TokenRequired));
    let r = post(
        c,
        &path,
        &pool_body,
        Sign::Mailbox(&key),
        paid(&mint(c).await),
    )
    .await;
    assert_eq!(r.status, 201);

    // A group costs one; a group id already taken is refused and costs nothing: the
    // same token then pays for another group.
    let group = |id: &[u8]| CreateGroupRequest {
        group_id: Bytes(id.to_vec()),
        auth_key: Bytes(new_key().verifying_key().to_bytes().to_vec()),
    };
    let r = post(c, "/v1/groups", &group(b"g1"), Sign::No, None).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::TokenRequired));
    let r = post(
        c,
        "/v1/groups",
        &group(b"g1"),
        Sign::No,
        paid(&mint(c).await),
    )
    .await;
    assert_eq!(r.status, 201);
    let reused = mint(c).await;
    let r = post(c, "/v1/groups", &group(b"g1"), Sign::No, paid(&reused)).await;
    assert_eq!((r.status, r.code()), (409, ErrorCode::GroupExists));
    let r = post(c, "/v1/groups", &group(b"g2"), Sign::No, paid(&reused)).await;
    assert_eq!(r.status, 201, "the refused creation gave its token back");
    assert_eq!(env.db.count_rows("groups").await, 2);
    assert_eq!(env.db.count_rows("spent_tokens").await, 4);
}

/// A pool's free claim rate needs no token; past it the DS answers 429, and a claim paid
/// with a token goes through without touching the free budget. A paid claim of an empty
/// pool gives the token back; a paid claim with a wrong secret keeps it (a guess costs).
async fn claims_past_the_free_rate_cost_a_token(engine: Engine) {
    let env = paid_env(engine, 2).await;
    let c = &env.client;
    let key = new_key();
    let r = create_mailbox(c, &key, paid(&mint(c).await)).await;
    let mailbox = r.json::<CreateMailboxResponse>().mailbox_id;
    let secret = random::<32>();
    let r = post(
        c,
        &format!("/v1/mailboxes/{mailbox}/pools"),
        &CreatePoolRequest {
            claim_secret: Bytes(secret.to_vec()),
        },
        Sign::Mailbox(&key),
        paid(&mint(c).await),
    )
    .await;
    let pool = r.json::<CreatePoolResponse>().pool_id;
    let packages: Vec<(Vec<u8>, bool)> = (0..4u8).map(|i| (vec![i; 40], false)).collect();
    let expires = conclave_ds::auth::now() + 86_400;
    let r = c
        .upload_key_packages(&mailbox, &key, &pool, packages, expires)
        .await;
    assert!(r.status < 300, "{}", r.status);
    let claim = ClaimRequest {
        claim_secret: Bytes(secret.to_vec()),
    };
    let path = format!("/v1/pools/{pool}/claim");
    for _ in 0..2 {
        assert_eq!(post(c, &path, &claim, Sign::No, None).await.status, 200);
    }
    let r = post(c, &path, &claim, Sign::No, None).await;
    assert_eq!((r.status, r.code()), (429, ErrorCode::RateLimited));
    let spent_before = env.db.count_rows("spent_tokens").await;
    // Paid: through, twice, while the free budget stays spent.
    for _ in 0..2 {
        let r = post(c, &path, &claim, Sign::No, paid(&mint(c).await)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(post(c, &path, &claim, Sign::No, None).await.status, 429);
    assert_eq!(env.db.count_rows("spent_tokens").await, spent_before + 2);
    // The pool is empty now: a paid claim finds nothing and its token is given back.
    let back = mint(c).await;
    let r = post(c, &path, &claim, Sign::No, paid(&back)).await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::PoolEmpty));
    assert_eq!(env.db.count_rows("spent_tokens").await, spent_before + 2);
    // A wrong secret with a token: refused, and the token is gone.
    let wrong = ClaimRequest {
        claim_secret: Bytes(vec![1; 32]),
    };
    let r = post(c, &path, &wrong, Sign::No, paid(&back)).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadClaimSecret));
    let r = post(c, &path, &claim, Sign::No, paid(&back)).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::TokenSpent));
}

engine_suite!(
    creations_cost_one_token_each,
    claims_past_the_free_rate_cost_a_token
);

/// Two nodes on one PostgreSQL database: a token minted from one node's challenge is good
/// at the other (they share the window secret), and the same token sent to both at once,
/// many times, pays for exactly one mailbox. A restarted node keeps accepting tokens of
/// the challenge it published before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_is_spent_once_across_nodes() {
    let env = paid_env(Engine::Postgres, 100_000).await;
    let (second, c2) = env
        .second_node(|c| c.privacy_pass_token_key = Some(issuer().public_key().spki().to_vec()))
        .await;
    let c1 = &env.client;
    assert_eq!(terms(c1).await, terms(&c2).await);
    for round in 0..5 {
        let token = mint(&c2).await;
        let mut tasks = Vec::new();
        for i in 0..12 {
            let client = if i % 2 == 0 { c1.clone() } else { c2.clone() };
            let auth = paid(&token);
            tasks.push(tokio::spawn(async move {
                create_mailbox(&client, &new_key(), auth).await
            }));
        }
        let mut created = 0;
        for t in tasks {
            let r = t.await.expect("task");
            match r.status {
                201 => created += 1,
                401 => assert_eq!(r.code(), ErrorCode::TokenSpent),
                s => panic!("round {round}: status {s}"),
            }
        }
        assert_eq!(created, 1, "round {round}");
    }
    assert_eq!(env.db.count_rows("mailboxes").await, 5);
    // A token minted before a restart is good after it.
    let kept = mint(c1).await;
    second.stop();
    let (_third, c3) = env
        .second_node(|c| c.privacy_pass_token_key = Some(issuer().public_key().spki().to_vec()))
        .await;
    assert_eq!(
        create_mailbox(&c3, &new_key(), paid(&kept)).await.status,
        201
    );
}

/// Without an issuer key the DS is open, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_an_issuer_key_creation_is_free() {
    let env = Env::new(Engine::Sqlite).await;
    let t = terms(&env.client).await;
    assert!(!t.required && t.challenge.is_none() && t.token_key.is_none());
    assert_eq!(
        create_mailbox(&env.client, &new_key(), None).await.status,
        201
    );
}

/// The pruner drops the spent tokens of windows whose tokens are refused anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spent_tokens_of_past_windows_are_pruned() {
    let env = paid_env(Engine::Sqlite, 100_000).await;
    let c = &env.client;
    for _ in 0..3 {
        assert_eq!(
            create_mailbox(c, &new_key(), paid(&mint(c).await))
                .await
                .status,
            201
        );
    }
    let store = env.server.store.as_ref();
    let now = conclave_ds::auth::now() as i64;
    let config = env.db.config();
    // Today's cut-offs keep them (their window is current)…
    let kept = conclave_ds::retention::prune(store, conclave_ds::retention::cutoffs(&config, now))
        .await
        .expect("prune");
    assert_eq!(kept.spent_tokens, 0);
    assert_eq!(env.db.count_rows("spent_tokens").await, 3);
    // …two windows later they go.
    let later = now + 2 * config.privacy_pass_window_secs as i64;
    let gone =
        conclave_ds::retention::prune(store, conclave_ds::retention::cutoffs(&config, later))
            .await
            .expect("prune");
    assert_eq!(gone.spent_tokens, 3);
    assert_eq!(env.db.count_rows("spent_tokens").await, 0);
}
