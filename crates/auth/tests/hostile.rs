//! Hostile clients against the AS (issue 19): every HTTP route of
//! `crates/auth/src/http/mod.rs::router` (the paths of the checked-in
//! `crates/auth/openapi.json`) is sent truncated, oversized and malformed bodies (bad JSON,
//! wrong types, bad base64), wrong content types, unsigned, wrongly signed, stale and
//! replayed requests, requests signed by another user's or a revoked device, and other
//! users' and devices' ids. Every attack must be answered with the expected 4xx status and
//! a typed JSON [`ErrorBody`], change nothing that is stored (a snapshot of the tables is
//! compared before and after each attack), and leave the server answering `/health`.
//! Floods must be answered 429 with `Retry-After` while other devices are still served.

mod support;

use conclave_as::api::{self, Authorization, ErrorBody, ErrorCode};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::{Device, Engine, TestServer, device_for, invitation, random32};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP answer with its headers (lower-case names).
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `bytes` as they are on a fresh connection (then closes the writing half if asked)
/// and reads the answer; `None` if the server closed without one.
async fn send_raw(addr: SocketAddr, bytes: &[u8], half_close: bool) -> Option<Answer> {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before it has read everything (413).
    let _ = s.write_all(bytes).await;
    if half_close {
        s.shutdown().await.expect("shutdown");
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("an answer or a close within 10 s")
        .ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = out[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Some(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        data = &data[end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// A request written out by hand: `content-length` as claimed, the body as given.
#[derive(Clone)]
struct Raw {
    method: String,
    path: String,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    claimed: Option<usize>,
}

impl Raw {
    fn new(method: &str, path: &str, body: Vec<u8>) -> Raw {
        Raw {
            method: method.into(),
            path: path.into(),
            content_type: "application/json",
            headers: Vec::new(),
            body,
            claimed: None,
        }
    }

    /// Signed by `device` at `now`.
    fn signed(mut self, device: &Device, now: u64) -> Raw {
        self.headers = device.sign_headers(&self.method, &self.path, now, &self.body);
        self
    }

    fn content_type(mut self, ct: &'static str) -> Raw {
        self.content_type = ct;
        self
    }

    /// Whether the body is cut short of its `content-length` (by a little: a huge claim is
    /// an oversized body): the client then closes its writing half.
    fn cut(&self) -> bool {
        self.claimed
            .is_some_and(|c| c > self.body.len() && c - self.body.len() < 4096)
    }

    fn bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: as\r\nconnection: close\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            self.method,
            self.path,
            self.content_type,
            self.claimed.unwrap_or(self.body.len())
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Sends and counts.
struct Attacker {
    addr: SocketAddr,
    sent: AtomicU64,
}

impl Attacker {
    async fn send(&self, r: &Raw) -> Option<Answer> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        send_raw(self.addr, &r.bytes(), r.cut()).await
    }

    /// Sends a request that must succeed; its body.
    async fn ok(&self, r: &Raw) -> Vec<u8> {
        let a = self.send(r).await.expect("an answer");
        assert!(
            (200..300).contains(&a.status),
            "{} {}: {} {}",
            r.method,
            r.path,
            a.status,
            String::from_utf8_lossy(&a.body)
        );
        a.body
    }

    async fn healthy(&self) {
        let a = self
            .send(&Raw::new("GET", "/health", Vec::new()))
            .await
            .expect("answer");
        assert_eq!(a.status, 200, "the AS no longer answers /health");
    }
}

/// What an attack must be answered with.
#[derive(Debug, Clone)]
enum Expect {
    /// This status and typed error code.
    Error(u16, ErrorCode),
    /// This success status: harmless by design (the snapshot still must not change).
    Harmless(u16),
}
use Expect::*;

struct Case {
    route: &'static str,
    attack: &'static str,
    req: Raw,
    expect: Expect,
}

/// The routes of the router, as in the OpenAPI document.
const ROUTES: [&str; 19] = [
    "GET /health",
    "POST /v1/tokens",
    "GET /.well-known/private-token-issuer-directory",
    "GET /metrics",
    "GET /openapi.json",
    "GET /v1/root",
    "POST /v1/challenges",
    "POST /v1/register",
    "POST /v1/devices/{device}/renew",
    "PUT /v1/devices/{device}/contact-key",
    "POST /v1/devices/{device}/inbox",
    "POST /v1/devices/{device}/inbox/fetch",
    "POST /v1/devices/{device}/revoke",
    "GET /v1/users/{user}/devices",
    "POST /v1/users/{user}/revoke",
    "GET /v1/revocations",
    "GET /v1/kt/head",
    "GET /v1/kt/roots",
    "GET /v1/kt/audit",
];

/// Every route of the AS's checked-in OpenAPI document is in the attack table (plus
/// `/openapi.json` itself, which the document does not list): a new route without attacks
/// fails this test.
#[test]
fn every_route_of_the_openapi_document_is_attacked() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../openapi.json")).expect("openapi.json");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.insert("GET /openapi.json".to_string());
    let attacked: BTreeSet<String> = ROUTES.iter().map(|r| r.to_string()).collect();
    assert_eq!(documented, attacked, "routes and attack table differ");
}

/// Everything stored, table by table, as text; left out: `request_nonces` (a request whose
/// signature verified spends its nonce even when it is then refused, which is what stops
/// its replay), `rate_windows` (refused requests count against their limit), `challenges`
/// (a registration consumes its challenge first, whatever follows, and `POST
/// /v1/challenges` makes them) and `kt_lease` (the publisher renews it on its own).
async fn snapshot(server: &TestServer) -> Vec<(String, String)> {
    use sqlx::Connection;
    const TABLES: [&str; 9] = [
        "invitations",
        "users",
        "devices",
        "revocations",
        "relay",
        "kt_log",
        "kt_roots",
        "counters",
        "kt_pending",
    ];
    let mut out = Vec::new();
    match &server.db {
        support::Db::Sqlite(path) => {
            let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("sqlite");
            for t in TABLES {
                let cols: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{t}') ORDER BY cid"
                )))
                .fetch_all(&mut conn)
                .await
                .expect("columns");
                let expr = cols
                    .iter()
                    .map(|c| format!("quote({c})"))
                    .collect::<Vec<_>>()
                    .join("||','||");
                let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COALESCE(group_concat(r, '|'), '') FROM \
                     (SELECT {expr} AS r FROM {t} ORDER BY r)"
                )))
                .fetch_one(&mut conn)
                .await
                .expect("rows");
                out.push((t.to_string(), rows));
            }
        }
        support::Db::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
            for t in TABLES {
                let cols: Vec<String> = sqlx::query_scalar(
                    "SELECT column_name::text FROM information_schema.columns \
                     WHERE table_name = $1 ORDER BY ordinal_position",
                )
                .bind(t)
                .fetch_all(&mut conn)
                .await
                .expect("columns");
                let expr = cols
                    .iter()
                    .map(|c| format!("COALESCE({c}::text, 'NULL')"))
                    .collect::<Vec<_>>()
                    .join("||','||");
                let rows: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COALESCE(string_agg(r, '|' ORDER BY r), '') FROM \
                     (SELECT {expr} AS r FROM {t}) s"
                )))
                .fetch_one(&mut conn)
                .await
                .expect("rows");
                out.push((t.to_string(), rows));
            }
        }
    }
    out
}

