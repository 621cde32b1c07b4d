//! Mailboxes: anonymous creation, signed fetch and acknowledgement, sealed blobs from
//! others.

use super::{AppState, body, id, json, now_i64, plus, random_id, signed_path};
use crate::auth::{self, Proof};
use crate::error::ApiError;
use crate::store::{EntryKind, MailboxEntryRow};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use conclave_api::delivery::{
    AckRequest, AckResponse, Bytes as B64, CreateMailboxRequest, CreateMailboxResponse, ErrorBody,
    ErrorCode, MailboxEntries, MailboxEntry, MailboxEntryKind, PostedEntry,
};
use serde::Deserialize;

/// The wire form of a stored entry.
pub fn entry(row: MailboxEntryRow) -> MailboxEntry {
    MailboxEntry {
        id: row.id,
        kind: match row.kind {
            EntryKind::Welcome => MailboxEntryKind::Welcome,
            EntryKind::Blob => MailboxEntryKind::Blob,
        },
        data: B64(row.data),
    }
}

/// Verifies a request signed with the mailbox's key; returns the mailbox id.
pub async fn authorise(
    state: &AppState,
    mailbox: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let proof = Proof::from_headers(headers)?;
    let mailbox = id(mailbox, ErrorCode::MailboxNotFound)?;
    let key = state
        .store
        .mailbox_key(&mailbox)
        .await?
        .ok_or(ApiError::NotFound(ErrorCode::MailboxNotFound))?;
    auth::authorise(
        state.store.as_ref(),
        state.config.signature_window_secs,
        auth::now(),
        &auth::scope("m", &mailbox),
        &[&key],
        method.as_str(),
        signed_path(uri),
        body,
        &proof,
    )
    .await?;
    Ok(mailbox)
}

/// Open an anonymous mailbox keyed by a client-chosen Ed25519 key (paid with a Privacy
/// Pass token when the DS asks for them: `GET /v1/privacy-pass`).
#[utoipa::path(post, path = "/v1/mailboxes", request_body = CreateMailboxRequest,
    responses((status = 201, body = CreateMailboxResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody,
            description = "A Privacy Pass token is missing, invalid, expired or spent",
            headers(("WWW-Authenticate" = String, description = "The PrivateToken challenge (RFC 9577 §2.1)"))),
        (status = 429, body = ErrorBody,
            description = "The node's budget of anonymous creations is spent (`rate_limited`)",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreateMailboxResponse>), ApiError> {
    let request: CreateMailboxRequest = json(&body(raw)?)?;
    super::ed25519_key(&request.public_key.0, "public_key")?;
    let mailbox = random_id()?;
    super::paid(&state, &headers, async {
        Ok(state
            .store
            .create_mailbox(&mailbox, &request.public_key.0, now_i64())
            .await?)
    })
    .await?;
    metrics::counter!("ds_mailboxes_created_total").increment(1);
    Ok((
        StatusCode::CREATED,
        Json(CreateMailboxResponse {
            mailbox_id: B64(mailbox).to_base64(),
        }),
    ))
}

/// Query of a fetch.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FetchQuery {
    /// Return entries with a greater id (default 0: every unacknowledged entry).
    pub after: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Fetch unacknowledged entries (signed with the mailbox key).
#[utoipa::path(get, path = "/v1/mailboxes/{mailbox}/entries", params(FetchQuery),
    responses((status = 200, body = MailboxEntries), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn fetch(
    State(state): State<AppState>,
    Path(mailbox): Path<String>,
    query: Result<Query<FetchQuery>, QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<MailboxEntries>, ApiError> {
    let Query(q) = query.map_err(super::bad_query)?;
    let mailbox = authorise(&state, &mailbox, &method, &uri, &headers, b"").await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .fetch_entries(&mailbox, q.after.unwrap_or(0), limit)
        .await?;
    Ok(Json(MailboxEntries {
        entries: rows.into_iter().map(entry).collect(),
    }))
}

/// Acknowledge entries, which deletes them (signed with the mailbox key).
#[utoipa::path(post, path = "/v1/mailboxes/{mailbox}/ack", request_body = AckRequest,
    responses((status = 200, body = AckResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn ack(
    State(state): State<AppState>,
    Path(mailbox): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<AckResponse>, ApiError> {
    let raw = body(raw)?;
    let mailbox = authorise(&state, &mailbox, &method, &uri, &headers, &raw).await?;
    let request: AckRequest = json(&raw)?;
    if request.ids.len() > 1000 {
        return Err(ApiError::bad("at most 1000 ids per acknowledgement"));
    }
    let deleted = state.store.ack_entries(&mailbox, &request.ids).await?;
    Ok(Json(AckResponse { deleted }))
}

/// Post a small sealed blob to a mailbox (anyone may; the owner's contacts learn its id).
#[utoipa::path(post, path = "/v1/mailboxes/{mailbox}/entries",
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = PostedEntry), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn post_blob(
    State(state): State<AppState>,
    Path(mailbox): Path<String>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PostedEntry>), ApiError> {
    let raw = body(raw)?;
    if raw.len() > state.config.max_blob_bytes {
        return Err(ApiError::TooLarge);
    }
    if raw.is_empty() {
        return Err(ApiError::bad("empty blob"));
    }
    let mailbox = id(&mailbox, ErrorCode::MailboxNotFound)?;
    let now = now_i64();
    let row = state
        .store
        .post_blob(
            &mailbox,
            &raw,
            now,
            plus(now, state.config.mailbox_retention_secs),
        )
        .await?
        .ok_or(ApiError::NotFound(ErrorCode::MailboxNotFound))?;
    let posted = PostedEntry { id: row.id };
    state
        .push
        .publish(crate::push::mailbox_event(
            &mailbox,
            row.id,
            MailboxEntryKind::Blob,
            row.data.len(),
        ))
        .await;
    Ok((StatusCode::CREATED, Json(posted)))
}
