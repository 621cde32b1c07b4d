//! `conclave web` over real HTTP on loopback, as a browser (or an attacker) would reach it:
//! the launch secret, the session cookie, the CSRF token, the Origin and Host checks each
//! refuse what they must with a typed JSON error; the page's files are embedded and sent
//! with a strict policy; the OpenAPI document is checked in; and two people, each with
//! their own `conclave web`, register, become contacts, make a group, talk live both ways,
//! compare verification codes, and one removes the other — against `conclave serve`.

mod support;

use serde_json::{Value, json};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Running, conclave, invite, serve, spawn_json};

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Asserts a typed error: this status and code, with a readable message.
    fn refused(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let v = self.json();
        assert_eq!(v["code"], code, "{self:?}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{self:?}"
        );
    }
}

/// Sends one request on a fresh connection (`Host` is `addr` unless given) and reads the
/// whole answer.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// A running `conclave web` and, once logged in, its session.
struct Web {
    _child: Running,
    addr: String,
    secret: String,
    cookie: String,
    csrf: String,
}

impl Web {
    fn start(profile: &Path, auth: &str, ds: &str) -> Web {
        let mut cmd = conclave();
        cmd.arg("--json").arg("--profile").arg(profile).args([
            "web",
            "--no-open",
            "--listen",
            "127.0.0.1:0",
            "--as",
            auth,
            "--ds",
            ds,
        ]);
        let (child, v) = spawn_json(cmd);
        let url = v["url"].as_str().unwrap().to_owned();
        let addr = v["listen"].as_str().unwrap().to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "{v}");
        let secret = url.split_once("#k=").unwrap().1.to_owned();
        assert_eq!(secret.len(), 64, "{url}");
        assert!(url.starts_with(&format!("http://{addr}/")), "{url}");
        Web {
            _child: child,
            addr,
            secret,
            cookie: String::new(),
            csrf: String::new(),
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Exchanges the secret for the cookie, as the page does.
    fn login(&mut self) {
        let body = json!({ "secret": self.secret }).to_string();
        let origin = self.origin();
        let r = http(
            &self.addr,
            "POST",
            "/api/session",
            &[("Content-Type", "application/json"), ("Origin", &origin)],
            &body,
        );
        assert_eq!(r.status, 200, "{r:?}");
        let set_cookie = r.header("set-cookie").unwrap().to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set_cookie.contains(attribute), "{set_cookie}");
        }
        self.cookie = set_cookie.split(';').next().unwrap().to_owned();
        self.csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    }

    /// A request of the page: cookie, CSRF token, Origin, JSON.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let origin = self.origin();
        let text = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![
            ("Cookie", self.cookie.as_str()),
            ("X-Conclave-Csrf", self.csrf.as_str()),
            ("Origin", origin.as_str()),
        ];
        if !text.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        http(&self.addr, method, path, &headers, &text)
    }

    fn get(&self, path: &str) -> Value {
        let r = self.call("GET", path, None);
        assert_eq!(r.status, 200, "GET {path}: {r:?}");
        r.json()
    }

    fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let r = self.call(method, path, body);
        assert!(
            (200..300).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        r
    }
}

