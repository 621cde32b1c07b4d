//! Durable, multi-node key-transparency publishing (the outbox `kt_pending`, the publisher
//! lease `kt_lease`): a change committed but never published (a crash between the two) is
//! published at the next start; two AS nodes on one PostgreSQL database register devices
//! concurrently and both serve proofs that verify, over one sequential history; a dead
//! lease holder is taken over once its lease expires.

mod support;

use conclave_as::api;
use conclave_as::auditor::{self, AuditState};
use conclave_as::config::{Config, RateLimits};
use conclave_as::store::DeviceRecord;
use conclave_as::transparency::verify_lookup;
use std::sync::Arc;
use support::{Device, Engine, TestServer, device_for};

async fn vrf_key(server: &TestServer) -> Vec<u8> {
    server.service.transparency().vrf_public_key().to_vec()
}

/// `by` looks `user` up on `server` over HTTP; the answer must verify.
async fn verified_lookup(server: &TestServer, by: &Device, user: &str) -> api::UserDevices {
    let reply = server
        .signed(by, "GET", &format!("/v1/users/{user}/devices"), None::<&()>)
        .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer: api::UserDevices = reply.json();
    let proof = answer.transparency.as_ref().expect("a proof");
    verify_lookup(&vrf_key(server).await, user, &answer.devices, proof, None)
        .unwrap_or_else(|e| panic!("{user} on {}: {e}", server.node));
    answer
}

fn ids(answer: &api::UserDevices) -> Vec<String> {
    let mut ids: Vec<String> = answer.devices.iter().map(|d| d.device_id.clone()).collect();
    ids.sort();
    ids
}

/// A second device of `of`'s user written as a registration commits it (the device row and
/// its outbox row in one transaction), without the publish that follows.
async fn commit_without_publish(server: &TestServer, of: &Device, device_id: &str) {
    let key = ed25519_dalek::SigningKey::from_bytes(&support::random32());
    let record = DeviceRecord {
        device_id: device_id.into(),
        user_id: of.user_id.clone(),
        signature_key: key.verifying_key().to_bytes().to_vec(),
        chain: of.chain(),
        not_after: of.certificate.not_after,
        contact_key: None,
        created_at: server.now(),
        revoked_at: None,
    };
    server
        .service
        .store()
        .register_device(&record, None)
        .await
        .expect("commit");
}

/// A config whose background drain never runs during the test (only the one at start).
fn no_background_drain() -> Config {
    Config {
        kt_publish_interval_ms: 3_600_000,
        ..Config::default()
    }
}

/// SQLite: the process dies between the commit of a registration and its publish; the
/// restarted AS (same file, same keys, same node name) publishes it at start, and the new
/// device's look-up verifies.
#[tokio::test]
async fn a_crash_between_commit_and_publish_is_repaired_at_restart() {
    let server =
        TestServer::start_with(Engine::Sqlite, Default::default(), no_background_drain()).await;
    let phone = device_for(&server, "alice@example.org").await;
    let bob = device_for(&server, "bob@example.org").await;
    let before = verified_lookup(&server, &bob, "alice@example.org").await;
    assert_eq!(ids(&before), vec![phone.device_id.clone()]);
    commit_without_publish(&server, &phone, "laptop").await;
    // Not published: the answer is still the one device the directory proves.
    let stale = verified_lookup(&server, &bob, "alice@example.org").await;
    assert_eq!(ids(&stale), vec![phone.device_id.clone()]);
    assert_eq!(
        server.service.store().kt_pending(10).await.unwrap().len(),
        1
    );

    let server = server.restart().await;
    assert!(
        server
            .service
            .store()
            .kt_pending(10)
            .await
            .unwrap()
            .is_empty(),
        "the outbox is drained at start"
    );
    let after = verified_lookup(&server, &bob, "alice@example.org").await;
    let mut expected = vec![phone.device_id.clone(), "laptop".to_owned()];
    expected.sort();
    assert_eq!(ids(&after), expected);
    assert!(after.transparency.unwrap().epoch > before.transparency.unwrap().epoch);
    server.finish().await;
}

