//! KeyPackage pools (RFC 9750 §5.1): sealed blobs uploaded by the owner, claimed once each
//! by whoever holds the claim secret.

use super::{AppState, body, id, json, now_i64, random_id};
use crate::auth;
use crate::error::ApiError;
use crate::store::{ClaimOutcome, NewClaim};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use conclave_api::delivery::{
    Bytes as B64, ClaimRequest, ClaimResponse, CreatePoolRequest, CreatePoolResponse, ErrorBody,
    ErrorCode, PoolStatus, UploadKeyPackagesRequest,
};

/// Most KeyPackages in one upload.
pub const MAX_UPLOAD: usize = 1000;

/// Checks that the pool exists and belongs to the (already authenticated) mailbox.
async fn owned_pool(state: &AppState, mailbox: &[u8], pool: &str) -> Result<Vec<u8>, ApiError> {
    let pool = id(pool, ErrorCode::PoolNotFound)?;
    match state.store.pool(&pool).await? {
        Some((owner, _)) if owner == mailbox => Ok(pool),
        _ => Err(ApiError::NotFound(ErrorCode::PoolNotFound)),
    }
}

/// Create a pool owned by the mailbox (signed with the mailbox key; paid with a Privacy
/// Pass token when the DS asks for them).
#[utoipa::path(post, path = "/v1/mailboxes/{mailbox}/pools", request_body = CreatePoolRequest,
    responses((status = 201, body = CreatePoolResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody,
            description = "Bad signature, or a Privacy Pass token missing, invalid, expired or spent"),
        (status = 404, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Path(mailbox): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CreatePoolResponse>), ApiError> {
    let raw = body(raw)?;
    let mailbox =
        super::mailbox::authorise(&state, &mailbox, &method, &uri, &headers, &raw).await?;
    let request: CreatePoolRequest = json(&raw)?;
    if !(16..=64).contains(&request.claim_secret.0.len()) {
        return Err(ApiError::bad("claim_secret must be 16 to 64 bytes"));
    }
    let pool = random_id()?;
    let hash = auth::secret_hash(&request.claim_secret.0);
    super::paid(&state, &headers, async {
        Ok(state
            .store
            .create_pool(&pool, &mailbox, &hash, now_i64())
            .await?)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatePoolResponse {
            pool_id: B64(pool).to_base64(),
        }),
    ))
}

