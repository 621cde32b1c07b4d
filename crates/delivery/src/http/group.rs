//! Groups and their log (RFC 9750 §5.2, §6): one commit per epoch by compare-and-set,
//! messages signed with the epoch's group auth key, reading authorised by that key.

use super::{AppState, body, id, json, now_i64, plus, signed_path};
use crate::auth::{self, Proof};
use crate::epoch_keys::CachedKey;
use crate::error::ApiError;
use crate::mls::{self, Kind};
use crate::push;
use crate::store::{AppendOutcome, EpochKey, LogKind, LogRow, NewCommit, UsedNonce};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use conclave_api::delivery::{
    Appended, Bytes as B64, CommitRequest, CreateGroupRequest, ErrorBody, ErrorCode,
    GroupInfoResponse, LogEntry, LogEntryKind, LogPage, MailboxEntryKind, SealedGroupInfo,
};
use serde::Deserialize;

/// The wire form of a log row.
pub fn log_entry(row: LogRow) -> LogEntry {
    LogEntry {
        seq: row.seq,
        epoch: row.epoch,
        kind: match row.kind {
            LogKind::Application => LogEntryKind::Application,
            LogKind::Proposal => LogEntryKind::Proposal,
            LogKind::Commit => LogEntryKind::Commit,
            LogKind::ExternalCommit => LogEntryKind::ExternalCommit,
        },
        message: B64(row.message),
    }
}

/// The key of an epoch, or the right refusal: 404 without the group, 409 with its current
/// epoch when the epoch is unknown (not reached yet, or pruned). Its immutable part comes
/// from the node's cache when there; with `external`, the external commit key (which a new
/// sealed GroupInfo replaces) is always read from the store.
pub async fn epoch_key(
    state: &AppState,
    group: &[u8],
    epoch: u64,
    external: bool,
) -> Result<EpochKey, ApiError> {
    if !external && let Some(cached) = state.epoch_keys.get(group, epoch) {
        return Ok(EpochKey {
            auth_key: cached.auth_key,
            external_commit_key: None,
            start_seq: cached.start_seq,
        });
    }
    if let Some(key) = state.store.epoch_key(group, epoch).await? {
        state.epoch_keys.insert(
            group,
            epoch,
            CachedKey {
                auth_key: key.auth_key.clone(),
                start_seq: key.start_seq,
            },
        );
        return Ok(key);
    }
    match state.store.group_state(group).await? {
        Some(s) => Err(ApiError::WrongEpoch(s.epoch)),
        None => Err(ApiError::NotFound(ErrorCode::GroupNotFound)),
    }
}

/// Which key of the epoch signed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    /// The group auth key: a member.
    Member,
    /// The external commit key: whoever opened the sealed GroupInfo.
    External,
}

/// A group request whose signature verified.
struct Authorised {
    /// The group id.
    group: Vec<u8>,
    /// The epoch named in the headers.
    epoch: u64,
    /// That epoch's key.
    key: EpochKey,
    /// Which key signed.
    signer: Signer,
    /// The request's nonce, not yet recorded: a write records it in its own transaction
    /// ([`crate::store::Store::append`], [`NewCommit::nonce`]); other requests call
    /// [`auth::record_nonce`].
    nonce: UsedNonce,
}

/// Verifies a request signed with the group auth key of the epoch in its headers (or, when
/// `external` is allowed, with the epoch's external commit key), and its timestamp; the
/// nonce is returned for the caller to record.
async fn authorise(
    state: &AppState,
    group: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    external: bool,
) -> Result<Authorised, ApiError> {
    let proof = Proof::from_headers(headers)?;
    let epoch = auth::epoch_header(headers)?;
    let group = id(group, ErrorCode::GroupNotFound)?;
    let key = epoch_key(state, &group, epoch, external).await?;
    let mut keys: Vec<&[u8]> = vec![&key.auth_key];
    if let (true, Some(k)) = (external, key.external_commit_key.as_deref()) {
        keys.push(k);
    }
    let (index, nonce) = auth::verify(
        state.config.signature_window_secs,
        auth::now(),
        &auth::scope("g", &group),
        &keys,
        method.as_str(),
        signed_path(uri),
        body,
        &proof,
    )?;
    let signer = if index == 0 {
        Signer::Member
    } else {
        Signer::External
    };
    Ok(Authorised {
        group,
        epoch,
        key,
        signer,
        nonce,
    })
}

