//! The HTTP API (axum): routes, shared state, and helpers for bodies and ids.

pub mod group;
pub mod mailbox;
pub mod ops;
pub mod pool;
pub mod ws;

use crate::config::Config;
use crate::error::ApiError;
use crate::push::Push;
use crate::ratelimit::NodeLimiter;
use crate::store::Store;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{get, post};
use conclave_api::delivery::{Bytes as B64, ErrorCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The storage engine.
    pub store: Arc<dyn Store>,
    /// Push to subscribers.
    pub push: Push,
    /// Configuration.
    pub config: Arc<Config>,
    /// Node-wide limit of anonymous creations (mailboxes and groups), when no Privacy Pass
    /// token pays for them.
    pub creations: Arc<NodeLimiter>,
    /// Privacy Pass redemption; `None`: creations are free.
    pub privacy_pass: Option<Arc<crate::privacy_pass::PrivacyPass>>,
    /// The epoch keys this node has read (their immutable part).
    pub epoch_keys: Arc<crate::epoch_keys::EpochKeyCache>,
    /// Becomes `true` when the node stops: push connections close, so their clients
    /// reconnect to a node that serves (see [`crate::Server::stop`]).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// Refuses an anonymous creation with 429 and `Retry-After` when the node's budget is
/// spent (before the body is read). Creations paid with Privacy Pass tokens are limited
/// by the tokens the AS issues each user instead.
async fn creation_limit(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if state.privacy_pass.is_none()
        && let Err(retry_after) = state.creations.allow()
    {
        metrics::counter!("ds_creations_refused_total").increment(1);
        return Err(ApiError::Busy(retry_after));
    }
    Ok(next.run(request).await)
}

/// The router of the whole API. Each route has its own body limit (an oversized body is
/// refused with 413 `payload_too_large` before it is read whole): small JSON for control,
/// `max_message_bytes` for group messages, `max_blob_bytes` for mailbox blobs,
/// `max_upload_bytes` for KeyPackage batches, and `max_body_bytes` for commits (with their
/// Welcomes) and sealed GroupInfos.
pub fn router(state: AppState) -> Router {
    let c = &state.config;
    let control = DefaultBodyLimit::max(c.max_control_bytes);
    let message = DefaultBodyLimit::max(c.max_message_bytes);
    let blob = DefaultBodyLimit::max(c.max_blob_bytes);
    let upload = DefaultBodyLimit::max(c.max_upload_bytes);
    let large = DefaultBodyLimit::max(c.max_body_bytes);
    let limited = from_fn_with_state(state.clone(), creation_limit);
    Router::new()
        .route(
            "/v1/mailboxes",
            post(mailbox::create).layer(control).layer(limited.clone()),
        )
        .route(
            "/v1/mailboxes/{mailbox}/entries",
            get(mailbox::fetch).post(mailbox::post_blob).layer(blob),
        )
        .route(
            "/v1/mailboxes/{mailbox}/ack",
            post(mailbox::ack).layer(control),
        )
        .route(
            "/v1/mailboxes/{mailbox}/pools",
            post(pool::create).layer(control),
        )
        .route("/v1/mailboxes/{mailbox}/pools/{pool}", get(pool::status))
        .route(
            "/v1/mailboxes/{mailbox}/pools/{pool}/key-packages",
            post(pool::upload).layer(upload),
        )
        .route("/v1/pools/{pool}/claim", post(pool::claim).layer(control))
        .route(
            "/v1/groups",
            post(group::create).layer(control).layer(limited),
        )
        .route(
            "/v1/groups/{group}/messages",
            post(group::append).layer(message),
        )
        .route(
            "/v1/groups/{group}/commits",
            post(group::commit).layer(large),
        )
        .route("/v1/groups/{group}/log", get(group::read_log))
        .route(
            "/v1/groups/{group}/group-info",
            get(group::get_group_info)
                .put(group::put_group_info)
                .layer(large),
        )
        .route("/v1/privacy-pass", get(ops::privacy_pass))
        .route("/v1/ws", get(ws::upgrade))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(|| async { ApiError::NotFound(ErrorCode::RouteNotFound) })
        .layer(control)
        .layer(axum::middleware::map_response(typed_refusals))
        .with_state(state)
}

/// Gives the refusals axum makes before a handler runs (a wrong method, a body it could not
/// read) the typed JSON [`conclave_api::delivery::ErrorBody`] every other answer has, so a
/// client can rely on it; the status and headers (`Allow` of a 405) are kept.
async fn typed_refusals(response: Response) -> Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    // A WebSocket upgrade answers 101; only client errors are rewritten.
    if !status.is_client_error() || is_json {
        return response;
    }
    let code = match status {
        StatusCode::NOT_FOUND => ErrorCode::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        _ => ErrorCode::BadRequest,
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let body = conclave_api::delivery::ErrorBody {
        code,
        message: status.canonical_reason().unwrap_or("refused").to_string(),
        current_epoch: None,
    };
    let (typed_parts, typed_body) = (status, axum::Json(body)).into_response().into_parts();
    parts.headers.extend(typed_parts.headers);
    Response::from_parts(parts, typed_body)
}

/// Spends the Privacy Pass token of a creation (when the DS asks for tokens), runs
/// `create`, and gives the token back if `create` fails: a client's token pays only for
/// what was done.
pub async fn paid<T, F>(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    create: F,
) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let Some(pp) = &state.privacy_pass else {
        return create.await;
    };
    let now = crate::auth::now();
    let token = pp.require(headers, now)?;
    if !state.store.spend_token(&token.nonce, token.window).await? {
        metrics::counter!("ds_tokens_refused_total", "why" => "spent").increment(1);
        return Err(pp.spent(now));
    }
    match create.await {
        Ok(done) => {
            metrics::counter!("ds_tokens_redeemed_total").increment(1);
            Ok(done)
        }
        Err(e) => {
            if let Err(undo) = state.store.unspend_token(&token.nonce).await {
                tracing::warn!(error = %undo, "a token stays spent for a failed creation");
            }
            Err(e)
        }
    }
}

