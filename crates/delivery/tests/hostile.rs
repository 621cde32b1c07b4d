//! Hostile clients against the DS (issue 19): every HTTP route is sent truncated, oversized
//! and malformed bodies (bad JSON, wrong types, bad base64, bad TLS-encoded MLS bytes),
//! wrong content types, missing, wrong, stale and replayed signatures, signatures by another
//! mailbox's or group's key, other mailboxes' and groups' ids, and commits and messages for
//! future and past epochs. Every attack must be answered with the expected 4xx status and a
//! typed JSON [`ErrorBody`], change nothing that is stored (a snapshot of every table but
//! `nonces` is compared before and after each attack), and leave the server answering
//! `/health`. Floods must be answered 429 with `Retry-After` while another client is still
//! served, and a WebSocket subscriber that never reads must be dropped with the DS's memory
//! staying flat.
//!
//! The routes are those of `crates/delivery/src/http/mod.rs::router` (the same as the
//! paths of the checked-in `crates/delivery/openapi.json`, which
//! [`every_route_of_the_openapi_document_is_attacked`] checks).

#[macro_use]
mod support;

use conclave_api::delivery::*;
use ed25519_dalek::SigningKey;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::mls::Mls;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn b64(b: &[u8]) -> String {
    Bytes(b.to_vec()).to_base64()
}

/// A client that counts what it sends.
struct Attacker {
    client: Client,
    sent: AtomicU64,
}

impl Attacker {
    fn new(client: &Client) -> Self {
        Attacker {
            client: client.clone(),
            sent: AtomicU64::new(0),
        }
    }

    fn count(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    async fn send(&self, p: &Prepared) -> Resp {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.client.send(p).await
    }

    /// Writes `bytes` as they are on a fresh connection (then closes the writing half if
    /// asked) and reads the answer: its status and body, or `None` if the server closed
    /// without one.
    async fn raw(&self, bytes: &[u8], half_close: bool) -> Option<Resp> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let addr = self.client.base.trim_start_matches("http://");
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
        let status = head.split(' ').nth(1)?.parse().ok()?;
        Some(Resp {
            status,
            body: out[split + 4..].to_vec(),
        })
    }

    /// `GET /health` answers 200.
    async fn healthy(&self) {
        let r = self
            .send(&self.client.prepare(
                "GET",
                "/health",
                Vec::new(),
                "application/json",
                Sign::No,
                None,
            ))
            .await;
        assert_eq!(r.status, 200, "the DS no longer answers /health");
    }
}

/// The request of an attack.
enum Req {
    /// An HTTP request (signed or not) as the support client sends it.
    Http(Prepared),
    /// Bytes written as they are on a connection of their own.
    Raw(Vec<u8>),
    /// Bytes of a request cut short (its body shorter than its `content-length`), after
    /// which the client closes its writing half.
    Cut(Vec<u8>),
}

/// What an attack must be answered with.
#[derive(Debug, Clone)]
enum Expect {
    /// One of these statuses with its typed error code.
    Error(Vec<(u16, ErrorCode)>),
    /// This success status: the attack is harmless by design (for example acknowledging
    /// another mailbox's entry ids deletes nothing); the snapshot still must not change.
    Harmless(u16),
    /// A request cut short: a typed 400, or the connection closed without an answer (hyper
    /// drops a connection whose client closed its writing half).
    Cut,
}

fn err(status: u16, code: ErrorCode) -> Expect {
    Expect::Error(vec![(status, code)])
}

/// One row of the attack table.
struct Case {
    route: &'static str,
    attack: String,
    req: Req,
    expect: Expect,
}

/// Everything stored, table by table, as text: every table of the DS but `nonces` (a
/// request whose signature verified spends its nonce even when it is then refused, which
/// is what stops its replay) and the claim budget `pools.claim_tat` (a wrong claim secret
/// spends the pool's budget by design, `crates/delivery/src/http/pool.rs::claim`).
async fn snapshot(db: &Db) -> Vec<(String, String)> {
    use sqlx::Connection;
    const TABLES: [&str; 8] = [
        "mailboxes",
        "welcomes",
        "mailbox_entries",
        "pools",
        "sealed_key_packages",
        "groups",
        "epoch_keys",
        "log_entries",
    ];
    let skip = |t: &str, c: &str| t == "pools" && c == "claim_tat";
    let mut out = Vec::new();
    match db.engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&format!(
                "sqlite://{}",
                db.sqlite_path().display()
            ))
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
                    .filter(|c| !skip(t, c))
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
        Engine::Postgres => {
            let url = db.postgres_url().expect("url");
            let mut conn = sqlx::PgConnection::connect(&url).await.expect("postgres");
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
                    .filter(|c| !skip(t, c))
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

/// Checks an answer against what was expected.
fn check(case: &Case, r: Option<&Resp>) {
    let what = format!("{} / {}", case.route, case.attack);
    if matches!(case.expect, Expect::Cut) && r.is_none() {
        return;
    }
    let Some(r) = r else {
        panic!("{what}: the server closed the connection without an answer");
    };
    assert!(
        r.status != 500,
        "{what}: 500 {}",
        String::from_utf8_lossy(&r.body)
    );
    match &case.expect {
        Expect::Error(allowed) => {
            let body: ErrorBody = serde_json::from_slice(&r.body).unwrap_or_else(|e| {
                panic!(
                    "{what}: status {}, not a typed error body ({e}): {:?}",
                    r.status,
                    String::from_utf8_lossy(&r.body)
                )
            });
            assert!(
                allowed.contains(&(r.status, body.code)),
                "{what}: {} {:?} ({}), expected one of {allowed:?}",
                r.status,
                body.code,
                body.message
            );
            if body.code == ErrorCode::WrongEpoch {
                assert!(body.current_epoch.is_some(), "{what}: no current epoch");
            }
        }
        Expect::Harmless(status) => assert_eq!(
            r.status,
            *status,
            "{what}: {}",
            String::from_utf8_lossy(&r.body)
        ),
        Expect::Cut => {
            let body: ErrorBody = serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("{what}: {} not typed ({e})", r.status));
            assert_eq!(
                (r.status, body.code),
                (400, ErrorCode::BadRequest),
                "{what}"
            );
        }
    }
}

/// Ed25519 public key bytes that are not a point of the curve.
fn not_a_point() -> Vec<u8> {
    loop {
        let b = random::<32>();
        if ed25519_dalek::VerifyingKey::from_bytes(&b).is_err() {
            return b.to_vec();
        }
    }
}

