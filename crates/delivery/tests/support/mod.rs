//! Shared test support: servers on each engine, and a signing HTTP client.
#![allow(dead_code)]

/// One async test per engine for each named `async fn(Engine)`: `mod sqlite` and
/// `mod postgres`, so the same suite runs on both stores.
#[allow(unused_macros)]
macro_rules! engine_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Engine::Postgres).await;
                }
            )*
        }
    };
}

pub mod mls;
pub mod ws;

use conclave_api::delivery::*;
use conclave_ds::config::Config;
use ed25519_dalek::{Signer, SigningKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::Connection;

/// The storage engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file in a temporary directory.
    Sqlite,
    /// A fresh PostgreSQL database, dropped afterwards.
    Postgres,
}

/// Where PostgreSQL is (scripts/services starts it).
pub fn postgres_admin_url() -> String {
    std::env::var("CONCLAVE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Where NATS is.
pub fn nats_url() -> String {
    std::env::var("CONCLAVE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Random bytes.
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("randomness");
    b
}

/// A fresh Ed25519 key.
pub fn new_key() -> SigningKey {
    SigningKey::from_bytes(&random::<32>())
}

/// A database for one test: a temp dir with a SQLite file, or a fresh PostgreSQL database.
pub struct Db {
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pub pg_name: Option<String>,
}

impl Db {
    /// Creates it.
    pub async fn new(engine: Engine) -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let pg_name = match engine {
            Engine::Sqlite => None,
            Engine::Postgres => {
                let name = format!("ds_test_{}", hex(&random::<8>()));
                let mut c = sqlx::PgConnection::connect(&postgres_admin_url())
                    .await
                    .expect("PostgreSQL is up (bash scripts/services)");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await
                    .expect("create database");
                Some(name)
            }
        };
        Db {
            engine,
            dir,
            pg_name,
        }
    }

    /// The SQLite file.
    pub fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir.path().join("ds.sqlite")
    }

    /// The PostgreSQL URL of the test database.
    pub fn postgres_url(&self) -> Option<String> {
        self.pg_name.as_ref().map(|n| {
            let admin = postgres_admin_url();
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin);
            format!("{base}/{n}")
        })
    }

    /// The number of rows of a table.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self.engine {
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&format!(
                    "sqlite://{}",
                    self.sqlite_path().display()
                ))
                .await
                .expect("sqlite");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
            Engine::Postgres => {
                let url = self.postgres_url().expect("url");
                let mut c = sqlx::PgConnection::connect(&url).await.expect("pg");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
        }
    }

    /// A configuration of a node on this database, listening on a free loopback port.
    pub fn config(&self) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            db: self.sqlite_path(),
            postgres: self.postgres_url(),
            postgres_connections: 8,
            nats: None,
            prune_interval_secs: 0,
            claims_per_minute: 100_000,
            ..Config::default()
        }
    }
}

/// The real `conclave-ds` binary serving `db`, with `extra` flags; its client once it prints
/// the address it listens on. The process is killed when the handle is dropped.
pub async fn spawn_ds(db: &Db, extra: &[&str]) -> (tokio::process::Child, Client) {
    use tokio::io::AsyncBufReadExt;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_conclave-ds"));
    cmd.args(["--listen", "127.0.0.1:0", "--prune-interval-secs", "0"]);
    match db.postgres_url() {
        Some(url) => cmd.args(["--postgres", &url]),
        None => cmd.args(["--db", &db.sqlite_path().display().to_string()]),
    };
    cmd.args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn conclave-ds");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("read") {
            if let Some(a) = line.strip_prefix("listening on ") {
                return a.parse::<std::net::SocketAddr>().expect("addr");
            }
        }
        panic!("conclave-ds exited before listening");
    })
    .await
    .expect("conclave-ds started");
    (child, Client::new(addr))
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop the database from a thread of its own (Drop cannot await).
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut c) = sqlx::PgConnection::connect(&postgres_admin_url()).await
                        {
                            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A DS node under test and a database.
pub struct Env {
    pub db: Db,
    pub server: conclave_ds::Server,
    pub client: Client,
}

impl Env {
    /// One node on a fresh database of the engine.
    pub async fn new(engine: Engine) -> Env {
        Self::with(engine, |_| {}).await
    }

    /// One node with a tweaked configuration.
    pub async fn with(engine: Engine, tweak: impl FnOnce(&mut Config)) -> Env {
        let db = Db::new(engine).await;
        let mut config = db.config();
        tweak(&mut config);
        let server = conclave_ds::start(config).await.expect("start");
        let client = Client::new(server.addr);
        Env { db, server, client }
    }

    /// Another node on the same database.
    pub async fn second_node(
        &self,
        tweak: impl FnOnce(&mut Config),
    ) -> (conclave_ds::Server, Client) {
        let mut config = self.db.config();
        tweak(&mut config);
        let server = conclave_ds::start(config).await.expect("start");
        let client = Client::new(server.addr);
        (server, client)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.server.stop();
    }
}

/// A response: status and body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Resp {
    /// The JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    /// The error code of an error answer.
    pub fn code(&self) -> ErrorCode {
        self.json::<ErrorBody>().code
    }
}

