//! The page's API: JSON over HTTP, and server-sent events for what arrives. Each handler
//! is one call (or a few) of the SDK's public API on this device; every error is a typed
//! JSON body `{code, error, hint}` with a fitting status. The OpenAPI document generated
//! from these handlers is checked in as `crates/cli/web/openapi.json`.

use super::{Web, now};
use crate::error::CliError;
use crate::people::{require_pending, users_of};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use conclave_client::{ContactState, Device, GroupId, VerifiedDevice};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast;
use utoipa::{OpenApi, ToSchema};

/// How many past messages a conversation shows.
const HISTORY: u32 = 500;
/// The longest message the page may send, in bytes.
const MAX_MESSAGE: usize = 16 * 1024;

/// The OpenAPI document of the page's API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Conclave web (local client API)",
        description = "The API `conclave web` serves to its page on loopback. A session comes from the launch secret (POST /api/session) as an HttpOnly SameSite=Strict cookie; every state-changing request carries the header X-Conclave-Csrf with the session's token, and the Host header must be the server's own address. Errors are {code, error, hint}."
    ),
    paths(
        login,
        session,
        me,
        register_challenge,
        register,
        devices,
        contacts,
        request_contact,
        accept_contact,
        decline_contact,
        groups,
        create_group,
        group,
        messages,
        send,
        mark_read,
        add_member,
        remove_member,
        leave,
        alerts,
        dismiss_alert,
        events,
        openapi,
    ),
    components(schemas(ErrorView, Pushed))
)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON (what is checked in).
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

/// The routes of the API (all under `/api/`).
pub fn routes() -> Router<Arc<Web>> {
    Router::new()
        .route("/api/session", get(session).post(login))
        .route("/api/me", get(me))
        .route("/api/register", post(register))
        .route("/api/register/challenge", post(register_challenge))
        .route("/api/devices", get(devices))
        .route("/api/contacts", get(contacts).post(request_contact))
        .route("/api/contacts/{user}/accept", post(accept_contact))
        .route("/api/contacts/{user}/decline", post(decline_contact))
        .route("/api/groups", get(groups).post(create_group))
        .route("/api/groups/{group}", get(group))
        .route("/api/groups/{group}/messages", get(messages).post(send))
        .route("/api/groups/{group}/read", post(mark_read))
        .route("/api/groups/{group}/members", post(add_member))
        .route("/api/groups/{group}/members/{user}", delete(remove_member))
        .route("/api/groups/{group}/leave", post(leave))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/{id}/dismiss", post(dismiss_alert))
        .route("/api/events", get(events))
        .route("/api/openapi.json", get(openapi))
        .method_not_allowed_fallback(|| async {
            WebError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                CliError::bare("method_not_allowed", "this path does not take that method"),
            )
        })
}

/// An error answer: a status and `{code, error, hint}`.
#[derive(Debug)]
pub struct WebError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: CliError,
}

/// The body of every error (for the OpenAPI document).
#[derive(Serialize, ToSchema)]
pub struct ErrorView {
    /// Stable, machine-readable kind: `no_session`, `bad_csrf`, `bad_origin`, `bad_host`,
    /// `unknown_group`, `not_a_contact`, `not_a_member`, `server_unreachable`, …
    pub code: String,
    /// What went wrong, for a person.
    pub error: String,
    /// What to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl WebError {
    /// An error with this status.
    pub fn new(status: StatusCode, body: CliError) -> Self {
        Self { status, body }
    }