/// The body, or 413 when it is over the limit.
pub fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge
        } else {
            ApiError::bad(e.body_text())
        }
    })
}

/// A query string that does not parse: 400 `bad_request` with the typed error body (axum's
/// own rejection would answer plain text).
pub fn bad_query(e: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::bad(format!("invalid query: {}", e.body_text()))
}

/// Parses a JSON body.
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("invalid JSON: {e}")))
}

/// Decodes a base64url id from a path; a malformed id names nothing, hence 404.
pub fn id(text: &str, not_found: ErrorCode) -> Result<Vec<u8>, ApiError> {
    B64::from_base64(text)
        .filter(|b| !b.0.is_empty() && b.0.len() <= 256)
        .map(|b| b.0)
        .ok_or(ApiError::NotFound(not_found))
}

/// The path and query that were signed.
pub fn signed_path(uri: &Uri) -> &str {
    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
}

/// A fresh random id of 16 bytes.
pub fn random_id() -> Result<Vec<u8>, ApiError> {
    let mut id = vec![0u8; 16];
    getrandom::fill(&mut id)
        .map_err(|_| ApiError::Store(crate::error::StoreError::Corrupt("no randomness")))?;
    Ok(id)
}

/// Checks that bytes are a usable Ed25519 public key.
pub fn ed25519_key(bytes: &[u8], what: &str) -> Result<(), ApiError> {
    <[u8; 32]>::try_from(bytes)
        .ok()
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(&k).ok())
        .map(|_| ())
        .ok_or_else(|| ApiError::bad(format!("{what} is not an Ed25519 public key")))
}

/// Now, in Unix seconds, as stored.
pub fn now_i64() -> i64 {
    i64::try_from(crate::auth::now()).unwrap_or(i64::MAX)
}

/// Adds seconds to a timestamp without overflow.
pub fn plus(now: i64, secs: u64) -> i64 {
    now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
}