/// Checks an MLS message's framing header against the group and epoch of the request.
fn check_header(message: &[u8], group: &[u8], epoch: u64) -> Result<Kind, ApiError> {
    let header = mls::header(message).map_err(|e| match e {
        mls::HeaderError::PublicMessage => {
            ApiError::BadRequest(ErrorCode::PublicMessageRefused, e.to_string())
        }
        _ => ApiError::BadRequest(ErrorCode::InvalidMlsMessage, e.to_string()),
    })?;
    if header.group_id != group || header.epoch != epoch {
        return Err(ApiError::BadRequest(
            ErrorCode::InvalidMlsMessage,
            "the message's group id or epoch differs from the request's".into(),
        ));
    }
    Ok(header.kind)
}

/// Register a group with epoch 0's group auth key (paid with a Privacy Pass token when
/// the DS asks for them; a group id already taken costs nothing).
#[utoipa::path(post, path = "/v1/groups", request_body = CreateGroupRequest,
    responses((status = 201), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody,
            description = "A Privacy Pass token is missing, invalid, expired or spent",
            headers(("WWW-Authenticate" = String, description = "The PrivateToken challenge (RFC 9577 §2.1)"))),
        (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody,
            description = "The node's budget of anonymous creations is spent (`rate_limited`)",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let request: CreateGroupRequest = json(&body(raw)?)?;
    if request.group_id.0.is_empty() || request.group_id.0.len() > 256 {
        return Err(ApiError::bad("group_id must be 1 to 256 bytes"));
    }
    super::ed25519_key(&request.auth_key.0, "auth_key")?;
    super::paid(&state, &headers, async {
        if state
            .store
            .create_group(&request.group_id.0, &request.auth_key.0, now_i64())
            .await?
        {
            Ok(())
        } else {
            Err(ApiError::GroupExists)
        }
    })
    .await?;
    metrics::counter!("ds_groups_created_total").increment(1);
    Ok(StatusCode::CREATED)
}

/// Publishes an accepted entry (its message inline only up to the push limit) and notices
/// of its queued Welcomes (never their bytes: each owner fetches from its cursor).
async fn publish(
    state: &AppState,
    group: &[u8],
    row: LogRow,
    queued: Vec<(Vec<u8>, crate::store::MailboxEntryRow)>,
) {
    let entry = log_entry(row);
    state
        .push
        .publish_group_entry(&push::GroupEntry {
            group_id: group,
            seq: entry.seq,
            epoch: entry.epoch,
            kind: entry.kind,
            message: &entry.message.0,
        })
        .await;
    for (mailbox, row) in queued {
        state
            .push
            .publish(push::mailbox_event(
                &mailbox,
                row.id,
                MailboxEntryKind::Welcome,
                row.data.len(),
            ))
            .await;
    }
}

