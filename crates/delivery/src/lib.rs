//! # conclave-ds
//!
//! The Conclave Delivery Service (RFC 9750 §6): pseudonymous mailboxes, sealed KeyPackage
//! pools, group logs with one commit per epoch, fan-out on read, on SQLite or PostgreSQL
//! (+ NATS). It never holds a byte the Authentication Service issued, nor a name: see
//! `DESIGN.md`, "The system: who knows what".
//!
//! ## Authorisation without identities
//!
//! Every request on a mailbox is signed with the mailbox key the client chose when it opened
//! the mailbox anonymously. Every request on a group is signed with the *group auth key* of
//! an epoch, an Ed25519 key that members derive from the epoch's MLS exporter secret, so
//! only members of that epoch hold it and the DS learns only "a member of epoch e". See
//! [`auth`] for the signed bytes, the timestamp window and the nonce store.
//!
//! ## How an external commit is authorised without the DS learning who makes it
//!
//! An external joiner (RFC 9420 §12.4.3.2; a device rejoining after losing its state, or a
//! new device of a user) does not hold epoch *e*'s exporter secret, so it cannot sign with
//! the group auth key. Members therefore publish, with the sealed GroupInfo of epoch *e*
//! ([`conclave_api::delivery::SealedGroupInfo`]), an *external commit key*: a fresh Ed25519
//! public key whose private half travels **inside** the sealed bundle, next to the
//! GroupInfo. The bundle is sealed under a key the members give only to those allowed to
//! join externally (for instance a key held by the user's self group). Whoever can open the
//! bundle can sign a commit for epoch *e* with the external commit key; the DS verifies that
//! signature exactly as it verifies the group auth key, applies the same epoch
//! compare-and-set, and so learns neither who opened the bundle nor who joined. A member
//! revokes the capability by committing (a new epoch has no external key until a new bundle
//! is published) or by replacing the bundle. The commit itself is an ordinary MLS external
//! commit, checked by the members, not by the DS.
//!
//! ## Layout
//! - [`store`]: the [`store::Store`] trait, SQLite and PostgreSQL engines, migrations;
//! - [`http`]: the axum API; [`auth`]: request signatures; [`mls`]: the framing header;
//! - [`push`]: WebSocket fan-out, across nodes through NATS; [`retention`]: the pruner;
//! - [`privacy_pass`]: anonymous tokens that pay for creations;
//! - [`tls`]: HTTPS and WSS with rustls; [`ratelimit`]: token buckets;
//! - [`config`]: flags and environment.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod epoch_keys;
pub mod error;
pub mod http;
pub mod mls;
pub mod privacy_pass;
pub mod push;
pub mod ratelimit;
pub mod retention;
pub mod store;
pub mod tls;

use config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use store::Store;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database.
    #[error(transparent)]
    Store(#[from] error::StoreError),
    /// NATS.
    #[error(transparent)]
    Push(#[from] push::PushError),
    /// The listening socket.
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The Privacy Pass issuer key or names.
    #[error(transparent)]
    PrivacyPass(#[from] privacy_pass::SetupError),
    /// The Privacy Pass issuer key file could not be read.
    #[error("{path}: {source}")]
    PrivacyPassKey {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A running DS.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The server task.
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The pruner task, if any.
    pub pruner: Option<tokio::task::JoinHandle<()>>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Push (its counters tell what this node received from NATS).
    pub push: push::Push,
    /// Whether it serves HTTPS (given a certificate and key).
    pub tls: bool,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Stops serving (the database stays as it is): stops accepting, and closes the open
    /// push connections (a connection task outlives the accept loop otherwise).
    pub fn stop(&self) {
        let _ = self.stopping.send(true);
        self.task.abort();
        if let Some(p) = &self.pruner {
            p.abort();
        }
    }
}

/// Opens the store the configuration names, applying its migrations.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, error::StoreError> {
    Ok(match &config.postgres {
        Some(url) => {
            Arc::new(store::postgres::PostgresStore::open(url, config.postgres_connections).await?)
        }
        None => Arc::new(store::sqlite::SqliteStore::open(&config.db).await?),
    })
}

/// The Privacy Pass redemption the configuration asks for, keyed by the store's secret.
async fn privacy_pass(
    config: &Config,
    store: &dyn Store,
) -> Result<Option<Arc<privacy_pass::PrivacyPass>>, StartError> {
    let key = match (&config.privacy_pass_token_key, &config.privacy_pass_key) {
        (Some(key), _) => key.clone(),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).map_err(|source| StartError::PrivacyPassKey {
                path: path.clone(),
                source,
            })?;
            privacy_pass::parse_token_key(&bytes).ok_or(privacy_pass::SetupError::Key)?
        }
        (None, None) => {
            tracing::warn!(
                "no Privacy Pass issuer key: anyone may create mailboxes, pools and groups \
                 (limited per node only)"
            );
            return Ok(None);
        }
    };
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh)
        .map_err(|_| error::StoreError::Corrupt("no randomness for the Privacy Pass secret"))?;
    let secret = store.secret("privacy-pass-context", &fresh).await?;
    Ok(Some(Arc::new(privacy_pass::PrivacyPass::new(
        &key,
        &config.privacy_pass_issuer,
        &config.privacy_pass_origin,
        config.privacy_pass_window_secs,
        secret,
    )?)))
}

/// Opens the store and push, binds the listener (TLS when the configuration names a
/// certificate and key) and serves in a task.
pub async fn start(config: Config) -> Result<Server, StartError> {
    http::ops::prometheus();
    // Read the certificate first: a bad one fails the start before anything else opens.
    let tls_config = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    let push = match &config.nats {
        Some(url) => push::Push::nats(url, config.push_buffer, config.push_inline_limit).await?,
        None => push::Push::local(config.push_buffer, config.push_inline_limit),
    };
    let privacy_pass = privacy_pass(&config, store.as_ref()).await?;
    let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
    let state = http::AppState {
        privacy_pass,
        stopping: stopping_rx,
        epoch_keys: Arc::new(epoch_keys::EpochKeyCache::new(config.epoch_key_cache)),
        store: store.clone(),
        push: push.clone(),
        config: config.clone(),
        creations: Arc::new(ratelimit::NodeLimiter::new(
            config.anonymous_creations_per_minute,
        )),
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let app = http::router(state);
    let tls = tls_config.is_some();
    let task = match tls_config {
        Some(c) => {
            let listener = tls::TlsListener::new(listener, c);
            tokio::spawn(async move { axum::serve(listener, app).await })
        }
        None => tokio::spawn(async move { axum::serve(listener, app).await }),
    };
    let pruner = retention::spawn(store.clone(), config.clone());
    tracing::info!(%addr, tls, "conclave-ds listening");
    Ok(Server {
        addr,
        stopping,
        task,
        pruner,
        store,
        push,
        tls,
    })
}
