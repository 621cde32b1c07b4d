//! Races on the DS storage, over real HTTP on loopback, with two DS nodes sharing one
//! database (one SQLite file, or one PostgreSQL database): mailbox cursors under concurrent
//! inserters, the per-pool claim rate limit across nodes, claims of a pool's last
//! KeyPackages, and nodes migrating a fresh PostgreSQL database at the same time.

#[macro_use]
mod support;

use conclave_api::delivery::*;
use conclave_ds::store::Store;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use support::mls::Mls;
use support::*;

engine_suite!(
    mailbox_cursor_never_skips_an_entry_committed_late,
    claim_rate_limit_holds_across_nodes,
    concurrent_claims_take_every_regular_key_package_before_the_last_resort,
    a_welcome_goes_with_its_last_entry,
);

fn now() -> u64 {
    conclave_ds::auth::now()
}

/// Groups committing concurrently, each commit queueing a Welcome into the watched mailbox.
const GROUPS: usize = 6;
/// Commits per group.
const COMMITS: u64 = 10;
/// Other joiners' mailboxes each Welcome also goes to, after the watched one: the commit's
/// transaction stays open a while after it queued the watched mailbox's entry.
const OTHERS: usize = 24;
/// Tasks posting blobs concurrently, and blobs each.
const POSTERS: usize = 4;
const BLOBS: usize = 40;

