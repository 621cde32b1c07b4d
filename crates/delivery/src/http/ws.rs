//! WebSocket push: a client subscribes to several groups and to its mailbox on one
//! connection, each subscription proven with the key that authorises reading it.

use super::AppState;
use super::group::epoch_key;
use crate::auth::{self, Proof};
use crate::error::ApiError;
use crate::push::{Pushed, Subscription, group_topic, mailbox_topic};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use conclave_api::delivery::{ErrorCode, WsEvent, WsProof, WsRequest};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

/// Open a push connection (`GET /v1/ws`). Client frames are [`WsRequest`], server frames
/// [`WsEvent`], both JSON text.
#[utoipa::path(get, path = "/v1/ws", responses((status = 101, description = "WebSocket")))]
pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(state, socket))
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

/// Forwards a subscription's events that pass the filter to the connection's queue. When
/// the subscriber fell behind (its topic buffer overflowed), it says so with
/// [`WsEvent::Lagged`] so the client re-reads from its cursor, then goes on.
fn forward(
    mut from: Subscription,
    to: mpsc::Sender<Arc<Pushed>>,
    filter: Filter,
    target: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let next = match from.recv().await {
                Ok(p) if filter.admits(&p.event) => p,
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    metrics::counter!("ds_push_lagged_total").increment(1);
                    Pushed::new(WsEvent::Lagged {
                        target: target.clone(),
                        missed,
                    })
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if to.send(next).await.is_err() {
                break;
            }
        }
    })
}

async fn subscribe(
    state: &AppState,
    request: WsRequest,
    out: &mpsc::Sender<Arc<Pushed>>,
    subs: &mut HashMap<String, JoinHandle<()>>,
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
            let key = epoch_key(state, &group, epoch).await?;
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
    if subs.len() >= 1024 && !subs.contains_key(&topic) {
        return Err(ApiError::RateLimited);
    }
    let subscription = state.push.subscribe(&topic).await?;
    let handle = forward(subscription, out.clone(), filter, target.clone());
    if let Some(old) = subs.insert(topic, handle) {
        old.abort();
    }
    Ok(target)
}

async fn session(state: AppState, socket: WebSocket) {
    metrics::gauge!("ds_ws_connections").increment(1.0);
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Arc<Pushed>>(state.config.push_buffer.max(1));
    let mut subs: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(t))) => {
                    let reply = match serde_json::from_str::<WsRequest>(t.as_str()) {
                        Ok(request) => match subscribe(&state, request, &tx, &mut subs).await {
                            Ok(target) => WsEvent::Subscribed { target },
                            Err(e) => WsEvent::Error { error: e.parts().1 },
                        },
                        Err(e) => WsEvent::Error { error: ApiError::bad(format!("invalid request: {e}")).parts().1 },
                    };
                    if sink.send(text(&reply)).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            pushed = rx.recv() => match pushed {
                Some(p) => {
                    if sink.send(Message::Text(p.text.clone())).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    for handle in subs.values() {
        handle.abort();
    }
    metrics::gauge!("ds_ws_connections").decrement(1.0);
}
