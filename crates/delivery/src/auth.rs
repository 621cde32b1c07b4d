//! Request signatures (the DS's only authentication: no account, no token from the AS).
//!
//! A mailbox request is signed with the mailbox key; a group request with the group auth key
//! of the epoch it names (RFC 9750 §6.2: the DS authorises without learning who the member
//! is). The signed bytes are [`conclave_api::delivery::signing_input`]: method, path with
//! query, SHA-256 of the body, timestamp and nonce. A request is accepted only if its
//! timestamp is within the window around the DS's clock and its nonce was not seen before in
//! that scope; nonces are kept until the window has passed, so a captured request cannot be
//! replayed, on this node or another sharing the database. An append or a commit records
//! its nonce in the transaction of the write itself ([`verify`], then the store), so the
//! write and the spent nonce commit together; other requests record it on its own
//! ([`authorise`]).

use crate::error::ApiError;
use crate::store::{Store, UsedNonce};
use axum::http::HeaderMap;
use conclave_api::delivery::{Bytes, ErrorCode, headers, signing_input};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature headers of a request.
#[derive(Debug, Clone)]
pub struct Proof {
    /// Unix seconds.
    pub timestamp: u64,
    /// The nonce.
    pub nonce: Vec<u8>,
    /// The signature.
    pub signature: [u8; 64],
}

fn missing(what: &str) -> ApiError {
    ApiError::Unauthorized(
        ErrorCode::MissingSignature,
        format!("missing or malformed {what}"),
    )
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| missing(name))
}

impl Proof {
    /// Reads the signature headers.
    pub fn from_headers(h: &HeaderMap) -> Result<Self, ApiError> {
        let timestamp = header(h, headers::TIMESTAMP)?
            .parse()
            .map_err(|_| missing(headers::TIMESTAMP))?;
        let nonce = Bytes::from_base64(header(h, headers::NONCE)?)
            .ok_or_else(|| missing(headers::NONCE))?
            .0;
        let signature = Bytes::from_base64(header(h, headers::SIGNATURE)?)
            .and_then(|b| <[u8; 64]>::try_from(b.0).ok())
            .ok_or_else(|| missing(headers::SIGNATURE))?;
        Self::new(timestamp, nonce, signature)
    }

    /// A proof from its parts (WebSocket subscriptions carry them in JSON).
    pub fn new(timestamp: u64, nonce: Vec<u8>, signature: [u8; 64]) -> Result<Self, ApiError> {
        if !(16..=64).contains(&nonce.len()) {
            return Err(missing("nonce (16 to 64 bytes)"));
        }
        Ok(Self {
            timestamp,
            nonce,
            signature,
        })
    }
}

/// Reads the epoch header of a group request.
pub fn epoch_header(h: &HeaderMap) -> Result<u64, ApiError> {
    let epoch: u64 = header(h, headers::EPOCH)?
        .parse()
        .map_err(|_| missing(headers::EPOCH))?;
    // Epochs are stored as signed 64-bit integers.
    if epoch > (i64::MAX as u64) / 2 {
        return Err(ApiError::bad("epoch out of range"));
    }
    Ok(epoch)
}

/// Whether `signature` is a valid Ed25519 signature by `public_key` (32 bytes) over the
/// request.
pub fn signature_valid(
    public_key: &[u8],
    method: &str,
    path_and_query: &str,
    body: &[u8],
    proof: &Proof,
) -> bool {
    let Ok(key) = <[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    let body_hash: [u8; 32] = Sha256::digest(body).into();
    let input = signing_input(
        method,
        path_and_query,
        &body_hash,
        proof.timestamp,
        &proof.nonce,
    );
    key.verify_strict(&input, &Signature::from_bytes(&proof.signature))
        .is_ok()
}

/// Checks a request against one or more acceptable keys, then its freshness: the timestamp
/// window, and the nonce (recorded in `scope` only after the signature verified, so nobody
/// else can burn a client's nonces). Returns the index of the key that verified.
///
/// For a request whose effect is a write, use [`verify`] instead and hand the nonce to the
/// store with the write ([`crate::store::Store::append`], [`crate::store::NewCommit`]), so
/// the nonce and the write commit together.
#[allow(clippy::too_many_arguments)]
pub async fn authorise(
    store: &dyn Store,
    window_secs: u64,
    now: u64,
    scope: &[u8],
    keys: &[&[u8]],
    method: &str,
    path_and_query: &str,
    body: &[u8],
    proof: &Proof,
) -> Result<usize, ApiError> {
    let (index, nonce) = verify(
        window_secs,
        now,
        scope,
        keys,
        method,
        path_and_query,
        body,
        proof,
    )?;
    record_nonce(store, &nonce).await?;
    Ok(index)
}

/// Checks a request's timestamp window and its signature against one or more acceptable
/// keys, without recording its nonce. Returns the index of the key that verified and the
/// nonce to record, in `scope`, in the transaction of the write the request asks for.
#[allow(clippy::too_many_arguments)]
pub fn verify(
    window_secs: u64,
    now: u64,
    scope: &[u8],
    keys: &[&[u8]],
    method: &str,
    path_and_query: &str,
    body: &[u8],
    proof: &Proof,
) -> Result<(usize, UsedNonce), ApiError> {
    if proof.timestamp.abs_diff(now) > window_secs {
        return Err(ApiError::Unauthorized(
            ErrorCode::StaleTimestamp,
            "timestamp outside the accepted window".into(),
        ));
    }
    let Some(index) = keys
        .iter()
        .position(|k| signature_valid(k, method, path_and_query, body, proof))
    else {
        return Err(ApiError::Unauthorized(
            ErrorCode::BadSignature,
            "signature does not verify".into(),
        ));
    };
    // Kept until the timestamp can no longer pass the window.
    let expires_at = i64::try_from(
        proof
            .timestamp
            .saturating_add(window_secs)
            .saturating_add(1),
    )
    .unwrap_or(i64::MAX);
    Ok((
        index,
        UsedNonce {
            scope: scope.to_vec(),
            nonce: proof.nonce.clone(),
            expires_at,
        },
    ))
}

/// Records a verified request's nonce in a transaction of its own (for requests that
/// write nothing else); a nonce seen before is refused as a replay.
pub async fn record_nonce(store: &dyn Store, nonce: &UsedNonce) -> Result<(), ApiError> {
    if store
        .use_nonce(&nonce.scope, &nonce.nonce, nonce.expires_at)
        .await?
    {
        Ok(())
    } else {
        Err(replay())
    }
}

/// The refusal of a replayed request: 401 `replay`.
pub fn replay() -> ApiError {
    ApiError::Unauthorized(ErrorCode::Replay, "nonce already used".into())
}

/// A scope of nonces: the key's kind and id, so two mailboxes or groups never collide.
pub fn scope(kind: &str, id: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(kind.len() + 1 + id.len());
    s.extend_from_slice(kind.as_bytes());
    s.push(0);
    s.extend_from_slice(id);
    s
}

/// SHA-256 of a claim secret, as stored.
pub fn secret_hash(secret: &[u8]) -> Vec<u8> {
    Sha256::digest(secret).to_vec()
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Current Unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
