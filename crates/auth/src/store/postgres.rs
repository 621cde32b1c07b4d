//! The PostgreSQL backend, for several stateless AS nodes sharing one database. The SQL is
//! the same as SQLite's ([`super::sql`]), kept to what CockroachDB also accepts.
//! Migrations in `migrations/postgres` are applied at connect.

use super::StoreError;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The AS store on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host/db`) and migrates the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

super::sql::impl_store!(PostgresStore, sqlx::Postgres, pool, pool);
