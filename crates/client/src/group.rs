//! Groups: create, add and remove users, leave, send, and read the group log (DESIGN flows
//! 4, 5). Every commit is recorded before it is submitted, with what it is for, so that a
//! commit that lost its epoch to another (HTTP 409) is rebuilt on the winner and submitted
//! again — also after a crash (RFC 9420 §14, RFC 9750 §5.2).

use crate::delivery::CommitOutcome;
use crate::device::{Device, Inner, open_key_package};
use crate::directory::{self, VerifiedDevice};
use crate::error::Error;
use crate::event::{DeviceName, Event, GroupId, Message};
use crate::state::*;
use crate::store::{Batch, Kind};
use conclave_api::delivery::{Bytes, CommitRequest, LogEntry, LogEntryKind, WelcomeDelivery};
use conclave_mls::codec::{Decode as _, Encode as _};
use conclave_mls::group::HandshakeWireFormat;
use conclave_mls::messages::{MlsMessageBody, Proposal, Remove};
use conclave_mls::{Group, GroupConfig, MlsMessage, Received, RustCrypto};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// The exporter label of the group auth key the DS checks (DESIGN "The Delivery Service
/// knows"): each epoch's key comes from that epoch's exporter secret (RFC 9420 §8.5).
pub(crate) const AUTH_KEY_LABEL: &[u8] = b"conclave ds group auth key";

/// How many times a commit is rebuilt after losing its epoch before giving up.
const MAX_ATTEMPTS: u32 = 16;

/// Every group's configuration: handshakes as PrivateMessages, so the DS sees no sender,
/// credential or proposal (RFC 9420 §6.3, RFC 9750 §8.1).
pub(crate) fn config() -> GroupConfig {
    GroupConfig::default().with_handshake_wire_format(HandshakeWireFormat::Private)
}

/// What an application message carries.
#[derive(Serialize, Deserialize)]
pub(crate) enum Payload {
    /// A message for the application.
    Chat {
        /// Its bytes.
        body: Bytes,
    },
    /// In the self group: what a device knows about the user's devices and contacts.
    SelfSync {
        siblings: Vec<Card>,
        contacts: Vec<ContactRecord>,
    },
}

pub(crate) fn auth_key(provider: &RustCrypto, group: &Group) -> Result<SigningKey, Error> {
    let secret = group.export_secret(provider, AUTH_KEY_LABEL, b"", 32)?;
    Ok(SigningKey::from_bytes(&seed(secret.as_bytes())))
}

/// The auth key of the epoch the pending commit starts.
pub(crate) fn pending_auth_key(provider: &RustCrypto, group: &Group) -> Result<SigningKey, Error> {
    let secret = group.pending_export_secret(provider, AUTH_KEY_LABEL, b"", 32)?;
    Ok(SigningKey::from_bytes(&seed(secret.as_bytes())))
}

