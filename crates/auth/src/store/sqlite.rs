//! The SQLite backend: one file, WAL, one writing connection (SQLite serialises writers
//! anyway; one connection avoids `SQLITE_BUSY` on lock upgrades) and a few readers.
//! `synchronous=FULL`: every commit is on disk before the AS answers 2xx (with `NORMAL`
//! in WAL mode a power loss can drop the last commits after their answers went out).
//! Migrations in `migrations/sqlite` are applied at open.

use super::StoreError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::time::Duration;

/// The AS store on a SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }
}

super::sql::impl_store!(SqliteStore, sqlx::Sqlite, writer, reader);