/// Upload a batch of sealed KeyPackages (signed with the mailbox key).
#[utoipa::path(post, path = "/v1/mailboxes/{mailbox}/pools/{pool}/key-packages",
    request_body = UploadKeyPackagesRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Path((mailbox, pool)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let raw = body(raw)?;
    let mailbox =
        super::mailbox::authorise(&state, &mailbox, &method, &uri, &headers, &raw).await?;
    let pool = owned_pool(&state, &mailbox, &pool).await?;
    let request: UploadKeyPackagesRequest = json(&raw)?;
    if request.key_packages.is_empty() || request.key_packages.len() > MAX_UPLOAD {
        return Err(ApiError::bad(format!(
            "upload 1 to {MAX_UPLOAD} KeyPackages"
        )));
    }
    if request
        .key_packages
        .iter()
        .filter(|k| k.last_resort)
        .count()
        > 1
    {
        return Err(ApiError::bad("at most one last-resort KeyPackage"));
    }
    if request
        .key_packages
        .iter()
        .any(|k| k.sealed.0.is_empty() || k.sealed.0.len() > state.config.max_blob_bytes)
    {
        return Err(ApiError::TooLarge);
    }
    let expires_at =
        i64::try_from(request.expires_at).map_err(|_| ApiError::bad("expires_at out of range"))?;
    if expires_at <= now_i64() {
        return Err(ApiError::bad("expires_at is in the past"));
    }
    let items: Vec<(Vec<u8>, bool)> = request
        .key_packages
        .into_iter()
        .map(|k| (k.sealed.0, k.last_resort))
        .collect();
    state
        .store
        .upload_key_packages(&pool, &items, expires_at)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Count what is left (signed with the mailbox key).
#[utoipa::path(get, path = "/v1/mailboxes/{mailbox}/pools/{pool}",
    responses((status = 200, body = PoolStatus), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path((mailbox, pool)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<PoolStatus>, ApiError> {
    let mailbox = super::mailbox::authorise(&state, &mailbox, &method, &uri, &headers, b"").await?;
    let pool = owned_pool(&state, &mailbox, &pool).await?;
    let count = state.store.pool_count(&pool, now_i64()).await?;
    Ok(Json(PoolStatus {
        available: count.available,
        last_resort: count.last_resort,
    }))
}

/// Claim one KeyPackage with the pool's claim secret: atomic and single-use; the last-resort
/// one only when the rest are gone; never an expired one; rate-limited per pool, across all
/// nodes (the budget is kept in the pool's row).
#[utoipa::path(post, path = "/v1/pools/{pool}/claim", request_body = ClaimRequest,
    responses((status = 200, body = ClaimResponse), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody,
            description = "The pool's free claim rate is spent (`rate_limited`); a Privacy Pass token pays for a claim now",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn claim(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let request: ClaimRequest = json(&body(raw)?)?;
    let pool = id(&pool, ErrorCode::PoolNotFound)?;
    // Past the pool's free rate, a Privacy Pass token pays for the claim: spent first, and
    // given back if there was nothing to claim (but not for a wrong secret: a guess costs).
    let now = auth::now();
    let token = match &state.privacy_pass {
        Some(pp) => pp.token(&headers, now)?,
        None => None,
    };
    if let (Some(pp), Some(token)) = (&state.privacy_pass, &token)
        && !state.store.spend_token(&token.nonce, token.window).await?
    {
        return Err(pp.spent(now));
    }
    // One transaction: a token from the pool's budget (shared by every node; spent before
    // the secret is checked, so guessing secrets is limited too), the secret, one blob.
    let outcome = state
        .store
        .claim(NewClaim {
            pool: &pool,
            secret_hash: &auth::secret_hash(&request.claim_secret.0),
            per_minute: state.config.claims_per_minute,
            now_micros: now_micros(),
            paid: token.is_some(),
        })
        .await;
    if let Some(token) = &token
        && matches!(
            outcome,
            Err(_) | Ok(ClaimOutcome::Empty | ClaimOutcome::NoPool)
        )
    {
        state.store.unspend_token(&token.nonce).await?;
    }
    match outcome? {
        ClaimOutcome::Claimed {
            sealed,
            last_resort,
        } => {
            metrics::counter!("ds_claims_total").increment(1);
            if token.is_some() {
                metrics::counter!("ds_tokens_redeemed_total").increment(1);
            }
            Ok(Json(ClaimResponse {
                sealed: B64(sealed),
                last_resort,
            }))
        }
        ClaimOutcome::Empty => Err(ApiError::NotFound(ErrorCode::PoolEmpty)),
        ClaimOutcome::RateLimited => {
            metrics::counter!("ds_claims_rate_limited_total").increment(1);
            // With `Retry-After` (RFC 9110 §10.2.3), like the node's creation limit: the
            // budget refills one claim per interval of 60 / claims_per_minute seconds, so
            // the next claim is allowed within one interval (or now, paid with a token).
            let interval = 60u64.div_ceil(u64::from(state.config.claims_per_minute.max(1)));
            Err(ApiError::Busy(interval.max(1)))
        }
        ClaimOutcome::WrongSecret => Err(ApiError::Unauthorized(
            ErrorCode::BadClaimSecret,
            "wrong claim secret".into(),
        )),
        ClaimOutcome::NoPool => Err(ApiError::NotFound(ErrorCode::PoolNotFound)),
    }
}

/// Now, in microseconds since the Unix epoch (0 if the clock is before it).
fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