    /// 400 with code `invalid`.
    pub fn invalid(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            CliError::new("invalid", error, hint),
        )
    }

    /// 404 for a path that is not part of the app.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            CliError::new("not_found", "no such page or API path", "open / instead"),
        )
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = ErrorView {
            code: self.body.code.to_owned(),
            error: self.body.error,
            hint: self.body.hint,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Hints that name terminal commands, told the page's way.
fn for_page(mut e: CliError) -> CliError {
    let hint = match e.code {
        "not_a_contact" => Some("ask them on the Contacts page; once they accept, try again"),
        "unknown_group" => Some("choose a conversation from the list"),
        "no_request" => Some("the Contacts page shows the requests waiting"),
        "not_registered" => Some("register this device on the page first"),
        "server_unreachable" => {
            Some("is `conclave serve` running, and are this device's server addresses right?")
        }
        "no_key_package" => Some(
            "their devices have used up their KeyPackages: ask them to open Conclave, then try again",
        ),
        "invalid_invitation" => Some("ask the operator for a new code (`conclave invite USER`)"),
        "revoked" => Some("this device was revoked: register a new one in another profile"),
        "not_a_member" => Some("ask a member to add you again"),
        _ => None,
    };
    if let Some(h) = hint {
        e.hint = Some(h.to_owned());
    }
    e
}

impl From<CliError> for WebError {
    fn from(e: CliError) -> Self {
        let status = match e.code {
            "invalid" | "invalid_invitation" | "invalid_id_token" | "invalid_challenge"
            | "no_challenge" | "refused" => StatusCode::BAD_REQUEST,
            "unknown_group" | "unknown_user" | "no_request" | "not_found" => StatusCode::NOT_FOUND,
            "not_a_contact" | "not_a_member" | "not_in_group" | "not_registered"
            | "already_registered" | "profile_exists" | "ambiguous_group" | "contention"
            | "no_key_package" => StatusCode::CONFLICT,
            "revoked" | "wrong_passphrase" | "no_passphrase" => StatusCode::FORBIDDEN,
            "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
            "server_unreachable" => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, for_page(e))
    }
}

impl From<conclave_client::Error> for WebError {
    fn from(e: conclave_client::Error) -> Self {
        CliError::from(e).into()
    }
}

type Result<T> = std::result::Result<T, WebError>;

/// Parses a JSON body; a typed 400 (or 413) when it is not the expected JSON.
fn body<T: DeserializeOwned>(raw: std::result::Result<Bytes, BytesRejection>) -> Result<T> {
    let bytes = raw.map_err(|e| {
        WebError::new(
            e.status(),
            CliError::new("invalid", e.body_text(), "send a JSON body under 64 KiB"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        WebError::invalid(
            format!("the body is not the expected JSON: {e}"),
            "see /api/openapi.json",
        )
    })
}

fn path<T>(p: std::result::Result<Path<T>, PathRejection>) -> Result<T> {
    p.map(|Path(v)| v)
        .map_err(|e| WebError::invalid(e.body_text(), "see /api/openapi.json"))
}

/// `POST /api/session` body.
#[derive(Deserialize, ToSchema)]
pub struct SessionRequest {
    /// The secret of the link `conclave web` printed (after `#k=`).
    pub secret: String,
}

/// A session's CSRF token.
#[derive(Serialize, ToSchema)]
pub struct SessionInfo {
    /// Send it as `X-Conclave-Csrf` with every request that changes state.
    pub csrf: String,
}

/// Exchange the launch secret for a session cookie (HttpOnly, SameSite=Strict).
#[utoipa::path(post, path = "/api/session", request_body = SessionRequest, tag = "session",
    responses((status = 200, body = SessionInfo, description = "Set-Cookie carries the session"),
        (status = 403, body = ErrorView, description = "`bad_secret` or `bad_origin`")))]
pub async fn login(
    State(web): State<Arc<Web>>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let request: SessionRequest = body(raw)?;
    let Some(cookie) = web.open_session(request.secret.trim()).await else {
        return Err(WebError::new(
            StatusCode::FORBIDDEN,
            CliError::new(
                "bad_secret",
                "this link's secret is not the one of this launch",
                "open the link conclave web printed when it last started",
            ),
        ));
    };
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(SessionInfo {
            csrf: web.csrf().to_owned(),
        }),
    )
        .into_response())
}

/// The CSRF token of the session the cookie names.
#[utoipa::path(get, path = "/api/session", tag = "session",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorView)))]
pub async fn session(State(web): State<Arc<Web>>) -> Json<SessionInfo> {
    Json(SessionInfo {
        csrf: web.csrf().to_owned(),
    })
}

/// This device, or that it is not registered yet.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// Whether the profile holds a registered device.
    pub registered: bool,
    /// The user, `user@domain`.
    pub user: Option<String>,
    /// This device's id.
    pub device: Option<String>,
    /// The Authentication Service (the profile's, or the one offered for registration).
    pub auth_url: String,
    /// The Delivery Service.
    pub delivery_url: String,
}

async fn me_of(web: &Web) -> Result<Me> {
    if let Ok(device) = web.device().await {
        let profile = crate::profile::Profile::load(&web.profile_dir)?;
        return Ok(Me {
            registered: true,
            user: Some(device.user_id().to_owned()),
            device: Some(device.device_id().to_owned()),
            auth_url: profile.settings.auth_url,
            delivery_url: profile.settings.delivery_url,
        });
    }
    Ok(Me {
        registered: false,
        user: None,
        device: None,
        auth_url: web.defaults.0.clone(),
        delivery_url: web.defaults.1.clone(),
    })
}