/// RFC 9750 §5.2 / §6.3: an offline reader gets everything from its cursor. Many
/// transactions insert into one mailbox at once, on two nodes (commits queueing Welcomes,
/// blob posts) while its owner pages through it by cursor: the reader must see every entry
/// exactly once, in cursor order, although transactions commit in any order.
async fn mailbox_cursor_never_skips_an_entry_committed_late(engine: Engine) {
    let env = Env::new(engine).await;
    let (_node_b, b) = env.second_node(|_| {}).await;
    let a = env.client.clone();
    let mls = Mls::new();
    let (mailbox, mkey) = a.mailbox().await;
    let mut to = vec![mailbox.clone()];
    for _ in 0..OTHERS {
        to.push(a.mailbox().await.0);
    }
    // A real Welcome (the DS only checks that it is one, and never links it to a group).
    let welcome = {
        let mut g = mls.create_group("w", format!("w-{}", hex(&random::<8>())).as_bytes());
        let joiner = mls.joiner("j");
        mls.commit_add(&mut g, &[&joiner])
            .welcome
            .expect("a Welcome")
    };
    // Every group's commits, built in advance (each signed with its epoch's key).
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let gid = format!("cursor-{g}-{}", hex(&random::<8>())).into_bytes();
        let mut group = mls.create_group("alice", &gid);
        let mut key = mls.auth_key(&group);
        assert_eq!(a.create_group(&gid, &key).await.status, 201);
        let mut commits = Vec::new();
        for epoch in 0..COMMITS {
            let p = mls.commit_update(&mut group);
            let mut request = commit_request(&p, &[]);
            request.welcomes = vec![WelcomeDelivery {
                welcome: Bytes(welcome.clone()),
                mailboxes: to.clone(),
            }];
            commits.push((epoch, request, key.clone()));
            mls.accepted(&mut group);
            key = mls.auth_key(&group);
        }
        groups.push((gid, commits));
    }
    let mut writers = Vec::new();
    for (i, (gid, commits)) in groups.into_iter().enumerate() {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            for (epoch, request, key) in commits {
                let r = c.commit(&gid, &request, &key, epoch).await;
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
            }
        }));
    }
    let mut posted = BTreeSet::new();
    for p in 0..POSTERS {
        let c = if p % 2 == 0 { b.clone() } else { a.clone() };
        let mailbox = mailbox.clone();
        let blobs: Vec<Vec<u8>> = (0..BLOBS)
            .map(|k| format!("blob-{p}-{k}").into_bytes())
            .collect();
        posted.extend(blobs.iter().cloned());
        writers.push(tokio::spawn(async move {
            for blob in blobs {
                let r = c.post_blob(&mailbox, &blob).await;
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
            }
        }));
    }
    // The owner pages by cursor while the writers run, then once more after they are done.
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (c, mailbox, mkey, done) = (a.clone(), mailbox.clone(), mkey.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: Vec<MailboxEntry> = Vec::new();
            let mut cursor = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                loop {
                    let page = c.entries_after(&mailbox, &mkey, cursor, 7).await;
                    let Some(last) = page.last() else { break };
                    cursor = last.id;
                    seen.extend(page);
                }
                if finished {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let seen = reader.await.expect("reader");
    // Cursor order is strictly increasing: nothing twice.
    assert!(
        seen.windows(2).all(|w| w[0].id < w[1].id),
        "ids out of cursor order"
    );
    // Everything the mailbox holds was seen by the cursor reader.
    let all = a.entries_after(&mailbox, &mkey, 0, 1000).await;
    let seen_ids: BTreeSet<i64> = seen.iter().map(|e| e.id).collect();
    let skipped: Vec<i64> = all
        .iter()
        .map(|e| e.id)
        .filter(|id| !seen_ids.contains(id))
        .collect();
    assert!(
        skipped.is_empty(),
        "the cursor reader skipped entries committed after a later id: {skipped:?}"
    );
    assert_eq!(all.len(), seen.len());
    let blobs: Vec<Vec<u8>> = seen
        .iter()
        .filter(|e| e.kind == MailboxEntryKind::Blob)
        .map(|e| e.data.0.clone())
        .collect();
    assert_eq!(blobs.len(), posted.len(), "every blob exactly once");
    assert_eq!(blobs.into_iter().collect::<BTreeSet<_>>(), posted);
    let welcomes = seen
        .iter()
        .filter(|e| e.kind == MailboxEntryKind::Welcome)
        .inspect(|e| assert_eq!(e.data.0, welcome))
        .count();
    assert_eq!(
        welcomes,
        GROUPS * COMMITS as usize,
        "one Welcome per commit"
    );
}

/// RFC 9420 §16.8: the claim rate of a pool is one budget, whichever node serves the claim;
/// a claim with a wrong secret spends it too (guessing is limited as well).
async fn claim_rate_limit_holds_across_nodes(engine: Engine) {
    const PER_MINUTE: u32 = 4;
    let env = Env::with(engine, |c| c.claims_per_minute = PER_MINUTE).await;
    let (_node_b, b) = env.second_node(|c| c.claims_per_minute = PER_MINUTE).await;
    let a = env.client.clone();
    let (mailbox, key) = a.mailbox().await;
    let secret = random::<16>();
    let mut pools = Vec::new();
    for _ in 0..4 {
        let p = a.create_pool(&mailbox, &key, &secret).await;
        let blobs: Vec<_> = (0..30u8).map(|i| (vec![i], false)).collect();
        let r = a
            .upload_key_packages(&mailbox, &key, &p, blobs, now() + 3600)
            .await;
        assert_eq!(r.status, 204);
        pools.push(p);
    }
    // Alternating nodes: the budget is spent after PER_MINUTE claims in all.
    for i in 0..PER_MINUTE {
        let c = if i % 2 == 0 { &a } else { &b };
        assert_eq!(c.claim(&pools[0], &secret).await.status, 200, "claim {i}");
    }
    for c in [&a, &b] {
        let r = c.claim(&pools[0], &secret).await;
        assert_eq!((r.status, r.code()), (429, ErrorCode::RateLimited));
    }
    // Another pool has its own budget.
    assert_eq!(b.claim(&pools[1], &secret).await.status, 200);
    // Wrong secrets spend the budget too.
    for i in 0..PER_MINUTE {
        let c = if i % 2 == 0 { &a } else { &b };
        let r = c.claim(&pools[2], b"a wrong secret!!").await;
        assert_eq!((r.status, r.code()), (401, ErrorCode::BadClaimSecret));
    }
    let r = a.claim(&pools[2], &secret).await;
    assert_eq!((r.status, r.code()), (429, ErrorCode::RateLimited));
    // Many claims at once on both nodes: the budget, no more (plus what refilled meanwhile).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        let pool = pools[3].clone();
        tasks.push(tokio::spawn(async move { c.claim(&pool, &secret).await }));
    }
    let mut granted = 0u64;
    for t in tasks {
        let r = t.await.expect("claim");
        match r.status {
            200 => granted += 1,
            429 => assert_eq!(r.code(), ErrorCode::RateLimited),
            s => panic!("status {s}"),
        }
    }
    let refilled = started.elapsed().as_secs() * u64::from(PER_MINUTE) / 60;
    assert!(
        granted >= u64::from(PER_MINUTE) && granted <= u64::from(PER_MINUTE) + refilled + 1,
        "{granted} claims granted at {PER_MINUTE} a minute"
    );
}

