//! The scale-out engine: PostgreSQL (SQL kept within what CockroachDB accepts), shared by
//! several stateless DS nodes. Transactions run at the default isolation; the epoch
//! compare-and-set is a conditional UPDATE whose row lock serialises competing commits, and
//! a KeyPackage claim locks its candidate with `FOR UPDATE SKIP LOCKED`.

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
    claim_lock = " FOR UPDATE SKIP LOCKED"
);
