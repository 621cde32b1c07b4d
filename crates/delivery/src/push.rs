//! Push of new entries to connected subscribers: fan-out on read, so a message is one row
//! and one event, whatever the size of the group (DESIGN.md, "The system").
//!
//! Topics are `g.<group id, base64url>` and `m.<mailbox id>`. Without NATS an event goes
//! straight to this node's subscribers. With NATS it is published on the subject
//! `conclave.ds.<topic>`, and a node subscribes to a topic's subject only while at least one
//! of its own clients is subscribed to the topic (the NATS subscription is dropped with the
//! last local subscriber), so a node receives the traffic of the groups and mailboxes its
//! clients watch and nothing else.
//!
//! Events are small: a mailbox entry is announced by id and size (a Welcome may be
//! megabytes; the owner fetches it from its cursor), and a group log entry carries its
//! message only up to an inline limit (256 KiB by default, under NATS's 1 MiB
//! `max_payload`); above it the event names the entry and the subscriber reads the log.

use conclave_api::delivery::{Bytes, LogEntry, LogEntryKind, MailboxEntryKind, WsEvent};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OnceCell, broadcast};
use tokio::task::JoinHandle;

/// Prefix of NATS subjects.
pub const SUBJECT_PREFIX: &str = "conclave.ds.";

/// The default inline limit of a pushed group message, in bytes.
pub const DEFAULT_INLINE_LIMIT: usize = 256 * 1024;

/// The topic of a group.
pub fn group_topic(group_id_b64: &str) -> String {
    format!("g.{group_id_b64}")
}

/// Pushes buffered for a mailbox topic. A broadcast channel allocates its whole buffer up
/// front, and every connected device has a mailbox topic of its own, so a group-sized
/// buffer there would cost each connection tens of KiB. A mailbox push only announces an
/// entry the owner then reads from its cursor, and one that overflows this buffer becomes
/// a `Lagged` notice, after which the owner re-reads anyway.
const MAILBOX_TOPIC_CAPACITY: usize = 16;

/// The buffer of `topic`'s channel: `capacity` for a group, less for a mailbox.
fn topic_capacity(topic: &str, capacity: usize) -> usize {
    if topic.starts_with("m.") {
        capacity.min(MAILBOX_TOPIC_CAPACITY)
    } else {
        capacity
    }
}

/// The topic of a mailbox.
pub fn mailbox_topic(mailbox_id: &str) -> String {
    format!("m.{mailbox_id}")
}

/// An event and its JSON text, serialised once for all subscribers.
#[derive(Debug)]
pub struct Pushed {
    /// The event.
    pub event: WsEvent,
    /// Its JSON.
    pub text: axum::extract::ws::Utf8Bytes,
}

impl Pushed {
    /// Wraps an event with its JSON.
    pub fn new(event: WsEvent) -> Arc<Self> {
        let json = serde_json::to_string(&event).unwrap_or_default();
        Self::with_json(event, json)
    }

    fn with_json(event: WsEvent, json: String) -> Arc<Self> {
        Arc::new(Pushed {
            event,
            text: json.into(),
        })
    }
}

/// NATS could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("NATS: {0}")]
pub struct PushError(pub String);

/// A new group log entry, as the store accepted it.
#[derive(Debug)]
pub struct GroupEntry<'a> {
    /// The group id (raw bytes).
    pub group_id: &'a [u8],
    /// Its sequence number.
    pub seq: u64,
    /// The epoch it was sent in.
    pub epoch: u64,
    /// What it is.
    pub kind: LogEntryKind,
    /// The `MLSMessage`.
    pub message: &'a [u8],
}

/// The event announcing a group log entry: inline up to `inline_limit` bytes of message,
/// a notice without the message above.
pub fn group_event(entry: &GroupEntry<'_>, inline_limit: usize) -> WsEvent {
    let group_id = Bytes(entry.group_id.to_vec()).to_base64();
    if entry.message.len() <= inline_limit {
        WsEvent::GroupEntry {
            group_id,
            entry: LogEntry {
                seq: entry.seq,
                epoch: entry.epoch,
                kind: entry.kind,
                message: Bytes(entry.message.to_vec()),
            },
        }
    } else {
        WsEvent::GroupEntryNotice {
            group_id,
            seq: entry.seq,
            epoch: entry.epoch,
            kind: entry.kind,
            size: entry.message.len() as u64,
        }
    }
}

/// The event announcing a mailbox entry: its id, kind and size, never its bytes.
pub fn mailbox_event(
    mailbox_id: &[u8],
    entry_id: i64,
    kind: MailboxEntryKind,
    size: usize,
) -> WsEvent {
    WsEvent::MailboxEntry {
        mailbox_id: Bytes(mailbox_id.to_vec()).to_base64(),
        entry_id,
        kind,
        size: size as u64,
    }
}