/// How a request is signed.
#[derive(Clone, Copy)]
pub enum Sign<'a> {
    /// Not signed.
    No,
    /// With a mailbox key.
    Mailbox(&'a SigningKey),
    /// With a group auth key of an epoch.
    Group(&'a SigningKey, u64),
}

/// A signed request ready to be sent, kept so a test can replay it.
#[derive(Clone)]
pub struct Prepared {
    pub method: reqwest::Method,
    pub path: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
}

/// A client of one DS node.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    /// A client of the node at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Client {
        Client {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    /// Prepares a request, signed as asked, at `timestamp` (None: now).
    pub fn prepare(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &'static str,
        sign: Sign<'_>,
        timestamp: Option<u64>,
    ) -> Prepared {
        let mut headers = Vec::new();
        let ts = timestamp.unwrap_or_else(conclave_ds::auth::now);
        let nonce = random::<16>();
        let hash: [u8; 32] = Sha256::digest(&body).into();
        let input = signing_input(method, path, &hash, ts, &nonce);
        let key = match sign {
            Sign::No => None,
            Sign::Mailbox(k) => Some(k),
            Sign::Group(k, epoch) => {
                headers.push((headers::EPOCH, epoch.to_string()));
                Some(k)
            }
        };
        if let Some(k) = key {
            headers.push((headers::TIMESTAMP, ts.to_string()));
            headers.push((headers::NONCE, Bytes(nonce.to_vec()).to_base64()));
            headers.push((
                headers::SIGNATURE,
                Bytes(k.sign(&input).to_bytes().to_vec()).to_base64(),
            ));
        }
        Prepared {
            method: method.parse().expect("method"),
            path: path.to_string(),
            body,
            content_type,
            headers,
        }
    }

    /// Sends a prepared request.
    pub async fn send(&self, p: &Prepared) -> Resp {
        let mut r = self
            .http
            .request(p.method.clone(), format!("{}{}", self.base, p.path))
            .header("content-type", p.content_type)
            .body(p.body.clone());
        for (k, v) in &p.headers {
            r = r.header(*k, v);
        }
        let resp = r.send().await.expect("send");
        let status = resp.status().as_u16();
        Resp {
            status,
            body: resp.bytes().await.expect("body").to_vec(),
        }
    }

    /// A JSON request.
    pub async fn json<T: Serialize>(
        &self,
        method: &str,
        path: &str,
        body: &T,
        sign: Sign<'_>,
    ) -> Resp {
        let body = serde_json::to_vec(body).expect("json");
        self.send(&self.prepare(method, path, body, "application/json", sign, None))
            .await
    }

    /// A request without a body.
    pub async fn empty(&self, method: &str, path: &str, sign: Sign<'_>) -> Resp {
        self.send(&self.prepare(method, path, Vec::new(), "application/json", sign, None))
            .await
    }

    /// An `application/mls-message` request.
    pub async fn mls(&self, path: &str, message: &[u8], sign: Sign<'_>) -> Resp {
        let p = self.prepare(
            "POST",
            path,
            message.to_vec(),
            MLS_MESSAGE_MEDIA_TYPE,
            sign,
            None,
        );
        self.send(&p).await
    }

    // ---- Higher-level calls ----

    /// Opens a mailbox; returns its id and key.
    pub async fn mailbox(&self) -> (String, SigningKey) {
        let key = new_key();
        let r = self
            .json(
                "POST",
                "/v1/mailboxes",
                &CreateMailboxRequest {
                    public_key: Bytes(key.verifying_key().to_bytes().to_vec()),
                },
                Sign::No,
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        (r.json::<CreateMailboxResponse>().mailbox_id, key)
    }

    /// Fetches a mailbox's entries.
    pub async fn entries(&self, mailbox: &str, key: &SigningKey) -> Vec<MailboxEntry> {
        let r = self
            .empty(
                "GET",
                &format!("/v1/mailboxes/{mailbox}/entries"),
                Sign::Mailbox(key),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.json::<MailboxEntries>().entries
    }

    /// Registers a group with epoch 0's key.
    pub async fn create_group(&self, group_id: &[u8], key: &SigningKey) -> Resp {
        self.json(
            "POST",
            "/v1/groups",
            &CreateGroupRequest {
                group_id: Bytes(group_id.to_vec()),
                auth_key: Bytes(key.verifying_key().to_bytes().to_vec()),
            },
            Sign::No,
        )
        .await
    }

    /// Appends a message signed with an epoch key.
    pub async fn post(
        &self,
        group_id: &[u8],
        message: &[u8],
        key: &SigningKey,
        epoch: u64,
    ) -> Resp {
        let path = format!(
            "/v1/groups/{}/messages",
            Bytes(group_id.to_vec()).to_base64()
        );
        self.mls(&path, message, Sign::Group(key, epoch)).await
    }

    /// Submits a commit.
    pub async fn commit(
        &self,
        group_id: &[u8],
        request: &CommitRequest,
        key: &SigningKey,
        epoch: u64,
    ) -> Resp {
        let path = format!(
            "/v1/groups/{}/commits",
            Bytes(group_id.to_vec()).to_base64()
        );
        self.json("POST", &path, request, Sign::Group(key, epoch))
            .await
    }

    /// Reads the log from `from` with an epoch key.
    pub async fn log(&self, group_id: &[u8], from: u64, key: &SigningKey, epoch: u64) -> Resp {
        let path = format!(
            "/v1/groups/{}/log?from={from}",
            Bytes(group_id.to_vec()).to_base64()
        );
        self.empty("GET", &path, Sign::Group(key, epoch)).await
    }
}

impl Client {
    /// Fetches a page of a mailbox's entries after a cursor.
    pub async fn entries_after(
        &self,
        mailbox: &str,
        key: &SigningKey,
        after: i64,
        limit: i64,
    ) -> Vec<MailboxEntry> {
        let path = format!("/v1/mailboxes/{mailbox}/entries?after={after}&limit={limit}");
        let r = self.empty("GET", &path, Sign::Mailbox(key)).await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.json::<MailboxEntries>().entries
    }

    /// Posts a sealed blob to a mailbox (unsigned: anyone may).
    pub async fn post_blob(&self, mailbox: &str, blob: &[u8]) -> Resp {
        let p = self.prepare(
            "POST",
            &format!("/v1/mailboxes/{mailbox}/entries"),
            blob.to_vec(),
            "application/octet-stream",
            Sign::No,
            None,
        );
        self.send(&p).await
    }

    /// Creates a pool owned by the mailbox; returns its id.
    pub async fn create_pool(&self, mailbox: &str, key: &SigningKey, secret: &[u8]) -> String {
        let r = self
            .json(
                "POST",
                &format!("/v1/mailboxes/{mailbox}/pools"),
                &CreatePoolRequest {
                    claim_secret: Bytes(secret.to_vec()),
                },
                Sign::Mailbox(key),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", String::from_utf8_lossy(&r.body));
        r.json::<CreatePoolResponse>().pool_id
    }

    /// Uploads sealed KeyPackages (bytes, last resort) expiring at `expires_at`.
    pub async fn upload_key_packages(
        &self,
        mailbox: &str,
        key: &SigningKey,
        pool: &str,
        blobs: Vec<(Vec<u8>, bool)>,
        expires_at: u64,
    ) -> Resp {
        self.json(
            "POST",
            &format!("/v1/mailboxes/{mailbox}/pools/{pool}/key-packages"),
            &UploadKeyPackagesRequest {
                key_packages: blobs
                    .into_iter()
                    .map(|(s, l)| SealedKeyPackage {
                        sealed: Bytes(s),
                        last_resort: l,
                    })
                    .collect(),
                expires_at,
            },
            Sign::Mailbox(key),
        )
        .await
    }

    /// Claims one KeyPackage of a pool.
    pub async fn claim(&self, pool: &str, secret: &[u8]) -> Resp {
        self.json(
            "POST",
            &format!("/v1/pools/{pool}/claim"),
            &ClaimRequest {
                claim_secret: Bytes(secret.to_vec()),
            },
            Sign::No,
        )
        .await
    }

    /// What is left in a pool.
    pub async fn pool_status(&self, mailbox: &str, key: &SigningKey, pool: &str) -> PoolStatus {
        let r = self
            .empty(
                "GET",
                &format!("/v1/mailboxes/{mailbox}/pools/{pool}"),
                Sign::Mailbox(key),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.json()
    }
}

/// A commit request from a proposed MLS commit.
pub fn commit_request(p: &mls::Proposed, welcome_to: &[&str]) -> CommitRequest {
    CommitRequest {
        commit: Bytes(p.commit.clone()),
        next_auth_key: Bytes(p.next_key.verifying_key().to_bytes().to_vec()),
        welcomes: match &p.welcome {
            Some(w) if !welcome_to.is_empty() => vec![WelcomeDelivery {
                welcome: Bytes(w.clone()),
                mailboxes: welcome_to.iter().map(|s| s.to_string()).collect(),
            }],
            _ => vec![],
        },
        group_info: None,
    }
}