/// This device.
#[utoipa::path(get, path = "/api/me", tag = "device", responses((status = 200, body = Me)))]
pub async fn me(State(web): State<Arc<Web>>) -> Result<Json<Me>> {
    Ok(Json(me_of(&web).await?))
}

/// `POST /api/register` body: the servers and one authorization.
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// The Authentication Service, `http(s)://host:port`.
    pub auth_url: String,
    /// The Delivery Service.
    pub delivery_url: String,
    /// An invitation code from the operator.
    pub code: Option<String>,
    /// An OpenID Connect ID token from an issuer the AS trusts.
    pub id_token: Option<String>,
}

/// `POST /api/register/challenge`.
#[derive(Deserialize, ToSchema)]
pub struct ChallengeRequest {
    /// The Authentication Service, `http(s)://host:port`.
    pub auth_url: String,
}

/// A registration challenge for an OpenID Connect sign-in.
#[derive(Serialize, ToSchema)]
pub struct ChallengeView {
    /// The nonce the ID token must carry in its `nonce` claim (ask the identity provider
    /// for a token with it).
    pub nonce: String,
    /// Unix time after which the AS refuses it.
    pub expires_at: u64,
}

fn server_url(url: &str) -> Result<&str> {
    let url = url.trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2048 {
        return Err(WebError::invalid(
            format!("{url:?} is not a server address"),
            "give http://host:port or https://host:port",
        ));
    }
    Ok(url)
}

/// Ask the AS for a registration challenge, for a sign-in with OpenID Connect.
///
/// The ID token must carry its nonce (OpenID Connect Core §3.1.2.1), which binds the token
/// to this one registration. The page keeps no secret: the challenge waits here, one at a
/// time; a new one replaces it.
#[utoipa::path(post, path = "/api/register/challenge", request_body = ChallengeRequest,
    tag = "device",
    responses((status = 200, body = ChallengeView), (status = 400, body = ErrorView),
        (status = 409, body = ErrorView, description = "`already_registered`"),
        (status = 502, body = ErrorView, description = "`server_unreachable`")))]
pub async fn register_challenge(
    State(web): State<Arc<Web>>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<ChallengeView>> {
    let request: ChallengeRequest = body(raw)?;
    let auth_url = server_url(&request.auth_url)?;
    let _one_at_a_time = web.registering.lock().await;
    if web.has_device().await {
        return Err(already_registered());
    }
    let challenge = Device::registration_challenge(auth_url).await?;
    let view = ChallengeView {
        nonce: challenge.oidc_nonce(),
        expires_at: challenge.expires_at(),
    };
    *web.challenge.lock().await = Some(challenge);
    Ok(Json(view))
}

fn already_registered() -> WebError {
    CliError::new(
        "already_registered",
        "this profile already holds a registered device",
        "reload the page",
    )
    .into()
}

/// Register this device (an empty profile) with an invitation code or an OIDC ID token.
///
/// An ID token must carry the nonce of the challenge last asked for
/// (`/api/register/challenge`); the attempt spends that challenge, whatever its outcome.
#[utoipa::path(post, path = "/api/register", request_body = RegisterRequest, tag = "device",
    responses((status = 200, body = Me), (status = 400, body = ErrorView,
            description = "`invalid`, `invalid_invitation`, `invalid_id_token`, `no_challenge`"),
        (status = 409, body = ErrorView, description = "`already_registered`"),
        (status = 502, body = ErrorView, description = "`server_unreachable`")))]
pub async fn register(
    State(web): State<Arc<Web>>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<Json<Me>> {
    let request: RegisterRequest = body(raw)?;
    let _one_at_a_time = web.registering.lock().await;
    if web.has_device().await {
        return Err(already_registered());
    }
    let auth_url = server_url(&request.auth_url)?;
    let delivery_url = server_url(&request.delivery_url)?;
    let nonempty = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let (authorization, challenge) = match (nonempty(request.code), nonempty(request.id_token)) {
        (Some(code), None) => (
            conclave_client::Authorization::Invitation { code },
            Device::registration_challenge(auth_url).await?,
        ),
        (None, Some(id_token)) => {
            // Taken out whatever follows: the AS spends a challenge on any attempt.
            let challenge = web
                .challenge
                .lock()
                .await
                .take()
                .filter(|c| c.auth_url() == auth_url)
                .ok_or_else(|| {
                    WebError::from(CliError::new(
                        "no_challenge",
                        "no nonce was asked for at this Authentication Service",
                        "ask for a nonce first, then for an ID token that carries it",
                    ))
                })?;
            (conclave_client::Authorization::Oidc { id_token }, challenge)
        }
        _ => {
            return Err(WebError::invalid(
                "give either an invitation code or an ID token",
                "fill in one of the two",
            ));
        }
    };
    let device =
        crate::people::register(&web.profile_dir, &challenge, delivery_url, authorization).await?;
    web.install(device).await;
    Ok(Json(me_of(&web).await?))
}

/// A short, readable code of a device's certified signature key: the first 10 bytes in
/// five groups of four hex digits, to compare out of band.
pub fn key_code(key: &[u8]) -> String {
    key.iter()
        .take(10)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .chunks(2)
        .map(|c| c.concat())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One of this user's devices, as the AS serves it and this device verified it.
#[derive(Serialize, ToSchema)]
pub struct OwnDevice {
    /// The device id.
    pub device: String,
    /// Whether it is this one.
    pub this_device: bool,
    /// The code of its certified key.
    pub key_code: String,
}

/// This user's devices (verified: certificate chain and key-transparency proof).
#[utoipa::path(get, path = "/api/devices", tag = "device",
    responses((status = 200, body = [OwnDevice]), (status = 502, body = ErrorView)))]