/// The topic of an event.
pub fn topic_of(event: &WsEvent) -> Option<String> {
    match event {
        WsEvent::GroupEntry { group_id, .. } | WsEvent::GroupEntryNotice { group_id, .. } => {
            Some(group_topic(group_id))
        }
        WsEvent::MailboxEntry { mailbox_id, .. } => Some(mailbox_topic(mailbox_id)),
        _ => None,
    }
}

/// The NATS subscription of one topic: a task that forwards what arrives to the topic's
/// local channel. Dropping it aborts the task, which drops the subscriber and so sends
/// `UNSUB`.
#[derive(Debug)]
struct Relay(JoinHandle<()>);

impl Drop for Relay {
    fn drop(&mut self) {
        metrics::gauge!("ds_nats_subscriptions").decrement(1.0);
        self.0.abort();
    }
}

/// A topic with at least one local subscriber.
#[derive(Debug)]
struct Topic {
    sender: broadcast::Sender<Arc<Pushed>>,
    subscribers: usize,
    /// With NATS: the subject's subscription, made by the first local subscriber.
    relay: Arc<OnceCell<Relay>>,
}

/// This node's subscribers, by topic.
#[derive(Debug)]
struct Hub {
    topics: Mutex<HashMap<String, Topic>>,
    capacity: usize,
    /// Events received from NATS (a test hook: a node without subscribers receives none).
    received: AtomicU64,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Topic>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands an event to this node's subscribers of `topic` (without NATS).
    fn deliver(&self, topic: &str, event: Arc<Pushed>) {
        let sender = self.lock().get(topic).map(|t| t.sender.clone());
        if let Some(sender) = sender {
            let delivered = sender.send(event).unwrap_or(0);
            metrics::counter!("ds_push_deliveries_total").increment(delivered as u64);
        }
    }

    /// One local subscriber fewer; the last one removes the topic (and its NATS relay).
    fn leave(&self, topic: &str) {
        let removed = {
            let mut topics = self.lock();
            match topics.get_mut(topic) {
                Some(t) if t.subscribers > 1 => {
                    t.subscribers -= 1;
                    None
                }
                Some(_) => topics.remove(topic),
                None => None,
            }
        };
        // Dropped outside the lock: the relay aborts its task.
        drop(removed);
    }
}

/// A local subscription to a topic; dropping it unsubscribes (and, for the topic's last
/// local subscriber, drops the node's NATS subscription).
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Arc<Pushed>>,
    hub: Arc<Hub>,
    topic: String,
}

impl Subscription {
    /// The next event; `Lagged(n)` when `n` events were dropped because this subscriber
    /// fell behind.
    pub async fn recv(&mut self) -> Result<Arc<Pushed>, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.leave(&self.topic);
    }
}

/// Publishes events and hands out subscriptions.
#[derive(Debug, Clone)]
pub struct Push {
    hub: Arc<Hub>,
    nats: Option<async_nats::Client>,
    inline_limit: usize,
}

impl Push {
    /// In-process only; `capacity` events are buffered per topic for a slow subscriber.
    pub fn local(capacity: usize, inline_limit: usize) -> Self {
        Push {
            hub: Arc::new(Hub {
                topics: Mutex::default(),
                capacity: capacity.max(1),
                received: AtomicU64::new(0),
            }),
            nats: None,
            inline_limit,
        }
    }

