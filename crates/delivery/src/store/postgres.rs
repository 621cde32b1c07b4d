//! The scale-out engine: PostgreSQL (SQL kept within what CockroachDB accepts), shared by
//! several stateless DS nodes. Transactions run at the default isolation; the epoch
//! compare-and-set is a conditional UPDATE whose row lock serialises competing commits, and
//! a KeyPackage claim locks its candidate with `FOR UPDATE SKIP LOCKED`.

use super::sql::{retry, sql_store};
use super::*;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects and applies the migrations. The migrator runs without its advisory lock
    /// (CockroachDB has none): start the first node alone on a new database.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(url)
            .await?;
        let mut migrator = sqlx::migrate!("./migrations/postgres");
        migrator.set_locking(false);
        migrator.run(&pool).await?;
        Ok(Self { pool })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

sql_store!(
    PostgresStore,
    sqlx::Postgres,
    claim_lock = " FOR UPDATE SKIP LOCKED"
);
