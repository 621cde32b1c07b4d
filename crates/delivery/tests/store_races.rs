//! Races on the DS storage with several DS nodes sharing one database: nodes migrating a
//! fresh PostgreSQL database at the same time.

mod support;

use conclave_ds::store::Store;
use support::*;

/// Several nodes starting at once on a fresh PostgreSQL database (no advisory lock, which
/// CockroachDB lacks): every node starts, and each migration is applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_starting_together_migrate_once() {
    use sqlx::Connection;
    let expected: Vec<i64> = sqlx::migrate!("./migrations/postgres")
        .iter()
        .map(|m| m.version)
        .collect();
    for _ in 0..3 {
        let db = Db::new(Engine::Postgres).await;
        let url = db.postgres_url().expect("PostgreSQL");
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    conclave_ds::store::postgres::PostgresStore::open(&url, 2).await
                })
            })
            .collect();
        let mut stores = Vec::new();
        for (i, n) in nodes.into_iter().enumerate() {
            match n.await.expect("task") {
                Ok(s) => stores.push(s),
                Err(e) => panic!("node {i} did not start: {e}"),
            }
        }
        let mut c = sqlx::PgConnection::connect(&url).await.expect("connect");
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut c)
                .await
                .expect("migrations table");
        assert_eq!(
            applied,
            expected.iter().map(|v| (*v, true)).collect::<Vec<_>>()
        );
        // The schema is there and usable from every node.
        for s in &stores {
            assert!(s.group_state(b"none").await.expect("query").is_none());
        }
    }
}
