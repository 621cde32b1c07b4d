//! A malicious DS against clients (issue 19): Bob's device talks to the real DS through a
//! proxy on loopback that rewrites the group log it serves — reordered, duplicated and
//! replayed entries, altered application messages, withheld or altered commits. Bob never
//! gets a message twice, never accepts an altered one, never leaves the group's epoch
//! chain, and once the DS serves the log honestly again he catches up: same epoch and
//! verification code as Alice, and the messages sent meanwhile.

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use conclave_api::delivery::{LogEntry, LogEntryKind, LogPage};
use conclave_client::{Device, Event, GroupId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::{Engine, Servers, drain, messages, settle};

/// What the proxy does to the group logs it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Passes them on.
    Honest,
    /// Reverses each page, serves every entry twice and puts every entry it served before
    /// in front of each page again.
    Shuffle,
    /// Flips the last byte (the AEAD tag) of every application message.
    AlterMessages,
    /// Cuts each page at its first commit: the commit and what follows are withheld.
    WithholdCommits,
    /// Flips the last byte of every commit.
    AlterCommits,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    mode: Mutex<Mode>,
    /// Entries served so far, by request path (one per group).
    seen: Mutex<HashMap<String, Vec<LogEntry>>>,
    /// Pages rewritten.
    rewritten: Mutex<u64>,
}

impl Proxy {
    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }
}

fn flip_last(entry: &mut LogEntry) {
    if let Some(b) = entry.message.0.last_mut() {
        *b ^= 0x01;
    }
}

fn rewrite(proxy: &Proxy, path: &str, mut page: LogPage) -> LogPage {
    let mode = *proxy.mode.lock().expect("mode");
    let before = page.entries.clone();
    match mode {
        Mode::Honest => {}
        Mode::Shuffle => {
            let replay = proxy
                .seen
                .lock()
                .expect("seen")
                .get(path)
                .cloned()
                .unwrap_or_default();
            page.entries.reverse();
            let twice: Vec<LogEntry> = page
                .entries
                .iter()
                .flat_map(|e| [e.clone(), e.clone()])
                .collect();
            page.entries = replay.into_iter().chain(twice).collect();
        }
        Mode::AlterMessages => {
            for e in &mut page.entries {
                if e.kind == LogEntryKind::Application {
                    flip_last(e);
                }
            }
        }
        Mode::WithholdCommits => {
            if let Some(i) = page
                .entries
                .iter()
                .position(|e| e.kind == LogEntryKind::Commit)
            {
                page.entries.truncate(i);
            }
        }
        Mode::AlterCommits => {
            for e in &mut page.entries {
                if e.kind == LogEntryKind::Commit {
                    flip_last(e);
                }
            }
        }
    }
    if page.entries != before {
        *proxy.rewritten.lock().expect("count") += 1;
    }
    proxy
        .seen
        .lock()
        .expect("seen")
        .entry(path.to_owned())
        .or_default()
        .extend(before);
    page
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = proxy
        .http
        .request(
            method.clone(),
            format!("{}{path_and_query}", proxy.upstream),
        )
        .body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let Ok(answer) = request.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    let content_type = answer.headers().get("content-type").cloned();
    let bytes = answer.bytes().await.unwrap_or_default();
    let bytes = if method == Method::GET && uri.path().ends_with("/log") && status.is_success() {
        match serde_json::from_slice::<LogPage>(&bytes) {
            Ok(page) => serde_json::to_vec(&rewrite(&proxy, uri.path(), page))
                .expect("json")
                .into(),
            Err(_) => bytes,
        }
    } else {
        bytes
    };
    let mut response = (status, bytes).into_response();
    if let Some(ct) = content_type {
        response.headers_mut().insert("content-type", ct);
    }
    response
}

