//! The measured scenario, written once for every implementation (see the crate docs).

use crate::client::{Client, Result};
use crate::fixture::{self, Member};
use crate::floor::{BareSeals, BareVerifies};
use crate::measure::{
    Label, Progress, Samples, emit_value, path_ciphertexts, peak_rss_mb, reset_peak_rss,
};

/// Makes a client of the measured implementation: (name, cipher suite).
pub type Factory = fn(&str, u16) -> Result<Box<dyn Client>>;

/// The group identifier every run uses.
const GROUP_ID: &[u8] = b"conclave-bench";

/// How a run is set up.
pub struct Settings {
    /// Group size: fixture members plus the creator and the receiver.
    pub members: usize,
    /// Repetitions of each handshake operation.
    pub reps: usize,
    /// Repetitions of application encryption and decryption.
    pub app_reps: usize,
    /// Cipher suite.
    pub suite: u16,
    /// KeyPackages per commit when building the adds-only tree.
    pub batch: usize,
    /// Whether to also time the bare HPKE and signature costs (baselines).
    pub baselines: bool,
    /// Measure only this group of operations (`None`: all).
    pub only: Option<Ops>,
}

/// Groups of measurements on a built group, to profile one at a time.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ops {
    /// `commit_update` and `process_commit`.
    Commit,
    /// `app_encrypt` and `app_decrypt`.
    App,
    /// `add_one`, `join`, `remove_one` and `process_remove`.
    Membership,
}

/// The tree shapes of the issue (see `fixture` for how each is built).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Built by adds: blank parents.
    AddsOnly,
    /// Every parent node non-blank.
    Populated,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::AddsOnly => "adds_only",
            Shape::Populated => "populated",
        }
    }
}

fn agree(a: &dyn Client, b: &dyn Client) -> Result<()> {
    if a.epoch_authenticator() == b.epoch_authenticator() {
        Ok(())
    } else {
        Err("members disagree on the epoch authenticator".into())
    }
}

/// Runs every measurement of `shapes` for one implementation and prints them.
pub fn run(implementation: &str, factory: Factory, s: &Settings, shapes: &[Shape]) -> Result<()> {
    if s.members < 3 {
        return Err("--members must be at least 3".into());
    }
    let fixture = fixture::members(s.suite, s.members - 2)?;
    for &shape in shapes {
        let label = Label {
            implementation,
            members: s.members,
            tree: shape.name(),
        };
        let (mut a, mut b) = match shape {
            Shape::AddsOnly => {
                reset_peak_rss();
                build_adds_only(factory, s, &fixture, label)?
            }
            Shape::Populated => {
                let info = fixture::populated_group_info(s.suite, &fixture, GROUP_ID)?;
                reset_peak_rss();
                join_populated(factory, s, &info, label)?
            }
        };
        steady_state(a.as_mut(), b.as_mut(), factory, s, label)?;
        emit_value(label, "peak_rss_mb", "MB", peak_rss_mb());
        drop((a, b));
    }
    Ok(())
}

/// The creator adds everyone, `batch` KeyPackages per commit; the receiver is in the last
/// batch and joins from its Welcome.
fn build_adds_only(
    factory: Factory,
    s: &Settings,
    fixture: &[Member],
    label: Label<'_>,
) -> Result<(Box<dyn Client>, Box<dyn Client>)> {
    let mut key_packages = fixture::key_package_messages(fixture)?;
    let mut a = factory("creator", s.suite)?;
    let mut b = factory("receiver", s.suite)?;
    a.create_group(GROUP_ID)?;
    key_packages.push(b.key_package()?);
    let progress = Progress::new("adding members", key_packages.len());
    let mut build = Samples::default();
    let welcome = build.time(|| {
        let mut welcome = None;
        for chunk in key_packages.chunks(s.batch.max(1)) {
            welcome = a.add(chunk)?.welcome;
            progress.advance(chunk.len());
        }
        welcome.ok_or_else(|| "no Welcome".into())
    })?;
    progress.finish();
    build.emit(label, "build", "ms", &format!(",\"batch\":{}", s.batch));
    drop(key_packages);
    b.join(&welcome)?;
    agree(a.as_ref(), b.as_ref())?;
    Ok((a, b))
}

