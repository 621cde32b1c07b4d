//! Test harness: a real AS on 127.0.0.1 (port 0) over a real database (a SQLite file in a
//! temporary directory, or a fresh PostgreSQL database), a small HTTP/1.1 client, and
//! devices that sign their requests.
#![allow(dead_code)]

pub mod mls;

use conclave_as::api::{self, Bytes};
use conclave_as::ca::Ca;
use conclave_as::config::Config;
use conclave_as::oidc::Oidc;
use conclave_as::service::{Clock, Service};
use conclave_as::store::Store;
use conclave_as::store::postgres::PostgresStore;
use conclave_as::store::sqlite::SqliteStore;
use conclave_as::transparency::{Transparency, VrfKey};
use ed25519_dalek::Signer as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which engine a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs each test body on both engines: `engine_tests! { async fn name(server) { … } }`.
#[macro_export]
macro_rules! engine_tests {
    ($(async fn $name:ident($server:ident) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $server = $crate::support::TestServer::start($crate::support::Engine::Sqlite).await;
                    $body
                    $server.finish().await;
                }
            )*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let $server = $crate::support::TestServer::start($crate::support::Engine::Postgres).await;
                    $body
                    $server.finish().await;
                }
            )*
        }
    };
}

/// The PostgreSQL server the tests use (`CONCLAVE_TEST_POSTGRES`, else local trust auth).
pub fn postgres_admin_url() -> String {
    std::env::var("CONCLAVE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("random");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a test AS keeps its data.
#[derive(Clone, Debug)]
pub enum Db {
    /// A SQLite file.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database URL.
    Postgres(String),
}

/// A running AS.
pub struct TestServer {
    pub addr: SocketAddr,
    pub service: Arc<Service>,
    pub root_der: Vec<u8>,
    pub now: Arc<AtomicU64>,
    pub dir: tempfile::TempDir,
    /// This node's name in the key-transparency publisher lease.
    pub node: String,
    /// The database (shared by the nodes [`TestServer::join`] starts).
    pub db: Db,
    config: Config,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    publisher: Option<tokio::task::JoinHandle<()>>,
    /// The PostgreSQL database this server created (and drops at finish).
    postgres_db: Option<String>,
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl TestServer {
    pub async fn start(engine: Engine) -> Self {
        Self::start_with(engine, Oidc::default(), Config::default()).await
    }

    pub async fn start_with(engine: Engine, oidc: Oidc, config: Config) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db, postgres_db) = match engine {
            Engine::Sqlite => (Db::Sqlite(dir.path().join("as.db")), None),
            Engine::Postgres => {
                let name = format!("conclave_as_test_{}", random_hex(8));
                let admin = postgres_admin_url();
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL at {admin} (start it with `bash scripts/services`): {e}")
                    });
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create database");
                let url = match admin.rsplit_once('/') {
                    Some((base, _)) => format!("{base}/{name}"),
                    None => panic!("bad PostgreSQL URL {admin}"),
                };
                (Db::Postgres(url), Some(name))
            }
        };
        let node = format!("node-{}", random_hex(4));
        let now = Arc::new(AtomicU64::new(unix_now()));
        Self::launch(dir, db, postgres_db, node, now, oidc, config).await
    }

    /// Starts an AS on `db` with the keys in `dir/keys` (created if absent).
    async fn launch(
        dir: tempfile::TempDir,
        db: Db,
        postgres_db: Option<String>,
        node: String,
        now: Arc<AtomicU64>,
        oidc: Oidc,
        config: Config,
    ) -> Self {
        let store: Arc<dyn Store> = match &db {
            Db::Sqlite(path) => Arc::new(SqliteStore::open(path).await.expect("sqlite")),
            Db::Postgres(url) => Arc::new(PostgresStore::connect(url).await.expect("postgres")),
        };
        let clock_now = Arc::clone(&now);
        let clock: Clock = Arc::new(move || clock_now.load(Ordering::SeqCst));
        let ca = Ca::load_or_create(&dir.path().join("keys"), clock()).expect("ca");
        let root_der = ca.root_der().to_vec();
        let vrf = VrfKey::load_or_create(&dir.path().join("keys/vrf.key")).expect("vrf key");
        let kt = Transparency::open_as(store.as_ref(), vrf, node.clone())
            .await
            .expect("transparency");
        let issuer =
            conclave_as::tokens::Issuer::load_or_create(&dir.path().join("keys/privacy-pass.der"))
                .expect("issuer key");
        let service = Arc::new(
            Service::new(store, ca, oidc, config.clone(), clock, kt).with_token_issuer(issuer),
        );
        let publisher = service.start_kt_publisher().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let service = Arc::clone(&service);
            async move {
                conclave_as::serve(listener, service, async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
            }
        });
        Self {
            addr,
            service,
            root_der,
            now,
            dir,
            node,
            db,
            config,
            shutdown: Some(tx),
            task: Some(task),
            publisher: Some(publisher),
            postgres_db,
        }
    }

    /// Another AS node on this server's database, with copies of its keys (CA and VRF: a
    /// deployment's nodes share them), its own clock (starting at this one's time), lease
    /// name and `config`.
    pub async fn join(&self, config: Config) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = dir.path().join("keys");
        std::fs::create_dir_all(&keys).expect("keys dir");
        for entry in std::fs::read_dir(self.dir.path().join("keys")).expect("keys") {
            let entry = entry.expect("key file");
            if entry.file_type().expect("file type").is_file() {
                std::fs::copy(entry.path(), keys.join(entry.file_name())).expect("copy key");
            }
        }
        let node = format!("node-{}", random_hex(4));
        let now = Arc::new(AtomicU64::new(self.now()));
        Self::launch(
            dir,
            self.db.clone(),
            None,
            node,
            now,
            Oidc::default(),
            config,
        )
        .await
    }

    /// Stops the HTTP server and the key-transparency publisher task.
    async fn stop(&mut self) {
        if let Some(publisher) = self.publisher.take() {
            publisher.abort();
            let _ = publisher.await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Stops this node as a crash would: nothing more is published and nothing is released
    /// (its publisher lease stays until it expires). The database stays; the server's
    /// directory and its PostgreSQL database (if it made one) are handed back.
    pub async fn kill(mut self) -> (tempfile::TempDir, Option<String>) {
        self.stop().await;
        drop(self.service);
        (self.dir, self.postgres_db)
    }

    /// Kills this node ([`TestServer::kill`]) and starts it again on the same database,
    /// keys, lease name, clock and config, as a restarted process would.
    pub async fn restart(self) -> Self {
        let (db, node, now, config) = (
            self.db.clone(),
            self.node.clone(),
            Arc::clone(&self.now),
            self.config.clone(),
        );
        let (dir, postgres_db) = self.kill().await;
        Self::launch(dir, db, postgres_db, node, now, Oidc::default(), config).await
    }

    /// The AS clock (and the devices' clock).
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    pub fn advance(&self, seconds: u64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }

    /// The URL of this server's PostgreSQL database (`None` on SQLite).
    pub fn postgres_url(&self) -> Option<String> {
        match &self.db {
            Db::Postgres(url) => Some(url.clone()),
            Db::Sqlite(_) => None,
        }
    }

    /// Runs `statements` on this server's database through a connection of the test's own
    /// (to play a failing or misbehaving database: triggers, direct writes).
    pub async fn sql(&self, statements: &str) {
        use sqlx::Connection as _;
        match self.postgres_url() {
            Some(url) => {
                let mut conn = sqlx::PgConnection::connect(&url).await.expect("postgres");
                sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_owned()))
                    .execute(&mut conn)
                    .await
                    .expect("sql");
            }
            None => {
                let Db::Sqlite(path) = &self.db else {
                    unreachable!("not SQLite")
                };
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .busy_timeout(std::time::Duration::from_secs(5));
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .expect("sqlite");
                sqlx::raw_sql(sqlx::AssertSqlSafe(statements.to_owned()))
                    .execute(&mut conn)
                    .await
                    .expect("sql");
            }
        }
    }

    /// Stops the server and drops its PostgreSQL database (if it made one).
    pub async fn finish(mut self) {
        self.stop().await;
        // Close the pools before dropping the database.
        drop(self.service);
        if let Some(name) = self.postgres_db.take() {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url())
                .await
                .expect("postgres");
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .expect("drop database");
        }
    }

    /// One HTTP request; the status and the body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        http_request(self.addr, method, path, headers, body).await
    }

    pub async fn invite(&self, user: &str) -> String {
        self.service
            .create_invitation(user, None)
            .await
            .expect("invite")
    }

    /// Registers a new device for the holder of `authorization`.
    pub async fn register(&self, authorization: api::Authorization) -> Result<Device, Reply> {
        let key = ed25519_dalek::SigningKey::from_bytes(&random32());
        self.register_key(key, authorization).await
    }

    pub async fn register_key(
        &self,
        key: ed25519_dalek::SigningKey,
        authorization: api::Authorization,
    ) -> Result<Device, Reply> {
        self.register_key_with(key, |_| authorization).await
    }

    /// Registers a new device with the authorization `authorize` makes from the challenge
    /// nonce (an ID token must carry it).
    pub async fn register_with(
        &self,
        authorize: impl FnOnce(&[u8]) -> api::Authorization,
    ) -> Result<Device, Reply> {
        let key = ed25519_dalek::SigningKey::from_bytes(&random32());
        self.register_key_with(key, authorize).await
    }

    pub async fn register_key_with(
        &self,
        key: ed25519_dalek::SigningKey,
        authorize: impl FnOnce(&[u8]) -> api::Authorization,
    ) -> Result<Device, Reply> {
        let challenge: api::Challenge = self.raw("POST", "/v1/challenges", &[], b"").await.ok();
        let authorization = authorize(&challenge.nonce.0);
        let public = key.verifying_key().to_bytes().to_vec();
        let proof = key.sign(&api::register_proof_message(&challenge.nonce.0, &public));
        let request = api::RegisterRequest {
            authorization,
            challenge_id: challenge.challenge_id,
            signature_key: public.into(),
            proof: proof.to_bytes().to_vec().into(),
        };
        let reply: Reply = self
            .raw(
                "POST",
                "/v1/register",
                &[],
                &serde_json::to_vec(&request).unwrap(),
            )
            .await
            .into();
        if reply.status != 201 {
            return Err(reply);
        }
        let registered: api::Registered = reply.json();
        Ok(Device {
            key,
            user_id: registered.user_id,
            device_id: registered.device_id,
            certificate: registered.certificate,
        })
    }

    /// A request signed by `device` at the AS clock.
    pub async fn signed(
        &self,
        device: &Device,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Reply {
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let headers = device.sign_headers(method, path, self.now(), &body);
        self.raw(method, path, &headers, &body).await.into()
    }
}