    /// Through NATS: connects; topics are subscribed to on demand.
    pub async fn nats(url: &str, capacity: usize, inline_limit: usize) -> Result<Self, PushError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| PushError(e.to_string()))?;
        let mut push = Self::local(capacity, inline_limit);
        push.nats = Some(client);
        Ok(push)
    }

    /// The largest group message pushed inline.
    pub fn inline_limit(&self) -> usize {
        self.inline_limit
    }

    /// How many events this node received from NATS.
    pub fn received_from_nats(&self) -> u64 {
        self.hub.received.load(Ordering::Relaxed)
    }

    /// How many topics have local subscribers (with NATS: how many subjects this node is
    /// subscribed to).
    pub fn topics(&self) -> usize {
        self.hub.lock().len()
    }

    /// Subscribes to a topic on this node. With NATS, the first local subscriber of a topic
    /// subscribes the node to its subject and waits until the NATS server has processed the
    /// subscription, so nothing published after this returns is missed.
    pub async fn subscribe(&self, topic: &str) -> Result<Subscription, PushError> {
        let (receiver, sender, relay) = {
            let mut topics = self.hub.lock();
            let t = topics.entry(topic.to_string()).or_insert_with(|| Topic {
                sender: broadcast::channel(topic_capacity(topic, self.hub.capacity)).0,
                subscribers: 0,
                relay: Arc::default(),
            });
            t.subscribers += 1;
            (t.sender.subscribe(), t.sender.clone(), t.relay.clone())
        };
        let subscription = Subscription {
            receiver,
            hub: self.hub.clone(),
            topic: topic.to_string(),
        };
        if let Some(client) = &self.nats {
            relay
                .get_or_try_init(|| relay_topic(client, self.hub.clone(), topic, sender))
                .await?;
        }
        Ok(subscription)
    }

    /// Publishes an event to its topic's subscribers on every node.
    pub async fn publish(&self, event: WsEvent) {
        let Some(topic) = topic_of(&event) else {
            return;
        };
        let json = match serde_json::to_string(&event) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "push encoding");
                return;
            }
        };
        match &self.nats {
            None => self.hub.deliver(&topic, Pushed::with_json(event, json)),
            Some(client) => {
                if let Err(e) = client
                    .publish(format!("{SUBJECT_PREFIX}{topic}"), json.into_bytes().into())
                    .await
                {
                    // The entry is stored: subscribers still read it from their cursor.
                    tracing::warn!(error = %e, "NATS publish failed");
                }
            }
        }
    }

    /// Publishes a group log entry (inline or as a notice, by size).
    pub async fn publish_group_entry(&self, entry: &GroupEntry<'_>) {
        self.publish(group_event(entry, self.inline_limit)).await;
    }
}

/// Subscribes the node to a topic's subject and forwards what arrives to `sender`. Returns
/// once the NATS server has processed the subscription: a probe published on the same
/// connection after it has come back.
async fn relay_topic(
    client: &async_nats::Client,
    hub: Arc<Hub>,
    topic: &str,
    sender: broadcast::Sender<Arc<Pushed>>,
) -> Result<Relay, PushError> {
    let nats = |e: &dyn std::fmt::Display| PushError(e.to_string());
    let mut subscriber = client
        .subscribe(format!("{SUBJECT_PREFIX}{topic}"))
        .await
        .map_err(|e| nats(&e))?;
    let inbox = client.new_inbox();
    let mut probe = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| nats(&e))?;
    client
        .publish(inbox, Default::default())
        .await
        .map_err(|e| nats(&e))?;
    tokio::time::timeout(std::time::Duration::from_secs(10), probe.next())
        .await
        .map_err(|_| PushError("no answer from NATS".into()))?
        .ok_or_else(|| PushError("NATS connection closed".into()))?;
    drop(probe);
    metrics::gauge!("ds_nats_subscriptions").increment(1.0);
    let task = tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            hub.received.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("ds_nats_received_total").increment(1);
            let Ok(json) = String::from_utf8(message.payload.to_vec()) else {
                continue;
            };
            match serde_json::from_str::<WsEvent>(&json) {
                Ok(event) => {
                    let delivered = sender.send(Pushed::with_json(event, json)).unwrap_or(0);
                    metrics::counter!("ds_push_deliveries_total").increment(delivered as u64);
                }
                Err(e) => tracing::warn!(error = %e, "undecodable push from NATS"),
            }
        }
    });
    Ok(Relay(task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_api::delivery::MailboxEntryKind;

    fn mailbox_entry(mailbox_id: &str, entry_id: i64) -> WsEvent {
        WsEvent::MailboxEntry {
            mailbox_id: mailbox_id.into(),
            entry_id,
            kind: MailboxEntryKind::Welcome,
            size: 1,
        }
    }

    #[tokio::test]
    async fn a_mailbox_subscriber_past_its_small_buffer_is_told_it_lagged() {
        let push = Push::local(1024, 1 << 16);
        let mut sub = push.subscribe(&mailbox_topic("mb")).await.unwrap();
        let burst = MAILBOX_TOPIC_CAPACITY as i64 + 4;
        for id in 0..burst {
            push.publish(mailbox_entry("mb", id)).await;
        }
        // The oldest pushes were dropped and the subscriber learns how many; the newest
        // ones, up to the buffer, still arrive, in order.
        match sub.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 4),
            other => panic!("expected a lag, got {other:?}"),
        }
        match sub.recv().await.map(|p| p.event.clone()) {
            Ok(WsEvent::MailboxEntry { entry_id, .. }) => assert_eq!(entry_id, 4),
            other => panic!("expected entry 4, got {other:?}"),
        }
        // A group topic keeps the configured buffer.
        assert_eq!(topic_capacity(&group_topic("g"), 1024), 1024);
    }
}
