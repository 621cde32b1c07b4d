//! End to end through the SDK alone: the real AS and DS on loopback, real devices with
//! their encrypted stores, each scenario on SQLite (one DS node) and on PostgreSQL + NATS
//! (two DS nodes, devices spread over both).

mod support;

use conclave_client::{ContactState, Device, Event, GroupId};
use support::{Engine, Servers, drain, messages, settle};

macro_rules! engine_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::Engine::Postgres).await;
                }
            )*
        }
    };
}

engine_suite!(
    three_users_with_two_devices_talk,
    race_is_rebuilt_and_lands,
    restart_of_both_servers_loses_nothing,
    device_added_later_reads_from_then_on,
    revoked_device_is_removed_by_the_others,
    device_that_lost_its_state_comes_back,
    concurrent_updates_both_land_and_codes_agree,
    event_stream_pushes_live_and_survives_a_restart,
);

/// A user's two devices: the first registers, the second registers and is added to the
/// self group by the first.
async fn user(servers: &Servers, user: &str, name: &str) -> (Device, Device) {
    let first = servers.register(user, &format!("{name}1"), 0).await;
    let second = servers.register(user, &format!("{name}2"), 1).await;
    settle(&[&first, &second], 3).await;
    assert_eq!(
        first.siblings().await.unwrap(),
        vec![second.device_id().to_owned()]
    );
    assert_eq!(
        second.siblings().await.unwrap(),
        vec![first.device_id().to_owned()]
    );
    (first, second)
}

/// Makes `a` and `b` contacts (a asks, b accepts) and lets every device catch up.
async fn befriend(a: &Device, b: &Device, everyone: &[&Device]) {
    a.request_contact(b.user_id()).await.expect("request");
    b.sync().await.expect("sync");
    let events = b.events(100).await.expect("events");
    assert!(
        events
            .iter()
            .any(|(_, e)| matches!(e, Event::ContactRequest { user } if user == a.user_id())),
        "{events:?}"
    );
    b.accept_contact(a.user_id()).await.expect("accept");
    settle(everyone, 2).await;
    for d in everyone {
        let contacts = d.contacts().await.unwrap();
        let other = if d.user_id() == a.user_id() {
            b.user_id()
        } else if d.user_id() == b.user_id() {
            a.user_id()
        } else {
            continue;
        };
        let c = contacts
            .iter()
            .find(|c| c.user == other)
            .unwrap_or_else(|| panic!("{} has no contact {other}: {contacts:?}", d.device_id()));
        assert_eq!(c.state, ContactState::Accepted, "{}", d.device_id());
        let count = everyone.iter().filter(|x| x.user_id() == other).count();
        assert_eq!(
            c.devices.len(),
            count,
            "{} sees {other}'s devices",
            d.device_id()
        );
    }
}

