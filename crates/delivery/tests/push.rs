//! Push over WebSocket and NATS: events stay small (Welcomes and large log entries are
//! announced, not carried), a node subscribes to NATS only for topics its clients watch,
//! and a client that falls behind is told so.

mod support;

use conclave_api::delivery::*;
use std::time::Duration;
use support::mls::Mls;
use support::*;

fn b64(b: &[u8]) -> String {
    Bytes(b.to_vec()).to_base64()
}

/// Waits until `f` holds (polling), or fails after 10 s.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never: {what}");
}

/// A commit adding enough members that its Welcome (which carries the ratchet tree) is over
/// NATS's 1 MiB `max_payload`, accepted on node A: a subscriber on node B is told of the
/// Welcome and of the commit, and fetches both whole from B.
async fn welcome_over_a_mebibyte_reaches_another_node(engine: Engine) {
    let env = Env::with(engine, |c| c.nats = Some(nats_url())).await;
    let (node_b, b) = env.second_node(|c| c.nats = Some(nats_url())).await;
    let a = &env.client;
    let mls = Mls::new();
    let gid = format!("big-{}", hex(&random::<8>())).into_bytes();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(a.create_group(&gid, &k0).await.status, 201);
    // Bob's mailbox, and two more joiners' mailboxes that get the same Welcome.
    let (mb, mk) = a.mailbox().await;
    let (m2, _) = a.mailbox().await;
    let (m3, _) = a.mailbox().await;
    let mut ws = support::ws::Ws::connect(&b.base).await;
    ws.subscribe_mailbox(&mb, &mk).await.expect("mailbox on B");
    ws.subscribe_group(&gid, 0, &k0).await.expect("group on B");

    let bob = mls.joiner("bob");
    let others: Vec<_> = (0..4000).map(|i| mls.joiner(&format!("j{i}"))).collect();
    let mut joiners = vec![&bob];
    joiners.extend(others.iter());
    let p = mls.commit_add(&mut alice, &joiners);
    let welcome = p.welcome.clone().expect("welcome");
    assert!(
        welcome.len() > 1024 * 1024,
        "the Welcome is {} bytes, not over 1 MiB",
        welcome.len()
    );
    let r = a
        .commit(&gid, &commit_request(&p, &[&mb, &m2, &m3]), &k0, 0)
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    mls.accepted(&mut alice);
    let seq = r.json::<Appended>().seq;

    let (mut welcome_id, mut commit_seen) = (None, false);
    while welcome_id.is_none() || !commit_seen {
        match ws.next_event().await {
            WsEvent::MailboxEntry {
                mailbox_id,
                entry_id,
                kind,
                size,
            } => {
                assert_eq!(mailbox_id, mb);
                assert_eq!(kind, MailboxEntryKind::Welcome);
                assert_eq!(size as usize, welcome.len());
                welcome_id = Some(entry_id);
            }
            // The commit itself (all those Adds) is over the inline limit too.
            WsEvent::GroupEntryNotice {
                group_id,
                seq: s,
                epoch,
                kind,
                size,
            } => {
                assert_eq!((group_id, s, epoch), (b64(&gid), seq, 0));
                assert_eq!(kind, LogEntryKind::Commit);
                assert_eq!(size as usize, p.commit.len());
                commit_seen = true;
            }
            other => panic!("{other:?}"),
        }
    }
    // Bob fetches the whole Welcome from his cursor, on B, and joins.
    let entries = b.entries(&mb, &mk).await;
    let entry = entries
        .iter()
        .find(|e| Some(e.id) == welcome_id)
        .expect("announced entry");
    assert_eq!(entry.data.0, welcome);
    let bob_group = mls.join(&bob, &entry.data.0);
    assert!(mls.in_sync(&alice, &bob_group));
    // A member reads the announced commit from the log.
    let page: LogPage = b.log(&gid, seq, &k0, 0).await.json();
    assert_eq!(page.entries[0].message.0, p.commit);
    node_b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_welcome_over_a_mebibyte_reaches_another_node() {
    welcome_over_a_mebibyte_reaches_another_node(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_welcome_over_a_mebibyte_reaches_another_node() {
    welcome_over_a_mebibyte_reaches_another_node(Engine::Sqlite).await;
}

/// Up to the inline limit a group entry is pushed with its message; above it, as a notice
/// that the subscriber follows by reading the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_group_entries_are_announced_not_pushed() {
    let env = Env::with(Engine::Sqlite, |c| c.push_inline_limit = 2048).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"inline".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    c.create_group(&gid, &k0).await;
    let mut ws = support::ws::Ws::connect(&c.base).await;
    ws.subscribe_group(&gid, 0, &k0).await.expect("subscribed");
    let small = mls.encrypt(&mut alice, b"small");
    let large = mls.encrypt(&mut alice, &[7u8; 4096]);
    assert!(small.len() <= 2048 && large.len() > 2048);
    assert_eq!(c.post(&gid, &small, &k0, 0).await.status, 201);
    assert_eq!(c.post(&gid, &large, &k0, 0).await.status, 201);
    match ws.next_event().await {
        WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.message.0, small),
        other => panic!("{other:?}"),
    }
    let seq = match ws.next_event().await {
        WsEvent::GroupEntryNotice {
            seq,
            epoch,
            kind,
            size,
            ..
        } => {
            assert_eq!((epoch, kind), (0, LogEntryKind::Application));
            assert_eq!(size as usize, large.len());
            seq
        }
        other => panic!("{other:?}"),
    };
    let page: LogPage = c.log(&gid, seq, &k0, 0).await.json();
    assert_eq!(page.entries[0].message.0, large);
}

/// A node subscribes to a group's NATS subject only while one of its clients watches the
/// group: the node that serves the writer (and no subscriber) receives nothing from NATS,
/// the subscriber's node receives only what its client watches, and stops when the last
/// local subscriber leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_subjects_follow_local_subscribers() {
    let env = Env::with(Engine::Postgres, |c| c.nats = Some(nats_url())).await;
    let (node_b, b) = env.second_node(|c| c.nats = Some(nats_url())).await;
    let a = &env.client;
    let node_a = &env.server;
    let mls = Mls::new();
    let tag = hex(&random::<6>());
    let (g1, g2) = (
        format!("watched-{tag}").into_bytes(),
        format!("unwatched-{tag}").into_bytes(),
    );
    let mut alice1 = mls.create_group("alice", &g1);
    let mut alice2 = mls.create_group("alice", &g2);
    let (k1, k2) = (mls.auth_key(&alice1), mls.auth_key(&alice2));
    a.create_group(&g1, &k1).await;
    a.create_group(&g2, &k2).await;
    assert_eq!(node_b.push.topics(), 0);

    // Two clients of B watch g1: one NATS subscription.
    let mut ws1 = support::ws::Ws::connect(&b.base).await;
    let mut ws2 = support::ws::Ws::connect(&b.base).await;
    ws1.subscribe_group(&g1, 0, &k1).await.expect("subscribed");
    ws2.subscribe_group(&g1, 0, &k1).await.expect("subscribed");
    assert_eq!(node_b.push.topics(), 1);
    assert_eq!(node_a.push.topics(), 0);

    let m1 = mls.encrypt(&mut alice1, b"to the watched group");
    assert_eq!(a.post(&g1, &m1, &k1, 0).await.status, 201);
    for ws in [&mut ws1, &mut ws2] {
        match ws.next_event().await {
            WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.message.0, m1),
            other => panic!("{other:?}"),
        }
    }
    for i in 0..5 {
        let m = mls.encrypt(&mut alice2, format!("nobody listens {i}").as_bytes());
        assert_eq!(a.post(&g2, &m, &k2, 0).await.status, 201);
    }
    // Let anything in flight arrive, then count: B got g1's message once, A nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node_b.push.received_from_nats(), 1);
    assert_eq!(node_a.push.received_from_nats(), 0);

    // One client leaves: the subscription stays for the other.
    drop(ws1);
    let m2 = mls.encrypt(&mut alice1, b"still watched");
    assert_eq!(a.post(&g1, &m2, &k1, 0).await.status, 201);
    match ws2.next_event().await {
        WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.message.0, m2),
        other => panic!("{other:?}"),
    }
    assert_eq!(node_b.push.topics(), 1);
    assert_eq!(node_b.push.received_from_nats(), 2);

    // The last one leaves: B unsubscribes and receives no more.
    drop(ws2);
    let push_b = node_b.push.clone();
    eventually("B drops its subscription", || push_b.topics() == 0).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m3 = mls.encrypt(&mut alice1, b"nobody left");
    assert_eq!(a.post(&g1, &m3, &k1, 0).await.status, 201);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node_b.push.received_from_nats(), 2);
    assert_eq!(node_a.push.received_from_nats(), 0);

    // And a new subscriber on A gets what B writes, across nodes again.
    let mut ws3 = support::ws::Ws::connect(&a.base).await;
    ws3.subscribe_group(&g1, 0, &k1).await.expect("subscribed");
    let m4 = mls.encrypt(&mut alice1, b"from B");
    assert_eq!(b.post(&g1, &m4, &k1, 0).await.status, 201);
    match ws3.next_event().await {
        WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.message.0, m4),
        other => panic!("{other:?}"),
    }
    assert_eq!(node_a.push.received_from_nats(), 1);
    node_b.stop();
}

