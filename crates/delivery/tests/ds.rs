//! The DS integration suite, over real HTTP on loopback, run against SQLite and PostgreSQL
//! alike (`engine_suite!` instantiates every test once per engine).

#[macro_use]
mod support;

use conclave_api::delivery::*;
use support::mls::{ExternalInvite, Mls, Processed};
use support::*;

engine_suite!(
    mailbox_create_fetch_ack,
    bad_signatures_and_replays_are_refused,
    replayed_writes_are_refused_and_write_nothing,
    a_write_replayed_on_two_nodes_is_accepted_once,
    pool_upload_count_claim_last_resort,
    expired_key_packages_are_never_served,
    claims_are_rate_limited_per_pool,
    concurrent_claims_on_two_nodes_never_share_a_blob,
    real_mls_group_through_the_ds,
    racing_commits_exactly_one_wins,
    removed_member_can_no_longer_post_or_read,
    offline_reader_gets_everything_in_order,
    one_welcome_for_many_joiners_is_stored_once,
    welcome_fan_out_in_chunks_numbers_every_mailbox,
    errors_have_codes_and_statuses,
    group_info_and_external_commit_key,
    retention_deletes_what_it_should_and_nothing_else,
    websocket_push_of_group_and_mailbox,
    health_metrics_and_openapi_are_served,
    failing_writes_do_not_affect_concurrent_ones,
);

fn b64(b: &[u8]) -> String {
    Bytes(b.to_vec()).to_base64()
}

/// A nonce of a request nobody sent before.
fn fresh_nonce() -> conclave_ds::store::UsedNonce {
    conclave_ds::store::UsedNonce {
        scope: b"g\0batch".to_vec(),
        nonce: random::<16>().to_vec(),
        expires_at: i64::MAX,
    }
}

fn now() -> u64 {
    conclave_ds::auth::now()
}

async fn count(
    c: &Client,
    mailbox: &str,
    key: &ed25519_dalek::SigningKey,
    pool: &str,
) -> PoolStatus {
    let r = c
        .empty(
            "GET",
            &format!("/v1/mailboxes/{mailbox}/pools/{pool}"),
            Sign::Mailbox(key),
        )
        .await;
    assert_eq!(r.status, 200);
    r.json()
}

async fn mailbox_create_fetch_ack(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let (mailbox, key) = c.mailbox().await;
    assert!(c.entries(&mailbox, &key).await.is_empty());
    for blob in [b"first".as_slice(), b"second"] {
        let r = c
            .send(&c.prepare(
                "POST",
                &format!("/v1/mailboxes/{mailbox}/entries"),
                blob.to_vec(),
                "application/octet-stream",
                Sign::No,
                None,
            ))
            .await;
        assert_eq!(r.status, 201);
    }
    let entries = c.entries(&mailbox, &key).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].data.0, b"first");
    assert_eq!(entries[1].data.0, b"second");
    assert_eq!(entries[0].kind, MailboxEntryKind::Blob);
    assert!(entries[0].id < entries[1].id);
    let r = c
        .json(
            "POST",
            &format!("/v1/mailboxes/{mailbox}/ack"),
            &AckRequest {
                ids: vec![entries[0].id],
            },
            Sign::Mailbox(&key),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json::<AckResponse>().deleted, 1);
    let left = c.entries(&mailbox, &key).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].data.0, b"second");
    // Another mailbox's key cannot acknowledge (or read) this one's entries.
    let (_, other) = c.mailbox().await;
    let r = c
        .json(
            "POST",
            &format!("/v1/mailboxes/{mailbox}/ack"),
            &AckRequest {
                ids: vec![left[0].id],
            },
            Sign::Mailbox(&other),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(c.entries(&mailbox, &key).await.len(), 1);
}

async fn bad_signatures_and_replays_are_refused(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let (mailbox, key) = c.mailbox().await;
    let path = format!("/v1/mailboxes/{mailbox}/entries");
    // Unsigned.
    let r = c.empty("GET", &path, Sign::No).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::MissingSignature));
    // Signed by another key.
    let r = c.empty("GET", &path, Sign::Mailbox(&new_key())).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadSignature));
    // A valid request, then the same request replayed.
    let p = c.prepare(
        "GET",
        &path,
        vec![],
        "application/json",
        Sign::Mailbox(&key),
        None,
    );
    assert_eq!(c.send(&p).await.status, 200);
    let r = c.send(&p).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::Replay));
    // Replayed on another path: the signature covers the path.
    let mut moved = p.clone();
    moved.path = format!("/v1/mailboxes/{mailbox}/entries?after=0");
    let r = c.send(&moved).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadSignature));
    // A body changed after signing.
    let ack = format!("/v1/mailboxes/{mailbox}/ack");
    let mut p = c.prepare(
        "POST",
        &ack,
        serde_json::to_vec(&AckRequest { ids: vec![1] }).unwrap(),
        "application/json",
        Sign::Mailbox(&key),
        None,
    );
    p.body = serde_json::to_vec(&AckRequest { ids: vec![2] }).unwrap();
    let r = c.send(&p).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadSignature));
    // Outside the timestamp window.
    let p = c.prepare(
        "GET",
        &path,
        vec![],
        "application/json",
        Sign::Mailbox(&key),
        Some(now() - 3600),
    );
    let r = c.send(&p).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::StaleTimestamp));
    // Group requests: wrong epoch key refused, replay refused.
    let mls = Mls::new();
    let group = mls.create_group("alice", b"sig-group");
    let k0 = mls.auth_key(&group);
    assert_eq!(c.create_group(b"sig-group", &k0).await.status, 201);
    let r = c.log(b"sig-group", 1, &new_key(), 0).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadSignature));
    let lp = format!("/v1/groups/{}/log", b64(b"sig-group"));
    let p = c.prepare(
        "GET",
        &lp,
        vec![],
        "application/json",
        Sign::Group(&k0, 0),
        None,
    );
    assert_eq!(c.send(&p).await.status, 200);
    assert_eq!(c.send(&p).await.code(), ErrorCode::Replay);
}

