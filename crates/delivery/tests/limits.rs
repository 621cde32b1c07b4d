//! Request limits: per-route body limits (413 with the typed error body) and the node-wide
//! budget of anonymous creations (429 with `Retry-After`).

mod support;

use conclave_api::delivery::*;
use support::mls::Mls;
use support::*;

async fn body_limits_per_route(engine: Engine) {
    let env = Env::with(engine, |c| {
        c.max_control_bytes = 1024;
        c.max_message_bytes = 2048;
        c.max_blob_bytes = 512;
        c.max_body_bytes = 64 * 1024;
    })
    .await;
    let c = &env.client;
    let too_large = |r: &Resp| {
        assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.code(), ErrorCode::PayloadTooLarge);
    };

    // Control JSON: a mailbox creation padded past 1 KiB.
    let padded = format!(
        "{{\"public_key\":\"{}\",\"pad\":\"{}\"}}",
        Bytes(new_key().verifying_key().to_bytes().to_vec()).to_base64(),
        "x".repeat(2000)
    );
    let p = c.prepare(
        "POST",
        "/v1/mailboxes",
        padded.into_bytes(),
        "application/json",
        Sign::No,
        None,
    );
    too_large(&c.send(&p).await);
    let (mb, mk) = c.mailbox().await;
    let r = c
        .json(
            "POST",
            &format!("/v1/mailboxes/{mb}/ack"),
            &AckRequest {
                ids: (0..500).collect(),
            },
            Sign::Mailbox(&mk),
        )
        .await;
    too_large(&r);

    // A blob over its limit.
    let p = c.prepare(
        "POST",
        &format!("/v1/mailboxes/{mb}/entries"),
        vec![1; 600],
        "application/octet-stream",
        Sign::No,
        None,
    );
    too_large(&c.send(&p).await);

    // Group messages: up to max_message_bytes.
    let mls = Mls::new();
    let gid = b"limits".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(c.create_group(&gid, &k0).await.status, 201);
    let big = mls.encrypt(&mut alice, &[0u8; 3000]);
    too_large(&c.post(&gid, &big, &k0, 0).await);
    let small = mls.encrypt(&mut alice, b"fits");
    assert_eq!(c.post(&gid, &small, &k0, 0).await.status, 201);

    // Commits may be larger than messages and control bodies (they carry Welcomes)…
    let (m2, _) = c.mailbox().await;
    let joiners: Vec<_> = (0..4).map(|i| mls.joiner(&format!("j{i}"))).collect();
    let p = mls.commit_add(&mut alice, &joiners.iter().collect::<Vec<_>>());
    let request = commit_request(&p, &[&m2]);
    let size = serde_json::to_vec(&request).expect("json").len();
    assert!(size > 2048 && size < 64 * 1024, "{size}");
    assert_eq!(c.commit(&gid, &request, &k0, 0).await.status, 201);
    mls.accepted(&mut alice);
    // …up to max_body_bytes.
    let k1 = mls.auth_key(&alice);
    let joiners: Vec<_> = (0..150).map(|i| mls.joiner(&format!("k{i}"))).collect();
    let p = mls.commit_add(&mut alice, &joiners.iter().collect::<Vec<_>>());
    let request = commit_request(&p, &[&m2]);
    assert!(serde_json::to_vec(&request).expect("json").len() > 64 * 1024);
    too_large(&c.commit(&gid, &request, &k1, 1).await);
    mls.refused(&mut alice);
    // Nothing of the refused commit is stored: the group is still at epoch 1.
    let page: LogPage = c.log(&gid, 1, &k1, 1).await.json();
    assert_eq!(page.current_epoch, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_body_limits_per_route() {
    body_limits_per_route(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_body_limits_per_route() {
    body_limits_per_route(Engine::Postgres).await;
}

/// Mailbox and group creations share one node-wide budget; past it, 429 `rate_limited`
/// with `Retry-After`, while signed requests go on.
async fn anonymous_creations_are_rate_limited(engine: Engine) {
    let env = Env::with(engine, |c| c.anonymous_creations_per_minute = 3).await;
    let c = &env.client;
    let (mb, mk) = c.mailbox().await;
    let _ = c.mailbox().await;
    let mls = Mls::new();
    let group = mls.create_group("alice", b"rate");
    assert_eq!(
        c.create_group(b"rate", &mls.auth_key(&group)).await.status,
        201
    );
    // The budget is spent: both kinds of creation are refused.
    let key = new_key();
    let response = c
        .http
        .post(format!("{}/v1/mailboxes", c.base))
        .json(&CreateMailboxRequest {
            public_key: Bytes(key.verifying_key().to_bytes().to_vec()),
        })
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    let body: ErrorBody = response.json().await.expect("typed body");
    assert_eq!(body.code, ErrorCode::RateLimited);
    let other = mls.create_group("alice", b"rate-2");
    let r = c.create_group(b"rate-2", &mls.auth_key(&other)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.code(), ErrorCode::RateLimited);
    // Requests on existing mailboxes are not creations.
    assert!(c.entries(&mb, &mk).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_anonymous_creations_are_rate_limited() {
    anonymous_creations_are_rate_limited(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_anonymous_creations_are_rate_limited() {
    anonymous_creations_are_rate_limited(Engine::Postgres).await;
}
