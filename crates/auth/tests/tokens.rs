//! Privacy Pass issuance (issue 19, RFC 9578 §6): registered devices get blind signatures
//! for their token requests, counted against their user's budget; the finished tokens
//! verify under the key of the issuer directory; everything else is refused, typed, and
//! takes nothing from the budget.

mod support;

use conclave_api::auth as api;
use conclave_as::config::{Config, RateLimits};
use conclave_privacy_pass::{IssuerPublicKey, TokenChallenge};
use support::*;

/// The issuer key of the directory (RFC 9578 §4).
async fn directory_key(server: &TestServer) -> IssuerPublicKey {
    let (status, body) = server
        .raw(
            "GET",
            "/.well-known/private-token-issuer-directory",
            &[],
            b"",
        )
        .await;
    assert_eq!(status, 200);
    let directory: api::IssuerDirectory = serde_json::from_slice(&body).expect("json");
    assert_eq!(directory.issuer_request_uri, "/v1/tokens");
    assert_eq!(directory.token_keys.len(), 1);
    assert_eq!(directory.token_keys[0].token_type, 2);
    use base64::Engine as _;
    let key = base64::engine::general_purpose::URL_SAFE
        .decode(&directory.token_keys[0].token_key)
        .expect("padded base64url");
    IssuerPublicKey::from_spki(&key).expect("an RFC 9578 key")
}

/// `n` token requests for a challenge; the pending states.
fn requests(
    key: &IssuerPublicKey,
    n: usize,
) -> (api::TokenRequests, Vec<conclave_privacy_pass::PendingToken>) {
    let challenge = TokenChallenge::new("conclave-as", Some([3; 32]), "conclave-ds")
        .expect("challenge")
        .encode();
    let (requests, pending): (Vec<_>, Vec<_>) = (0..n)
        .map(|_| conclave_privacy_pass::request(key, &challenge).expect("request"))
        .unzip();
    (
        api::TokenRequests {
            requests: requests.into_iter().map(Into::into).collect(),
        },
        pending,
    )
}

async fn ask(server: &TestServer, device: &Device, batch: &api::TokenRequests) -> Reply {
    server
        .signed(device, "POST", "/v1/tokens", Some(batch))
        .await
}

fn config(tokens_per_user: u64) -> Config {
    Config {
        rate_limits: RateLimits {
            tokens_per_user,
            ..RateLimits::default()
        },
        ..Config::default()
    }
}

/// A device gets one blind signature per request; each finishes into a token that
/// verifies under the directory's key and carries the nonce the client chose.
async fn registered_devices_get_tokens(engine: Engine) {
    let server = TestServer::start_with(engine, Default::default(), config(100)).await;
    let key = directory_key(&server).await;
    let alice = device_for(&server, "alice@example.org").await;
    let (batch, pending) = requests(&key, 5);
    let reply = ask(&server, &alice, &batch).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let responses: api::TokenResponses = reply.json();
    assert_eq!(responses.responses.len(), 5);
    let mut nonces = std::collections::HashSet::new();
    for (p, r) in pending.into_iter().zip(responses.responses) {
        let token = p.finish(&key, &r.0).expect("a valid blind signature");
        key.verify(&token).expect("verifies");
        assert!(nonces.insert(*token.nonce()));
    }
    server.finish().await;
}