/// An append and a commit, each sent twice: the second is refused as a replay (401
/// `replay`, the same answer as for any other replayed request) and writes nothing — the
/// nonce is recorded in the transaction of the write. A request refused for its epoch
/// spends its nonce too.
async fn replayed_writes_are_refused_and_write_nothing(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"replayed-writes".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(c.create_group(&gid, &k0).await.status, 201);
    let messages = format!("/v1/groups/{}/messages", b64(&gid));
    let commits = format!("/v1/groups/{}/commits", b64(&gid));

    let m = mls.encrypt(&mut alice, b"once");
    let p = c.prepare(
        "POST",
        &messages,
        m.clone(),
        MLS_MESSAGE_MEDIA_TYPE,
        Sign::Group(&k0, 0),
        None,
    );
    assert_eq!(c.send(&p).await.status, 201);
    let r = c.send(&p).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::Replay));
    assert_eq!(env.db.count_rows("log_entries").await, 1);

    let proposed = mls.commit_update(&mut alice);
    let commit = c.prepare(
        "POST",
        &commits,
        serde_json::to_vec(&commit_request(&proposed, &[])).unwrap(),
        "application/json",
        Sign::Group(&k0, 0),
        None,
    );
    assert_eq!(c.send(&commit).await.status, 201);
    mls.accepted(&mut alice);
    // Replayed, it is a replay (not a 409): nothing more is logged, no key added.
    let r = c.send(&commit).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::Replay));
    assert_eq!(env.db.count_rows("log_entries").await, 2);
    assert_eq!(env.db.count_rows("epoch_keys").await, 2);

    // A message of epoch 0 sent now is refused for its epoch (the grace is over: 409 says
    // the group is at 1), and sent again it is a replay: the refusal spent the nonce.
    let env2 = Env::with(engine, |c| c.previous_epoch_grace_secs = 0).await;
    let c2 = &env2.client;
    let mut bob = mls.create_group("bob", b"late");
    let b0 = mls.auth_key(&bob);
    assert_eq!(c2.create_group(b"late", &b0).await.status, 201);
    let late = mls.encrypt(&mut bob, b"late");
    let p = mls.commit_update(&mut bob);
    assert_eq!(
        c2.commit(b"late", &commit_request(&p, &[]), &b0, 0)
            .await
            .status,
        201
    );
    mls.accepted(&mut bob);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let p = c2.prepare(
        "POST",
        &format!("/v1/groups/{}/messages", b64(b"late")),
        late,
        MLS_MESSAGE_MEDIA_TYPE,
        Sign::Group(&b0, 0),
        None,
    );
    let r = c2.send(&p).await;
    assert_eq!((r.status, r.code()), (409, ErrorCode::WrongEpoch));
    let r = c2.send(&p).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::Replay));
}

/// One signed append and one signed commit, each sent many times at once to two DS nodes
/// on one database: each is accepted exactly once, every other copy is refused as a replay,
/// and the log holds each once.
async fn a_write_replayed_on_two_nodes_is_accepted_once(engine: Engine) {
    let env = Env::new(engine).await;
    let (_b, b) = env.second_node(|_| {}).await;
    let a = &env.client;
    let mls = Mls::new();
    let gid = format!("replay-{}", hex(&random::<8>())).into_bytes();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(a.create_group(&gid, &k0).await.status, 201);
    let m = mls.encrypt(&mut alice, b"sent many times");
    let append = a.prepare(
        "POST",
        &format!("/v1/groups/{}/messages", b64(&gid)),
        m,
        MLS_MESSAGE_MEDIA_TYPE,
        Sign::Group(&k0, 0),
        None,
    );
    let proposed = mls.commit_update(&mut alice);
    mls.accepted(&mut alice);
    let commit = a.prepare(
        "POST",
        &format!("/v1/groups/{}/commits", b64(&gid)),
        serde_json::to_vec(&commit_request(&proposed, &[])).unwrap(),
        "application/json",
        Sign::Group(&k0, 0),
        None,
    );
    for request in [append, commit] {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let node = if i % 2 == 0 { a.clone() } else { b.clone() };
            let request = request.clone();
            tasks.push(tokio::spawn(async move { node.send(&request).await }));
        }
        let mut accepted = 0;
        for t in tasks {
            let r = t.await.expect("task");
            match r.status {
                201 => accepted += 1,
                _ => assert_eq!((r.status, r.code()), (401, ErrorCode::Replay)),
            }
        }
        assert_eq!(accepted, 1);
    }
    assert_eq!(env.db.count_rows("log_entries").await, 2);
    let page: LogPage = b.log(&gid, 1, &k0, 0).await.json();
    assert_eq!((page.entries.len(), page.current_epoch), (2, 1));
}

async fn pool_upload_count_claim_last_resort(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let (mailbox, key) = c.mailbox().await;
    let secret = random::<32>();
    let pool = c.create_pool(&mailbox, &key, &secret).await;
    let blobs = vec![
        (b"kp-1".to_vec(), false),
        (b"kp-2".to_vec(), false),
        (b"kp-last".to_vec(), true),
        (b"kp-3".to_vec(), false),
    ];
    assert_eq!(
        c.upload_key_packages(&mailbox, &key, &pool, blobs, now() + 3600)
            .await
            .status,
        204
    );
    assert_eq!(
        count(c, &mailbox, &key, &pool).await,
        PoolStatus {
            available: 3,
            last_resort: true
        }
    );
    // A wrong secret gets nothing and takes nothing.
    let r = c.claim(&pool, b"wrong secret, 16+ bytes").await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadClaimSecret));
    let mut got = Vec::new();
    for _ in 0..3 {
        let r = c.claim(&pool, &secret).await;
        assert_eq!(r.status, 200);
        let cr: ClaimResponse = r.json();
        assert!(!cr.last_resort);
        got.push(cr.sealed.0);
    }
    got.sort();
    assert_eq!(
        got,
        vec![b"kp-1".to_vec(), b"kp-2".to_vec(), b"kp-3".to_vec()]
    );
    // Only the last resort is left: handed out again and again, never deleted.
    for _ in 0..2 {
        let cr: ClaimResponse = c.claim(&pool, &secret).await.json();
        assert!(cr.last_resort);
        assert_eq!(cr.sealed.0, b"kp-last");
    }
    assert_eq!(
        count(c, &mailbox, &key, &pool).await,
        PoolStatus {
            available: 0,
            last_resort: true
        }
    );
    // A new last resort replaces the old.
    assert_eq!(
        c.upload_key_packages(
            &mailbox,
            &key,
            &pool,
            vec![(b"kp-last-2".to_vec(), true)],
            now() + 3600
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.claim(&pool, &secret)
            .await
            .json::<ClaimResponse>()
            .sealed
            .0,
        b"kp-last-2"
    );
    // Another mailbox cannot see or fill the pool.
    let (other, other_key) = c.mailbox().await;
    let r = c
        .empty(
            "GET",
            &format!("/v1/mailboxes/{other}/pools/{pool}"),
            Sign::Mailbox(&other_key),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::PoolNotFound));
}