pub async fn devices(State(web): State<Arc<Web>>) -> Result<Json<Vec<OwnDevice>>> {
    let device = web.device().await?;
    let mut out: Vec<OwnDevice> = device
        .user_devices(device.user_id())
        .await?
        .into_iter()
        .map(|d| OwnDevice {
            this_device: d.device_id == device.device_id(),
            key_code: key_code(&d.signature_key),
            device: d.device_id,
        })
        .collect();
    out.sort_by_key(|d| !d.this_device);
    Ok(Json(out))
}

/// A contact and where the relationship stands.
#[derive(Serialize, ToSchema)]
pub struct ContactView {
    /// The user.
    pub user: String,
    /// `requested` (you asked), `pending` (they asked), `accepted`, `declined`.
    pub state: String,
    /// Their devices this device can add to groups.
    pub devices: Vec<String>,
}

fn state_name(state: ContactState) -> &'static str {
    match state {
        ContactState::Requested => "requested",
        ContactState::Pending => "pending",
        ContactState::Accepted => "accepted",
        ContactState::Declined => "declined",
    }
}

/// The contacts.
#[utoipa::path(get, path = "/api/contacts", tag = "contacts",
    responses((status = 200, body = [ContactView])))]
pub async fn contacts(State(web): State<Arc<Web>>) -> Result<Json<Vec<ContactView>>> {
    let device = web.device().await?;
    Ok(Json(
        device
            .contacts()
            .await?
            .into_iter()
            .map(|c| ContactView {
                user: c.user,
                state: state_name(c.state).to_owned(),
                devices: c.devices,
            })
            .collect(),
    ))
}

/// A body naming a user.
#[derive(Deserialize, ToSchema)]
pub struct UserRequest {
    /// The user, `user@domain`.
    pub user: String,
}

fn user_of(request: UserRequest) -> Result<String> {
    let user = request.user.trim().to_owned();
    if user.is_empty() || user.len() > 320 || user.chars().any(char::is_control) {
        return Err(WebError::invalid(
            "no user given",
            "a user is user@domain, e.g. bob@example.org",
        ));
    }
    Ok(user)
}

/// Ask a user to become a contact.
#[utoipa::path(post, path = "/api/contacts", request_body = UserRequest, tag = "contacts",
    responses((status = 204), (status = 404, body = ErrorView, description = "`unknown_user`")))]
