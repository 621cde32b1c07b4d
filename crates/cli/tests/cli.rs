//! The `conclave` binary as people and scripts run it: the demo on SQLite and on
//! PostgreSQL + NATS with two DS nodes, and `serve` with two people driving `init`,
//! `contacts`, `group`, `send` and `listen` with `--json` — including every error a person
//! can cause, each one clear line on stderr and a non-zero exit.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Stdio};
use support::{Running, conclave, invite, kill_times, serve};

fn postgres_admin() -> String {
    std::env::var("CONCLAVE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn nats_url() -> String {
    std::env::var("CONCLAVE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_on_sqlite_keeps_its_data_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let out = conclave()
        .args(["demo", "--fast-kdf", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains(" checks passed, 0 failed"), "{stdout}");
    assert!(!stdout.contains('✗'), "{stdout}");
    for step in 1..=11 {
        assert!(
            stdout.contains(&format!("\n{step}. ")),
            "step {step}:\n{stdout}"
        );
    }
    for file in ["servers/as.db", "servers/ds.db", "servers/as-keys"] {
        assert!(dir.path().join(file).exists(), "{file} not kept");
    }
    let stores = std::fs::read_dir(dir.path().join("devices"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "db"))
        })
        .count();
    assert_eq!(stores, 6, "one store per device");
}

#[test]
fn demo_on_postgres_with_nats_and_two_nodes() {
    let out = conclave()
        .args(["demo", "--fast-kdf", "--json", "--nodes", "2", "--postgres"])
        .arg(postgres_admin())
        .arg("--nats")
        .arg(nats_url())
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    // --json: one object per line; every check passed, and the summary says so.
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let checks: Vec<&Value> = lines.iter().filter(|v| v.get("check").is_some()).collect();
    assert!(checks.len() >= 30, "{} checks", checks.len());
    assert!(checks.iter().all(|v| v["ok"] == true), "{stdout}");
    let summary = lines.last().unwrap();
    assert_eq!(summary["failed"], serde_json::json!([]));
}

#[test]
fn demo_with_a_bad_option_says_what_to_do() {
    let out = conclave().args(["demo", "--nodes", "2"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--postgres"), "{stderr}");
}

/// Runs `conclave --json --profile P args…`; the JSON lines of a success.
fn ok(profile: &Path, args: &[&str]) -> Vec<Value> {
    let out = conclave()
        .arg("--json")
        .arg("--profile")
        .arg(profile)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Runs a command that must fail: one line on stderr, a non-zero exit, and the JSON error
/// with `code`.
fn fails(profile: &Path, args: &[&str], code: &str) -> String {
    let out = conclave()
        .arg("--json")
        .arg("--profile")
        .arg(profile)
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("conclave: "), "{stderr}");
    let v: Value = serde_json::from_str(text(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&out.stdout)));
    assert_eq!(v["code"], code, "{args:?}: {v}");
    assert!(v["hint"].is_string(), "{args:?}: no hint: {v}");
    stderr
}

/// Reads events until one matches (a few `listen --once` rounds).
fn wait_for(profile: &Path, f: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.extend(ok(profile, &["listen", "--once"]));
        if seen.iter().any(&f) {
            return seen;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("never saw the event; saw {seen:?}");
}

#[test]
fn people_commands_as_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, auth, ds) = serve(&data);
    let alice = dir.path().join("alice");
    let bob = dir.path().join("bob");
    let init = |code: &str| -> Vec<String> {
        vec![
            "init".into(),
            "--as".into(),
            auth.clone(),
            "--ds".into(),
            ds.clone(),
            "--code".into(),
            code.into(),
        ]
    };
    let run_init = |profile: &Path, code: &str| {
        let args = init(code);
        ok(
            profile,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    // Errors before a device exists.
    fails(&alice, &["whoami"], "no_profile");
    let args = init("not-a-code");
    fails(
        &alice,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        "invalid_invitation",
    );
    // A failed init leaves nothing behind: the next one works.
    let me = run_init(&alice, &invite(&data, "alice@example.org"));
    assert_eq!(me[0]["user"], "alice@example.org");
    run_init(&bob, &invite(&data, "bob@example.org"));
    let whoami = ok(&alice, &["whoami"]);
    assert_eq!(whoami[0]["auth_url"], auth.as_str());

    fails(
        &alice,
        &["contacts", "add", "nobody@example.org"],
        "unknown_user",
    );
    let group = ok(&alice, &["group", "create"])[0]["group"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = &group[..8];
    fails(
        &alice,
        &["group", "add", prefix, "bob@example.org"],
        "not_a_contact",
    );
    fails(
        &bob,
        &["contacts", "accept", "alice@example.org"],
        "no_request",
    );

    // Contacts.
    ok(&alice, &["contacts", "add", "bob@example.org"]);
    wait_for(&bob, |v| {
        v["type"] == "contact_request" && v["user"] == "alice@example.org"
    });
    ok(&bob, &["contacts", "accept", "alice@example.org"]);
    wait_for(&alice, |v| v["type"] == "contact_accepted");
    let contacts = ok(&alice, &["contacts", "list"]);
    assert_eq!(contacts[0]["user"], "bob@example.org");
    assert_eq!(contacts[0]["state"], "accepted");

    // A group, by id prefix.
    ok(&alice, &["group", "add", prefix, "bob@example.org"]);
    wait_for(&bob, |v| {
        v["type"] == "group_joined" && v["group"] == group.as_str()
    });
    ok(&alice, &["send", prefix, "hello", "Bob"]);
    wait_for(&bob, |v| {
        v["type"] == "message" && v["text"] == "hello Bob" && v["user"] == "alice@example.org"
    });
    ok(&bob, &["send", prefix, "hi Alice"]);
    wait_for(&alice, |v| {
        v["type"] == "message" && v["text"] == "hi Alice"
    });
    let members = ok(&bob, &["group", "members", prefix]);
    assert_eq!(members.len(), 2, "{members:?}");
    let list = ok(&bob, &["group", "list"]);
    assert_eq!(list[0]["users"].as_array().unwrap().len(), 2, "{list:?}");
    let a = ok(&alice, &["group", "verify", prefix]);
    let b = ok(&bob, &["group", "verify", prefix]);
    assert_eq!(a[0]["code"], b[0]["code"]);
    assert_eq!(a[0]["code"].as_str().unwrap().len(), 35, "{a:?}");
    let updated = ok(&bob, &["group", "update", prefix]);
    assert_eq!(updated[0]["epoch"], a[0]["epoch"].as_u64().unwrap() + 1);

    // Errors a person can cause in a group.
    fails(&alice, &["send", "ffffffff", "hi"], "unknown_group");
    fails(
        &alice,
        &["group", "remove", prefix, "carol@example.org"],
        "not_in_group",
    );
    ok(&alice, &["group", "remove", prefix, "bob@example.org"]);
    wait_for(&bob, |v| v["type"] == "removed_from_group");
    fails(&bob, &["send", prefix, "still here?"], "not_a_member");

    // The server down.
    drop(server);
    let stderr = fails(&alice, &["send", prefix, "anyone?"], "server_unreachable");
    assert!(stderr.contains("conclave serve"), "{stderr}");
}

#[test]
fn completions_are_printed() {
    let out = conclave().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("conclave"));
}

/// A `conclave chat` in a pseudo-terminal: what it printed so far, and its input.
struct Terminal {
    child: Child,
    input: std::fs::File,
    screen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    name: &'static str,
}

impl Terminal {
    fn open(name: &'static str, profile: &Path, group: &str) -> Terminal {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let slave_path = ptsname(&master, Vec::new()).unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(slave_path.to_str().unwrap())
            .unwrap();
        let child = conclave()
            .arg("--profile")
            .arg(profile)
            .args(["chat", group])
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(master);
        let input = master.try_clone().unwrap();
        let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut master = master;
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and closed the terminal.
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            child,
            input,
            screen,
            name,
        }
    }

    fn screen(&self) -> String {
        text(&self.screen.lock().unwrap())
    }

    /// Waits until a line of the screen satisfies `f` (the terminal ends lines with CR LF,
    /// trimmed here).
    fn wait_until(&self, what: &str, f: impl Fn(&str) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if self.screen().lines().any(|l| f(l.trim_end())) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "{}'s terminal never showed {what}:\n{}",
            self.name,
            self.screen()
        );
    }

    /// Waits until the screen shows a line with all of `parts`.
    fn wait_for(&self, parts: &[&str]) {
        self.wait_until(&format!("{parts:?}"), |l| {
            parts.iter().all(|p| l.contains(p))
        });
    }

    /// Waits until the screen shows exactly `line`.
    fn wait_for_exact(&self, line: &str) {
        self.wait_until(&format!("{line:?}"), |l| l == line);
    }

    fn type_line(&mut self, line: &str) {
        use std::io::Write as _;
        self.input.write_all(line.as_bytes()).unwrap();
        self.input.write_all(b"\n").unwrap();
        self.input.flush().unwrap();
    }

    fn quit(mut self) {
        self.type_line("/quit");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{}: {status}\n{}",
                    self.name,
                    self.screen()
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} did not quit",
                self.name
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn two_people_chat_in_two_terminals() {
    let dir = tempfile::tempdir().unwrap();
    let Pair {
        _server,
        alice,
        bob,
        group,
    } = pair(dir.path());
    let prefix = &group[..8];
    ok(&alice, &["send", prefix, "an earlier message"]);
    wait_for(&bob, |v| v["type"] == "message");

    let mut a = Terminal::open("alice", &alice, prefix);
    let mut b = Terminal::open("bob", &bob, prefix);
    // Members and history first.
    b.wait_for(&["members:", "alice@example.org", "bob@example.org"]);
    b.wait_for(&["alice@example.org/", ": an earlier message"]);
    a.wait_for(&["you: an earlier message"]);
    a.wait_for(&["type a message"]);
    b.wait_for(&["type a message"]);

    // Live, both ways.
    a.type_line("hello from Alice's terminal");
    b.wait_for(&["alice@example.org/", ": hello from Alice's terminal"]);
    b.type_line("hi from Bob's");
    a.wait_for(&["bob@example.org/", ": hi from Bob's"]);
    b.type_line("/members");
    b.wait_for_exact("members: alice@example.org, bob@example.org");
    a.type_line("/verify");
    a.wait_for(&["epoch ", ":"]);

    // A removal, seen live by the removed person, who can no longer post.
    a.type_line("/remove bob@example.org");
    a.wait_for(&["removed bob@example.org"]);
    b.wait_for(&["you were removed from the group"]);
    b.type_line("anyone there?");
    b.wait_for(&["(error: ", "no longer a member"]);
    a.type_line("/members");
    a.wait_for_exact("members: alice@example.org");
    a.quit();
    b.quit();
}

/// `conclave serve` with Alice and Bob registered, contacts, and in one group (Alice's).
struct Pair {
    _server: Running,
    alice: std::path::PathBuf,
    bob: std::path::PathBuf,
    group: String,
}

fn pair(dir: &Path) -> Pair {
    let data = dir.join("data");
    let (server, auth, ds) = serve(&data);
    let alice = dir.join("alice");
    let bob = dir.join("bob");
    for (profile, user) in [(&alice, "alice@example.org"), (&bob, "bob@example.org")] {
        let code = invite(&data, user);
        ok(
            profile,
            &["init", "--as", &auth, "--ds", &ds, "--code", &code],
        );
    }
    ok(&alice, &["contacts", "add", "bob@example.org"]);
    wait_for(&bob, |v| v["type"] == "contact_request");
    ok(&bob, &["contacts", "accept", "alice@example.org"]);
    wait_for(&alice, |v| v["type"] == "contact_accepted");
    let group = ok(&alice, &["group", "create"])[0]["group"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&alice, &["group", "add", &group, "bob@example.org"]);
    wait_for(&bob, |v| v["type"] == "group_joined");
    Pair {
        _server: server,
        alice,
        bob,
        group,
    }
}

/// Bob's `conclave listen` is killed (SIGKILL) at random moments while Alice sends: after
/// every kill the device store opens again, and in the end every message has been printed
/// — none lost, and none twice except one whose acknowledgement a kill interrupted, which
/// comes again with the same `id` (a script recognises it, or skips it with `--after`:
/// `crash_loop.rs`). `CONCLAVE_KILL_SEED` replays a run.
#[test]
fn killed_listener_loses_nothing() {
    let mut next = kill_times();
    let dir = tempfile::tempdir().unwrap();
    let Pair {
        _server,
        alice,
        bob,
        group,
    } = pair(dir.path());
    let printed = dir.path().join("printed.jsonl");
    let listen = || {
        conclave()
            .args(["--json", "--profile"])
            .arg(&bob)
            .arg("listen")
            .stdout(std::fs::File::create(dir.path().join("current.jsonl")).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let collect = || {
        // What the killed process printed before it died.
        let current = std::fs::read_to_string(dir.path().join("current.jsonl")).unwrap_or_default();
        let mut all = std::fs::read_to_string(&printed).unwrap_or_default();
        all.push_str(&current);
        std::fs::write(&printed, all).unwrap();
    };
    let total = 30;
    let mut kills = 0;
    let mut child = listen();
    for i in 0..total {
        ok(&alice, &["send", &group, &format!("message {i}")]);
        if next().is_multiple_of(3) {
            std::thread::sleep(std::time::Duration::from_millis(next() % 1200));
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            collect();
            child = listen();
        }
    }
    // Let the last listener catch up, then stop it the same hard way.
    std::thread::sleep(std::time::Duration::from_secs(3));
    child.kill().unwrap();
    child.wait().unwrap();
    collect();
    // A final, clean read of anything still unacknowledged.
    let rest = ok(&bob, &["listen", "--once"]);
    let messages: Vec<Value> = std::fs::read_to_string(&printed)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .chain(rest)
        .filter(|v| v["type"] == "message")
        .collect();
    // One id per message: a repeat carries the id of its first printing.
    let mut by_id: std::collections::BTreeMap<i64, &Value> = std::collections::BTreeMap::new();
    for m in &messages {
        let first = by_id.entry(m["id"].as_i64().unwrap()).or_insert(m);
        assert_eq!(first["text"], m["text"], "one id, two messages");
    }
    assert_eq!(by_id.len(), total, "ids: {by_id:?}");
    let mut texts: Vec<String> = messages
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    let mut unique = texts.clone();
    unique.dedup();
    assert_eq!(unique.len(), total, "lost messages: {unique:?}");
    assert!(
        texts.len() - unique.len() <= kills,
        "more repeats than kills ({kills} kills): {texts:?}"
    );
    eprintln!("{kills} kills, {} repeats", texts.len() - unique.len());
}

/// Alice's `conclave group update` is killed (SIGKILL) at random moments — before its
/// commit is recorded, after, before or after the DS took it. Her next command finishes or
/// drops what was pending: both devices end in the same epoch with the same verification
/// code, and they still talk both ways.
#[test]
fn killed_committer_keeps_the_group_in_step() {
    let mut next = kill_times();
    let dir = tempfile::tempdir().unwrap();
    let Pair {
        _server,
        alice,
        bob,
        group,
    } = pair(dir.path());
    let mut finished = 0;
    for _ in 0..8 {
        let mut child = conclave()
            .arg("--profile")
            .arg(&alice)
            .args(["group", "update", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(next() % 400));
        if child.try_wait().unwrap().is_some() {
            finished += 1;
        }
        let _ = child.kill();
        child.wait().unwrap();
    }
    eprintln!("{finished} of 8 updates finished before the kill");
    ok(&alice, &["listen", "--once"]);
    ok(&bob, &["listen", "--once"]);
    ok(&alice, &["listen", "--once"]);
    let a = ok(&alice, &["group", "verify", &group]);
    let b = ok(&bob, &["group", "verify", &group]);
    assert_eq!(a[0]["epoch"], b[0]["epoch"]);
    assert_eq!(a[0]["code"], b[0]["code"]);
    ok(&alice, &["send", &group, "after the kills"]);
    wait_for(&bob, |v| {
        v["type"] == "message" && v["text"] == "after the kills"
    });
    ok(&bob, &["send", &group, "still in step"]);
    wait_for(&alice, |v| {
        v["type"] == "message" && v["text"] == "still in step"
    });
}
