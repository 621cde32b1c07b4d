//! The PostgreSQL backend, for several stateless AS nodes sharing one database. The SQL is
//! the same as SQLite's ([`super::sql`]), kept to what CockroachDB also accepts.
//! Migrations in `migrations/postgres` are applied at connect, without advisory locks
//! (see [`PostgresStore::connect`]).

use super::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The AS store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host/db`) and migrates the database; several
    /// nodes may do so at once (each migration's version row is inserted first in its
    /// transaction, so a second node waits on that key and then skips it).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }
}

/// Applies `migrations/postgres` without an advisory lock (CockroachDB has none): each
/// migration runs in a transaction that first inserts its version into `as_migrations`.
/// A second node migrating at the same time blocks on that unique key until the first
/// commits, then finds the version taken and skips it (or applies it, if the first rolled
/// back). A version already applied must have the same checksum.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let create = "CREATE TABLE IF NOT EXISTS as_migrations (version BIGINT PRIMARY KEY, \
                  description TEXT NOT NULL, checksum BYTEA NOT NULL)";
    // Two nodes creating the table at once may collide in the catalogue: retry once.
    if sqlx::query(create).execute(pool).await.is_err() {
        sqlx::query(create).execute(pool).await?;
    }
    // A database migrated by sqlx's own (advisory-locking) migrator: adopt its record.
    let legacy: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::TEXT")
        .fetch_one(pool)
        .await?;
    if legacy.is_some() {
        sqlx::query(
            "INSERT INTO as_migrations (version, description, checksum) \
             SELECT version, description, checksum FROM _sqlx_migrations WHERE success \
             ON CONFLICT (version) DO NOTHING",
        )
        .execute(pool)
        .await?;
    }
    for migration in sqlx::migrate!("./migrations/postgres").iter() {
        let mut tx = pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO as_migrations (version, description, checksum) VALUES ($1, $2, $3) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(migration.version)
        .bind(migration.description.as_ref())
        .bind(migration.checksum.as_ref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            let checksum: Vec<u8> =
                sqlx::query_scalar("SELECT checksum FROM as_migrations WHERE version = $1")
                    .bind(migration.version)
                    .fetch_one(&mut *tx)
                    .await?;
            if checksum != migration.checksum.as_ref() {
                return Err(StoreError::Corrupt(
                    "an applied migration differs from this build's",
                ));
            }
            continue;
        }
        sqlx::raw_sql(migration.sql.clone())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

super::sql::impl_store!(PostgresStore, sqlx::Postgres, pool, pool);
