//! Timing, memory and output: one JSON line per measurement on stdout, progress on stderr.

use crate::client::Result;
use crate::fixture::decode;
use conclave_mls::messages::{FramedContentBody, MlsMessageBody};
use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which implementation, group size and tree shape a measurement belongs to.
#[derive(Clone, Copy)]
pub struct Label<'a> {
    /// `conclave`, `openmls`, `mlsrs` (or `bare` for the baselines).
    pub implementation: &'a str,
    /// Group size.
    pub members: usize,
    /// `adds_only` or `populated`.
    pub tree: &'a str,
}

/// Samples of one operation.
#[derive(Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Runs `f` once, timing it, and returns its output.
    pub fn time<T>(&mut self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let out = f()?;
        self.0.push(start.elapsed());
        Ok(out)
    }

    /// Prints the JSON line of `op` in `unit` ("ms" or "us"), with `extra` fields appended.
    pub fn emit(&mut self, label: Label<'_>, op: &str, unit: &str, extra: &str) {
        if self.0.is_empty() {
            return;
        }
        self.0.sort();
        let scale = |d: &Duration| match unit {
            "us" => d.as_secs_f64() * 1e6,
            _ => d.as_secs_f64() * 1e3,
        };
        let n = self.0.len();
        let median = if n % 2 == 1 {
            scale(&self.0[n / 2])
        } else {
            (scale(&self.0[n / 2 - 1]) + scale(&self.0[n / 2])) / 2.0
        };
        line(&format!(
            "{},\"op\":\"{op}\",\"unit\":\"{unit}\",\"median\":{median:.3},\"min\":{:.3},\"max\":{:.3},\"reps\":{n}{extra}}}",
            head(label),
            scale(&self.0[0]),
            scale(&self.0[n - 1]),
        ));
    }
}

fn head(label: Label<'_>) -> String {
    format!(
        "{{\"impl\":\"{}\",\"members\":{},\"tree\":\"{}\"",
        label.implementation, label.members, label.tree
    )
}

fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) ends the run quietly rather than panicking.
    if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Prints a single value (e.g. `peak_rss_mb`).
pub fn emit_value(label: Label<'_>, op: &str, unit: &str, value: f64) {
    line(&format!(
        "{},\"op\":\"{op}\",\"unit\":\"{unit}\",\"median\":{value:.3},\"min\":{value:.3},\"max\":{value:.3},\"reps\":1}}",
        head(label)
    ));
}

/// Peak resident set size of this process since the last [`reset_peak_rss`], in MiB
/// (`VmHWM` of /proc/self/status; 0 where that does not exist).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak RSS to the current RSS (Linux: writing 5 to /proc/self/clear_refs), so
/// fixtures built before the measured work do not count.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The number of HPKE ciphertexts in a commit's UpdatePath (a PublicMessage): the seals its
/// sender had to make.
pub fn path_ciphertexts(commit: &[u8]) -> Result<usize> {
    let MlsMessageBody::PublicMessage(message) = decode(commit)?.body else {
        return Err("commit is not a PublicMessage".into());
    };
    let FramedContentBody::Commit(commit) = message.content.body else {
        return Err("not a commit".into());
    };
    Ok(commit.path.map_or(0, |p| {
        p.nodes.iter().map(|n| n.encrypted_path_secret.len()).sum()
    }))
}

/// A progress bar on stderr for long fixture builds and group builds.
pub struct Progress {
    what: &'static str,
    total: usize,
    done: AtomicUsize,
    start: Instant,
}

impl Progress {
    /// A bar for `total` steps of `what`.
    pub fn new(what: &'static str, total: usize) -> Self {
        Self {
            what,
            total,
            done: AtomicUsize::new(0),
            start: Instant::now(),
        }
    }

    /// One more step done (from any thread); redraws every 1 %.
    pub fn tick(&self) {
        self.advance(1);
    }

    /// `steps` more done.
    pub fn advance(&self, steps: usize) {
        let done = self.done.fetch_add(steps, Ordering::Relaxed) + steps;
        let every = (self.total / 100).max(1);
        if self.total >= 200
            && std::io::stderr().is_terminal()
            && (done % every < steps || done == self.total)
        {
            let width = 30;
            let filled = done * width / self.total.max(1);
            eprint!(
                "\r  {:<20} [{}{}] {done}/{} {:.1}s",
                self.what,
                "#".repeat(filled.min(width)),
                " ".repeat(width - filled.min(width)),
                self.total,
                self.start.elapsed().as_secs_f64()
            );
        }
    }

    /// Ends the bar's line (or, when stderr is not a terminal, prints the one line).
    pub fn finish(&self) {
        if self.total < 200 {
            return;
        }
        if std::io::stderr().is_terminal() {
            eprintln!();
        } else {
            eprintln!(
                "  {}: {} in {:.1}s",
                self.what,
                self.total,
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}