async fn expired_key_packages_are_never_served(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let (mailbox, key) = c.mailbox().await;
    let secret = random::<16>();
    let pool = c.create_pool(&mailbox, &key, &secret).await;
    let soon = now() + 2;
    let blobs = vec![(b"short-1".to_vec(), false), (b"short-last".to_vec(), true)];
    assert_eq!(
        c.upload_key_packages(&mailbox, &key, &pool, blobs, soon)
            .await
            .status,
        204
    );
    assert_eq!(
        c.upload_key_packages(
            &mailbox,
            &key,
            &pool,
            vec![(b"long".to_vec(), false)],
            now() + 3600
        )
        .await
        .status,
        204
    );
    // An expiry in the past is refused at upload.
    let r = c
        .upload_key_packages(
            &mailbox,
            &key,
            &pool,
            vec![(b"old".to_vec(), false)],
            now() - 10,
        )
        .await;
    assert_eq!(r.status, 400);
    while now() <= soon {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(c, &mailbox, &key, &pool).await,
        PoolStatus {
            available: 1,
            last_resort: false
        }
    );
    assert_eq!(
        c.claim(&pool, &secret)
            .await
            .json::<ClaimResponse>()
            .sealed
            .0,
        b"long"
    );
    // The expired normal and last-resort blobs are never served.
    let r = c.claim(&pool, &secret).await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::PoolEmpty));
}

async fn claims_are_rate_limited_per_pool(engine: Engine) {
    let env = Env::with(engine, |c| c.claims_per_minute = 3).await;
    let c = &env.client;
    let (mailbox, key) = c.mailbox().await;
    let secret = random::<16>();
    let p1 = c.create_pool(&mailbox, &key, &secret).await;
    let p2 = c.create_pool(&mailbox, &key, &secret).await;
    let blobs: Vec<_> = (0..10).map(|i| (vec![i], false)).collect();
    c.upload_key_packages(&mailbox, &key, &p1, blobs.clone(), now() + 3600)
        .await;
    c.upload_key_packages(&mailbox, &key, &p2, blobs, now() + 3600)
        .await;
    for _ in 0..3 {
        assert_eq!(c.claim(&p1, &secret).await.status, 200);
    }
    let r = c.claim(&p1, &secret).await;
    assert_eq!((r.status, r.code()), (429, ErrorCode::RateLimited));
    // Per pool: the other pool is not affected.
    assert_eq!(c.claim(&p2, &secret).await.status, 200);
}

async fn concurrent_claims_on_two_nodes_never_share_a_blob(engine: Engine) {
    let env = Env::new(engine).await;
    let (_node_b, client_b) = env.second_node(|_| {}).await;
    let c = &env.client;
    let (mailbox, key) = c.mailbox().await;
    let secret = random::<16>();
    let pool = c.create_pool(&mailbox, &key, &secret).await;
    const N: usize = 120;
    let mut blobs: Vec<_> = (0..N)
        .map(|i| (format!("kp-{i}").into_bytes(), false))
        .collect();
    blobs.push((b"last".to_vec(), true));
    assert_eq!(
        c.upload_key_packages(&mailbox, &key, &pool, blobs, now() + 3600)
            .await
            .status,
        204
    );
    let mut tasks = Vec::new();
    for i in 0..N + 30 {
        let client = if i % 2 == 0 {
            c.clone()
        } else {
            client_b.clone()
        };
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            client.claim(&pool, &secret).await.json::<ClaimResponse>()
        }));
    }
    let mut normal = Vec::new();
    let mut last = 0;
    for t in tasks {
        let r = t.await.expect("task");
        if r.last_resort {
            last += 1;
        } else {
            normal.push(r.sealed.0);
        }
    }
    let before = normal.len();
    normal.sort();
    normal.dedup();
    assert_eq!(before, normal.len(), "a blob was handed out twice");
    assert_eq!(normal.len(), N);
    assert_eq!(last, 30);
}

async fn real_mls_group_through_the_ds(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    // Bob opens a mailbox and a pool, and uploads his KeyPackage (sealed: opaque to the DS).
    let (bob_mailbox, bob_key) = c.mailbox().await;
    let secret = random::<16>();
    let bob_pool = c.create_pool(&bob_mailbox, &bob_key, &secret).await;
    let bob = mls.joiner("bob");
    c.upload_key_packages(
        &bob_mailbox,
        &bob_key,
        &bob_pool,
        vec![(bob.bytes.clone(), false)],
        now() + 3600,
    )
    .await;
    // Alice creates the group and registers it.
    let gid = b"real-mls-group".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    assert_eq!(
        c.create_group(&gid, &mls.auth_key(&alice)).await.status,
        201
    );
    // Alice claims Bob's KeyPackage and commits his Add with the Welcome to his mailbox.
    let claimed: ClaimResponse = c.claim(&bob_pool, &secret).await.json();
    assert_eq!(claimed.sealed.0, bob.bytes);
    let p = mls.commit_add(&mut alice, &[&bob]);
    let r = c
        .commit(
            &gid,
            &commit_request(&p, &[&bob_mailbox]),
            &mls.auth_key(&alice),
            0,
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json::<Appended>(), Appended { seq: 1, epoch: 1 });
    mls.accepted(&mut alice);
    // Bob finds the Welcome in his mailbox and joins.
    let entries = c.entries(&bob_mailbox, &bob_key).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, MailboxEntryKind::Welcome);
    let mut bob_group = mls.join(&bob, &entries[0].data.0);
    assert!(mls.in_sync(&alice, &bob_group));
    assert_eq!(
        mls.auth_key(&alice).to_bytes(),
        mls.auth_key(&bob_group).to_bytes()
    );
    // Messages both ways through the log.
    let k1 = mls.auth_key(&alice);
    let m = mls.encrypt(&mut alice, b"hello bob");
    assert_eq!(c.post(&gid, &m, &k1, 1).await.json::<Appended>().seq, 2);
    let m = mls.encrypt(&mut bob_group, b"hello alice");
    assert_eq!(c.post(&gid, &m, &k1, 1).await.json::<Appended>().seq, 3);
    let page: LogPage = c.log(&gid, 2, &mls.auth_key(&bob_group), 1).await.json();
    assert_eq!(page.entries.len(), 2);
    assert_eq!(page.entries[0].kind, LogEntryKind::Application);
    assert_eq!(
        mls.process(&mut bob_group, &page.entries[0].message.0),
        Processed::Application(b"hello bob".to_vec())
    );
    assert_eq!(
        mls.process(&mut alice, &page.entries[1].message.0),
        Processed::Application(b"hello alice".to_vec())
    );
    // An update commit by Bob moves both to epoch 2.
    let p = mls.commit_update(&mut bob_group);
    let r = c.commit(&gid, &commit_request(&p, &[]), &k1, 1).await;
    assert_eq!(r.status, 201);
    mls.accepted(&mut bob_group);
    let page: LogPage = c.log(&gid, 4, &k1, 1).await.json();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].kind, LogEntryKind::Commit);
    assert_eq!(page.current_epoch, 2);
    assert_eq!(
        mls.process(&mut alice, &page.entries[0].message.0),
        Processed::Commit { removed_us: false }
    );
    assert!(mls.in_sync(&alice, &bob_group));
}

