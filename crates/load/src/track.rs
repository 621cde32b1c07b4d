//! The board every connection reports to: which entry each device should receive, which it
//! did, when, and what went wrong. It is how the tool knows nothing was lost: every entry
//! keeps the set of devices still owed it, and a run ends with that set empty everywhere.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// An application message.
    Application,
    /// A commit.
    Commit,
}

/// What a receiver learns about an entry it was owed.
#[derive(Clone, Debug)]
pub struct Receipt {
    /// The device that sent it.
    pub sender: usize,
    /// What it is.
    pub kind: EntryKind,
    /// For an application message, the plaintext the sender encrypted.
    pub data: Option<Arc<Vec<u8>>>,
}

/// One entry (or one commit's Welcomes) in flight: who still has to receive it.
pub struct Pending {
    meta: Receipt,
    seq: Mutex<Option<u64>>,
    remaining: Mutex<HashSet<usize>>,
    last: Mutex<Option<Instant>>,
    done: Notify,
}

impl Pending {
    /// An entry owed to `devices`.
    pub fn new(meta: Receipt, devices: impl IntoIterator<Item = usize>) -> Arc<Pending> {
        Arc::new(Pending {
            meta,
            seq: Mutex::new(None),
            remaining: Mutex::new(devices.into_iter().collect()),
            last: Mutex::new(None),
            done: Notify::new(),
        })
    }

