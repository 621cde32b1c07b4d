//! `conclave-load`: the whole Conclave system under load. It starts the real `conclave-as`
//! and `conclave-ds` binaries (SQLite, or PostgreSQL with one or more DS nodes and NATS),
//! registers many simulated devices — each with its own AS certificate, DS mailbox and
//! KeyPackage pool — connects each over WebSocket, and drives groups through the DS with
//! real MLS. It prints one JSON line per measurement and a summary table, and checks that
//! every entry reached every member owed it.
//!
//! Scenarios:
//! - `group`: one group of `--devices` members built through the DS (KeyPackages claimed
//!   from pools, Welcomes through mailboxes, `--batch` Adds per commit), then application
//!   messages and commits to all.
//! - `small-groups`: every device in `--groups-per-device` groups of 2 to 50 members, and a
//!   Poisson mix of messages, updates, adds and removes at `--rate` operations a second.
//!
//! Holding full MLS state for every member of a 50,000-member group would take 50,000 ×
//! tens of MB, so most members are *delivery-only*: their connection subscribes with the
//! epoch's group auth key (which the tool hands them, as their MLS state would) and counts
//! what it receives. A random sample of members (`--sample`, at least 50) holds real state
//! and decrypts and checks every message and commit. The output says how many.
#![forbid(unsafe_code)]

mod conn;
mod population;
mod servers;
mod sim;
mod track;

use clap::{Parser, ValueEnum};
use conclave_client::wire::{AuthClient, DeliveryClient};
use conclave_mls::RustCrypto;
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::time::TimePolicy;
use futures_util::StreamExt as _;
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use servers::{Engine, Services, Stack};
use sim::{Done, Op, Sim, SimGroup};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use track::Board;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A server could not be started or misbehaved.
    #[error("{0}")]
    Server(String),
    /// A binary could not be started.
    #[error("cannot start {0}: {1}")]
    Spawn(PathBuf, std::io::Error),
    /// The SDK's wire level refused something.
    #[error(transparent)]
    Client(#[from] conclave_client::Error),
    /// MLS refused something.
    #[error("MLS: {0}")]
    Mls(#[from] conclave_mls::Error),
    /// Decoding failed.
    #[error("decoding: {0}")]
    Decode(#[from] conclave_mls::DecodeError),
    /// I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// PostgreSQL.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// Which scenario to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Scenario {
    /// One group of every device.
    Group,
    /// Many groups of 2–50 members with a Poisson mix of operations.
    SmallGroups,
}

/// Drive the real Conclave servers with many simulated devices.
#[derive(Debug, Parser)]
#[command(name = "conclave-load", version, about)]
struct Args {
    /// The scenario.
    #[arg(long, value_enum, default_value = "small-groups")]
    scenario: Scenario,
    /// The storage engine of both servers.
    #[arg(long, value_enum, default_value = "sqlite")]
    engine: Engine,
    /// DS nodes (PostgreSQL only for more than one; they share the database and NATS).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Devices (two per user).
    #[arg(long, default_value_t = 50_000)]
    devices: usize,
    /// `group`: members holding real MLS state, chosen at random (at least 50, or every
    /// member of a smaller group).
    #[arg(long, default_value_t = 50)]
    sample: usize,
    /// `small-groups`: members per group holding real MLS state (the others are
    /// delivery-only); they send and commit, and decrypt and check everything.
    #[arg(long, default_value_t = 2)]
    real_per_group: usize,
    /// `group`: Adds per commit while the group is built.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// `group`: application messages after the group is built.
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// `group`: update commits after the group is built (between the messages).
    #[arg(long, default_value_t = 10)]
    commits: usize,
    /// `small-groups`: groups each device is in (on average).
    #[arg(long, default_value_t = 3)]
    groups_per_device: usize,
    /// `small-groups`: operations a second (Poisson arrivals over all groups).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// `small-groups`: how long the mix runs, seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Devices that keep a WebSocket connection (default: as many as the open-file limit
    /// allows, since each takes a descriptor here and one in the DS). The others are offline
    /// for the run: they are members, but nothing is pushed to them.
    #[arg(long)]
    connected: Option<usize>,
    /// Plaintext bytes of each application message.
    #[arg(long, default_value_t = 256)]
    message_bytes: usize,
    /// Requests in flight while registering devices and building groups.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long an entry may take to reach every member, seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Seed of the random choices (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Where `conclave-as` and `conclave-ds` are (default: beside this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// PostgreSQL admin URL.
    #[arg(
        long,
        env = "CONCLAVE_TEST_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// NATS URL.
    #[arg(
        long,
        env = "CONCLAVE_TEST_NATS",
        default_value = "nats://127.0.0.1:4222"
    )]
    nats: String,
    /// Hide the progress bars.
    #[arg(long)]
    quiet: bool,
}