async fn racing_commits_exactly_one_wins(engine: Engine) {
    let env = Env::new(engine).await;
    let (_node_b, client_b) = env.second_node(|_| {}).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"race".to_vec();
    let (bob_mailbox, bob_mkey) = c.mailbox().await;
    let (carol_mailbox, carol_mkey) = c.mailbox().await;
    let bob = mls.joiner("bob");
    let mut alice = mls.create_group("alice", &gid);
    c.create_group(&gid, &mls.auth_key(&alice)).await;
    let p = mls.commit_add(&mut alice, &[&bob]);
    assert_eq!(
        c.commit(
            &gid,
            &commit_request(&p, &[&bob_mailbox]),
            &mls.auth_key(&alice),
            0
        )
        .await
        .status,
        201
    );
    mls.accepted(&mut alice);
    let mut bob_group = mls.join(&bob, &c.entries(&bob_mailbox, &bob_mkey).await[0].data.0);
    // Both commit for epoch 1 at once, on two nodes: Alice adds Carol, Bob updates.
    let k1 = mls.auth_key(&alice);
    let carol = mls.joiner("carol");
    let pa = mls.commit_add(&mut alice, &[&carol]);
    let pb = mls.commit_update(&mut bob_group);
    let (qa, qb) = (
        commit_request(&pa, &[&carol_mailbox]),
        commit_request(&pb, &[]),
    );
    let (ra, rb) = tokio::join!(
        c.commit(&gid, &qa, &k1, 1),
        client_b.commit(&gid, &qb, &k1, 1)
    );
    let statuses = [ra.status, rb.status];
    assert!(
        statuses.contains(&201) && statuses.contains(&409),
        "{statuses:?}"
    );
    let loser_response = if ra.status == 409 { &ra } else { &rb };
    let err: ErrorBody = loser_response.json();
    assert_eq!(
        (err.code, err.current_epoch),
        (ErrorCode::WrongEpoch, Some(2))
    );
    let alice_won = ra.status == 201;
    // The loser drops its commit, reads the winner from the log, processes it, retries.
    let (winner, loser) = if alice_won {
        (&mut alice, &mut bob_group)
    } else {
        (&mut bob_group, &mut alice)
    };
    mls.accepted(winner);
    mls.refused(loser);
    let page: LogPage = c.log(&gid, 1, &k1, 1).await.json();
    let commit = page
        .entries
        .iter()
        .find(|e| e.kind == LogEntryKind::Commit && e.epoch == 1)
        .expect("winner");
    assert_eq!(
        mls.process(loser, &commit.message.0),
        Processed::Commit { removed_us: false }
    );
    assert!(mls.in_sync(winner, loser));
    let k2 = mls.auth_key(loser);
    let retry = if alice_won {
        mls.commit_update(loser)
    } else {
        mls.commit_add(loser, &[&carol])
    };
    let to: Vec<&str> = if alice_won {
        vec![]
    } else {
        vec![&carol_mailbox]
    };
    let r = client_b
        .commit(&gid, &commit_request(&retry, &to), &k2, 2)
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    mls.accepted(loser);
    // Carol got exactly one Welcome: the one of the accepted commit adding her, never the
    // losing one's.
    let entries = c.entries(&carol_mailbox, &carol_mkey).await;
    assert_eq!(entries.len(), 1);
    let expected_epoch = if alice_won { 2 } else { 3 };
    let carol_group = mls.join(&carol, &entries[0].data.0);
    assert_eq!(mls.epoch(&carol_group), expected_epoch);
}

async fn removed_member_can_no_longer_post_or_read(engine: Engine) {
    let env = Env::with(engine, |c| c.previous_epoch_grace_secs = 0).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"removal".to_vec();
    let (bob_mailbox, bob_mkey) = c.mailbox().await;
    let bob = mls.joiner("bob");
    let mut alice = mls.create_group("alice", &gid);
    c.create_group(&gid, &mls.auth_key(&alice)).await;
    let p = mls.commit_add(&mut alice, &[&bob]);
    c.commit(
        &gid,
        &commit_request(&p, &[&bob_mailbox]),
        &mls.auth_key(&alice),
        0,
    )
    .await;
    mls.accepted(&mut alice);
    let mut bob_group = mls.join(&bob, &c.entries(&bob_mailbox, &bob_mkey).await[0].data.0);
    let bob_key = mls.auth_key(&bob_group);
    let late = mls.encrypt(&mut bob_group, b"written by bob before his removal");
    // Alice removes Bob: epoch 1 -> 2.
    let p = mls.commit_remove(&mut alice, mls.leaf(&bob_group));
    assert_eq!(
        c.commit(&gid, &commit_request(&p, &[]), &bob_key, 1)
            .await
            .status,
        201
    );
    mls.accepted(&mut alice);
    let k2 = mls.auth_key(&alice);
    let m = mls.encrypt(&mut alice, b"after bob left");
    let after = c.post(&gid, &m, &k2, 2).await.json::<Appended>().seq;
    // Bob reads up to and including the commit that removed him, and nothing after it.
    let page: LogPage = c.log(&gid, 1, &bob_key, 1).await.json();
    let last = page.entries.last().expect("entries");
    assert_eq!(last.kind, LogEntryKind::Commit);
    assert!(page.entries.iter().all(|e| e.seq < after && e.epoch == 1));
    assert_eq!(
        mls.process(&mut bob_group, &last.message.0),
        Processed::Commit { removed_us: true }
    );
    // He cannot post an epoch-1 message (the epoch has moved on; no grace configured) ...
    let r = c.post(&gid, &late, &bob_key, 1).await;
    assert_eq!(
        (r.status, r.code(), r.json::<ErrorBody>().current_epoch),
        (409, ErrorCode::WrongEpoch, Some(2))
    );
    // ... nor claim epoch 2, whose key he does not have, to post or to read.
    let m = mls.encrypt(&mut alice, b"an epoch-2 message");
    let r = c.post(&gid, &m, &bob_key, 2).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadSignature));
    let r = c.log(&gid, after, &bob_key, 2).await;
    assert_eq!((r.status, r.code()), (401, ErrorCode::BadSignature));
    // Reading on with his epoch-1 key yields nothing after the commit.
    let r = c.log(&gid, after, &bob_key, 1).await;
    assert!(r.json::<LogPage>().entries.is_empty());
    // Alice, in epoch 2, reads her message.
    let page: LogPage = c.log(&gid, after, &k2, 2).await.json();
    assert_eq!(page.entries.len(), 1);
}