/// Waits until `check` holds (the devices sync in the background), at most 60 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn the_guard_refuses_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the page still opens, registration fails readably.
    let mut web = Web::start(dir.path(), "http://127.0.0.1:1", "http://127.0.0.1:1");
    let addr = web.addr.clone();
    let port = addr.rsplit_once(':').unwrap().1.to_owned();

    // The page itself: embedded, with a strict policy on every answer.
    let index = http(&addr, "GET", "/", &[], "");
    assert_eq!(index.status, 200);
    assert!(index.body.contains("/assets/app.js"), "{}", index.body);
    let csp = index.header("content-security-policy").unwrap();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(index.header("x-frame-options"), Some("DENY"));
    assert_eq!(index.header("x-content-type-options"), Some("nosniff"));
    let script = http(&addr, "GET", "/assets/app.js", &[], "");
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .unwrap()
            .contains("javascript")
    );
    assert!(script.body.len() > 1000);
    assert_eq!(http(&addr, "GET", "/assets/style.css", &[], "").status, 200);
    // `localhost` is this server too.
    let local = format!("localhost:{port}");
    assert_eq!(http(&addr, "GET", "/", &[("Host", &local)], "").status, 200);

    // DNS rebinding: another name pointing at 127.0.0.1 is refused, page and API alike.
    let evil = format!("evil.example:{port}");
    http(&addr, "GET", "/", &[("Host", &evil)], "").refused(421, "bad_host");
    http(&addr, "GET", "/api/me", &[("Host", &evil)], "").refused(421, "bad_host");
    http(&addr, "GET", "/", &[("Host", "127.0.0.1:1")], "").refused(421, "bad_host");

    // No session: the API is closed.
    http(&addr, "GET", "/api/me", &[], "").refused(401, "no_session");
    http(&addr, "GET", "/api/events", &[], "").refused(401, "no_session");
    let forged = format!("conclave_{port}={}", "0".repeat(64));
    http(&addr, "GET", "/api/me", &[("Cookie", &forged)], "").refused(401, "no_session");

    // The secret: a wrong one is refused; the right one from another origin too.
    let json_type = ("Content-Type", "application/json");
    let wrong = json!({ "secret": "0".repeat(64) }).to_string();
    http(&addr, "POST", "/api/session", &[json_type], &wrong).refused(403, "bad_secret");
    let right = json!({ "secret": web.secret }).to_string();
    http(
        &addr,
        "POST",
        "/api/session",
        &[json_type, ("Origin", "http://evil.example")],
        &right,
    )
    .refused(403, "bad_origin");
    http(
        &addr,
        "POST",
        "/api/session",
        &[json_type, ("Sec-Fetch-Site", "cross-site")],
        &right,
    )
    .refused(403, "bad_origin");
    http(
        &addr,
        "POST",
        "/api/session",
        &[("Content-Type", "text/plain")],
        &right,
    )
    .refused(415, "unsupported_media_type");
    http(&addr, "POST", "/api/session", &[json_type], "{not json").refused(400, "invalid");

    web.login();
    let me = web.get("/api/me");
    assert_eq!(me["registered"], false);
    assert_eq!(me["auth_url"], "http://127.0.0.1:1");
    assert_eq!(web.get("/api/session")["csrf"], web.csrf.as_str());

    // With the cookie but without the CSRF token, or from another origin: refused.
    let cookie = web.cookie.clone();
    let register = json!({ "auth_url": "http://127.0.0.1:1", "delivery_url": "http://127.0.0.1:1", "code": "x" })
        .to_string();
    http(
        &addr,
        "POST",
        "/api/register",
        &[("Cookie", &cookie), json_type],
        &register,
    )
    .refused(403, "bad_csrf");
    http(
        &addr,
        "POST",
        "/api/register",
        &[("Cookie", &cookie), json_type, ("X-Conclave-Csrf", "0")],
        &register,
    )
    .refused(403, "bad_csrf");
    http(
        &addr,
        "POST",
        "/api/register",
        &[
            ("Cookie", &cookie),
            json_type,
            ("X-Conclave-Csrf", &web.csrf),
            ("Origin", "http://localhost:1"),
        ],
        &register,
    )
    .refused(403, "bad_origin");

    // Bad input: typed errors, never a panic or a text body.
    web.call("POST", "/api/register", Some(json!({ "auth_url": 1 })))
        .refused(400, "invalid");
    web.call(
        "POST",
        "/api/register",
        Some(json!({ "auth_url": "ftp://x", "delivery_url": "http://x", "code": "c" })),
    )
    .refused(400, "invalid");
    web.call(
        "POST",
        "/api/register",
        Some(json!({ "auth_url": "http://x", "delivery_url": "http://x" })),
    )
    .refused(400, "invalid");
    let big = json!({ "secret": "a".repeat(70 * 1024) });
    web.call("POST", "/api/session", Some(big))
        .refused(413, "invalid");
    web.call("GET", "/api/nothing", None)
        .refused(404, "not_found");
    web.call("PUT", "/api/groups", None)
        .refused(405, "method_not_allowed");
    web.call("GET", "/api/groups", None)
        .refused(409, "not_registered");

    // The servers are down: registration fails readably and leaves no half profile.
    web.ok_err_register(dir.path());
}

impl Web {
    fn ok_err_register(&self, dir: &Path) {
        let r = self.call(
            "POST",
            "/api/register",
            Some(json!({ "auth_url": "http://127.0.0.1:1", "delivery_url": "http://127.0.0.1:1", "code": "abc" })),
        );
        r.refused(502, "server_unreachable");
        assert!(r.json()["hint"].as_str().is_some());
        assert!(!dir.join("settings.json").exists());
        assert_eq!(self.get("/api/me")["registered"], false);
    }
}

