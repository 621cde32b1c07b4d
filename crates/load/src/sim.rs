//! Groups driven through the DS exactly as devices drive them: a real member builds each
//! message or commit with its MLS state, submits it with the epoch's group auth key, and the
//! tool waits until every member's connection has it before the group's next operation
//! (one in flight per group; many groups run at once).

use crate::LoadError;
use crate::conn::{Conn, Control};
use crate::population::SimDevice;
use crate::track::{Board, EntryKind, Pending, Receipt};
use conclave_api::delivery::{Bytes, CommitRequest, WelcomeDelivery};
use conclave_client::wire::{self, CommitOutcome, DeliveryClient};
use conclave_mls::codec::{Decode as _, Encode as _};
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::messages::MlsMessageBody;
use conclave_mls::{CommitOutput, Group, MlsMessage, RustCrypto};
use ed25519_dalek::SigningKey;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything shared by the groups of a run.
pub struct Sim {
    /// Receipts.
    pub board: Arc<Board>,
    /// The devices.
    pub devices: Vec<SimDevice>,
    /// Their connections; `None` for a device that is offline for the run (it would read
    /// its backlog from its cursor when it comes back).
    pub conns: Vec<Option<Conn>>,
    /// A client of each DS node.
    pub nodes: Vec<DeliveryClient>,
    /// Crypto.
    pub provider: RustCrypto,
    /// Chain validation (the AS root).
    pub validator: Arc<X509Validator>,
    /// How long an entry may take to reach every member.
    pub timeout: Duration,
    /// Size of each application message's plaintext.
    pub message_bytes: usize,
}

/// One group as the tool drives it.
pub struct SimGroup {
    /// Its index on the board.
    pub index: usize,
    /// Its MLS group id.
    pub id: Vec<u8>,
    /// The current epoch.
    pub epoch: u64,
    /// The current epoch's group auth key.
    pub key: SigningKey,
    /// Member devices.
    pub members: Vec<usize>,
    /// The members holding real MLS state.
    pub real: Vec<usize>,
    sent: u64,
}

/// What one operation measured: submission → the last member's receipt.
#[derive(Clone, Copy, Debug)]
pub struct Done {
    /// Which operation.
    pub op: Op,
    /// Until every member had it.
    pub latency: Duration,
    /// Until every new member had its Welcome (adds).
    pub welcome_latency: Option<Duration>,
    /// Connected members it went to.
    pub fanout: usize,
}

/// An operation on a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// An application message.
    Message,
    /// An empty commit with a path (an update).
    Update,
    /// A commit adding devices.
    Add,
    /// A commit removing a device.
    Remove,
}

impl Sim {
    fn ds_of(&self, device: usize) -> &DeliveryClient {
        &self.nodes[self.devices[device].node]
    }