async fn offline_reader_gets_everything_in_order(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"offline".to_vec();
    let (bob_mailbox, bob_mkey) = c.mailbox().await;
    let bob = mls.joiner("bob");
    let mut alice = mls.create_group("alice", &gid);
    c.create_group(&gid, &mls.auth_key(&alice)).await;
    let p = mls.commit_add(&mut alice, &[&bob]);
    c.commit(
        &gid,
        &commit_request(&p, &[&bob_mailbox]),
        &mls.auth_key(&alice),
        0,
    )
    .await;
    mls.accepted(&mut alice);
    // Alice writes through three epochs while Bob is offline.
    let mut sent = Vec::new();
    for round in 0..3 {
        for i in 0..4 {
            let text = format!("round {round} message {i}");
            let m = mls.encrypt(&mut alice, text.as_bytes());
            let e = mls.epoch(&alice);
            assert_eq!(c.post(&gid, &m, &mls.auth_key(&alice), e).await.status, 201);
            sent.push(text.into_bytes());
        }
        let p = mls.commit_update(&mut alice);
        let e = mls.epoch(&alice);
        assert_eq!(
            c.commit(&gid, &commit_request(&p, &[]), &mls.auth_key(&alice), e)
                .await
                .status,
            201
        );
        mls.accepted(&mut alice);
    }
    // Bob comes online: joins, then reads from his cursor, epoch by epoch.
    let mut bob_group = mls.join(&bob, &c.entries(&bob_mailbox, &bob_mkey).await[0].data.0);
    let mut cursor = 2;
    let mut received = Vec::new();
    let mut last_seq = 1;
    while mls.epoch(&bob_group) < mls.epoch(&alice) {
        let e = mls.epoch(&bob_group);
        let page: LogPage = c
            .log(&gid, cursor, &mls.auth_key(&bob_group), e)
            .await
            .json();
        for entry in &page.entries {
            assert_eq!(entry.seq, last_seq + 1, "gap-free order");
            last_seq = entry.seq;
            cursor = entry.seq + 1;
            match mls.process(&mut bob_group, &entry.message.0) {
                Processed::Application(d) => received.push(d),
                Processed::Commit { .. } => {}
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(received, sent);
    assert!(mls.in_sync(&alice, &bob_group));
}

async fn count_rows(db: &Db, table: &str) -> i64 {
    db.count_rows(table).await
}

async fn one_welcome_for_many_joiners_is_stored_once(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"many".to_vec();
    let joiners: Vec<_> = (0..5).map(|i| mls.joiner(&format!("j{i}"))).collect();
    let mut boxes = Vec::new();
    for _ in &joiners {
        boxes.push(c.mailbox().await);
    }
    let mut alice = mls.create_group("alice", &gid);
    c.create_group(&gid, &mls.auth_key(&alice)).await;
    let refs: Vec<_> = joiners.iter().collect();
    let p = mls.commit_add(&mut alice, &refs);
    let to: Vec<&str> = boxes.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        c.commit(&gid, &commit_request(&p, &to), &mls.auth_key(&alice), 0)
            .await
            .status,
        201
    );
    mls.accepted(&mut alice);
    assert_eq!(count_rows(&env.db, "welcomes").await, 1);
    assert_eq!(count_rows(&env.db, "mailbox_entries").await, 5);
    for (j, (m, k)) in joiners.iter().zip(&boxes) {
        let e = c.entries(m, k).await;
        let g = mls.join(j, &e[0].data.0);
        assert!(mls.in_sync(&alice, &g));
    }
    // A Welcome to an unknown mailbox fails the whole commit: nothing applied.
    let p = mls.commit_add(&mut alice, &[&mls.joiner("x")]);
    let r = c
        .commit(
            &gid,
            &commit_request(&p, &[&b64(&[9; 16])]),
            &mls.auth_key(&alice),
            1,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::MailboxNotFound));
    assert_eq!(count_rows(&env.db, "welcomes").await, 1);
    let page: LogPage = c.log(&gid, 1, &mls.auth_key(&alice), 1).await.json();
    assert_eq!(page.current_epoch, 1);
}

/// A commit's Welcome entries are written a chunk of mailboxes at a time (one UPDATE and one
/// multi-row INSERT per chunk): with more mailboxes than a chunk holds, one of them named by
/// two Welcomes and one holding an entry already, every mailbox gets its entries numbered
/// after what it had; an unknown mailbox in a later chunk undoes the whole commit.
async fn welcome_fan_out_in_chunks_numbers_every_mailbox(engine: Engine) {
    use conclave_ds::store::{AppendOutcome, EntryKind, LogKind, NewCommit};
    let env = Env::new(engine).await;
    let store = env.server.store.clone();
    let key = new_key().verifying_key().to_bytes().to_vec();
    let n = conclave_ds::store::sql::FANOUT_ROWS * 2 + 201;
    let ids: Vec<Vec<u8>> = (0..n as u32)
        .map(|i| {
            let mut id = vec![0x42; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            id
        })
        .collect();
    let mut tasks = Vec::new();
    for chunk in ids.chunks(100) {
        let (store, chunk, key) = (store.clone(), chunk.to_vec(), key.clone());
        tasks.push(tokio::spawn(async move {
            for id in chunk {
                store.create_mailbox(&id, &key, 1).await.expect("mailbox");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    store
        .post_blob(&ids[0], b"earlier", 1, i64::MAX)
        .await
        .expect("blob")
        .expect("mailbox");
    assert!(
        store
            .create_group(b"fan-out", &key, 1)
            .await
            .expect("group")
    );
    let commit = |epoch: u64, welcomes: Vec<(&'static [u8], Vec<Vec<u8>>)>| {
        let key = key.clone();
        let store = store.clone();
        async move {
            store
                .commit(NewCommit {
                    group_id: b"fan-out",
                    epoch,
                    kind: LogKind::Commit,
                    message: b"commit",
                    next_auth_key: &key,
                    welcomes,
                    group_info: None,
                    now: 1,
                    welcome_expires_at: i64::MAX,
                    nonce: &fresh_nonce(),
                })
                .await
                .expect("commit")
        }
    };
    let outcome = commit(
        0,
        vec![
            (b"welcome-1", ids.clone()),
            (b"welcome-2", vec![ids[1].clone(), ids[0].clone()]),
        ],
    )
    .await;
    let AppendOutcome::Appended { queued, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(queued.len(), n + 2);
    assert_eq!(count_rows(&env.db, "mailbox_entries").await, n as i64 + 3);
    assert_eq!(count_rows(&env.db, "welcomes").await, 2);
    let read = |id: Vec<u8>| {
        let store = store.clone();
        async move {
            store
                .fetch_entries(&id, 0, 10)
                .await
                .expect("fetch")
                .into_iter()
                .map(|e| (e.id, e.kind, e.data))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        read(ids[0].clone()).await,
        vec![
            (1, EntryKind::Blob, b"earlier".to_vec()),
            (2, EntryKind::Welcome, b"welcome-1".to_vec()),
            (3, EntryKind::Welcome, b"welcome-2".to_vec()),
        ]
    );
    assert_eq!(
        read(ids[1].clone()).await,
        vec![
            (1, EntryKind::Welcome, b"welcome-1".to_vec()),
            (2, EntryKind::Welcome, b"welcome-2".to_vec()),
        ]
    );
    for id in [&ids[499], &ids[500], &ids[1000], &ids[n - 1]] {
        assert_eq!(
            read(id.clone()).await,
            vec![(1, EntryKind::Welcome, b"welcome-1".to_vec())]
        );
    }
    // An unknown mailbox in the last chunk: nothing of the commit stays.
    let mut named = ids.clone();
    named.push(vec![0xFF; 16]);
    assert_eq!(
        commit(1, vec![(b"welcome-3", named)]).await,
        AppendOutcome::NoMailbox
    );
    assert_eq!(count_rows(&env.db, "mailbox_entries").await, n as i64 + 3);
    assert_eq!(count_rows(&env.db, "welcomes").await, 2);
    assert_eq!(count_rows(&env.db, "log_entries").await, 1);
    let state = store
        .group_state(b"fan-out")
        .await
        .expect("state")
        .expect("group");
    assert_eq!((state.epoch, state.last_seq), (1, 1));
}

async fn errors_have_codes_and_statuses(engine: Engine) {
    let env = Env::with(engine, |c| {
        c.max_message_bytes = 4096;
        c.max_body_bytes = 64 * 1024;
    })
    .await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"errors".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(c.create_group(&gid, &k0).await.status, 201);
    let r = c.create_group(&gid, &k0).await;
    assert_eq!((r.status, r.code()), (409, ErrorCode::GroupExists));
    let r = c.log(b"no-such-group", 1, &k0, 0).await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::GroupNotFound));
    let r = c.post(&gid, b"not mls", &k0, 0).await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::InvalidMlsMessage));
    let r = c.post(&gid, &vec![0u8; 5000], &k0, 0).await;
    assert_eq!((r.status, r.code()), (413, ErrorCode::PayloadTooLarge));
    // A message of another epoch than the one signed for.
    let m = mls.encrypt(&mut alice, b"x");
    let r = c.post(&gid, &m, &k0, 1).await;
    assert_eq!((r.status, r.code()), (409, ErrorCode::WrongEpoch));
    // A commit posted as a message.
    let p = mls.commit_update(&mut alice);
    let r = c.post(&gid, &p.commit, &k0, 0).await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::InvalidMlsMessage));
    let r = c
        .json(
            "POST",
            "/v1/mailboxes",
            &serde_json::json!({"public_key": "AAAA"}),
            Sign::No,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::BadRequest));
    let r = c
        .send(&c.prepare(
            "POST",
            "/v1/groups",
            b"{".to_vec(),
            "application/json",
            Sign::No,
            None,
        ))
        .await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::BadRequest));
    let r = c.claim("AAAAAAAAAAAAAAAAAAAAAA", &[0; 16]).await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::PoolNotFound));
    // Over the request body limit: 413 with a JSON error, whatever the route.
    let big = CommitRequest {
        commit: Bytes(vec![1; 100 * 1024]),
        next_auth_key: Bytes(vec![]),
        welcomes: vec![],
        group_info: None,
    };
    let r = c.commit(&gid, &big, &k0, 0).await;
    assert_eq!((r.status, r.code()), (413, ErrorCode::PayloadTooLarge));
}

