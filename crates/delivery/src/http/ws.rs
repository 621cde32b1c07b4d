//! WebSocket push: a client subscribes to several groups and to its mailbox on one
//! connection, each subscription proven with the key that authorises reading it.

use super::AppState;
use super::group::epoch_key;
use crate::auth::{self, Proof};
use crate::error::ApiError;
use crate::push::{Pushed, Subscription, group_topic, mailbox_topic};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use conclave_api::delivery::{ErrorCode, WsEvent, WsProof, WsRequest};
use futures_util::stream::{self, AbortHandle, Abortable, SelectAll};
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Subscriptions one connection may hold (groups and mailboxes together).
pub const MAX_SUBSCRIPTIONS: usize = 1024;

/// Most frames written to a socket before one flush.
pub const MAX_BATCH: usize = 64;

/// The read buffer of a push connection: clients send only small subscription requests,
/// so a small buffer keeps many idle connections cheap (tungstenite's default is 128 KiB
/// each).
pub const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Open a push connection (`GET /v1/ws`). Client frames are [`WsRequest`], server frames
/// [`WsEvent`], both JSON text.
#[utoipa::path(get, path = "/v1/ws", responses((status = 101, description = "WebSocket")))]
pub async fn upgrade(
    State(state): State<AppState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A request that is no WebSocket upgrade gets the typed error body, not axum's text.
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            return ApiError::bad(format!("not a WebSocket upgrade: {}", e.body_text()))
                .into_response();
        }
    };
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(state.config.max_control_bytes)
        .on_upgrade(move |socket| session(state, socket))
}

fn proof(p: &WsProof) -> Result<Proof, ApiError> {
    let signature = <[u8; 64]>::try_from(p.signature.0.as_slice()).map_err(|_| {
        ApiError::Unauthorized(ErrorCode::MissingSignature, "malformed signature".into())
    })?;
    Proof::new(p.timestamp, p.nonce.0.clone(), signature)
}

fn text(event: &WsEvent) -> Message {
    Message::Text(serde_json::to_string(event).unwrap_or_default().into())
}

/// What a subscription lets through.
#[derive(Debug, Clone, Copy)]
enum Filter {
    /// A group entry readable with this epoch's key (see `Store::read_log`).
    Epoch { epoch: u64, start_seq: u64 },
    /// Everything (a mailbox).
    All,
}

/// Whether an entry of `entry_epoch` at `seq` is readable with the key of `epoch`, which
/// started at `start_seq` (see `Store::read_log`).
fn readable(epoch: u64, start_seq: u64, entry_epoch: u64, seq: u64) -> bool {
    entry_epoch == epoch || (entry_epoch + 1 == epoch && seq > start_seq)
}

impl Filter {
    fn admits(&self, event: &WsEvent) -> bool {
        match (self, event) {
            (Filter::All, _) => true,
            (Filter::Epoch { epoch, start_seq }, WsEvent::GroupEntry { entry, .. }) => {
                readable(*epoch, *start_seq, entry.epoch, entry.seq)
            }
            (
                Filter::Epoch { epoch, start_seq },
                WsEvent::GroupEntryNotice {
                    epoch: e, seq: s, ..
                },
            ) => readable(*epoch, *start_seq, *e, *s),
            _ => false,
        }
    }
}