/// What the attacks are made against: two mailboxes with blobs and pools, a real MLS group
/// at epoch 1 (with a sealed GroupInfo and an external commit key) and a second group, and
/// requests that were accepted once, kept to be replayed.
struct Fixture {
    a: String,
    ka: SigningKey,
    b: String,
    kb: SigningKey,
    pool_a: String,
    pool_b: String,
    secret: Vec<u8>,
    g1: Vec<u8>,
    k0: SigningKey,
    k1: SigningKey,
    external: SigningKey,
    g2: Vec<u8>,
    kg2: SigningKey,
    /// An application message of epoch 0 that was not posted.
    old_message: Vec<u8>,
    /// The commit that ended epoch 0 (accepted).
    old_commit: CommitRequest,
    /// Application messages of epoch 1, not posted.
    messages: Vec<Vec<u8>>,
    /// A commit of epoch 1 that adds a member, with its Welcome, not submitted.
    commit: Vec<u8>,
    welcome: Vec<u8>,
    next_key: SigningKey,
    /// An external commit in the clear (a PublicMessage).
    public_message: Vec<u8>,
    /// A message of the second group.
    other_group_message: Vec<u8>,
    /// Accepted requests, to replay.
    replays: Vec<(&'static str, Prepared, Expect)>,
}

async fn fixture(c: &Attacker) -> Fixture {
    let cl = &c.client;
    let (a, ka) = cl.mailbox().await;
    let (b, kb) = cl.mailbox().await;
    let secret = random::<32>().to_vec();
    let pool_a = cl.create_pool(&a, &ka, &secret).await;
    let pool_b = cl.create_pool(&b, &kb, &secret).await;
    let expires = conclave_ds::auth::now() + 3600;
    for (m, k, p) in [(&a, &ka, &pool_a), (&b, &kb, &pool_b)] {
        let r = cl
            .upload_key_packages(
                m,
                k,
                p,
                vec![(vec![1; 40], false), (vec![2; 40], true)],
                expires,
            )
            .await;
        assert_eq!(r.status, 204);
    }
    // Entry ids are numbers within a mailbox: A holds 1, B holds 1 to 3.
    assert_eq!(cl.post_blob(&a, b"sealed blob").await.status, 201);
    for _ in 0..3 {
        assert_eq!(cl.post_blob(&b, b"sealed blob").await.status, 201);
    }
    let mut replays = Vec::new();
    let fetch = cl.prepare(
        "GET",
        &format!("/v1/mailboxes/{a}/entries"),
        Vec::new(),
        "application/json",
        Sign::Mailbox(&ka),
        None,
    );
    assert_eq!(c.send(&fetch).await.status, 200);
    replays.push((
        "GET /v1/mailboxes/{mailbox}/entries",
        fetch,
        err(401, ErrorCode::Replay),
    ));

    let mls = Mls::new();
    let g1 = b"hostile group one".to_vec();
    let mut alice = mls.create_group("alice", &g1);
    let k0 = mls.auth_key(&alice);
    assert_eq!(cl.create_group(&g1, &k0).await.status, 201);
    let first = mls.encrypt(&mut alice, b"epoch 0");
    let old_message = mls.encrypt(&mut alice, b"epoch 0, never posted");
    let append = cl.prepare(
        "POST",
        &format!("/v1/groups/{}/messages", b64(&g1)),
        first,
        MLS_MESSAGE_MEDIA_TYPE,
        Sign::Group(&k0, 0),
        None,
    );
    assert_eq!(c.send(&append).await.status, 201);
    replays.push((
        "POST /v1/groups/{group}/messages",
        append,
        err(401, ErrorCode::Replay),
    ));
    let external = new_key();
    let p = mls.commit_update(&mut alice);
    let mut old_commit = commit_request(&p, &[]);
    old_commit.group_info = Some(SealedGroupInfo {
        sealed: Bytes(vec![7; 64]),
        external_commit_key: Bytes(external.verifying_key().to_bytes().to_vec()),
    });
    let commit0 = cl.prepare(
        "POST",
        &format!("/v1/groups/{}/commits", b64(&g1)),
        serde_json::to_vec(&old_commit).expect("json"),
        "application/json",
        Sign::Group(&k0, 0),
        None,
    );
    assert_eq!(c.send(&commit0).await.status, 201);
    mls.accepted(&mut alice);
    replays.push((
        "POST /v1/groups/{group}/commits",
        commit0,
        // It may lose on its epoch before its nonce is looked at.
        Expect::Error(vec![(401, ErrorCode::Replay), (409, ErrorCode::WrongEpoch)]),
    ));
    let k1 = mls.auth_key(&alice);
    let log = cl.prepare(
        "GET",
        &format!("/v1/groups/{}/log?from=1", b64(&g1)),
        Vec::new(),
        "application/json",
        Sign::Group(&k1, 1),
        None,
    );
    assert_eq!(c.send(&log).await.status, 200);
    replays.push((
        "GET /v1/groups/{group}/log",
        log,
        err(401, ErrorCode::Replay),
    ));
    let pool_status = cl.prepare(
        "GET",
        &format!("/v1/mailboxes/{a}/pools/{pool_a}"),
        Vec::new(),
        "application/json",
        Sign::Mailbox(&ka),
        None,
    );
    assert_eq!(c.send(&pool_status).await.status, 200);
    replays.push((
        "GET /v1/mailboxes/{mailbox}/pools/{pool}",
        pool_status,
        err(401, ErrorCode::Replay),
    ));

    let messages = (0..4)
        .map(|i| mls.encrypt(&mut alice, format!("epoch 1 #{i}").as_bytes()))
        .collect();
    let invite = mls.external_invite(&alice);
    let (_eve, eve_commit) = mls.join_external("eve", &invite);
    let joiner = mls.joiner("bob");
    let add = mls.commit_add(&mut alice, &[&joiner]);
    mls.refused(&mut alice);

    let g2 = b"hostile group two".to_vec();
    let mut other = mls.create_group("carol", &g2);
    let kg2 = mls.auth_key(&other);
    assert_eq!(cl.create_group(&g2, &kg2).await.status, 201);
    let other_group_message = mls.encrypt(&mut other, b"group two");

    Fixture {
        a,
        ka,
        b,
        kb,
        pool_a,
        pool_b,
        secret,
        g1,
        k0,
        k1,
        external,
        g2,
        kg2,
        old_message,
        old_commit,
        messages,
        commit: add.commit,
        welcome: add.welcome.expect("a Welcome"),
        next_key: add.next_key,
        public_message: eve_commit.commit,
        other_group_message,
        replays,
    }
}

/// Limits small enough that oversized bodies are cheap, and no grace for the previous
/// epoch, so a message of a past epoch is refused at once.
fn limits(c: &mut conclave_ds::config::Config) {
    c.max_control_bytes = 4 * 1024;
    c.max_message_bytes = 8 * 1024;
    c.max_blob_bytes = 1024;
    c.max_upload_bytes = 16 * 1024;
    c.max_body_bytes = 64 * 1024;
    c.previous_epoch_grace_secs = 0;
}

/// A request with its headers and body written out by hand, `content-length` as claimed.
fn handmade(
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
    claimed: usize,
) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nhost: ds\r\nconnection: close\r\ncontent-length: {claimed}\r\n"
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Every attack of the table (see the module documentation), built against the fixture.
fn cases(cl: &Client, f: &Fixture) -> Vec<Case> {
    use ErrorCode::*;
    let mut cases = Vec::new();
    let json = "application/json";
    let mut add = |route: &'static str, attack: &str, req: Req, expect: Expect| {
        cases.push(Case {
            route,
            attack: attack.to_string(),
            req,
            expect,
        })
    };
    let http = |method: &str, path: &str, body: Vec<u8>, ct: &'static str, sign: Sign<'_>| {
        Req::Http(cl.prepare(method, path, body, ct, sign, None))
    };
    let stale = |method: &str, path: &str, body: Vec<u8>, sign: Sign<'_>| {
        Req::Http(cl.prepare(
            method,
            path,
            body,
            "application/json",
            sign,
            Some(conclave_ds::auth::now() - 3600),
        ))
    };
    let bad_key = Bytes(vec![1; 31]).to_base64();
    let key_a = b64(&f.ka.verifying_key().to_bytes());
    let (a, b, pa, pb) = (&f.a, &f.b, &f.pool_a, &f.pool_b);
    let g1 = b64(&f.g1);
    let g2 = b64(&f.g2);
    let unknown = b64(&random::<16>());
    let expires = conclave_ds::auth::now() + 3600;

    // POST /v1/mailboxes (anonymous).
    let r = "POST /v1/mailboxes";
    let p = "/v1/mailboxes";
    add(
        r,
        "bad JSON",
        http("POST", p, b"{\"public_key\":".to_vec(), json, Sign::No),
        err(400, BadRequest),
    );
    let full = format!("{{\"public_key\":\"{key_a}\"}}");
    add(
        r,
        "truncated JSON",
        http(
            "POST",
            p,
            full.as_bytes()[..full.len() / 2].to_vec(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "wrong type",
        http(
            "POST",
            p,
            b"{\"public_key\":[1,2,3]}".to_vec(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "bad base64",
        http(
            "POST",
            p,
            b"{\"public_key\":\"!!not base64!!\"}".to_vec(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "31-byte key",
        http(
            "POST",
            p,
            format!("{{\"public_key\":\"{bad_key}\"}}").into_bytes(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "key not on the curve",
        http(
            "POST",
            p,
            format!("{{\"public_key\":\"{}\"}}", b64(&not_a_point())).into_bytes(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "empty body",
        http("POST", p, Vec::new(), json, Sign::No),
        err(400, BadRequest),
    );
    add(
        r,
        "form body (wrong content type)",
        http(
            "POST",
            p,
            format!("public_key={key_a}").into_bytes(),
            "application/x-www-form-urlencoded",
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "MLS bytes (wrong content type)",
        http(
            "POST",
            p,
            f.messages[0].clone(),
            MLS_MESSAGE_MEDIA_TYPE,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "oversized",
        http(
            "POST",
            p,
            format!(
                "{{\"public_key\":\"{key_a}\",\"pad\":\"{}\"}}",
                "x".repeat(5000)
            )
            .into_bytes(),
            json,
            Sign::No,
        ),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "1 GiB declared, more than the limit sent",
        Req::Raw(handmade(
            "POST",
            p,
            &[("content-type", json.into())],
            &[b'{'; 8 * 1024],
            1 << 30,
        )),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "truncated body (content-length larger than sent)",
        Req::Cut(handmade(
            "POST",
            p,
            &[("content-type", json.into())],
            full.as_bytes(),
            full.len() + 20,
        )),
        Expect::Cut,
    );

    // GET /v1/mailboxes/{mailbox}/entries (signed with the mailbox key).
    let r = "GET /v1/mailboxes/{mailbox}/entries";
    let p = format!("/v1/mailboxes/{a}/entries");
    add(
        r,
        "unsigned",
        http("GET", &p, Vec::new(), json, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another mailbox's key",
        http("GET", &p, Vec::new(), json, Sign::Mailbox(&f.kb)),
        err(401, BadSignature),
    );
    add(
        r,
        "signed by a group key",
        http("GET", &p, Vec::new(), json, Sign::Group(&f.k1, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "stale timestamp",
        stale("GET", &p, Vec::new(), Sign::Mailbox(&f.ka)),
        err(401, StaleTimestamp),
    );
    add(
        r,
        "signature for another path",
        {
            let mut q = cl.prepare(
                "GET",
                &format!("/v1/mailboxes/{b}/entries"),
                Vec::new(),
                json,
                Sign::Mailbox(&f.ka),
                None,
            );
            q.path = p.clone();
            Req::Http(q)
        },
        err(401, BadSignature),
    );
    add(
        r,
        "signature header not base64",
        {
            let mut q = cl.prepare("GET", &p, Vec::new(), json, Sign::Mailbox(&f.ka), None);
            q.headers.retain(|(k, _)| *k != headers::SIGNATURE);
            q.headers.push((headers::SIGNATURE, "%%%".into()));
            Req::Http(q)
        },
        err(401, MissingSignature),
    );
    add(
        r,
        "nonce of 4 bytes",
        {
            let mut q = cl.prepare("GET", &p, Vec::new(), json, Sign::Mailbox(&f.ka), None);
            q.headers.retain(|(k, _)| *k != headers::NONCE);
            q.headers.push((headers::NONCE, b64(&[1, 2, 3, 4])));
            Req::Http(q)
        },
        err(401, MissingSignature),
    );
    add(
        r,
        "timestamp not a number",
        {
            let mut q = cl.prepare("GET", &p, Vec::new(), json, Sign::Mailbox(&f.ka), None);
            q.headers.retain(|(k, _)| *k != headers::TIMESTAMP);
            q.headers.push((headers::TIMESTAMP, "soon".into()));
            Req::Http(q)
        },
        err(401, MissingSignature),
    );
    add(
        r,
        "other mailbox's id, own key",
        http(
            "GET",
            &format!("/v1/mailboxes/{b}/entries"),
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "unknown mailbox",
        http(
            "GET",
            &format!("/v1/mailboxes/{unknown}/entries"),
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(404, MailboxNotFound),
    );
    add(
        r,
        "id not base64",
        http(
            "GET",
            "/v1/mailboxes/!!!/entries",
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(404, MailboxNotFound),
    );
    add(
        r,
        "malformed query",
        http(
            "GET",
            &format!("{p}?after=yesterday"),
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );

    // POST /v1/mailboxes/{mailbox}/entries (anyone may post a blob).
    let r = "POST /v1/mailboxes/{mailbox}/entries";
    let p = format!("/v1/mailboxes/{a}/entries");
    add(
        r,
        "empty blob",
        http("POST", &p, Vec::new(), "application/octet-stream", Sign::No),
        err(400, BadRequest),
    );
    add(
        r,
        "oversized blob",
        http(
            "POST",
            &p,
            vec![0; 2048],
            "application/octet-stream",
            Sign::No,
        ),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "1 GiB declared, more than the limit sent",
        Req::Raw(handmade("POST", &p, &[], &[b'x'; 2048], 1 << 30)),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "truncated body",
        Req::Cut(handmade("POST", &p, &[], b"half", 100)),
        Expect::Cut,
    );
    add(
        r,
        "unknown mailbox",
        http(
            "POST",
            &format!("/v1/mailboxes/{unknown}/entries"),
            b"blob".to_vec(),
            "application/octet-stream",
            Sign::No,
        ),
        err(404, MailboxNotFound),
    );
    add(
        r,
        "id not base64",
        http(
            "POST",
            "/v1/mailboxes/@@/entries",
            b"blob".to_vec(),
            "application/octet-stream",
            Sign::No,
        ),
        err(404, MailboxNotFound),
    );
    add(
        r,
        "id of 300 bytes",
        http(
            "POST",
            &format!("/v1/mailboxes/{}/entries", b64(&[9; 300])),
            b"blob".to_vec(),
            "application/octet-stream",
            Sign::No,
        ),
        err(404, MailboxNotFound),
    );

    // POST /v1/mailboxes/{mailbox}/ack (signed).
    let r = "POST /v1/mailboxes/{mailbox}/ack";
    let p = format!("/v1/mailboxes/{a}/ack");
    add(
        r,
        "unsigned",
        http("POST", &p, b"{\"ids\":[1]}".to_vec(), json, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another mailbox's key",
        http(
            "POST",
            &p,
            b"{\"ids\":[1]}".to_vec(),
            json,
            Sign::Mailbox(&f.kb),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "stale timestamp",
        stale("POST", &p, b"{\"ids\":[1]}".to_vec(), Sign::Mailbox(&f.ka)),
        err(401, StaleTimestamp),
    );
    add(
        r,
        "body changed after signing",
        {
            let mut q = cl.prepare(
                "POST",
                &p,
                b"{\"ids\":[2]}".to_vec(),
                json,
                Sign::Mailbox(&f.ka),
                None,
            );
            q.body = b"{\"ids\":[1]}".to_vec();
            Req::Http(q)
        },
        err(401, BadSignature),
    );
    add(
        r,
        "bad JSON",
        http(
            "POST",
            &p,
            b"{\"ids\":[1,".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "wrong type",
        http(
            "POST",
            &p,
            b"{\"ids\":\"all\"}".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "negative and huge ids",
        http(
            "POST",
            &p,
            b"{\"ids\":[-1, 9223372036854775807]}".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        Expect::Harmless(200),
    );
    add(
        r,
        "id beyond i64",
        http(
            "POST",
            &p,
            b"{\"ids\":[18446744073709551615]}".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "another mailbox's entry ids",
        http(
            "POST",
            &p,
            b"{\"ids\":[2,3]}".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        Expect::Harmless(200),
    );
    add(
        r,
        "1001 ids",
        http(
            "POST",
            &p,
            serde_json::to_vec(&AckRequest {
                ids: (2..1003).collect(),
            })
            .expect("json"),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "other mailbox's id, own key",
        http(
            "POST",
            &format!("/v1/mailboxes/{b}/ack"),
            b"{\"ids\":[1]}".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "oversized",
        http(
            "POST",
            &p,
            format!("{{\"ids\":[{}1]}}", "1,".repeat(3000)).into_bytes(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(413, PayloadTooLarge),
    );

    // POST /v1/mailboxes/{mailbox}/pools (signed).
    let r = "POST /v1/mailboxes/{mailbox}/pools";
    let p = format!("/v1/mailboxes/{a}/pools");
    let good = serde_json::to_vec(&CreatePoolRequest {
        claim_secret: Bytes(f.secret.clone()),
    })
    .expect("json");
    add(
        r,
        "unsigned",
        http("POST", &p, good.clone(), json, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another mailbox's key",
        http("POST", &p, good.clone(), json, Sign::Mailbox(&f.kb)),
        err(401, BadSignature),
    );
    add(
        r,
        "signed by a group key",
        http("POST", &p, good.clone(), json, Sign::Group(&f.k1, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "bad JSON",
        http(
            "POST",
            &p,
            b"claim_secret".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "bad base64",
        http(
            "POST",
            &p,
            b"{\"claim_secret\":\"***\"}".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "secret of 4 bytes",
        http(
            "POST",
            &p,
            format!("{{\"claim_secret\":\"{}\"}}", b64(&[1; 4])).into_bytes(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "secret of 65 bytes",
        http(
            "POST",
            &p,
            format!("{{\"claim_secret\":\"{}\"}}", b64(&[1; 65])).into_bytes(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "unknown mailbox",
        http(
            "POST",
            &format!("/v1/mailboxes/{unknown}/pools"),
            good.clone(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(404, MailboxNotFound),
    );

    // GET /v1/mailboxes/{mailbox}/pools/{pool} (signed).
    let r = "GET /v1/mailboxes/{mailbox}/pools/{pool}";
    add(
        r,
        "unsigned",
        http(
            "GET",
            &format!("/v1/mailboxes/{a}/pools/{pa}"),
            Vec::new(),
            json,
            Sign::No,
        ),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another mailbox's key",
        http(
            "GET",
            &format!("/v1/mailboxes/{a}/pools/{pa}"),
            Vec::new(),
            json,
            Sign::Mailbox(&f.kb),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "another mailbox's pool",
        http(
            "GET",
            &format!("/v1/mailboxes/{a}/pools/{pb}"),
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(404, PoolNotFound),
    );
    add(
        r,
        "unknown pool",
        http(
            "GET",
            &format!("/v1/mailboxes/{a}/pools/{unknown}"),
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(404, PoolNotFound),
    );
    add(
        r,
        "pool id not base64",
        http(
            "GET",
            &format!("/v1/mailboxes/{a}/pools/~~"),
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(404, PoolNotFound),
    );

    // POST /v1/mailboxes/{mailbox}/pools/{pool}/key-packages (signed).
    let r = "POST /v1/mailboxes/{mailbox}/pools/{pool}/key-packages";
    let p = format!("/v1/mailboxes/{a}/pools/{pa}/key-packages");
    let upload = |kps: Vec<(Vec<u8>, bool)>, expires_at: u64| {
        serde_json::to_vec(&UploadKeyPackagesRequest {
            key_packages: kps
                .into_iter()
                .map(|(s, l)| SealedKeyPackage {
                    sealed: Bytes(s),
                    last_resort: l,
                })
                .collect(),
            expires_at,
        })
        .expect("json")
    };
    let good = upload(vec![(vec![3; 40], false)], expires);
    add(
        r,
        "unsigned",
        http("POST", &p, good.clone(), json, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another mailbox's key",
        http("POST", &p, good.clone(), json, Sign::Mailbox(&f.kb)),
        err(401, BadSignature),
    );
    add(
        r,
        "into another mailbox's pool",
        http(
            "POST",
            &format!("/v1/mailboxes/{a}/pools/{pb}/key-packages"),
            good.clone(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(404, PoolNotFound),
    );
    add(
        r,
        "into another mailbox's pool, its path",
        http(
            "POST",
            &format!("/v1/mailboxes/{b}/pools/{pb}/key-packages"),
            good.clone(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "bad JSON",
        http(
            "POST",
            &p,
            b"{\"key_packages\":[{".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "wrong types",
        http(
            "POST",
            &p,
            b"{\"key_packages\":{},\"expires_at\":\"later\"}".to_vec(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(r, "negative expiry", http("POST", &p, format!("{{\"key_packages\":[{{\"sealed\":\"{}\",\"last_resort\":false}}],\"expires_at\":-5}}", b64(&[1; 8])).into_bytes(), json, Sign::Mailbox(&f.ka)), err(400, BadRequest));
    add(r, "bad base64", http("POST", &p, format!("{{\"key_packages\":[{{\"sealed\":\"#\",\"last_resort\":false}}],\"expires_at\":{expires}}}").into_bytes(), json, Sign::Mailbox(&f.ka)), err(400, BadRequest));
    add(
        r,
        "no KeyPackage",
        http(
            "POST",
            &p,
            upload(vec![], expires),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "two last-resort KeyPackages",
        http(
            "POST",
            &p,
            upload(vec![(vec![1; 8], true), (vec![2; 8], true)], expires),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "expiry in the past",
        http(
            "POST",
            &p,
            upload(vec![(vec![1; 8], false)], 1000),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "expiry beyond i64",
        http(
            "POST",
            &p,
            upload(vec![(vec![1; 8], false)], u64::MAX),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "empty sealed KeyPackage",
        http(
            "POST",
            &p,
            upload(vec![(Vec::new(), false)], expires),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "sealed KeyPackage over the blob limit",
        http(
            "POST",
            &p,
            upload(vec![(vec![1; 2000], false)], expires),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "oversized batch",
        http(
            "POST",
            &p,
            upload((0..30).map(|_| (vec![1; 800], false)).collect(), expires),
            json,
            Sign::Mailbox(&f.ka),
        ),
        err(413, PayloadTooLarge),
    );

    // POST /v1/pools/{pool}/claim (the claim secret).
    let r = "POST /v1/pools/{pool}/claim";
    let p = format!("/v1/pools/{pa}/claim");
    add(
        r,
        "wrong secret",
        http(
            "POST",
            &p,
            serde_json::to_vec(&ClaimRequest {
                claim_secret: Bytes(vec![0; 32]),
            })
            .expect("json"),
            json,
            Sign::No,
        ),
        err(401, BadClaimSecret),
    );
    add(
        r,
        "empty secret",
        http(
            "POST",
            &p,
            b"{\"claim_secret\":\"\"}".to_vec(),
            json,
            Sign::No,
        ),
        err(401, BadClaimSecret),
    );
    add(
        r,
        "bad JSON",
        http("POST", &p, b"{".to_vec(), json, Sign::No),
        err(400, BadRequest),
    );
    add(
        r,
        "bad base64",
        http(
            "POST",
            &p,
            b"{\"claim_secret\":\"?\"}".to_vec(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "wrong type",
        http(
            "POST",
            &p,
            b"{\"claim_secret\":null}".to_vec(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "unknown pool",
        http(
            "POST",
            &format!("/v1/pools/{unknown}/claim"),
            serde_json::to_vec(&ClaimRequest {
                claim_secret: Bytes(f.secret.clone()),
            })
            .expect("json"),
            json,
            Sign::No,
        ),
        err(404, PoolNotFound),
    );
    add(
        r,
        "oversized",
        http(
            "POST",
            &p,
            format!("{{\"claim_secret\":\"{}\"}}", b64(&[1; 6000])).into_bytes(),
            json,
            Sign::No,
        ),
        err(413, PayloadTooLarge),
    );

    // POST /v1/groups (anonymous).
    let r = "POST /v1/groups";
    let create = |gid: &[u8], key: Vec<u8>| {
        serde_json::to_vec(&CreateGroupRequest {
            group_id: Bytes(gid.to_vec()),
            auth_key: Bytes(key),
        })
        .expect("json")
    };
    let fresh_key = new_key().verifying_key().to_bytes().to_vec();
    add(
        r,
        "existing group id",
        http(
            "POST",
            "/v1/groups",
            create(&f.g1, fresh_key.clone()),
            json,
            Sign::No,
        ),
        err(409, GroupExists),
    );
    add(
        r,
        "empty group id",
        http(
            "POST",
            "/v1/groups",
            create(b"", fresh_key.clone()),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "group id of 257 bytes",
        http(
            "POST",
            "/v1/groups",
            create(&[5; 257], fresh_key.clone()),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "auth key of 31 bytes",
        http(
            "POST",
            "/v1/groups",
            create(b"new group", vec![1; 31]),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "auth key not on the curve",
        http(
            "POST",
            "/v1/groups",
            create(b"new group", not_a_point()),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "bad JSON",
        http("POST", "/v1/groups", b"[]".to_vec(), json, Sign::No),
        err(400, BadRequest),
    );
    add(
        r,
        "bad base64",
        http(
            "POST",
            "/v1/groups",
            format!("{{\"group_id\":\"a b\",\"auth_key\":\"{key_a}\"}}").into_bytes(),
            json,
            Sign::No,
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "MLS bytes (wrong content type)",
        http(
            "POST",
            "/v1/groups",
            f.messages[0].clone(),
            MLS_MESSAGE_MEDIA_TYPE,
            Sign::No,
        ),
        err(400, BadRequest),
    );

    // POST /v1/groups/{group}/messages (signed with the epoch's group auth key).
    let r = "POST /v1/groups/{group}/messages";
    let p = format!("/v1/groups/{g1}/messages");
    let m = f.messages[0].clone();
    let mls_ct = MLS_MESSAGE_MEDIA_TYPE;
    add(
        r,
        "unsigned",
        http("POST", &p, m.clone(), mls_ct, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another group's key",
        http("POST", &p, m.clone(), mls_ct, Sign::Group(&f.kg2, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "signed by a mailbox key",
        http("POST", &p, m.clone(), mls_ct, Sign::Group(&f.ka, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "signed by the external commit key",
        http("POST", &p, m.clone(), mls_ct, Sign::Group(&f.external, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "previous epoch's key, current epoch",
        http("POST", &p, m.clone(), mls_ct, Sign::Group(&f.k0, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "stale timestamp",
        stale("POST", &p, m.clone(), Sign::Group(&f.k1, 1)),
        err(401, StaleTimestamp),
    );
    add(
        r,
        "epoch header not a number",
        {
            let mut q = cl.prepare("POST", &p, m.clone(), mls_ct, Sign::Group(&f.k1, 1), None);
            q.headers.retain(|(k, _)| *k != headers::EPOCH);
            q.headers.push((headers::EPOCH, "one".into()));
            Req::Http(q)
        },
        err(401, MissingSignature),
    );
    add(
        r,
        "epoch header out of range",
        {
            let mut q = cl.prepare("POST", &p, m.clone(), mls_ct, Sign::Group(&f.k1, 1), None);
            q.headers.retain(|(k, _)| *k != headers::EPOCH);
            q.headers.push((headers::EPOCH, u64::MAX.to_string()));
            Req::Http(q)
        },
        err(400, BadRequest),
    );
    add(
        r,
        "future epoch",
        http("POST", &p, m.clone(), mls_ct, Sign::Group(&f.k1, 9)),
        err(409, WrongEpoch),
    );
    add(
        r,
        "past epoch (after its grace)",
        http(
            "POST",
            &p,
            f.old_message.clone(),
            mls_ct,
            Sign::Group(&f.k0, 0),
        ),
        err(409, WrongEpoch),
    );
    add(
        r,
        "message of epoch 0 under epoch 1",
        http(
            "POST",
            &p,
            f.old_message.clone(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "another group's message",
        http(
            "POST",
            &p,
            f.other_group_message.clone(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "another group's id, own key",
        http(
            "POST",
            &format!("/v1/groups/{g2}/messages"),
            m.clone(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(409, WrongEpoch),
    );
    add(
        r,
        "another group's id, own key, its epoch",
        http(
            "POST",
            &format!("/v1/groups/{g2}/messages"),
            f.other_group_message.clone(),
            mls_ct,
            Sign::Group(&f.k1, 0),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "unknown group",
        http(
            "POST",
            &format!("/v1/groups/{unknown}/messages"),
            m.clone(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(404, GroupNotFound),
    );
    add(
        r,
        "garbage bytes",
        http(
            "POST",
            &p,
            b"\x00\x01\x00\x02garbage".to_vec(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "truncated MLS message",
        http(
            "POST",
            &p,
            m[..m.len() / 2].to_vec(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "MLS message with trailing bytes",
        http(
            "POST",
            &p,
            [m.clone(), vec![0; 3]].concat(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "huge length prefix",
        http(
            "POST",
            &p,
            [m[..4].to_vec(), vec![0xff; 16]].concat(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "JSON (wrong content type)",
        http(
            "POST",
            &p,
            b"{\"message\":\"hi\"}".to_vec(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "a commit",
        http("POST", &p, f.commit.clone(), mls_ct, Sign::Group(&f.k1, 1)),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "a PublicMessage",
        http(
            "POST",
            &p,
            f.public_message.clone(),
            mls_ct,
            Sign::Group(&f.k1, 1),
        ),
        err(400, PublicMessageRefused),
    );
    add(
        r,
        "a Welcome",
        http("POST", &p, f.welcome.clone(), mls_ct, Sign::Group(&f.k1, 1)),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "oversized",
        http("POST", &p, vec![0; 9000], mls_ct, Sign::Group(&f.k1, 1)),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "truncated body",
        Req::Cut(handmade(
            "POST",
            &p,
            &[("content-type", mls_ct.into())],
            &m,
            m.len() + 64,
        )),
        Expect::Cut,
    );

    // POST /v1/groups/{group}/commits (signed with the epoch's key, or its external key).
    let r = "POST /v1/groups/{group}/commits";
    let p = format!("/v1/groups/{g1}/commits");
    let commit = |bytes: &[u8], next: Vec<u8>, welcomes: Vec<WelcomeDelivery>| {
        serde_json::to_vec(&CommitRequest {
            commit: Bytes(bytes.to_vec()),
            next_auth_key: Bytes(next),
            welcomes,
            group_info: None,
        })
        .expect("json")
    };
    let next = f.next_key.verifying_key().to_bytes().to_vec();
    let to = |mailboxes: Vec<String>| {
        vec![WelcomeDelivery {
            welcome: Bytes(f.welcome.clone()),
            mailboxes,
        }]
    };
    let good = commit(&f.commit, next.clone(), to(vec![b.clone()]));
    add(
        r,
        "unsigned",
        http("POST", &p, good.clone(), json, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another group's key",
        http("POST", &p, good.clone(), json, Sign::Group(&f.kg2, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "previous epoch's key",
        http("POST", &p, good.clone(), json, Sign::Group(&f.k0, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "signed by a mailbox key",
        http("POST", &p, good.clone(), json, Sign::Group(&f.kb, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "stale timestamp",
        stale("POST", &p, good.clone(), Sign::Group(&f.k1, 1)),
        err(401, StaleTimestamp),
    );
    add(
        r,
        "future epoch",
        http("POST", &p, good.clone(), json, Sign::Group(&f.k1, 2)),
        err(409, WrongEpoch),
    );
    add(
        r,
        "far future epoch",
        http("POST", &p, good.clone(), json, Sign::Group(&f.k1, 1 << 40)),
        err(409, WrongEpoch),
    );
    add(
        r,
        "past epoch (its commit again, fresh nonce)",
        http(
            "POST",
            &p,
            serde_json::to_vec(&f.old_commit).expect("json"),
            json,
            Sign::Group(&f.k0, 0),
        ),
        err(409, WrongEpoch),
    );
    add(
        r,
        "commit of epoch 0 under epoch 1",
        http(
            "POST",
            &p,
            serde_json::to_vec(&f.old_commit).expect("json"),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "another group's id, own key",
        http(
            "POST",
            &format!("/v1/groups/{g2}/commits"),
            good.clone(),
            json,
            Sign::Group(&f.k1, 0),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "unknown group",
        http(
            "POST",
            &format!("/v1/groups/{unknown}/commits"),
            good.clone(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(404, GroupNotFound),
    );
    add(
        r,
        "bad JSON",
        http(
            "POST",
            &p,
            b"{\"commit\":".to_vec(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "truncated JSON",
        http(
            "POST",
            &p,
            good[..good.len() - 10].to_vec(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "wrong types",
        http(
            "POST",
            &p,
            b"{\"commit\":1,\"next_auth_key\":true}".to_vec(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "bad base64",
        http(
            "POST",
            &p,
            format!("{{\"commit\":\"$$\",\"next_auth_key\":\"{}\"}}", b64(&next)).into_bytes(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "raw MLS bytes (wrong content type)",
        http("POST", &p, f.commit.clone(), mls_ct, Sign::Group(&f.k1, 1)),
        err(400, BadRequest),
    );
    add(
        r,
        "garbage commit",
        http(
            "POST",
            &p,
            commit(b"not MLS", next.clone(), vec![]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "truncated commit",
        http(
            "POST",
            &p,
            commit(&f.commit[..f.commit.len() - 1], next.clone(), vec![]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "an application message",
        http(
            "POST",
            &p,
            commit(&f.messages[1], next.clone(), vec![]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "a PublicMessage",
        http(
            "POST",
            &p,
            commit(&f.public_message, next.clone(), vec![]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, PublicMessageRefused),
    );
    add(
        r,
        "next key of 31 bytes",
        http(
            "POST",
            &p,
            commit(&f.commit, vec![1; 31], vec![]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "next key not on the curve",
        http(
            "POST",
            &p,
            commit(&f.commit, not_a_point(), vec![]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "Welcome that is not one",
        http(
            "POST",
            &p,
            commit(
                &f.commit,
                next.clone(),
                vec![WelcomeDelivery {
                    welcome: Bytes(f.messages[2].clone()),
                    mailboxes: vec![b.clone()],
                }],
            ),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, InvalidMlsMessage),
    );
    add(
        r,
        "Welcome to an unknown mailbox",
        http(
            "POST",
            &p,
            commit(
                &f.commit,
                next.clone(),
                to(vec![b.clone(), unknown.clone()]),
            ),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(404, MailboxNotFound),
    );
    add(
        r,
        "Welcome to a malformed mailbox id",
        http(
            "POST",
            &p,
            commit(&f.commit, next.clone(), to(vec!["&&".into()])),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(404, MailboxNotFound),
    );
    add(
        r,
        "group info with a bad external key",
        http(
            "POST",
            &p,
            serde_json::to_vec(&CommitRequest {
                commit: Bytes(f.commit.clone()),
                next_auth_key: Bytes(next.clone()),
                welcomes: vec![],
                group_info: Some(SealedGroupInfo {
                    sealed: Bytes(vec![1; 8]),
                    external_commit_key: Bytes(vec![2; 5]),
                }),
            })
            .expect("json"),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "external: a PublicMessage in the clear",
        http(
            "POST",
            &p,
            commit(&f.public_message, next.clone(), vec![]),
            json,
            Sign::Group(&f.external, 1),
        ),
        err(400, PublicMessageRefused),
    );
    add(
        r,
        "external: empty commit",
        http(
            "POST",
            &p,
            commit(b"", next.clone(), vec![]),
            json,
            Sign::Group(&f.external, 1),
        ),
        err(400, PublicMessageRefused),
    );
    add(
        r,
        "external: with a Welcome",
        http(
            "POST",
            &p,
            commit(b"sealed", next.clone(), to(vec![b.clone()])),
            json,
            Sign::Group(&f.external, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "external key of the past epoch",
        http(
            "POST",
            &p,
            commit(b"sealed", next.clone(), vec![]),
            json,
            Sign::Group(&f.external, 0),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "oversized",
        http(
            "POST",
            &p,
            commit(&vec![0; 70_000], next.clone(), vec![]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(413, PayloadTooLarge),
    );
    add(
        r,
        "truncated body",
        Req::Cut(handmade(
            "POST",
            &p,
            &[("content-type", json.into())],
            &good,
            good.len() + 10,
        )),
        Expect::Cut,
    );

    // GET /v1/groups/{group}/log (signed).
    let r = "GET /v1/groups/{group}/log";
    let p = format!("/v1/groups/{g1}/log");
    add(
        r,
        "unsigned",
        http("GET", &p, Vec::new(), json, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another group's key",
        http("GET", &p, Vec::new(), json, Sign::Group(&f.kg2, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "signed by the external commit key",
        http("GET", &p, Vec::new(), json, Sign::Group(&f.external, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "stale timestamp",
        stale("GET", &p, Vec::new(), Sign::Group(&f.k1, 1)),
        err(401, StaleTimestamp),
    );
    add(
        r,
        "future epoch",
        http("GET", &p, Vec::new(), json, Sign::Group(&f.k1, 3)),
        err(409, WrongEpoch),
    );
    add(
        r,
        "another group's id, own key",
        http(
            "GET",
            &format!("/v1/groups/{g2}/log"),
            Vec::new(),
            json,
            Sign::Group(&f.k1, 0),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "unknown group",
        http(
            "GET",
            &format!("/v1/groups/{unknown}/log"),
            Vec::new(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(404, GroupNotFound),
    );
    add(
        r,
        "malformed query",
        http(
            "GET",
            &format!("{p}?from=-1"),
            Vec::new(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "malformed limit",
        http(
            "GET",
            &format!("{p}?limit=lots"),
            Vec::new(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );

    // PUT /v1/groups/{group}/group-info (signed).
    let r = "PUT /v1/groups/{group}/group-info";
    let p = format!("/v1/groups/{g1}/group-info");
    let info = |key: Vec<u8>| {
        serde_json::to_vec(&SealedGroupInfo {
            sealed: Bytes(vec![3; 32]),
            external_commit_key: Bytes(key),
        })
        .expect("json")
    };
    let ext = new_key().verifying_key().to_bytes().to_vec();
    add(
        r,
        "unsigned",
        http("PUT", &p, info(ext.clone()), json, Sign::No),
        err(401, MissingSignature),
    );
    add(
        r,
        "signed by another group's key",
        http("PUT", &p, info(ext.clone()), json, Sign::Group(&f.kg2, 1)),
        err(401, BadSignature),
    );
    add(
        r,
        "signed by the external commit key",
        http(
            "PUT",
            &p,
            info(ext.clone()),
            json,
            Sign::Group(&f.external, 1),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "past epoch",
        http("PUT", &p, info(ext.clone()), json, Sign::Group(&f.k0, 0)),
        err(409, WrongEpoch),
    );
    add(
        r,
        "future epoch",
        http("PUT", &p, info(ext.clone()), json, Sign::Group(&f.k1, 2)),
        err(409, WrongEpoch),
    );
    add(
        r,
        "another group's id, own key",
        http(
            "PUT",
            &format!("/v1/groups/{g2}/group-info"),
            info(ext.clone()),
            json,
            Sign::Group(&f.k1, 0),
        ),
        err(401, BadSignature),
    );
    add(
        r,
        "bad JSON",
        http(
            "PUT",
            &p,
            b"{\"sealed\"".to_vec(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "bad base64",
        http(
            "PUT",
            &p,
            b"{\"sealed\":\"!\",\"external_commit_key\":\"!\"}".to_vec(),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(400, BadRequest),
    );
    add(
        r,
        "external key not on the curve",
        http("PUT", &p, info(not_a_point()), json, Sign::Group(&f.k1, 1)),
        err(400, BadRequest),
    );
    add(
        r,
        "oversized",
        http(
            "PUT",
            &p,
            info(vec![0; 70_000]),
            json,
            Sign::Group(&f.k1, 1),
        ),
        err(413, PayloadTooLarge),
    );

    // GET /v1/groups/{group}/group-info (anonymous).
    let r = "GET /v1/groups/{group}/group-info";
    add(
        r,
        "a group without one",
        http(
            "GET",
            &format!("/v1/groups/{g2}/group-info"),
            Vec::new(),
            json,
            Sign::No,
        ),
        err(404, GroupInfoNotFound),
    );
    add(
        r,
        "unknown group",
        http(
            "GET",
            &format!("/v1/groups/{unknown}/group-info"),
            Vec::new(),
            json,
            Sign::No,
        ),
        err(404, GroupInfoNotFound),
    );
    add(
        r,
        "id not base64",
        http(
            "GET",
            "/v1/groups/%00%01/group-info",
            Vec::new(),
            json,
            Sign::No,
        ),
        err(404, GroupNotFound),
    );

    // GET /v1/ws without a WebSocket upgrade (the in-band attacks are in
    // `websocket_attacks_are_answered_in_band`).
    let r = "GET /v1/ws";
    add(
        r,
        "plain GET, no upgrade",
        http("GET", "/v1/ws", Vec::new(), json, Sign::No),
        err(400, BadRequest),
    );

    // The open operations take no input; a body or query is ignored.
    add(
        "GET /health",
        "body and query",
        http(
            "GET",
            "/health?x=%ff",
            b"\xff\xfe".to_vec(),
            "text/plain",
            Sign::No,
        ),
        Expect::Harmless(200),
    );
    add(
        "GET /v1/privacy-pass",
        "body and query (ignored)",
        http(
            "GET",
            "/v1/privacy-pass?x=%ff",
            vec![0; 100],
            "application/octet-stream",
            Sign::No,
        ),
        Expect::Harmless(200),
    );
    add(
        "GET /metrics",
        "body",
        http(
            "GET",
            "/metrics",
            vec![0; 100],
            "application/octet-stream",
            Sign::No,
        ),
        Expect::Harmless(200),
    );
    add(
        "GET /openapi.json",
        "signed by a mailbox key",
        http(
            "GET",
            "/openapi.json",
            Vec::new(),
            json,
            Sign::Mailbox(&f.ka),
        ),
        Expect::Harmless(200),
    );
    cases
}

/// Every route of the router is in the attack table, checked against the DS's checked-in
/// OpenAPI document: a new route without attacks fails this test.
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
    let attacked: BTreeSet<String> = ROUTES.iter().map(|r| r.to_string()).collect();
    assert_eq!(documented, attacked, "routes and attack table differ");
}

/// The routes the table attacks (also read from the cases at run time).
const ROUTES: [&str; 19] = [
    "POST /v1/mailboxes",
    "GET /v1/mailboxes/{mailbox}/entries",
    "POST /v1/mailboxes/{mailbox}/entries",
    "POST /v1/mailboxes/{mailbox}/ack",
    "POST /v1/mailboxes/{mailbox}/pools",
    "GET /v1/mailboxes/{mailbox}/pools/{pool}",
    "POST /v1/mailboxes/{mailbox}/pools/{pool}/key-packages",
    "POST /v1/pools/{pool}/claim",
    "POST /v1/groups",
    "POST /v1/groups/{group}/messages",
    "POST /v1/groups/{group}/commits",
    "GET /v1/groups/{group}/log",
    "PUT /v1/groups/{group}/group-info",
    "GET /v1/groups/{group}/group-info",
    "GET /v1/ws",
    "GET /v1/privacy-pass",
    "GET /health",
    "GET /metrics",
    "GET /openapi.json",
];

/// The whole attack table against one DS node: each attack is answered with its expected
/// status and typed error code (never 500, never a dropped connection), nothing stored
/// changes, and the node still answers `/health` and an honest client afterwards.
async fn attacks_on_every_route_change_nothing(engine: Engine) {
    let env = Env::with(engine, limits).await;
    let c = Attacker::new(&env.client);
    let f = fixture(&c).await;
    let mut table = cases(&env.client, &f);
    for (route, p, expect) in &f.replays {
        table.push(Case {
            route,
            attack: "replay of an accepted request".into(),
            req: Req::Http(p.clone()),
            expect: expect.clone(),
        });
    }
    let routes: BTreeSet<&str> = table.iter().map(|c| c.route).collect();
    assert_eq!(
        routes,
        ROUTES.iter().copied().collect(),
        "every route is attacked"
    );
    let mut before = snapshot(&env.db).await;
    for case in &table {
        let answer = match &case.req {
            Req::Http(p) => Some(c.send(p).await),
            Req::Raw(bytes) => c.raw(bytes, false).await,
            Req::Cut(bytes) => c.raw(bytes, true).await,
        };
        check(case, answer.as_ref());
        let after = snapshot(&env.db).await;
        for ((table, was), (_, is)) in before.iter().zip(&after) {
            assert_eq!(
                was, is,
                "{} / {}: table {table} changed",
                case.route, case.attack
            );
        }
        before = after;
    }
    assert!(!env.server.task.is_finished(), "the server task ended");
    c.healthy().await;
    // An honest client is still served: the pool, the mailbox and the group work.
    let cl = &env.client;
    assert_eq!(cl.pool_status(&f.a, &f.ka, &f.pool_a).await.available, 1);
    assert_eq!(cl.entries(&f.a, &f.ka).await.len(), 1);
    let page: LogPage = cl.log(&f.g1, 1, &f.k1, 1).await.json();
    assert_eq!(page.current_epoch, 1);
    assert_eq!(cl.post(&f.g1, &f.messages[3], &f.k1, 1).await.status, 201);
    eprintln!(
        "hostile DS ({engine:?}): {} attacks on {} routes, {} requests sent",
        table.len(),
        routes.len(),
        c.count() + 4
    );
}

/// One WebSocket connection driven frame by frame.
struct Frames {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Frames {
    async fn connect(base: &str) -> Frames {
        let url = format!("{}/v1/ws", base.replacen("http://", "ws://", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Frames { stream }
    }

    async fn send(&mut self, m: tokio_tungstenite::tungstenite::Message) -> bool {
        use futures_util::SinkExt;
        self.stream.send(m).await.is_ok()
    }

    /// The next text frame as an event; `None` once the server closed the connection.
    async fn next(&mut self) -> Option<WsEvent> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("a frame or a close within 10 s");
            match m {
                Some(Ok(Message::Text(t))) => {
                    return Some(serde_json::from_str(t.as_str()).expect("a WsEvent"));
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends a text frame; the typed error it is answered with.
    async fn refused(&mut self, text: String) -> ErrorBody {
        assert!(
            self.send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
                .await
        );
        match self.next().await {
            Some(WsEvent::Error { error }) => error,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

fn subscribe_group(group: &[u8], epoch: u64, key: &SigningKey, signed_epoch: u64) -> String {
    let group_id = b64(group);
    let path = format!("/v1/groups/{group_id}/log?epoch={signed_epoch}");
    serde_json::to_string(&WsRequest::SubscribeGroup {
        group_id,
        epoch,
        proof: support::ws::proof(key, &path),
    })
    .expect("json")
}

fn subscribe_mailbox(mailbox: &str, key: &SigningKey) -> String {
    serde_json::to_string(&WsRequest::SubscribeMailbox {
        mailbox_id: mailbox.to_string(),
        proof: support::ws::proof(key, &format!("/v1/mailboxes/{mailbox}")),
    })
    .expect("json")
}

/// Hostile frames on a push connection (bad JSON, wrong types, bad base64, another group's
/// or mailbox's key, unknown ids, future and stale epochs, a replayed proof) are each
/// answered in band with a typed error and the connection goes on serving; a frame over
/// the control limit closes that connection only. Nothing stored changes.
async fn websocket_attacks_are_answered_in_band(engine: Engine) {
    use ErrorCode::*;
    let env = Env::with(engine, limits).await;
    let c = Attacker::new(&env.client);
    let f = fixture(&c).await;
    let before = snapshot(&env.db).await;
    let mut ws = Frames::connect(&env.client.base).await;
    let mut frames = 0u64;
    let refused = |code: ErrorCode, text: String| (code, text);
    let group_id = b64(&f.g1);
    let good_group = subscribe_group(&f.g1, 1, &f.k1, 1);
    let mut attacks = vec![
        refused(BadRequest, "not json".into()),
        refused(BadRequest, "{\"type\":\"subscribe_group\"}".into()),
        refused(BadRequest, "{\"type\":\"unsubscribe_everything\"}".into()),
        refused(
            BadRequest,
            format!(
                "{{\"type\":\"subscribe_group\",\"group_id\":\"{group_id}\",\"epoch\":\"one\",\"proof\":{{}}}}"
            ),
        ),
        refused(
            BadRequest,
            format!(
                "{{\"type\":\"subscribe_group\",\"group_id\":\"{group_id}\",\"epoch\":1,\"proof\":{{\"timestamp\":1,\"nonce\":\"!\",\"signature\":\"!\"}}}}"
            ),
        ),
        refused(BadSignature, subscribe_group(&f.g1, 1, &f.kg2, 1)),
        refused(BadSignature, subscribe_group(&f.g1, 1, &f.k0, 1)),
        refused(BadSignature, subscribe_group(&f.g1, 1, &f.external, 1)),
        refused(BadSignature, subscribe_group(&f.g1, 1, &f.k1, 0)),
        refused(BadSignature, subscribe_group(&f.g2, 0, &f.k1, 0)),
        refused(WrongEpoch, subscribe_group(&f.g1, 5, &f.k1, 5)),
        refused(
            BadRequest,
            subscribe_group(&f.g1, u64::MAX, &f.k1, u64::MAX),
        ),
        refused(GroupNotFound, subscribe_group(&random::<16>(), 0, &f.k1, 0)),
        refused(GroupNotFound, subscribe_group(b"", 0, &f.k1, 0)),
        refused(BadSignature, subscribe_mailbox(&f.a, &f.kb)),
        refused(
            MailboxNotFound,
            subscribe_mailbox(&b64(&random::<16>()), &f.ka),
        ),
        refused(MailboxNotFound, subscribe_mailbox("not*base64", &f.ka)),
    ];
    // A proof with a short signature, and a replayed proof.
    let mut short: serde_json::Value = serde_json::from_str(&good_group).expect("json");
    short["proof"]["signature"] = serde_json::Value::String(b64(&[1; 10]));
    attacks.push(refused(MissingSignature, short.to_string()));
    let mut stale: serde_json::Value = serde_json::from_str(&good_group).expect("json");
    stale["proof"]["timestamp"] = serde_json::json!(1);
    attacks.push(refused(StaleTimestamp, stale.to_string()));
    assert!(
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            good_group.clone().into()
        ))
        .await
    );
    frames += 1;
    assert!(matches!(ws.next().await, Some(WsEvent::Subscribed { .. })));
    attacks.push(refused(Replay, good_group));
    for (code, text) in attacks {
        frames += 1;
        let error = ws.refused(text.clone()).await;
        assert_eq!(error.code, code, "{text}: {}", error.message);
    }
    // Binary and ping frames are ignored; the connection still pushes.
    assert!(
        ws.send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![0xff; 100].into()
        ))
        .await
    );
    frames += 1;
    assert_eq!(
        env.client
            .post(&f.g1, &f.messages[3], &f.k1, 1)
            .await
            .status,
        201
    );
    match ws.next().await {
        Some(WsEvent::GroupEntry { entry, .. }) => assert_eq!(entry.message.0, f.messages[3]),
        other => panic!("{other:?}"),
    }
    // A frame over the control limit ends this connection, and only it.
    let mut other = Frames::connect(&env.client.base).await;
    assert!(
        other
            .send(tokio_tungstenite::tungstenite::Message::Text(
                subscribe_mailbox(&f.a, &f.ka).into()
            ))
            .await
    );
    assert!(matches!(
        other.next().await,
        Some(WsEvent::Subscribed { .. })
    ));
    let _ = ws
        .send(tokio_tungstenite::tungstenite::Message::Text(
            "x".repeat(64 * 1024).into(),
        ))
        .await;
    frames += 3;
    assert_eq!(
        ws.next().await,
        None,
        "the oversized frame closes the connection"
    );
    assert_eq!(
        env.client.post_blob(&f.a, b"still served").await.status,
        201
    );
    assert!(matches!(
        other.next().await,
        Some(WsEvent::MailboxEntry { .. })
    ));
    // Nothing stored changed but what the two honest requests wrote.
    let after = snapshot(&env.db).await;
    for ((t, was), (_, is)) in before.iter().zip(&after) {
        if *t != "log_entries" && *t != "groups" && *t != "mailbox_entries" && *t != "mailboxes" {
            assert_eq!(was, is, "table {t} changed");
        }
    }
    c.healthy().await;
    eprintln!(
        "hostile DS WebSocket ({engine:?}): {frames} frames and {} requests sent",
        c.count() + 2
    );
}

engine_suite!(
    attacks_on_every_route_change_nothing,
    websocket_attacks_are_answered_in_band
);

/// Reads `Retry-After` of a 429 and checks its typed body.
async fn too_many(r: reqwest::Response) -> u64 {
    assert_eq!(r.status().as_u16(), 429);
    let retry_after: u64 = r
        .headers()
        .get("retry-after")
        .expect("429 without Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    let body: ErrorBody = r.json().await.expect("typed body");
    assert_eq!(body.code, ErrorCode::RateLimited);
    retry_after
}

/// Floods: anonymous creations past the node's budget and claims past a pool's budget are
/// answered 429 with `Retry-After` and a typed body, from many connections at once, while
/// another client's signed reads, group posts and claims from another pool are served
/// promptly meanwhile and the flood stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn floods_are_answered_429_while_others_are_served() {
    let env = Env::with(Engine::Sqlite, |c| {
        limits(c);
        c.anonymous_creations_per_minute = 10;
        c.claims_per_minute = 4;
    })
    .await;
    let c = Attacker::new(&env.client);
    let f = fixture(&c).await;
    let before = snapshot(&env.db).await;
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let flood = |n: usize, what: &'static str| {
        let (http, base, sent) = (
            env.client.http.clone(),
            env.client.base.clone(),
            sent.clone(),
        );
        let pool = f.pool_a.clone();
        tokio::spawn(async move {
            let (mut waits, mut passed) = (Vec::new(), 0u64);
            for i in 0..n {
                sent.fetch_add(1, Ordering::Relaxed);
                let r = match what {
                    "mailboxes" => http
                        .post(format!("{base}/v1/mailboxes"))
                        .json(&CreateMailboxRequest {
                            public_key: Bytes(new_key().verifying_key().to_bytes().to_vec()),
                        })
                        .send(),
                    "groups" => http
                        .post(format!("{base}/v1/groups"))
                        .json(&CreateGroupRequest {
                            group_id: Bytes(format!("flood {i} {:?}", random::<4>()).into_bytes()),
                            auth_key: Bytes(new_key().verifying_key().to_bytes().to_vec()),
                        })
                        .send(),
                    _ => http
                        .post(format!("{base}/v1/pools/{pool}/claim"))
                        .json(&ClaimRequest {
                            claim_secret: Bytes(vec![9; 32]),
                        })
                        .send(),
                };
                let r = r.await.expect("send");
                match (r.status().as_u16(), what) {
                    (429, _) => waits.push(too_many(r).await),
                    // The budget refilled a token meanwhile (one every 6 s for creations,
                    // 15 s for claims): that request went through.
                    (201, "mailboxes" | "groups") => passed += 1,
                    (401, "claims") => passed += 1,
                    (s, _) => panic!("{what}: {s} {}", r.text().await.unwrap_or_default()),
                }
            }
            (waits, passed)
        })
    };
    // The fixture spent 4 of the 10 creations; spend the rest with real ones first.
    for _ in 0..6 {
        let _ = env.client.mailbox().await;
    }
    let floods = vec![
        flood(150, "mailboxes"),
        flood(150, "mailboxes"),
        flood(150, "groups"),
        flood(150, "groups"),
    ];
    // Wrong secrets spend the pool's budget: past it, even they are answered 429.
    let mut claims = 0;
    loop {
        claims += 1;
        let r = env.client.claim(&f.pool_a, &[9; 32]).await;
        if r.status == 429 {
            break;
        }
        assert_eq!(r.code(), ErrorCode::BadClaimSecret);
        assert!(claims < 10, "no 429 after {claims} claims");
    }
    let claim_flood = vec![flood(100, "claims"), flood(100, "claims")];
    // Meanwhile an honest client is served, promptly.
    let cl = &env.client;
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let started = std::time::Instant::now();
        assert_eq!(cl.entries(&f.b, &f.kb).await.len(), 3);
        let page: LogPage = cl.log(&f.g1, 1, &f.k1, 1).await.json();
        assert_eq!(page.current_epoch, 1);
        if i < 3 {
            assert_eq!(cl.post(&f.g1, &f.messages[i], &f.k1, 1).await.status, 201);
        }
        slowest = slowest.max(started.elapsed());
    }
    // Another pool's budget is its own.
    assert_eq!(cl.claim(&f.pool_b, &f.secret).await.status, 200);
    let (mut refused, mut passed) = (0, [0u64; 3]);
    for (i, h) in floods.into_iter().chain(claim_flood).enumerate() {
        let (waits, through) = h.await.expect("flood task");
        refused += waits.len();
        passed[i / 2] += through;
        let most = if i < 4 { 6 } else { 15 };
        assert!(
            waits.iter().all(|w| (1..=most).contains(w)),
            "Retry-After out of range: {waits:?}"
        );
    }
    assert!(
        passed.iter().all(|p| *p <= 3),
        "the budgets held: {passed:?}"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "an honest round took {slowest:?}"
    );
    // The floods stored nothing but what the refilled budget let through.
    assert_eq!(
        env.db.count_rows("mailboxes").await as u64,
        2 + 6 + passed[0]
    );
    assert_eq!(env.db.count_rows("groups").await as u64, 2 + passed[1]);
    let after = snapshot(&env.db).await;
    for ((t, was), (_, is)) in before.iter().zip(&after) {
        if [
            "mailboxes",
            "groups",
            "epoch_keys",
            "log_entries",
            "sealed_key_packages",
        ]
        .contains(&t.as_str())
        {
            continue;
        }
        assert_eq!(was, is, "table {t} changed");
    }
    assert_eq!(cl.pool_status(&f.a, &f.ka, &f.pool_a).await.available, 1);
    c.healthy().await;
    eprintln!(
        "hostile DS floods: {refused} refused with 429 of {} flood requests; {} requests in all",
        sent.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed) + c.count() + claims + 20 * 2 + 3 + 1 + 6 + 3
    );
}

/// The resident set size of a process, in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The value of a gauge in the Prometheus text of `/metrics`.
async fn gauge(c: &Client, name: &str) -> Option<f64> {
    let text = c
        .http
        .get(format!("{}/metrics", c.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A WebSocket subscriber that never reads, on the real `conclave-ds` binary: while its
/// group is flooded with 40 MB of messages, the DS keeps serving an honest subscriber
/// (which gets every entry, or is told it lagged) and HTTP clients, drops the silent
/// subscriber once a write to it has waited `--ws-write-timeout-secs`, and its resident
/// memory stays flat (it buffers no more than its bounded per-topic queue for the silent
/// one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_that_never_reads_is_dropped_and_memory_stays_flat() {
    let db = Db::new(Engine::Sqlite).await;
    let (child, c) = spawn_ds(
        &db,
        &["--push-buffer", "32", "--ws-write-timeout-secs", "2"],
    )
    .await;
    let pid = child.id().expect("pid");
    let mls = Mls::new();
    let gid = b"slow readers".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(c.create_group(&gid, &k0).await.status, 201);
    let mut sent = 1u64;

    // The honest subscriber reads everything as it comes, in a task of its own.
    let mut reader = support::ws::Ws::connect(&c.base).await;
    reader
        .subscribe_group(&gid, 0, &k0)
        .await
        .expect("subscribed");
    // The silent one subscribes, then never reads again; its socket buffers are small.
    let mut silent = support::ws::Ws::connect_slow(&c.base, 4096).await;
    silent
        .subscribe_group(&gid, 0, &k0)
        .await
        .expect("subscribed");
    assert_eq!(gauge(&c, "ds_ws_connections").await, Some(2.0));

    let n = 400usize;
    let messages: Vec<Vec<u8>> = (0..n)
        .map(|i| mls.encrypt(&mut alice, &vec![i as u8; 100_000]))
        .collect();
    let reading = tokio::spawn(async move {
        let (mut pushed, mut missed) = (0u64, 0u64);
        while pushed + missed < n as u64 + 20 {
            match reader.next_event().await {
                WsEvent::GroupEntry { .. } => pushed += 1,
                WsEvent::Lagged { missed: m, .. } => missed += m,
                other => panic!("{other:?}"),
            }
        }
        // Kept open: it is the subscriber the DS must go on serving.
        (pushed, missed, reader)
    });
    // Warm up (the allocator and the database grow to their working size), then measure.
    for m in &messages[..20] {
        assert_eq!(c.post(&gid, m, &k0, 0).await.status, 201);
        sent += 1;
    }
    let baseline = rss_kib(pid);
    let mut peak = baseline;
    let mut slowest_health = Duration::ZERO;
    for (i, m) in messages[20..].iter().enumerate() {
        assert_eq!(c.post(&gid, m, &k0, 0).await.status, 201);
        sent += 1;
        if i % 20 == 0 {
            peak = peak.max(rss_kib(pid));
            let started = std::time::Instant::now();
            assert_eq!(c.empty("GET", "/health", Sign::No).await.status, 200);
            sent += 1;
            slowest_health = slowest_health.max(started.elapsed());
        }
    }
    // The last 20, once the silent subscriber must have been dropped.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let extra: Vec<Vec<u8>> = (0..20)
        .map(|_| mls.encrypt(&mut alice, &[7; 100_000]))
        .collect();
    for m in &extra {
        assert_eq!(c.post(&gid, m, &k0, 0).await.status, 201);
        sent += 1;
    }
    let (pushed, missed, _reader) = tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("the honest subscriber got everything")
        .expect("reader");
    peak = peak.max(rss_kib(pid));
    // Dropped: only the honest subscriber is left.
    let mut connections = None;
    for _ in 0..50 {
        connections = gauge(&c, "ds_ws_connections").await;
        sent += 1;
        if connections == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        connections,
        Some(1.0),
        "the silent subscriber was not dropped"
    );
    // It now reads what the kernel buffered, then the end: far less than the flood.
    let mut stream = silent.into_stream();
    let mut got = 0u64;
    loop {
        use futures_util::StreamExt;
        match tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("closed within 10 s")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_))) => got += 1,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    let growth_mib = (peak.saturating_sub(baseline)) as f64 / 1024.0;
    eprintln!(
        "hostile DS slow subscriber: {sent} HTTP requests ({} MB posted); RSS {} MiB at the \
         start, peak +{growth_mib:.1} MiB; the honest subscriber got {pushed} pushed and \
         {missed} lagged, the silent one {got} before it was dropped; slowest /health \
         {slowest_health:?}",
        (n + 20) / 10,
        baseline / 1024
    );
    assert!(got < 100, "the silent subscriber was sent {got} frames");
    assert!(
        growth_mib < 32.0,
        "RSS grew by {growth_mib:.1} MiB while 42 MB were pushed"
    );
    assert!(
        slowest_health < Duration::from_secs(1),
        "{slowest_health:?}"
    );
    assert_eq!(pushed + missed, n as u64 + 20);
    let _ = child;
}
