//! `conclave web`: the device's client, run here, serving a messenger page to its owner on
//! loopback. The page does no cryptography: it calls this process's JSON API
//! ([`api`]) and hears what arrives over server-sent events; the keys never leave the
//! client (`conclave-client`).
//!
//! Who may use it:
//! - **the owner only**: a random secret, new at each launch, travels in the fragment of
//!   the printed link (so it is never sent in a request line, a log or a `Referer`); the page
//!   exchanges it for an `HttpOnly; SameSite=Strict` session cookie;
//! - **no cross-site requests**: every request that changes state carries the CSRF token
//!   the session was given (header `X-Conclave-Csrf`), and a browser's `Origin` and
//!   `Sec-Fetch-Site` must name this very origin — other services on `localhost` are the same
//!   *site* to a browser, so the cookie alone would not do;
//! - **no DNS rebinding**: the `Host` header must be this server's own address;
//! - **no injected code or framing**: a strict Content-Security-Policy (`default-src
//!   'self'`, no inline script, no eval), `frame-ancestors 'none'` and `X-Frame-Options`.

pub mod api;
pub mod assets;

use crate::error::CliError;
use crate::people::Output;
use crate::profile::Profile;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use conclave_client::{Device, Event};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{Mutex, RwLock, broadcast};

/// The header carrying the CSRF token on every state-changing request.
pub const CSRF_HEADER: &str = "x-conclave-csrf";

/// The policy of every answer: this origin's own files only, no inline script or style, no
/// eval, no framing, no plugins, forms only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// At most this many sessions (browsers the link was opened in) per launch; the oldest goes.
const MAX_SESSIONS: usize = 8;

/// `conclave web`.
#[derive(Debug, clap::Args)]
pub struct WebArgs {
    /// Where the page is served: loopback unless you say otherwise (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Do not open the page in a browser (xdg-open); just print its link.
    #[arg(long)]
    no_open: bool,
    /// The Authentication Service offered when registering a new device in the page.
    #[arg(long = "as", default_value = "http://127.0.0.1:8443")]
    auth_url: String,
    /// The Delivery Service offered when registering a new device in the page.
    #[arg(long = "ds", default_value = "http://127.0.0.1:8444")]
    delivery_url: String,
    /// Print the OpenAPI document of the page's API and exit.
    #[arg(long, hide = true)]
    print_openapi: bool,
}

/// A security alert for the page: a contact's (or this user's) device set changed.
#[derive(Clone, Debug)]
pub struct Alert {
    /// Its number, for dismissing.
    pub id: u64,
    /// `device_added`, `device_revoked` or `unknown_device`.
    pub kind: &'static str,
    /// The device.
    pub device: conclave_client::DeviceName,
    /// When it was seen, Unix seconds.
    pub at: u64,
}

/// What the page's own session keeps in memory (unread counts and alerts are not written
/// to disk: the device's store is sealed, and a side file would leak group ids).
#[derive(Default)]
pub struct Notes {
    /// Unread messages per group (hex id).
    pub unread: HashMap<String, u32>,
    /// Alerts not yet dismissed.
    pub alerts: Vec<Alert>,
    next_alert: u64,
}