fn seed(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = bytes.len().min(32);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// The members as `(signature key, who)`.
fn members_of(group: &Group) -> Vec<(Vec<u8>, Option<DeviceName>)> {
    group
        .members()
        .map(|m| {
            (
                m.signature_key.to_vec(),
                directory::identity_of(m.credential)
                    .map(|(user, device)| DeviceName { user, device }),
            )
        })
        .collect()
}

impl Device {
    /// Creates a group with this user's devices in it; returns its id.
    pub async fn create_group(&self) -> Result<GroupId, Error> {
        let mut inner = self.inner.lock().await;
        let group = inner.create_group_inner().await?;
        // A user's devices are in every group the user is in (DESIGN flow 6).
        let user = inner.record.user_id.clone();
        let siblings = inner.siblings().await?;
        if !siblings.is_empty() {
            let devices = inner.lookup(&user).await?;
            let pairs = pair(&devices, &siblings);
            inner.add_devices(&group, &pairs).await?;
        }
        Ok(group)
    }

    /// Adds every device of `user` (an accepted contact) to the group in one commit: claims
    /// a KeyPackage from each device's pool, opens it, checks it is the certified,
    /// transparency-proven key of that device, commits the Adds and sends the Welcome to
    /// their mailboxes (DESIGN flow 4).
    pub async fn add_user(&self, group: &GroupId, user: &str) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        let contact: ContactRecord = inner
            .store
            .get(Kind::Contact, user.as_bytes())
            .await?
            .filter(|c: &ContactRecord| c.state == ContactState::Accepted)
            .ok_or_else(|| Error::NotAContact(user.to_owned()))?;
        let devices = inner.lookup(user).await?;
        let pairs = pair(&devices, &contact.cards);
        if !inner.add_devices(group, &pairs).await? {
            return Err(Error::NoKeyPackage(user.to_owned()));
        }
        Ok(())
    }

    /// Removes every device of `user` from the group in one commit.
    pub async fn remove_user(&self, group: &GroupId, user: &str) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        let (_, g) = inner.load_group(group).await?;
        let keys: Vec<Bytes> = members_of(&g)
            .into_iter()
            .filter(|(_, who)| who.as_ref().is_some_and(|w| w.user == user))
            .map(|(key, _)| Bytes(key))
            .collect();
        if keys.is_empty() {
            return Err(Error::NotAContact(user.to_owned()));
        }
        inner.remove_keys(group, keys).await.map(|_| ())
    }

    /// Asks to leave the group: sends a Remove proposal for this device, which the next
    /// member to commit includes (a member cannot commit its own removal, RFC 9420 §12.2).
    pub async fn leave(&self, group: &GroupId) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        inner.sync_group(group).await?;
        inner.finish_pending(group).await?;
        inner.propose_leave(group).await
    }

    /// Sends `body` to the group.
    pub async fn send(&self, group: &GroupId, body: &[u8]) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        let payload = Payload::Chat {
            body: Bytes(body.to_vec()),
        };
        inner.send_payload(group, &payload).await
    }

    /// The group's members.
    pub async fn members(&self, group: &GroupId) -> Result<Vec<DeviceName>, Error> {
        let inner = self.inner.lock().await;
        let (_, g) = inner.load_group(group).await?;
        Ok(members_of(&g)
            .into_iter()
            .filter_map(|(_, who)| who)
            .collect())
    }

    /// The groups this device is in (the self group excluded).
    pub async fn groups(&self) -> Result<Vec<GroupId>, Error> {
        let inner = self.inner.lock().await;
        let self_group = inner.record.self_group.clone();
        Ok(inner
            .group_ids()
            .await?
            .into_iter()
            .filter(|g| self_group.as_ref().is_none_or(|s| s.0 != g.0))
            .collect())
    }

    /// Refreshes this device's keys in the group: a commit with a fresh leaf and path, so
    /// that a past compromise of this device's group secrets no longer reads what follows
    /// (post-compromise security, RFC 9420 §12.4). Rebuilt if another commit wins the epoch.
    pub async fn update(&self, group: &GroupId) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        inner.run_commit(group, Intent::Update).await
    }

    /// A code for comparing the group's state with another member out of band (read aloud
    /// or shown side by side): 30 digits in six groups, from the epoch authenticator (RFC
    /// 9420 §8.7). Two members holding the same code share the same epoch and secrets; it
    /// changes with every epoch.
    pub async fn verification_code(&self, group: &GroupId) -> Result<(u64, String), Error> {
        let inner = self.inner.lock().await;
        let (_, g) = inner.load_group(group).await?;
        Ok((g.epoch(), verification_code(g.epoch_authenticator())))
    }

    /// The groups this device was removed from (kept so their history stays readable).
    pub async fn former_groups(&self) -> Result<Vec<GroupId>, Error> {
        let inner = self.inner.lock().await;
        inner.group_ids_where(true).await
    }

    /// The last `limit` messages of the group, oldest first: those this device received
    /// and those it sent (kept sealed in its store, also after their events are
    /// acknowledged).
    pub async fn history(&self, group: &GroupId, limit: u32) -> Result<Vec<Message>, Error> {
        let inner = self.inner.lock().await;
        inner.store.history(&group.0, limit).await
    }

    /// The group's epoch as this device holds it.
    pub async fn epoch(&self, group: &GroupId) -> Result<u64, Error> {
        let inner = self.inner.lock().await;
        Ok(inner.load_group(group).await?.1.epoch())
    }
}

