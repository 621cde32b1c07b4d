//! `--report`: the Markdown table of a file of JSON lines, implementations side by side.

use crate::client::Result;
use serde_json::Value;
use std::collections::BTreeMap;

const IMPLS: [&str; 4] = ["conclave", "openmls", "mlsrs", "bare"];
const OPS: [&str; 12] = [
    "build",
    "join_external",
    "commit_update",
    "process_commit",
    "add_one",
    "join",
    "remove_one",
    "process_remove",
    "app_encrypt",
    "app_decrypt",
    "peak_rss_mb",
    "",
];

/// (members, tree, index into `OPS`).
type RowKey = (u64, String, usize);

/// Prints one row per (members, tree, op): each implementation's median, how many times
/// faster Conclave is than the better peer (or, for memory, how many times less), and, where
/// the harness measured a bare floor, Conclave's time as a multiple of it.
pub fn print(jsonl: &str) -> Result<()> {
    // (members, tree, op index) -> impl -> (median, unit)
    let mut rows: BTreeMap<RowKey, BTreeMap<String, (f64, String)>> = BTreeMap::new();
    for line in jsonl.lines().filter(|l| l.starts_with('{')) {
        let v: Value = serde_json::from_str(line)?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        let Some(op) = OPS.iter().position(|o| *o == field("op")) else {
            continue;
        };
        let members = v.get("members").and_then(Value::as_u64).unwrap_or(0);
        let median = v.get("median").and_then(Value::as_f64).unwrap_or(f64::NAN);
        rows.entry((members, field("tree").to_string(), op))
            .or_default()
            .insert(
                field("impl").to_string(),
                (median, field("unit").to_string()),
            );
    }
    println!(
        "| members | tree | op | unit | Conclave | OpenMLS | mls-rs | bare | better peer ÷ Conclave | Conclave ÷ bare |"
    );
    println!("|---:|---|---|---|---:|---:|---:|---:|---:|---:|");
    for ((members, tree, op), by_impl) in rows {
        let unit = by_impl.values().next().map_or("", |(_, u)| u.as_str());
        let cell = |i: &str| {
            by_impl
                .get(i)
                .map_or("—".to_string(), |(m, _)| format_number(*m))
        };
        let ours = by_impl.get("conclave").map(|(m, _)| *m);
        let peer = ["openmls", "mlsrs"]
            .iter()
            .filter_map(|i| by_impl.get(*i).map(|(m, _)| *m))
            .fold(f64::INFINITY, f64::min);
        let ratio = match ours {
            Some(o) if peer.is_finite() && o > 0.0 => format!("{:.2}×", peer / o),
            _ => "—".to_string(),
        };
        let over_floor = match (ours, by_impl.get("bare")) {
            (Some(o), Some((b, _))) if *b > 0.0 => format!("{:.2}×", o / b),
            _ => "—".to_string(),
        };
        println!(
            "| {members} | {tree} | {} | {unit} | {} | {} | {} | {} | {ratio} | {over_floor} |",
            OPS[op],
            cell(IMPLS[0]),
            cell(IMPLS[1]),
            cell(IMPLS[2]),
            cell(IMPLS[3]),
        );
    }
    Ok(())
}

fn format_number(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}
