//! A running AS in this process: opens the store, the CA and the key directory, starts the
//! key-transparency publisher and the purge of expired sign-in state, and serves HTTP (or
//! HTTPS). The `conclave-as` binary, `conclave serve` and the end-to-end tests all start
//! the AS through [`start`], so they run the same server.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = conclave_as::server::Options::sqlite("as.db", "as-keys");
//! let server = conclave_as::server::start(options).await?;
//! println!("AS on http://{}", server.addr);
//! server.stop().await;
//! # Ok(())
//! # }
//! ```

use crate::ca::Ca;
use crate::config::Config;
use crate::oidc::Oidc;
use crate::service::{Service, system_clock};
use crate::store::Store;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::transparency::{Transparency, VrfKey};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the AS keeps its state and how it serves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Address to listen on (port 0: any free port; see [`Server::addr`]).
    pub listen: SocketAddr,
    /// The SQLite file, used unless `postgres` is set.
    pub db: PathBuf,
    /// A PostgreSQL URL.
    pub postgres: Option<String>,
    /// Directory of the CA, VRF and Privacy Pass issuer keys (created on first start).
    pub keys: PathBuf,
    /// OpenID Connect configuration file (see `conclave-as --oidc`); none by default:
    /// sign-in by invitation only.
    pub oidc: Option<PathBuf>,
    /// Issuance settings.
    pub config: Config,
    /// TLS certificate chain and key (PEM files); plain HTTP without.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// This node's name in the key-transparency publisher lease (see `conclave-as
    /// --node-id`); `None`: `sqlite` on SQLite, random on PostgreSQL.
    pub node_id: Option<String>,
}

impl Options {
    /// An AS on a SQLite file, listening on a free loopback port, invitations only.
    pub fn sqlite(db: impl Into<PathBuf>, keys: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db: db.into(),
            postgres: None,
            keys: keys.into(),
            oidc: None,
            config: Config::default(),
            tls: None,
            node_id: None,
        }
    }
}

/// Why the AS did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store did not open (or migrate).
    #[error("AS store: {0}")]
    Store(String),
    /// The OpenID Connect configuration is unusable.
    #[error("AS OpenID Connect configuration: {0}")]
    Oidc(String),
    /// The CA or VRF key could not be loaded or created.
    #[error("AS keys in {path}: {reason}")]
    Keys {
        /// The key directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// The key directory could not be replayed from the store.
    #[error("AS key transparency: {0}")]
    Transparency(String),
    /// The TLS certificate or key is unusable.
    #[error("AS TLS: {0}")]
    Tls(String),
    /// The address could not be bound.
    #[error("AS listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running AS. Dropping it leaves the server running until the runtime ends; call
/// [`Server::stop`] to shut it down.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Whether it serves HTTPS.
    pub tls: bool,
    /// The service (for operator tasks in the same process: invitations, revocations).
    pub service: Arc<Service>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// The base URL, `http://addr` or `https://addr`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops serving (open requests finish), stops the background tasks and hands the
    /// key-transparency lease back so that another node can publish at once.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.finish().await;
    }

    /// Serves until `signal` completes, then stops as [`Server::stop`] does; returns the
    /// serving error, if serving failed.
    pub async fn wait(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let result = tokio::select! {
            () = signal => None,
            r = &mut self.serving => Some(r),
        };
        match result {
            Some(r) => {
                self.stop_background().await;
                r.unwrap_or_else(|e| Err(std::io::Error::other(e)))
            }
            None => {
                self.stop().await;
                Ok(())
            }
        }
    }

    async fn finish(mut self) {
        // Graceful: axum stops accepting and lets open requests complete, bounded so a
        // stuck connection cannot hold the stop forever.
        if tokio::time::timeout(Duration::from_secs(5), &mut self.serving)
            .await
            .is_err()
        {
            self.serving.abort();
        }
        self.stop_background().await;
    }

    async fn stop_background(&mut self) {
        for task in self.background.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Err(e) = self.service.release_kt_lease().await {
            tracing::warn!(error = %e, "could not release the key-transparency lease");
        }
    }
}

/// Opens the AS's state — store (migrated), CA, OpenID Connect issuers, key directory
/// replayed from the store — without serving it: for operator tasks on the database of a
/// running or stopped AS (invitations, revocations), whose changes reach the key directory
/// through the outbox that the serving node drains.
pub async fn open(options: &Options) -> Result<Service, StartError> {
    let oidc = match &options.oidc {
        Some(path) => Oidc::load(path)
            .await
            .map_err(|e| StartError::Oidc(e.to_string()))?,
        None => Oidc::default(),
    };
    let store: Arc<dyn Store> = match &options.postgres {
        Some(url) => Arc::new(
            PostgresStore::connect(url)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?,
        ),
        None => Arc::new(
            SqliteStore::open(&options.db)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?,
        ),
    };
    let keys_error = |e: &dyn std::fmt::Display| StartError::Keys {
        path: options.keys.clone(),
        reason: e.to_string(),
    };
    let clock = system_clock();
    let ca = Ca::load_or_create(&options.keys, clock()).map_err(|e| keys_error(&e))?;
    let vrf = VrfKey::load_or_create(&options.keys.join("vrf.key")).map_err(|e| keys_error(&e))?;
    let kt = match (&options.node_id, &options.postgres) {
        (Some(node), _) => Transparency::open_as(store.as_ref(), vrf, node.clone()).await,
        // One file, one node: a restarted server takes its lease back at once.
        (None, None) => Transparency::open_as(store.as_ref(), vrf, "sqlite".into()).await,
        (None, Some(_)) => Transparency::open(store.as_ref(), vrf).await,
    }
    .map_err(|e| StartError::Transparency(e.to_string()))?;
    let issuer = crate::tokens::Issuer::load_or_create(&options.keys.join("privacy-pass.der"))
        .map_err(|e| keys_error(&e))?;
    Ok(Service::new(store, ca, oidc, options.config.clone(), clock, kt).with_token_issuer(issuer))
}

/// Opens the AS's state and serves it.
pub async fn start(options: Options) -> Result<Server, StartError> {
    let tls_config = match &options.tls {
        Some((cert, key)) => {
            Some(crate::tls::server_config(cert, key).map_err(|e| StartError::Tls(e.to_string()))?)
        }
        None => None,
    };
    let service = Arc::new(open(&options).await?);
    let listener = bind(options.listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: options.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: options.listen,
        source,
    })?;
    // Publishes what a crash left in the key-transparency outbox, then keeps draining it
    // (or catching up with the lease holder).
    let publisher = service.start_kt_publisher().await;
    let purger = {
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = service.store().purge_expired(service.now()).await {
                    tracing::warn!(error = %e, "purge failed");
                }
            }
        })
    };
    let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async {
        let _ = rx.await;
    };
    let serving = {
        let service = Arc::clone(&service);
        match tls_config {
            Some(config) => {
                let listener = crate::tls::TlsListener::new(listener, config)
                    .map_err(|e| StartError::Tls(e.to_string()))?;
                tokio::spawn(crate::serve(listener, service, signal))
            }
            None => tokio::spawn(crate::serve(listener, service, signal)),
        }
    };
    tracing::info!(address = %addr, "conclave-as listening");
    Ok(Server {
        addr,
        tls: options.tls.is_some(),
        service,
        shutdown: Some(shutdown),
        serving,
        background: vec![publisher, purger],
    })
}

/// Binds `addr`, retrying briefly: the port of a server that just stopped on it (a restart
/// on the same address) can take a moment to be released.
async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for _ in 0..30 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && addr.port() != 0 => {
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("bind failed")))
}
