//! The auditor (`conclave-as audit`): fetches an AS's epoch roots and append-only proofs
//! over HTTP and checks them (akd `audit_verify`), remembering the roots it has verified so
//! that a later run catches an AS that rewrote an earlier epoch.
//!
//! Plain HTTP only (put a TLS-terminating proxy, or run it next to the AS).

use crate::api;
use crate::transparency::{KtError, verify_audit};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the auditor remembers between runs: every root it has verified.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditState {
    /// Verified roots, consecutive epochs from the first audited one.
    pub roots: Vec<api::EpochRoot>,
}

/// An auditor failure.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The AS could not be reached or answered badly.
    #[error("fetching {0}")]
    Fetch(String),
    /// The AS's history does not verify.
    #[error(transparent)]
    Verify(#[from] KtError),
    /// The AS changed a root the auditor verified before.
    #[error("the AS rewrote epoch {0}: its root differs from the one verified before")]
    Rewritten(u64),
}

/// `GET http://host:port/path`, the body of a 200 answer.
async fn get(base: &str, path: &str) -> Result<Vec<u8>, AuditError> {
    let fail = |m: String| AuditError::Fetch(format!("{base}{path}: {m}"));
    let host = base
        .strip_prefix("http://")
        .ok_or_else(|| fail("only http:// URLs are supported".into()))?
        .trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| fail("malformed answer".into()))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(fail(head.lines().next().unwrap_or_default().to_owned()));
    }
    if head.contains("transfer-encoding: chunked") {
        return Err(fail("chunked answers are not supported".into()));
    }
    Ok(response[split + 4..].to_vec())
}

async fn get_json<T: serde::de::DeserializeOwned>(base: &str, path: &str) -> Result<T, AuditError> {
    let body = get(base, path).await?;
    serde_json::from_slice(&body).map_err(|e| AuditError::Fetch(format!("{path}: {e}")))
}

/// Audits the AS at `base` (`http://host:port`) from the last epoch in `state` (else from
/// the first epoch) to its current epoch: the roots of epochs already verified must be
/// unchanged, and the append-only proof must verify over the roots. On success `state`
/// holds the new roots and the audited range is returned (`None` when nothing was new).
///
/// The append-only proof is fetched in windows of at most
/// [`MAX_AUDIT_EPOCHS`](crate::config::MAX_AUDIT_EPOCHS) epochs (the AS's default limit),
/// each verified over its own roots; consecutive windows share their end epoch, so the
/// chain of proofs covers the whole range. See [`audit_windowed`] for another window.
pub async fn audit(base: &str, state: &mut AuditState) -> Result<Option<(u64, u64)>, AuditError> {
    audit_windowed(base, state, crate::config::MAX_AUDIT_EPOCHS).await
}

/// [`audit`] with append-only proofs of at most `window` epochs each (at least 1), for an
/// AS configured with a smaller `kt_audit_max_epochs`.
pub async fn audit_windowed(
    base: &str,
    state: &mut AuditState,
    window: u64,
) -> Result<Option<(u64, u64)>, AuditError> {
    let window = window.max(1);
    let head: api::KtHead = get_json(base, "/v1/kt/head").await?;
    let from = state.roots.last().map_or(1, |r| r.epoch);
    if head.epoch <= from {
        if let Some(last) = state.roots.last() {
            let served: api::EpochRoots =
                get_json(base, &format!("/v1/kt/roots?from={0}&to={0}", last.epoch)).await?;
            if served.roots.first() != Some(last) {
                return Err(AuditError::Rewritten(last.epoch));
            }
        }
        return Ok(None);
    }
    let mut roots = Vec::new();
    let mut next = from;
    while next <= head.epoch {
        let to = head.epoch.min(next + 9_999);
        let page: api::EpochRoots =
            get_json(base, &format!("/v1/kt/roots?from={next}&to={to}")).await?;
        roots.extend(page.roots);
        next = to + 1;
    }
    // Every root verified before must be served unchanged.
    for pinned in &state.roots {
        if let Some(served) = roots.iter().find(|r| r.epoch == pinned.epoch) {
            if served != pinned {
                return Err(AuditError::Rewritten(pinned.epoch));
            }
        }
    }
    if roots.first().map(|r| r.epoch) != Some(from)
        || roots.last().map(|r| r.epoch) != Some(head.epoch)
    {
        return Err(AuditError::Fetch(format!(
            "the roots of epochs {from} to {} are incomplete",
            head.epoch
        )));
    }
    let mut start = from;
    while start < head.epoch {
        let end = head.epoch.min(start.saturating_add(window));
        let proof: api::AuditProof =
            get_json(base, &format!("/v1/kt/audit?from={start}&to={end}")).await?;
        let first = usize::try_from(start - from).unwrap_or(usize::MAX);
        let last = usize::try_from(end - from).unwrap_or(usize::MAX);
        let window_roots = roots
            .get(first..=last)
            .ok_or_else(|| AuditError::Fetch(format!("no roots for epochs {start} to {end}")))?;
        verify_audit(window_roots, &proof.proof.0).await?;
        start = end;
    }
    let known = state.roots.last().map(|r| r.epoch);
    state.roots.extend(
        roots
            .into_iter()
            .filter(|r| known.is_none_or(|k| r.epoch > k)),
    );
    Ok(Some((from, head.epoch)))
}
