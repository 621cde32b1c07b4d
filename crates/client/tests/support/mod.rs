//! The real servers on loopback for the SDK's end-to-end tests: the AS and one or two DS
//! nodes, in this process, on SQLite files or on fresh PostgreSQL databases (with NATS
//! between DS nodes), restartable on the same database and port.
#![allow(dead_code)]

use conclave_as::service::Service;
use conclave_client::{Authorization, Config, Device, Event, EventId, KdfParams, StoreKey};
use sqlx::Connection as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The engine of both servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// SQLite files, one DS node, pushes in-process.
    Sqlite,
    /// PostgreSQL databases, two DS nodes sharing one, NATS between them.
    Postgres,
}

fn postgres_admin() -> String {
    std::env::var("CONCLAVE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn nats_url() -> String {
    std::env::var("CONCLAVE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn create_db(prefix: &str) -> (String, String) {
    let name = format!("{prefix}_{}", random_hex());
    let admin = postgres_admin();
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL is up (bash scripts/services)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(admin);
    let url = format!("{base}/{name}");
    (name, url)
}

/// Both servers and their databases.
pub struct Servers {
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    auth: Option<conclave_as::server::Server>,
    auth_addr: Option<SocketAddr>,
    auth_pg: Option<(String, String)>,
    ds: Vec<conclave_ds::Server>,
    ds_configs: Vec<conclave_ds::config::Config>,
    ds_pg: Option<(String, String)>,
}

impl Servers {
    /// Starts the AS and the DS node(s) of `engine`.
    pub async fn start(engine: Engine) -> Servers {
        let dir = tempfile::tempdir().expect("tempdir");
        let (auth_pg, ds_pg) = match engine {
            Engine::Sqlite => (None, None),
            Engine::Postgres => (
                Some(create_db("client_as").await),
                Some(create_db("client_ds").await),
            ),
        };
        let nodes = if engine == Engine::Postgres { 2 } else { 1 };
        let mut ds_configs = Vec::new();
        for _ in 0..nodes {
            ds_configs.push(conclave_ds::config::Config {
                listen: "127.0.0.1:0".parse().expect("addr"),
                db: dir.path().join("ds.sqlite"),
                postgres: ds_pg.as_ref().map(|(_, url)| url.clone()),
                postgres_connections: 4,
                nats: (engine == Engine::Postgres).then(nats_url),
                prune_interval_secs: 0,
                claims_per_minute: 100_000,
                anonymous_creations_per_minute: 100_000,
                ..conclave_ds::config::Config::default()
            });
        }
        let mut servers = Servers {
            engine,
            dir,
            auth: None,
            auth_addr: None,
            auth_pg,
            ds: Vec::new(),
            ds_configs,
            ds_pg,
        };
        servers.start_auth().await;
        servers.start_ds().await;
        servers
    }

    async fn start_auth(&mut self) {
        let mut options = conclave_as::server::Options::sqlite(
            self.dir.path().join("as.db"),
            self.dir.path().join("as-keys"),
        );
        options.postgres = self.auth_pg.as_ref().map(|(_, url)| url.clone());
        if let Some(addr) = self.auth_addr {
            options.listen = addr;
        }
        let server = conclave_as::server::start(options).await.expect("AS start");
        self.auth_addr = Some(server.addr);
        self.auth = Some(server);
    }

    async fn stop_auth(&mut self) {
        if let Some(server) = self.auth.take() {
            server.stop().await;
        }
    }

    async fn start_ds(&mut self) {
        // As `conclave serve` does: the DS trusts the AS's Privacy Pass key, so every test
        // pays for its mailboxes, pools and groups with tokens.
        let token_key = self
            .auth
            .as_ref()
            .and_then(|a| a.service.token_issuer())
            .map(|i| i.token_key().to_vec());
        for config in &mut self.ds_configs {
            config.privacy_pass_token_key = token_key.clone();
            let server = loop {
                match conclave_ds::start(config.clone()).await {
                    Ok(s) => break s,
                    Err(e) => {
                        // The port of a node that just stopped can take a moment to free.
                        eprintln!("DS start: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            };
            config.listen = server.addr;
            self.ds.push(server);
        }
    }

    fn stop_ds(&mut self) {
        for server in self.ds.drain(..) {
            server.stop();
        }
    }

    /// Stops both servers and starts them again on the same databases and ports.
    pub async fn restart(&mut self) {
        self.stop_ds();
        self.stop_auth().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.start_auth().await;
        self.start_ds().await;
    }

    /// The AS URL.
    pub fn auth_url(&self) -> String {
        format!("http://{}", self.auth_addr.expect("AS started"))
    }

    /// The URL of DS node `n` (modulo the number of nodes).
    pub fn ds_url(&self, n: usize) -> String {
        let config = &self.ds_configs[n % self.ds_configs.len()];
        format!("http://{}", config.listen)
    }

    /// The AS service (for operator tasks: invitations, revocations).
    pub fn auth_service(&self) -> Arc<Service> {
        Arc::clone(&self.auth.as_ref().expect("AS running").service)
    }

    /// An invitation code for `user`.
    pub async fn invite(&self, user: &str) -> String {
        self.auth_service()
            .create_invitation(user, None)
            .await
            .expect("invitation")
    }

    /// A device configuration: store file `name` in the test directory, DS node `node`.
    pub fn config(&self, name: &str, node: usize) -> Config {
        let mut config = Config::new(
            self.auth_url(),
            self.ds_url(node),
            self.dir.path().join(format!("{name}.db")),
            StoreKey::Passphrase(format!("passphrase of {name}"), KdfParams::insecure_fast()),
        );
        config.pool.target = 6;
        config.pool.low_water = 3;
        config
    }

    /// Registers a new device of `user` with an invitation.
    pub async fn register(&self, user: &str, name: &str, node: usize) -> Device {
        let code = self.invite(user).await;
        Device::register(self.config(name, node), Authorization::Invitation { code })
            .await
            .unwrap_or_else(|e| panic!("register {name}: {e}"))
    }

    /// The SQLite files of the two servers, or the PostgreSQL database names.
    pub fn databases(&self) -> (DbRef, DbRef) {
        let auth = match &self.auth_pg {
            Some((_, url)) => DbRef::Postgres(url.clone()),
            None => DbRef::Sqlite(self.dir.path().join("as.db")),
        };
        let ds = match &self.ds_pg {
            Some((_, url)) => DbRef::Postgres(url.clone()),
            None => DbRef::Sqlite(self.dir.path().join("ds.sqlite")),
        };
        (auth, ds)
    }

    /// Stops everything and drops the PostgreSQL databases.
    pub async fn finish(mut self) {
        self.stop_ds();
        self.stop_auth().await;
        for (name, _) in [self.auth_pg.take(), self.ds_pg.take()]
            .into_iter()
            .flatten()
        {
            if let Ok(mut c) = sqlx::PgConnection::connect(&postgres_admin()).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        }
    }
}

/// Where a server's database is.
pub enum DbRef {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

/// Syncs each device once, in order.
pub async fn sync_all(devices: &[&Device]) {
    for d in devices {
        d.sync()
            .await
            .unwrap_or_else(|e| panic!("sync {}: {e}", d.device_id()));
    }
}

/// Syncs every device `rounds` times (contact and sibling flows take a few hops).
pub async fn settle(devices: &[&Device], rounds: usize) {
    for _ in 0..rounds {
        sync_all(devices).await;
    }
}

/// Takes and acknowledges every waiting event.
pub async fn drain(device: &Device) -> Vec<Event> {
    let events = device.events(10_000).await.expect("events");
    if let Some((id, _)) = events.last() {
        device.ack(*id).await.expect("ack");
    }
    events.into_iter().map(|(_, e)| e).collect()
}

/// The message bodies among `events`, as text, with the sender's user.
pub fn messages(events: &[Event]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message { sender, body, .. } => Some((
                sender.user.clone(),
                String::from_utf8_lossy(body).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// The id of the last waiting event, if any.
pub async fn last_event(device: &Device) -> Option<EventId> {
    device
        .events(10_000)
        .await
        .expect("events")
        .last()
        .map(|(id, _)| *id)
}

/// Every stored text and byte value of a database, except sqlx's migration bookkeeping (the
/// same in any database of a server).
pub async fn stored_values(db: &DbRef) -> Vec<Vec<u8>> {
    use sqlx::Row as _;
    let mut out = Vec::new();
    match db {
        DbRef::Sqlite(path) => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("sqlite");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
            )
            .fetch_all(&mut c)
            .await
            .expect("tables");
            for table in tables {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                    .fetch_all(&mut c)
                    .await
                    .expect("rows");
                for row in rows {
                    for i in 0..row.len() {
                        if let Ok(Some(v)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                            out.push(v);
                        } else if let Ok(Some(v)) = row.try_get::<Option<String>, _>(i) {
                            out.push(v.into_bytes());
                        }
                    }
                }
            }
        }
        DbRef::Postgres(url) => {
            let mut c = sqlx::PgConnection::connect(url).await.expect("pg");
            let columns: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT table_name::text, column_name::text, data_type::text
                 FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
                 AND data_type IN ('bytea', 'text', 'character varying', 'character')",
            )
            .fetch_all(&mut c)
            .await
            .expect("columns");
            for (table, column, kind) in columns {
                let expr = if kind == "bytea" {
                    format!("\"{column}\"")
                } else {
                    format!("convert_to(\"{column}\", 'UTF8')")
                };
                let values: Vec<Option<Vec<u8>>> = sqlx::query_scalar(sqlx::AssertSqlSafe(
                    format!("SELECT {expr} FROM \"{table}\""),
                ))
                .fetch_all(&mut c)
                .await
                .expect("values");
                out.extend(values.into_iter().flatten());
            }
        }
    }
    out
}

/// Every value of 8 bytes or more stored in the AS database that also occurs, byte for byte,
/// inside a value stored in the DS database.
pub async fn shared_values(servers: &Servers) -> Vec<Vec<u8>> {
    let (auth, ds) = servers.databases();
    let auth_values = stored_values(&auth).await;
    let ds_values = stored_values(&ds).await;
    assert!(
        auth_values.len() > 10 && ds_values.len() > 10,
        "both databases hold data"
    );
    // Every 8-byte window of the DS's values: an AS value inside a DS value starts with one.
    let grams: std::collections::HashSet<&[u8]> =
        ds_values.iter().flat_map(|d| d.windows(8)).collect();
    let mut shared: Vec<Vec<u8>> = auth_values
        .into_iter()
        .filter(|v| v.len() >= 8 && grams.contains(&v[..8]))
        .filter(|v| {
            ds_values
                .iter()
                .any(|d| d.len() >= v.len() && d.windows(v.len()).any(|w| w == v.as_slice()))
        })
        .collect();
    shared.sort();
    shared.dedup();
    shared
}