/// A client that does not read while its group is flooded is told it lagged (with the
/// group it concerns) and re-reads everything from its cursor.
async fn lagging_client_is_told(engine: Engine) {
    let env = Env::with(engine, |c| c.push_buffer = 4).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"flood".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    c.create_group(&gid, &k0).await;
    let mut ws = support::ws::Ws::connect_slow(&c.base, 4096).await;
    ws.subscribe_group(&gid, 0, &k0).await.expect("subscribed");
    // About 10 MB of pushes that the client does not read meanwhile.
    let messages: Vec<Vec<u8>> = (0..100u8)
        .map(|i| mls.encrypt(&mut alice, &vec![i; 100_000]))
        .collect();
    for m in &messages {
        assert_eq!(c.post(&gid, m, &k0, 0).await.status, 201);
    }
    // Now read: some entries, a Lagged for the group, then the rest.
    let mut pushed = 0;
    let mut missed = 0;
    while pushed + missed < messages.len() as u64 {
        match ws.next_event().await {
            WsEvent::GroupEntry { .. } => pushed += 1,
            WsEvent::Lagged { target, missed: n } => {
                assert_eq!(target, b64(&gid));
                missed += n;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(missed > 0, "the flood overflowed nothing");
    assert_eq!(pushed + missed, messages.len() as u64);
    // The client re-reads from its cursor and has everything.
    let mut from = 1;
    let mut read = Vec::new();
    loop {
        let page: LogPage = c.log(&gid, from, &k0, 0).await.json();
        let Some(last) = page.entries.last() else {
            break;
        };
        from = last.seq + 1;
        read.extend(page.entries.into_iter().map(|e| e.message.0));
    }
    assert_eq!(read, messages);
    // The connection still works.
    let m = mls.encrypt(&mut alice, b"after the flood");
    assert_eq!(c.post(&gid, &m, &k0, 0).await.status, 201);
    match ws.next_event().await {
        WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.message.0, m),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lagging_client_is_told() {
    lagging_client_is_told(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lagging_client_is_told() {
    lagging_client_is_told(Engine::Postgres).await;
}

/// One connection polls all its subscriptions itself: subscribing again to a group with the
/// next epoch's key replaces the old subscription (each entry arrives once, the node holds
/// one topic), a burst of entries arrives whole and in order (written in batches), and
/// closing the connection drops its subscriptions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_polls_its_subscriptions_and_replaces_them() {
    let env = Env::new(Engine::Sqlite).await;
    let c = &env.client;
    let mls = Mls::new();
    let gid = b"resubscribe".to_vec();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(c.create_group(&gid, &k0).await.status, 201);
    let (mb, mk) = c.mailbox().await;
    let mut ws = support::ws::Ws::connect(&c.base).await;
    ws.subscribe_group(&gid, 0, &k0).await.expect("epoch 0");
    ws.subscribe_mailbox(&mb, &mk).await.expect("mailbox");
    assert_eq!(env.server.push.topics(), 2);
    // Subscribing again replaces the subscription: an entry arrives once, not twice.
    ws.subscribe_group(&gid, 0, &k0)
        .await
        .expect("epoch 0 again");
    let m0 = mls.encrypt(&mut alice, b"once");
    assert_eq!(c.post(&gid, &m0, &k0, 0).await.status, 201);
    match ws.next_event().await {
        WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.message.0, m0),
        other => panic!("{other:?}"),
    }
    assert!(
        ws.quiet_for(Duration::from_millis(300)).await,
        "pushed twice"
    );

    let p = mls.commit_update(&mut alice);
    assert_eq!(
        c.commit(&gid, &commit_request(&p, &[]), &k0, 0)
            .await
            .status,
        201
    );
    mls.accepted(&mut alice);
    match ws.next_event().await {
        WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.kind, LogEntryKind::Commit),
        other => panic!("{other:?}"),
    }
    let k1 = mls.auth_key(&alice);
    ws.subscribe_group(&gid, 1, &k1).await.expect("epoch 1");
    assert_eq!(env.server.push.topics(), 2);

    // A burst: every entry once, in order, with a blob to the mailbox in the middle.
    let messages: Vec<Vec<u8>> = (0..200)
        .map(|i| mls.encrypt(&mut alice, format!("burst {i}").as_bytes()))
        .collect();
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(c.post(&gid, m, &k1, 1).await.status, 201);
        if i == 100 {
            assert_eq!(c.post_blob(&mb, b"blob").await.status, 201);
        }
    }
    let (mut got, mut blobs) = (Vec::new(), 0);
    while got.len() < messages.len() || blobs == 0 {
        match ws.next_event().await {
            WsEvent::GroupEntry { entry, .. } => got.push(entry.message.0),
            WsEvent::MailboxEntry { .. } => blobs += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, messages);
    assert_eq!(blobs, 1);
    assert!(
        ws.quiet_for(Duration::from_millis(300)).await,
        "an entry came twice"
    );

    drop(ws);
    let push = env.server.push.clone();
    eventually("the closed connection's subscriptions are dropped", || {
        push.topics() == 0
    })
    .await;
}
