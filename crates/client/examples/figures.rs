//! The SDK's figures through real servers on loopback (the AS and one DS node on SQLite
//! files, in this process): the time for a user to add a user of two devices to a group,
//! messages per second between two devices, and the KeyPackage top-up traffic of a device.
//!
//! ```sh
//! cargo run --release -p conclave-client --example figures [-- ROUNDS MESSAGES]
//! ```

use conclave_client::{Authorization, Config, Device, KdfParams, StoreKey};
use sqlx::Connection as _;
use std::time::{Duration, Instant};

struct Servers {
    dir: tempfile::TempDir,
    auth: conclave_as::server::Server,
    ds: conclave_ds::Server,
}

impl Servers {
    async fn start() -> Servers {
        let dir = tempfile::tempdir().expect("tempdir");
        let auth = conclave_as::server::start(conclave_as::server::Options::sqlite(
            dir.path().join("as.db"),
            dir.path().join("as-keys"),
        ))
        .await
        .expect("AS");
        let ds = conclave_ds::start(conclave_ds::config::Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            db: dir.path().join("ds.db"),
            claims_per_minute: 100_000,
            anonymous_creations_per_minute: 100_000,
            ..conclave_ds::config::Config::default()
        })
        .await
        .expect("DS");
        Servers { dir, auth, ds }
    }

    async fn device(&self, user: &str, name: &str) -> Device {
        let code = self
            .auth
            .service
            .create_invitation(user, None)
            .await
            .expect("invitation");
        let config = Config::new(
            self.auth.url(),
            format!("http://{}", self.ds.addr),
            self.dir.path().join(format!("{name}.db")),
            // The store's passphrase stretching is not what is measured here.
            StoreKey::Passphrase(name.into(), KdfParams::insecure_fast()),
        );
        Device::register(config, Authorization::Invitation { code })
            .await
            .expect("register")
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let messages: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let servers = Servers::start().await;

    // Alice (one device) and Bob (two devices), contacts.
    let alice = servers.device("alice@example.org", "alice").await;
    let bob1 = servers.device("bob@example.org", "bob1").await;
    let bob2 = servers.device("bob@example.org", "bob2").await;
    for _ in 0..3 {
        for d in [&alice, &bob1, &bob2] {
            d.sync().await.expect("sync");
        }
    }
    alice.request_contact("bob@example.org").await.expect("ask");
    bob1.sync().await.expect("sync");
    bob1.accept_contact("alice@example.org")
        .await
        .expect("accept");
    for _ in 0..2 {
        for d in [&alice, &bob1, &bob2] {
            d.sync().await.expect("sync");
        }
    }

    // 1. Adding a user of two devices: claim two KeyPackages, open and check both
    // (certificate chain, transparency proof), one commit, one Welcome.
    let mut adds = Vec::new();
    for _ in 0..rounds {
        let group = alice.create_group().await.expect("group");
        let started = Instant::now();
        alice
            .add_user(&group, "bob@example.org")
            .await
            .expect("add");
        adds.push(started.elapsed());
        // Keep the pools from running dry: the devices top up on sync.
        bob1.sync().await.expect("sync");
        bob2.sync().await.expect("sync");
    }

    // 2. Messages between two devices: Alice sends, Bob reads them all.
    let group = alice.create_group().await.expect("group");
    alice
        .add_user(&group, "bob@example.org")
        .await
        .expect("add");
    bob1.sync().await.expect("sync");
    drain(&bob1).await;
    let started = Instant::now();
    for i in 0..messages {
        alice
            .send(&group, format!("message {i}").as_bytes())
            .await
            .expect("send");
    }
    let sending = started.elapsed();
    let started = Instant::now();
    bob1.sync().await.expect("sync");
    let read = drain(&bob1).await;
    let reading = started.elapsed();
    assert_eq!(read, messages, "every message read");

    // 3. KeyPackage top-up traffic: what one sealed KeyPackage weighs on the wire.
    let ds_db = servers.dir.path().join("ds.db");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", ds_db.display()))
        .await
        .expect("DS database");
    let (count, bytes): (i64, i64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(length(sealed)), 0) FROM sealed_key_packages",
    )
    .fetch_one(&mut c)
    .await
    .expect("query");
    let per_kp = bytes as f64 / count.max(1) as f64;
    let policy = conclave_client::PoolPolicy::default();
    // base64 in JSON: 4/3 of the bytes.
    let upload_kib = f64::from(policy.target - policy.low_water + 1) * per_kp * 4.0 / 3.0 / 1024.0;

    println!("Conclave SDK figures (AS + 1 DS node on SQLite, loopback, this machine)");
    println!(
        "add a 2-device user to a group: median {:.1} ms over {rounds} rounds",
        median(adds).as_secs_f64() * 1e3
    );
    println!(
        "messages, one device to another: {messages} sent in {:.2} s ({:.0}/s), read in {:.2} s ({:.0}/s)",
        sending.as_secs_f64(),
        messages as f64 / sending.as_secs_f64(),
        reading.as_secs_f64(),
        messages as f64 / reading.as_secs_f64()
    );
    println!(
        "KeyPackage: {per_kp:.0} bytes sealed ({count} in pools); a top-up from the low-water mark ({} → {}) uploads {upload_kib:.1} KiB",
        policy.low_water - 1,
        policy.target
    );
    for claims in [5u32, 20, 100] {
        let top_ups = f64::from(claims) / f64::from(policy.target - policy.low_water + 1);
        println!(
            "  at {claims} claims/day (added to {claims} groups, or by {claims} new contacts' devices): {:.1} top-ups/day, {:.1} KiB/day",
            top_ups,
            top_ups * upload_kib
        );
    }
}

async fn drain(device: &Device) -> usize {
    let mut n = 0;
    loop {
        let events = device.events(500).await.expect("events");
        let Some((last, _)) = events.last().cloned() else {
            return n;
        };
        n += events
            .iter()
            .filter(|(_, e)| matches!(e, conclave_client::Event::Message { .. }))
            .count();
        device.ack(last).await.expect("ack");
    }
}