/// A proxy in front of `upstream`; its URL.
async fn start_proxy(upstream: String) -> (Arc<Proxy>, String) {
    let proxy = Arc::new(Proxy {
        upstream,
        http: reqwest::Client::new(),
        mode: Mutex::new(Mode::Honest),
        seen: Mutex::new(HashMap::new()),
        rewritten: Mutex::new(0),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::clone(&proxy));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (proxy, format!("http://{addr}"))
}

/// Bob's messages from his events (each event once: his store acknowledges them).
async fn received(bob: &Device) -> Vec<String> {
    bob.sync().await.expect("bob syncs whatever the DS serves");
    messages(&drain(bob).await)
        .into_iter()
        .map(|(_, body)| body)
        .collect()
}

async fn in_step(alice: &Device, bob: &Device, group: &GroupId) {
    assert_eq!(
        alice.epoch(group).await.expect("epoch"),
        bob.epoch(group).await.expect("epoch")
    );
    assert_eq!(
        alice.verification_code(group).await.expect("code"),
        bob.verification_code(group).await.expect("code"),
        "one epoch, one group: no fork"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lying_ds_cannot_duplicate_forge_or_fork_and_bob_recovers() {
    let servers = Servers::start(Engine::Sqlite).await;
    let (proxy, proxy_url) = start_proxy(servers.ds_url(0)).await;
    let alice = servers.register("alice@example.org", "alice", 0).await;
    let code = servers.invite("bob@example.org").await;
    let mut config = servers.config("bob", 0);
    config.delivery_url = proxy_url;
    let bob = Device::register(config, conclave_client::Authorization::Invitation { code })
        .await
        .expect("bob registers through the proxy");
    alice.request_contact(bob.user_id()).await.expect("request");
    bob.sync().await.expect("sync");
    bob.accept_contact(alice.user_id()).await.expect("accept");
    settle(&[&alice, &bob], 2).await;
    let group = alice.create_group().await.expect("group");
    alice
        .add_user(&group, bob.user_id())
        .await
        .expect("add bob");
    alice.send(&group, b"hello").await.expect("send");
    settle(&[&alice, &bob], 1).await;
    drain(&alice).await;
    assert_eq!(received(&bob).await, ["hello"]);
    in_step(&alice, &bob, &group).await;

    // Reordered, doubled and replayed entries: each message once, in order.
    proxy.set(Mode::Shuffle);
    for m in ["one", "two", "three"] {
        alice.send(&group, m.as_bytes()).await.expect("send");
    }
    assert_eq!(received(&bob).await, ["one", "two", "three"]);
    alice.send(&group, b"four").await.expect("send");
    assert_eq!(received(&bob).await, ["four"], "no replay of what was read");
    assert_eq!(received(&bob).await, Vec::<String>::new());

    // Altered application messages are never delivered.
    proxy.set(Mode::AlterMessages);
    alice
        .send(&group, b"altered in transit")
        .await
        .expect("send");
    assert_eq!(received(&bob).await, Vec::<String>::new());
    proxy.set(Mode::Honest);
    alice.send(&group, b"five").await.expect("send");
    assert_eq!(received(&bob).await, ["five"]);
    in_step(&alice, &bob, &group).await;

    // A withheld commit: Bob stays in his epoch and reads nothing of the next; once the DS
    // serves the commit, he follows and reads what was sent in the new epoch.
    for (mode, label) in [
        (Mode::WithholdCommits, "withheld"),
        (Mode::AlterCommits, "altered"),
    ] {
        let epoch = bob.epoch(&group).await.expect("epoch");
        proxy.set(mode);
        alice.update(&group).await.expect("commit");
        alice
            .send(&group, format!("after a {label} commit").as_bytes())
            .await
            .expect("send");
        for _ in 0..3 {
            assert_eq!(received(&bob).await, Vec::<String>::new(), "{label}");
        }
        assert_eq!(bob.epoch(&group).await.expect("epoch"), epoch, "{label}");
        proxy.set(Mode::Honest);
        assert_eq!(
            received(&bob).await,
            [format!("after a {label} commit")],
            "{label}"
        );
        in_step(&alice, &bob, &group).await;
    }
    assert!(*proxy.rewritten.lock().expect("count") >= 5);

    // And the group still works both ways.
    bob.send(&group, b"bob is fine").await.expect("bob sends");
    alice.sync().await.expect("sync");
    let events = drain(&alice).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Message { body, .. } if body == b"bob is fine")),
        "{events:?}"
    );
    servers.finish().await;
}
