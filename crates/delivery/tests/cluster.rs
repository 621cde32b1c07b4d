//! Several DS nodes: pushes cross nodes through NATS.

mod support;

use support::mls::Mls;
use support::*;

/// A message posted on node A is pushed to a subscriber connected to node B, through NATS;
/// so is a Welcome queued by a commit accepted on A for a mailbox watched on B.
async fn pushed_across_nodes(engine: Engine) {
    let env = Env::with(engine, |c| c.nats = Some(nats_url())).await;
    let (_b, client_b) = env.second_node(|c| c.nats = Some(nats_url())).await;
    let a = &env.client;
    let mls = Mls::new();
    let gid = format!("cluster-{}", hex(&random::<8>())).into_bytes();
    let mut alice = mls.create_group("alice", &gid);
    let k0 = mls.auth_key(&alice);
    assert_eq!(a.create_group(&gid, &k0).await.status, 201);
    let (mb, mk) = a.mailbox().await;
    let mut ws = support::ws::Ws::connect(&client_b.base).await;
    ws.subscribe_group(&gid, 0, &k0)
        .await
        .expect("subscribed on B");
    ws.subscribe_mailbox(&mb, &mk)
        .await
        .expect("subscribed on B");
    let m = mls.encrypt(&mut alice, b"from node A");
    assert_eq!(a.post(&gid, &m, &k0, 0).await.status, 201);
    match ws.next_event().await {
        conclave_api::delivery::WsEvent::GroupEntry { entry, .. } => assert_eq!(entry.message.0, m),
        other => panic!("{other:?}"),
    }
    let bob = mls.joiner("bob");
    let p = mls.commit_add(&mut alice, &[&bob]);
    assert_eq!(
        a.commit(&gid, &commit_request(&p, &[&mb]), &k0, 0)
            .await
            .status,
        201
    );
    // The Welcome is announced (not carried) across nodes; the owner fetches it from B.
    let mut announced = None;
    for _ in 0..2 {
        if let conclave_api::delivery::WsEvent::MailboxEntry { entry_id, size, .. } =
            ws.next_event().await
        {
            assert_eq!(Some(size as usize), p.welcome.as_ref().map(Vec::len));
            announced = Some(entry_id);
        }
    }
    let announced = announced.expect("Welcome announced");
    let entries = client_b.entries(&mb, &mk).await;
    let fetched = entries.iter().find(|e| e.id == announced).expect("fetched");
    assert_eq!(Some(&fetched.data.0), p.welcome.as_ref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_message_on_node_a_is_pushed_to_node_b_through_nats() {
    pushed_across_nodes(Engine::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_message_on_node_a_is_pushed_to_node_b_through_nats() {
    pushed_across_nodes(Engine::Sqlite).await;
}