/// The events of one subscription that pass its filter, as a stream the connection polls
/// itself (no task per subscription). When the subscriber fell behind (its topic buffer
/// overflowed), it yields [`WsEvent::Lagged`] so the client re-reads from its cursor, then
/// goes on. It ends only if the topic's sender goes away.
fn events(
    from: Subscription,
    filter: Filter,
    target: String,
) -> impl Stream<Item = Arc<Pushed>> + Send + 'static {
    stream::unfold(
        (from, filter, target),
        |(mut from, filter, target)| async move {
            loop {
                match from.recv().await {
                    Ok(p) if filter.admits(&p.event) => return Some((p, (from, filter, target))),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        metrics::counter!("ds_push_lagged_total").increment(1);
                        let lagged = Pushed::new(WsEvent::Lagged {
                            target: target.clone(),
                            missed,
                        });
                        return Some((lagged, (from, filter, target)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}

/// The filtered events of one subscription.
type Events = Pin<Box<dyn Stream<Item = Arc<Pushed>> + Send>>;

/// A connection's subscriptions: every stream polled together by the connection's own task,
/// and, by topic, the handle that ends one when it is replaced (a new epoch's key).
struct Subscriptions {
    streams: SelectAll<Abortable<Events>>,
    by_topic: HashMap<String, AbortHandle>,
}

impl Subscriptions {
    fn new() -> Self {
        Subscriptions {
            streams: SelectAll::new(),
            by_topic: HashMap::new(),
        }
    }

    /// Adds (or replaces) the subscription of a topic.
    fn insert(&mut self, topic: String, events: impl Stream<Item = Arc<Pushed>> + Send + 'static) {
        let (handle, registration) = AbortHandle::new_pair();
        let boxed: Events = Box::pin(events);
        self.streams.push(Abortable::new(boxed, registration));
        if let Some(old) = self.by_topic.insert(topic, handle) {
            // Its stream ends at its next poll and drops its subscription.
            old.abort();
        }
    }
}

async fn subscribe(
    state: &AppState,
    request: WsRequest,
    subs: &mut Subscriptions,
) -> Result<String, ApiError> {
    let (topic, target, filter) = match request {
        WsRequest::SubscribeGroup {
            group_id,
            epoch,
            proof: p,
        } => {
            let group = super::id(&group_id, ErrorCode::GroupNotFound)?;
            if epoch > (i64::MAX as u64) / 2 {
                return Err(ApiError::bad("epoch out of range"));
            }
            let key = epoch_key(state, &group, epoch, false).await?;
            let path = format!("/v1/groups/{group_id}/log?epoch={epoch}");
            auth::authorise(
                state.store.as_ref(),
                state.config.signature_window_secs,
                auth::now(),
                &auth::scope("g", &group),
                &[&key.auth_key],
                "WS",
                &path,
                b"",
                &proof(&p)?,
            )
            .await?;
            (
                group_topic(&group_id),
                group_id,
                Filter::Epoch {
                    epoch,
                    start_seq: key.start_seq,
                },
            )
        }
        WsRequest::SubscribeMailbox {
            mailbox_id,
            proof: p,
        } => {
            let mailbox = super::id(&mailbox_id, ErrorCode::MailboxNotFound)?;
            let key = state
                .store
                .mailbox_key(&mailbox)
                .await?
                .ok_or(ApiError::NotFound(ErrorCode::MailboxNotFound))?;
            let path = format!("/v1/mailboxes/{mailbox_id}");
            auth::authorise(
                state.store.as_ref(),
                state.config.signature_window_secs,
                auth::now(),
                &auth::scope("m", &mailbox),
                &[&key],
                "WS",
                &path,
                b"",
                &proof(&p)?,
            )
            .await?;
            (mailbox_topic(&mailbox_id), mailbox_id, Filter::All)
        }
    };
    if subs.by_topic.len() >= MAX_SUBSCRIPTIONS && !subs.by_topic.contains_key(&topic) {
        return Err(ApiError::RateLimited);
    }
    let subscription = state.push.subscribe(&topic).await?;
    subs.insert(topic, events(subscription, filter, target.clone()));
    Ok(target)
}

/// Writes `first` and whatever else is ready on the subscriptions (up to [`MAX_BATCH`]
/// frames) into the socket's write buffer, then flushes once: one write to the socket per
/// batch rather than per frame.
async fn send_batch<S>(sink: &mut S, subs: &mut Subscriptions, first: Arc<Pushed>) -> bool
where
    S: Sink<Message> + Unpin,
{
    if sink.feed(Message::Text(first.text.clone())).await.is_err() {
        return false;
    }
    for _ in 1..MAX_BATCH {
        match subs.streams.next().now_or_never() {
            Some(Some(p)) => {
                if sink.feed(Message::Text(p.text.clone())).await.is_err() {
                    return false;
                }
            }
            _ => break,
        }
    }
    sink.flush().await.is_ok()
}

async fn session(state: AppState, socket: WebSocket) {
    metrics::gauge!("ds_ws_connections").increment(1.0);
    let (mut sink, mut stream) = socket.split();
    let mut subs = Subscriptions::new();
    let mut stopping = state.stopping.clone();
    // A client that stops reading fills its socket and a write then waits: bounded by this
    // timeout, after which the connection is dropped (its queue of pushes is bounded by
    // `push_buffer`, but without it the task and socket would be held for ever).
    let write_timeout = std::time::Duration::from_secs(state.config.ws_write_timeout_secs.max(1));
    loop {
        tokio::select! {
            // The node stops: say so, so the client reconnects elsewhere at once.
            () = async {
                // A dropped sender (a `Server` dropped without `stop`) is not a stop.
                if stopping.wait_for(|stop| *stop).await.is_err() {
                    std::future::pending::<()>().await;
                }
            } => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let reply = match serde_json::from_str::<WsRequest>(t.as_str()) {
                        Ok(request) => match subscribe(&state, request, &mut subs).await {
                            Ok(target) => WsEvent::Subscribed { target },
                            Err(e) => WsEvent::Error { error: e.parts().1 },
                        },
                        Err(e) => WsEvent::Error { error: ApiError::bad(format!("invalid request: {e}")).parts().1 },
                    };
                    if !matches!(tokio::time::timeout(write_timeout, sink.send(text(&reply))).await, Ok(Ok(()))) {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            // `SelectAll` ends (`None`) while it is empty: the branch then waits for the
            // next iteration, when a subscription may have been added.
            Some(pushed) = subs.streams.next() => {
                let sent = tokio::time::timeout(write_timeout, send_batch(&mut sink, &mut subs, pushed)).await;
                if sent.is_err() {
                    metrics::counter!("ds_ws_write_timeouts_total").increment(1);
                }
                if !sent.unwrap_or(false) {
                    break;
                }
            }
        }
    }
    metrics::gauge!("ds_ws_connections").decrement(1.0);
}