async fn three_users_with_two_devices_talk(engine: Engine) {
    let servers = Servers::start(engine).await;
    let (a1, a2) = user(&servers, "alice@example.org", "alice").await;
    let (b1, b2) = user(&servers, "bob@example.org", "bob").await;
    let (c1, c2) = user(&servers, "carol@example.org", "carol").await;
    let all = [&a1, &a2, &b1, &b2, &c1, &c2];
    befriend(&a1, &b1, &all).await;
    befriend(&a2, &c2, &all).await;
    for d in all {
        drain(d).await;
    }

    let group = a1.create_group().await.expect("create");
    a1.add_user(&group, "bob@example.org")
        .await
        .expect("add bob");
    a1.add_user(&group, "carol@example.org")
        .await
        .expect("add carol");
    settle(&all, 1).await;
    for d in all {
        let members = d.members(&group).await.expect("member");
        assert_eq!(members.len(), 6, "{}: {members:?}", d.device_id());
    }
    for d in all {
        let events = drain(d).await;
        if d.device_id() != a1.device_id() {
            assert!(
                events
                    .iter()
                    .any(|e| matches!(e, Event::GroupJoined { group: g, .. } if *g == group)),
                "{}: {events:?}",
                d.device_id()
            );
        }
    }

    a1.send(&group, b"hello from alice").await.expect("send");
    b2.send(&group, b"hello from bob").await.expect("send");
    c1.send(&group, b"hello from carol").await.expect("send");
    settle(&all, 1).await;
    for d in all {
        let got = messages(&drain(d).await);
        let mut expected = vec![
            (
                "alice@example.org".to_owned(),
                "hello from alice".to_owned(),
            ),
            ("bob@example.org".to_owned(), "hello from bob".to_owned()),
            (
                "carol@example.org".to_owned(),
                "hello from carol".to_owned(),
            ),
        ];
        // A device does not read its own messages back.
        let own = match d.device_id() {
            x if x == a1.device_id() => Some(0),
            x if x == b2.device_id() => Some(1),
            x if x == c1.device_id() => Some(2),
            _ => None,
        };
        if let Some(i) = own {
            expected.remove(i);
        }
        assert_eq!(got, expected, "{}", d.device_id());
    }

    // Carol is removed: both her devices, in one commit; she cannot read what follows.
    b1.remove_user(&group, "carol@example.org")
        .await
        .expect("remove");
    settle(&all, 1).await;
    for d in [&c1, &c2] {
        let events = drain(d).await;
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::RemovedFromGroup { group: g } if *g == group)),
            "{}: {events:?}",
            d.device_id()
        );
        assert!(d.send(&group, b"still here?").await.is_err());
    }
    a2.send(&group, b"carol is gone").await.expect("send");
    settle(&all, 1).await;
    for d in [&c1, &c2] {
        assert!(messages(&drain(d).await).is_empty());
    }
    for d in [&a1, &b1, &b2] {
        assert_eq!(
            messages(&drain(d).await),
            vec![("alice@example.org".to_owned(), "carol is gone".to_owned())],
            "{}",
            d.device_id()
        );
        assert_eq!(d.members(&group).await.unwrap().len(), 4);
    }

    // The operator holding both databases finds nothing of the AS's in the DS's: no
    // certificate, signature key, contact key, user or device id (RFC 9750 §8.4.1).
    for d in all {
        (*d).clone().close().await;
    }
    let shared = support::shared_values(&servers).await;
    assert!(
        shared.is_empty(),
        "the DS stores values from the AS: {:?}",
        shared
            .iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect::<Vec<_>>()
    );
    servers.finish().await;
}

/// Two members commit in the same epoch: one wins; the other's commit is rebuilt on the
/// winner and lands; everyone ends in the same epoch with both changes.
async fn race_is_rebuilt_and_lands(engine: Engine) {
    let servers = Servers::start(engine).await;
    let a = servers.register("alice@example.org", "alice", 0).await;
    let b = servers.register("bob@example.org", "bob", 1).await;
    let c = servers.register("carol@example.org", "carol", 0).await;
    let d = servers.register("dave@example.org", "dave", 1).await;
    let all = [&a, &b, &c, &d];
    befriend(&a, &b, &all).await;
    befriend(&a, &c, &all).await;
    befriend(&b, &d, &all).await;
    let group = a.create_group().await.unwrap();
    a.add_user(&group, b.user_id()).await.unwrap();
    b.sync().await.unwrap();
    // Both commit at the same epoch: a adds Carol, b adds Dave.
    let (ra, rb) = tokio::join!(
        a.add_user(&group, c.user_id()),
        b.add_user(&group, d.user_id())
    );
    ra.expect("alice's add lands");
    rb.expect("bob's add lands");
    settle(&all, 2).await;
    let epoch = a.epoch(&group).await.unwrap();
    for x in all {
        assert_eq!(
            x.members(&group).await.unwrap().len(),
            4,
            "{}",
            x.device_id()
        );
        assert_eq!(x.epoch(&group).await.unwrap(), epoch, "{}", x.device_id());
    }
    d.send(&group, b"dave here").await.unwrap();
    settle(&all, 1).await;
    for x in [&a, &b, &c] {
        assert!(messages(&drain(x).await).contains(&(d.user_id().to_owned(), "dave here".into())));
    }
    servers.finish().await;
}

