//! Both servers in this process: the AS and one or more DS nodes, each on its own SQLite
//! file in a data directory, or on PostgreSQL databases (NATS between DS nodes). They talk
//! to each other not at all — the stack only starts them side by side, on two ports, as
//! `conclave-as` and `conclave-ds` would run them apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The scale-out engines, as `serve` and `demo` take them.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// PostgreSQL URL of the server's maintenance database (e.g.
    /// postgres://postgres@127.0.0.1/postgres); the AS and the DS get databases of their
    /// own there. Without it: SQLite files.
    #[arg(long)]
    pub postgres: Option<String>,
    /// NATS URL, for pushes between DS nodes.
    #[arg(long)]
    pub nats: Option<String>,
    /// DS nodes (more than one needs --postgres).
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

/// How to run the two servers.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Directory of the SQLite files and the AS's keys.
    pub data: PathBuf,
    /// PostgreSQL URLs of the AS's and the DS's databases; SQLite files in `data` without.
    pub postgres: Option<Databases>,
    /// NATS URL, for pushes between DS nodes.
    pub nats: Option<String>,
    /// DS nodes (several need PostgreSQL).
    pub nodes: usize,
    /// Where the AS listens (port 0: any free port).
    pub as_listen: SocketAddr,
    /// Where the first DS node listens; the others take free ports.
    pub ds_listen: SocketAddr,
    /// The AS's OpenID Connect configuration file, if it takes ID tokens.
    pub oidc: Option<PathBuf>,
}

/// The two servers' PostgreSQL databases: never one database for both, so that whoever
/// reads one learns nothing of the other (DESIGN "who knows what").
#[derive(Clone, Debug)]
pub struct Databases {
    /// The AS's database URL.
    pub auth: String,
    /// The DS's database URL.
    pub delivery: String,
}