async fn health_metrics_and_openapi_are_served(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let r = c.empty("GET", "/health", Sign::No).await;
    assert_eq!(r.status, 200);
    c.mailbox().await;
    let r = c.empty("GET", "/metrics", Sign::No).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("ds_mailboxes_created_total"));
    let r = c.empty("GET", "/openapi.json", Sign::No).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        conclave_ds::http::ops::openapi_json()
    );
    // An unknown route and a wrong method get typed JSON too (405 with its Allow header).
    let r = c.empty("GET", "/v1/nowhere", Sign::No).await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::RouteNotFound));
    let wrong = c
        .http
        .delete(format!("{}/v1/mailboxes", c.base))
        .send()
        .await
        .expect("send");
    assert_eq!(wrong.status().as_u16(), 405);
    let allow = wrong
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(allow.contains("POST"), "Allow: {allow}");
    let body: ErrorBody = wrong.json().await.expect("a typed body");
    assert_eq!(body.code, ErrorCode::MethodNotAllowed);
}

async fn group_info_and_external_commit_key(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"external".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    c.create_group(&gid, &k0).await;
    let path = format!("/v1/groups/{}/group-info", b64(&gid));
    let r = c.empty("GET", &path, Sign::No).await;
    assert_eq!((r.status, r.code()), (404, ErrorCode::GroupInfoNotFound));
    // A member publishes the GroupInfo sealed under a key the joiner got out of band (an
    // invitation link), with the epoch's external commit key; the DS sees neither.
    let invite = mls.external_invite(&alice);
    let invite_key = random::<16>();
    let gi = SealedGroupInfo {
        sealed: Bytes(mls.seal(&invite_key, &invite.to_bytes())),
        external_commit_key: Bytes(invite.commit_key.verifying_key().to_bytes().to_vec()),
    };
    assert_eq!(
        c.json("PUT", &path, &gi, Sign::Group(&k0, 0)).await.status,
        204
    );
    let got: GroupInfoResponse = c.empty("GET", &path, Sign::No).await.json();
    assert_eq!(got.epoch, 0);
    let opened = ExternalInvite::from_bytes(&mls.open(&invite_key, &got.sealed.0));
    // The external key does not authorise reading.
    let r = c.log(&gid, 1, &opened.commit_key, 0).await;
    assert_eq!(r.status, 401);
    // Bob joins by external commit: a PublicMessage, refused in the clear (it would show
    // the DS his credential), whoever signs the request.
    let (mut bob, proposed) = mls.join_external("bob", &opened);
    let r = c
        .commit(&gid, &commit_request(&proposed, &[]), &opened.commit_key, 0)
        .await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::PublicMessageRefused));
    let r = c
        .commit(&gid, &commit_request(&proposed, &[]), &k0, 0)
        .await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::PublicMessageRefused));
    let r = c
        .mls(
            &format!("/v1/groups/{}/messages", b64(&gid)),
            &proposed.commit,
            Sign::Group(&k0, 0),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::PublicMessageRefused));
    // Sealed for the members, it is accepted; an external commit carries no Welcome.
    let mut sealed = commit_request(&proposed, &[]);
    sealed.commit = Bytes(mls.seal(&opened.envelope_key, &proposed.commit));
    let mut with_welcome = sealed.clone();
    with_welcome.welcomes = vec![conclave_api::delivery::WelcomeDelivery {
        welcome: Bytes(vec![1]),
        mailboxes: vec![],
    }];
    let r = c.commit(&gid, &with_welcome, &opened.commit_key, 0).await;
    assert_eq!((r.status, r.code()), (400, ErrorCode::BadRequest));
    let r = c.commit(&gid, &sealed, &opened.commit_key, 0).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // The new epoch has no GroupInfo until one is published.
    let r = c.empty("GET", &path, Sign::No).await;
    assert_eq!(r.status, 404);
    // Alice reads the sealed commit with epoch 0's key, opens it and is in sync with Bob.
    let page: LogPage = c.log(&gid, 1, &k0, 0).await.json();
    let entry = page.entries.last().expect("the external commit");
    assert_eq!(entry.kind, LogEntryKind::ExternalCommit);
    let commit = mls.open(&mls.envelope_key(&alice), &entry.message.0);
    assert_eq!(
        mls.process(&mut alice, &commit),
        Processed::Commit { removed_us: false }
    );
    assert!(mls.in_sync(&alice, &bob));
    // Epoch 0's external key cannot commit again; Bob, now a member, posts in epoch 1.
    let r = c
        .commit(
            &gid,
            &commit_request(&mls.commit_update(&mut alice), &[]),
            &opened.commit_key,
            1,
        )
        .await;
    assert_eq!(r.status, 401);
    mls.refused(&mut alice);
    let k1 = mls.auth_key(&bob);
    let hello = mls.encrypt(&mut bob, b"hello");
    assert_eq!(c.post(&gid, &hello, &k1, 1).await.status, 201);
    let page: LogPage = c.log(&gid, 1, &k1, 1).await.json();
    let last = page.entries.last().expect("bob's message");
    assert_eq!(
        mls.process(&mut alice, &last.message.0),
        Processed::Application(b"hello".to_vec())
    );
}

