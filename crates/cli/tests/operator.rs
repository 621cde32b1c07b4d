//! The operator who holds both databases (issue 19, RFC 9750 §8.2.2 and §8.4.2): after the
//! demo's realistic session — three users with two devices each, contacts, a group, a device
//! added later, concurrent updates, a removal, a restart of both servers, a revoked device —
//! every value the AS stored and every value the DS stored are compared, together with
//! every line both servers logged. No value of one server may appear in the other's data,
//! not verbatim, not in hex or base64, not as its SHA-256; no log line may hold an IP
//! address or a value of the other server.
//!
//! Times are compared apart (`timestamps_do_not_link_the_servers`): the AS keeps its own to
//! the second, the DS keeps every record's to the hour, so that a registration cannot be
//! matched with a mailbox created the same second, a certificate's notAfter with a
//! KeyPackage expiry, or a revocation with the commit that removes the device.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row, SqliteConnection};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

/// Shorter values (small integers, flags, kinds) say nothing about who is who.
const MIN_LEN: usize = 8;

/// Whether a column holds a point in time (Unix seconds).
fn is_time(column: &str) -> bool {
    column.ends_with("_at") || column.ends_with("_tat") || column == "not_after"
}

/// Every value of every table of the SQLite database at `path`, with where it was found:
/// text and blobs as bytes, integers as their decimal text; time columns only when `times`.
async fn values(path: &Path, times: bool) -> Vec<(String, Vec<u8>)> {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn = SqliteConnection::connect(&url)
        .await
        .expect("open database");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut out = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(&mut conn)
        .await
        .expect("columns");
        for column in columns {
            if is_time(&column) != times {
                continue;
            }
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(\"{column}\" AS BLOB) AS v FROM \"{table}\" WHERE \"{column}\" IS NOT NULL"
            )))
            .fetch_all(&mut conn)
            .await
            .expect("rows");
            for row in rows {
                let v: Vec<u8> = row.get("v");
                out.push((format!("{table}.{column}"), v));
            }
        }
    }
    out
}

/// The forms in which a value could be carried elsewhere: itself, hex, base64 (standard and
/// URL-safe, padded or not), and its SHA-256 (raw and hex).
fn forms(value: &[u8]) -> Vec<Vec<u8>> {
    let hash = Sha256::digest(value).to_vec();
    let mut forms = vec![
        value.to_vec(),
        hex(value).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(value)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(value)
            .into_bytes(),
        hex(&hash).into_bytes(),
        hash,
    ];
    forms.retain(|f| f.len() >= MIN_LEN);
    forms
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A haystack that answers "does it contain this needle?" for needles of at least
/// [`MIN_LEN`] bytes, through an index of every 8-byte window.
struct Haystack {
    parts: Vec<(String, Vec<u8>)>,
    windows: HashSet<[u8; MIN_LEN]>,
}

impl Haystack {
    fn new(parts: Vec<(String, Vec<u8>)>) -> Self {
        let mut windows = HashSet::new();
        for (_, bytes) in &parts {
            for w in bytes.windows(MIN_LEN) {
                windows.insert(<[u8; MIN_LEN]>::try_from(w).expect("window"));
            }
        }
        Self { parts, windows }
    }

    /// Where `needle` occurs, if anywhere.
    fn find(&self, needle: &[u8]) -> Option<&str> {
        let head: [u8; MIN_LEN] = needle[..MIN_LEN].try_into().expect("long enough");
        if !self.windows.contains(&head) {
            return None;
        }
        self.parts
            .iter()
            .find(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
            .map(|(at, _)| at.as_str())
    }
}

/// Values of `from` found in `into`, in any of their [`forms`].
fn joins(from: &[(String, Vec<u8>)], into: &Haystack, skip: &HashSet<Vec<u8>>) -> Vec<String> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for (at, value) in from {
        if value.len() < MIN_LEN || skip.contains(value) || !seen.insert(value.clone()) {
            continue;
        }
        for form in forms(value) {
            if let Some(there) = into.find(&form) {
                found.push(format!(
                    "{at} = {:?} found in {there}",
                    String::from_utf8_lossy(&value[..value.len().min(40)])
                ));
                break;
            }
        }
    }
    found
}

/// Whether `line` holds something shaped like an IPv4 address.
fn has_ipv4(line: &str) -> bool {
    line.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() == 4
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.parse::<u8>().is_ok())
        })
}