pub async fn request_contact(
    State(web): State<Arc<Web>>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<StatusCode> {
    let user = user_of(body(raw)?)?;
    let device = web.device().await?;
    device.request_contact(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Accept a user's contact request.
#[utoipa::path(post, path = "/api/contacts/{user}/accept", tag = "contacts",
    params(("user" = String, Path, description = "The user who asked")),
    responses((status = 204), (status = 404, body = ErrorView, description = "`no_request`")))]
pub async fn accept_contact(
    State(web): State<Arc<Web>>,
    user: std::result::Result<Path<String>, PathRejection>,
) -> Result<StatusCode> {
    let user = path(user)?;
    let device = web.device().await?;
    require_pending(&device, &user).await?;
    device.accept_contact(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Decline a user's contact request.
#[utoipa::path(post, path = "/api/contacts/{user}/decline", tag = "contacts",
    params(("user" = String, Path, description = "The user who asked")),
    responses((status = 204), (status = 404, body = ErrorView, description = "`no_request`")))]
pub async fn decline_contact(
    State(web): State<Arc<Web>>,
    user: std::result::Result<Path<String>, PathRejection>,
) -> Result<StatusCode> {
    let user = path(user)?;
    let device = web.device().await?;
    require_pending(&device, &user).await?;
    device.decline_contact(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A message of a conversation.
#[derive(Clone, Serialize, ToSchema)]
pub struct MessageView {
    /// The sender's user.
    pub user: String,
    /// The sender's device.
    pub device: String,
    /// The text (invalid UTF-8 replaced).
    pub text: String,
    /// When this device received or sent it, Unix seconds.
    pub at: u64,
    /// Sent by this device.
    pub own: bool,
    /// `sent` (this device's, accepted by the Delivery Service) or `received`.
    pub state: String,
}

fn message_view(device: &Device, m: conclave_client::Message) -> MessageView {
    let own = m.sender.user == device.user_id() && m.sender.device == device.device_id();
    MessageView {
        text: String::from_utf8_lossy(&m.body).into_owned(),
        at: m.at,
        state: if own { "sent" } else { "received" }.to_owned(),
        own,
        user: m.sender.user,
        device: m.sender.device,
    }
}

/// A conversation in the list.
#[derive(Serialize, ToSchema)]
pub struct GroupSummary {
    /// The group id (hex).
    pub id: String,
    /// Its first 8 hex digits.
    pub short: String,
    /// The other users in it.
    pub users: Vec<String>,
    /// Messages received since the page last showed it.
    pub unread: u32,
    /// Whether this device is still a member (false: removed or left; history only).
    pub member: bool,
    /// The last message.
    pub last: Option<MessageView>,
}

async fn summary(web: &Web, device: &Device, id: &GroupId, member: bool) -> Result<GroupSummary> {
    let users = users_of(&device.members(id).await?)
        .into_iter()
        .map(|(u, _)| u)
        .filter(|u| u != device.user_id())
        .collect();
    let last = device
        .history(id, 1)
        .await?
        .pop()
        .map(|m| message_view(device, m));
    let key = id.to_string();
    let unread = web
        .notes
        .lock()
        .await
        .unread
        .get(&key)
        .copied()
        .unwrap_or(0);
    Ok(GroupSummary {
        short: key.chars().take(8).collect(),
        id: key,
        users,
        unread,
        member,
        last,
    })
}

/// The conversations, most recent first (groups this device left or was removed from
/// last, marked `member: false`).
#[utoipa::path(get, path = "/api/groups", tag = "groups",
    responses((status = 200, body = [GroupSummary])))]
pub async fn groups(State(web): State<Arc<Web>>) -> Result<Json<Vec<GroupSummary>>> {
    let device = web.device().await?;
    let mut out = Vec::new();
    for id in device.groups().await? {
        out.push(summary(&web, &device, &id, true).await?);
    }
    for id in device.former_groups().await? {
        out.push(summary(&web, &device, &id, false).await?);
    }
    out.sort_by(|a, b| {
        b.member
            .cmp(&a.member)
            .then(
                b.last
                    .as_ref()
                    .map(|m| m.at)
                    .cmp(&a.last.as_ref().map(|m| m.at)),
            )
            .then(a.id.cmp(&b.id))
    });
    Ok(Json(out))
}

/// Create a group (with this user's other devices in it).
#[utoipa::path(post, path = "/api/groups", tag = "groups",
    responses((status = 201, body = GroupSummary)))]
pub async fn create_group(State(web): State<Arc<Web>>) -> Result<(StatusCode, Json<GroupSummary>)> {
    let device = web.device().await?;
    let id = device.create_group().await?;
    Ok((
        StatusCode::CREATED,
        Json(summary(&web, &device, &id, true).await?),
    ))
}

/// Finds a group of this device by its full id; whether the device is still a member.
async fn find_group(device: &Device, text: &str) -> Result<(GroupId, bool)> {
    let unknown = || {
        WebError::from(CliError::new(
            "unknown_group",
            format!("no group {text} on this device"),
            "",
        ))
    };
    let id: GroupId = text.trim().parse().map_err(|_| unknown())?;
    if device.groups().await?.contains(&id) {
        return Ok((id, true));
    }
    if device.former_groups().await?.contains(&id) {
        return Ok((id, false));
    }
    Err(unknown())
}

