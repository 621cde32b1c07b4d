//! Smoke runs of `conclave-load` (CI): each scenario with 1,000 devices against the real
//! `conclave-as` and `conclave-ds` binaries, on SQLite and on PostgreSQL with two DS nodes
//! and NATS (`bash scripts/services` starts them). A run exits non-zero when any entry
//! was lost or any check failed; these tests also read its JSON lines to see that the
//! traffic really flowed. The full-size runs are in the README ("Load").

use std::process::Command;

/// Runs the tool with `args`; its JSON lines, by `measure`.
fn run(args: &[&str]) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_conclave-load"))
        .args(["--quiet"])
        .args(args)
        .output()
        .expect("conclave-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "conclave-load {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn measure<'a>(lines: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["measure"] == name)
        .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
}

fn nothing_lost(lines: &[serde_json::Value]) {
    let totals = &measure(lines, "totals")["totals"];
    assert_eq!(totals["lost"], 0, "{totals}");
    assert_eq!(totals["faults"], 0, "{totals}");
    assert!(totals["deliveries"].as_u64().unwrap_or(0) > 0, "{totals}");
    assert!(totals["checked"].as_u64().unwrap_or(0) > 0, "{totals}");
}

#[test]
fn one_group_of_1000_on_sqlite() {
    let lines = run(&[
        "--scenario",
        "group",
        "--devices",
        "1000",
        "--batch",
        "250",
        "--messages",
        "20",
        "--commits",
        "4",
    ]);
    assert_eq!(measure(&lines, "group_built")["members"], 1000);
    // 20 messages and 4 commits, each to the 1,000 members.
    assert_eq!(measure(&lines, "group_traffic")["operations"], 24);
    nothing_lost(&lines);
}

/// A 10-second Poisson mix over the small groups of 1,000 devices on `engine`.
fn small_groups(engine: &[&str]) {
    let mut args = vec![
        "--scenario",
        "small-groups",
        "--devices",
        "1000",
        "--duration",
        "10",
        "--rate",
        "50",
    ];
    args.extend_from_slice(engine);
    let lines = run(&args);
    let traffic = measure(&lines, "small_groups_traffic");
    assert!(
        traffic["completed"].as_u64().unwrap_or(0) > 100,
        "{traffic}"
    );
    nothing_lost(&lines);
}

#[test]
fn small_groups_of_1000_devices_on_sqlite() {
    small_groups(&[]);
}

#[test]
fn small_groups_of_1000_devices_on_two_postgres_nodes() {
    small_groups(&["--engine", "postgres", "--nodes", "2"]);
}