/// Why the servers did not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The AS did not start.
    #[error(transparent)]
    Auth(#[from] conclave_as::server::StartError),
    /// A DS node did not start.
    #[error("DS: {0}")]
    Delivery(String),
    /// The options do not make a stack.
    #[error("{0}")]
    Options(String),
    /// PostgreSQL refused to create or drop a database.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The AS refused an operator task.
    #[error("AS: {0}")]
    Operator(String),
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Data {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The running servers.
pub struct Stack {
    options: StackOptions,
    auth: Option<conclave_as::server::Server>,
    auth_addr: SocketAddr,
    delivery: Vec<conclave_ds::Server>,
    ds_configs: Vec<conclave_ds::config::Config>,
}

impl Stack {
    /// Starts the AS, then the DS nodes.
    pub async fn start(options: StackOptions) -> Result<Stack, StackError> {
        if options.nodes == 0 {
            return Err(StackError::Options("--nodes must be at least 1".into()));
        }
        if options.nodes > 1 && options.postgres.is_none() {
            return Err(StackError::Options(
                "several DS nodes share one database: give --postgres".into(),
            ));
        }
        std::fs::create_dir_all(&options.data).map_err(|source| StackError::Data {
            path: options.data.clone(),
            source,
        })?;
        let mut ds_configs = Vec::new();
        for n in 0..options.nodes {
            ds_configs.push(conclave_ds::config::Config {
                listen: if n == 0 {
                    options.ds_listen
                } else {
                    SocketAddr::new(options.ds_listen.ip(), 0)
                },
                db: options.data.join("ds.db"),
                postgres: options.postgres.as_ref().map(|d| d.delivery.clone()),
                nats: options.nats.clone(),
                ..conclave_ds::config::Config::default()
            });
        }
        let mut stack = Stack {
            auth_addr: options.as_listen,
            options,
            auth: None,
            delivery: Vec::new(),
            ds_configs,
        };
        stack.start_auth().await?;
        stack.start_delivery().await?;
        Ok(stack)
    }

    async fn start_auth(&mut self) -> Result<(), StackError> {
        let mut options = conclave_as::server::Options::sqlite(
            self.options.data.join("as.db"),
            self.options.data.join("as-keys"),
        );
        options.listen = self.auth_addr;
        options.postgres = self.options.postgres.as_ref().map(|d| d.auth.clone());
        options.oidc = self.options.oidc.clone();
        let server = conclave_as::server::start(options).await?;
        self.auth_addr = server.addr;
        self.auth = Some(server);
        Ok(())
    }

    async fn start_delivery(&mut self) -> Result<(), StackError> {
        // The DS trusts the AS's Privacy Pass issuer key and nothing else of it: creations
        // cost a token only registered users can get, and the DS cannot tell whose.
        let token_key = self
            .auth
            .as_ref()
            .and_then(|a| a.service.token_issuer())
            .map(|i| i.token_key().to_vec());
        for config in &mut self.ds_configs {
            config.privacy_pass_token_key = token_key.clone();
            let mut attempt = 0;
            let server = loop {
                match conclave_ds::start(config.clone()).await {
                    Ok(server) => break server,
                    // The port of a node that just stopped can take a moment to be released.
                    Err(_) if attempt < 30 && config.listen.port() != 0 => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(StackError::Delivery(e.to_string())),
                }
            };
            // A restart comes back on the same port, so clients keep their URLs.
            config.listen = server.addr;
            self.delivery.push(server);
        }
        Ok(())
    }

    /// The AS's URL.
    pub fn auth_url(&self) -> String {
        format!("http://{}", self.auth_addr)
    }

    /// The DS nodes' URLs.
    pub fn delivery_urls(&self) -> Vec<String> {
        self.ds_configs
            .iter()
            .map(|c| format!("http://{}", c.listen))
            .collect()
    }

    /// A single-use invitation code for `user` (operator task, in process).
    pub async fn invite(&self, user: &str) -> Result<String, StackError> {
        let auth = self
            .auth
            .as_ref()
            .ok_or_else(|| StackError::Options("the AS is not running".into()))?;
        auth.service
            .create_invitation(user, None)
            .await
            .map_err(|e| StackError::Operator(e.to_string()))
    }

    /// Stops both servers and starts them again on the same databases and ports.
    pub async fn restart(&mut self) -> Result<(), StackError> {
        self.stop_servers().await;
        self.start_auth().await?;
        self.start_delivery().await
    }

    async fn stop_servers(&mut self) {
        for server in self.delivery.drain(..) {
            server.stop();
            let _ = server.task.await;
        }
        if let Some(auth) = self.auth.take() {
            auth.stop().await;
        }
    }

    /// Stops both servers.
    pub async fn stop(mut self) {
        self.stop_servers().await;
    }
}

/// Creates `<prefix>_as` and `<prefix>_ds` on the PostgreSQL server of `admin_url` (a URL
/// of any database there, e.g. `postgres://postgres@127.0.0.1/postgres`), if absent.
pub async fn prepare_postgres(admin_url: &str, prefix: &str) -> Result<Databases, StackError> {
    use sqlx::Connection as _;
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StackError::Options(format!(
            "database prefix {prefix:?}: lower-case letters, digits and _ only"
        )));
    }
    let mut c = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| StackError::Postgres(format!("{admin_url}: {e}")))?;
    let base = admin_url
        .split_once('?')
        .map_or(admin_url, |(b, _)| b)
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .ok_or_else(|| StackError::Options(format!("not a PostgreSQL URL: {admin_url}")))?;
    let mut urls = Vec::new();
    for name in [format!("{prefix}_as"), format!("{prefix}_ds")] {
        let exists: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut c)
                .await
                .map_err(|e| StackError::Postgres(e.to_string()))?;
        if exists.is_none() {
            // The name is checked above: letters, digits and underscores only.
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut c)
                .await
                .map_err(|e| StackError::Postgres(e.to_string()))?;
        }
        urls.push(format!("{base}/{name}"));
    }
    let delivery = urls.pop().unwrap_or_default();
    let auth = urls.pop().unwrap_or_default();
    Ok(Databases { auth, delivery })
}

/// Drops the databases [`prepare_postgres`] created.
pub async fn drop_postgres(admin_url: &str, prefix: &str) -> Result<(), StackError> {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(admin_url)
        .await
        .map_err(|e| StackError::Postgres(format!("{admin_url}: {e}")))?;
    for name in [format!("{prefix}_as"), format!("{prefix}_ds")] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut c)
        .await
        .map_err(|e| StackError::Postgres(e.to_string()))?;
    }
    Ok(())
}
