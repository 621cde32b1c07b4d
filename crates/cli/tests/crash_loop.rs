//! Crash safety of the whole system (issue 19): the real `conclave-as` and `conclave-ds`
//! binaries, each on its own SQLite file, and three people's `conclave` devices in one
//! group, under a scripted load — Alice and Carol send, Alice now and then refreshes her
//! keys (`group update`), Bob's `conclave listen --json` prints what arrives — while
//! `kill -9` hits, at random moments, the AS, the DS, a sending client (Alice's or Carol's
//! `send` or `group update`) and the listening client (Bob's `listen`), and each killed
//! process is started again on the same files (and, for a server, the same port).
//!
//! In the end: every message whose `send` exited 0 reached each other member's application
//! exactly once, and no message reached any application twice; every message any
//! application saw was one that was sent; the three devices hold the same epoch and the same
//! verification code (no fork) and still talk; and every database, key file and store is
//! the one the run started with (same inode), under the same device ids.
//!
//! "The application" is what `conclave listen --json` printed. The SDK stores each event in
//! the same transaction as the state change that produced it and hands it out until it is
//! acknowledged, so a kill between printing an event and acknowledging it prints it again
//! — with the same `id`. Bob's listener is restarted the way a script keeps exactly-once
//! delivery: with `--after` the last id it holds, which acknowledges without printing what
//! it already has. `CONCLAVE_KILL_SEED` replays a run's choices (kill targets and moments;
//! the processes' own timing still varies).

mod support;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{conclave, kill_times};

/// Kills at least this many processes in all…
const MIN_KILLS: usize = 80;
/// …and at least this many of each target.
const MIN_PER_TARGET: usize = 18;
/// The most rounds of load (a kill that finds its process already exited does not count).
const MAX_ROUNDS: usize = 300;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Where the server binaries are: beside `conclave` in the target directory (`cargo test
/// --workspace` builds them).
fn server_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_conclave")).with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace (`cargo build --release --workspace`)",
        path.display()
    );
    path
}

/// A server binary serving its files on one address; killed with SIGKILL and started again
/// on the same files and address.
struct Server {
    name: &'static str,
    bin: PathBuf,
    /// Everything but `--listen`.
    args: Vec<OsString>,
    /// Where it listens (learned from the first start on port 0).
    addr: String,
    child: Option<Child>,
    /// Its stdout and stderr, across restarts.
    log: PathBuf,
    starts: usize,
}

