//! What the `conclave` binary's tests share: running it with a clean environment, and
//! `conclave serve` in a child process.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The `conclave` binary, with none of the user's settings in its environment.
pub fn conclave() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_conclave"));
    c.env_remove("CONCLAVE_PASSPHRASE")
        .env_remove("CONCLAVE_PROFILE")
        .env_remove("CONCLAVE_HOME")
        .env_remove("RUST_LOG");
    c
}

/// A child process killed on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `cmd` and parses the first line it prints as JSON.
pub fn spawn_json(mut cmd: Command) -> (Running, Value) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    (Running(child), v)
}

/// `conclave serve --data DATA` on free loopback ports: the child, the AS URL and the DS URL.
pub fn serve(data: &Path) -> (Running, String, String) {
    serve_with(data, &[])
}

/// `conclave serve --data DATA` with more options.
pub fn serve_with(data: &Path, more: &[&std::ffi::OsStr]) -> (Running, String, String) {
    let mut cmd = conclave();
    cmd.args([
        "serve",
        "--json",
        "--as-listen",
        "127.0.0.1:0",
        "--ds-listen",
        "127.0.0.1:0",
        "--data",
    ])
    .arg(data)
    .args(more);
    let (child, v) = spawn_json(cmd);
    (
        child,
        v["auth_url"].as_str().unwrap().to_owned(),
        v["delivery_urls"][0].as_str().unwrap().to_owned(),
    )
}

/// An invitation code for `user` from the AS of `serve --data DATA`.
pub fn invite(data: &Path, user: &str) -> String {
    let out = conclave()
        .args(["--json", "invite", user, "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["code"].as_str().unwrap().to_owned()
}

/// A reproducible source of kill times: `CONCLAVE_KILL_SEED`, or the clock (printed).
pub fn kill_times() -> impl FnMut() -> u64 {
    let seed: u64 = std::env::var("CONCLAVE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("CONCLAVE_KILL_SEED={seed}");
    let mut state = seed | 1;
    move || {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