/// One device of a member: whether it is in the group, and what this device verified.
#[derive(Serialize, ToSchema)]
pub struct MemberDevice {
    /// The device id.
    pub device: String,
    /// Whether it is a member of the group (a device the AS lists may not be yet).
    pub in_group: bool,
    /// The code of its certified key, when the AS serves it.
    pub key_code: Option<String>,
    /// `valid` (chain to the pinned AS root, checked now), `checked_at_join` (only when it
    /// joined: the AS no longer lists it), `failed`, `unknown` (the AS could not be asked).
    pub certificate: String,
    /// `proven` (the transparency proof shows it among the user's devices), `absent`,
    /// `failed`, `unknown`.
    pub transparency: String,
    /// Why, when not `valid`/`proven`.
    pub detail: Option<String>,
}

/// A member (a user) and their devices.
#[derive(Serialize, ToSchema)]
pub struct MemberView {
    /// The user.
    pub user: String,
    /// Their devices: those in the group first.
    pub devices: Vec<MemberDevice>,
}

/// A conversation's details.
#[derive(Serialize, ToSchema)]
pub struct GroupDetail {
    /// The group id (hex).
    pub id: String,
    /// Its first 8 hex digits.
    pub short: String,
    /// Whether this device is still a member.
    pub member: bool,
    /// The epoch this device holds.
    pub epoch: Option<u64>,
    /// The verification code of that epoch: 30 digits from the epoch authenticator, to
    /// compare with the other members out of band (RFC 9420 §8.7, RFC 9750 §8.4.3.1).
    pub code: Option<String>,
    /// The members.
    pub members: Vec<MemberView>,
}

fn member_devices(
    in_group: &[String],
    verified: std::result::Result<Vec<VerifiedDevice>, conclave_client::Error>,
) -> Vec<MemberDevice> {
    let unlisted =
        |device: &String, certificate: &str, transparency: &str, detail: String| MemberDevice {
            device: device.clone(),
            in_group: true,
            key_code: None,
            certificate: certificate.to_owned(),
            transparency: transparency.to_owned(),
            detail: Some(detail),
        };
    match verified {
        Ok(verified) => {
            let mut out: Vec<MemberDevice> = Vec::new();
            for device in in_group {
                match verified.iter().find(|v| &v.device_id == device) {
                    Some(v) => out.push(MemberDevice {
                        device: device.clone(),
                        in_group: true,
                        key_code: Some(key_code(&v.signature_key)),
                        certificate: "valid".into(),
                        transparency: "proven".into(),
                        detail: None,
                    }),
                    None => out.push(unlisted(
                        device,
                        "checked_at_join",
                        "absent",
                        "not among the user's current devices at the AS: revoked or expired".into(),
                    )),
                }
            }
            for v in verified {
                if !in_group.contains(&v.device_id) {
                    out.push(MemberDevice {
                        key_code: Some(key_code(&v.signature_key)),
                        device: v.device_id,
                        in_group: false,
                        certificate: "valid".into(),
                        transparency: "proven".into(),
                        detail: Some(
                            "a device of this user that is not in this group (yet)".into(),
                        ),
                    });
                }
            }
            out
        }
        Err(e @ conclave_client::Error::Verification { .. }) => in_group
            .iter()
            .map(|d| unlisted(d, "failed", "failed", e.to_string()))
            .collect(),
        Err(conclave_client::Error::UnknownUser(_)) => in_group
            .iter()
            .map(|d| {
                unlisted(
                    d,
                    "checked_at_join",
                    "absent",
                    "the AS lists no current device of this user".into(),
                )
            })
            .collect(),
        Err(e) => {
            let e = CliError::from(e);
            in_group
                .iter()
                .map(|d| unlisted(d, "unknown", "unknown", e.to_string()))
                .collect()
        }
    }
}

/// A conversation: members with their devices' certificate and key-transparency status,
/// the epoch and its verification code.
#[utoipa::path(get, path = "/api/groups/{group}", tag = "groups",
    params(("group" = String, Path, description = "The group id (hex)")),
    responses((status = 200, body = GroupDetail), (status = 404, body = ErrorView)))]
pub async fn group(
    State(web): State<Arc<Web>>,
    group: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<GroupDetail>> {
    let device = web.device().await?;
    let (id, member) = find_group(&device, &path(group)?).await?;
    let names = device.members(&id).await?;
    let (epoch, code) = if member {
        let (epoch, code) = device.verification_code(&id).await?;
        (Some(epoch), Some(code))
    } else {
        (None, None)
    };
    let mut members = Vec::new();
    for (user, _) in users_of(&names) {
        let in_group: Vec<String> = names
            .iter()
            .filter(|n| n.user == user)
            .map(|n| n.device.clone())
            .collect();
        let verified = device.user_devices(&user).await;
        members.push(MemberView {
            devices: member_devices(&in_group, verified),
            user,
        });
    }
    let key = id.to_string();
    Ok(Json(GroupDetail {
        short: key.chars().take(8).collect(),
        id: key,
        member,
        epoch,
        code,
        members,
    }))
}

/// A conversation's history: messages received and sent, oldest first.
#[utoipa::path(get, path = "/api/groups/{group}/messages", tag = "groups",
    params(("group" = String, Path, description = "The group id (hex)")),
    responses((status = 200, body = [MessageView]), (status = 404, body = ErrorView)))]