/// The same crash, repaired without a restart by the periodic drain (both engines).
#[tokio::test]
async fn a_change_left_unpublished_is_published_by_the_periodic_drain() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let config = Config {
            kt_publish_interval_ms: 50,
            ..Config::default()
        };
        let server = TestServer::start_with(engine, Default::default(), config).await;
        let phone = device_for(&server, "alice@example.org").await;
        commit_without_publish(&server, &phone, "laptop").await;
        let mut published = false;
        for _ in 0..100 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if ids(&verified_lookup(&server, &phone, "alice@example.org").await).len() == 2 {
                published = true;
                break;
            }
        }
        assert!(
            published,
            "{engine:?}: the drain did not publish the change"
        );
        server.finish().await;
    }
}

/// Two AS nodes on one PostgreSQL database register devices concurrently (users shared by
/// both): every registration's look-up verifies on the node that made it when it returns,
/// every device's look-up verifies on both nodes afterwards, both serve the same head, the
/// log's epochs are 0, 1, 2, … with none twice or missing, and an audit of the whole
/// history verifies.
#[tokio::test]
async fn two_nodes_on_postgres_publish_one_history() {
    let config = Config {
        kt_publish_interval_ms: 50,
        rate_limits: RateLimits {
            registrations_per_user: 0,
            ..RateLimits::default()
        },
        ..Config::default()
    };
    let first = Arc::new(
        TestServer::start_with(Engine::Postgres, Default::default(), config.clone()).await,
    );
    // The second node never drains or catches up in the background: what it serves comes
    // from catching up on its request paths (a registration, a look-up).
    let second = Arc::new(
        first
            .join(Config {
                kt_publish_interval_ms: 3_600_000,
                ..config
            })
            .await,
    );
    let (holder, _) = first.service.store().kt_lease().await.unwrap();
    assert_eq!(
        holder, first.node,
        "the first node took the free lease at start"
    );

    const PER_NODE: usize = 12;
    let mut tasks = tokio::task::JoinSet::new();
    for (n, node) in [&first, &second].into_iter().enumerate() {
        for worker in 0..2 {
            let node = Arc::clone(node);
            tasks.spawn(async move {
                let mut devices = Vec::new();
                for i in 0..PER_NODE / 2 {
                    let user = format!("user{}@example.org", (i + worker) % 4);
                    let device = device_for(&node, &user).await;
                    // Published (or caught up with) before the registration returned.
                    let answer = verified_lookup(&node, &device, &user).await;
                    assert!(
                        ids(&answer).contains(&device.device_id),
                        "node {n}: {user}'s new device is not in the look-up when registration returns"
                    );
                    devices.push(device);
                }
                devices
            });
        }
    }
    let mut devices = Vec::new();
    while let Some(done) = tasks.join_next().await {
        devices.extend(done.expect("a registration task panicked"));
    }
    assert_eq!(devices.len(), 2 * PER_NODE);

    for node in [&first, &second] {
        for device in &devices {
            let answer = verified_lookup(node, &devices[0], &device.user_id).await;
            assert!(
                ids(&answer).contains(&device.device_id),
                "{} misses {}",
                node.node,
                device.device_id
            );
        }
    }
    // A registration on the holder is served by the other node's very next look-up.
    let late = device_for(&first, "late@example.org").await;
    let answer = verified_lookup(&second, &devices[0], "late@example.org").await;
    assert_eq!(ids(&answer), vec![late.device_id.clone()]);
    let (h1, h2) = (
        first.service.kt_head().await.unwrap(),
        second.service.kt_head().await.unwrap(),
    );
    assert_eq!((h1.epoch, &h1.root_hash), (h2.epoch, &h2.root_hash));

    // The log: epochs 0..=head exactly once each; every epoch after 0 published something.
    let url = first.postgres_url().unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let roots: Vec<i64> = sqlx::query_scalar("SELECT epoch FROM kt_roots ORDER BY epoch")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let expected: Vec<i64> = (0..=h1.epoch as i64).collect();
    assert_eq!(roots, expected, "epochs are not 0, 1, 2, … once each");
    let logged: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT epoch FROM kt_log ORDER BY epoch")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(logged, expected[1..].to_vec());
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM kt_pending")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(pending, 0);
    // Both nodes serve the history an auditor accepts.
    for node in [&first, &second] {
        let mut state = AuditState::default();
        assert_eq!(
            auditor::audit(&format!("http://{}", node.addr), &mut state)
                .await
                .expect("audit"),
            Some((1, h1.epoch))
        );
    }

    let second = Arc::try_unwrap(second)
        .ok()
        .expect("second node still shared");
    second.finish().await;
    let first = Arc::try_unwrap(first)
        .ok()
        .expect("first node still shared");
    first.finish().await;
}

