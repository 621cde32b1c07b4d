//! Live events: [`Device::event_stream`] keeps a WebSocket to the DS subscribed to this
//! device's mailbox and to every group it is in (each at its current epoch, signed with
//! that epoch's group auth key), syncs whenever the DS announces something, and hands out
//! the events the sync stored — each once per stream, in order, until acknowledged with
//! [`Device::ack`]. Without a connection (DS down, network lost) it syncs by polling and
//! reconnects with backoff, so nothing waits for the connection to come back.

use crate::delivery::ws_proof;
use crate::device::Device;
use crate::error::{Error, Service};
use crate::event::{Event, EventId};
use conclave_api::delivery::{Bytes, WsEvent, WsRequest};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Frame;

/// How long the stream waits for a push before it syncs anyway (a missed push costs at
/// most this much latency).
const FALLBACK: Duration = Duration::from_secs(15);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Events as they arrive; from [`Device::event_stream`]. Dropping it stops its task.
pub struct EventStream {
    rx: mpsc::Receiver<Result<(EventId, Event), Error>>,
    task: tokio::task::JoinHandle<()>,
}

impl EventStream {
    /// The next event (waits until one arrives), or an error the application should see
    /// (for example [`Error::Refused`] once the device is revoked); `None` only if the
    /// stream's task ended.
    pub async fn next(&mut self) -> Option<Result<(EventId, Event), Error>> {
        self.rx.recv().await
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Device {
    /// A live stream of this device's events, pushed by the DS over WebSocket. It first
    /// hands out the events not yet acknowledged, then new ones as they come. Acknowledge
    /// handled events with [`Device::ack`]; a new stream (after a restart) hands out again
    /// those that were not.
    ///
    /// ```no_run
    /// # async fn demo(device: conclave_client::Device) -> Result<(), conclave_client::Error> {
    /// let mut events = device.event_stream();
    /// while let Some(next) = events.next().await {
    ///     let (id, event) = next?;
    ///     println!("{event:?}");
    ///     device.ack(id).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn event_stream(&self) -> EventStream {
        let (tx, rx) = mpsc::channel(256);
        let task = tokio::spawn(run(self.clone(), tx));
        EventStream { rx, task }
    }
}

type Tx = mpsc::Sender<Result<(EventId, Event), Error>>;

/// Why a connection ended.
enum End {
    /// The application dropped the stream.
    Closed,
    /// The connection failed; reconnect.
    Lost(Error),
}

async fn run(device: Device, tx: Tx) {
    let mut handed = 0i64;
    let mut backoff = Duration::from_millis(100);
    loop {
        match connection(&device, &tx, &mut handed).await {
            End::Closed => return,
            End::Lost(e) => {
                tracing::debug!(error = %e, "event stream connection lost");
                // Keep delivering by polling while the connection is down.
                match pump(&device, &tx, &mut handed).await {
                    Err(End::Closed) => return,
                    Ok(()) => backoff = Duration::from_millis(100),
                    Err(End::Lost(_)) => {}
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = tx.closed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn lost(reason: impl std::fmt::Display) -> End {
    End::Lost(Error::Network {
        service: Service::Delivery,
        reason: reason.to_string(),
    })
}

/// Syncs, then hands out every stored event after `handed`. Network failures end the
/// connection; any other error goes to the application, and the stream goes on.
async fn pump(device: &Device, tx: &Tx, handed: &mut i64) -> Result<(), End> {
    match device.sync().await {
        Ok(()) => {}
        Err(e @ Error::Network { .. }) => return Err(End::Lost(e)),
        Err(e) => {
            if tx.send(Err(e)).await.is_err() {
                return Err(End::Closed);
            }
        }
    }
    loop {
        let events = match device.events_after(*handed, 100).await {
            Ok(events) => events,
            Err(e) => return Err(End::Lost(e)),
        };
        if events.is_empty() {
            return Ok(());
        }
        for (id, event) in events {
            *handed = id.0;
            if tx.send(Ok((id, event))).await.is_err() {
                return Err(End::Closed);
            }
        }
    }
}

async fn connection(device: &Device, tx: &Tx, handed: &mut i64) -> End {
    let base = device.delivery_url().await;
    let url = format!(
        "{}/v1/ws",
        base.replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    );
    let (socket, _) = match tokio_tungstenite::connect_async(&url).await {
        Ok(s) => s,
        Err(e) => return lost(e),
    };
    let (mut sink, mut frames) = socket.split();
    // What each subscription was last signed for: group id → epoch.
    let mut subscribed: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut mailbox_subscribed = false;
    loop {
        if let Err(end) = pump(device, tx, handed).await {
            return end;
        }
        // Subscribe to what is new: the mailbox once, each group at its current epoch
        // (a commit moves the group to a key the old subscription cannot read with).
        let mut requests = Vec::new();
        match device.subscriptions().await {
            Ok((mailbox, groups)) => {
                if let (false, Some((id, key))) = (mailbox_subscribed, mailbox) {
                    let path = format!("/v1/mailboxes/{id}");
                    match ws_proof(&key, &path) {
                        Ok(proof) => requests.push(WsRequest::SubscribeMailbox {
                            mailbox_id: id,
                            proof,
                        }),
                        Err(e) => return End::Lost(e),
                    }
                    mailbox_subscribed = true;
                }
                for (group, epoch, key) in groups {
                    if subscribed.get(&group) == Some(&epoch) {
                        continue;
                    }
                    let group_id = Bytes(group.clone()).to_base64();
                    let path = format!("/v1/groups/{group_id}/log?epoch={epoch}");
                    match ws_proof(&key, &path) {
                        Ok(proof) => requests.push(WsRequest::SubscribeGroup {
                            group_id,
                            epoch,
                            proof,
                        }),
                        Err(e) => return End::Lost(e),
                    }
                    subscribed.insert(group, epoch);
                }
            }
            Err(e) => return End::Lost(e),
        }
        for request in requests {
            let Ok(text) = serde_json::to_string(&request) else {
                continue;
            };
            if let Err(e) = sink.send(Frame::Text(text.into())).await {
                return lost(e);
            }
        }
        // Wait for a push (or the fallback), then take every frame already there: one
        // sync answers them all.
        let first = tokio::select! {
            frame = frames.next() => Some(frame),
            () = tokio::time::sleep(FALLBACK) => None,
            () = tx.closed() => return End::Closed,
        };
        let mut pending: Vec<_> = first.into_iter().collect();
        // Take what else is already there; an ended stream stays ready (with `None`), so
        // stop at the first end or error.
        while pending.last().is_none_or(|f| matches!(f, Some(Ok(_)))) {
            match frames.next().now_or_never() {
                Some(frame) => pending.push(frame),
                None => break,
            }
        }
        let mut refused = false;
        for frame in pending {
            match frame {
                None => return lost("the DS closed the connection"),
                Some(Err(e)) => return lost(e),
                Some(Ok(Frame::Text(text))) => {
                    if let Ok(WsEvent::Error { error }) = serde_json::from_str(&text) {
                        // A subscription the DS refused (a stale epoch, a clock skew):
                        // sign it again after the next sync.
                        tracing::debug!(code = ?error.code, "subscription refused");
                        subscribed.clear();
                        mailbox_subscribed = false;
                        refused = true;
                    }
                }
                Some(Ok(Frame::Close(_))) => return lost("the DS closed the connection"),
                Some(Ok(_)) => {}
            }
        }
        if refused {
            // Not at once: a refusal that repeats must not become a busy loop.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
