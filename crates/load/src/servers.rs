//! The servers under load: the real `conclave-as` and `conclave-ds` binaries, each in a
//! process of its own (so the load generator's CPU and sockets are counted apart from
//! theirs), on SQLite files or on fresh PostgreSQL databases with NATS between DS nodes.

use crate::LoadError;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};

/// The storage engine of both servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// One SQLite file per server (one DS node).
    Sqlite,
    /// A fresh PostgreSQL database per server, NATS between DS nodes; dropped at the end.
    Postgres,
}

/// Where the external services are.
#[derive(Clone, Debug)]
pub struct Services {
    /// PostgreSQL, an admin URL (`.../postgres`).
    pub postgres: String,
    /// NATS.
    pub nats: String,
}

/// The running servers; killed and their databases dropped when this is dropped.
pub struct Stack {
    /// The AS's base URL.
    pub auth_url: String,
    /// Each DS node's base URL.
    pub ds_urls: Vec<String>,
    children: Vec<Child>,
    ds_pids: Vec<u32>,
    databases: Vec<String>,
    services: Services,
    dir: tempfile::TempDir,
}

/// A process's CPU time (user + system) and resident memory, from `/proc`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// Seconds of CPU.
    pub cpu_secs: f64,
    /// Resident set, bytes.
    pub rss_bytes: u64,
}

