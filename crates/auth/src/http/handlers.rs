//! The handlers: decode, authenticate, call [`Service`](crate::service::Service), encode.

use super::AppState;
use crate::api::{
    self, ErrorCode, HEADER_DEVICE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP,
};
use crate::error::Error;
use crate::service::{Actor, SignedHeaders};
use crate::store::DeviceRecord;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A request body as raw bytes (signed requests are verified over the exact bytes).
type RawBody = Bytes;
/// The feed's query string, or why it does not parse.
type FeedQueryResult = Result<Query<FeedQuery>, QueryRejection>;
/// An epoch range query string, or why it does not parse.
type EpochRangeResult = Result<Query<EpochRange>, QueryRejection>;

fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::new(ErrorCode::BadRequest, e.to_string()))
}

/// Authenticates a signed request.
async fn signed(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<DeviceRecord, Error> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    state
        .service
        .authenticate(
            method.as_str(),
            path,
            SignedHeaders {
                device: header(HEADER_DEVICE),
                timestamp: header(HEADER_TIMESTAMP),
                nonce: header(HEADER_NONCE),
                signature: header(HEADER_SIGNATURE),
            },
            body,
        )
        .await
}

/// Authenticates a request that only `device` itself may make.
async fn signed_by(
    state: &AppState,
    device: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<DeviceRecord, Error> {
    let by = signed(state, method, uri, headers, body).await?;
    if by.device_id != device {
        return Err(Error::new(
            ErrorCode::Forbidden,
            "only the device itself may do this",
        ));
    }
    Ok(by)
}

/// `GET /health`.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "the server is up", body = String)))]
pub async fn health() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

/// `GET /openapi.json`: this API's OpenAPI document.
pub async fn openapi_json() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        super::openapi::document(),
    )
}

/// `GET /v1/root`: the trust anchor.
#[utoipa::path(get, path = "/v1/root", responses((status = 200, description = "the AS trust anchor", body = api::Root)))]
pub async fn root(State(state): State<AppState>) -> Json<api::Root> {
    Json(api::Root {
        certificate: state.service.root_der().to_vec().into(),
    })
}

/// `POST /v1/challenges`.
#[utoipa::path(post, path = "/v1/challenges", responses((status = 200, description = "a single-use registration challenge", body = api::Challenge), (status = 429, description = "the window's challenges for everybody are spent", body = api::ErrorBody)))]
pub async fn challenge(State(state): State<AppState>) -> Result<Json<api::Challenge>, Error> {
    Ok(Json(state.service.challenge().await?))
}

/// `POST /v1/register`.
#[utoipa::path(post, path = "/v1/register", request_body = api::RegisterRequest, responses((status = 201, description = "registered", body = api::Registered), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody), (status = 409, description = "key already registered", body = api::ErrorBody), (status = 429, description = "rate limited", body = api::ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    body: RawBody,
) -> Result<(StatusCode, Json<api::Registered>), Error> {
    let request: api::RegisterRequest = json(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.service.register(&request).await?),
    ))
}