/// Each user's budget holds across its devices and is exact under concurrency; a batch
/// past it is refused whole (429 with Retry-After to the window's end) and takes nothing;
/// the next window starts afresh; another user has a budget of its own.
async fn the_budget_is_per_user_and_exact(engine: Engine) {
    let server = TestServer::start_with(engine, Default::default(), config(20)).await;
    let key = directory_key(&server).await;
    let phone = device_for(&server, "bob@example.org").await;
    let laptop = device_for(&server, "bob@example.org").await;
    let carol = device_for(&server, "carol@example.org").await;
    // 8 concurrent batches of 4 from two devices: exactly 5 are served (20 tokens).
    let mut tasks = Vec::new();
    let server_ref = &server;
    for i in 0..8 {
        let device = if i % 2 == 0 { &phone } else { &laptop };
        let (batch, _) = requests(&key, 4);
        tasks.push(async move { ask(server_ref, device, &batch).await });
    }
    let replies = futures_util::future::join_all(tasks).await;
    let served = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(served, 5);
    for r in replies.iter().filter(|r| r.status != 200) {
        r.assert_error(429, api::ErrorCode::RateLimited);
    }
    // Carol is not affected.
    let (batch, _) = requests(&key, 20);
    assert_eq!(ask(&server, &carol, &batch).await.status, 200);
    // A retry-after that ends the window.
    let (batch, _) = requests(&key, 1);
    let (status, _) = server
        .raw(
            "POST",
            "/v1/tokens",
            &phone.sign_headers(
                "POST",
                "/v1/tokens",
                server.now(),
                &serde_json::to_vec(&batch).expect("json"),
            ),
            &serde_json::to_vec(&batch).expect("json"),
        )
        .await;
    assert_eq!(status, 429);
    // A day later the budget is whole again.
    server.advance(86_400);
    let (batch, _) = requests(&key, 20);
    assert_eq!(ask(&server, &laptop, &batch).await.status, 200);
    server.finish().await;
}

/// Requests that are not type-2 token requests of this issuer's key are refused with 422
/// `invalid_token_request` (RFC 9578 §6.3) and spend nothing; empty or oversized batches,
/// unsigned and revoked callers are refused too.
async fn bad_requests_are_refused_and_cost_nothing(engine: Engine) {
    let server = TestServer::start_with(engine, Default::default(), config(3)).await;
    let key = directory_key(&server).await;
    let dave = device_for(&server, "dave@example.org").await;
    let (good, _) = requests(&key, 1);
    let good_request = good.requests[0].0.clone();
    let mut wrong_key = good_request.clone();
    wrong_key[2] ^= 0xff;
    let mut wrong_type = good_request.clone();
    wrong_type[1] = 1;
    let mut too_long = good_request.clone();
    too_long.push(0);
    let mut out_of_range = good_request.clone();
    out_of_range[3..].fill(0xff);
    for (what, request) in [
        ("past the modulus", out_of_range),
        ("another key", wrong_key),
        ("type 1", wrong_type),
        ("too long", too_long),
        ("truncated", good_request[..100].to_vec()),
        ("empty", Vec::new()),
    ] {
        let batch = api::TokenRequests {
            requests: vec![good_request.clone().into(), request.into()],
        };
        let reply = ask(&server, &dave, &batch).await;
        assert_eq!(reply.status, 422, "{what}");
        reply.assert_error(422, api::ErrorCode::InvalidTokenRequest);
    }
    let batch = api::TokenRequests { requests: vec![] };
    ask(&server, &dave, &batch)
        .await
        .assert_error(400, api::ErrorCode::BadRequest);
    let (big, _) = requests(&key, api::MAX_TOKEN_REQUESTS + 1);
    ask(&server, &dave, &big)
        .await
        .assert_error(400, api::ErrorCode::BadRequest);
    let (status, _) = server
        .raw(
            "POST",
            "/v1/tokens",
            &[],
            &serde_json::to_vec(&good).expect("json"),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = server.raw("POST", "/v1/tokens", &[], b"{not json").await;
    assert_eq!(status, 401);
    // None of it took from the budget: all three are left.
    let (three, _) = requests(&key, 3);
    assert_eq!(ask(&server, &dave, &three).await.status, 200);
    // A revoked device gets nothing.
    let reply = server
        .signed(
            &dave,
            "POST",
            &format!("/v1/devices/{}/revoke", dave.device_id),
            None::<&()>,
        )
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let (one, _) = requests(&key, 1);
    assert_eq!(ask(&server, &dave, &one).await.status, 403);
    server.finish().await;
}

/// The issuer key is one file in the key directory: a restart signs under the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_issuer_key_survives_a_restart() {
    let server = TestServer::start(Engine::Sqlite).await;
    let before = directory_key(&server).await;
    let server = server.restart().await;
    assert_eq!(directory_key(&server).await, before);
    server.finish().await;
}

macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::Engine::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name(super::Engine::Postgres).await; })*
        }
    };
}

both!(
    registered_devices_get_tokens,
    the_budget_is_per_user_and_exact,
    bad_requests_are_refused_and_cost_nothing
);