/// Both servers stop and start again mid-session: the devices go on where they were.
async fn restart_of_both_servers_loses_nothing(engine: Engine) {
    let mut servers = Servers::start(engine).await;
    let a = servers.register("alice@example.org", "alice", 0).await;
    let b = servers.register("bob@example.org", "bob", 1).await;
    befriend(&a, &b, &[&a, &b]).await;
    let group = a.create_group().await.unwrap();
    a.add_user(&group, b.user_id()).await.unwrap();
    a.send(&group, b"before").await.unwrap();
    servers.restart().await;
    a.send(&group, b"after").await.unwrap();
    b.sync().await.unwrap();
    let got: Vec<String> = messages(&drain(&b).await)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(got, vec!["before", "after"]);
    b.send(&group, b"reply").await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(
        messages(&drain(&a).await),
        vec![(b.user_id().to_owned(), "reply".to_owned())]
    );
    // The history keeps what was received and what was sent, after the events are gone.
    let history: Vec<(String, String)> = b
        .history(&group, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.sender.user, String::from_utf8_lossy(&m.body).into_owned()))
        .collect();
    let alice = a.user_id().to_owned();
    let bob = b.user_id().to_owned();
    assert_eq!(
        history,
        vec![
            (alice.clone(), "before".into()),
            (alice, "after".into()),
            (bob, "reply".into())
        ]
    );
    assert_eq!(b.history(&group, 1).await.unwrap().len(), 1);
    let _ = GroupId(Vec::new());
    servers.finish().await;
}

/// A group of Alice (one device) and Bob (one device) that has talked.
async fn alice_and_bob(servers: &Servers) -> (Device, Device, GroupId) {
    let a = servers.register("alice@example.org", "alice1", 0).await;
    let b = servers.register("bob@example.org", "bob", 1).await;
    befriend(&a, &b, &[&a, &b]).await;
    let group = a.create_group().await.unwrap();
    a.add_user(&group, b.user_id()).await.unwrap();
    a.send(&group, b"before").await.unwrap();
    settle(&[&a, &b], 1).await;
    drain(&a).await;
    drain(&b).await;
    (a, b, group)
}