/// The state every request shares.
pub struct Web {
    secret: String,
    csrf: String,
    sessions: Mutex<Vec<String>>,
    cookie: String,
    hosts: Vec<String>,
    /// The profile directory of this device.
    pub profile_dir: PathBuf,
    /// The servers the registration form offers.
    pub defaults: (String, String),
    device: RwLock<Option<Device>>,
    /// Serialises registration.
    pub registering: Mutex<()>,
    /// The registration challenge an OpenID Connect sign-in in the page will answer.
    pub challenge: Mutex<Option<conclave_client::RegistrationChallenge>>,
    /// Events for the page, as JSON texts.
    pub events: broadcast::Sender<String>,
    /// Unread counts and alerts.
    pub notes: Mutex<Notes>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Web {
    /// The device, once registered.
    pub async fn device(&self) -> Result<Device, CliError> {
        self.device.read().await.clone().ok_or_else(|| {
            CliError::new(
                "not_registered",
                "this device is not registered yet",
                "register it on the page first",
            )
        })
    }

    /// Whether a device is running.
    pub async fn has_device(&self) -> bool {
        self.device.read().await.is_some()
    }

    /// Installs the (newly registered or opened) device and starts handing its events to
    /// the page.
    pub async fn install(self: &Arc<Self>, device: Device) {
        *self.device.write().await = Some(device.clone());
        let web = Arc::clone(self);
        let task = tokio::spawn(async move { web.pump_events(device).await });
        self.tasks.lock().await.push(task);
    }

    /// Takes the device's events as the DS pushes them: notes unread messages and alerts,
    /// tells the page, then acknowledges each (it stays in the group's history).
    async fn pump_events(self: Arc<Self>, device: Device) {
        let mut stream = device.event_stream();
        while let Some(next) = stream.next().await {
            match next {
                Ok((id, event)) => {
                    self.note(&device, &event).await;
                    let _ = self
                        .events
                        .send(crate::people::event_json(&event).to_string());
                    if let Err(e) = device.ack(id).await {
                        tracing::warn!("cannot acknowledge an event: {e}");
                    }
                }
                Err(e) => {
                    let e = CliError::from(e);
                    let _ = self
                        .events
                        .send(api::Pushed::note("error", Some(e.to_string())).to_json());
                }
            }
        }
    }

    async fn note(&self, device: &Device, event: &Event) {
        let mut notes = self.notes.lock().await;
        match event {
            Event::Message { group, sender, .. }
                if !(sender.user == device.user_id() && sender.device == device.device_id()) =>
            {
                *notes.unread.entry(group.to_string()).or_default() += 1;
            }
            Event::DeviceAdded { device: d }
            | Event::DeviceRevoked { device: d }
            | Event::UnknownDevice { device: d } => {
                let kind = match event {
                    Event::DeviceAdded { .. } => "device_added",
                    Event::DeviceRevoked { .. } => "device_revoked",
                    _ => "unknown_device",
                };
                notes.next_alert += 1;
                let id = notes.next_alert;
                notes.alerts.push(Alert {
                    id,
                    kind,
                    device: d.clone(),
                    at: now(),
                });
            }
            _ => {}
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_hex() -> Result<String, CliError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::bare("failed", format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equality of two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `Host` values this server answers to: its own address (and `localhost` for a
/// loopback one), with the port.
fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    let mut hosts = vec![match addr {
        SocketAddr::V4(a) => format!("{}:{port}", a.ip()),
        SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
    }];
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{port}"));
    }
    hosts
}

/// Runs `conclave web` until interrupted.
pub async fn run(profile_dir: &Path, args: WebArgs, out: &Output) -> Result<(), CliError> {
    if args.print_openapi {
        println!("{}", api::openapi_json());
        return Ok(());
    }
    if args.listen.ip().is_unspecified() {
        return Err(CliError::new(
            "invalid",
            format!("--listen {}: not one address", args.listen),
            "give the address the page is opened at (e.g. 127.0.0.1:8480): requests naming any other host are refused",
        ));
    }
    // Open this profile's device, or none yet: the page then offers registration.
    let device = if profile_dir.join("settings.json").exists() {
        let profile = Profile::load(profile_dir)?;
        Some(Device::open(profile.config()?).await?)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            CliError::new(
                "listen",
                format!("cannot listen on {}: {e}", args.listen),
                "choose another --listen address or port",
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::bare("listen", e.to_string()))?;
    let (events, _) = broadcast::channel(256);
    let web = Arc::new(Web {
        secret: random_hex()?,
        csrf: random_hex()?,
        sessions: Mutex::new(Vec::new()),
        cookie: format!("conclave_{}", addr.port()),
        hosts: allowed_hosts(addr),
        profile_dir: profile_dir.to_owned(),
        defaults: (args.auth_url.clone(), args.delivery_url.clone()),
        device: RwLock::new(None),
        registering: Mutex::new(()),
        challenge: Mutex::new(None),
        events,
        notes: Mutex::new(Notes::default()),
        tasks: Mutex::new(Vec::new()),
    });
    let registered = device.is_some();
    let who = device
        .as_ref()
        .map(|d| format!("{} (device {})", d.user_id(), d.device_id()));
    if let Some(device) = device {
        web.install(device).await;
    }
    let url = format!("http://{}/#k={}", web.hosts[0], web.secret);
    let mut text = format!(
        "Conclave for {} — open {url}\n(the link holds a secret for this launch: do not share it). Stop with Ctrl-C.",
        who.as_deref()
            .unwrap_or("a new device: register it on the page")
    );
    if !addr.ip().is_loopback() {
        text.push_str(&format!(
            "\nWarning: {addr} is not a loopback address; anyone who can reach it and learns the link can use this device."
        ));
    }
    out.print(
        &text,
        json!({ "url": url, "listen": addr.to_string(), "registered": registered }),
    );
    if !args.no_open {
        // Best effort: a desktop opens the link; elsewhere it is printed above.
        let _ = std::process::Command::new("xdg-open")
            .arg(&url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let app = router(Arc::clone(&web));
    // Not a graceful shutdown: the page's event streams never end by themselves.
    let served = tokio::select! {
        served = std::future::IntoFuture::into_future(axum::serve(listener, app)) => served,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    for task in web.tasks.lock().await.drain(..) {
        task.abort();
    }
    if let Some(device) = web.device.write().await.take() {
        device.close().await;
    }
    served.map_err(|e| CliError::bare("failed", e.to_string()))
}

/// The whole app: the page's files and the API, behind [`guard`].
pub fn router(web: Arc<Web>) -> Router {
    Router::new()
        .merge(assets::routes())
        .merge(api::routes())
        .fallback(|| async { api::WebError::not_found() })
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&web),
            guard,
        ))
        .with_state(web)
}

fn refuse(status: StatusCode, code: &'static str, error: &str, hint: &str) -> Response {
    api::WebError {
        status,
        body: CliError::new(code, error, hint),
    }
    .into_response()
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session token in the request's cookie, if any.
fn session_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl Web {
    /// Whether the request carries a session this launch issued.
    pub async fn has_session(&self, headers: &HeaderMap) -> bool {
        let Some(token) = session_cookie(headers, &self.cookie) else {
            return false;
        };
        self.sessions
            .lock()
            .await
            .iter()
            .any(|s| same_secret(s, token))
    }

    /// Checks the launch secret; on success a new session and the cookie that names it.
    pub async fn open_session(&self, secret: &str) -> Option<HeaderValue> {
        if !same_secret(secret, &self.secret) {
            return None;
        }
        let token = random_hex().ok()?;
        let mut sessions = self.sessions.lock().await;
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push(token.clone());
        HeaderValue::from_str(&format!(
            "{}={token}; HttpOnly; SameSite=Strict; Path=/",
            self.cookie
        ))
        .ok()
    }

    /// The CSRF token of this launch (handed to sessions only).
    pub fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Every request passes here first: the Host check, then (for the API) the session, then
/// (for anything that changes state) the origin and the CSRF token; every answer leaves
/// with the security headers.
async fn guard(State(web): State<Arc<Web>>, request: Request<Body>, next: Next) -> Response {
    let mut response = check(&web, request, next).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        CONTENT_SECURITY_POLICY,
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

async fn check(web: &Web, request: Request<Body>, next: Next) -> Response {
    let headers = request.headers();
    // DNS rebinding: a page of another name resolving to 127.0.0.1 sends its own Host.
    let host = header_str(headers, header::HOST).unwrap_or("");
    if !web.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            &format!("this server does not answer for host {host:?}"),
            &format!(
                "open http://{}/ (the link conclave web printed)",
                web.hosts[0]
            ),
        );
    }
    let path = request.uri().path();
    let is_api = path.starts_with("/api/");
    let login = path == "/api/session" && request.method() == Method::POST;
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if !safe {
        // A browser names the page that sent the request; it must be this one.
        let origin = header_str(headers, header::ORIGIN);
        let own = format!("http://{host}");
        if origin.is_some_and(|o| !o.eq_ignore_ascii_case(&own)) {
            return refuse(
                StatusCode::FORBIDDEN,
                "bad_origin",
                "the request comes from another origin",
                "use the page conclave web serves",
            );
        }
        if let Some(site) = header_str(headers, "sec-fetch-site") {
            if site != "same-origin" && site != "none" {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "bad_origin",
                    &format!("a {site} request"),
                    "use the page conclave web serves",
                );
            }
        }
        let has_body = header_str(headers, header::CONTENT_LENGTH).is_some_and(|l| l != "0")
            || headers.contains_key(header::TRANSFER_ENCODING);
        let json_body = header_str(headers, header::CONTENT_TYPE)
            .is_some_and(|t| t.trim_start().starts_with("application/json"));
        if has_body && !json_body {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON",
                "send Content-Type: application/json",
            );
        }
    }
    if is_api && !login {
        if !web.has_session(headers).await {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "no_session",
                "no session: this page was not opened from the link conclave web printed",
                "open the link conclave web printed at its start (start it again if it stopped)",
            );
        }
        if !safe {
            let token = header_str(headers, CSRF_HEADER).unwrap_or("");
            if !same_secret(token, &web.csrf) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "bad_csrf",
                    "the request lacks this session's CSRF token",
                    "reload the page",
                );
            }
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; conclave_80=tok; b=2"),
        );
        assert_eq!(session_cookie(&headers, "conclave_80"), Some("tok"));
        assert_eq!(session_cookie(&headers, "conclave_81"), None);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abcd", "abcd"));
        assert!(!same_secret("abcd", "abce"));
        assert!(!same_secret("abcd", "abc"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn hosts_of_loopback_include_localhost() {
        let hosts = allowed_hosts("127.0.0.1:8480".parse().unwrap());
        assert_eq!(hosts, vec!["127.0.0.1:8480", "localhost:8480"]);
        let hosts = allowed_hosts("[::1]:9".parse().unwrap());
        assert_eq!(hosts, vec!["[::1]:9", "localhost:9"]);
        let hosts = allowed_hosts("192.0.2.1:9".parse().unwrap());
        assert_eq!(hosts, vec!["192.0.2.1:9"]);
    }
}