async fn retention_deletes_what_it_should_and_nothing_else(engine: Engine) {
    use conclave_ds::store::PruneCutoffs;
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"retention".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    c.create_group(&gid, &mls.auth_key(&alice)).await;
    // Epochs 0..3 with two messages each; then a mailbox entry acknowledged, one not.
    for _ in 0..3 {
        let e = mls.epoch(&alice);
        let k = mls.auth_key(&alice);
        for _ in 0..2 {
            let m = mls.encrypt(&mut alice, b"m");
            assert_eq!(c.post(&gid, &m, &k, e).await.status, 201);
        }
        let p = mls.commit_update(&mut alice);
        assert_eq!(
            c.commit(&gid, &commit_request(&p, &[]), &k, e).await.status,
            201
        );
        mls.accepted(&mut alice);
    }
    let (mb, mk) = c.mailbox().await;
    let (secret, pool_id) = (random::<16>(), String::new());
    let _ = pool_id;
    let pool = c.create_pool(&mb, &mk, &secret).await;
    c.upload_key_packages(
        &mb,
        &mk,
        &pool,
        vec![(b"fresh".to_vec(), false), (b"claimed".to_vec(), false)],
        now() + 3600,
    )
    .await;
    assert_eq!(count_rows(&env.db, "log_entries").await, 9);
    assert_eq!(count_rows(&env.db, "epoch_keys").await, 4);
    // A claim: the pool's rate state now holds a time to the microsecond.
    assert_eq!(c.claim(&pool, &secret).await.status, 200);
    // Times of records are kept to the hour (issue 19: they must not match the AS's).
    for fine in [
        "mailboxes WHERE created_at % 3600 <> 0",
        "mailbox_entries WHERE created_at % 3600 <> 0 OR expires_at % 3600 <> 0",
        "pools WHERE created_at % 3600 <> 0",
        "sealed_key_packages WHERE expires_at % 3600 <> 0",
        "groups WHERE created_at % 3600 <> 0",
        "epoch_keys WHERE created_at % 3600 <> 0",
        "log_entries WHERE created_at % 3600 <> 0",
        "welcomes WHERE created_at % 3600 <> 0",
    ] {
        assert_eq!(count_rows(&env.db, fine).await, 0, "{fine}");
    }
    let store = env.server.store.clone();
    let t = now() as i64;
    // Messages older than a cut-off in the past: nothing goes. (The DS keeps creation
    // times to the hour, so "the past" is more than an hour ago.)
    let hour = conclave_ds::store::RECORD_GRANULARITY;
    let keep = PruneCutoffs {
        messages_before: t - hour,
        commits_before: t - hour,
        now: t,
        grace_before: t - 60,
        spent_tokens_before: i64::MIN,
        batch: 2,
    };
    let p = conclave_ds::retention::prune(store.as_ref(), keep)
        .await
        .expect("prune");
    assert_eq!((p.log_entries, p.epoch_keys, p.key_packages), (0, 0, 0));
    // Application messages expire (in batches of 2), commits are kept.
    let msgs = PruneCutoffs {
        messages_before: t + 1,
        commits_before: t - hour,
        now: t,
        grace_before: t - 60,
        spent_tokens_before: i64::MIN,
        batch: 2,
    };
    let p = conclave_ds::retention::prune(store.as_ref(), msgs)
        .await
        .expect("prune");
    assert_eq!(p.log_entries, 6);
    assert_eq!(count_rows(&env.db, "log_entries").await, 3);
    assert_eq!(p.epoch_keys, 0, "commits still need their epoch keys");
    // Then commits: the epoch keys of old epochs go with them; the current and previous stay.
    let all = PruneCutoffs {
        messages_before: t + 1,
        commits_before: t + 1,
        now: t,
        grace_before: t - 60,
        spent_tokens_before: i64::MIN,
        batch: 2,
    };
    let p = conclave_ds::retention::prune(store.as_ref(), all)
        .await
        .expect("prune");
    assert_eq!(p.log_entries, 3);
    assert_eq!(p.epoch_keys, 2);
    assert_eq!(count_rows(&env.db, "epoch_keys").await, 2);
    let e = mls.epoch(&alice);
    assert_eq!(c.log(&gid, 1, &mls.auth_key(&alice), e).await.status, 200);
    // The unexpired KeyPackage stays; once expired it goes, and so do nonces.
    assert_eq!(count_rows(&env.db, "sealed_key_packages").await, 1);
    let later = PruneCutoffs {
        messages_before: t,
        commits_before: t,
        now: t + 7200,
        grace_before: t + 7200 - 60,
        spent_tokens_before: i64::MIN,
        batch: 100,
    };
    let p = conclave_ds::retention::prune(store.as_ref(), later)
        .await
        .expect("prune");
    assert_eq!(p.key_packages, 1);
    assert!(p.nonces > 0);
    assert_eq!(count_rows(&env.db, "nonces").await, 0);
    // Times a mechanism needed (the last epoch's start for the grace period, the pool's
    // claim state) are blurred once it no longer needs them.
    assert_eq!(
        count_rows(&env.db, "groups WHERE epoch_started_at % 3600 <> 0").await,
        0
    );
    assert_eq!(count_rows(&env.db, "pools WHERE claim_tat <> 0").await, 0);
    // The pool's, and the group's unless its last epoch began on the hour.
    assert!((1..=2).contains(&p.blurred), "{p:?}");
}

