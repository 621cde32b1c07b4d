//! The handlers: decode, authenticate, call [`Service`](crate::service::Service), encode.

use super::AppState;
use crate::api::{self, ErrorCode, HEADER_DEVICE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use crate::error::Error;
use crate::service::Actor;
use crate::store::DeviceRecord;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde::de::DeserializeOwned;

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
            header(HEADER_DEVICE),
            header(HEADER_TIMESTAMP),
            header(HEADER_SIGNATURE),
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
pub async fn health() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match &state.metrics {
        Some(handle) => (StatusCode::OK, handle.render()),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

/// `GET /v1/root`: the trust anchor.
pub async fn root(State(state): State<AppState>) -> Json<api::Root> {
    Json(api::Root {
        certificate: state.service.root_der().to_vec().into(),
    })
}

/// `POST /v1/challenges`.
pub async fn challenge(State(state): State<AppState>) -> Result<Json<api::Challenge>, Error> {
    Ok(Json(state.service.challenge().await?))
}

/// `POST /v1/register`.
pub async fn register(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<api::Registered>), Error> {
    let request: api::RegisterRequest = json(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.service.register(&request).await?),
    ))
}

/// `POST /v1/devices/{device}/renew` (signed by the device).
pub async fn renew(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::CertificateChain>, Error> {
    let by = signed_by(&state, &device, &method, &uri, &headers, &body).await?;
    Ok(Json(state.service.renew(&by).await?))
}

/// `PUT /v1/devices/{device}/contact-key` (signed by the device).
pub async fn contact_key(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, Error> {
    let by = signed_by(&state, &device, &method, &uri, &headers, &body).await?;
    let contact: api::ContactKey = json(&body)?;
    state.service.set_contact_key(&by, &contact).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/users/{user}/devices` (signed by any registered device).
pub async fn user_devices(
    State(state): State<AppState>,
    Path(user): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::UserDevices>, Error> {
    signed(&state, &method, &uri, &headers, &body).await?;
    Ok(Json(state.service.user_devices(&user).await?))
}

/// `POST /v1/devices/{device}/inbox` (signed by any registered device).
pub async fn relay_post(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<api::RelayPosted>), Error> {
    signed(&state, &method, &uri, &headers, &body).await?;
    let post: api::RelayPost = json(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(state.service.relay_post(&device, &post).await?),
    ))
}

/// `POST /v1/devices/{device}/inbox/fetch` (signed by the device): fetch and delete.
pub async fn relay_fetch(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
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
pub async fn revoke_device(
    State(state): State<AppState>,
    Path(device): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
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
pub async fn revoke_user(
    State(state): State<AppState>,
    Path(user): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
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
pub async fn revocations(
    State(state): State<AppState>,
    Query(query): Query<FeedQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<api::RevocationFeed>, Error> {
    signed(&state, &method, &uri, &headers, &body).await?;
    Ok(Json(
        state.service.revocations(query.after, query.limit).await?,
    ))
}