/// Append an application message or proposal (`application/mls-message`), signed with the
/// key of the message's epoch, which must be current or only just past.
#[utoipa::path(post, path = "/v1/groups/{group}/messages",
    request_body(content = Vec<u8>, content_type = "application/mls-message"),
    responses((status = 201, body = Appended), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn append(
    State(state): State<AppState>,
    Path(group): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Appended>), ApiError> {
    let raw = body(raw)?;
    if raw.len() > state.config.max_message_bytes {
        return Err(ApiError::TooLarge);
    }
    let Authorised {
        group,
        epoch,
        nonce,
        ..
    } = authorise(&state, &group, &method, &uri, &headers, &raw, false).await?;
    let kind = match check_header(&raw, &group, epoch)? {
        Kind::Application => LogKind::Application,
        Kind::Proposal => LogKind::Proposal,
        Kind::Commit => {
            return Err(ApiError::BadRequest(
                ErrorCode::InvalidMlsMessage,
                "commits go to /commits".into(),
            ));
        }
    };
    let now = now_i64();
    let since = now
        .saturating_sub(i64::try_from(state.config.previous_epoch_grace_secs).unwrap_or(i64::MAX));
    match state
        .store
        .append(&group, epoch, kind, &raw, now, since, &nonce)
        .await?
    {
        AppendOutcome::Appended {
            seq,
            epoch: current,
            ..
        } => {
            metrics::counter!("ds_messages_appended_total").increment(1);
            let row = LogRow {
                seq,
                epoch,
                kind,
                message: raw.to_vec(),
            };
            publish(&state, &group, row, Vec::new()).await;
            Ok((
                StatusCode::CREATED,
                Json(Appended {
                    seq,
                    epoch: current,
                }),
            ))
        }
        AppendOutcome::WrongEpoch(current) => Err(ApiError::WrongEpoch(current)),
        AppendOutcome::NoGroup => Err(ApiError::NotFound(ErrorCode::GroupNotFound)),
        AppendOutcome::NoMailbox => Err(ApiError::NotFound(ErrorCode::MailboxNotFound)),
        AppendOutcome::Replay => Err(auth::replay()),
    }
}

/// Submit the commit for the epoch named in the headers, signed with that epoch's key (or
/// its external commit key), with the next epoch's key and the Welcomes. Accepted only if
/// the group is still at that epoch: otherwise 409 with the current epoch.
#[utoipa::path(post, path = "/v1/groups/{group}/commits", request_body = CommitRequest,
    responses((status = 201, body = Appended), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn commit(
    State(state): State<AppState>,
    Path(group): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Appended>), ApiError> {
    let raw = body(raw)?;
    let Authorised {
        group,
        epoch,
        signer,
        nonce,
        ..
    } = authorise(&state, &group, &method, &uri, &headers, &raw, true).await?;
    let request: CommitRequest = json(&raw)?;
    let kind = match signer {
        Signer::Member => {
            if check_header(&request.commit.0, &group, epoch)? != Kind::Commit {
                return Err(ApiError::BadRequest(
                    ErrorCode::InvalidMlsMessage,
                    "not a commit".into(),
                ));
            }
            LogKind::Commit
        }
        // RFC 9420 §12.4.3.2 makes an external commit a PublicMessage; in the clear it would
        // show the DS the joiner's credential, so it comes sealed for the members. The DS
        // checks only that it is not an MLSMessage in the clear, and adds no Welcome: an
        // external commit cannot add members (RFC 9420 §12.2).
        Signer::External => {
            if request.commit.0.is_empty() || mls::is_mls_message(&request.commit.0) {
                return Err(ApiError::BadRequest(
                    ErrorCode::PublicMessageRefused,
                    "an external commit must come in a sealed envelope".into(),
                ));
            }
            if !request.welcomes.is_empty() {
                return Err(ApiError::bad("an external commit carries no Welcome"));
            }
            LogKind::ExternalCommit
        }
    };
    super::ed25519_key(&request.next_auth_key.0, "next_auth_key")?;
    if let Some(gi) = &request.group_info {
        super::ed25519_key(&gi.external_commit_key.0, "external_commit_key")?;
    }
    let mut welcomes = Vec::with_capacity(request.welcomes.len());
    for w in &request.welcomes {
        if !mls::is_welcome(&w.welcome.0) {
            return Err(ApiError::BadRequest(
                ErrorCode::InvalidMlsMessage,
                "not a Welcome".into(),
            ));
        }
        let mailboxes = w
            .mailboxes
            .iter()
            .map(|m| id(m, ErrorCode::MailboxNotFound))
            .collect::<Result<Vec<_>, _>>()?;
        welcomes.push((w.welcome.0.as_slice(), mailboxes));
    }
    let now = now_i64();
    let started = std::time::Instant::now();
    let outcome = state
        .store
        .commit(NewCommit {
            group_id: &group,
            epoch,
            kind,
            message: &request.commit.0,
            next_auth_key: &request.next_auth_key.0,
            welcomes,
            group_info: request
                .group_info
                .as_ref()
                .map(|g| (g.sealed.0.as_slice(), g.external_commit_key.0.as_slice())),
            now,
            welcome_expires_at: plus(now, state.config.mailbox_retention_secs),
            nonce: &nonce,
        })
        .await?;
    metrics::histogram!("ds_commit_seconds").record(started.elapsed().as_secs_f64());
    match outcome {
        AppendOutcome::Appended {
            seq,
            epoch: next,
            queued,
        } => {
            metrics::counter!("ds_commits_accepted_total").increment(1);
            let row = LogRow {
                seq,
                epoch,
                kind,
                message: request.commit.0,
            };
            publish(&state, &group, row, queued).await;
            Ok((StatusCode::CREATED, Json(Appended { seq, epoch: next })))
        }
        AppendOutcome::WrongEpoch(current) => {
            metrics::counter!("ds_commits_refused_total").increment(1);
            Err(ApiError::WrongEpoch(current))
        }
        AppendOutcome::NoGroup => Err(ApiError::NotFound(ErrorCode::GroupNotFound)),
        AppendOutcome::NoMailbox => Err(ApiError::NotFound(ErrorCode::MailboxNotFound)),
        AppendOutcome::Replay => Err(auth::replay()),
    }
}

/// Query of a log read.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// First sequence number to return (default 1).
    pub from: Option<u64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Read the log from a sequence number, signed with an epoch's key: returns that epoch's
/// entries up to and including the commit that ended it, and late messages of the previous
/// epoch appended after the commit that started it.
#[utoipa::path(get, path = "/v1/groups/{group}/log", params(LogQuery),
    responses((status = 200, body = LogPage), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn read_log(
    State(state): State<AppState>,
    Path(group): Path<String>,
    query: Result<Query<LogQuery>, QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Json<LogPage>, ApiError> {
    let Query(q) = query.map_err(super::bad_query)?;
    let Authorised {
        group,
        epoch,
        key,
        nonce,
        ..
    } = authorise(&state, &group, &method, &uri, &headers, b"", false).await?;
    auth::record_nonce(state.store.as_ref(), &nonce).await?;
    let from = q.from.unwrap_or(1).min(i64::MAX as u64);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = state
        .store
        .read_log(&group, epoch, key.start_seq, from, limit)
        .await?;
    let current_epoch = state
        .store
        .group_state(&group)
        .await?
        .map(|s| s.epoch)
        .ok_or(ApiError::NotFound(ErrorCode::GroupNotFound))?;
    Ok(Json(LogPage {
        entries: rows.into_iter().map(log_entry).collect(),
        current_epoch,
    }))
}

/// Store the sealed GroupInfo of the current epoch, signed with its key (RFC 9750 §6.4).
#[utoipa::path(put, path = "/v1/groups/{group}/group-info", request_body = SealedGroupInfo,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_group_info(
    State(state): State<AppState>,
    Path(group): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let raw = body(raw)?;
    let Authorised {
        group,
        epoch,
        nonce,
        ..
    } = authorise(&state, &group, &method, &uri, &headers, &raw, false).await?;
    auth::record_nonce(state.store.as_ref(), &nonce).await?;
    let request: SealedGroupInfo = json(&raw)?;
    super::ed25519_key(&request.external_commit_key.0, "external_commit_key")?;
    if state
        .store
        .put_group_info(
            &group,
            epoch,
            &request.sealed.0,
            &request.external_commit_key.0,
        )
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        let current = state
            .store
            .group_state(&group)
            .await?
            .map(|s| s.epoch)
            .unwrap_or(0);
        Err(ApiError::WrongEpoch(current))
    }
}

/// Fetch the sealed GroupInfo (anonymous: it is sealed for those allowed to join).
#[utoipa::path(get, path = "/v1/groups/{group}/group-info",
    responses((status = 200, body = GroupInfoResponse), (status = 404, body = ErrorBody)))]
pub async fn get_group_info(
    State(state): State<AppState>,
    Path(group): Path<String>,
) -> Result<Json<GroupInfoResponse>, ApiError> {
    let group = id(&group, ErrorCode::GroupNotFound)?;
    let (epoch, sealed) = state
        .store
        .group_info(&group)
        .await?
        .ok_or(ApiError::NotFound(ErrorCode::GroupInfoNotFound))?;
    Ok(Json(GroupInfoResponse {
        epoch,
        sealed: B64(sealed),
    }))
}