/// RFC 9750 §5.1: the last-resort KeyPackage is handed out only when no other is left, and
/// never deleted. Rounds of as many concurrent claims (on two nodes) as there are regular
/// KeyPackages: each must get a regular one, every one exactly once.
async fn concurrent_claims_take_every_regular_key_package_before_the_last_resort(engine: Engine) {
    const ROUNDS: usize = 6;
    const REGULAR: usize = 8;
    let env = Env::new(engine).await;
    let (_node_b, b) = env.second_node(|_| {}).await;
    let a = env.client.clone();
    let (mailbox, key) = a.mailbox().await;
    let secret = random::<16>();
    let pool = a.create_pool(&mailbox, &key, &secret).await;
    let last = b"the last resort".to_vec();
    let r = a
        .upload_key_packages(
            &mailbox,
            &key,
            &pool,
            vec![(last.clone(), true)],
            now() + 3600,
        )
        .await;
    assert_eq!(r.status, 204);
    for round in 0..ROUNDS {
        let uploaded: BTreeSet<Vec<u8>> = (0..REGULAR)
            .map(|i| format!("kp-{round}-{i}").into_bytes())
            .collect();
        let blobs = uploaded.iter().map(|k| (k.clone(), false)).collect();
        let r = a
            .upload_key_packages(&mailbox, &key, &pool, blobs, now() + 3600)
            .await;
        assert_eq!(r.status, 204);
        let mut tasks = Vec::new();
        for i in 0..REGULAR {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let r = c.claim(&pool, &secret).await;
                assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                r.json::<ClaimResponse>()
            }));
        }
        let mut got = Vec::new();
        for t in tasks {
            let claimed = t.await.expect("claim");
            assert!(
                !claimed.last_resort,
                "round {round}: the last resort was handed out while regular KeyPackages were left"
            );
            got.push(claimed.sealed.0);
        }
        let distinct: BTreeSet<Vec<u8>> = got.iter().cloned().collect();
        assert_eq!(
            distinct.len(),
            got.len(),
            "a KeyPackage was handed out twice"
        );
        assert_eq!(distinct, uploaded);
        let status = a.pool_status(&mailbox, &key, &pool).await;
        assert_eq!((status.available, status.last_resort), (0, true));
    }
    // Now only the last resort is left: every claim gets it, and it stays.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let c = if i % 2 == 0 { a.clone() } else { b.clone() };
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            c.claim(&pool, &secret).await.json::<ClaimResponse>()
        }));
    }
    for t in tasks {
        let claimed = t.await.expect("claim");
        assert!(claimed.last_resort);
        assert_eq!(claimed.sealed.0, last);
    }
    let status = a.pool_status(&mailbox, &key, &pool).await;
    assert_eq!((status.available, status.last_resort), (0, true));
}

