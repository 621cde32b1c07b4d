//! `conclave demo`: the whole system's story on real servers started in this process —
//! three people with two devices each talk through the AS and the DS over loopback HTTP,
//! every device with its own sealed store — checked at each step. Any failed check makes
//! the command exit non-zero.

use crate::error::CliError;
use crate::people::{Output, event_line};
use crate::stack::{self, Stack, StackOptions};
use conclave_client::{
    Authorization, Config, ContactState, Device, Event, GroupId, KdfParams, StoreKey,
};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `conclave demo` options.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the server databases and the device stores in this directory (default: a
    /// temporary directory, removed at the end).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The engines (with --postgres the demo creates two databases of its own, dropped at
    /// the end unless --data is given; devices are spread over the DS nodes).
    #[command(flatten)]
    engine: stack::EngineArgs,
    /// Seal device stores with a cheap key derivation (tests only: it makes a stolen store
    /// easy to brute-force).
    #[arg(long, hide = true)]
    fast_kdf: bool,
}

/// The checks of a run.
struct Checks {
    out: Output,
    passed: usize,
    failed: Vec<String>,
    /// Spins while a step works (on stderr, only on a terminal).
    spinner: indicatif::ProgressBar,
}

impl Checks {
    fn step(&self, n: usize, title: &str) {
        self.spinner.set_message(format!("step {n}: {title}"));
        if !self.out.json {
            self.spinner.suspend(|| println!("\n{n}. {title}"));
        }
    }

    fn note(&self, text: &str) {
        if !self.out.json {
            self.spinner.suspend(|| println!("   {text}"));
        }
    }

    fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        let out = self.out;
        if ok {
            self.passed += 1;
            self.spinner.suspend(|| {
                out.print(
                    &format!("   ✓ {what}"),
                    json!({ "check": what, "ok": true }),
                )
            });
        } else {
            let detail = detail();
            self.spinner.suspend(|| {
                out.print(
                    &format!("   ✗ {what}: {detail}"),
                    json!({ "check": what, "ok": false, "detail": detail }),
                )
            });
            self.failed.push(what.to_owned());
        }
    }
}

/// One device in the story, and every event it has received.
struct Person {
    name: &'static str,
    device: Device,
    log: Vec<Event>,
    /// Revoked at the AS: it no longer syncs.
    revoked: bool,
}

impl Person {
    fn messages(&self, group: &GroupId) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Event::Message { group: g, body, .. } if g == group => {
                    Some(String::from_utf8_lossy(body).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn has(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.log.iter().any(f)
    }
}

/// Syncs every device `rounds` times and moves their new events into their logs.
async fn sync_all(people: &mut [Person], rounds: usize) -> Result<(), CliError> {
    for _ in 0..rounds {
        for p in people.iter_mut().filter(|p| !p.revoked) {
            p.device.sync().await?;
            loop {
                let events = p.device.events(500).await?;
                let Some((last, _)) = events.last().cloned() else {
                    break;
                };
                p.log.extend(events.into_iter().map(|(_, e)| e));
                p.device.ack(last).await?;
            }
        }
    }
    Ok(())
}

struct World {
    stack: Stack,
    stores: PathBuf,
    fast_kdf: bool,
    registered: usize,
}

impl World {
    fn config(&self, name: &str) -> Config {
        let kdf = if self.fast_kdf {
            KdfParams::insecure_fast()
        } else {
            KdfParams::default()
        };
        let urls = self.stack.delivery_urls();
        // Devices are spread over the DS nodes.
        let ds = urls[self.registered % urls.len()].clone();
        Config::new(
            self.stack.auth_url(),
            ds,
            self.stores.join(format!("{name}.db")),
            StoreKey::Passphrase(format!("passphrase of {name}"), kdf),
        )
    }

    async fn register(&mut self, user: &str, name: &'static str) -> Result<Person, CliError> {
        let code = self.stack.invite(user).await?;
        let device =
            Device::register(self.config(name), Authorization::Invitation { code }).await?;
        self.registered += 1;
        Ok(Person {
            name,
            device,
            log: Vec::new(),
            revoked: false,
        })
    }
}

/// Plays the story; `Err` only when the story cannot go on (a failed check is counted and
/// the story continues).
pub async fn run(args: DemoArgs, out: &Output) -> Result<(), CliError> {
    let started = Instant::now();
    let temp = tempfile::tempdir().map_err(|e| CliError::bare("io", e.to_string()))?;
    let data = args.data.clone().unwrap_or_else(|| temp.path().to_owned());
    let prefix = format!("conclave_demo_{}", random_hex());
    let postgres = match &args.engine.postgres {
        Some(url) => Some(stack::prepare_postgres(url, &prefix).await?),
        None => None,
    };
    let mut checks = Checks {
        out: *out,
        passed: 0,
        failed: Vec::new(),
        spinner: crate::people::spinner("starting"),
    };
    let result = story(&args, &data, postgres, &mut checks).await;
    checks.spinner.finish_and_clear();
    if let (Some(url), None) = (&args.engine.postgres, &args.data) {
        if let Err(e) = stack::drop_postgres(url, &prefix).await {
            tracing::warn!(error = %e, "could not drop the demo's databases");
        }
    }
    result?;
    let secs = started.elapsed().as_secs_f64();
    out.print(
        &format!(
            "\n{} checks passed, {} failed, in {secs:.1} s{}",
            checks.passed,
            checks.failed.len(),
            match &args.data {
                Some(dir) => format!("; databases and device stores kept in {}", dir.display()),
                None => String::new(),
            }
        ),
        json!({ "passed": checks.passed, "failed": checks.failed, "seconds": secs }),
    );
    if checks.failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::bare(
            "demo_failed",
            format!(
                "{} check(s) failed: {}",
                checks.failed.len(),
                checks.failed.join("; ")
            ),
        ))
    }
}