impl Stack {
    /// Starts the AS (after creating one invitation per line of `users`) and `nodes` DS
    /// nodes, with limits opened up for a load test from one address. The DS nodes take no
    /// Privacy Pass key: creations are free, so the run measures delivery, not issuance.
    pub async fn start(
        bin_dir: &Path,
        engine: Engine,
        nodes: usize,
        services: Services,
        users: &[String],
    ) -> Result<(Stack, Vec<String>), LoadError> {
        let dir = tempfile::tempdir()?;
        let mut stack = Stack {
            auth_url: String::new(),
            ds_urls: Vec::new(),
            children: Vec::new(),
            ds_pids: Vec::new(),
            databases: Vec::new(),
            services,
            dir,
        };
        let as_db: Vec<String> = match engine {
            Engine::Sqlite => vec![
                "--db".into(),
                stack.dir.path().join("as.sqlite").display().to_string(),
            ],
            Engine::Postgres => vec!["--postgres".into(), stack.create_database("as").await?],
        };
        let keys = stack.dir.path().join("as-keys").display().to_string();
        let as_bin = bin_dir.join("conclave-as");
        let mut common = as_db.clone();
        common.extend(["--keys".into(), keys]);

        // Invitations first, through the operator command (the server is not running yet).
        let users_file = stack.dir.path().join("users.txt");
        std::fs::write(&users_file, users.join("\n"))?;
        let out = Command::new(&as_bin)
            .args(&common)
            .args(["invite", "--from"])
            .arg(&users_file)
            .output()
            .await
            .map_err(|e| LoadError::Spawn(as_bin.clone(), e))?;
        if !out.status.success() {
            return Err(LoadError::Server(format!(
                "conclave-as invite: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t').map(|(_, c)| c.to_owned()))
            .collect();
        if codes.len() != users.len() {
            return Err(LoadError::Server(format!(
                "conclave-as invite printed {} codes for {} users",
                codes.len(),
                users.len()
            )));
        }

        let mut cmd = Command::new(&as_bin);
        cmd.args(&common).args(["--listen", "127.0.0.1:0"]);
        let (child, addr) = spawn(cmd, &as_bin).await?;
        stack.children.push(child);
        stack.auth_url = format!("http://{addr}");

        let ds_bin = bin_dir.join("conclave-ds");
        let ds_db: Vec<String> = match engine {
            Engine::Sqlite => vec![
                "--db".into(),
                stack.dir.path().join("ds.sqlite").display().to_string(),
            ],
            Engine::Postgres => vec!["--postgres".into(), stack.create_database("ds").await?],
        };
        for _ in 0..nodes {
            let mut cmd = Command::new(&ds_bin);
            cmd.args(&ds_db).args([
                "--listen",
                "127.0.0.1:0",
                "--claims-per-minute",
                "1000000",
                "--anonymous-creations-per-minute",
                "100000000",
                "--postgres-connections",
                "16",
            ]);
            if nodes > 1 {
                cmd.args(["--nats", &stack.services.nats]);
            }
            let (child, addr) = spawn(cmd, &ds_bin).await?;
            stack.ds_pids.extend(child.id());
            stack.children.push(child);
            stack.ds_urls.push(format!("http://{addr}"));
        }
        Ok((stack, codes))
    }

    async fn create_database(&mut self, role: &str) -> Result<String, LoadError> {
        use sqlx::Connection as _;
        let mut name = [0u8; 6];
        getrandom::fill(&mut name).map_err(|e| LoadError::Server(e.to_string()))?;
        let name = format!(
            "load_{role}_{}",
            name.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut c = sqlx::PgConnection::connect(&self.services.postgres).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        self.databases.push(name.clone());
        let base = self
            .services
            .postgres
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or_else(|| self.services.postgres.clone());
        Ok(format!("{base}/{name}"))
    }

    /// CPU and memory of the DS nodes, summed.
    pub fn ds_usage(&self) -> Usage {
        let mut total = Usage::default();
        for pid in &self.ds_pids {
            let u = usage(*pid);
            total.cpu_secs += u.cpu_secs;
            total.rss_bytes += u.rss_bytes;
        }
        total
    }

    /// The DS's database size in bytes (SQLite file with its WAL, or the PostgreSQL
    /// database).
    pub async fn ds_database_bytes(&self) -> Result<u64, LoadError> {
        match self.databases.iter().find(|d| d.starts_with("load_ds_")) {
            None => {
                let mut total = 0;
                for f in ["ds.sqlite", "ds.sqlite-wal"] {
                    total += std::fs::metadata(self.dir.path().join(f))
                        .map(|m| m.len())
                        .unwrap_or(0);
                }
                Ok(total)
            }
            Some(name) => {
                use sqlx::Connection as _;
                let mut c = sqlx::PgConnection::connect(&self.services.postgres).await?;
                let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size($1)")
                    .bind(name)
                    .fetch_one(&mut c)
                    .await?;
                Ok(size.max(0) as u64)
            }
        }
    }

    /// Stops the servers and drops the databases.
    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
        if let Ok(mut c) = {
            use sqlx::Connection as _;
            sqlx::PgConnection::connect(&self.services.postgres).await
        } {
            for name in std::mem::take(&mut self.databases) {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        }
    }
}

/// Spawns a server and waits for the `listening on ADDR` line it prints.
async fn spawn(mut cmd: Command, bin: &Path) -> Result<(Child, String), LoadError> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| LoadError::Spawn(bin.to_path_buf(), e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| LoadError::Server("no stdout".into()))?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(a) = line.strip_prefix("listening on ") {
                return Some(a.trim().to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| LoadError::Server(format!("{} did not start", bin.display())))?;
    // Keep reading what it prints so that a full pipe never blocks it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, addr))
}

/// CPU and memory of one process from `/proc/PID/stat` and `/proc/PID/status`.
pub fn usage(pid: u32) -> Usage {
    let ticks = 100.0; // USER_HZ on Linux
    let cpu_secs = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) end with ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / ticks)
        })
        .unwrap_or(0.0);
    let rss_bytes = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(0);
    Usage {
        cpu_secs,
        rss_bytes,
    }
}

/// Raises this process's open-file limit to what `need` descriptors require, up to what
/// the system allows (children, the servers, inherit it). Returns the limit in force.
pub fn raise_open_files(need: u64) -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let current = getrlimit(Resource::Nofile);
    let soft = current.current.unwrap_or(u64::MAX);
    if soft >= need {
        return soft;
    }
    let hard = current.maximum.unwrap_or(u64::MAX);
    // Raising the hard limit needs CAP_SYS_RESOURCE; try it, then fall back to the hard one.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(hard);
    let wanted = need.min(nr_open);
    if setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(wanted),
            maximum: Some(wanted.max(hard)),
        },
    )
    .is_ok()
    {
        return wanted;
    }
    let fallback = need.min(hard);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(fallback),
            maximum: current.maximum,
        },
    );
    getrlimit(Resource::Nofile).current.unwrap_or(fallback)
}

/// The directory of the server binaries: `--bin-dir`, or the one this binary is in.
pub fn bin_dir(given: Option<PathBuf>) -> Result<PathBuf, LoadError> {
    if let Some(d) = given {
        return Ok(d);
    }
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| LoadError::Server("no directory of this binary".into()))?;
    for bin in ["conclave-as", "conclave-ds"] {
        if !dir.join(bin).exists() {
            return Err(LoadError::Server(format!(
                "{} is not beside conclave-load in {}: build it (`cargo build --release \
                 -p conclave-as -p conclave-ds`) or pass --bin-dir",
                bin,
                dir.display()
            )));
        }
    }
    Ok(dir)
}
