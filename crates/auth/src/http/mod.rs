//! The HTTP API (axum): JSON bodies, errors as [`crate::api::ErrorBody`] with stable codes.
//!
//! # Sessions: signed requests, not tokens
//!
//! After registration a device authenticates every request by signing it with its MLS
//! signature key (headers `conclave-device`, `conclave-timestamp`, `conclave-nonce`,
//! `conclave-signature`; [`crate::api::request_message`] covers method, path, timestamp,
//! nonce, device id and body).
//! Chosen over bearer tokens because: the key is already proven and certified, so there is
//! no second secret to issue, store (even hashed) or leak; the AS keeps no session state,
//! so any AS node can check any request; a revocation takes effect on the very next request;
//! a captured request cannot be altered, and cannot be replayed: the AS records each
//! (device, nonce) in its database until the timestamp leaves the window (`request_skew`),
//! and refuses a second use with `replayed_request` (401) — on any node, since the record is
//! in the shared database. The cost is one Ed25519 verification, one device look-up and one
//! insert per request.

mod handlers;
pub mod openapi;

use crate::service::Service;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;

/// Shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The AS.
    pub service: Arc<Service>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
}

/// The largest request body accepted (a sealed contact request plus JSON and base64).
const BODY_LIMIT: usize = 256 * 1024;

/// The router of the AS API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(handlers::health))
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi_json))
        .route("/v1/root", get(handlers::root))
        .route("/v1/challenges", post(handlers::challenge))
        .route("/v1/register", post(handlers::register))
        .route("/v1/tokens", post(handlers::issue_tokens))
        .route(
            "/.well-known/private-token-issuer-directory",
            get(handlers::issuer_directory),
        )
        .route("/v1/devices/{device}/renew", post(handlers::renew))
        .route(
            "/v1/devices/{device}/contact-key",
            put(handlers::contact_key),
        )
        .route("/v1/devices/{device}/inbox", post(handlers::relay_post))
        .route(
            "/v1/devices/{device}/inbox/fetch",
            post(handlers::relay_fetch),
        )
        .route("/v1/devices/{device}/revoke", post(handlers::revoke_device))
        .route("/v1/users/{user}/devices", get(handlers::user_devices))
        .route("/v1/users/{user}/revoke", post(handlers::revoke_user))
        .route("/v1/revocations", get(handlers::revocations))
        .route("/v1/kt/head", get(handlers::kt_head))
        .route("/v1/kt/roots", get(handlers::kt_roots))
        .route("/v1/kt/audit", get(handlers::kt_audit))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(typed_refusals))
        .with_state(state)
}

/// Gives the refusals axum makes before a handler runs (a body over [`BODY_LIMIT`] or cut
/// short, an unknown path, a wrong method) the typed JSON [`crate::api::ErrorBody`] every
/// other refusal has, so clients can rely on it; axum answers them in plain text or with
/// an empty body. The status is kept.
async fn typed_refusals(response: Response) -> Response {
    use crate::api::ErrorCode;
    use axum::http::StatusCode;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        _ => ErrorCode::BadRequest,
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let body = crate::api::ErrorBody {
        code,
        message: status.canonical_reason().unwrap_or("refused").to_string(),
    };
    let typed = (status, axum::Json(body)).into_response();
    let (typed_parts, typed_body) = typed.into_parts();
    parts.headers.extend(typed_parts.headers);
    Response::from_parts(parts, typed_body)
}