impl Server {
    fn start(name: &'static str, bin: PathBuf, args: Vec<OsString>, log: PathBuf) -> Server {
        let mut server = Server {
            name,
            bin,
            args,
            addr: "127.0.0.1:0".into(),
            child: None,
            log,
            starts: 0,
        };
        server.up();
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts the binary, retrying while the address is still taken by the killed one.
    fn up(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.spawn() {
                Ok((child, addr)) => {
                    self.child = Some(child);
                    self.addr = addr;
                    self.starts += 1;
                    return;
                }
                Err(why) => {
                    assert!(
                        Instant::now() < deadline,
                        "{} did not start again: {why}; log {}",
                        self.name,
                        self.log.display()
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// One attempt: the child and the address it printed (`listening on ADDR`).
    fn spawn(&self) -> Result<(Child, String), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(&self.bin)
            .args(&self.args)
            .args(["--listen", &self.addr])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", self.bin.display()));
        // Keep reading its stdout (a full pipe would stall it); the address goes back.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = log;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let _ = writeln!(log, "{line}");
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => Ok((child, addr)),
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().unwrap();
                Err(format!("{e} ({status})"))
            }
        }
    }

    /// `kill -9`; waits for the process to be gone.
    fn kill(&mut self) {
        let what = format!("{} (log {})", self.name, self.log.display());
        kill_nine(self.child.take().expect("running"), &what);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `conclave --json --profile P args…`.
fn command(profile: &Path, args: &[&str]) -> Command {
    let mut c = conclave();
    c.arg("--json").arg("--profile").arg(profile).args(args);
    c
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Runs a command that must succeed; its JSON lines.
fn ok(profile: &Path, args: &[&str]) -> Vec<Value> {
    let out = command(profile, args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}{}",
        profile.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
    lines(&out.stdout)
}

/// `listen --once` until an event satisfies `f`; every event read.
/// `kill -9` of a process that must still be running; waits for it to be gone.
fn kill_nine(mut child: Child, what: &str) {
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "{what} had ended by itself ({status})"
    );
}

fn wait_for(profile: &Path, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..20 {
        seen.extend(ok(profile, &["listen", "--once"]));
        if seen.iter().any(&f) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{} never saw the event; saw {seen:?}", profile.display());
}

/// A `conclave` command running in the background (a send, an update), killed on drop.
struct Job {
    child: Child,
    what: String,
}

impl Job {
    fn spawn(profile: &Path, args: &[&str]) -> Job {
        let child = command(profile, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Job {
            child,
            what: format!("{} {args:?}", profile.display()),
        }
    }

    /// `kill -9` if still running: whether it was.
    fn kill(&mut self) -> bool {
        if self.child.try_wait().unwrap().is_some() {
            return false;
        }
        self.child.kill().unwrap();
        true
    }

    /// Waits for the end (a minute at most); its output.
    fn finish(self) -> Output {
        let mut child = self.child;
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "{} hangs", self.what);
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }
}

/// Bob's `conclave listen --json`, its stdout in a file of its own per run; what every run
/// printed, and the last event id among it.
struct Listener {
    profile: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    runs: usize,
    printed: Vec<Value>,
    last_id: i64,
}

impl Listener {
    fn new(profile: &Path, dir: &Path) -> Listener {
        let mut l = Listener {
            profile: profile.to_owned(),
            dir: dir.to_owned(),
            child: None,
            runs: 0,
            printed: Vec::new(),
            last_id: 0,
        };
        l.start();
        l
    }

    fn current(&self) -> PathBuf {
        self.dir.join(format!("listen-{}.jsonl", self.runs))
    }

    /// A new run, after the last id already printed.
    fn start(&mut self) {
        self.runs += 1;
        let after = self.last_id.to_string();
        let child = command(&self.profile, &["listen", "--after", &after])
            .stdout(std::fs::File::create(self.current()).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// `kill -9`, and keep the complete lines the run printed (a line cut short is printed
    /// again by the next run, whose `--after` stops before it).
    fn kill(&mut self) {
        kill_nine(self.child.take().expect("running"), "listen");
        let out = std::fs::read_to_string(self.current()).unwrap();
        let complete = out.rfind('\n').map_or("", |end| &out[..=end]);
        for v in lines(complete.as_bytes()) {
            let id = v["id"].as_i64().expect("every event has an id");
            assert!(
                id > self.last_id,
                "event {id} printed again after {}: {v}",
                self.last_id
            );
            self.last_id = id;
            self.printed.push(v);
        }
    }

    /// The messages printed so far, by the runs already ended and the current one.
    fn messages_so_far(&self) -> usize {
        let current = std::fs::read_to_string(self.current()).unwrap_or_default();
        self.printed
            .iter()
            .filter(|v| v["type"] == "message")
            .count()
            + current.matches("\"type\":\"message\"").count()
    }
}

/// Who a kill may hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    As,
    Ds,
    Sender,
    Listener,
}

const TARGETS: [Target; 4] = [Target::As, Target::Ds, Target::Sender, Target::Listener];

/// The inode of every file a restart must find again.
fn inodes(paths: &[PathBuf]) -> Vec<(PathBuf, u64)> {
    paths
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.clone(), meta.ino())
        })
        .collect()
}

/// `kill -9` of the AS, the DS, a sending client and the listening client, at random points
/// of a scripted load, each restarted on its own files: no accepted message lost, none
/// delivered twice to the application, no fork, every process back on its existing files.
#[test]
fn kill_nine_anything_loses_nothing_and_forks_nothing() {
    let began = Instant::now();
    let mut next = kill_times();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let as_db = data.join("as.db");
    let as_keys = data.join("as-keys");
    let ds_db = data.join("ds.db");
    let users = ["alice@example.org", "bob@example.org", "carol@example.org"];

    // Invitations, through the operator command on the AS's database.
    let as_bin = server_binary("conclave-as");
    let as_args: Vec<OsString> = vec![
        "--db".into(),
        as_db.clone().into(),
        "--keys".into(),
        as_keys.clone().into(),
    ];
    let users_file = dir.path().join("users.txt");
    std::fs::write(&users_file, users.join("\n")).unwrap();
    let out = Command::new(&as_bin)
        .args(&as_args)
        .args(["invite", "--from"])
        .arg(&users_file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let codes: Vec<String> = text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, c)| c.to_owned()))
        .collect();
    assert_eq!(codes.len(), users.len());

    let mut auth = Server::start("AS", as_bin, as_args, dir.path().join("as.log"));
    let mut ds = Server::start(
        "DS",
        server_binary("conclave-ds"),
        vec!["--db".into(), ds_db.clone().into()],
        dir.path().join("ds.log"),
    );

    // Three people, contacts of Alice, in Alice's group.
    let profiles: Vec<PathBuf> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| dir.path().join(n))
        .collect();
    let (alice, bob, carol) = (&profiles[0], &profiles[1], &profiles[2]);
    let mut device_ids = Vec::new();
    for (profile, code) in profiles.iter().zip(&codes) {
        let me = ok(
            profile,
            &[
                "init",
                "--as",
                &auth.url(),
                "--ds",
                &ds.url(),
                "--code",
                code,
            ],
        );
        device_ids.push(me[0]["device"].as_str().unwrap().to_owned());
    }
    let group = ok(alice, &["group", "create"])[0]["group"]
        .as_str()
        .unwrap()
        .to_owned();
    for (profile, user) in [(bob, users[1]), (carol, users[2])] {
        ok(alice, &["contacts", "add", user]);
        wait_for(profile, |v| v["type"] == "contact_request");
        ok(profile, &["contacts", "accept", users[0]]);
        wait_for(alice, |v| {
            v["type"] == "contact_accepted" && v["user"] == user
        });
        ok(alice, &["group", "add", &group, user]);
        wait_for(profile, |v| v["type"] == "group_joined");
    }
    // Carol learns of Bob's joining before the load (her events so far are not messages).
    ok(carol, &["listen", "--once"]);