/// `POST /v1/devices/{device}/renew` (signed by the device).
#[utoipa::path(post, path = "/v1/devices/{device}/renew", params(("device" = String, Path, description = "device id")), responses((status = 200, description = "a new chain", body = api::CertificateChain), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody)))]
pub async fn renew(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<api::CertificateChain>, Error> {
    let by = signed_by(&state, &device, &method, &uri, &headers, &body).await?;
    Ok(Json(state.service.renew(&by).await?))
}

/// `PUT /v1/devices/{device}/contact-key` (signed by the device).
#[utoipa::path(put, path = "/v1/devices/{device}/contact-key", params(("device" = String, Path, description = "device id")), request_body = api::ContactKey, responses((status = 204, description = "published"), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody)))]
pub async fn contact_key(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<StatusCode, Error> {
    let by = signed_by(&state, &device, &method, &uri, &headers, &body).await?;
    let contact: api::ContactKey = json(&body)?;
    state.service.set_contact_key(&by, &contact).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/tokens` (signed by any registered device): Privacy Pass token issuance.
#[utoipa::path(post, path = "/v1/tokens", request_body = api::TokenRequests, responses((status = 200, description = "a blind signature for each request, in order", body = api::TokenResponses), (status = 400, description = "bad request", body = api::ErrorBody), (status = 422, description = "a token request of another type, size or key (invalid_token_request, RFC 9578 §6.3)", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody), (status = 404, description = "this AS issues no tokens", body = api::ErrorBody), (status = 429, description = "the user's token budget for the window is spent", body = api::ErrorBody)))]
pub async fn issue_tokens(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<api::TokenResponses>, Error> {
    let by = signed(&state, &method, &uri, &headers, &body).await?;
    let batch: api::TokenRequests = json(&body)?;
    Ok(Json(state.service.issue_tokens(&by, &batch).await?))
}

/// `GET /.well-known/private-token-issuer-directory` (RFC 9578 §4).
#[utoipa::path(get, path = "/.well-known/private-token-issuer-directory", responses((status = 200, description = "the Privacy Pass issuer directory", body = api::IssuerDirectory), (status = 404, description = "this AS issues no tokens", body = api::ErrorBody)))]
pub async fn issuer_directory(State(state): State<AppState>) -> Result<impl IntoResponse, Error> {
    let issuer = state
        .service
        .token_issuer()
        .ok_or_else(|| Error::new(ErrorCode::NotFound, "this AS issues no Privacy Pass tokens"))?;
    // RFC 9578 §4: the directory's media type.
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/private-token-issuer-directory",
        )],
        Json(issuer.directory()),
    ))
}

/// `GET /v1/users/{user}/devices` (signed by any registered device).
#[utoipa::path(get, path = "/v1/users/{user}/devices", params(("user" = String, Path, description = "user@domain")), responses((status = 200, description = "current devices with a transparency proof", body = api::UserDevices), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody), (status = 404, description = "no such user", body = api::ErrorBody), (status = 429, description = "rate limited", body = api::ErrorBody)))]
pub async fn user_devices(
    State(state): State<AppState>,
    Path(user): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<api::UserDevices>, Error> {
    let by = signed(&state, &method, &uri, &headers, &body).await?;
    state.service.limit_lookup(&by).await?;
    Ok(Json(state.service.user_devices(&user).await?))
}

/// `POST /v1/devices/{device}/inbox` (signed by any registered device).
#[utoipa::path(post, path = "/v1/devices/{device}/inbox", params(("device" = String, Path, description = "recipient device id")), request_body = api::RelayPost, responses((status = 201, description = "queued", body = api::RelayPosted), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody), (status = 404, description = "no such device", body = api::ErrorBody), (status = 413, description = "too large", body = api::ErrorBody), (status = 429, description = "inbox full or rate limited", body = api::ErrorBody)))]
pub async fn relay_post(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<(StatusCode, Json<api::RelayPosted>), Error> {
    let by = signed(&state, &method, &uri, &headers, &body).await?;
    state.service.limit_relay_post(&by).await?;
    let post: api::RelayPost = json(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.service.relay_post(&device, &post).await?),
    ))
}

/// `POST /v1/devices/{device}/inbox/fetch` (signed by the device): fetch and delete.
#[utoipa::path(post, path = "/v1/devices/{device}/inbox/fetch", params(("device" = String, Path, description = "own device id")), responses((status = 200, description = "waiting requests, now deleted", body = api::RelayMessages), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody)))]
pub async fn relay_fetch(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<api::RelayMessages>, Error> {
    let by = signed_by(&state, &device, &method, &uri, &headers, &body).await?;
    Ok(Json(state.service.relay_fetch(&by).await?))
}

fn reason(body: &[u8]) -> Result<api::RevokeRequest, Error> {
    if body.is_empty() {
        Ok(api::RevokeRequest::default())
    } else {
        json(body)
    }
}

/// `POST /v1/devices/{device}/revoke` (signed by a device of the same user).
#[utoipa::path(post, path = "/v1/devices/{device}/revoke", params(("device" = String, Path, description = "device id")), request_body(content = Option<api::RevokeRequest>), responses((status = 200, description = "revoked", body = Vec<api::Revocation>), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody), (status = 404, description = "no such device", body = api::ErrorBody)))]
pub async fn revoke_device(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<Vec<api::Revocation>>, Error> {
    let by = signed(&state, &method, &uri, &headers, &body).await?;
    let request = reason(&body)?;
    Ok(Json(
        state
            .service
            .revoke_device(&Actor::Device(by), &device, request.reason.as_deref())
            .await?,
    ))
}

/// `POST /v1/users/{user}/revoke` (signed by one of the user's devices).
#[utoipa::path(post, path = "/v1/users/{user}/revoke", params(("user" = String, Path, description = "user@domain")), request_body(content = Option<api::RevokeRequest>), responses((status = 200, description = "revoked", body = Vec<api::Revocation>), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody), (status = 404, description = "no such user", body = api::ErrorBody)))]
pub async fn revoke_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<Vec<api::Revocation>>, Error> {
    let by = signed(&state, &method, &uri, &headers, &body).await?;
    let request = reason(&body)?;
    Ok(Json(
        state
            .service
            .revoke_user(&Actor::Device(by), &user, request.reason.as_deref())
            .await?,
    ))
}

/// The feed's query string.
#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    /// The cursor: entries with a larger `seq`.
    #[serde(default)]
    after: u64,
    /// At most this many.
    limit: Option<u32>,
}

/// `GET /v1/revocations?after=SEQ&limit=N` (signed by any registered device).
#[utoipa::path(get, path = "/v1/revocations", params(("after" = Option<u64>, Query, description = "cursor"), ("limit" = Option<u32>, Query, description = "page size")), responses((status = 200, description = "revocations after the cursor", body = api::RevocationFeed), (status = 400, description = "bad request", body = api::ErrorBody), (status = 401, description = "unauthenticated", body = api::ErrorBody), (status = 403, description = "forbidden, revoked or expired", body = api::ErrorBody)))]
pub async fn revocations(
    State(state): State<AppState>,
    query: FeedQueryResult,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<api::RevocationFeed>, Error> {
    let Query(query) = query.map_err(|e| Error::new(ErrorCode::BadRequest, e.body_text()))?;
    signed(&state, &method, &uri, &headers, &body).await?;
    Ok(Json(
        state.service.revocations(query.after, query.limit).await?,
    ))
}

/// An epoch range.
#[derive(Debug, Deserialize)]
pub struct EpochRange {
    /// First epoch.
    from: u64,
    /// Last epoch.
    to: u64,
}

fn range(query: Result<Query<EpochRange>, QueryRejection>) -> Result<EpochRange, Error> {
    query
        .map(|Query(q)| q)
        .map_err(|e| Error::new(ErrorCode::BadRequest, e.body_text()))
}

/// `GET /v1/kt/head`: the directory's VRF key, current epoch and root (public).
#[utoipa::path(get, path = "/v1/kt/head", responses((status = 200, description = "VRF key, epoch and root", body = api::KtHead)))]
pub async fn kt_head(State(state): State<AppState>) -> Result<Json<api::KtHead>, Error> {
    Ok(Json(state.service.kt_head().await?))
}

/// `GET /v1/kt/roots?from=A&to=B`: epoch roots (public, for auditors and clients).
#[utoipa::path(get, path = "/v1/kt/roots", params(("from" = u64, Query, description = "first epoch"), ("to" = u64, Query, description = "last epoch")), responses((status = 200, description = "epoch roots", body = api::EpochRoots), (status = 400, description = "bad range", body = api::ErrorBody)))]
pub async fn kt_roots(
    State(state): State<AppState>,
    query: EpochRangeResult,
) -> Result<Json<api::EpochRoots>, Error> {
    let r = range(query)?;
    Ok(Json(state.service.kt_roots(r.from, r.to).await?))
}

/// `GET /v1/kt/audit?from=A&to=B`: the append-only proof between two epochs (public).
#[utoipa::path(get, path = "/v1/kt/audit", params(("from" = u64, Query, description = "first epoch"), ("to" = u64, Query, description = "last epoch")), responses((status = 200, description = "append-only proof", body = api::AuditProof), (status = 400, description = "bad range", body = api::ErrorBody)))]
pub async fn kt_audit(
    State(state): State<AppState>,
    query: EpochRangeResult,
) -> Result<Json<api::AuditProof>, Error> {
    let r = range(query)?;
    Ok(Json(state.service.kt_audit(r.from, r.to).await?))
}