async fn story(
    args: &DemoArgs,
    data: &Path,
    postgres: Option<stack::Databases>,
    c: &mut Checks,
) -> Result<(), CliError> {
    // ── 1 ──────────────────────────────────────────────────────────────────────────────
    c.step(
        1,
        "Start the Authentication Service and the Delivery Service",
    );
    let on_postgres = postgres.is_some();
    let stack = Stack::start(StackOptions {
        data: data.join("servers"),
        postgres,
        nats: args.engine.nats.clone(),
        nodes: args.engine.nodes,
        as_listen: "127.0.0.1:0".parse().expect("literal address"),
        ds_listen: "127.0.0.1:0".parse().expect("literal address"),
        oidc: None,
    })
    .await?;
    c.note(&format!(
        "AS {} · DS {} · {}",
        stack.auth_url(),
        stack.delivery_urls().join(" "),
        if on_postgres { "PostgreSQL" } else { "SQLite" }
    ));
    let stores = data.join("devices");
    std::fs::create_dir_all(&stores).map_err(|e| CliError::bare("io", e.to_string()))?;
    let mut world = World {
        stack,
        stores,
        fast_kdf: args.fast_kdf,
        registered: 0,
    };

    // ── 2 ──────────────────────────────────────────────────────────────────────────────
    c.step(
        2,
        "Register: Alice and Bob with two devices each, Carol with one for now",
    );
    let mut people = vec![
        world
            .register("alice@conclave.example", "alice-laptop")
            .await?,
        world
            .register("alice@conclave.example", "alice-phone")
            .await?,
        world.register("bob@conclave.example", "bob-laptop").await?,
        world.register("bob@conclave.example", "bob-phone").await?,
        world
            .register("carol@conclave.example", "carol-laptop")
            .await?,
    ];
    sync_all(&mut people, 3).await?;
    for (a, b) in [(0, 1), (2, 3)] {
        let siblings = people[a].device.siblings().await?;
        let other = people[b].device.device_id().to_owned();
        c.check(
            &format!("{} knows its sibling {}", people[a].name, people[b].name),
            siblings == vec![other.clone()],
            || format!("siblings {siblings:?}, expected [{other}]"),
        );
    }

    // ── 3 ──────────────────────────────────────────────────────────────────────────────
    c.step(3, "Contacts: Alice asks Bob and Carol; they accept");
    let alice = "alice@conclave.example";
    let bob = "bob@conclave.example";
    let carol = "carol@conclave.example";
    people[0].device.request_contact(bob).await?;
    people[0].device.request_contact(carol).await?;
    sync_all(&mut people, 1).await?;
    for i in [2, 4] {
        let asked = people[i].has(|e| matches!(e, Event::ContactRequest { user } if user == alice));
        c.check(
            &format!("{} sees Alice's request", people[i].name),
            asked,
            || "no ContactRequest event".into(),
        );
        people[i].device.accept_contact(alice).await?;
    }
    sync_all(&mut people, 3).await?;
    for i in [0, 1] {
        let contacts = people[i].device.contacts().await?;
        let accepted = [bob, carol].iter().all(|u| {
            contacts
                .iter()
                .any(|c| c.user == *u && c.state == ContactState::Accepted)
        });
        c.check(
            &format!("{} has Bob and Carol as contacts", people[i].name),
            accepted,
            || format!("{contacts:?}"),
        );
    }
    let bob_phone = people[3].device.contacts().await?;
    c.check(
        "bob-phone learned the contact from bob-laptop (self group)",
        bob_phone
            .iter()
            .any(|x| x.user == alice && x.state == ContactState::Accepted),
        || format!("{bob_phone:?}"),
    );

    // ── 4 ──────────────────────────────────────────────────────────────────────────────
    c.step(4, "Alice creates a group and adds Bob and Carol");
    let group = people[0].device.create_group().await?;
    people[0].device.add_user(&group, bob).await?;
    people[0].device.add_user(&group, carol).await?;
    sync_all(&mut people, 2).await?;
    c.note(&format!("group {group}"));
    let members = people[0].device.members(&group).await?;
    c.check(
        "the group has 5 devices of 3 users",
        members.len() == 5,
        || format!("{members:?}"),
    );
    for p in &people[1..] {
        c.check(
            &format!("{} joined", p.name),
            p.has(|e| matches!(e, Event::GroupJoined { group: g, .. } if *g == group)),
            || "no GroupJoined event".into(),
        );
    }

    // ── 5 ──────────────────────────────────────────────────────────────────────────────
    c.step(5, "Everyone talks");
    for p in &people {
        let text = format!("hello from {}", p.name);
        p.device.send(&group, text.as_bytes()).await?;
    }
    sync_all(&mut people, 1).await?;
    for p in &people {
        let got = p.messages(&group);
        let expected: Vec<String> = people
            .iter()
            .filter(|q| q.name != p.name)
            .map(|q| format!("hello from {}", q.name))
            .collect();
        let exactly_once = expected
            .iter()
            .all(|m| got.iter().filter(|g| *g == m).count() == 1)
            && got.len() == expected.len();
        c.check(
            &format!("{} read the other 4 messages, each once", p.name),
            exactly_once,
            || format!("got {got:?}"),
        );
    }
    if let Some(line) = people[2]
        .log
        .iter()
        .find(|e| matches!(e, Event::Message { .. }))
    {
        c.note(&format!("bob-laptop shows: {}", event_line(line)));
    }

    // ── 6 ──────────────────────────────────────────────────────────────────────────────
    c.step(
        6,
        "Carol adds a phone later: it reads from then on, not before",
    );
    people.push(world.register(carol, "carol-phone").await?);
    sync_all(&mut people, 3).await?;
    let phone = people.len() - 1;
    let in_group = people[phone].device.groups().await?.contains(&group);
    c.check(
        "carol-phone was added to the group by carol-laptop",
        in_group,
        || "not a member".into(),
    );
    people[2]
        .device
        .send(&group, b"welcome, Carol's phone")
        .await?;
    sync_all(&mut people, 1).await?;
    let got = people[phone].messages(&group);
    c.check(
        "carol-phone reads the message sent after it joined, and none before",
        got == vec!["welcome, Carol's phone".to_owned()],
        || format!("got {got:?}"),
    );

    // ── 7 ──────────────────────────────────────────────────────────────────────────────
    c.step(
        7,
        "A commit race: Bob and Carol refresh their keys at the same moment",
    );
    let before = people[0].device.epoch(&group).await?;
    let (b, k) = (people[2].device.clone(), people[4].device.clone());
    let (rb, rk) = tokio::join!(b.update(&group), k.update(&group));
    c.check(
        "both commits land (the loser is rebuilt on the winner)",
        rb.is_ok() && rk.is_ok(),
        || format!("bob: {rb:?}, carol: {rk:?}"),
    );
    sync_all(&mut people, 2).await?;
    let after = people[0].device.epoch(&group).await?;
    c.check("the group moved two epochs", after == before + 2, || {
        format!("{before} → {after}")
    });
    let mut codes = Vec::new();
    for p in &people {
        codes.push(p.device.verification_code(&group).await?);
    }
    c.check(
        "every device shows the same verification code",
        codes.windows(2).all(|w| w[0] == w[1]),
        || format!("{codes:?}"),
    );
    c.note(&format!("epoch {}: {}", codes[0].0, codes[0].1));

    // ── 8 ──────────────────────────────────────────────────────────────────────────────
    c.step(
        8,
        "Alice removes Carol: her devices cannot read what follows",
    );
    people[0].device.remove_user(&group, carol).await?;
    people[0]
        .device
        .send(&group, b"only for Alice and Bob")
        .await?;
    sync_all(&mut people, 1).await?;
    for i in [4, phone] {
        c.check(
            &format!("{} learns it was removed", people[i].name),
            people[i].has(|e| matches!(e, Event::RemovedFromGroup { group: g } if *g == group)),
            || "no RemovedFromGroup event".into(),
        );
        let leaked = people[i]
            .messages(&group)
            .contains(&"only for Alice and Bob".to_owned());
        c.check(
            &format!("{} cannot read the next message", people[i].name),
            !leaked,
            || "it read it".into(),
        );
    }
    let refused = people[4].device.send(&group, b"still here?").await;
    c.check(
        "carol-laptop cannot post any more",
        matches!(refused, Err(conclave_client::Error::NotAMember)),
        || format!("{refused:?}"),
    );
    c.check(
        "bob-phone reads it",
        people[3]
            .messages(&group)
            .contains(&"only for Alice and Bob".to_owned()),
        || format!("{:?}", people[3].messages(&group)),
    );

    // ── 9 ──────────────────────────────────────────────────────────────────────────────
    c.step(9, "Restart both servers: nothing is lost");
    people[2]
        .device
        .send(&group, b"sent just before the restart")
        .await?;
    world.stack.restart().await?;
    people[3]
        .device
        .send(&group, b"sent just after the restart")
        .await?;
    sync_all(&mut people, 1).await?;
    for i in [0, 1] {
        let got = people[i].messages(&group);
        let both = [
            "sent just before the restart",
            "sent just after the restart",
        ]
        .iter()
        .all(|m| got.iter().filter(|g| g.as_str() == *m).count() == 1);
        c.check(
            &format!("{} reads both messages once", people[i].name),
            both,
            || format!("got {got:?}"),
        );
    }

    // ── 10 ─────────────────────────────────────────────────────────────────────────────
    c.step(
        10,
        "Alice's phone is lost: she revokes it, and the group removes it",
    );
    let lost = people[1].device.device_id().to_owned();
    people[0].device.revoke_device(&lost).await?;
    people[1].revoked = true;
    let refused = people[1].device.sync().await;
    c.check(
        "alice-phone is told it is revoked",
        refused.as_ref().err().and_then(|e| e.code()) == Some("device_revoked"),
        || format!("{refused:?}"),
    );
    let mut removed = false;
    for _ in 0..20 {
        sync_all(&mut people, 1).await?;
        let members = people[2].device.members(&group).await?;
        if !members.iter().any(|m| m.device == lost) {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.check("alice-phone is no longer a member", removed, || {
        "still in the member list after 20 rounds".into()
    });
    people[2]
        .device
        .send(&group, b"after the revocation")
        .await?;
    sync_all(&mut people, 1).await?;
    // The phone still reaches the DS (which knows nothing of the AS): it tries to post,
    // reading the group log first, and finds itself removed.
    let posted = people[1].device.send(&group, b"from the lost phone").await;
    c.check(
        "alice-phone can no longer post",
        matches!(posted, Err(conclave_client::Error::NotAMember)),
        || format!("{posted:?}"),
    );
    let phone_history: Vec<Vec<u8>> = people[1]
        .device
        .history(&group, 100)
        .await?
        .into_iter()
        .map(|m| m.body)
        .collect();
    c.check(
        "alice-phone cannot read the message sent after its removal",
        !phone_history.contains(&b"after the revocation".to_vec()),
        || "it read it".into(),
    );
    c.check(
        "alice-laptop reads it",
        people[0]
            .messages(&group)
            .contains(&"after the revocation".to_owned()),
        || format!("{:?}", people[0].messages(&group)),
    );

    // ── 11 ─────────────────────────────────────────────────────────────────────────────
    c.step(
        11,
        "What the Delivery Service holds: no user id, no device id",
    );
    if on_postgres {
        c.note("(the byte-wise comparison of the two databases runs on SQLite; the SDK's end-to-end tests run it on PostgreSQL too)");
    } else {
        let ds = read_sqlite(&data.join("servers").join("ds.db"));
        let mut names = vec![alice.to_owned(), bob.to_owned(), carol.to_owned()];
        for p in &people {
            names.push(p.device.device_id().to_owned());
        }
        let found: Vec<&String> = names
            .iter()
            .filter(|n| contains(&ds, n.as_bytes()))
            .collect();
        c.check(
            &format!(
                "the DS database ({} KiB) contains none of the 3 user ids and 6 device ids",
                ds.len() / 1024
            ),
            found.is_empty(),
            || format!("found {found:?}"),
        );
    }

    for p in people {
        p.device.close().await;
    }
    world.stack.stop().await;
    Ok(())
}

/// A SQLite database's bytes with its write-ahead log.
fn read_sqlite(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn random_hex() -> String {
    let mut b = [0u8; 6];
    // Only names a database; a fixed name is still correct, only not unique per run.
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
