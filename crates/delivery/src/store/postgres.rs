//! The scale-out engine: PostgreSQL (SQL kept within what CockroachDB accepts), shared by
//! several stateless DS nodes that may start at once ([`migrate`]). Transactions run at the
//! default isolation and are retried on serialization failure or deadlock; the epoch
//! compare-and-set is a conditional UPDATE whose row lock serialises competing commits, a
//! mailbox's entries are numbered from a counter in its row, and a KeyPackage claim takes a
//! token from the pool's row, then locks its candidate with `FOR UPDATE SKIP LOCKED`.

use super::sql::{retry, sql_store};
use super::*;
use futures_util::future::BoxFuture;
use sqlx::Connection;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects and applies the migrations ([`migrate`]); several nodes may start at once.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    /// Runs `f` on a pooled connection (it opens its own transaction), again on a
    /// serialization failure or deadlock.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut PgConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + Sync
            + 'static,
    {
        retry!(async {
            let mut conn = self.pool.acquire().await?;
            f(&mut conn).await
        })
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

sql_store!(
    PostgresStore,
    PgConnection,
    claim_lock = " FOR UPDATE SKIP LOCKED",
    wait_lock = " FOR UPDATE",
    lock_in_order = true
);

/// The table of applied migrations: sqlx's own, so a database migrated by `sqlx migrate`
/// (or by an earlier DS) is recognised, and the other way round.
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Applies the migrations under `migrations/postgres` that the database lacks, safely when
/// several nodes start at once, and without an advisory lock (CockroachDB has none).
///
/// Each migration runs in one transaction that *first* inserts its version row. A second
/// node applying the same migration blocks on that row's unique key until the first one
/// commits, then finds the version there (`ON CONFLICT DO NOTHING` returns no row), rolls
/// back and checks the checksum; if the first one failed, the second one applies it.
/// Serialization failures are retried.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let migrator = sqlx::migrate!("./migrations/postgres");
    // Two nodes creating the table at once may collide in the catalog (unique_violation,
    // duplicate_table, or duplicate_object for its row type); the loser retries and finds
    // it there.
    let mut attempt = 0u32;
    loop {
        match sqlx::raw_sql(MIGRATIONS_TABLE).execute(pool).await {
            Ok(_) => break,
            Err(sqlx::Error::Database(d))
                if attempt < 10
                    && matches!(
                        d.code().as_deref(),
                        Some("23505" | "42P07" | "42710" | "40001")
                    ) =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(1u64 << attempt.min(7))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM _sqlx_migrations")
        .fetch_all(pool)
        .await?;
    if let Some((v,)) = applied.iter().find(|(v,)| !known.contains(v)) {
        // Applied by a newer DS: this one does not know the schema.
        return Err(sqlx::migrate::MigrateError::VersionMissing(*v).into());
    }
    for m in migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        retry!(apply(pool, m))?;
    }
    Ok(())
}

/// Applies one migration unless it is there already (see [`migrate`]).
async fn apply(pool: &PgPool, m: &sqlx::migrate::Migration) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let claimed: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, TRUE, $3, -1) ON CONFLICT (version) DO NOTHING RETURNING version",
    )
    .bind(m.version)
    .bind(&*m.description)
    .bind(&*m.checksum)
    .fetch_optional(&mut *tx)
    .await?;
    if claimed.is_none() {
        let (success, checksum): (bool, Vec<u8>) =
            sqlx::query_as("SELECT success, checksum FROM _sqlx_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_one(&mut *tx)
                .await?;
        tx.rollback().await?;
        if !success {
            return Err(sqlx::migrate::MigrateError::Dirty(m.version).into());
        }
        if checksum != *m.checksum {
            return Err(sqlx::migrate::MigrateError::VersionMismatch(m.version).into());
        }
        return Ok(());
    }
    sqlx::raw_sql(m.sql.clone())
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if super::sql::is_retryable(&e) {
                StoreError::Database(e)
            } else {
                sqlx::migrate::MigrateError::ExecuteMigration(e, m.version).into()
            }
        })?;
    tx.commit().await?;
    Ok(())
}