#[test]
fn openapi_document_is_checked_in() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("web/openapi.json");
    let out = conclave()
        .args(["web", "--print-openapi"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "crates/cli/web/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p conclave --test web openapi"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    for p in [
        "/api/session",
        "/api/register",
        "/api/groups/{group}/messages",
        "/api/groups/{group}/members/{user}",
        "/api/events",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
}

/// Reads the server-sent events of `web` until one contains `needle`.
fn sse_until(web: &Web, needle: &str, stream: &mut TcpStream, seen: &mut String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        assert!(Instant::now() < deadline, "no event with {needle}: {seen}");
        match stream.read(&mut buf) {
            Ok(0) => panic!("event stream of {} closed: {seen}", web.addr),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

fn open_events(web: &Web) -> TcpStream {
    let mut stream = TcpStream::connect(&web.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    write!(
        stream,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        web.addr, web.cookie
    )
    .unwrap();
    stream
}

fn group_of<'a>(groups: &'a Value, id: &str) -> Option<&'a Value> {
    groups.as_array()?.iter().find(|g| g["id"] == id)
}

#[test]
fn two_people_talk_through_their_pages() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("servers");
    let (_servers, auth, ds) = serve(&data);
    let alice_code = invite(&data, "alice@example.org");
    let bob_code = invite(&data, "bob@example.org");
    let mut alice = Web::start(&dir.path().join("alice"), &auth, &ds);
    let mut bob = Web::start(&dir.path().join("bob"), &auth, &ds);
    alice.login();
    bob.login();

    // Register from the page: a wrong code is refused, then the right one works.
    let register = |code: &str| json!({ "auth_url": auth, "delivery_url": ds, "code": code });
    alice
        .call("POST", "/api/register", Some(register("not-a-code")))
        .refused(400, "invalid_invitation");
    let me = alice
        .ok("POST", "/api/register", Some(register(&alice_code)))
        .json();
    assert_eq!(me["registered"], true);
    assert_eq!(me["user"], "alice@example.org");
    alice
        .call("POST", "/api/register", Some(register(&bob_code)))
        .refused(409, "already_registered");
    bob.ok("POST", "/api/register", Some(register(&bob_code)));
    let devices = alice.get("/api/devices");
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["this_device"], true);
    assert_eq!(devices[0]["key_code"].as_str().unwrap().len(), 24);

    // Contacts: Alice asks, Bob sees the request and accepts.
    alice
        .call(
            "POST",
            "/api/contacts",
            Some(json!({ "user": "nobody@example.org" })),
        )
        .refused(404, "unknown_user");
    alice.ok(
        "POST",
        "/api/contacts",
        Some(json!({ "user": "bob@example.org" })),
    );
    bob.call("POST", "/api/contacts/carol@example.org/accept", None)
        .refused(404, "no_request");
    eventually("Bob sees Alice's request", || {
        bob.get("/api/contacts")
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["user"] == "alice@example.org" && c["state"] == "pending")
    });
    bob.ok("POST", "/api/contacts/alice@example.org/accept", None);
    eventually("Alice sees Bob accepted", || {
        alice
            .get("/api/contacts")
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["user"] == "bob@example.org" && c["state"] == "accepted")
    });

    // A group: Alice creates it and adds Bob; a non-contact cannot be added.
    let created = alice.ok("POST", "/api/groups", None);
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    alice
        .call(
            "POST",
            &format!("/api/groups/{id}/members"),
            Some(json!({ "user": "carol@example.org" })),
        )
        .refused(409, "not_a_contact");
    alice.ok(
        "POST",
        &format!("/api/groups/{id}/members"),
        Some(json!({ "user": "bob@example.org" })),
    );
    eventually("Bob is in the group", || {
        group_of(&bob.get("/api/groups"), &id).is_some()
    });

    // Live: Bob's event stream carries Alice's message as it arrives.
    let mut bob_events = open_events(&bob);
    let mut seen = String::new();
    sse_until(&bob, "text/event-stream", &mut bob_events, &mut seen);
    let sent = alice
        .ok(
            "POST",
            &format!("/api/groups/{id}/messages"),
            Some(json!({ "text": "hello Bob" })),
        )
        .json();
    assert_eq!(sent["state"], "sent");
    assert_eq!(sent["own"], true);
    sse_until(&bob, "hello Bob", &mut bob_events, &mut seen);
    assert!(seen.contains(r#""user":"alice@example.org""#), "{seen}");
    let summary = group_of(&bob.get("/api/groups"), &id).unwrap().clone();
    assert_eq!(summary["unread"], 1, "{summary}");
    assert_eq!(summary["users"], json!(["alice@example.org"]));
    let history = bob.get(&format!("/api/groups/{id}/messages"));
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!(last["text"], "hello Bob");
    assert_eq!(last["user"], "alice@example.org");
    assert_eq!(last["own"], false);
    assert_eq!(last["state"], "received");
    bob.ok("POST", &format!("/api/groups/{id}/read"), None);
    assert_eq!(group_of(&bob.get("/api/groups"), &id).unwrap()["unread"], 0);

    // And back.
    let mut alice_events = open_events(&alice);
    let mut alice_seen = String::new();
    bob.ok(
        "POST",
        &format!("/api/groups/{id}/messages"),
        Some(json!({ "text": "hi Alice" })),
    );
    sse_until(&alice, "hi Alice", &mut alice_events, &mut alice_seen);
    bob.call(
        "POST",
        &format!("/api/groups/{id}/messages"),
        Some(json!({ "text": "  " })),
    )
    .refused(400, "invalid");

    // Members with their devices' status, and equal verification codes.
    let detail = alice.get(&format!("/api/groups/{id}"));
    let members = detail["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{detail}");
    for m in members {
        for d in m["devices"].as_array().unwrap() {
            assert_eq!(d["in_group"], true, "{d}");
            assert_eq!(d["certificate"], "valid", "{d}");
            assert_eq!(d["transparency"], "proven", "{d}");
        }
    }
    let code = detail["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 35, "{code}");
    eventually("equal codes", || {
        bob.get(&format!("/api/groups/{id}"))["code"] == code.as_str()
    });

    // Unknown groups are typed errors.
    alice
        .call("GET", "/api/groups/00ff/messages", None)
        .refused(404, "unknown_group");
    alice
        .call("GET", "/api/groups/not-hex", None)
        .refused(404, "unknown_group");

    // Alice removes Bob: his page shows he is no longer a member, and he cannot send.
    alice.ok(
        "DELETE",
        &format!("/api/groups/{id}/members/bob@example.org"),
        None,
    );
    alice
        .call(
            "DELETE",
            &format!("/api/groups/{id}/members/bob@example.org"),
            None,
        )
        .refused(409, "not_in_group");
    eventually("Bob sees he was removed", || {
        bob.get(&format!("/api/groups/{id}"))["member"] == false
    });
    assert_eq!(
        group_of(&bob.get("/api/groups"), &id).unwrap()["member"],
        false
    );
    bob.call(
        "POST",
        &format!("/api/groups/{id}/messages"),
        Some(json!({ "text": "still here?" })),
    )
    .refused(409, "not_a_member");
    // His history stays readable.
    assert!(
        bob.get(&format!("/api/groups/{id}/messages"))
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "hello Bob")
    );
}

/// A test OpenID Connect issuer: its Ed25519 key, its JWKS and the AS's configuration for
/// it, written into `dir`.
struct Issuer {
    key: ed25519_dalek::SigningKey,
    config: std::path::PathBuf,
}

const ISSUER: &str = "https://id.example.org";

impl Issuer {
    fn new(dir: &Path) -> Issuer {
        use sha2::Digest as _;
        let seed: [u8; 32] = sha2::Sha256::digest(format!("{:?}", Instant::now())).into();
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let x = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            key.verifying_key().to_bytes(),
        );
        let jwks = dir.join("jwks.json");
        std::fs::write(
            &jwks,
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "k1", "alg": "EdDSA", "use": "sig"}]})
                .to_string(),
        )
        .unwrap();
        let config = dir.join("oidc.json");
        std::fs::write(
            &config,
            json!({"issuers": [{
                "issuer": ISSUER,
                "audiences": ["conclave"],
                "user_claim": "email",
                "jwks_file": jwks,
                "allowed_domains": ["example.org"],
            }]})
            .to_string(),
        )
        .unwrap();
        Issuer { key, config }
    }

    /// An ID token for `email`, carrying `nonce`.
    fn token(&self, email: &str, nonce: &str) -> String {
        use ed25519_dalek::pkcs8::EncodePrivateKey as _;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = json!({"iss": ISSUER, "aud": "conclave", "sub": email, "email": email,
            "email_verified": true, "iat": now, "exp": now + 600, "nonce": nonce});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some("k1".into());
        let der = self.key.to_pkcs8_der().unwrap();
        jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    }
}