/// Plays the demo with its data kept in a new directory; returns it and the servers' log.
fn demo() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(env!("CARGO_BIN_EXE_conclave"))
        .args(["demo", "--fast-kdf", "--data"])
        .arg(dir.path())
        // Every line either server logs at info and above, as an operator would keep them.
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let logs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "demo failed:\n{stdout}\n{logs}");
    assert!(stdout.contains(" checks passed, 0 failed"), "{stdout}");
    (dir, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_of_both_servers_cannot_join_their_data() {
    let began = unix_now();
    let (dir, logs) = demo();
    timestamps_do_not_link_the_servers(dir.path(), began).await;
    let as_values = values(&dir.path().join("servers/as.db"), false).await;
    let ds_values = values(&dir.path().join("servers/ds.db"), false).await;
    assert!(
        as_values.len() > 100 && ds_values.len() > 100,
        "a realistic session stores plenty: AS {} values, DS {}",
        as_values.len(),
        ds_values.len()
    );
    // The session paid for its mailboxes, pools and groups with Privacy Pass tokens, and
    // what both sides kept of them (the AS's per-user counts, the DS's spent nonces) is
    // among the values compared.
    let spent = ds_values
        .iter()
        .filter(|(at, _)| at.starts_with("spent_tokens.nonce"))
        .count();
    assert!(spent >= 6, "{spent} tokens spent at the DS");
    assert!(
        as_values
            .iter()
            .any(|(at, v)| at.starts_with("rate_windows.key") && v.starts_with(b"tokens:")),
        "the AS counted the tokens it issued"
    );
    // Values any deployment shares by construction and that identify nobody: the names of
    // the migration files each server records for itself.
    let mut common: HashSet<Vec<u8>> = HashSet::new();
    for (at, v) in as_values.iter().chain(&ds_values) {
        if at.contains("migrations") {
            common.insert(v.clone());
        }
    }

    // Log lines, attributed to the server that wrote them (tracing's target).
    let mut as_logs = Vec::new();
    let mut ds_logs = Vec::new();
    for (i, line) in logs.lines().enumerate() {
        // A server's own listening address is configuration, not a client's.
        let own_address = line.contains(" listening ");
        assert!(
            own_address || !has_ipv4(line),
            "a log line holds an IP address: {line}"
        );
        let entry = (format!("log line {i}"), line.as_bytes().to_vec());
        if line.contains("conclave_as") {
            as_logs.push(entry);
        } else if line.contains("conclave_ds") {
            ds_logs.push(entry);
        }
    }

    let mut ds_side = ds_values.clone();
    ds_side.extend(ds_logs.iter().cloned());
    let mut as_side = as_values.clone();
    as_side.extend(as_logs.iter().cloned());
    let ds_haystack = Haystack::new(ds_side);
    let as_haystack = Haystack::new(as_side);
    let mut found = joins(&as_values, &ds_haystack, &common);
    found.extend(joins(&ds_values, &as_haystack, &common));
    assert!(
        found.is_empty(),
        "values shared by the AS and the DS:\n{}",
        found.join("\n")
    );

    // The check can fail: a value planted in the DS's data is found.
    let (at, planted) = as_values
        .iter()
        .find(|(at, v)| at.starts_with("devices.") && v.len() >= 32)
        .expect("a device key or certificate in the AS");
    let mut tampered = ds_values.clone();
    tampered.push((
        "planted".into(),
        base64::engine::general_purpose::STANDARD
            .encode(planted)
            .into_bytes(),
    ));
    let caught = joins(&as_values, &Haystack::new(tampered), &common);
    assert!(
        caught.iter().any(|f| f.contains("planted")),
        "a planted copy of {at} is caught"
    );
}

/// The granularity the DS keeps times at (`conclave_ds::store::RECORD_GRANULARITY`): an
/// operator of both servers can then tell only that a DS event happened in the same hour as
/// an AS event, among all of that hour's.
const GRANULARITY: i64 = 3_600;

/// DS columns whose times a mechanism needs to the second for a short while: a nonce until
/// the signature window closes, an epoch's start during its predecessor's grace period, a
/// pool's claim state (microseconds) while its budget refills. The DS blurs them once the
/// mechanism is done (`crates/delivery/tests/ds.rs::retention_deletes_what_it_should_and_nothing_else`);
/// a snapshot can hold only those of the last minutes, which an operator who watches the
/// traffic sees anyway.
const MECHANISM: [&str; 3] = [
    "nonces.expires_at",
    "groups.epoch_started_at",
    "pools.claim_tat",
];

/// The times of both databases after the demo (which began at `began`): every DS time of
/// a record is on the hour; a mechanism's time is on the hour or from the session itself;
/// and no AS time (other than one on the hour by chance) equals a DS record's time.
async fn timestamps_do_not_link_the_servers(dir: &Path, began: i64) {
    let ended = unix_now();
    let times = |v: Vec<(String, Vec<u8>)>| -> Vec<(String, i64)> {
        v.into_iter()
            .filter_map(|(at, b)| Some((at, String::from_utf8(b).ok()?.parse().ok()?)))
            .collect()
    };
    let as_times = times(values(&dir.join("servers/as.db"), true).await);
    let ds_times = times(values(&dir.join("servers/ds.db"), true).await);
    assert!(!as_times.is_empty() && !ds_times.is_empty());
    let (mechanism, records): (Vec<_>, Vec<_>) = ds_times
        .iter()
        .partition(|(at, _)| MECHANISM.contains(&at.as_str()));
    let fine: Vec<_> = records
        .iter()
        .filter(|(_, t)| t % GRANULARITY != 0)
        .collect();
    assert!(
        fine.is_empty(),
        "{} DS record times finer than {GRANULARITY} s, such as {:?}",
        fine.len(),
        fine.first()
    );
    let stale: Vec<_> = mechanism
        .iter()
        .filter(|(at, t)| {
            let t = if at.ends_with("_tat") {
                t / 1_000_000
            } else {
                *t
            };
            t % GRANULARITY != 0 && t != 0 && !(began - 60..=ended + 600).contains(&t)
        })
        .collect();
    assert!(
        stale.is_empty(),
        "{} mechanism times finer than {GRANULARITY} s from outside the session ({began}..{ended}), such as {:?}",
        stale.len(),
        stale.first()
    );
    let equal: Vec<String> = as_times
        .iter()
        .filter(|(_, t)| t % GRANULARITY != 0)
        .filter_map(|(a, t)| {
            let (d, _) = records.iter().find(|(_, u)| u == t)?;
            Some(format!("{a} = {d} = {t}"))
        })
        .collect();
    assert!(
        equal.is_empty(),
        "{} AS times equal to a DS time, such as {:?}",
        equal.len(),
        equal.first()
    );
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[test]
fn ipv4_shapes_are_recognised() {
    assert!(has_ipv4("accepted from 127.0.0.1:5312"));
    assert!(has_ipv4("peer=10.0.0.7"));
    assert!(!has_ipv4("version 1.2.3 at 12:00:01.5"));
    assert!(!has_ipv4("300.1.1.1"));
}