async fn ws_connect(c: &Client) -> support::ws::Ws {
    support::ws::Ws::connect(&c.base).await
}

async fn websocket_push_of_group_and_mailbox(engine: Engine) {
    let env = Env::new(engine).await;
    let c = &env.client;
    let mls = Mls::new();
    let (g1, g2) = (b"push-1".to_vec(), b"push-2".to_vec());
    let mut a1 = mls.create_group("alice", &g1);
    let mut a2 = mls.create_group("alice", &g2);
    c.create_group(&g1, &mls.auth_key(&a1)).await;
    c.create_group(&g2, &mls.auth_key(&a2)).await;
    let (mb, mk) = c.mailbox().await;
    let mut ws = ws_connect(c).await;
    ws.subscribe_group(&g1, 0, &mls.auth_key(&a1))
        .await
        .expect("subscribed");
    ws.subscribe_group(&g2, 0, &mls.auth_key(&a2))
        .await
        .expect("subscribed");
    ws.subscribe_mailbox(&mb, &mk).await.expect("subscribed");
    // A wrong key is refused.
    assert!(ws.subscribe_group(&g1, 0, &new_key()).await.is_err());
    let m1 = mls.encrypt(&mut a1, b"one");
    c.post(&g1, &m1, &mls.auth_key(&a1), 0).await;
    let m2 = mls.encrypt(&mut a2, b"two");
    c.post(&g2, &m2, &mls.auth_key(&a2), 0).await;
    c.send(&c.prepare(
        "POST",
        &format!("/v1/mailboxes/{mb}/entries"),
        b"blob".to_vec(),
        "application/octet-stream",
        Sign::No,
        None,
    ))
    .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(ws.next_event().await);
    }
    assert!(got.iter().any(|e| matches!(e, WsEvent::GroupEntry { group_id, entry } if *group_id == b64(&g1) && entry.message.0 == m1)));
    assert!(got.iter().any(|e| matches!(e, WsEvent::GroupEntry { group_id, entry } if *group_id == b64(&g2) && entry.message.0 == m2)));
    // A mailbox entry is announced by id and size; the owner fetches the bytes.
    assert!(got.iter().any(|e| matches!(e, WsEvent::MailboxEntry { mailbox_id, kind: MailboxEntryKind::Blob, size: 4, .. } if *mailbox_id == mb)));
    // After a commit the epoch-0 subscription gets the commit, and nothing of epoch 1.
    let k0 = mls.auth_key(&a1);
    let p = mls.commit_update(&mut a1);
    c.commit(&g1, &commit_request(&p, &[]), &k0, 0).await;
    mls.accepted(&mut a1);
    let m3 = mls.encrypt(&mut a1, b"three");
    c.post(&g1, &m3, &mls.auth_key(&a1), 1).await;
    match ws.next_event().await {
        WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.kind, LogEntryKind::Commit),
        other => panic!("{other:?}"),
    }
    assert!(ws.quiet_for(std::time::Duration::from_millis(300)).await);
}

/// Concurrent writes are batched together on SQLite: a write that fails (a duplicate id, a
/// commit to a group that moved on) must leave the others of its batch applied.
async fn failing_writes_do_not_affect_concurrent_ones(engine: Engine) {
    let env = Env::new(engine).await;
    let store = env.server.store.clone();
    let key = new_key().verifying_key().to_bytes();
    let mut tasks = Vec::new();
    for i in 0..40u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Even tasks all try one id; odd ones use their own.
            let id = if i % 2 == 0 {
                vec![0xAA; 16]
            } else {
                vec![i; 16]
            };
            store.create_mailbox(&id, &key, 1).await.is_ok()
        }));
    }
    let mut ok_shared = 0;
    let mut ok_own = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match (i % 2 == 0, t.await.expect("task")) {
            (true, true) => ok_shared += 1,
            (false, true) => ok_own += 1,
            _ => {}
        }
    }
    assert_eq!((ok_shared, ok_own), (1, 20));
    for i in (1..40u8).step_by(2) {
        assert!(store.mailbox_key(&[i; 16]).await.expect("read").is_some());
    }
    assert_eq!(count_rows(&env.db, "mailboxes").await, 21);
    // Commits rolled back half-way (a Welcome for an unknown mailbox, after the epoch
    // compare-and-set and the log append) beside appends that succeed.
    use conclave_ds::store::{AppendOutcome, LogKind, NewCommit};
    assert!(store.create_group(b"batch", &key, 1).await.expect("group"));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let commit = NewCommit {
                    group_id: b"batch",
                    epoch: 0,
                    kind: LogKind::Commit,
                    message: b"commit",
                    next_auth_key: &key,
                    welcomes: vec![(b"welcome".as_slice(), vec![vec![0x55; 16]])],
                    group_info: None,
                    now: 1,
                    welcome_expires_at: 2,
                    nonce: &fresh_nonce(),
                };
                store.commit(commit).await.expect("commit") == AppendOutcome::NoMailbox
            } else {
                matches!(
                    store
                        .append(
                            b"batch",
                            0,
                            LogKind::Application,
                            b"m",
                            1,
                            0,
                            &fresh_nonce(),
                        )
                        .await
                        .expect("append"),
                    AppendOutcome::Appended { .. }
                )
            }
        }));
    }
    for t in tasks {
        assert!(t.await.expect("task"));
    }
    let state = store
        .group_state(b"batch")
        .await
        .expect("state")
        .expect("group");
    assert_eq!((state.epoch, state.last_seq), (0, 10));
    assert_eq!(count_rows(&env.db, "log_entries").await, 10);
    assert_eq!(count_rows(&env.db, "epoch_keys").await, 1);
    assert_eq!(count_rows(&env.db, "welcomes").await, 0);
}