pub fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("random");
    b
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl From<(u16, Vec<u8>)> for Reply {
    fn from((status, body): (u16, Vec<u8>)) -> Self {
        Self { status, body }
    }
}

impl Reply {
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts an error answer with `status` and `code`.
    pub fn assert_error(&self, status: u16, code: api::ErrorCode) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        let body: api::ErrorBody = self.json();
        assert_eq!(body.code, code, "{}", body.message);
    }
}

trait Ok {
    fn ok<T: DeserializeOwned>(self) -> T;
}

impl Ok for (u16, Vec<u8>) {
    fn ok<T: DeserializeOwned>(self) -> T {
        let reply = Reply::from(self);
        assert!(
            (200..300).contains(&reply.status),
            "status {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
        reply.json()
    }
}

/// A registered device: its private key stays here, never at the AS.
pub struct Device {
    pub key: ed25519_dalek::SigningKey,
    pub user_id: String,
    pub device_id: String,
    pub certificate: api::CertificateChain,
}

impl Device {
    pub fn public_key(&self) -> Vec<u8> {
        self.key.verifying_key().to_bytes().to_vec()
    }

    pub fn chain(&self) -> Vec<Vec<u8>> {
        self.certificate
            .certificates
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }

    /// Headers signing one request, with a fresh random nonce.
    pub fn sign_headers(
        &self,
        method: &str,
        path: &str,
        now: u64,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let nonce = api::encode_b64(&random32()[..16]);
        self.sign_headers_with_nonce(method, path, now, &nonce, body)
    }