/// One measurement, printed as a JSON line.
fn emit(name: &str, value: serde_json::Value) {
    let mut line = serde_json::json!({ "measure": name });
    if let (Some(obj), serde_json::Value::Object(extra)) = (line.as_object_mut(), value) {
        obj.extend(extra);
    }
    println!("{line}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 1e2
}

fn bar(quiet: bool, len: usize, what: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg:>22} [{bar:40}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("conclave-load: entries were lost or checks failed (see above)");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("conclave-load: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, LoadError> {
    if cfg!(debug_assertions) {
        eprintln!("conclave-load: note: a debug build measures nothing useful; use --release");
    }
    if args.engine == Engine::Sqlite && args.nodes > 1 {
        return Err(LoadError::Server(
            "several DS nodes share a PostgreSQL database: use --engine postgres".into(),
        ));
    }
    let devices = args.devices.max(2);
    // Each device holds one socket here and one in the DS; plus the HTTP pools.
    let open_files = servers::raise_open_files(devices as u64 + 4096);
    let bin_dir = servers::bin_dir(args.bin_dir.clone())?;
    let seed = args.seed.unwrap_or_else(|| {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    });
    let mut rng = StdRng::seed_from_u64(seed);
    let users: Vec<String> = (0..devices)
        .map(|i| format!("u{}@load.example", i / 2))
        .collect();
    let services = Services {
        postgres: args.postgres.clone(),
        nats: args.nats.clone(),
    };
    let (stack, codes) = Stack::start(&bin_dir, args.engine, args.nodes, services, &users).await?;
    emit(
        "setup",
        serde_json::json!({
            "scenario": args.scenario, "engine": args.engine, "nodes": args.nodes,
            "devices": devices, "seed": seed, "open_file_limit": open_files,
        }),
    );
    let result = drive(&args, &stack, codes, devices, open_files, &mut rng).await;
    stack.stop().await;
    result
}

async fn drive(
    args: &Args,
    stack: &Stack,
    codes: Vec<String>,
    devices: usize,
    open_files: u64,
    rng: &mut StdRng,
) -> Result<bool, LoadError> {
    let auth = AuthClient::new(&stack.auth_url)?;
    let nodes: Vec<DeliveryClient> = stack
        .ds_urls
        .iter()
        .map(|u| DeliveryClient::new(u))
        .collect::<Result<_, _>>()?;
    let root = auth.root().await?;
    let validator = Arc::new(X509Validator::new([root.as_slice()], TimePolicy::system())?);

    // Who holds real MLS state.
    let real: HashSet<usize> = match args.scenario {
        Scenario::Group => {
            let want = args.sample.max(50).min(devices);
            let mut chosen: HashSet<usize> = HashSet::from([0]);
            while chosen.len() < want {
                chosen.insert(rng.random_range(0..devices));
            }
            chosen
        }
        Scenario::SmallGroups => HashSet::new(), // chosen per group below
    };
    let (plan, real) = match args.scenario {
        Scenario::Group => (Vec::new(), real),
        Scenario::SmallGroups => plan_small_groups(args, devices, rng),
    };
    let key_packages = match args.scenario {
        Scenario::Group => 1,
        Scenario::SmallGroups => args.groups_per_device + 3,
    };

    let progress = bar(args.quiet, devices, "registering devices");
    let usage_before = stack.ds_usage();
    let (registered, took) = population::register_all(
        &auth,
        &nodes,
        codes,
        key_packages,
        |i| real.contains(&i),
        args.concurrency,
        &progress,
    )
    .await?;
    progress.finish_and_clear();
    emit(
        "register",
        serde_json::json!({
            "devices": devices, "key_packages_each": key_packages,
            "secs": took.as_secs_f64(), "per_sec": devices as f64 / took.as_secs_f64(),
        }),
    );

    // Connections: every real member, and as many delivery-only devices as fit.
    let budget = args
        .connected
        .unwrap_or((open_files as usize).saturating_sub(2048))
        .min(devices);
    if real.len() > budget {
        return Err(LoadError::Server(format!(
            "{} members hold real state but only {budget} devices can be connected",
            real.len()
        )));
    }
    let mut offline: HashSet<usize> = HashSet::new();
    if budget < devices {
        let mut candidates: Vec<usize> = (0..devices).filter(|i| !real.contains(i)).collect();
        for i in (1..candidates.len()).rev() {
            let j = rng.random_range(0..=i);
            candidates.swap(i, j);
        }
        offline.extend(candidates.into_iter().take(devices - budget));
        eprintln!(
            "conclave-load: the open-file limit ({open_files}) allows {budget} connections: \
             {} devices stay offline (members, but not connected)",
            offline.len()
        );
    }
    let board = Arc::new(Board::default());
    let progress = bar(args.quiet, devices - offline.len(), "connecting");
    let started = Instant::now();
    let rss_before = stack.ds_usage().rss_bytes;
    let mut conns = Vec::with_capacity(devices);
    for (i, d) in registered.iter().enumerate() {
        if offline.contains(&i) {
            conns.push(None);
            continue;
        }
        let state = real.contains(&i).then(|| {
            Arc::new(tokio::sync::Mutex::new(conn::RealState {
                identity: d.identity.clone(),
                bundles: d.bundles.clone(),
                groups: Default::default(),
            }))
        });
        conns.push(Some(
            conn::open(conn::ConnSetup {
                device: i,
                base: stack.ds_urls[d.node].clone(),
                ds: nodes[d.node].clone(),
                mailbox: (d.mailbox_id.clone(), d.mailbox_key.clone()),
                real: state,
                validator: validator.clone(),
                board: board.clone(),
            })
            .await?,
        ));
        progress.inc(1);
    }
    progress.finish_and_clear();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = stack.ds_usage().rss_bytes;
    emit(
        "connect",
        serde_json::json!({
            "connections": devices - offline.len(), "offline": offline.len(),
            "secs": started.elapsed().as_secs_f64(),
            "ds_rss_bytes": rss_after,
            "ds_bytes_per_connection": rss_after.saturating_sub(rss_before) as f64
                / (devices - offline.len()).max(1) as f64,
        }),
    );

    let sim = Arc::new(Sim {
        board: board.clone(),
        devices: registered,
        conns,
        nodes,
        provider: RustCrypto::default(),
        validator,
        timeout: Duration::from_secs(args.timeout),
        message_bytes: args.message_bytes,
    });
    let real_count = real.len();
    let outcome = match args.scenario {
        Scenario::Group => group_scenario(args, stack, &sim, rng).await,
        Scenario::SmallGroups => small_groups_scenario(args, stack, &sim, plan, rng).await,
    };
    board.stop();
    let usage_after = stack.ds_usage();
    let db_bytes = stack.ds_database_bytes().await?;
    let totals = board.totals();
    emit(
        "totals",
        serde_json::json!({
            "real_members": real_count,
            "delivery_only_members": devices - real_count,
            "ds_cpu_secs": usage_after.cpu_secs - usage_before.cpu_secs,
            "ds_database_bytes": db_bytes,
            "ds_database_bytes_per_device": db_bytes as f64 / devices as f64,
            "totals": totals,
        }),
    );
    let ok = outcome.is_ok() && totals.lost == 0 && totals.faults == 0;
    println!();
    println!(
        "{} members held real MLS state and checked every entry they were owed; the other {} \
         were delivery-only (they counted what the DS pushed them).",
        real_count,
        devices - real_count
    );
    println!(
        "deliveries {}, checked by real members {}, lag notices {}, lost {}, faults {}",
        totals.deliveries, totals.checked, totals.lagged, totals.lost, totals.faults
    );
    for f in &totals.first_faults {
        println!("  fault: {f}");
    }
    outcome?;
    Ok(ok)
}

/// Summary of a list of operations, as a JSON line and a table row.
fn summarize(name: &str, done: &[Done], elapsed: Duration) {
    for op in [Op::Message, Op::Update, Op::Add, Op::Remove] {
        let mut lat: Vec<Duration> = done
            .iter()
            .filter(|d| d.op == op)
            .map(|d| d.latency)
            .collect();
        if lat.is_empty() {
            continue;
        }
        lat.sort();
        let fanout: usize = done.iter().filter(|d| d.op == op).map(|d| d.fanout).sum();
        emit(
            name,
            serde_json::json!({
                "op": op, "count": lat.len(),
                "p50_ms": ms(percentile(&lat, 0.5)), "p99_ms": ms(percentile(&lat, 0.99)),
                "max_ms": ms(percentile(&lat, 1.0)),
                "deliveries": fanout, "secs": elapsed.as_secs_f64(),
            }),
        );
        println!(
            "{name:>14} {:>8} ×{:>6}  p50 {:>9.2} ms  p99 {:>9.2} ms  max {:>9.2} ms  deliveries {:>9}",
            format!("{op:?}"),
            lat.len(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(percentile(&lat, 1.0)),
            fanout
        );
    }
}

async fn group_scenario(
    args: &Args,
    stack: &Stack,
    sim: &Arc<Sim>,
    rng: &mut StdRng,
) -> Result<(), LoadError> {
    let devices = sim.devices.len();
    let started = Instant::now();
    let mut g = sim.create_group(0).await?;
    let progress = bar(args.quiet, devices, "building the group");
    progress.inc(1);
    let mut builds = Vec::new();
    let rest: Vec<usize> = (1..devices).collect();
    for batch in rest.chunks(args.batch.max(1)) {
        builds.push(sim.add(&mut g, 0, batch).await?);
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    let built = started.elapsed();
    emit(
        "group_built",
        serde_json::json!({
            "members": devices, "commits": builds.len(), "secs": built.as_secs_f64(),
            "welcome_p99_ms": ms({
                let mut w: Vec<Duration> = builds.iter().filter_map(|d| d.welcome_latency).collect();
                w.sort();
                percentile(&w, 0.99)
            }),
        }),
    );
    println!(
        "group of {devices} members built in {built:.1?} ({} add commits)",
        builds.len()
    );

    let mut done = Vec::new();
    let cpu = stack.ds_usage().cpu_secs;
    let own_cpu = servers::usage(std::process::id()).cpu_secs;
    let started = Instant::now();
    let total = args.messages + args.commits;
    let every = total
        .checked_div(args.commits)
        .map_or(usize::MAX, |n| n.max(1));
    let progress = bar(args.quiet, total, "messages and commits");
    for i in 0..total {
        let who = g.real[rng.random_range(0..g.real.len())];
        let d = if (i + 1) % every == 0 {
            sim.update(&mut g, who).await?
        } else {
            sim.message(&mut g, who).await?
        };
        done.push(d);
        progress.inc(1);
    }
    progress.finish_and_clear();
    let elapsed = started.elapsed();
    let deliveries: usize = done.iter().map(|d| d.fanout).sum();
    emit(
        "group_traffic",
        serde_json::json!({
            "members": devices, "operations": done.len(), "secs": elapsed.as_secs_f64(),
            "deliveries_per_sec": deliveries as f64 / elapsed.as_secs_f64(),
            "ds_cpu_share": (stack.ds_usage().cpu_secs - cpu) / elapsed.as_secs_f64(),
            "load_tool_cpu_share":
                (servers::usage(std::process::id()).cpu_secs - own_cpu) / elapsed.as_secs_f64(),
        }),
    );
    summarize(&format!("group of {devices}"), &done, elapsed);
    Ok(())
}

/// The small groups (lists of devices) and the devices holding real MLS state: the first
/// `--real-per-group` members of each group.
fn plan_small_groups(
    args: &Args,
    devices: usize,
    rng: &mut StdRng,
) -> (Vec<Vec<usize>>, HashSet<usize>) {
    // Every device appears `groups_per_device` times across groups of 2..=50 drawn at
    // random (a group never holds a device twice).
    let mut slots: Vec<usize> = (0..devices)
        .flat_map(|d| std::iter::repeat_n(d, args.groups_per_device.max(1)))
        .collect();
    for i in (1..slots.len()).rev() {
        let j = rng.random_range(0..=i);
        slots.swap(i, j);
    }
    let mut groups = Vec::new();
    let mut real = HashSet::new();
    let mut rest = slots.as_slice();
    while rest.len() >= 2 {
        let size = rng.random_range(2..=50usize).min(rest.len());
        let (take, tail) = rest.split_at(size);
        rest = tail;
        let mut members: Vec<usize> = Vec::new();
        for &d in take {
            if !members.contains(&d) {
                members.push(d);
            }
        }
        if members.len() < 2 {
            continue;
        }
        for &d in members
            .iter()
            .take(args.real_per_group.clamp(1, 50).min(members.len()))
        {
            real.insert(d);
        }
        groups.push(members);
    }
    (groups, real)
}

async fn small_groups_scenario(
    args: &Args,
    stack: &Stack,
    sim: &Arc<Sim>,
    plan: Vec<Vec<usize>>,
    rng: &mut StdRng,
) -> Result<(), LoadError> {
    let started = Instant::now();
    let progress = bar(args.quiet, plan.len(), "creating groups");
    let created = futures_util::stream::iter(plan.into_iter().map(|members| {
        let sim = sim.clone();
        let progress = progress.clone();
        async move {
            let mut g = sim.create_group(members[0]).await?;
            sim.add(&mut g, members[0], &members[1..]).await?;
            progress.inc(1);
            Ok::<_, LoadError>(g)
        }
    }))
    .buffer_unordered(args.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    progress.finish_and_clear();
    let groups: Vec<Arc<tokio::sync::Mutex<SimGroup>>> = created
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|g| Arc::new(tokio::sync::Mutex::new(g)))
        .collect();
    let memberships: usize = {
        let mut n = 0;
        for g in &groups {
            n += g.lock().await.members.len();
        }
        n
    };
    emit(
        "groups_created",
        serde_json::json!({
            "groups": groups.len(), "memberships": memberships,
            "secs": started.elapsed().as_secs_f64(),
        }),
    );

    // The Poisson mix: 90% messages, 4% updates, 3% adds, 3% removes.
    let cpu = stack.ds_usage().cpu_secs;
    let own_cpu = servers::usage(std::process::id()).cpu_secs;
    let usage = Instant::now();
    let deadline = usage + Duration::from_secs(args.duration);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Done, LoadError>>();
    let mut next = Instant::now();
    let mut launched = 0usize;
    let devices = sim.devices.len();
    while next < deadline {
        let gap = -(1.0 - rng.random::<f64>()).ln() / args.rate.max(0.001);
        next += Duration::from_secs_f64(gap);
        tokio::time::sleep_until(next.into()).await;
        let group = groups[rng.random_range(0..groups.len())].clone();
        let roll: f64 = rng.random();
        let pick: u64 = rng.random();
        let candidate = rng.random_range(0..devices);
        let sim = sim.clone();
        let tx = tx.clone();
        launched += 1;
        tokio::spawn(async move {
            let mut g = group.lock().await;
            let who = g.real[(pick as usize) % g.real.len()];
            let result = if roll < 0.90 {
                sim.message(&mut g, who).await
            } else if roll < 0.94 {
                sim.update(&mut g, who).await
            } else if roll < 0.97 && !g.members.contains(&candidate) && g.members.len() < 50 {
                sim.add(&mut g, who, &[candidate]).await
            } else {
                let removable: Vec<usize> = g
                    .members
                    .iter()
                    .copied()
                    .filter(|m| !g.real.contains(m))
                    .collect();
                match removable.get((pick as usize) % removable.len().max(1)) {
                    Some(&d) if g.members.len() > 2 => sim.remove(&mut g, who, d).await,
                    _ => sim.message(&mut g, who).await,
                }
            };
            let _ = tx.send(result);
        });
    }
    drop(tx);
    let mut done = Vec::new();
    let mut first_error = None;
    while let Some(r) = rx.recv().await {
        match r {
            Ok(d) => done.push(d),
            Err(e) => {
                sim.board.fault(e.to_string());
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = usage.elapsed();
    let deliveries: usize = done.iter().map(|d| d.fanout).sum();
    emit(
        "small_groups_traffic",
        serde_json::json!({
            "groups": groups.len(), "offered_per_sec": args.rate,
            "operations": launched, "completed": done.len(),
            "operations_per_sec": done.len() as f64 / elapsed.as_secs_f64(),
            "deliveries_per_sec": deliveries as f64 / elapsed.as_secs_f64(),
            "secs": elapsed.as_secs_f64(),
            // DS CPU seconds per second of traffic, summed over the nodes (1.0 = one core).
            "ds_cpu_share": (stack.ds_usage().cpu_secs - cpu) / elapsed.as_secs_f64(),
            "load_tool_cpu_share":
                (servers::usage(std::process::id()).cpu_secs - own_cpu) / elapsed.as_secs_f64(),
        }),
    );
    summarize("small groups", &done, elapsed);
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
