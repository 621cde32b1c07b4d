//! Push of new entries to connected subscribers: fan-out on read, so a message is one row
//! and one event, whatever the size of the group (DESIGN.md, "The system").
//!
//! Topics are `g.<group id, base64url>` and `m.<mailbox id>`. Without NATS an event goes
//! straight to this node's subscribers. With NATS it is published on the subject
//! `conclave.ds.<topic>` and every node (this one included) hands what arrives on
//! `conclave.ds.>` to its own subscribers, so a message accepted by node A reaches a
//! subscriber connected to node B.

use conclave_api::delivery::WsEvent;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Prefix of NATS subjects.
pub const SUBJECT_PREFIX: &str = "conclave.ds.";

/// The topic of a group.
pub fn group_topic(group_id_b64: &str) -> String {
    format!("g.{group_id_b64}")
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
    fn new(event: WsEvent, json: String) -> Arc<Self> {
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

/// This node's subscribers, by topic.
#[derive(Debug, Default)]
pub struct Hub {
    topics: Mutex<HashMap<String, broadcast::Sender<Arc<Pushed>>>>,
}

impl Hub {
    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<Pushed>> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .entry(topic.to_string())
            .or_insert_with(|| broadcast::channel(1024).0)
            .subscribe()
    }

    fn deliver(&self, topic: &str, event: Arc<Pushed>) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = topics.get(topic) {
            let delivered = sender.send(event).unwrap_or(0);
            metrics::counter!("ds_push_deliveries_total").increment(delivered as u64);
            if sender.receiver_count() == 0 {
                topics.remove(topic);
            }
        }
    }
}

/// Publishes events and hands out subscriptions.
#[derive(Debug, Clone)]
pub struct Push {
    hub: Arc<Hub>,
    nats: Option<async_nats::Client>,
}

/// The topic of an event.
pub fn topic_of(event: &WsEvent) -> Option<String> {
    match event {
        WsEvent::GroupEntry { group_id, .. } => Some(group_topic(group_id)),
        WsEvent::MailboxEntry { mailbox_id, .. } => Some(mailbox_topic(mailbox_id)),
        _ => None,
    }
}

impl Push {
    /// In-process only.
    pub fn local() -> Self {
        Push {
            hub: Arc::default(),
            nats: None,
        }
    }

    /// Through NATS: connects, and forwards what arrives to this node's subscribers.
    pub async fn nats(url: &str) -> Result<Self, PushError> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| PushError(e.to_string()))?;
        let hub: Arc<Hub> = Arc::default();
        let mut sub = client
            .subscribe(format!("{SUBJECT_PREFIX}>"))
            .await
            .map_err(|e| PushError(e.to_string()))?;
        let forward = hub.clone();
        tokio::spawn(async move {
            while let Some(message) = sub.next().await {
                let Some(topic) = message.subject.as_str().strip_prefix(SUBJECT_PREFIX) else {
                    continue;
                };
                let Ok(json) = String::from_utf8(message.payload.to_vec()) else {
                    continue;
                };
                match serde_json::from_str::<WsEvent>(&json) {
                    Ok(event) => forward.deliver(topic, Pushed::new(event, json)),
                    Err(e) => tracing::warn!(error = %e, "undecodable push from NATS"),
                }
            }
        });
        Ok(Push {
            hub,
            nats: Some(client),
        })
    }

    /// Subscribes to a topic on this node.
    pub fn subscribe(&self, topic: &str) -> broadcast::Receiver<Arc<Pushed>> {
        self.hub.subscribe(topic)
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
            None => self.hub.deliver(&topic, Pushed::new(event, json)),
            Some(client) => {
                let payload = json.into_bytes();
                if let Err(e) = client
                    .publish(format!("{SUBJECT_PREFIX}{topic}"), payload.into())
                    .await
                {
                    // The entry is stored: subscribers still read it from their cursor.
                    tracing::warn!(error = %e, "NATS publish failed");
                }
            }
        }
    }
}