pub async fn messages(
    State(web): State<Arc<Web>>,
    group: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<MessageView>>> {
    let device = web.device().await?;
    let (id, _) = find_group(&device, &path(group)?).await?;
    Ok(Json(
        device
            .history(&id, HISTORY)
            .await?
            .into_iter()
            .map(|m| message_view(&device, m))
            .collect(),
    ))
}

/// `POST /api/groups/{group}/messages` body.
#[derive(Deserialize, ToSchema)]
pub struct SendRequest {
    /// The message.
    pub text: String,
}

/// Send a message; answered once the Delivery Service accepted it.
#[utoipa::path(post, path = "/api/groups/{group}/messages", request_body = SendRequest, tag = "groups",
    params(("group" = String, Path, description = "The group id (hex)")),
    responses((status = 201, body = MessageView), (status = 400, body = ErrorView),
        (status = 409, body = ErrorView, description = "`not_a_member`")))]
pub async fn send(
    State(web): State<Arc<Web>>,
    group: std::result::Result<Path<String>, PathRejection>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<MessageView>)> {
    let request: SendRequest = body(raw)?;
    let device = web.device().await?;
    let (id, member) = find_group(&device, &path(group)?).await?;
    if request.text.trim().is_empty() || request.text.len() > MAX_MESSAGE {
        return Err(WebError::invalid(
            "a message is 1 to 16384 bytes of text",
            "write something (shorter)",
        ));
    }
    if !member {
        return Err(conclave_client::Error::NotAMember.into());
    }
    device.send(&id, request.text.as_bytes()).await?;
    Ok((
        StatusCode::CREATED,
        Json(MessageView {
            user: device.user_id().to_owned(),
            device: device.device_id().to_owned(),
            text: request.text,
            at: now(),
            own: true,
            state: "sent".into(),
        }),
    ))
}

/// Mark a conversation read.
#[utoipa::path(post, path = "/api/groups/{group}/read", tag = "groups",
    params(("group" = String, Path, description = "The group id (hex)")),
    responses((status = 204), (status = 404, body = ErrorView)))]
pub async fn mark_read(
    State(web): State<Arc<Web>>,
    group: std::result::Result<Path<String>, PathRejection>,
) -> Result<StatusCode> {
    let device = web.device().await?;
    let (id, _) = find_group(&device, &path(group)?).await?;
    web.notes.lock().await.unread.remove(&id.to_string());
    Ok(StatusCode::NO_CONTENT)
}

/// Add a user (an accepted contact; all their devices) to the group.
#[utoipa::path(post, path = "/api/groups/{group}/members", request_body = UserRequest, tag = "groups",
    params(("group" = String, Path, description = "The group id (hex)")),
    responses((status = 204), (status = 409, body = ErrorView, description = "`not_a_contact`, `not_a_member`, `no_key_package`")))]
pub async fn add_member(
    State(web): State<Arc<Web>>,
    group: std::result::Result<Path<String>, PathRejection>,
    raw: std::result::Result<Bytes, BytesRejection>,
) -> Result<StatusCode> {
    let user = user_of(body(raw)?)?;
    let device = web.device().await?;
    let (id, member) = find_group(&device, &path(group)?).await?;
    if !member {
        return Err(conclave_client::Error::NotAMember.into());
    }
    device.add_user(&id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a user (all their devices) from the group.
#[utoipa::path(delete, path = "/api/groups/{group}/members/{user}", tag = "groups",
    params(("group" = String, Path, description = "The group id (hex)"),
        ("user" = String, Path, description = "The user")),
    responses((status = 204), (status = 409, body = ErrorView, description = "`not_in_group`, `not_a_member`")))]