/// Six groups of five decimal digits, each from 32 bits of `authenticator` reduced mod
/// 10^5 (bias below 2^-15 per group: irrelevant for a human comparison).
fn verification_code(authenticator: &[u8]) -> String {
    authenticator
        .chunks_exact(4)
        .take(6)
        .map(|c| {
            let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            format!("{:05}", n % 100_000)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Each verified device with its card (devices without a card cannot be added).
fn pair(devices: &[VerifiedDevice], cards: &[Card]) -> Vec<(VerifiedDevice, Card)> {
    devices
        .iter()
        .filter_map(|d| {
            cards
                .iter()
                .find(|c| c.device_id == d.device_id && c.user_id == d.user_id)
                .map(|c| (d.clone(), c.clone()))
        })
        .collect()
}

impl Inner {
    pub(crate) async fn load_group(&self, id: &GroupId) -> Result<(GroupRecord, Group), Error> {
        let record: GroupRecord = self
            .store
            .get(Kind::Group, &id.0)
            .await?
            .ok_or(Error::UnknownGroup)?;
        let group = Group::import_state(&record.state.0, self.validator.clone())?;
        Ok((record, group))
    }

    async fn save_group(&self, mut record: GroupRecord, group: &Group) -> Result<(), Error> {
        record.state = Bytes(group.export_state()?);
        let mut batch = Batch::default();
        batch.put(Kind::Group, &record.group_id.0.clone(), &record)?;
        self.store.apply(batch).await
    }

    /// Each group this device is in, with its epoch and that epoch's group auth key.
    pub(crate) async fn group_keys(&self) -> Result<Vec<(Vec<u8>, u64, SigningKey)>, Error> {
        let mut out = Vec::new();
        for id in self.group_ids().await? {
            let (_, g) = self.load_group(&id).await?;
            out.push((id.0, g.epoch(), auth_key(&self.provider, &g)?));
        }
        Ok(out)
    }

    /// The groups this device is still in.
    pub(crate) async fn group_ids(&self) -> Result<Vec<GroupId>, Error> {
        self.group_ids_where(false).await
    }

    /// The groups this device was (`removed`) or still is (`!removed`) in, sorted.
    async fn group_ids_where(&self, removed: bool) -> Result<Vec<GroupId>, Error> {
        let mut ids: Vec<GroupId> = self
            .store
            .list::<GroupRecord>(Kind::Group)
            .await?
            .into_iter()
            .filter(|g| g.removed == removed)
            .map(|g| GroupId(g.group_id.0))
            .collect();
        ids.sort();
        Ok(ids)
    }

    pub(crate) async fn create_group_inner(&mut self) -> Result<GroupId, Error> {
        let id = crate::net::random::<16>()?.to_vec();
        let group = Group::builder(&self.identity(), self.validator.clone())
            .group_id(id.clone())
            .config(config())
            .build(&self.provider)?;
        let (ds, key, gid) = (&self.ds, &auth_key(&self.provider, &group)?, &id);
        self.paid(|token| async move { ds.create_group(gid, key, token.as_ref()).await })
            .await?;
        let record = GroupRecord {
            group_id: Bytes(id.clone()),
            state: Bytes(Vec::new()),
            next_seq: 1,
            pending: None,
            retry: None,
            removed: false,
            leaving: None,
        };
        self.save_group(record, &group).await?;
        Ok(GroupId(id))
    }

    /// Claims and checks one KeyPackage for each device not yet in the group and commits
    /// their Adds; whether any device was added.
    pub(crate) async fn add_devices(
        &mut self,
        group: &GroupId,
        devices: &[(VerifiedDevice, Card)],
    ) -> Result<bool, Error> {
        let (record, g) = self.load_group(group).await?;
        if record.removed {
            return Err(Error::NotAMember);
        }
        let present: Vec<Vec<u8>> = members_of(&g).into_iter().map(|(k, _)| k).collect();
        let mut adds = Vec::new();
        for (device, card) in devices {
            if present.contains(&device.signature_key) {
                continue;
            }
            let (ds, pool, secret) = (&self.ds, &card.pool_id, &card.claim_secret.0);
            let claimed = match ds.claim(pool, secret, None).await {
                // Past the pool's free rate: a Privacy Pass token pays for the claim.
                Err(e) if e.code() == Some("rate_limited") => {
                    self.paid(|token| async move { ds.claim(pool, secret, token.as_ref()).await })
                        .await?
                }
                other => other?,
            };
            let Some(claimed) = claimed else {
                tracing::warn!(device = %device.device_id, "pool empty; device not added");
                continue;
            };
            let bytes = open_key_package(&self.provider, card, &claimed.sealed.0)?;
            let message = MlsMessage::decode(&bytes)?;
            let MlsMessageBody::KeyPackage(key_package) = &message.body else {
                return Err(Error::Verification {
                    subject: device.user_id.clone(),
                    reason: "a claimed blob is not a KeyPackage".into(),
                });
            };
            // The KeyPackage must be signed by the certified, transparency-proven key of
            // exactly this device (its signature and chain are checked by the commit).
            let leaf = key_package.leaf_node();
            let names = directory::identity_of(&leaf.content.credential);
            if leaf.content.signature_key.as_slice() != device.signature_key.as_slice()
                || names != Some((device.user_id.clone(), device.device_id.clone()))
            {
                return Err(Error::Verification {
                    subject: device.user_id.clone(),
                    reason: format!(
                        "the KeyPackage claimed for device {} is not that device's",
                        device.device_id
                    ),
                });
            }
            adds.push((Bytes(bytes), card.clone()));
        }
        if adds.is_empty() {
            return Ok(false);
        }
        self.run_commit(group, Intent::Add(adds)).await?;
        Ok(true)
    }

    /// Removes the members with these signature keys; whether any was a member.
    pub(crate) async fn remove_keys(
        &mut self,
        group: &GroupId,
        keys: Vec<Bytes>,
    ) -> Result<bool, Error> {
        let (record, g) = self.load_group(group).await?;
        if record.removed {
            return Ok(false);
        }
        let present: Vec<Vec<u8>> = members_of(&g).into_iter().map(|(k, _)| k).collect();
        let keys: Vec<Bytes> = keys
            .into_iter()
            .filter(|k| present.contains(&k.0))
            .collect();
        if keys.is_empty() {
            return Ok(false);
        }
        // Our own leaf cannot be committed away by us; a revoked own device leaves instead.
        let own = self.identity().signature_key.as_slice().to_vec();
        if keys.iter().any(|k| k.0 == own) {
            self.propose_leave(group).await?;
            return Ok(true);
        }
        self.run_commit(group, Intent::Remove(keys)).await?;
        Ok(true)
    }

    /// Records `intent` and drives it to an accepted commit.
    async fn run_commit(&mut self, group: &GroupId, intent: Intent) -> Result<(), Error> {
        self.sync_group(group).await?;
        self.finish_pending(group).await?;
        let (mut record, _) = self.load_group(group).await?;
        if record.removed {
            return Err(Error::NotAMember);
        }
        record.retry = Some(intent);
        let mut batch = Batch::default();
        batch.put(Kind::Group, &group.0, &record)?;
        self.store.apply(batch).await?;
        self.finish_pending(group).await
    }

    /// Submits the recorded pending commit, or builds one from the recorded intent, until
    /// nothing is left to do.
    pub(crate) async fn finish_pending(&mut self, group: &GroupId) -> Result<(), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let (mut record, mut g) = self.load_group(group).await?;
            if record.removed {
                return Ok(());
            }
            if let Some(pending) = record.pending.clone() {
                let key = auth_key(&self.provider, &g)?;
                match self
                    .ds
                    .commit(&group.0, &pending.request, &key, pending.epoch)
                    .await
                {
                    // Either way the log now shows which commit won; reading it merges ours
                    // or records the intent for a rebuild.
                    Ok(outcome) => {
                        match outcome {
                            CommitOutcome::Accepted(seq) => {
                                tracing::debug!(seq, "commit accepted")
                            }
                            CommitOutcome::Lost(epoch) => {
                                tracing::debug!(epoch, "commit lost its epoch; rebuilding")
                            }
                        }
                        self.sync_group(group).await?;
                        let (after, _) = self.load_group(group).await?;
                        if after.pending.is_some() {
                            // The log does not show the epoch's commit yet (a DS node that
                            // has not seen it): try again.
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    }
                    Err(Error::Refused {
                        status,
                        code,
                        message,
                        service,
                    }) if status != 429 => {
                        // The DS will never take this commit: drop it, keep the group usable.
                        g.clear_pending_commit();
                        record.pending = None;
                        self.save_group(record, &g).await?;
                        return Err(Error::Refused {
                            service,
                            status,
                            code,
                            message,
                        });
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
            if let Some(intent) = record.retry.take() {
                // (Nothing left to commit when the winner already did it.)
                record.pending = self.build_commit(&mut g, intent)?;
                // The pending commit and its group state are on disk before the DS sees it.
                self.save_group(record, &g).await?;
                continue;
            }
            if record.leaving.is_some_and(|epoch| epoch < g.epoch()) {
                self.propose_leave(group).await?;
            }
            return Ok(());
        }
        Err(Error::Contention(MAX_ATTEMPTS))
    }

    fn build_commit(&self, g: &mut Group, intent: Intent) -> Result<Option<PendingCommit>, Error> {
        let present: Vec<Vec<u8>> = members_of(g).into_iter().map(|(k, _)| k).collect();
        let (out, intent, mailboxes) = match intent {
            Intent::Add(adds) => {
                let mut kept = Vec::new();
                let mut builder_adds = Vec::new();
                for (bytes, card) in adds {
                    let message = MlsMessage::decode(&bytes.0)?;
                    let MlsMessageBody::KeyPackage(kp) = message.body else {
                        continue;
                    };
                    if present.contains(&kp.leaf_node().content.signature_key.as_slice().to_vec()) {
                        continue;
                    }
                    builder_adds.push(kp);
                    kept.push((bytes, card));
                }
                if builder_adds.is_empty() {
                    return Ok(None);
                }
                let mut builder = g.commit();
                for kp in builder_adds {
                    builder = builder.add_member(kp);
                }
                let out = builder.build(&self.provider)?;
                let mailboxes = kept.iter().map(|(_, c)| c.mailbox_id.clone()).collect();
                (out, Intent::Add(kept), mailboxes)
            }
            Intent::Remove(keys) => {
                let leaves: Vec<_> = g
                    .members()
                    .filter(|m| keys.iter().any(|k| k.0 == m.signature_key))
                    .map(|m| m.leaf)
                    .collect();
                if leaves.is_empty() {
                    return Ok(None);
                }
                let mut builder = g.commit();
                for leaf in leaves {
                    builder = builder.remove_member(leaf);
                }
                (
                    builder.build(&self.provider)?,
                    Intent::Remove(keys),
                    Vec::new(),
                )
            }
            // A commit without proposals carries a path: it is the update (§12.4).
            Intent::Proposals | Intent::Update => {
                (g.commit().build(&self.provider)?, intent, Vec::new())
            }
        };
        let next = g.pending_export_secret(&self.provider, AUTH_KEY_LABEL, b"", 32)?;
        let next_seed = seed(next.as_bytes());
        let next_key = SigningKey::from_bytes(&next_seed);
        let welcomes = match out.welcome {
            Some(welcome) if !mailboxes.is_empty() => vec![WelcomeDelivery {
                welcome: Bytes(welcome.encode()?),
                mailboxes,
            }],
            _ => Vec::new(),
        };
        Ok(Some(PendingCommit {
            epoch: g.epoch(),
            request: CommitRequest {
                commit: Bytes(out.commit.encode()?),
                next_auth_key: Bytes(next_key.verifying_key().to_bytes().to_vec()),
                welcomes,
                group_info: None,
            },
            next_auth_seed: Bytes(next_seed.to_vec()),
            intent,
        }))
    }

    async fn propose_leave(&mut self, group: &GroupId) -> Result<(), Error> {
        let (mut record, mut g) = self.load_group(group).await?;
        if record.removed {
            return Ok(());
        }
        let message = g.propose(
            &self.provider,
            Proposal::Remove(Remove {
                removed: g.own_leaf().0,
            }),
        )?;
        let epoch = g.epoch();
        let key = auth_key(&self.provider, &g)?;
        record.leaving = Some(epoch);
        self.save_group(record, &g).await?;
        self.ds
            .post(&group.0, message.encode()?, &key, epoch)
            .await?;
        Ok(())
    }

    /// Encrypts and appends an application message.
    pub(crate) async fn send_payload(
        &mut self,
        group: &GroupId,
        payload: &Payload,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(payload).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.sync_group(group).await?;
        self.finish_pending(group).await?;
        for _ in 0..MAX_ATTEMPTS {
            let (record, mut g) = self.load_group(group).await?;
            if record.removed {
                return Err(Error::NotAMember);
            }
            let message = g
                .encrypt_application(&self.provider, &bytes, b"")?
                .encode()?;
            let epoch = g.epoch();
            let key = auth_key(&self.provider, &g)?;
            // The advanced sending ratchet is on disk before the ciphertext leaves: a crash
            // must never make us encrypt twice under one key and nonce (RFC 9420 §9.1).
            self.save_group(record, &g).await?;
            match self.ds.post(&group.0, message, &key, epoch).await {
                Ok(_) => {
                    if let Payload::Chat { body } = payload {
                        let mut batch = Batch::default();
                        batch.history(
                            &group.0,
                            &Message {
                                sender: DeviceName {
                                    user: self.record.user_id.clone(),
                                    device: self.record.device_id.clone(),
                                },
                                body: body.0.clone(),
                                at: crate::net::now(),
                            },
                        )?;
                        self.store.apply(batch).await?;
                    }
                    return Ok(());
                }
                Err(e) if e.code() == Some("wrong_epoch") => {
                    self.sync_group(group).await?;
                    self.finish_pending(group).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Contention(MAX_ATTEMPTS))
    }

    /// Reads the group log from the cursor and handles every entry, a page at a time; each
    /// page's group state, cursor and events are stored together.
    ///
    /// The DS orders the log, but what it serves is checked rather than trusted (RFC 9750
    /// §6: a DS can reorder, duplicate, replay, withhold or alter entries): entries are taken
    /// once each, by increasing sequence number, none from before the cursor; an entry of a
    /// later epoch than the device's, or a commit of its epoch that does not process, stops
    /// the cursor in front of it, so a withheld or altered commit is read again — and the
    /// group follows — once the DS serves it; MLS refuses forged and replayed messages.
    pub(crate) async fn sync_group(&mut self, group: &GroupId) -> Result<(), Error> {
        loop {
            let (mut record, mut g) = self.load_group(group).await?;
            if record.removed {
                return Ok(());
            }
            let epoch = g.epoch();
            let key = auth_key(&self.provider, &g)?;
            let mut page = self.ds.log(&group.0, record.next_seq, &key, epoch).await?;
            let served = page.entries.len();
            page.entries.retain(|e| e.seq >= record.next_seq);
            page.entries.sort_by_key(|e| e.seq);
            page.entries.dedup_by_key(|e| e.seq);
            if page.entries.len() != served {
                tracing::warn!(
                    served,
                    kept = page.entries.len(),
                    "the DS served log entries out of order, twice or from before the cursor"
                );
            }
            if page.entries.is_empty() {
                return Ok(());
            }
            let start = record.next_seq;
            let mut blocked = false;
            let mut batch = Batch::default();
            for entry in &page.entries {
                if self
                    .handle_entry(group, &mut record, &mut g, entry, &mut batch)
                    .await?
                    == Handled::Blocked
                {
                    blocked = true;
                    break;
                }
                record.next_seq = entry.seq.saturating_add(1);
                if record.removed || g.epoch() != epoch {
                    break;
                }
            }
            if record.next_seq == start {
                // Nothing taken: the first entry waits for a commit the DS has not served.
                return Ok(());
            }
            record.state = Bytes(g.export_state()?);
            batch.put(Kind::Group, &group.0, &record)?;
            self.store.apply(batch).await?;
            if blocked {
                return Ok(());
            }
        }
    }

    async fn handle_entry(
        &mut self,
        group: &GroupId,
        record: &mut GroupRecord,
        g: &mut Group,
        entry: &LogEntry,
        batch: &mut Batch,
    ) -> Result<Handled, Error> {
        if entry.kind == LogEntryKind::ExternalCommit {
            tracing::warn!(
                seq = entry.seq,
                "external commits are not handled by this client"
            );
            return Ok(Handled::Taken);
        }
        let message = match MlsMessage::decode(&entry.message.0) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(seq = entry.seq, "undecodable log entry skipped: {e}");
                return Ok(Handled::Taken);
            }
        };
        // The epoch the message itself names (not the DS's label of it): a later one than
        // this device's means a commit it has not processed comes first (RFC 9420 §6).
        let message_epoch = match &message.body {
            MlsMessageBody::PrivateMessage(m) => Some(m.epoch),
            MlsMessageBody::PublicMessage(m) => Some(m.content.epoch),
            _ => None,
        };
        if message_epoch.is_some_and(|e| e > g.epoch()) {
            tracing::warn!(
                seq = entry.seq,
                "a message of a later epoch before its commit: waiting for the commit"
            );
            return Ok(Handled::Blocked);
        }
        // A commit of this epoch that fails to process is held on to when nothing of this
        // device's was staged for it: it is the epoch's only commit (the DS takes one), so
        // the group cannot move on without it, and a DS that altered it may serve it whole
        // later.
        let holds = entry.kind == LogEntryKind::Commit
            && message_epoch == Some(g.epoch())
            && record
                .pending
                .as_ref()
                .is_none_or(|p| p.request.commit.0 == entry.message.0);
        if entry.kind == LogEntryKind::Commit {
            if let Some(pending) = record.pending.take() {
                if pending.request.commit.0 == entry.message.0 {
                    record.pending = Some(pending);
                } else {
                    // Another commit won the epoch: ours is dropped and rebuilt on it, unless
                    // it only committed others' proposals, which the winner settled.
                    g.clear_pending_commit();
                    if !matches!(pending.intent, Intent::Proposals) {
                        record.retry = Some(pending.intent);
                    }
                }
            }
        }
        let before = members_of(g);
        let received = match g.process(&self.provider, &message) {
            Ok(r) => r,
            Err(e) if holds => {
                tracing::warn!(seq = entry.seq, "this epoch's commit does not process: {e}");
                return Ok(Handled::Blocked);
            }
            Err(e) => {
                // A message this device cannot use (sent before it joined, or forged) is
                // skipped; the group state is unchanged by a refused message.
                tracing::warn!(seq = entry.seq, "log entry not processed: {e}");
                return Ok(Handled::Taken);
            }
        };
        match received {
            Received::Application { sender, data, .. } => {
                let who = g
                    .member(sender)
                    .and_then(|m| directory::identity_of(m.credential))
                    .map(|(user, device)| DeviceName { user, device });
                let Some(who) = who else {
                    return Ok(Handled::Taken);
                };
                match serde_json::from_slice::<Payload>(&data) {
                    Ok(Payload::Chat { body }) => {
                        batch.history(
                            &group.0,
                            &Message {
                                sender: who.clone(),
                                body: body.0.clone(),
                                at: crate::net::now(),
                            },
                        )?;
                        batch.event(&Event::Message {
                            group: group.clone(),
                            sender: who,
                            body: body.0,
                        })?;
                    }
                    Ok(Payload::SelfSync { siblings, contacts }) => {
                        let own_user = self.record.user_id.clone();
                        let all_ours = members_of(g)
                            .iter()
                            .all(|(_, m)| m.as_ref().is_some_and(|m| m.user == own_user));
                        if who.user == own_user && all_ours {
                            self.merge_self_sync(&group.0, siblings, contacts, batch)
                                .await?;
                        }
                    }
                    Err(e) => tracing::warn!("unreadable application message: {e}"),
                }
            }
            Received::Commit(staged) => {
                let removes_us = staged.removes_us();
                g.merge(*staged)?;
                if removes_us {
                    record.removed = true;
                    record.retry = None;
                    batch.event(&Event::RemovedFromGroup {
                        group: group.clone(),
                    })?;
                } else {
                    membership_events(group, &before, g, batch)?;
                }
            }
            Received::OwnCommit => {
                record.pending = None;
                membership_events(group, &before, g, batch)?;
            }
            Received::Proposal { proposal, .. }
                if matches!(*proposal, Proposal::Remove(_)) && record.retry.is_none() =>
            {
                record.retry = Some(Intent::Proposals);
            }
            _ => {}
        }
        Ok(Handled::Taken)
    }
}

/// What became of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Done with (used, or refused for good): the cursor moves past it.
    Taken,
    /// Not now: it waits for a commit the DS has not served, or is this epoch's commit and
    /// did not process; the cursor stays in front of it.
    Blocked,
}

fn membership_events(
    group: &GroupId,
    before: &[(Vec<u8>, Option<DeviceName>)],
    g: &Group,
    batch: &mut Batch,
) -> Result<(), Error> {
    let after = members_of(g);
    for (key, who) in &after {
        if !before.iter().any(|(k, _)| k == key) {
            if let Some(member) = who.clone() {
                batch.event(&Event::MemberAdded {
                    group: group.clone(),
                    member,
                })?;
            }
        }
    }
    for (key, who) in before {
        if !after.iter().any(|(k, _)| k == key) {
            if let Some(member) = who.clone() {
                batch.event(&Event::MemberRemoved {
                    group: group.clone(),
                    member,
                })?;
            }
        }
    }
    Ok(())
}