    fn take(&self, device: usize) -> bool {
        let mut remaining = self.remaining.lock().unwrap_or_else(|e| e.into_inner());
        if !remaining.remove(&device) {
            return false;
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        if remaining.is_empty() {
            self.done.notify_one();
        }
        true
    }

    /// How many devices have not received it yet.
    pub fn owed(&self) -> usize {
        self.remaining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Waits until every device has it, or `timeout`; the instant the last one got it.
    pub async fn wait(&self, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.done.notified();
            if self.owed() == 0 {
                return *self.last.lock().unwrap_or_else(|e| e.into_inner());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }

    /// Sets the sequence number the DS gave the entry; false if receivers saw another.
    pub fn set_seq(&self, seq: u64) -> bool {
        let mut s = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        match *s {
            Some(seen) => seen == seq,
            None => {
                *s = Some(seq);
                true
            }
        }
    }
}

/// The Welcomes a device is owed: (group, the commit's Welcomes), oldest first.
type WelcomeQueue = Vec<(usize, Arc<Pending>)>;

struct GroupBoard {
    id: Vec<u8>,
    inflight: Mutex<Option<Arc<Pending>>>,
    entries: Mutex<HashMap<u64, Arc<Pending>>>,
    acks: AtomicUsize,
    acked: Notify,
}

/// The shared record of a run.
#[derive(Default)]
pub struct Board {
    groups: RwLock<Vec<Arc<GroupBoard>>>,
    by_b64: RwLock<HashMap<String, usize>>,
    /// Per device, the Welcomes owed to it: (group, entry), oldest first.
    welcomes: Mutex<HashMap<usize, WelcomeQueue>>,
    faults: Mutex<Vec<String>>,
    fault_count: AtomicU64,
    stopping: AtomicBool,
    deliveries: AtomicU64,
    checked: AtomicU64,
    lagged: AtomicU64,
    unexpected: AtomicU64,
}

impl Board {
    /// Registers a group; its index.
    pub fn add_group(&self, id: Vec<u8>) -> usize {
        let b64 = conclave_api::delivery::Bytes(id.clone()).to_base64();
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        groups.push(Arc::new(GroupBoard {
            id,
            inflight: Mutex::new(None),
            entries: Mutex::new(HashMap::new()),
            acks: AtomicUsize::new(0),
            acked: Notify::new(),
        }));
        let index = groups.len() - 1;
        self.by_b64
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(b64, index);
        index
    }

    fn group(&self, index: usize) -> Arc<GroupBoard> {
        self.groups.read().unwrap_or_else(|e| e.into_inner())[index].clone()
    }

    /// A group's MLS group id.
    pub fn group_id(&self, index: usize) -> Vec<u8> {
        self.group(index).id.clone()
    }

    /// The index of the group with this base64url id.
    pub fn group_index(&self, b64: &str) -> Option<usize> {
        self.by_b64
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(b64)
            .copied()
    }

    /// The group's next entry is `pending` (one at a time per group).
    pub fn expect(&self, group: usize, pending: Arc<Pending>) {
        *self
            .group(group)
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(pending);
    }

    /// The Welcome of `pending` (a commit of `group`) is owed to each of its devices.
    pub fn expect_welcomes(&self, group: usize, pending: &Arc<Pending>) {
        let devices: Vec<usize> = pending
            .remaining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        let mut welcomes = self.welcomes.lock().unwrap_or_else(|e| e.into_inner());
        for d in devices {
            welcomes
                .entry(d)
                .or_default()
                .push((group, pending.clone()));
        }
    }

    /// `device` got entry `seq` of `group`: the entry and what it is, if the device is owed
    /// it (and has not had it already). It counts as delivered at [`Board::delivered`], once
    /// the device has done with it what it does (a real member processes it first, so the
    /// group's next operation never overtakes it).
    pub fn receipt(
        &self,
        group: usize,
        seq: u64,
        device: usize,
    ) -> Option<(Arc<Pending>, Receipt)> {
        let g = self.group(group);
        let pending = {
            let mut entries = g.entries.lock().unwrap_or_else(|e| e.into_inner());
            match entries.get(&seq) {
                Some(p) => p.clone(),
                None => {
                    let inflight = g.inflight.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let Some(p) = inflight else {
                        self.unexpected.fetch_add(1, Ordering::Relaxed);
                        return None;
                    };
                    if !p.set_seq(seq) {
                        self.unexpected.fetch_add(1, Ordering::Relaxed);
                        return None;
                    }
                    entries.insert(seq, p.clone());
                    p
                }
            }
        };
        let owed = pending
            .remaining
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&device);
        owed.then(|| {
            let meta = pending.meta.clone();
            (pending, meta)
        })
    }

    /// `device` has had the entry of `pending`.
    pub fn delivered(&self, pending: &Pending, device: usize) {
        if pending.take(device) {
            self.deliveries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `device` got a Welcome: for `group` if it joined it (a real member), else for the
    /// oldest group that owes it one (a delivery-only device does not open it).
    pub fn welcomed(&self, device: usize, group: Option<usize>) {
        let pending = {
            let mut welcomes = self.welcomes.lock().unwrap_or_else(|e| e.into_inner());
            let queue = welcomes.entry(device).or_default();
            let at = match group {
                Some(g) => queue.iter().position(|(q, _)| *q == g),
                None => (!queue.is_empty()).then_some(0),
            };
            let pending = at.map(|i| queue.remove(i).1);
            if queue.is_empty() {
                welcomes.remove(&device);
            }
            pending
        };
        match pending {
            Some(p) => {
                p.take(device);
            }
            None => {
                self.unexpected.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Resets the count of confirmed group subscriptions of `group`.
    pub fn reset_acks(&self, group: usize) {
        self.group(group).acks.store(0, Ordering::SeqCst);
    }

    /// A group subscription was confirmed.
    pub fn subscribed(&self, group: usize) {
        let g = self.group(group);
        g.acks.fetch_add(1, Ordering::SeqCst);
        g.acked.notify_waiters();
    }

    /// Waits until `n` subscriptions of `group` are confirmed; false on timeout.
    pub async fn wait_acks(&self, group: usize, n: usize, timeout: Duration) -> bool {
        let g = self.group(group);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = g.acked.notified();
            if g.acks.load(Ordering::SeqCst) >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return g.acks.load(Ordering::SeqCst) >= n;
            }
        }
    }

    /// Something went wrong (kept: the first 20, and a count).
    pub fn fault(&self, what: String) {
        self.fault_count.fetch_add(1, Ordering::Relaxed);
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        if faults.len() < 20 {
            faults.push(what);
        }
    }

    /// A real member checked an entry.
    pub fn checked(&self) {
        self.checked.fetch_add(1, Ordering::Relaxed);
    }

    /// The DS said a connection lagged.
    pub fn lagged(&self) {
        self.lagged.fetch_add(1, Ordering::Relaxed);
    }

    /// The run is ending: closed connections are expected.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether the run is ending.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// The totals: deliveries, entries checked by real members, lag notices, pushes no one
    /// expected, faults (with the first ones), and deliveries still owed (lost).
    pub fn totals(&self) -> Totals {
        let mut lost = 0;
        for g in self.groups.read().unwrap_or_else(|e| e.into_inner()).iter() {
            for p in g.entries.lock().unwrap_or_else(|e| e.into_inner()).values() {
                lost += p.owed() as u64;
            }
            if let Some(p) = g
                .inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
            {
                if p.seq.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
                    lost += p.owed() as u64;
                }
            }
        }
        lost += self
            .welcomes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|q| q.len() as u64)
            .sum::<u64>();
        Totals {
            deliveries: self.deliveries.load(Ordering::Relaxed),
            checked: self.checked.load(Ordering::Relaxed),
            lagged: self.lagged.load(Ordering::Relaxed),
            unexpected: self.unexpected.load(Ordering::Relaxed),
            faults: self.fault_count.load(Ordering::Relaxed),
            first_faults: self
                .faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            lost,
        }
    }
}

/// What [`Board::totals`] reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Totals {
    /// Entries delivered to devices owed them.
    pub deliveries: u64,
    /// Entries real members decrypted (or merged) and checked.
    pub checked: u64,
    /// Lag notices (each followed by a catch-up read).
    pub lagged: u64,
    /// Pushes of entries nobody was owed (duplicates after a catch-up read).
    pub unexpected: u64,
    /// Faults.
    pub faults: u64,
    /// The first faults.
    pub first_faults: Vec<String>,
    /// Deliveries still owed at the end: lost.
    pub lost: u64,
}
