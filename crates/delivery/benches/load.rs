//! Load benchmark of the DS on loopback (not a timed test): N simulated clients connected
//! over WebSocket, subscribed to groups; measures appends accepted/s, pushed deliveries/s,
//! commit compare-and-set latency (p50/p99) and claims/s.
//!
//! `LOAD_CLIENTS=1000 LOAD_ENGINE=sqlite cargo bench -p conclave-ds --bench load`
//! (`LOAD_ENGINE=postgres LOAD_NODES=2` for two nodes on one PostgreSQL database + NATS).
//! Each DS node is the real `conclave-ds` binary in its own process; the bench also reports
//! the server's CPU time per append and its resident memory per connected client (`/proc`).
//! `cargo bench` builds with the `bench` profile, which is the release profile; the figures
//! of a debug build say nothing about the DS, so one refuses to run.

#[path = "../tests/support/mod.rs"]
mod support;

use conclave_api::delivery::*;
use futures_util::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::mls::Mls;
use support::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    if cfg!(debug_assertions) {
        eprintln!(
            "the load benchmark measures release builds only: \
             run `cargo bench -p conclave-ds --bench load` (no `--profile dev`)"
        );
        std::process::exit(2);
    }
    let clients = env("LOAD_CLIENTS", 1000);
    let nodes = env("LOAD_NODES", 1).max(1);
    let engine = match std::env::var("LOAD_ENGINE").as_deref() {
        Ok("postgres") => Engine::Postgres,
        _ => Engine::Sqlite,
    };
    let groups = env("LOAD_GROUPS", 10).max(1);
    let messages = env("LOAD_MESSAGES", 5000);
    let concurrency = env("LOAD_CONCURRENCY", 64);
    let use_nats = nodes > 1;
    let db = Db::new(engine).await;
    // Each node is the real `conclave-ds` binary in a process of its own, so the load
    // generator's sockets and CPU are counted apart from the server's (and 10,000 clients fit
    // the per-process descriptor limit on both sides).
    let nats = nats_url();
    let mut extra = vec![
        "--claims-per-minute",
        "100000",
        "--postgres-connections",
        "16",
    ];
    if use_nats {
        extra.extend(["--nats", nats.as_str()]);
    }
    let mut servers = Vec::new();
    let mut node_clients = Vec::new();
    for _ in 0..nodes {
        let (child, client) = spawn_ds(&db, &extra).await;
        node_clients.push(client);
        servers.push(child);
    }
    let pids: Vec<u32> = servers.iter().filter_map(|c| c.id()).collect();
    let c = node_clients[0].clone();
    println!("engine {engine:?}, {nodes} node(s), {clients} clients, {groups} groups");

    // Groups (real MLS), and their epoch-0 keys.
    let mls = Mls::new();
    let mut mls_groups = Vec::new();
    for g in 0..groups {
        let gid = format!("load-{g}").into_bytes();
        let group = mls.create_group("owner", &gid);
        assert_eq!(
            c.create_group(&gid, &mls.auth_key(&group)).await.status,
            201
        );
        mls_groups.push((gid, group));
    }

    // N WebSocket clients, each subscribed to one group (round robin over groups and nodes).
    let rss_before = server_rss(&pids);
    let delivered = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut readers = Vec::new();
    for i in 0..clients {
        let (gid, group) = &mls_groups[i % groups];
        let node = &node_clients[i % nodes];
        let mut ws = support::ws::Ws::connect(&node.base).await;
        ws.subscribe_group(gid, 0, &mls.auth_key(group))
            .await
            .expect("subscribe");
        let delivered = delivered.clone();
        readers.push(tokio::spawn(async move {
            let mut stream = ws.into_stream();
            while let Some(Ok(_)) = stream.next().await {
                delivered.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    println!(
        "{clients} clients connected and subscribed in {:.1?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = server_rss(&pids);
    println!(
        "server memory: {:.1} MiB resident with the clients connected, {:.1} KiB per connected client",
        rss_after as f64 / 1_048_576.0,
        rss_after.saturating_sub(rss_before) as f64 / 1024.0 / clients as f64
    );

    // Appends: pre-encrypted application messages, posted with `concurrency` in flight.
    let mut work = Vec::new();
    for i in 0..messages {
        let (gid, group) = &mut mls_groups[i % groups];
        let m = mls.encrypt(
            group,
            b"load test message of a modest size, about a line of chat",
        );
        work.push((gid.clone(), m, mls.auth_key(group)));
    }
    let expected_deliveries = (messages as u64) * (clients as u64) / (groups as u64);
    let work = Arc::new(std::sync::Mutex::new(work));
    let accepted = Arc::new(AtomicU64::new(0));
    let cpu0 = server_cpu(&pids);
    let t0 = Instant::now();
    let mut posters = Vec::new();
    for w in 0..concurrency {
        let (work, accepted, client) = (
            work.clone(),
            accepted.clone(),
            node_clients[w % nodes].clone(),
        );
        posters.push(tokio::spawn(async move {
            loop {
                let Some((gid, m, key)) = work.lock().unwrap().pop() else {
                    break;
                };
                if client.post(&gid, &m, &key, 0).await.status == 201 {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for p in posters {
        p.await.expect("poster");
    }
    let append_secs = t0.elapsed().as_secs_f64();
    // Wait for the pushes to drain (at most 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < expected_deliveries && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let push_secs = t0.elapsed().as_secs_f64();
    let server_cpu_secs = (server_cpu(&pids) - cpu0).as_secs_f64();
    let n_acc = accepted.load(Ordering::Relaxed);
    let n_del = delivered.load(Ordering::Relaxed);
    println!(
        "appends: {n_acc} accepted in {append_secs:.2} s = {:.0}/s",
        n_acc as f64 / append_secs
    );
    println!(
        "deliveries: {n_del} of {expected_deliveries} pushed in {push_secs:.2} s = {:.0}/s",
        n_del as f64 / push_secs
    );
    // Fan-out on read: each message is one log row, however many subscribers its group has.
    let rows = db.count_rows("log_entries").await;
    assert_eq!(rows as u64, n_acc, "one log row per accepted message");
    println!(
        "storage: {rows} log rows for {n_acc} messages to groups of {} subscribers",
        clients / groups
    );
    println!(
        "server CPU: {server_cpu_secs:.2} s for the appends and their pushes = {:.0} µs per append \
         ({:.0}% of one core)",
        server_cpu_secs * 1e6 / n_acc.max(1) as f64,
        server_cpu_secs * 100.0 / push_secs
    );

    // Commit compare-and-set latency: a chain of commits on one group, one at a time.
    let (gid, group) = &mut mls_groups[0];
    let mut lat = Vec::new();
    for _ in 0..env("LOAD_COMMITS", 200) {
        let e = mls.epoch(group);
        let key = mls.auth_key(group);
        let p = mls.commit_update(group);
        let req = commit_request(&p, &[]);
        let t = Instant::now();
        let r = c.commit(gid, &req, &key, e).await;
        lat.push(t.elapsed());
        assert_eq!(r.status, 201);
        mls.accepted(group);
    }
    lat.sort();
    let total: Duration = lat.iter().sum();
    println!(
        "commits: {} sequential, {:.0}/s, p50 {:.2?}, p99 {:.2?}",
        lat.len(),
        lat.len() as f64 / total.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );

    // Claims: one pool, `concurrency` claimers.
    let (mailbox, key) = c.mailbox().await;
    let secret = random::<16>();
    let pool: CreatePoolResponse = c
        .json(
            "POST",
            &format!("/v1/mailboxes/{mailbox}/pools"),
            &CreatePoolRequest {
                claim_secret: Bytes(secret.to_vec()),
            },
            Sign::Mailbox(&key),
        )
        .await
        .json();
    let n_claims = env("LOAD_CLAIMS", 2000);
    for chunk in (0..n_claims).collect::<Vec<_>>().chunks(1000) {
        let r = c
            .json(
                "POST",
                &format!(
                    "/v1/mailboxes/{mailbox}/pools/{}/key-packages",
                    pool.pool_id
                ),
                &UploadKeyPackagesRequest {
                    key_packages: chunk
                        .iter()
                        .map(|i| SealedKeyPackage {
                            sealed: Bytes(vec![(*i % 251) as u8; 300]),
                            last_resort: false,
                        })
                        .collect(),
                    expires_at: conclave_ds::auth::now() + 3600,
                },
                Sign::Mailbox(&key),
            )
            .await;
        assert_eq!(r.status, 204);
    }
    let claimed = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let mut claimers = Vec::new();
    for w in 0..concurrency {
        let (client, pool_id, claimed) = (
            node_clients[w % nodes].clone(),
            pool.pool_id.clone(),
            claimed.clone(),
        );
        claimers.push(tokio::spawn(async move {
            loop {
                let r = client
                    .json(
                        "POST",
                        &format!("/v1/pools/{pool_id}/claim"),
                        &ClaimRequest {
                            claim_secret: Bytes(secret.to_vec()),
                        },
                        Sign::No,
                    )
                    .await;
                if r.status != 200 {
                    break;
                }
                claimed.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in claimers {
        h.await.expect("claimer");
    }
    let n = claimed.load(Ordering::Relaxed);
    println!(
        "claims: {n} in {:.2} s = {:.0}/s",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    for r in readers {
        r.abort();
    }
    drop(servers);
}

/// CPU time (user + system) the server processes have used so far, from `/proc`.
fn server_cpu(pids: &[u32]) -> Duration {
    // Fields 14 and 15 of /proc/PID/stat, in clock ticks (USER_HZ, 100 on Linux).
    let ticks: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // The command name (field 2) may hold spaces: count fields after its ')'.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| {
                fields
                    .get(n - 3)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            field(14) + field(15)
        })
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Resident memory of the server processes (bytes), from `/proc`.
fn server_rss(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .sum::<u64>()
        * 1024
}