    // The files every restart must open again.
    let mut kept = vec![as_db.clone(), ds_db.clone()];
    for entry in std::fs::read_dir(&as_keys).unwrap() {
        kept.push(entry.unwrap().path());
    }
    for p in &profiles {
        kept.extend([
            p.join("device.db"),
            p.join("store.key"),
            p.join("settings.json"),
        ]);
    }
    let inodes_before = inodes(&kept);
    let setup = began.elapsed();

    // How long a `send` takes here: kills land within that window after the commands
    // start, so that most hit them (or the servers) mid-way. These messages count too:
    // every send tried, text → (sender, exited 0).
    let mut sends: BTreeMap<String, (&str, bool)> = BTreeMap::new();
    let mut took = Vec::new();
    for i in 0..3 {
        for (profile, user) in [(alice, users[0]), (carol, users[2])] {
            let body = format!("{user} warm-up {i}");
            let start = Instant::now();
            ok(profile, &["send", &group, &body]);
            took.push(start.elapsed());
            sends.insert(body, (user, true));
        }
    }
    took.sort();
    let window = (took[took.len() / 2].as_millis() as u64 * 3 / 2).max(20);

    // The load.
    let mut listener = Listener::new(bob, dir.path());
    // What each application saw: (sender user, text) per line, by profile.
    let mut seen: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
    let mut record = |name: &'static str, events: Vec<Value>| {
        let entry = seen.entry(name).or_default();
        for v in events.into_iter().filter(|v| v["type"] == "message") {
            entry.push((
                v["user"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
            ));
        }
    };
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut kills: BTreeMap<Target, usize> = TARGETS.iter().map(|t| (*t, 0)).collect();
    let mut missed = 0;
    let mut updates = (0, 0);
    let mut rounds = 0;
    while rounds < MAX_ROUNDS
        && (kills.values().sum::<usize>() < MIN_KILLS
            || kills.values().any(|&n| n < MIN_PER_TARGET))
    {
        rounds += 1;
        // The target least hit so far, or (half the time) any.
        let target = if next().is_multiple_of(2) {
            TARGETS[(next() % 4) as usize]
        } else {
            *kills.iter().min_by_key(|(_, n)| **n).unwrap().0
        };
        let alice_updates = next().is_multiple_of(5);
        let alice_text = format!("alice {rounds}");
        let carol_text = format!("carol {rounds}");
        let mut alice_job = if alice_updates {
            Job::spawn(alice, &["group", "update", &group])
        } else {
            Job::spawn(alice, &["send", &group, &alice_text])
        };
        let mut carol_job = Job::spawn(carol, &["send", &group, &carol_text]);
        // Half the kills land while the commands run, half as they end (when Bob's
        // listener handles what they sent).
        std::thread::sleep(Duration::from_millis(next() % (2 * window)));
        let mut alice_killed = false;
        let mut carol_killed = false;
        let hit = match target {
            Target::As => {
                auth.kill();
                std::thread::sleep(Duration::from_millis(next() % window));
                auth.up();
                true
            }
            Target::Ds => {
                ds.kill();
                std::thread::sleep(Duration::from_millis(next() % window));
                ds.up();
                true
            }
            Target::Sender => {
                if next().is_multiple_of(2) {
                    alice_killed = alice_job.kill();
                    alice_killed
                } else {
                    carol_killed = carol_job.kill();
                    carol_killed
                }
            }
            Target::Listener => {
                listener.kill();
                listener.start();
                true
            }
        };
        if hit {
            *kills.get_mut(&target).unwrap() += 1;
        } else {
            missed += 1;
        }
        let alice_out = alice_job.finish();
        let carol_out = carol_job.finish();
        let mut outcome = |what: &str, out: &Output, killed: bool| -> bool {
            let success = !killed && out.status.success();
            if !success {
                let why = if killed {
                    "killed".to_owned()
                } else {
                    lines(&out.stdout)
                        .first()
                        .and_then(|v| v["code"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| format!("{}: {}", out.status, text(&out.stderr)))
                };
                if std::env::var_os("CRASH_LOOP_VERBOSE").is_some() {
                    eprintln!("{what} {target:?}: {}", text(&out.stderr).trim());
                }
                *failures.entry(format!("{what} {why}")).or_default() += 1;
            }
            success
        };
        let alice_ok = outcome(
            if alice_updates { "update" } else { "send" },
            &alice_out,
            alice_killed,
        );
        let carol_ok = outcome("send", &carol_out, carol_killed);
        if alice_updates {
            updates.0 += 1;
            updates.1 += usize::from(alice_ok);
        } else {
            sends.insert(alice_text, (users[0], alice_ok));
        }
        sends.insert(carol_text, (users[2], carol_ok));
        // Then, with every process back, both send again: each restarted process serves
        // at once, and a commit a kill left pending is finished first.
        let after: Vec<(String, &str, Job)> = [(alice, users[0]), (carol, users[2])]
            .into_iter()
            .map(|(profile, user)| {
                let body = format!("{user} after round {rounds}");
                let job = Job::spawn(profile, &["send", &group, &body]);
                (body, user, job)
            })
            .collect();
        for (body, user, job) in after {
            let out = job.finish();
            assert!(
                out.status.success(),
                "{user} could not send after a {target:?} kill: {}",
                text(&out.stderr)
            );
            sends.insert(body, (user, true));
        }
        // Now and then Alice and Carol read what arrived (never killed).
        if rounds % 4 == 0 {
            record("alice", ok(alice, &["listen", "--once"]));
            record("carol", ok(carol, &["listen", "--once"]));
        }
    }
    let load = began.elapsed() - setup;

    // Settle: a command of Alice's finishes a commit a kill left pending; everyone reads
    // everything; Bob's listener catches up, then stops the same hard way.
    for _ in 0..2 {
        record("alice", ok(alice, &["listen", "--once"]));
        record("carol", ok(carol, &["listen", "--once"]));
    }
    let delivered_to_bob = sends.values().filter(|(_, ok)| *ok).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while listener.messages_so_far() < delivered_to_bob && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    listener.kill();
    let after = listener.last_id.to_string();
    let rest = ok(bob, &["listen", "--once", "--after", &after]);
    let mut bob_events = std::mem::take(&mut listener.printed);
    bob_events.extend(rest);
    record("bob", bob_events);
    for _ in 0..2 {
        record("alice", ok(alice, &["listen", "--once"]));
        record("carol", ok(carol, &["listen", "--once"]));
    }

    // Each application saw every accepted message of the others exactly once, nothing
    // twice, and nothing that was not sent.
    let names = ["alice", "bob", "carol"];
    let mut lost = Vec::new();
    let mut twice = Vec::new();
    let mut unconfirmed_but_delivered = BTreeSet::new();
    for (name, user) in names.iter().zip(users) {
        let mut count: BTreeMap<&(String, String), usize> = BTreeMap::new();
        for m in seen.get(name).map(Vec::as_slice).unwrap_or_default() {
            *count.entry(m).or_default() += 1;
        }
        for ((sender, body), n) in &count {
            let sent = sends.get(body);
            assert!(
                sent.is_some_and(|(by, _)| by == sender),
                "{name} saw a message nobody sent: {sender}: {body}"
            );
            if *n > 1 {
                twice.push(format!("{name}: {body} ×{n}"));
            }
            if sent.is_some_and(|(_, ok)| !ok) {
                unconfirmed_but_delivered.insert(body.clone());
            }
        }
        for (body, (by, accepted)) in &sends {
            if *accepted && *by != user && !count.contains_key(&(by.to_string(), body.clone())) {
                lost.push(format!("{name} never saw {by}: {body}"));
            }
        }
    }

    // One epoch, one verification code: no fork.
    let verify: Vec<Value> = profiles
        .iter()
        .map(|p| ok(p, &["group", "verify", &group]).remove(0))
        .collect();
    for v in &verify[1..] {
        assert_eq!(
            (&v["epoch"], &v["code"]),
            (&verify[0]["epoch"], &verify[0]["code"]),
            "forked: {verify:?}"
        );
    }
    // And the group still works, from the member who never sent during the load.
    ok(bob, &["send", &group, "after the kills"]);
    for p in [alice, carol] {
        wait_for(p, |v| {
            v["type"] == "message" && v["text"] == "after the kills"
        });
    }

    // Every process came back on its own files, as the same devices.
    assert_eq!(inodes(&kept), inodes_before, "a file was replaced");
    for (p, id) in profiles.iter().zip(&device_ids) {
        assert_eq!(ok(p, &["whoami"])[0]["device"], id.as_str());
    }
    assert_eq!(auth.starts, 1 + kills[&Target::As]);
    assert_eq!(ds.starts, 1 + kills[&Target::Ds]);
    assert_eq!(listener.runs, 1 + kills[&Target::Listener]);

    let accepted = sends.values().filter(|(_, ok)| *ok).count();
    let total: usize = kills.values().sum();
    eprintln!(
        "{rounds} rounds, kills drawn within {} ms of the commands' start, {total} kills: {} AS, {} DS, {} sending client, {} listening client \
         ({missed} aimed at a command that had already ended); {} sends, {accepted} accepted, \
         {} not confirmed but delivered; {}/{} updates finished; failures {failures:?}; \
         epoch {}; setup {:.1}s, load {:.1}s, total {:.1}s",
        2 * window,
        kills[&Target::As],
        kills[&Target::Ds],
        kills[&Target::Sender],
        kills[&Target::Listener],
        sends.len(),
        unconfirmed_but_delivered.len(),
        updates.1,
        updates.0,
        verify[0]["epoch"],
        setup.as_secs_f64(),
        load.as_secs_f64(),
        began.elapsed().as_secs_f64(),
    );
    assert!(lost.is_empty(), "accepted messages lost: {lost:#?}");
    assert!(twice.is_empty(), "delivered twice: {twice:#?}");
    assert!(
        total >= MIN_KILLS && kills.values().all(|&n| n >= MIN_PER_TARGET),
        "too few kills in {MAX_ROUNDS} rounds: {kills:?}"
    );
    assert!(
        accepted * 2 >= sends.len(),
        "the load hardly ran: {accepted} of {} sends accepted; failures {failures:?}",
        sends.len()
    );
}