    /// Headers signing one request with the given nonce.
    pub fn sign_headers_with_nonce(
        &self,
        method: &str,
        path: &str,
        now: u64,
        nonce: &str,
        body: &[u8],
    ) -> Vec<(&'static str, String)> {
        let ts = now.to_string();
        let sig = self.key.sign(&api::request_message(
            method,
            path,
            &ts,
            nonce,
            &self.device_id,
            body,
        ));
        vec![
            (api::HEADER_DEVICE, self.device_id.clone()),
            (api::HEADER_TIMESTAMP, ts),
            (api::HEADER_NONCE, nonce.to_owned()),
            (api::HEADER_SIGNATURE, api::encode_b64(&sig.to_bytes())),
        ]
    }

    /// A contact key signed by this device.
    pub fn contact_key(&self, key: &[u8]) -> api::ContactKey {
        let sig = self.key.sign(&api::contact_key_message(
            &self.user_id,
            &self.device_id,
            key,
        ));
        api::ContactKey {
            key: Bytes(key.to_vec()),
            signature: Bytes(sig.to_bytes().to_vec()),
        }
    }
}

/// A minimal HTTP/1.1 client (one request per connection).
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let mut body = response[split + 4..].to_vec();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// An invitation code as the authorization of a registration.
pub fn invitation(code: &str) -> api::Authorization {
    api::Authorization::Invitation {
        code: code.to_owned(),
    }
}

/// A new device of `user`, registered with a fresh invitation.
pub async fn device_for(server: &TestServer, user: &str) -> Device {
    let code = server.invite(user).await;
    server.register(invitation(&code)).await.expect("register")
}