/// A regular KeyPackage row locked by a concurrent transaction (a claimer on another node,
/// in the middle of its transaction, which then fails) is still there: a claim must not
/// fall through to the last resort, but wait and take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_claim_never_skips_to_the_last_resort_past_a_locked_key_package() {
    use sqlx::Connection;
    let env = Env::new(Engine::Postgres).await;
    let (_node_b, b) = env.second_node(|_| {}).await;
    let a = env.client.clone();
    let (mailbox, key) = a.mailbox().await;
    let secret = random::<16>();
    let pool = a.create_pool(&mailbox, &key, &secret).await;
    let blobs = vec![(b"regular".to_vec(), false), (b"last".to_vec(), true)];
    let r = a
        .upload_key_packages(&mailbox, &key, &pool, blobs, now() + 3600)
        .await;
    assert_eq!(r.status, 204);
    let url = env.db.postgres_url().expect("PostgreSQL");
    let mut other = sqlx::PgConnection::connect(&url).await.expect("connect");
    let mut tx = other.begin().await.expect("begin");
    let locked: Vec<(i64,)> =
        sqlx::query_as("SELECT id FROM sealed_key_packages WHERE last_resort = FALSE FOR UPDATE")
            .fetch_all(&mut *tx)
            .await
            .expect("lock");
    assert_eq!(locked.len(), 1);
    let claim = {
        let (b, pool) = (b.clone(), pool.clone());
        tokio::spawn(async move { b.claim(&pool, &secret).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    // The concurrent claimer fails: the regular KeyPackage is still there.
    tx.rollback().await.expect("rollback");
    let r = claim.await.expect("claim");
    assert_eq!(r.status, 200);
    let claimed: ClaimResponse = r.json();
    assert!(
        !claimed.last_resort,
        "the last resort was handed out while a regular KeyPackage was left"
    );
    assert_eq!(claimed.sealed.0, b"regular");
    let claimed: ClaimResponse = a.claim(&pool, &secret).await.json();
    assert!(claimed.last_resort);
    let status = a.pool_status(&mailbox, &key, &pool).await;
    assert_eq!((status.available, status.last_resort), (0, true));
}

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

/// RFC 9420 §12.4.3.1: one Welcome for all of a commit's joiners, stored once; it goes when
/// its last mailbox entry is acknowledged or expires, and not before.
async fn a_welcome_goes_with_its_last_entry(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    let mut boxes = Vec::new();
    for _ in 0..3 {
        boxes.push(c.mailbox().await);
    }
    let gid = format!("welcome-refs-{}", hex(&random::<8>())).into_bytes();
    let mut alice = mls.create_group("alice", &gid);
    assert_eq!(
        c.create_group(&gid, &mls.auth_key(&alice)).await.status,
        201
    );
    let p = mls.commit_add(&mut alice, &[&mls.joiner("bob")]);
    let to: Vec<&str> = boxes.iter().map(|(m, _)| m.as_str()).collect();
    let r = c
        .commit(&gid, &commit_request(&p, &to), &mls.auth_key(&alice), 0)
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    mls.accepted(&mut alice);
    assert_eq!(env.db.count_rows("welcomes").await, 1);
    assert_eq!(env.db.count_rows("mailbox_entries").await, 3);
    let ack = |i: usize| {
        let (m, k) = boxes[i].clone();
        let c = c.clone();
        async move {
            let id = c.entries(&m, &k).await[0].id;
            let r = c
                .json(
                    "POST",
                    &format!("/v1/mailboxes/{m}/ack"),
                    &AckRequest { ids: vec![id] },
                    Sign::Mailbox(&k),
                )
                .await;
            assert_eq!(r.json::<AckResponse>().deleted, 1);
        }
    };
    ack(0).await;
    ack(1).await;
    assert_eq!(
        env.db.count_rows("welcomes").await,
        1,
        "one entry still refers to it"
    );
    // The last entry expires: the pruner takes the Welcome with it.
    let far = now() as i64 + 400 * 86_400;
    let cutoffs = conclave_ds::store::PruneCutoffs {
        messages_before: 0,
        commits_before: 0,
        now: far,
        grace_before: far - 60,
        spent_tokens_before: i64::MIN,
        batch: 100,
    };
    let pruned = conclave_ds::retention::prune(env.server.store.as_ref(), cutoffs)
        .await
        .expect("prune");
    assert_eq!((pruned.mailbox_entries, pruned.welcomes), (1, 1));
    assert_eq!(env.db.count_rows("welcomes").await, 0);
    // A Welcome whose entries are all acknowledged goes at the last acknowledgement.
    let p = mls.commit_add(&mut alice, &[&mls.joiner("carol")]);
    let r = c
        .commit(
            &gid,
            &commit_request(&p, &to[..2]),
            &mls.auth_key(&alice),
            1,
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(env.db.count_rows("welcomes").await, 1);
    ack(0).await;
    assert_eq!(env.db.count_rows("welcomes").await, 1);
    ack(1).await;
    assert_eq!(env.db.count_rows("welcomes").await, 0);
}

/// SQLite: the writer's connection runs in WAL mode with `synchronous = FULL`, so the
/// commit of a batch is on disk before any of its writes is answered; writes are batched
/// by the single writer task (group commit).
#[tokio::test]
async fn sqlite_writer_is_wal_with_full_sync_and_batches_writes() {
    let db = Db::new(Engine::Sqlite).await;
    let store = conclave_ds::store::sqlite::SqliteStore::open(&db.sqlite_path())
        .await
        .expect("open");
    let (mode, synchronous) = store.durability().await.expect("pragmas");
    assert_eq!(mode, "wal");
    assert_eq!(synchronous, 2, "synchronous = FULL");
    const { assert!(conclave_ds::store::sqlite::MAX_BATCH > 1) };
}