/// A user's new device joins every group of the user (added by a sibling) and reads what
/// is sent from then on — never what was sent before it joined.
async fn device_added_later_reads_from_then_on(engine: Engine) {
    let servers = Servers::start(engine).await;
    let (a1, b, group) = alice_and_bob(&servers).await;
    let a2 = servers.register("alice@example.org", "alice2", 1).await;
    settle(&[&a1, &a2, &b], 3).await;
    assert!(a2.groups().await.unwrap().contains(&group));
    assert_eq!(b.members(&group).await.unwrap().len(), 3);
    // What Bob can show about Alice's devices: both, verified, with their certified keys.
    let verified = b.user_devices("alice@example.org").await.unwrap();
    let mut ids: Vec<&str> = verified.iter().map(|d| d.device_id.as_str()).collect();
    ids.sort();
    let mut expected = vec![a1.device_id(), a2.device_id()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(verified.iter().all(|d| d.signature_key.len() == 32
        && !d.certificates.is_empty()
        && d.user_id == "alice@example.org"));
    assert!(matches!(
        b.user_devices("nobody@example.org").await,
        Err(conclave_client::Error::UnknownUser(_))
    ));
    let events = drain(&b).await;
    assert!(
        events.iter().any(
            |e| matches!(e, Event::MemberAdded { member, .. } if member.device == a2.device_id())
        ),
        "{events:?}"
    );
    b.send(&group, b"after").await.unwrap();
    settle(&[&a1, &a2, &b], 1).await;
    let got: Vec<String> = messages(&drain(&a2).await)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(
        got,
        vec!["after"],
        "the new device reads only what follows its join"
    );
    // And it can post.
    a2.send(&group, b"from the new device").await.unwrap();
    b.sync().await.unwrap();
    assert!(
        messages(&drain(&b).await)
            .contains(&("alice@example.org".into(), "from the new device".into()))
    );
    servers.finish().await;
}

/// A device revoked at the AS (by its own user, from another device) is removed from its
/// groups by the others and reads nothing after.
async fn revoked_device_is_removed_by_the_others(engine: Engine) {
    let servers = Servers::start(engine).await;
    let (a1, b, group) = alice_and_bob(&servers).await;
    let a2 = servers.register("alice@example.org", "alice2", 1).await;
    settle(&[&a1, &a2, &b], 3).await;
    assert_eq!(b.members(&group).await.unwrap().len(), 3);
    a1.revoke_device(a2.device_id()).await.unwrap();
    let mut removed = false;
    for _ in 0..20 {
        settle(&[&a1, &b], 1).await;
        if !b
            .members(&group)
            .await
            .unwrap()
            .iter()
            .any(|m| m.device == a2.device_id())
        {
            removed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(removed, "the revoked device is still a member");
    let events = drain(&b).await;
    assert!(
        events.iter().any(
            |e| matches!(e, Event::DeviceRevoked { device } if device.device == a2.device_id())
        ),
        "{events:?}"
    );
    b.send(&group, b"after the revocation").await.unwrap();
    let _ = a2.sync().await;
    assert!(messages(&drain(&a2).await).is_empty());
    assert!(a2.send(&group, b"still here?").await.is_err());
    servers.finish().await;
}

/// A device that lost its store registers again as a new device; its sibling adds it to
/// the user's groups, and the old device — revoked — is removed.
async fn device_that_lost_its_state_comes_back(engine: Engine) {
    let servers = Servers::start(engine).await;
    let (a1, b, group) = alice_and_bob(&servers).await;
    let lost = servers.register("alice@example.org", "alice2", 1).await;
    settle(&[&a1, &lost, &b], 3).await;
    let lost_id = lost.device_id().to_owned();
    lost.close().await;
    std::fs::remove_file(servers.dir.path().join("alice2.db")).unwrap();
    // The same person, a fresh store: a new registration, a new device.
    let back = servers.register("alice@example.org", "alice2", 1).await;
    assert_ne!(back.device_id(), lost_id);
    a1.revoke_device(&lost_id).await.unwrap();
    let mut ok = false;
    for _ in 0..20 {
        settle(&[&a1, &back, &b], 1).await;
        let members = b.members(&group).await.unwrap();
        if members.iter().any(|m| m.device == back.device_id())
            && !members.iter().any(|m| m.device == lost_id)
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(ok, "{:?}", b.members(&group).await.unwrap());
    b.send(&group, b"welcome back").await.unwrap();
    back.sync().await.unwrap();
    let got: Vec<String> = messages(&drain(&back).await)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(got, vec!["welcome back"]);
    servers.finish().await;
}

/// Two members refresh their keys in the same epoch: both updates land (the loser is
/// rebuilt, not dropped), and every member shows the same verification code.
async fn concurrent_updates_both_land_and_codes_agree(engine: Engine) {
    let servers = Servers::start(engine).await;
    let (a, b, group) = alice_and_bob(&servers).await;
    let before = a.epoch(&group).await.unwrap();
    let (ra, rb) = tokio::join!(a.update(&group), b.update(&group));
    ra.unwrap();
    rb.unwrap();
    settle(&[&a, &b], 1).await;
    assert_eq!(a.epoch(&group).await.unwrap(), before + 2);
    let (ea, ca) = a.verification_code(&group).await.unwrap();
    let (eb, cb) = b.verification_code(&group).await.unwrap();
    assert_eq!((ea, &ca), (eb, &cb));
    assert_eq!(ca.split(' ').count(), 6);
    assert!(
        ca.split(' ')
            .all(|g| g.len() == 5 && g.bytes().all(|x| x.is_ascii_digit()))
    );
    servers.finish().await;
}

/// Bob listens with the event stream (no sync of his own): Alice's messages arrive pushed
/// over WebSocket, in order, once each; the servers restart and the stream reconnects
/// and goes on.
async fn event_stream_pushes_live_and_survives_a_restart(engine: Engine) {
    let mut servers = Servers::start(engine).await;
    let (a, b, group) = alice_and_bob(&servers).await;
    let mut stream = b.event_stream();
    // Subscribed and idle before Alice sends: what arrives now is pushed.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    for i in 0..3 {
        a.send(&group, format!("live {i}").as_bytes())
            .await
            .unwrap();
    }
    let started = std::time::Instant::now();
    for i in 0..3 {
        assert_eq!(next_message(&mut stream, &b).await, format!("live {i}"));
    }
    // Pushed, not polled: far under the fallback interval.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    servers.restart().await;
    // Reconnected (backoff under 1 s) and idle again.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let started = std::time::Instant::now();
    a.send(&group, b"after the restart").await.unwrap();
    assert_eq!(next_message(&mut stream, &b).await, "after the restart");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(stream);
    servers.finish().await;
}

/// The next message from the stream (acknowledging every event on the way).
async fn next_message(stream: &mut conclave_client::EventStream, device: &Device) -> String {
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), stream.next())
            .await
            .expect("an event within 20 s (the fallback poll is 15 s)")
            .expect("stream open")
            .expect("no error");
        device.ack(next.0).await.unwrap();
        if let Event::Message { body, .. } = next.1 {
            return String::from_utf8(body).unwrap();
        }
    }
}

