//! `conclave-as`: runs the Authentication Service, or performs an operator task on its
//! database (`invite`, `revoke`).
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use conclave_as::auditor::{self, AuditState};
use conclave_as::config::Config;
use conclave_as::server;
use conclave_as::service::Actor;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Directory of the CA, key-transparency and Privacy Pass issuer keys (created on first
    /// start).
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
    /// Create a single-use invitation code for a user and print it; with `--from`, one code
    /// per line of a file of users (`-`: standard input), printed as `user<TAB>code`.
    Invite {
        /// The user, user@domain.
        #[arg(long, conflicts_with = "from", required_unless_present = "from")]
        user: Option<String>,
        /// A file with one user per line (a user named twice gets two codes: one per device).
        #[arg(long)]
        from: Option<PathBuf>,
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
    /// Replace the issuing CA now (the running server also does it by itself when less than
    /// twice the certificate lifetime remains): a new issuing key and certificate, signed by
    /// the root key in the keys directory. Chains issued before stay valid; restart the
    /// server (and the nodes sharing these keys) to issue with the new one at once.
    RotateCa,
    /// Print the Privacy Pass issuer key (base64url, as the issuer directory gives it;
    /// created in the keys directory if absent): what `conclave-ds --privacy-pass-key`
    /// reads, so the DS sells creations only for tokens this AS issued.
    TokenKey,
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

async fn run(mut cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        certificate_lifetime: cli.certificate_lifetime,
        ..Config::default()
    };
    let options = server::Options {
        listen: cli.listen,
        db: cli.db.clone(),
        postgres: cli.postgres.clone(),
        keys: cli.keys.clone(),
        oidc: cli.oidc.clone(),
        config,
        tls: cli.tls_cert.clone().zip(cli.tls_key.clone()),
        node_id: cli.node_id.clone(),
    };
    let command = cli.command.take().unwrap_or(Command::Serve);
    match command {
        Command::Serve => {
            let server = server::start(options).await?;
            // Scripts and the load tool read the bound address (`--listen 127.0.0.1:0`).
            println!("listening on {}", server.addr);
            server
                .wait(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await?;
            return Ok(());
        }
        Command::Audit { url, state } => return audit(&url, &state).await,
        Command::RotateCa => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let ca = conclave_as::ca::Ca::load_or_create(&cli.keys, now)?;
            let rotated = ca.rotate_issuing(now)?;
            println!(
                "issuing CA rotated; valid until {} (Unix time)",
                rotated.issuing_not_after()
            );
            return Ok(());
        }
        Command::TokenKey => {
            std::fs::create_dir_all(&cli.keys)?;
            let issuer =
                conclave_as::tokens::Issuer::load_or_create(&cli.keys.join("privacy-pass.der"))?;
            use base64::Engine as _;
            println!(
                "{}",
                base64::engine::general_purpose::URL_SAFE.encode(issuer.token_key())
            );
            return Ok(());
        }
        _ => {}
    }
    // Operator tasks: the service on the same database, without serving.
    let service = server::open(&options).await?;
    match command {
        Command::Invite {
            user,
            from,
            lifetime,
        } => match (user, from) {
            (Some(user), _) => {
                println!(
                    "{}",
                    service.create_invitation(&user, Some(lifetime)).await?
                );
            }
            (None, Some(from)) => invite_many(&service, &from, lifetime).await?,
            (None, None) => {}
        },
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
        Command::Serve | Command::Audit { .. } | Command::RotateCa | Command::TokenKey => {}
    }
    Ok(())
}

/// `conclave-as audit`: needs no database or keys, only the AS's URL.
/// Invitations for every user listed in `from`, printed as `user<TAB>code` lines; stops at
/// the first invalid user, having printed the codes created before it.
async fn invite_many(
    service: &conclave_as::service::Service,
    from: &std::path::Path,
    lifetime: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write as _;
    let text = if from == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(from)?
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for user in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let code = service.create_invitation(user, Some(lifetime)).await?;
        writeln!(out, "{user}\t{code}")?;
    }
    out.flush()?;
    Ok(())
}

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
