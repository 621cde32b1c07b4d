//! `conclave-bench`: large-group measurements of Conclave, OpenMLS and mls-rs, one
//! implementation per process so that each one's peak memory is its own.
//!
//! ```text
//! cargo run --release -p conclave-bench -- --impl conclave --members 10000 [--reps 5] [--suite 1]
//! cargo run --release -p conclave-bench -- --report results.jsonl   # the README's table
//! ```
//!
//! Each run prints one JSON line per measurement, for both tree shapes:
//! `build` (adds-only only: the creator adds N−1 members, `--batch` per commit),
//! `join_external` (populated only: how the creator enters the synthesized group),
//! `commit_update` / `process_commit` (an empty commit with a path, made and merged by the
//! creator, processed by another member), `app_encrypt` / `app_decrypt` (1 KiB),
//! `add_one` / `join` (a new member joins from the Welcome with the ratchet tree, validating
//! it fully), `remove_one` / `process_remove`, and `peak_rss_mb` (the process's peak while
//! the implementation holds the creator's, the receiver's and the joiner's states; fixtures
//! made before are not counted). With `--impl conclave`, lines with `"impl":"bare"` give
//! the physical floor (see `floor.rs`): the same number of HPKE seals as the commit made,
//! from the primitives alone (ring's X25519, HKDF and AES-GCM; the info hashed once), and
//! one signature verification per member, on all cores. Each floor repetition runs right after the repetition of the operation it
//! bounds, so that a drift in the machine's speed moves both alike. How each tree shape is
//! built: see `fixture.rs`.

#![forbid(unsafe_code)]

mod client;
mod conclave;
mod fixture;
mod floor;
mod measure;
mod mls_rs;
mod openmls;
mod report;
mod scenario;

use clap::{Parser, ValueEnum};
use client::{Client, Result};
use scenario::{Factory, Settings, Shape};

/// Command line.
#[derive(Parser)]
#[command(
    version,
    about = "Large-group MLS benchmarks: Conclave, OpenMLS, mls-rs"
)]
struct Cli {
    /// The implementation to measure.
    #[arg(long = "impl", value_enum, required_unless_present = "report")]
    implementation: Option<Impl>,
    /// Group size.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Repetitions per handshake operation (default: 10 up to 1,000 members, 5 above;
    /// the medians of 50,000-member joins drift by 10% on a busy VM with fewer).
    #[arg(long)]
    reps: Option<usize>,
    /// Repetitions of application encryption and decryption.
    #[arg(long, default_value_t = 200)]
    app_reps: usize,
    /// Cipher suite (RFC 9420 §17.1).
    #[arg(long, default_value_t = 1)]
    suite: u16,
    /// KeyPackages per commit while building the adds-only tree.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Tree shapes to measure.
    #[arg(long, value_enum, default_value_t = Trees::Both)]
    tree: Trees,
    /// Measure only this group of operations.
    #[arg(long, value_enum)]
    only: Option<scenario::Ops>,
    /// Instead of measuring, print the Markdown table of a file of JSON lines.
    #[arg(long, value_name = "FILE")]
    report: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Impl {
    Conclave,
    Openmls,
    Mlsrs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Trees {
    AddsOnly,
    Populated,
    Both,
}

fn conclave_client(name: &str, suite: u16) -> Result<Box<dyn Client>> {
    Ok(Box::new(conclave::Conclave::new(name, suite)?))
}

fn openmls_client(name: &str, suite: u16) -> Result<Box<dyn Client>> {
    Ok(Box::new(openmls::OpenMls::new(name, suite)?))
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("conclave-bench: {e}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(path) = cli.report {
        return report::print(&std::fs::read_to_string(path)?);
    }
    let implementation = cli.implementation.ok_or("--impl is required")?;
    let (name, factory): (&str, Factory) = match implementation {
        Impl::Conclave => ("conclave", conclave_client),
        Impl::Openmls => ("openmls", openmls_client),
        Impl::Mlsrs => ("mlsrs", mls_rs::new),
    };
    let reps = cli.reps.unwrap_or(if cli.members <= 1000 { 10 } else { 5 });
    let settings = Settings {
        members: cli.members,
        reps,
        app_reps: cli.app_reps,
        suite: cli.suite,
        batch: cli.batch,
        baselines: matches!(implementation, Impl::Conclave),
        only: cli.only,
    };
    let shapes: &[Shape] = match cli.tree {
        Trees::AddsOnly => &[Shape::AddsOnly],
        Trees::Populated => &[Shape::Populated],
        Trees::Both => &[Shape::AddsOnly, Shape::Populated],
    };
    scenario::run(name, factory, &settings, shapes)
}