/// A malicious AS certifies and publishes a "ghost" device of Alice (RFC 9750 §8.4.3.1): a
/// key she never registered, with a valid certificate, in the transparency directory. Her
/// device, which watches her own directory entry, reports it once as
/// [`Event::UnknownDevice`]; a device she added herself is never reported; and once the
/// ghost is revoked the watch forgets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_published_ghost_device_is_reported_to_its_user() {
    let servers = Servers::start(Engine::Sqlite).await;
    let mut config = servers.config("alice1", 0);
    config.watch = conclave_client::WatchPolicy {
        interval_secs: 0,
        grace_secs: 0,
    };
    let code = servers.invite("alice@example.org").await;
    let a1 = Device::register(config, conclave_client::Authorization::Invitation { code })
        .await
        .unwrap();
    // Her own second device: announced to the first, so never reported.
    let a2 = servers.register("alice@example.org", "alice2", 0).await;
    settle(&[&a1, &a2], 3).await;
    let unknown = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::UnknownDevice { device } => Some(device.device.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(unknown(&drain(&a1).await), Vec::<String>::new());

    // The AS (its operator) registers a key of its own for Alice, as a device like any other.
    let code = servers.invite("alice@example.org").await;
    let ghost = conclave_client::wire::AuthClient::new(&servers.auth_url())
        .unwrap()
        .register(
            &ed25519_dalek::SigningKey::from_bytes(&[7; 32]),
            conclave_client::Authorization::Invitation { code },
        )
        .await
        .unwrap()
        .device_id;
    let mut reported = Vec::new();
    for _ in 0..50 {
        a1.sync().await.unwrap();
        reported.extend(unknown(&drain(&a1).await));
        if !reported.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(reported, vec![ghost.clone()], "the ghost, once");
    // Reported once only.
    settle(&[&a1, &a2], 2).await;
    assert_eq!(unknown(&drain(&a1).await), Vec::<String>::new());
    // Alice revokes it from her device: it leaves the directory, and nothing more is said.
    a1.revoke_device(&ghost).await.unwrap();
    settle(&[&a1, &a2], 2).await;
    assert_eq!(unknown(&drain(&a1).await), Vec::<String>::new());
    assert!(
        !a1.user_devices("alice@example.org")
            .await
            .unwrap()
            .iter()
            .any(|d| d.device_id == ghost)
    );
    servers.finish().await;
}