pub async fn remove_member(
    State(web): State<Arc<Web>>,
    params: std::result::Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode> {
    let (group, user) = path(params)?;
    let device = web.device().await?;
    let (id, member) = find_group(&device, &group).await?;
    if !member {
        return Err(conclave_client::Error::NotAMember.into());
    }
    device.remove_user(&id, &user).await.map_err(|e| match e {
        // remove_user reports a user with no device in the group this way.
        conclave_client::Error::NotAContact(user) => WebError::from(CliError::new(
            "not_in_group",
            format!("{user} is not in this group"),
            "the Members panel shows who is",
        )),
        e => e.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leave the group (the next member to commit removes this device).
#[utoipa::path(post, path = "/api/groups/{group}/leave", tag = "groups",
    params(("group" = String, Path, description = "The group id (hex)")),
    responses((status = 204), (status = 409, body = ErrorView)))]
pub async fn leave(
    State(web): State<Arc<Web>>,
    group: std::result::Result<Path<String>, PathRejection>,
) -> Result<StatusCode> {
    let device = web.device().await?;
    let (id, member) = find_group(&device, &path(group)?).await?;
    if !member {
        return Err(conclave_client::Error::NotAMember.into());
    }
    device.leave(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A security alert: a device of a contact (or of this user) was added or revoked.
#[derive(Serialize, ToSchema)]
pub struct AlertView {
    /// Its number.
    pub id: u64,
    /// `device_added`, `device_revoked` or `unknown_device` (a device of this user in the
    /// directory that none of the user's devices added).
    pub kind: String,
    /// The user.
    pub user: String,
    /// The device.
    pub device: String,
    /// When it was seen, Unix seconds.
    pub at: u64,
}

/// The alerts not yet dismissed.
#[utoipa::path(get, path = "/api/alerts", tag = "alerts",
    responses((status = 200, body = [AlertView])))]
pub async fn alerts(State(web): State<Arc<Web>>) -> Json<Vec<AlertView>> {
    let notes = web.notes.lock().await;
    Json(
        notes
            .alerts
            .iter()
            .map(|a| AlertView {
                id: a.id,
                kind: a.kind.to_owned(),
                user: a.device.user.clone(),
                device: a.device.device.clone(),
                at: a.at,
            })
            .collect(),
    )
}

/// Dismiss an alert.
#[utoipa::path(post, path = "/api/alerts/{id}/dismiss", tag = "alerts",
    params(("id" = u64, Path, description = "The alert")),
    responses((status = 204), (status = 404, body = ErrorView)))]
pub async fn dismiss_alert(
    State(web): State<Arc<Web>>,
    id: std::result::Result<Path<u64>, PathRejection>,
) -> Result<StatusCode> {
    let id = path(id)?;
    let mut notes = web.notes.lock().await;
    let before = notes.alerts.len();
    notes.alerts.retain(|a| a.id != id);
    if notes.alerts.len() == before {
        return Err(CliError::new("not_found", format!("no alert {id}"), "reload the page").into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What the event stream carries: one JSON object per event.
#[derive(Serialize, ToSchema)]
pub struct Pushed {
    /// `message`, `group_joined`, `member_added`, `member_removed`, `removed_from_group`,
    /// `contact_request`, `contact_accepted`, `contact_declined`, `device_added`,
    /// `device_revoked`, `unknown_device`, `error`, `lagged` (some were dropped: reload
    /// everything).
    #[serde(rename = "type")]
    pub kind: String,
    /// The group (hex), for group events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The user concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The device concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// A message's text, or an error's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl Pushed {
    /// An event of this kind carrying only a text.
    pub fn note(kind: &str, text: Option<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            group: None,
            user: None,
            device: None,
            text,
        }
    }

    /// As the JSON text of one event.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Server-sent events: one `data:` line of JSON ([`Pushed`]) per event of this device, as
/// the Delivery Service pushes them.
#[utoipa::path(get, path = "/api/events", tag = "events",
    responses((status = 200, content_type = "text/event-stream", body = Pushed)))]
pub async fn events(
    State(web): State<Arc<Web>>,
) -> Sse<impl futures_util::Stream<Item = std::result::Result<SseEvent, Infallible>>> {
    let rx = web.events.subscribe();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let text = match rx.recv().await {
            Ok(text) => text,
            Err(broadcast::error::RecvError::Lagged(_)) => Pushed::note("lagged", None).to_json(),
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(SseEvent::default().data(text)), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// This API's OpenAPI document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "session",
    responses((status = 200, description = "OpenAPI 3.1")))]
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_codes_are_five_groups() {
        let key: Vec<u8> = (0u8..32).collect();
        assert_eq!(key_code(&key), "0001 0203 0405 0607 0809");
    }

    #[test]
    fn errors_map_to_statuses_and_page_hints() {
        let e = WebError::from(conclave_client::Error::NotAContact("bob@x".into()));
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert!(e.body.hint.unwrap().contains("Contacts page"));
        let e = WebError::from(conclave_client::Error::UnknownGroup);
        assert_eq!(e.status, StatusCode::NOT_FOUND);
    }
}
