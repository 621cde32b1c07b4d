//! Retention: a background pruner deleting in batches what is past its time — application
//! messages and proposals after the message retention, commits after the (longer) commit
//! retention, epoch keys once no entry they authorised is left, mailbox entries once expired
//! (acknowledged ones are deleted at once), Welcomes no entry refers to, expired KeyPackages
//! and nonces, spent Privacy Pass tokens of windows no longer accepted; and it blurs the times a mechanism no longer needs to the hour
//! ([`crate::store::record_time`]).

use crate::config::Config;
use crate::error::StoreError;
use crate::store::{PruneCutoffs, Pruned, Store};
use std::sync::Arc;
use std::time::Duration;

/// The cut-offs for `now` under `config`.
pub fn cutoffs(config: &Config, now: i64) -> PruneCutoffs {
    let ago = |secs: u64| now.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX));
    PruneCutoffs {
        messages_before: ago(config.message_retention_secs),
        commits_before: ago(config.commit_retention_secs),
        now,
        grace_before: ago(config.previous_epoch_grace_secs),
        spent_tokens_before: crate::privacy_pass::window_of(
            u64::try_from(now).unwrap_or(0),
            config.privacy_pass_window_secs,
        )
        .saturating_sub(1),
        batch: config.prune_batch.max(1),
    }
}

/// Prunes in batches until nothing is left to delete; returns the total.
pub async fn prune(store: &dyn Store, cutoffs: PruneCutoffs) -> Result<Pruned, StoreError> {
    let mut total = Pruned::default();
    loop {
        let p = store.prune(cutoffs).await?;
        total += p;
        if p.total() == 0 {
            return Ok(total);
        }
        // Let other writers in between batches.
        tokio::task::yield_now().await;
    }
}

/// Runs the pruner every `prune_interval_secs` (not at all when 0).
pub fn spawn(store: Arc<dyn Store>, config: Arc<Config>) -> Option<tokio::task::JoinHandle<()>> {
    if config.prune_interval_secs == 0 {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(config.prune_interval_secs));
        loop {
            tick.tick().await;
            let now = crate::http::now_i64();
            match prune(store.as_ref(), cutoffs(&config, now)).await {
                Ok(p) => metrics::counter!("ds_pruned_rows_total").increment(p.total()),
                Err(e) => tracing::warn!(error = %e, "pruning failed"),
            }
        }
    }))
}