/// The lease holder dies after committing a registration it never published: the other
/// node cannot publish while the dead node's lease runs, and takes the lease over (and
/// publishes the change) once it expired.
#[tokio::test]
async fn a_dead_lease_holder_is_taken_over_after_expiry() {
    let survivor =
        TestServer::start_with(Engine::Postgres, Default::default(), no_background_drain()).await;
    // The survivor hands the lease over, so that the node that dies holds it.
    survivor.service.release_kt_lease().await.unwrap();
    let doomed = survivor.join(no_background_drain()).await;
    let (holder, _) = survivor.service.store().kt_lease().await.unwrap();
    assert_eq!(holder, doomed.node);
    let phone = device_for(&doomed, "alice@example.org").await;
    commit_without_publish(&doomed, &phone, "laptop").await;
    let ttl = Config::default().kt_lease_ttl;
    let (dir, _) = doomed.kill().await;
    drop(dir);

    // Before the lease expires the survivor does not publish: Alice's answer is the one
    // published device (verified, the survivor caught up with the dead node's epochs).
    assert!(
        !survivor.service.kt_drain().await.unwrap(),
        "took an unexpired lease"
    );
    let answer = verified_lookup(&survivor, &phone, "alice@example.org").await;
    assert_eq!(ids(&answer), vec![phone.device_id.clone()]);
    survivor.advance(ttl - 1);
    assert!(
        !survivor.service.kt_drain().await.unwrap(),
        "took an unexpired lease"
    );

    // Expired: the survivor takes over and publishes what the dead node left.
    survivor.advance(1);
    assert!(
        survivor.service.kt_drain().await.unwrap(),
        "did not take the expired lease"
    );
    let (holder, _) = survivor.service.store().kt_lease().await.unwrap();
    assert_eq!(holder, survivor.node);
    let answer = verified_lookup(&survivor, &phone, "alice@example.org").await;
    let mut expected = vec![phone.device_id.clone(), "laptop".to_owned()];
    expected.sort();
    assert_eq!(ids(&answer), expected);
    // And it publishes new registrations itself.
    let bob = device_for(&survivor, "bob@example.org").await;
    assert_eq!(
        ids(&verified_lookup(&survivor, &bob, "bob@example.org").await),
        vec![bob.device_id.clone()]
    );
    survivor.finish().await;
}

/// An outbox row whose user's value is already published (as migration 0006 queues every
/// existing user) is deleted without a new epoch.
#[tokio::test]
async fn an_already_published_value_makes_no_epoch() {
    let server =
        TestServer::start_with(Engine::Sqlite, Default::default(), no_background_drain()).await;
    let alice = device_for(&server, "alice@example.org").await;
    let head = server.service.kt_head().await.unwrap();
    server
        .sql("INSERT INTO kt_pending (user_id, version) VALUES ('alice@example.org', 7)")
        .await;
    assert!(server.service.kt_drain().await.unwrap());
    assert!(
        server
            .service
            .store()
            .kt_pending(10)
            .await
            .unwrap()
            .is_empty()
    );
    let after = server.service.kt_head().await.unwrap();
    assert_eq!((after.epoch, after.root_hash), (head.epoch, head.root_hash));
    let answer = verified_lookup(&server, &alice, "alice@example.org").await;
    assert_eq!(ids(&answer), vec![alice.device_id.clone()]);
    server.finish().await;
}