    /// The members of a group that are connected: the ones owed every push.
    fn online<'a>(&'a self, members: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
        members.iter().copied().filter(|&m| self.conns[m].is_some())
    }

    fn real(
        &self,
        device: usize,
    ) -> Result<Arc<tokio::sync::Mutex<crate::conn::RealState>>, LoadError> {
        self.conns[device]
            .as_ref()
            .and_then(|c| c.real.clone())
            .ok_or_else(|| LoadError::Server(format!("device {device} holds no MLS state")))
    }

    /// Creates a group with `creator` (a real member) as its only member, registered at the
    /// creator's DS node, and subscribes the creator.
    pub async fn create_group(&self, creator: usize) -> Result<SimGroup, LoadError> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| LoadError::Server(e.to_string()))?;
        let id = id.to_vec();
        let real = self.real(creator)?;
        let mut state = real.lock().await;
        let group = Group::builder(&state.identity, self.validator.clone())
            .group_id(id.clone())
            .config(wire::group_config())
            .build(&self.provider)?;
        let key = wire::group_auth_key(&self.provider, &group)?;
        let index = self.board.add_group(id.clone());
        self.ds_of(creator).create_group(&id, &key, None).await?;
        state.groups.insert(index, group);
        drop(state);
        let mut g = SimGroup {
            index,
            id,
            epoch: 0,
            key,
            members: vec![creator],
            real: vec![creator],
            sent: 0,
        };
        self.subscribe_all(&mut g).await?;
        Ok(g)
    }

    /// Subscribes every member's connection with the current epoch's key and waits until
    /// the DS confirmed each.
    async fn subscribe_all(&self, g: &mut SimGroup) -> Result<(), LoadError> {
        self.board.reset_acks(g.index);
        let mut online = 0;
        for m in self.online(&g.members) {
            if let Some(conn) = &self.conns[m] {
                online += 1;
                let _ = conn.control.send(Control::Subscribe {
                    group: g.index,
                    epoch: g.epoch,
                    key: g.key.clone(),
                });
            }
        }
        if !self.board.wait_acks(g.index, online, self.timeout).await {
            return Err(LoadError::Server(format!(
                "group {}: not every member could subscribe to epoch {}",
                g.index, g.epoch
            )));
        }
        Ok(())
    }

    /// Claims one KeyPackage from each device's pool and commits their Adds; the Welcome
    /// goes to their mailboxes. `real_joiners` are the devices among them with MLS state.
    pub async fn add(
        &self,
        g: &mut SimGroup,
        committer: usize,
        devices: &[usize],
    ) -> Result<Done, LoadError> {
        // Claimed in tasks of their own, 64 at a time, as a device claims its contacts'.
        let mut claims = Vec::with_capacity(devices.len());
        for chunk in devices.chunks(64) {
            let mut tasks = tokio::task::JoinSet::new();
            for (i, &d) in chunk.iter().enumerate() {
                let ds = self.ds_of(committer).clone();
                let device = &self.devices[d];
                let (pool_id, pool_key, secret) =
                    (device.pool_id.clone(), device.pool_key, device.claim_secret);
                tasks.spawn(async move {
                    let claimed = ds
                        .claim(&pool_id, &secret, None)
                        .await?
                        .ok_or_else(|| LoadError::Server(format!("device {d}: pool empty")))?;
                    let bytes = wire::open_key_package(
                        &RustCrypto::default(),
                        &pool_key,
                        &pool_id,
                        &claimed.sealed.0,
                    )
                    .ok_or_else(|| LoadError::Server(format!("device {d}: sealed KeyPackage")))?;
                    Ok::<_, LoadError>((i, bytes))
                });
            }
            let mut got = Vec::with_capacity(chunk.len());
            while let Some(joined) = tasks.join_next().await {
                got.push(joined.map_err(|e| LoadError::Server(e.to_string()))??);
            }
            got.sort_by_key(|(i, _)| *i);
            claims.extend(got.into_iter().map(|(_, b)| Ok::<_, LoadError>(b)));
        }
        let mut key_packages = Vec::with_capacity(devices.len());
        for bytes in claims {
            let message = MlsMessage::decode(&bytes?)?;
            let MlsMessageBody::KeyPackage(kp) = message.body else {
                return Err(LoadError::Server(
                    "a claimed blob is not a KeyPackage".into(),
                ));
            };
            key_packages.push(kp);
        }
        let (out, next_key) = self
            .build_commit(g, committer, |group| {
                let mut builder = group.commit();
                for kp in key_packages {
                    builder = builder.add_member(kp);
                }
                builder.build(&self.provider)
            })
            .await?;
        let welcome = out
            .welcome
            .ok_or_else(|| LoadError::Server("no Welcome".into()))?;
        let welcomes = vec![WelcomeDelivery {
            welcome: Bytes(welcome.encode()?),
            mailboxes: devices
                .iter()
                .map(|&d| self.devices[d].mailbox_id.clone())
                .collect(),
        }];
        let owed = Pending::new(
            Receipt {
                sender: committer,
                kind: EntryKind::Commit,
                data: None,
            },
            self.online(devices),
        );
        self.board.expect_welcomes(g.index, &owed);
        let mut done = self
            .submit_commit(g, committer, Op::Add, out.commit, welcomes, next_key)
            .await?;
        let started = Instant::now() - done.latency;
        let last = owed.wait(self.timeout).await.ok_or_else(|| {
            LoadError::Server(format!(
                "group {}: {} Welcomes not delivered in {:?}",
                g.index,
                owed.owed(),
                self.timeout
            ))
        })?;
        done.welcome_latency = Some(last.saturating_duration_since(started));
        for &d in devices {
            g.members.push(d);
            if self.conns[d].as_ref().is_some_and(|c| c.real.is_some()) {
                g.real.push(d);
            }
        }
        self.subscribe_all(g).await?;
        Ok(done)
    }

    /// Commits the removal of `device` (not `committer`).
    pub async fn remove(
        &self,
        g: &mut SimGroup,
        committer: usize,
        device: usize,
    ) -> Result<Done, LoadError> {
        let target = self.devices[device]
            .identity
            .signature_key
            .as_slice()
            .to_vec();
        let (out, next_key) = self
            .build_commit(g, committer, |group| {
                let leaf = group
                    .members()
                    .find(|m| m.signature_key == target.as_slice())
                    .map(|m| m.leaf)
                    .ok_or_else(|| LoadError::Server(format!("device {device} not in the tree")))?;
                Ok::<_, LoadError>(group.commit().remove_member(leaf).build(&self.provider)?)
            })
            .await?;
        let done = self
            .submit_commit(g, committer, Op::Remove, out.commit, Vec::new(), next_key)
            .await?;
        g.members.retain(|&m| m != device);
        g.real.retain(|&m| m != device);
        self.subscribe_all(g).await?;
        Ok(done)
    }

    /// An empty commit with a path: the committer's update (RFC 9420 §12.4).
    pub async fn update(&self, g: &mut SimGroup, committer: usize) -> Result<Done, LoadError> {
        let (out, next_key) = self
            .build_commit(g, committer, |group| group.commit().build(&self.provider))
            .await?;
        let done = self
            .submit_commit(g, committer, Op::Update, out.commit, Vec::new(), next_key)
            .await?;
        self.subscribe_all(g).await?;
        Ok(done)
    }

    /// Builds a commit with `build` on the committer's state of the group; the commit and
    /// the group auth key of the epoch it starts. The commit stays pending in that state
    /// until its push comes back (or [`Self::submit_commit`] clears it).
    async fn build_commit<E>(
        &self,
        g: &SimGroup,
        committer: usize,
        build: impl FnOnce(&mut Group) -> Result<CommitOutput, E>,
    ) -> Result<(CommitOutput, SigningKey), LoadError>
    where
        LoadError: From<E>,
    {
        let real = self.real(committer)?;
        let mut state = real.lock().await;
        let group = state
            .groups
            .get_mut(&g.index)
            .ok_or_else(|| LoadError::Server("committer not in the group".into()))?;
        let out = build(group)?;
        let next = wire::pending_group_auth_key(&self.provider, group)?;
        Ok((out, next))
    }

    /// Submits a commit (with the Welcomes of an add) and waits until every connected
    /// member has it; then the group is at the next epoch with `next_key`.
    async fn submit_commit(
        &self,
        g: &mut SimGroup,
        committer: usize,
        op: Op,
        commit: MlsMessage,
        welcomes: Vec<WelcomeDelivery>,
        next_key: SigningKey,
    ) -> Result<Done, LoadError> {
        let request = CommitRequest {
            commit: Bytes(commit.encode()?),
            next_auth_key: Bytes(next_key.verifying_key().to_bytes().to_vec()),
            welcomes,
            group_info: None,
        };
        let pending = Pending::new(
            Receipt {
                sender: committer,
                kind: EntryKind::Commit,
                data: None,
            },
            self.online(&g.members),
        );
        let fanout = pending.owed();
        self.board.expect(g.index, pending.clone());
        let started = Instant::now();
        let outcome = self
            .ds_of(committer)
            .commit(&g.id, &request, &g.key, g.epoch)
            .await;
        let seq = match outcome {
            Ok(CommitOutcome::Accepted(seq)) => seq,
            other => {
                // One operation per group at a time: a lost epoch is a fault of the run.
                if let Ok(real) = self.real(committer) {
                    if let Some(group) = real.lock().await.groups.get_mut(&g.index) {
                        group.clear_pending_commit();
                    }
                }
                return Err(LoadError::Server(format!(
                    "group {}: commit not accepted: {:?}",
                    g.index,
                    other.map(|_| "lost the epoch")
                )));
            }
        };
        if !pending.set_seq(seq) {
            self.board
                .fault(format!("group {}: members saw another seq", g.index));
        }
        let last = pending.wait(self.timeout).await.ok_or_else(|| {
            LoadError::Server(format!(
                "group {}: commit {seq} reached {} of {fanout} members in {:?}",
                g.index,
                fanout - pending.owed(),
                self.timeout
            ))
        })?;
        g.epoch += 1;
        g.key = next_key;
        Ok(Done {
            op,
            latency: last.saturating_duration_since(started),
            welcome_latency: None,
            fanout,
        })
    }

    /// An application message from `sender`.
    pub async fn message(&self, g: &mut SimGroup, sender: usize) -> Result<Done, LoadError> {
        g.sent += 1;
        let mut data = format!("group {} message {} from {sender} ", g.index, g.sent).into_bytes();
        data.resize(self.message_bytes.max(data.len()), b'.');
        let real = self.real(sender)?;
        let message = {
            let mut state = real.lock().await;
            let group = state
                .groups
                .get_mut(&g.index)
                .ok_or_else(|| LoadError::Server("sender not in the group".into()))?;
            group.encrypt_application(&self.provider, &data, b"")?
        };
        let pending = Pending::new(
            Receipt {
                sender,
                kind: EntryKind::Application,
                data: Some(Arc::new(data)),
            },
            self.online(&g.members),
        );
        let fanout = pending.owed();
        self.board.expect(g.index, pending.clone());
        let started = Instant::now();
        let appended = self
            .ds_of(sender)
            .post(&g.id, message.encode()?, &g.key, g.epoch)
            .await?;
        if !pending.set_seq(appended.seq) {
            self.board
                .fault(format!("group {}: members saw another seq", g.index));
        }
        let last = pending.wait(self.timeout).await.ok_or_else(|| {
            LoadError::Server(format!(
                "group {}: message {} reached {} of {fanout} members in {:?}",
                g.index,
                appended.seq,
                fanout - pending.owed(),
                self.timeout
            ))
        })?;
        Ok(Done {
            op: Op::Message,
            latency: last.saturating_duration_since(started),
            welcome_latency: None,
            fanout,
        })
    }
}