fn check(case: &Case, a: Option<&Answer>) {
    let what = format!("{} / {}", case.route, case.attack);
    // A request cut short may be dropped without an answer (hyper closes a connection
    // whose client closed its writing half); if answered, it is a typed 400.
    if case.req.cut() && a.is_none() {
        return;
    }
    let Some(a) = a else {
        panic!("{what}: the server closed the connection without an answer");
    };
    assert!(
        a.status != 500,
        "{what}: 500 {}",
        String::from_utf8_lossy(&a.body)
    );
    match case.expect {
        Error(status, code) => {
            let body: ErrorBody = serde_json::from_slice(&a.body).unwrap_or_else(|e| {
                panic!(
                    "{what}: status {}, not a typed error body ({e}): {:?}",
                    a.status,
                    String::from_utf8_lossy(&a.body)
                )
            });
            assert_eq!(
                (a.status, body.code),
                (status, code),
                "{what}: {}",
                body.message
            );
        }
        Harmless(status) => assert_eq!(
            a.status,
            status,
            "{what}: {}",
            String::from_utf8_lossy(&a.body)
        ),
    }
}

/// The devices and requests the attacks use.
struct Fixture {
    alice: Device,
    alice2: Device,
    bob: Device,
    revoked: Device,
    /// An unused invitation for alice (a refused registration must not consume it).
    invitation: String,
    /// Accepted requests, to replay.
    replays: Vec<(&'static str, Raw)>,
}

async fn fixture(server: &TestServer, c: &Attacker) -> Fixture {
    let alice = device_for(server, "alice@example.org").await;
    let alice2 = device_for(server, "alice@example.org").await;
    let bob = device_for(server, "bob@example.org").await;
    let revoked = device_for(server, "carol@example.org").await;
    let carol2 = device_for(server, "carol@example.org").await;
    let now = server.now();
    let ck = serde_json::to_vec(&alice.contact_key(&[5; 32])).expect("json");
    c.ok(&Raw::new(
        "PUT",
        &format!("/v1/devices/{}/contact-key", alice.device_id),
        ck,
    )
    .signed(&alice, now))
        .await;
    let inbox = format!("/v1/devices/{}/inbox", bob.device_id);
    let post = |n: u8| {
        serde_json::to_vec(&api::RelayPost {
            sealed: api::Bytes(vec![n; 40]),
        })
        .expect("json")
    };
    c.ok(&Raw::new("POST", &inbox, post(1)).signed(&alice, now))
        .await;
    let fetch = Raw::new(
        "POST",
        &format!("/v1/devices/{}/inbox/fetch", bob.device_id),
        Vec::new(),
    )
    .signed(&bob, now);
    c.ok(&fetch).await;
    let relay = Raw::new("POST", &inbox, post(2)).signed(&alice, now);
    c.ok(&relay).await;
    let lookup =
        Raw::new("GET", "/v1/users/bob@example.org/devices", Vec::new()).signed(&alice, now);
    c.ok(&lookup).await;
    let feed = Raw::new("GET", "/v1/revocations?after=0", Vec::new()).signed(&bob, now);
    c.ok(&feed).await;
    // carol's other device revokes the one the attacks then sign with.
    c.ok(&Raw::new(
        "POST",
        &format!("/v1/devices/{}/revoke", revoked.device_id),
        Vec::new(),
    )
    .signed(&carol2, now))
        .await;
    let invitation = server.invite("alice@example.org").await;
    // Wait for the directory to publish what the fixture changed, so the snapshot is still.
    for _ in 0..100 {
        let s = snapshot(server).await;
        if s.iter()
            .any(|(t, rows)| t == "kt_pending" && rows.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Fixture {
        alice,
        alice2,
        bob,
        revoked,
        invitation,
        replays: vec![
            ("POST /v1/devices/{device}/inbox/fetch", fetch),
            ("POST /v1/devices/{device}/inbox", relay),
            ("GET /v1/users/{user}/devices", lookup),
            ("GET /v1/revocations", feed),
        ],
    }
}

/// A fresh challenge's id and nonce.
async fn challenge(c: &Attacker) -> api::Challenge {
    serde_json::from_slice(&c.ok(&Raw::new("POST", "/v1/challenges", Vec::new())).await)
        .expect("challenge")
}

/// A registration request for `key` over a fresh challenge, the proof signed by `prover`.
async fn registration(
    c: &Attacker,
    key: &ed25519_dalek::SigningKey,
    prover: &ed25519_dalek::SigningKey,
    authorization: Authorization,
) -> api::RegisterRequest {
    use ed25519_dalek::Signer;
    let ch = challenge(c).await;
    let public = key.verifying_key().to_bytes().to_vec();
    api::RegisterRequest {
        authorization,
        challenge_id: ch.challenge_id,
        proof: prover
            .sign(&api::register_proof_message(&ch.nonce.0, &public))
            .to_bytes()
            .to_vec()
            .into(),
        signature_key: public.into(),
    }
}

async fn cases(server: &TestServer, c: &Attacker, f: &Fixture) -> Vec<Case> {
    let now = server.now();
    let mut cases = Vec::new();
    let mut add = |route: &'static str, attack: &'static str, req: Raw, expect: Expect| {
        cases.push(Case {
            route,
            attack,
            req,
            expect,
        })
    };
    let (alice, bob, revoked) = (&f.alice, &f.bob, &f.revoked);

    // POST /v1/register (anonymous; an invitation or ID token, and proof of possession).
    let r = "POST /v1/register";
    let p = "/v1/register";
    let fresh = ed25519_dalek::SigningKey::from_bytes(&random32());
    let good = registration(c, &fresh, &fresh, invitation(&f.invitation)).await;
    let good_bytes = serde_json::to_vec(&good).expect("json");
    add(
        r,
        "bad JSON",
        Raw::new("POST", p, b"{\"authorization\":".to_vec()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "truncated JSON",
        Raw::new("POST", p, good_bytes[..good_bytes.len() / 2].to_vec()),
        Error(400, ErrorCode::BadRequest),
    );
    add(r, "wrong types", Raw::new("POST", p, b"{\"authorization\":\"invitation\",\"challenge_id\":7,\"signature_key\":[],\"proof\":{}}".to_vec()), Error(400, ErrorCode::BadRequest));
    add(
        r,
        "unknown authorization type",
        Raw::new(
            "POST",
            p,
            String::from_utf8_lossy(&good_bytes)
                .replace("\"invitation\"", "\"operator\"")
                .into_bytes(),
        ),
        Error(400, ErrorCode::BadRequest),
    );
    let mut bad = serde_json::to_value(&good).expect("json");
    bad["proof"] = serde_json::Value::String("!!".into());
    add(
        r,
        "bad base64",
        Raw::new("POST", p, bad.to_string().into_bytes()),
        Error(400, ErrorCode::BadRequest),
    );
    let mut short = good.clone();
    short.signature_key = vec![1; 31].into();
    add(
        r,
        "key of 31 bytes",
        Raw::new("POST", p, serde_json::to_vec(&short).expect("json")),
        Error(400, ErrorCode::BadRequest),
    );
    let mut weak = good.clone();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    weak.signature_key = identity.to_vec().into();
    add(
        r,
        "weak key (the identity point)",
        Raw::new("POST", p, serde_json::to_vec(&weak).expect("json")),
        Error(400, ErrorCode::BadRequest),
    );
    let mut unknown = good.clone();
    unknown.challenge_id = "00".repeat(16);
    add(
        r,
        "unknown challenge",
        Raw::new("POST", p, serde_json::to_vec(&unknown).expect("json")),
        Error(400, ErrorCode::InvalidChallenge),
    );
    let other = ed25519_dalek::SigningKey::from_bytes(&random32());
    let wrong_proof = registration(c, &fresh, &other, invitation(&f.invitation)).await;
    add(
        r,
        "proof by another key",
        Raw::new("POST", p, serde_json::to_vec(&wrong_proof).expect("json")),
        Error(400, ErrorCode::BadSignature),
    );
    let mut reused = wrong_proof.clone();
    reused.proof = good.proof.clone();
    add(
        r,
        "a used challenge",
        Raw::new("POST", p, serde_json::to_vec(&reused).expect("json")),
        Error(400, ErrorCode::InvalidChallenge),
    );
    let bad_code = registration(c, &fresh, &fresh, invitation("not-an-invitation")).await;
    add(
        r,
        "unknown invitation",
        Raw::new("POST", p, serde_json::to_vec(&bad_code).expect("json")),
        Error(403, ErrorCode::InvalidInvitation),
    );
    let token = registration(
        c,
        &fresh,
        &fresh,
        Authorization::Oidc {
            id_token: "a.b.c".into(),
        },
    )
    .await;
    add(
        r,
        "forged ID token",
        Raw::new("POST", p, serde_json::to_vec(&token).expect("json")),
        Error(401, ErrorCode::InvalidIdToken),
    );
    let taken = registration(c, &alice.key, &alice.key, invitation(&f.invitation)).await;
    add(
        r,
        "another device's key",
        Raw::new("POST", p, serde_json::to_vec(&taken).expect("json")),
        Error(409, ErrorCode::KeyInUse),
    );
    add(
        r,
        "form body (wrong content type)",
        Raw::new("POST", p, b"challenge_id=1&proof=2".to_vec())
            .content_type("application/x-www-form-urlencoded"),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "empty body",
        Raw::new("POST", p, Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "oversized",
        Raw::new(
            "POST",
            p,
            [
                b"{\"pad\":\"".to_vec(),
                vec![b'x'; 300 * 1024],
                b"\"}".to_vec(),
            ]
            .concat(),
        ),
        Error(413, ErrorCode::PayloadTooLarge),
    );
    let mut declared = Raw::new("POST", p, vec![b'{'; 300 * 1024]);
    declared.claimed = Some(1 << 30);
    add(
        r,
        "1 GiB declared, more than the limit sent",
        declared,
        Error(413, ErrorCode::PayloadTooLarge),
    );
    let mut truncated = Raw::new("POST", p, good_bytes.clone());
    truncated.claimed = Some(good_bytes.len() + 100);
    add(
        r,
        "truncated body (content-length larger than sent)",
        truncated,
        Error(400, ErrorCode::BadRequest),
    );

    // POST /v1/devices/{device}/renew (signed by the device itself).
    let r = "POST /v1/devices/{device}/renew";
    let p = format!("/v1/devices/{}/renew", alice.device_id);
    add(
        r,
        "unsigned",
        Raw::new("POST", &p, Vec::new()),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "another user's device",
        Raw::new("POST", &p, Vec::new()).signed(bob, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "the same user's other device",
        Raw::new("POST", &p, Vec::new()).signed(&f.alice2, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "a revoked device, its own path",
        Raw::new(
            "POST",
            &format!("/v1/devices/{}/renew", revoked.device_id),
            Vec::new(),
        )
        .signed(revoked, now),
        Error(403, ErrorCode::DeviceRevoked),
    );
    add(
        r,
        "stale timestamp",
        Raw::new("POST", &p, Vec::new()).signed(alice, now - 600),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "future timestamp",
        Raw::new("POST", &p, Vec::new()).signed(alice, now + 600),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "unknown device",
        Raw::new("POST", "/v1/devices/0000/renew", Vec::new()).signed(alice, now),
        Error(403, ErrorCode::Forbidden),
    );
    let mut forged = Raw::new("POST", &p, Vec::new()).signed(bob, now);
    forged.headers.retain(|(k, _)| *k != api::HEADER_DEVICE);
    forged
        .headers
        .push((api::HEADER_DEVICE, alice.device_id.clone()));
    add(
        r,
        "signed by another key under the device's id",
        forged,
        Error(401, ErrorCode::Unauthenticated),
    );
    let mut bad_sig = Raw::new("POST", &p, Vec::new()).signed(alice, now);
    bad_sig.headers.retain(|(k, _)| *k != api::HEADER_SIGNATURE);
    bad_sig.headers.push((api::HEADER_SIGNATURE, "%%%%".into()));
    add(
        r,
        "signature not base64",
        bad_sig,
        Error(401, ErrorCode::Unauthenticated),
    );
    let mut bad_ts = Raw::new("POST", &p, Vec::new()).signed(alice, now);
    bad_ts.headers.retain(|(k, _)| *k != api::HEADER_TIMESTAMP);
    bad_ts.headers.push((api::HEADER_TIMESTAMP, "-1".into()));
    add(
        r,
        "timestamp not a number",
        bad_ts,
        Error(401, ErrorCode::Unauthenticated),
    );
    let mut long_nonce = Raw::new("POST", &p, Vec::new());
    long_nonce.headers = alice.sign_headers_with_nonce("POST", &p, now, &"n".repeat(200), b"");
    add(
        r,
        "nonce of 200 characters",
        long_nonce,
        Error(401, ErrorCode::Unauthenticated),
    );

    // PUT /v1/devices/{device}/contact-key (signed by the device itself).
    let r = "PUT /v1/devices/{device}/contact-key";
    let p = format!("/v1/devices/{}/contact-key", alice.device_id);
    let ck = |key: &[u8], by: &Device| serde_json::to_vec(&by.contact_key(key)).expect("json");
    add(
        r,
        "unsigned",
        Raw::new("PUT", &p, ck(&[6; 32], alice)),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "another user's device",
        Raw::new("PUT", &p, ck(&[6; 32], bob)).signed(bob, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "contact key signed by another device",
        Raw::new("PUT", &p, ck(&[6; 32], bob)).signed(alice, now),
        Error(400, ErrorCode::BadSignature),
    );
    add(
        r,
        "contact key signed by the same user's other device",
        Raw::new("PUT", &p, ck(&[6; 32], &f.alice2)).signed(alice, now),
        Error(400, ErrorCode::BadSignature),
    );
    add(
        r,
        "empty key",
        Raw::new("PUT", &p, ck(&[], alice)).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "key of 2000 bytes",
        Raw::new("PUT", &p, ck(&[1; 2000], alice)).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "bad JSON",
        Raw::new("PUT", &p, b"{\"key\"".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "bad base64",
        Raw::new("PUT", &p, b"{\"key\":\"@\",\"signature\":\"@\"}".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "wrong types",
        Raw::new("PUT", &p, b"{\"key\":1,\"signature\":false}".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "a revoked device",
        Raw::new(
            "PUT",
            &format!("/v1/devices/{}/contact-key", revoked.device_id),
            ck(&[6; 32], revoked),
        )
        .signed(revoked, now),
        Error(403, ErrorCode::DeviceRevoked),
    );
    add(
        r,
        "body changed after signing",
        {
            let mut q = Raw::new("PUT", &p, ck(&[6; 32], alice)).signed(alice, now);
            q.body = ck(&[7; 32], alice);
            q
        },
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "oversized",
        Raw::new("PUT", &p, vec![b' '; 300 * 1024]).signed(alice, now),
        Error(413, ErrorCode::PayloadTooLarge),
    );

    // POST /v1/devices/{device}/inbox (signed by any current device).
    let r = "POST /v1/devices/{device}/inbox";
    let p = format!("/v1/devices/{}/inbox", bob.device_id);
    let post = |sealed: Vec<u8>| {
        serde_json::to_vec(&api::RelayPost {
            sealed: api::Bytes(sealed),
        })
        .expect("json")
    };
    add(
        r,
        "unsigned",
        Raw::new("POST", &p, post(vec![1; 8])),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "a revoked sender",
        Raw::new("POST", &p, post(vec![1; 8])).signed(revoked, now),
        Error(403, ErrorCode::DeviceRevoked),
    );
    add(
        r,
        "to a revoked device",
        Raw::new(
            "POST",
            &format!("/v1/devices/{}/inbox", revoked.device_id),
            post(vec![1; 8]),
        )
        .signed(alice, now),
        Error(404, ErrorCode::NotFound),
    );
    add(
        r,
        "to an unknown device",
        Raw::new("POST", "/v1/devices/ffff/inbox", post(vec![1; 8])).signed(alice, now),
        Error(404, ErrorCode::NotFound),
    );
    add(
        r,
        "empty sealed request",
        Raw::new("POST", &p, post(Vec::new())).signed(alice, now),
        Error(413, ErrorCode::PayloadTooLarge),
    );
    add(
        r,
        "sealed request over 64 KiB",
        Raw::new("POST", &p, post(vec![1; 70 * 1024])).signed(alice, now),
        Error(413, ErrorCode::PayloadTooLarge),
    );
    add(
        r,
        "bad JSON",
        Raw::new("POST", &p, b"sealed".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "bad base64",
        Raw::new("POST", &p, b"{\"sealed\":\"=\"}".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "wrong type",
        Raw::new("POST", &p, b"{\"sealed\":[1,2]}".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "signed for another inbox",
        {
            let mut q = Raw::new(
                "POST",
                &format!("/v1/devices/{}/inbox", alice.device_id),
                post(vec![1; 8]),
            )
            .signed(alice, now);
            q.path = p.clone();
            q
        },
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "oversized",
        Raw::new("POST", &p, post(vec![1; 200 * 1024])).signed(alice, now),
        Error(413, ErrorCode::PayloadTooLarge),
    );
    let mut truncated = Raw::new("POST", &p, post(vec![1; 8])).signed(alice, now);
    truncated.claimed = Some(truncated.body.len() + 10);
    add(
        r,
        "truncated body",
        truncated,
        Error(400, ErrorCode::BadRequest),
    );

    // POST /v1/devices/{device}/inbox/fetch (the device itself: fetching deletes).
    let r = "POST /v1/devices/{device}/inbox/fetch";
    let p = format!("/v1/devices/{}/inbox/fetch", bob.device_id);
    add(
        r,
        "unsigned",
        Raw::new("POST", &p, Vec::new()),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "another device's inbox",
        Raw::new("POST", &p, Vec::new()).signed(alice, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "a stale request",
        Raw::new("POST", &p, Vec::new()).signed(bob, now - 3600),
        Error(401, ErrorCode::Unauthenticated),
    );

    // POST /v1/devices/{device}/revoke (a device of the same user).
    let r = "POST /v1/devices/{device}/revoke";
    let p = format!("/v1/devices/{}/revoke", f.alice2.device_id);
    add(
        r,
        "unsigned",
        Raw::new("POST", &p, Vec::new()),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "another user's device",
        Raw::new("POST", &p, Vec::new()).signed(bob, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "a revoked device",
        Raw::new("POST", &p, Vec::new()).signed(revoked, now),
        Error(403, ErrorCode::DeviceRevoked),
    );
    add(
        r,
        "an unknown device",
        Raw::new("POST", "/v1/devices/abcdef/revoke", Vec::new()).signed(alice, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "bad JSON reason",
        Raw::new("POST", &p, b"{\"reason\":".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "wrong type of reason",
        Raw::new("POST", &p, b"{\"reason\":5}".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "oversized",
        Raw::new("POST", &p, vec![b' '; 300 * 1024]).signed(alice, now),
        Error(413, ErrorCode::PayloadTooLarge),
    );

    // GET /v1/users/{user}/devices (any current device).
    let r = "GET /v1/users/{user}/devices";
    let p = "/v1/users/alice@example.org/devices";
    add(
        r,
        "unsigned",
        Raw::new("GET", p, Vec::new()),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "a revoked device",
        Raw::new("GET", p, Vec::new()).signed(revoked, now),
        Error(403, ErrorCode::DeviceRevoked),
    );
    add(
        r,
        "unknown user",
        Raw::new("GET", "/v1/users/nobody@example.org/devices", Vec::new()).signed(bob, now),
        Error(404, ErrorCode::NotFound),
    );
    add(
        r,
        "user id of 2000 characters",
        Raw::new(
            "GET",
            &format!("/v1/users/{}@example.org/devices", "a".repeat(2000)),
            Vec::new(),
        )
        .signed(bob, now),
        Error(404, ErrorCode::NotFound),
    );
    add(
        r,
        "signed for another user",
        {
            let mut q =
                Raw::new("GET", "/v1/users/bob@example.org/devices", Vec::new()).signed(bob, now);
            q.path = p.into();
            q
        },
        Error(401, ErrorCode::Unauthenticated),
    );
    let mut unknown_device = Raw::new("GET", p, Vec::new()).signed(bob, now);
    unknown_device
        .headers
        .retain(|(k, _)| *k != api::HEADER_DEVICE);
    unknown_device
        .headers
        .push((api::HEADER_DEVICE, "00".repeat(16)));
    add(
        r,
        "unknown device id",
        unknown_device,
        Error(401, ErrorCode::Unauthenticated),
    );

    // POST /v1/users/{user}/revoke (one of the user's devices).
    let r = "POST /v1/users/{user}/revoke";
    let p = "/v1/users/alice@example.org/revoke";
    add(
        r,
        "unsigned",
        Raw::new("POST", p, Vec::new()),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "another user",
        Raw::new("POST", p, Vec::new()).signed(bob, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "a revoked device of another user",
        Raw::new("POST", p, Vec::new()).signed(revoked, now),
        Error(403, ErrorCode::DeviceRevoked),
    );
    add(
        r,
        "unknown user",
        Raw::new("POST", "/v1/users/nobody@example.org/revoke", Vec::new()).signed(bob, now),
        Error(403, ErrorCode::Forbidden),
    );
    add(
        r,
        "bad JSON reason",
        Raw::new("POST", p, b"[".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );

    // GET /v1/revocations (any current device).
    let r = "GET /v1/revocations";
    add(
        r,
        "unsigned",
        Raw::new("GET", "/v1/revocations", Vec::new()),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "a revoked device",
        Raw::new("GET", "/v1/revocations", Vec::new()).signed(revoked, now),
        Error(403, ErrorCode::DeviceRevoked),
    );
    add(
        r,
        "malformed cursor",
        Raw::new("GET", "/v1/revocations?after=yesterday", Vec::new()).signed(bob, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "negative limit",
        Raw::new("GET", "/v1/revocations?limit=-1", Vec::new()).signed(bob, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "huge cursor and limit",
        Raw::new(
            "GET",
            "/v1/revocations?after=18446744073709551615&limit=4294967295",
            Vec::new(),
        )
        .signed(bob, now),
        Harmless(200),
    );

    // The public key-transparency routes.
    let r = "GET /v1/kt/roots";
    add(
        r,
        "no range",
        Raw::new("GET", "/v1/kt/roots", Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "malformed range",
        Raw::new("GET", "/v1/kt/roots?from=a&to=b", Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "reversed range",
        Raw::new("GET", "/v1/kt/roots?from=5&to=1", Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "range too long",
        Raw::new("GET", "/v1/kt/roots?from=0&to=10000", Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "epochs beyond i64",
        Raw::new(
            "GET",
            "/v1/kt/roots?from=18446744073709551614&to=18446744073709551615",
            Vec::new(),
        ),
        Harmless(200),
    );
    let r = "GET /v1/kt/audit";
    add(
        r,
        "no range",
        Raw::new("GET", "/v1/kt/audit", Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "empty range",
        Raw::new("GET", "/v1/kt/audit?from=1&to=1", Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "beyond the head",
        Raw::new("GET", "/v1/kt/audit?from=1&to=1000000", Vec::new()),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "epochs beyond i64",
        Raw::new(
            "GET",
            "/v1/kt/audit?from=18446744073709551614&to=18446744073709551615",
            Vec::new(),
        ),
        Error(400, ErrorCode::BadRequest),
    );

    // The open routes take no input: a body or a query is ignored.
    add(
        "GET /v1/kt/head",
        "body and query",
        Raw::new("GET", "/v1/kt/head?epoch=-1", b"\xff".to_vec()),
        Harmless(200),
    );
    add(
        "GET /v1/root",
        "signed by a revoked device",
        Raw::new("GET", "/v1/root", Vec::new()).signed(revoked, now),
        Harmless(200),
    );
    add(
        "GET /health",
        "body",
        Raw::new("GET", "/health", vec![0; 1000]).content_type("application/octet-stream"),
        Harmless(200),
    );
    add(
        "GET /metrics",
        "query",
        Raw::new("GET", "/metrics?format=%ff", Vec::new()),
        Harmless(200),
    );
    add(
        "GET /openapi.json",
        "body",
        Raw::new("GET", "/openapi.json", b"{}".to_vec()),
        Harmless(200),
    );
    let r = "POST /v1/tokens";
    let batch = |requests: Vec<Vec<u8>>| {
        serde_json::to_vec(&api::TokenRequests {
            requests: requests.into_iter().map(Into::into).collect(),
        })
        .expect("json")
    };
    let mut type_1 = vec![0, 1, 0];
    type_1.extend([1; 256]);
    add(
        r,
        "unsigned",
        Raw::new("POST", "/v1/tokens", batch(vec![type_1.clone()])),
        Error(401, ErrorCode::Unauthenticated),
    );
    add(
        r,
        "not JSON",
        Raw::new("POST", "/v1/tokens", b"{\"requests\":".to_vec()).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "no request",
        Raw::new("POST", "/v1/tokens", batch(Vec::new())).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "more requests than a batch holds",
        Raw::new("POST", "/v1/tokens", batch(vec![type_1.clone(); 33])).signed(alice, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        r,
        "a VOPRF (type 1) request",
        Raw::new("POST", "/v1/tokens", batch(vec![type_1.clone()])).signed(alice, now),
        Error(422, ErrorCode::InvalidTokenRequest),
    );
    add(
        r,
        "a truncated request",
        Raw::new("POST", "/v1/tokens", batch(vec![vec![0, 2, 0]])).signed(alice, now),
        Error(422, ErrorCode::InvalidTokenRequest),
    );
    add(
        r,
        "base64 that is not",
        Raw::new("POST", "/v1/tokens", b"{\"requests\":[\"@@@\"]}".to_vec()).signed(bob, now),
        Error(400, ErrorCode::BadRequest),
    );
    add(
        "GET /.well-known/private-token-issuer-directory",
        "a body and a query (ignored)",
        Raw::new(
            "GET",
            "/.well-known/private-token-issuer-directory?x=%ff",
            vec![0; 1000],
        ),
        Harmless(200),
    );
    add(
        "POST /v1/challenges",
        "a body (ignored)",
        Raw::new("POST", "/v1/challenges", vec![0; 300 * 1024])
            .content_type("application/octet-stream"),
        Harmless(200),
    );
    cases
}

/// The whole attack table against one AS: each attack is answered with its expected status
/// and typed error code (never 500, never a dropped connection), nothing stored changes,
/// and the server still answers `/health` and honest devices afterwards.
async fn attacks_on_every_route_change_nothing(engine: Engine) {
    let server = TestServer::start(engine).await;
    let c = Attacker {
        addr: server.addr,
        sent: AtomicU64::new(0),
    };
    let f = fixture(&server, &c).await;
    let mut table = cases(&server, &c, &f).await;
    for (route, req) in &f.replays {
        table.push(Case {
            route,
            attack: "replay of an accepted request",
            req: req.clone(),
            expect: Error(401, ErrorCode::ReplayedRequest),
        });
    }
    let routes: BTreeSet<&str> = table.iter().map(|c| c.route).collect();
    assert_eq!(
        routes,
        ROUTES.iter().copied().collect(),
        "every route is attacked"
    );
    let mut before = snapshot(&server).await;
    for case in &table {
        let answer = c.send(&case.req).await;
        check(case, answer.as_ref());
        let after = snapshot(&server).await;
        for ((t, was), (_, is)) in before.iter().zip(&after) {
            assert_eq!(
                was, is,
                "{} / {}: table {t} changed",
                case.route, case.attack
            );
        }
        before = after;
    }
    c.healthy().await;
    // Honest devices are still served: the unused invitation registers, the relay entry
    // is still there for its owner, alice's devices are both current.
    let now = server.now();
    let devices: api::UserDevices = serde_json::from_slice(
        &c.ok(
            &Raw::new("GET", "/v1/users/alice@example.org/devices", Vec::new()).signed(&f.bob, now),
        )
        .await,
    )
    .expect("devices");
    assert_eq!(devices.devices.len(), 2);
    let inbox: api::RelayMessages = serde_json::from_slice(
        &c.ok(&Raw::new(
            "POST",
            &format!("/v1/devices/{}/inbox/fetch", f.bob.device_id),
            Vec::new(),
        )
        .signed(&f.bob, now))
            .await,
    )
    .expect("inbox");
    assert_eq!(inbox.messages.len(), 1);
    server
        .register(invitation(&f.invitation))
        .await
        .expect("the invitation was not consumed");
    eprintln!(
        "hostile AS ({engine:?}): {} attacks on {} routes, {} requests sent",
        table.len(),
        routes.len(),
        c.sent.load(Ordering::Relaxed) + 3
    );
    server.finish().await;
}

/// [`attacks_on_every_route_change_nothing`] on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_attacks_on_every_route_change_nothing() {
    attacks_on_every_route_change_nothing(Engine::Sqlite).await;
}

/// [`attacks_on_every_route_change_nothing`] on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_attacks_on_every_route_change_nothing() {
    attacks_on_every_route_change_nothing(Engine::Postgres).await;
}

/// Floods of look-ups, relay posts and registrations past their limits are answered 429
/// `rate_limited` with a `Retry-After` that ends the window, from many connections at
/// once, while other devices are served promptly and the refused requests store nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_are_answered_429_while_others_are_served() {
    use conclave_as::config::{Config, RateLimits};
    let config = Config {
        rate_limits: RateLimits {
            window: 60,
            registrations_per_user: 3,
            lookups_per_device: 5,
            relay_posts_per_device: 5,
            ..RateLimits::default()
        },
        ..Config::default()
    };
    let server =
        TestServer::start_with(Engine::Sqlite, conclave_as::oidc::Oidc::default(), config).await;
    // Start at the beginning of a window (the AS clock is the test's).
    server.advance(60 - server.now() % 60 + 1);
    let c = std::sync::Arc::new(Attacker {
        addr: server.addr,
        sent: AtomicU64::new(0),
    });
    let alice = device_for(&server, "alice@example.org").await;
    let bob = device_for(&server, "bob@example.org").await;
    let carol = device_for(&server, "carol@example.org").await;
    let now = server.now();
    let lookup = |d: &Device| {
        Raw::new("GET", "/v1/users/carol@example.org/devices", Vec::new()).signed(d, now)
    };
    let post = |d: &Device| {
        Raw::new(
            "POST",
            &format!("/v1/devices/{}/inbox", carol.device_id),
            serde_json::to_vec(&api::RelayPost {
                sealed: api::Bytes(vec![1; 16]),
            })
            .expect("json"),
        )
        .signed(d, now)
    };
    let mut requests = Vec::new();
    for _ in 0..200 {
        requests.push(lookup(&alice));
        requests.push(post(&alice));
    }
    let before = snapshot(&server).await;
    let mut floods = Vec::new();
    for chunk in requests.chunks(50) {
        let (c, chunk) = (c.clone(), chunk.to_vec());
        floods.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for r in chunk {
                out.push(c.send(&r).await.expect("an answer"));
            }
            out
        }));
    }
    // Meanwhile Bob is served, promptly.
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        c.ok(&lookup(&bob)).await;
        c.healthy().await;
        slowest = slowest.max(started.elapsed());
    }
    let (mut ok, mut refused) = ([0; 2], 0);
    for h in floods {
        for a in h.await.expect("flood") {
            match a.status {
                200 => ok[0] += 1,
                201 => ok[1] += 1,
                429 => {
                    refused += 1;
                    let body: ErrorBody = serde_json::from_slice(&a.body).expect("typed body");
                    assert_eq!(body.code, ErrorCode::RateLimited);
                    let retry: u64 = a
                        .header("retry-after")
                        .expect("429 without Retry-After")
                        .parse()
                        .expect("seconds");
                    assert!((1..=60).contains(&retry), "Retry-After {retry}");
                }
                s => panic!("{s}: {}", String::from_utf8_lossy(&a.body)),
            }
        }
    }
    assert_eq!(ok, [5, 5], "the limits held");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    // Registrations past the per-user limit (alice has one device; two more, then 429).
    for i in 0..6 {
        let code = server.invite("alice@example.org").await;
        let r = server.register(invitation(&code)).await;
        if i < 2 {
            r.expect("within the limit");
        } else {
            r.err()
                .expect("limited")
                .assert_error(429, ErrorCode::RateLimited);
        }
    }
    // Nothing of the refused requests is stored: the relay holds the 5 accepted posts.
    let after = snapshot(&server).await;
    for ((t, was), (_, is)) in before.iter().zip(&after) {
        if ![
            "relay",
            "devices",
            "users",
            "invitations",
            "kt_log",
            "kt_roots",
            "kt_pending",
            "counters",
        ]
        .contains(&t.as_str())
        {
            assert_eq!(was, is, "table {t} changed");
        }
    }
    let inbox: api::RelayMessages = serde_json::from_slice(
        &c.ok(&Raw::new(
            "POST",
            &format!("/v1/devices/{}/inbox/fetch", carol.device_id),
            Vec::new(),
        )
        .signed(&carol, now))
            .await,
    )
    .expect("inbox");
    assert_eq!(inbox.messages.len(), 5);
    eprintln!(
        "hostile AS floods: {refused} refused with 429; {} requests sent",
        c.sent.load(Ordering::Relaxed) + 6 * 2
    );
    server.finish().await;
}
