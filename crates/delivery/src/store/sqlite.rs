//! The embedded engine: one SQLite file in WAL mode.
//!
//! All writes go through one task that owns the only write connection (the single writer).
//! It takes every write waiting in its queue (up to [`MAX_BATCH`]), runs each in a savepoint
//! of one `BEGIN IMMEDIATE` transaction, commits once — one fsync for the whole batch, with
//! `synchronous = FULL` — and only then answers each write: a write is reported done only
//! once it is on disk (group commit). A write whose own statements fail rolls back its
//! savepoint alone. Reads use a small pool of read-only connections, which WAL lets run
//! beside the writer.

use super::sql::sql_store;
use super::*;
use futures_util::future::BoxFuture;
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most writes committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// Hands a write's result to its caller once the batch's commit is known.
type Deliver = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write, run on the writer's connection inside the batch transaction.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Deliver> + Send>;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Job>,
    read: SqlitePool,
}

async fn writer(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(job) = jobs.recv().await {
        batch.push(job);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
            Ok(tx) => tx,
            Err(e) => {
                // Dropping the jobs drops their answer channels: each caller gets an error.
                tracing::error!(error = %e, "SQLite writer could not begin");
                batch.clear();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let mut delivers = Vec::with_capacity(size);
        for job in batch.drain(..) {
            delivers.push(job(&mut tx).await);
        }
        let committed = tx.commit().await.map_err(|e| e.to_string());
        metrics::histogram!("ds_sqlite_batch_size").record(size as f64);
        for deliver in delivers {
            deliver(committed.clone());
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies the migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        let (jobs, queue) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(writer(conn, queue));
        Ok(Self { jobs, read })
    }

    /// Runs `f` in the next batch and returns its result once the batch is on disk.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + Sync
            + 'static,
    {
        let (answer, result) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let r = f(conn).await;
                Box::new(move |committed: Result<(), String>| {
                    let _ = answer.send(committed.map_err(StoreError::Batch).and(r));
                }) as Deliver
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        result.await.map_err(|_| StoreError::WriterGone)?
    }

    fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// How the writer's connection is set up, read back from SQLite itself: the journal
    /// mode (`wal`) and the `synchronous` level (2, `FULL`: a commit is on disk, WAL
    /// included, before it returns, so a write answered 2xx survives a crash or power loss).
    pub async fn durability(&self) -> Result<(String, i64), StoreError> {
        self.write(|conn: &mut SqliteConnection| {
            Box::pin(async move {
                let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                    .fetch_one(&mut *conn)
                    .await?;
                let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok((mode, level))
            })
        })
        .await
    }
}

sql_store!(
    SqliteStore,
    SqliteConnection,
    claim_lock = "",
    wait_lock = "",
    lock_in_order = false
);
