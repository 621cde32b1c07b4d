//! `conclave-as`: runs the Authentication Service, or performs an operator task on its
//! database (`invite`, `revoke`).
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use conclave_as::auditor::{self, AuditState};
use conclave_as::ca::Ca;
use conclave_as::config::Config;
use conclave_as::oidc::Oidc;
use conclave_as::service::{Actor, Service, system_clock};
use conclave_as::store::Store;
use conclave_as::store::postgres::PostgresStore;
use conclave_as::store::sqlite::SqliteStore;
use conclave_as::transparency::{Transparency, VrfKey};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The Conclave Authentication Service.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address to listen on.
    #[arg(
        long,
        env = "CONCLAVE_AS_LISTEN",
        default_value = "127.0.0.1:8443",
        global = true
    )]
    listen: SocketAddr,
    /// SQLite database file (the default engine).
    #[arg(
        long,
        env = "CONCLAVE_AS_DB",
        default_value = "conclave-as.db",
        global = true
    )]
    db: PathBuf,
    /// PostgreSQL URL; when given, used instead of SQLite.
    #[arg(long, env = "CONCLAVE_AS_POSTGRES", global = true)]
    postgres: Option<String>,
    /// Directory of the CA keys and certificates (created on first start).
    #[arg(
        long,
        env = "CONCLAVE_AS_KEYS",
        default_value = "conclave-as-keys",
        global = true
    )]
    keys: PathBuf,
    /// OpenID Connect configuration file (JSON: issuers, audiences, claim, JWKS file).
    #[arg(long, env = "CONCLAVE_AS_OIDC", global = true)]
    oidc: Option<PathBuf>,
    /// Device certificate lifetime, seconds.
    #[arg(long, env = "CONCLAVE_AS_CERT_LIFETIME", default_value_t = 30 * 86_400, global = true)]
    certificate_lifetime: u64,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(
        long,
        env = "CONCLAVE_AS_TLS_CERT",
        requires = "tls_key",
        global = true
    )]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, PKCS#8, SEC1 or PKCS#1).
    #[arg(
        long,
        env = "CONCLAVE_AS_TLS_KEY",
        requires = "tls_cert",
        global = true
    )]
    tls_key: Option<PathBuf>,
    /// This node's name in the key-transparency publisher lease, unique per node. Default:
    /// `sqlite` with SQLite (one file, one node: a restarted server takes its lease back at
    /// once), a random name with PostgreSQL (give each node a stable one, such as its host
    /// name, so that a restarted node need not wait for its old lease to expire).
    #[arg(long, env = "CONCLAVE_AS_NODE_ID", global = true)]
    node_id: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Create a single-use invitation code for a user and print it.
    Invite {
        /// The user, user@domain.
        #[arg(long)]
        user: String,
        /// Lifetime of the code, seconds.
        #[arg(long, default_value_t = 7 * 86_400)]
        lifetime: u64,
    },
    /// Audit an AS's key directory: check its append-only proofs from the last audited
    /// epoch to its current one, and that no epoch verified before was rewritten.
    Audit {
        /// The AS, http://host:port.
        #[arg(long)]
        url: String,
        /// Where the auditor keeps the roots it verified (JSON; created if absent).
        #[arg(long, default_value = "conclave-as-audit.json")]
        state: PathBuf,
    },
    /// Revoke a device or a user (with all their devices).
    Revoke {
        /// The device id.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        device: Option<String>,
        /// The user.
        #[arg(long)]
        user: Option<String>,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conclave-as: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(Command::Audit { url, state }) = &cli.command {
        return audit(url, state).await;
    }
    let store: Arc<dyn Store> = match &cli.postgres {
        Some(url) => Arc::new(PostgresStore::connect(url).await?),
        None => Arc::new(SqliteStore::open(&cli.db).await?),
    };
    let clock = system_clock();
    let ca = Ca::load_or_create(&cli.keys, clock())?;
    let oidc = match &cli.oidc {
        Some(path) => Oidc::from_file(path)?,
        None => Oidc::default(),
    };
    let config = Config {
        certificate_lifetime: cli.certificate_lifetime,
        ..Config::default()
    };
    let vrf = VrfKey::load_or_create(&cli.keys.join("vrf.key"))?;
    let kt = match (&cli.node_id, &cli.postgres) {
        (Some(node), _) => Transparency::open_as(store.as_ref(), vrf, node.clone()).await?,
        (None, None) => Transparency::open_as(store.as_ref(), vrf, "sqlite".into()).await?,
        (None, Some(_)) => Transparency::open(store.as_ref(), vrf).await?,
    };
    let service = Arc::new(Service::new(store, ca, oidc, config, clock, kt));
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(cli.listen).await?;
            tracing::info!(address = %listener.local_addr()?, "conclave-as listening");
            // Publishes what a crash left in the key-transparency outbox, then keeps
            // draining it (or catching up with the lease holder) in the background.
            let publisher = service.start_kt_publisher().await;
            let purger = Arc::clone(&service);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    if let Err(e) = purger.store().purge_expired(purger.now()).await {
                        tracing::warn!(error = %e, "purge failed");
                    }
                }
            });
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            let serving = Arc::clone(&service);
            match (&cli.tls_cert, &cli.tls_key) {
                (Some(cert), Some(key)) => {
                    let config = conclave_as::tls::server_config(cert, key)?;
                    let listener = conclave_as::tls::TlsListener::new(listener, config)?;
                    conclave_as::serve(listener, serving, shutdown).await?;
                }
                _ => conclave_as::serve(listener, serving, shutdown).await?,
            }
            publisher.abort();
            if let Err(e) = service.release_kt_lease().await {
                tracing::warn!(error = %e, "could not release the key-transparency lease");
            }
        }
        Command::Invite { user, lifetime } => {
            println!(
                "{}",
                service.create_invitation(&user, Some(lifetime)).await?
            );
        }
        Command::Audit { url, state } => audit(&url, &state).await?,
        Command::Revoke {
            device,
            user,
            reason,
        } => {
            let revoked = match (device, user) {
                (Some(device), _) => {
                    service
                        .revoke_device(&Actor::Operator, &device, reason.as_deref())
                        .await?
                }
                (None, Some(user)) => {
                    service
                        .revoke_user(&Actor::Operator, &user, reason.as_deref())
                        .await?
                }
                (None, None) => Vec::new(),
            };
            for r in revoked {
                println!("revoked {} {} (seq {})", r.user_id, r.device_id, r.seq);
            }
        }
    }
    Ok(())
}

/// `conclave-as audit`: needs no database or keys, only the AS's URL.
async fn audit(url: &str, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut state: AuditState = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => AuditState::default(),
        Err(e) => return Err(e.into()),
    };
    match auditor::audit(url, &mut state).await? {
        Some((from, to)) => println!("audited epochs {from} to {to}: append-only"),
        None => println!("no new epoch"),
    }
    std::fs::write(path, serde_json::to_vec_pretty(&state)?)?;
    Ok(())
}