/// The creator joins the synthesized populated group by external commit, then adds the
/// receiver.
fn join_populated(
    factory: Factory,
    s: &Settings,
    group_info: &[u8],
    label: Label<'_>,
) -> Result<(Box<dyn Client>, Box<dyn Client>)> {
    let mut a = factory("creator", s.suite)?;
    let mut b = factory("receiver", s.suite)?;
    let mut external = Samples::default();
    external.time(|| a.join_external(group_info))?;
    external.emit(label, "join_external", "ms", "");
    let key_package = b.key_package()?;
    let welcome = a.add(&[key_package])?.welcome.ok_or("no Welcome")?;
    b.join(&welcome)?;
    agree(a.as_ref(), b.as_ref())?;
    Ok((a, b))
}

/// The measurements on a built group: `a` commits, `b` receives, a third client joins and
/// is removed again.
fn steady_state(
    a: &mut dyn Client,
    b: &mut dyn Client,
    factory: Factory,
    s: &Settings,
    label: Label<'_>,
) -> Result<()> {
    let wanted = |ops: Ops| s.only.is_none_or(|o| o == ops);
    let bare = Label {
        implementation: "bare",
        ..label
    };
    // Empty commits with a path, and their processing; each followed by its floor, so that
    // both see the machine in the same state (a VM's speed drifts over minutes).
    let (mut commit_update, mut process_commit) = (Samples::default(), Samples::default());
    let mut seal_floor = (Samples::default(), None::<Option<BareSeals>>);
    let mut seals = 0;
    for _ in 0..if wanted(Ops::Commit) { s.reps } else { 0 } {
        let commit = commit_update.time(|| a.commit_update())?;
        seals = path_ciphertexts(&commit)?;
        process_commit.time(|| b.process_commit(&commit))?;
        agree(a, b)?;
        if s.baselines {
            let floor = match &mut seal_floor.1 {
                Some(floor) if floor.as_ref().is_none_or(|f| f.count == seals) => floor,
                slot => slot.insert(BareSeals::new(s.suite, seals)?),
            };
            if let Some(floor) = floor {
                seal_floor.0.time(|| floor.run())?;
            }
        }
    }
    commit_update.emit(
        label,
        "commit_update",
        "ms",
        &format!(",\"hpke_seals\":{seals}"),
    );
    process_commit.emit(label, "process_commit", "ms", "");
    seal_floor.0.emit(
        bare,
        "commit_update",
        "ms",
        &format!(",\"hpke_seals\":{seals}"),
    );

    // Application messages of 1 KiB.
    let data = vec![0x5a_u8; 1024];
    let (mut encrypt, mut decrypt) = (Samples::default(), Samples::default());
    for _ in 0..if wanted(Ops::App) { s.app_reps } else { 0 } {
        let message = encrypt.time(|| a.encrypt(&data))?;
        let plain = decrypt.time(|| b.decrypt(&message))?;
        if plain != data {
            return Err("application data corrupted".into());
        }
    }
    encrypt.emit(label, "app_encrypt", "us", "");
    decrypt.emit(label, "app_decrypt", "us", "");

    // One member added, joining from the Welcome, then removed again.
    let (mut add_one, mut join, mut remove_one, mut process_remove) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let mut remove_seals = 0;
    let verify_floor = match s.baselines && wanted(Ops::Membership) {
        true => Some(BareVerifies::new(s.suite, s.members)?),
        false => None,
    };
    let mut join_floor = Samples::default();
    for r in 0..if wanted(Ops::Membership) { s.reps } else { 0 } {
        let mut c = factory(&format!("joiner-{r}"), s.suite)?;
        let key_package = [c.key_package()?];
        let added = add_one.time(|| a.add(&key_package))?;
        b.process_commit(&added.commit)?;
        let welcome = added.welcome.ok_or("an add without a Welcome")?;
        join.time(|| c.join(&welcome))?;
        if let Some(floor) = &verify_floor {
            join_floor.time(|| floor.run())?;
        }
        agree(a, c.as_ref())?;
        let leaf = c.own_leaf();
        drop(c);
        let removal = remove_one.time(|| a.remove(leaf))?;
        remove_seals = path_ciphertexts(&removal)?;
        process_remove.time(|| b.process_commit(&removal))?;
        agree(a, b)?;
    }
    add_one.emit(label, "add_one", "ms", "");
    join.emit(label, "join", "ms", "");
    remove_one.emit(
        label,
        "remove_one",
        "ms",
        &format!(",\"hpke_seals\":{remove_seals}"),
    );
    process_remove.emit(label, "process_remove", "ms", "");
    join_floor.emit(
        bare,
        "join",
        "ms",
        &format!(",\"verifications\":{}", s.members),
    );
    Ok(())
}
