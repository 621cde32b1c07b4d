//! Configuration, by flags or environment variables.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `conclave-ds` options.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "conclave-ds",
    about = "Conclave Delivery Service (RFC 9750 §6)"
)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CONCLAVE_DS_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// SQLite database file (used unless --postgres is given).
    #[arg(long, env = "CONCLAVE_DS_DB", default_value = "ds.sqlite")]
    pub db: PathBuf,
    /// PostgreSQL URL; several DS nodes may share one database.
    #[arg(long, env = "CONCLAVE_DS_POSTGRES")]
    pub postgres: Option<String>,
    /// Connections to PostgreSQL per node.
    #[arg(long, env = "CONCLAVE_DS_POSTGRES_CONNECTIONS", default_value_t = 16)]
    pub postgres_connections: u32,
    /// NATS URL: pushes cross nodes through it; without it they stay in-process.
    #[arg(long, env = "CONCLAVE_DS_NATS")]
    pub nats: Option<String>,
    /// Accepted clock difference of a signed request, in seconds.
    #[arg(long, env = "CONCLAVE_DS_SIGNATURE_WINDOW", default_value_t = 300)]
    pub signature_window_secs: u64,
    /// How long after a commit the previous epoch's key may still append (messages in
    /// flight), in seconds.
    #[arg(long, env = "CONCLAVE_DS_PREVIOUS_EPOCH_GRACE", default_value_t = 60)]
    pub previous_epoch_grace_secs: u64,
    /// Retention of application messages and proposals, in seconds (30 days).
    #[arg(long, env = "CONCLAVE_DS_MESSAGE_RETENTION", default_value_t = 30 * 86_400)]
    pub message_retention_secs: u64,
    /// Retention of commits, in seconds (90 days).
    #[arg(long, env = "CONCLAVE_DS_COMMIT_RETENTION", default_value_t = 90 * 86_400)]
    pub commit_retention_secs: u64,
    /// Retention of unacknowledged mailbox entries, in seconds (30 days).
    #[arg(long, env = "CONCLAVE_DS_MAILBOX_RETENTION", default_value_t = 30 * 86_400)]
    pub mailbox_retention_secs: u64,
    /// Seconds between pruning passes (0: no pruner).
    #[arg(long, env = "CONCLAVE_DS_PRUNE_INTERVAL", default_value_t = 60)]
    pub prune_interval_secs: u64,
    /// Rows deleted per table per pruning batch.
    #[arg(long, env = "CONCLAVE_DS_PRUNE_BATCH", default_value_t = 1000)]
    pub prune_batch: i64,
    /// KeyPackage claims per pool per minute, across all nodes (RFC 9420 §16.8).
    #[arg(long, env = "CONCLAVE_DS_CLAIMS_PER_MINUTE", default_value_t = 60)]
    pub claims_per_minute: u32,
    /// Largest request body in bytes, for commits (with their Welcomes: a Welcome for a
    /// large group is megabytes) and sealed GroupInfos.
    #[arg(long, env = "CONCLAVE_DS_MAX_BODY", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest JSON control body in bytes (mailbox and group creation, acknowledgements,
    /// pools, claims).
    #[arg(long, env = "CONCLAVE_DS_MAX_CONTROL_BODY", default_value_t = 64 * 1024)]
    pub max_control_bytes: usize,
    /// Largest KeyPackage upload (a batch of sealed KeyPackages) in bytes.
    #[arg(long, env = "CONCLAVE_DS_MAX_UPLOAD", default_value_t = 4 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Largest group message (application or proposal) in bytes.
    #[arg(long, env = "CONCLAVE_DS_MAX_MESSAGE", default_value_t = 1024 * 1024)]
    pub max_message_bytes: usize,
    /// Largest sealed blob posted to a mailbox, in bytes.
    #[arg(long, env = "CONCLAVE_DS_MAX_BLOB", default_value_t = 64 * 1024)]
    pub max_blob_bytes: usize,
    /// Anonymous creations (mailboxes and groups together) per minute on this node, with a
    /// burst of as many. Node-wide, not per client: the DS keeps no IP address.
    #[arg(
        long,
        env = "CONCLAVE_DS_ANONYMOUS_CREATIONS_PER_MINUTE",
        default_value_t = 600
    )]
    pub anonymous_creations_per_minute: u32,
    /// Largest group message pushed inline over WebSocket (and NATS), in bytes; a larger
    /// entry is announced by sequence number and read from the log. Keep it under NATS's
    /// `max_payload` (1 MiB by default).
    #[arg(long, env = "CONCLAVE_DS_PUSH_INLINE_LIMIT", default_value_t = crate::push::DEFAULT_INLINE_LIMIT)]
    pub push_inline_limit: usize,
    /// Pushes buffered per topic and per connection for a slow WebSocket client; past it
    /// the client is told it lagged and re-reads from its cursor.
    #[arg(long, env = "CONCLAVE_DS_PUSH_BUFFER", default_value_t = 1024)]
    pub push_buffer: usize,
    /// Seconds a write to a WebSocket client may wait for it to read; past it the
    /// connection is closed (a subscriber that never reads would hold its task and socket
    /// for ever). The client reconnects and re-reads from its cursor.
    #[arg(long, env = "CONCLAVE_DS_WS_WRITE_TIMEOUT", default_value_t = 30)]
    pub ws_write_timeout_secs: u64,
    /// Epoch keys kept in memory (group auth key and start of each epoch, which never
    /// change once written), so a group request needs no database read to be verified.
    /// 0 turns the cache off.
    #[arg(long, env = "CONCLAVE_DS_EPOCH_KEY_CACHE", default_value_t = 65_536)]
    pub epoch_key_cache: usize,
    /// The Privacy Pass issuer key (the AS's `token-key` from
    /// `/.well-known/private-token-issuer-directory`, base64url, or its DER): with it,
    /// creating a mailbox, a pool or a group, and claiming past a pool's free rate, each
    /// cost a token the AS issued blind (RFC 9578 §6). Without it creation is open to
    /// anyone, limited only per node (`--anonymous-creations-per-minute`).
    #[arg(long, env = "CONCLAVE_DS_PRIVACY_PASS_KEY")]
    pub privacy_pass_key: Option<PathBuf>,
    /// The issuer key itself (SubjectPublicKeyInfo DER), for a DS started in-process next to
    /// its AS; takes precedence over `--privacy-pass-key`.
    #[arg(skip)]
    pub privacy_pass_token_key: Option<Vec<u8>>,
    /// The issuer's name in the token challenge (RFC 9577 §2.1: a server name).
    #[arg(
        long,
        env = "CONCLAVE_DS_PRIVACY_PASS_ISSUER",
        default_value = "conclave-as"
    )]
    pub privacy_pass_issuer: String,
    /// This DS's name in the token challenge (`origin_info`): tokens for another origin are
    /// refused.
    #[arg(
        long,
        env = "CONCLAVE_DS_PRIVACY_PASS_ORIGIN",
        default_value = "conclave-ds"
    )]
    pub privacy_pass_origin: String,
    /// Length of a token window in seconds (at least 60): a token answers one window's
    /// challenge and is accepted during that window and the next.
    #[arg(
        long,
        env = "CONCLAVE_DS_PRIVACY_PASS_WINDOW",
        default_value_t = 86_400
    )]
    pub privacy_pass_window_secs: u64,
    /// TLS certificate chain (PEM); with --tls-key the DS serves HTTPS and WSS only.
    #[arg(long, env = "CONCLAVE_DS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CONCLAVE_DS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["conclave-ds"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_as_documented() {
        let c = Config::try_parse_from([
            "conclave-ds",
            "--listen",
            "127.0.0.1:8081",
            "--db",
            "ds.sqlite",
        ])
        .expect("parse");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8081");
        assert_eq!(c.db, PathBuf::from("ds.sqlite"));
        assert!(c.postgres.is_none() && c.nats.is_none());
        let c = Config::try_parse_from([
            "conclave-ds",
            "--postgres",
            "postgres://h/db",
            "--nats",
            "nats://h:4222",
        ])
        .expect("parse");
        assert_eq!(c.postgres.as_deref(), Some("postgres://h/db"));
        assert_eq!(c.nats.as_deref(), Some("nats://h:4222"));
        assert!(Config::try_parse_from(["conclave-ds", "--listen", "nowhere"]).is_err());
        // A certificate needs its key, and the other way round.
        assert!(Config::try_parse_from(["conclave-ds", "--tls-cert", "c.pem"]).is_err());
        assert!(Config::try_parse_from(["conclave-ds", "--tls-key", "k.pem"]).is_err());
        let c =
            Config::try_parse_from(["conclave-ds", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
                .expect("parse");
        assert_eq!(c.tls_cert, Some(PathBuf::from("c.pem")));
    }
}