/// Registration with an OpenID Connect ID token, against `conclave serve --oidc`: in the
/// page, the token must carry the nonce of the challenge the page asked for (none asked
/// for, a wrong nonce, or a nonce already spent is refused with a typed error and leaves
/// the profile empty), and then registers the user the token names; in the terminal,
/// `conclave init --oidc` prints the nonce and reads the token from standard input, and a
/// token already used cannot register a second device.
#[test]
fn oidc_registration_in_the_page_and_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new(dir.path());
    let data = dir.path().join("servers");
    let (_servers, auth, ds) =
        support::serve_with(&data, &["--oidc".as_ref(), issuer.config.as_os_str()]);
    let profile = dir.path().join("alice");
    let mut alice = Web::start(&profile, &auth, &ds);
    alice.login();
    let register = |token: &str| json!({ "auth_url": auth, "delivery_url": ds, "id_token": token });
    let challenge = || {
        alice
            .ok(
                "POST",
                "/api/register/challenge",
                Some(json!({ "auth_url": auth })),
            )
            .json()["nonce"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let empty = || {
        assert!(!profile.join("settings.json").exists());
        assert_eq!(alice.get("/api/me")["registered"], false);
    };

    // No challenge asked for yet.
    alice
        .call(
            "POST",
            "/api/register",
            Some(register(&issuer.token("alice@example.org", "x"))),
        )
        .refused(400, "no_challenge");
    empty();
    // A token for another nonce: refused by the AS, and that challenge is spent.
    let nonce = challenge();
    assert_eq!(nonce.len(), 43, "32 bytes, base64url");
    alice
        .call(
            "POST",
            "/api/register",
            Some(register(
                &issuer.token("alice@example.org", "another-nonce"),
            )),
        )
        .refused(400, "invalid_id_token");
    empty();
    alice
        .call(
            "POST",
            "/api/register",
            Some(register(&issuer.token("alice@example.org", &nonce))),
        )
        .refused(400, "no_challenge");
    empty();
    // A fresh nonce and a token that carries it: registered as the user it names.
    let nonce = challenge();
    let token = issuer.token("alice@example.org", &nonce);
    let me = alice
        .ok("POST", "/api/register", Some(register(&token)))
        .json();
    assert_eq!(me["registered"], true);
    assert_eq!(me["user"], "alice@example.org");
    alice
        .call(
            "POST",
            "/api/register/challenge",
            Some(json!({ "auth_url": auth })),
        )
        .refused(409, "already_registered");

    // The terminal: `init --oidc` shows the nonce, takes the token on standard input.
    let init = |profile: &Path| {
        let mut child = conclave()
            .arg("--json")
            .arg("--profile")
            .arg(profile)
            .args(["init", "--as", &auth, "--ds", &ds, "--oidc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let prompt: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(prompt["type"], "oidc_nonce", "{line}");
        (child, out, prompt["nonce"].as_str().unwrap().to_owned())
    };
    let finish = |mut child: std::process::Child,
                  mut out: std::io::BufReader<std::process::ChildStdout>,
                  token: &str| {
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{token}").unwrap();
        drop(stdin);
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (child.wait().unwrap().success(), rest, err)
    };
    let bob = dir.path().join("bob");
    let (child, out, nonce) = init(&bob);
    let (ok, rest, err) = finish(child, out, &issuer.token("bob@example.org", &nonce));
    assert!(ok, "{rest} {err}");
    let registered: Value = serde_json::from_str(rest.trim()).unwrap();
    assert_eq!(registered["user"], "bob@example.org");
    // Alice's token, already used, does not register another device of hers.
    let mallory = dir.path().join("mallory");
    let (child, out, _) = init(&mallory);
    let (ok, rest, err) = finish(child, out, &token);
    assert!(!ok, "{rest}");
    assert!(
        err.contains("invalid_id_token") || rest.contains("invalid_id_token"),
        "{rest} {err}"
    );
    assert!(!mallory.join("settings.json").exists());
}
