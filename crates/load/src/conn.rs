//! One WebSocket connection per simulated device to its DS node, as a device keeps it: it
//! subscribes to its mailbox and to each of its groups with the epoch's group auth key,
//! records every entry pushed to it, re-reads the log when the DS says it lagged, and — for
//! a device that holds real MLS state — decrypts and checks every entry and joins from the
//! Welcomes in its mailbox.

use crate::LoadError;
use crate::track::{Board, EntryKind, Receipt};
use conclave_api::delivery::{Bytes, LogEntry, MailboxEntryKind, WsEvent, WsRequest};
use conclave_client::wire::{self, DeliveryClient};
use conclave_mls::codec::Decode as _;
use conclave_mls::identity::x509::X509Validator;
use conclave_mls::messages::MlsMessageBody;
use conclave_mls::{Group, Identity, KeyPackageBundle, MlsMessage, Received, RustCrypto};
use ed25519_dalek::SigningKey;
use futures_util::{SinkExt as _, StreamExt as _};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message as Frame;

/// What a connection is told to do.
pub enum Control {
    /// Subscribe to a group with an epoch's key (replacing the earlier subscription).
    Subscribe {
        /// The group's index.
        group: usize,
        /// The epoch.
        epoch: u64,
        /// Its group auth key.
        key: SigningKey,
    },
}

/// The MLS state of a device that is a real member (it decrypts and checks everything).
pub struct RealState {
    /// Its identity.
    pub identity: Identity,
    /// KeyPackages it may be added with.
    pub bundles: Vec<KeyPackageBundle>,
    /// Its groups, by index.
    pub groups: HashMap<usize, Group>,
}

/// A device's connection task's handle.
pub struct Conn {
    /// Commands to it.
    pub control: mpsc::UnboundedSender<Control>,
    /// Its MLS state, if it is a real member.
    pub real: Option<Arc<Mutex<RealState>>>,
}

/// Everything a connection task needs.
pub struct ConnSetup {
    /// The device's index.
    pub device: usize,
    /// The DS node's base URL.
    pub base: String,
    /// The DS node's HTTP client.
    pub ds: DeliveryClient,
    /// The device's mailbox and its key.
    pub mailbox: (String, SigningKey),
    /// MLS state for a real member.
    pub real: Option<Arc<Mutex<RealState>>>,
    /// Chain validation for real members.
    pub validator: Arc<X509Validator>,
    /// Where receipts go.
    pub board: Arc<Board>,
}

/// Connects, subscribes to the mailbox, and runs until the board says stop. Returns when
/// the mailbox subscription is confirmed.
pub async fn open(setup: ConnSetup) -> Result<Conn, LoadError> {
    let url = format!(
        "{}/v1/ws",
        setup
            .base
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| LoadError::Server(format!("WebSocket: {e}")))?;
    let path = format!("/v1/mailboxes/{}", setup.mailbox.0);
    let proof = wire::ws_proof(&setup.mailbox.1, &path)?;
    let request = WsRequest::SubscribeMailbox {
        mailbox_id: setup.mailbox.0.clone(),
        proof,
    };
    ws.send(Frame::text(serde_json::to_string(&request)?))
        .await
        .map_err(|e| LoadError::Server(format!("WebSocket: {e}")))?;
    loop {
        match ws.next().await {
            Some(Ok(Frame::Text(t))) => match serde_json::from_str::<WsEvent>(&t)? {
                WsEvent::Subscribed { .. } => break,
                WsEvent::Error { error } => {
                    return Err(LoadError::Server(format!(
                        "mailbox subscription: {error:?}"
                    )));
                }
                _ => {}
            },
            Some(Ok(_)) => {}
            _ => return Err(LoadError::Server("WebSocket closed".into())),
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let real = setup.real.clone();
    tokio::spawn(run(setup, ws, rx));
    Ok(Conn { control: tx, real })
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Per group: the epoch and key subscribed with, and the last sequence number seen.
struct Sub {
    epoch: u64,
    key: SigningKey,
    last_seq: u64,
}

async fn run(setup: ConnSetup, ws: Ws, mut control: mpsc::UnboundedReceiver<Control>) {
    let (mut sink, mut stream) = ws.split();
    let mut subs: HashMap<usize, Sub> = HashMap::new();
    let provider = RustCrypto::default();
    let board = setup.board.clone();
    loop {
        tokio::select! {
            command = control.recv() => {
                let Some(Control::Subscribe { group, epoch, key }) = command else { break };
                let gid = board.group_id(group);
                let path = format!("/v1/groups/{}/log?epoch={epoch}", Bytes(gid.clone()).to_base64());
                let Ok(proof) = wire::ws_proof(&key, &path) else { break };
                let request = WsRequest::SubscribeGroup {
                    group_id: Bytes(gid).to_base64(),
                    epoch,
                    proof,
                };
                let Ok(text) = serde_json::to_string(&request) else { break };
                let last_seq = subs.get(&group).map_or(0, |s| s.last_seq);
                subs.insert(group, Sub { epoch, key, last_seq });
                if sink.send(Frame::text(text)).await.is_err() {
                    board.fault(format!("device {}: WebSocket send failed", setup.device));
                    break;
                }
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Frame::Text(t))) => t,
                    Some(Ok(_)) => continue,
                    _ => {
                        if !board.stopping() {
                            board.fault(format!("device {}: WebSocket closed", setup.device));
                        }
                        break;
                    }
                };
                let Ok(event) = serde_json::from_str::<WsEvent>(&text) else {
                    board.fault(format!("device {}: unreadable push", setup.device));
                    continue;
                };
                handle(&setup, &provider, &mut subs, event).await;
            }
        }
    }
}

async fn handle(
    setup: &ConnSetup,
    provider: &RustCrypto,
    subs: &mut HashMap<usize, Sub>,
    event: WsEvent,
) {
    let board = &setup.board;
    match event {
        WsEvent::Subscribed { target } => {
            if let Some(group) = board.group_index(&target) {
                board.subscribed(group);
            }
        }
        WsEvent::Error { error } => {
            board.fault(format!("device {}: {error:?}", setup.device));
        }
        WsEvent::GroupEntry { group_id, entry } => {
            let Some(group) = board.group_index(&group_id) else {
                return;
            };
            if let Some(sub) = subs.get_mut(&group) {
                sub.last_seq = sub.last_seq.max(entry.seq);
            }
            receive(setup, provider, group, entry.seq, Some(&entry)).await;
        }
        WsEvent::GroupEntryNotice { group_id, seq, .. } => {
            let Some(group) = board.group_index(&group_id) else {
                return;
            };
            if let Some(sub) = subs.get_mut(&group) {
                sub.last_seq = sub.last_seq.max(seq);
            }
            // A delivery-only device counts the announcement (fetching a megabyte commit
            // 50,000 times would measure the load tool); a real member reads the entry.
            if setup.real.is_some() {
                let entry = match subs.get(&group) {
                    Some(sub) => fetch(setup, group, seq, sub).await,
                    None => None,
                };
                receive(setup, provider, group, seq, entry.as_ref()).await;
            } else {
                receive(setup, provider, group, seq, None).await;
            }
        }
        WsEvent::Lagged { target, .. } => {
            // Missed pushes: re-read the log from the cursor, as a device does.
            let Some(group) = board.group_index(&target) else {
                return;
            };
            board.lagged();
            let Some(sub) = subs.get(&group) else { return };
            let gid = board.group_id(group);
            let mut from = sub.last_seq + 1;
            loop {
                let page = match setup.ds.log(&gid, from, &sub.key, sub.epoch).await {
                    Ok(p) => p,
                    Err(e) => {
                        board.fault(format!("device {}: catch-up read: {e}", setup.device));
                        return;
                    }
                };
                if page.entries.is_empty() {
                    break;
                }
                for entry in &page.entries {
                    from = entry.seq + 1;
                    receive(setup, provider, group, entry.seq, Some(entry)).await;
                }
            }
            if let Some(sub) = subs.get_mut(&group) {
                sub.last_seq = from - 1;
            }
        }
        WsEvent::MailboxEntry { entry_id, kind, .. } => {
            if kind != MailboxEntryKind::Welcome {
                return;
            }
            match &setup.real {
                Some(real) => match join(setup, provider, real, entry_id).await {
                    Ok(groups) => {
                        for group in groups {
                            board.welcomed(setup.device, Some(group));
                        }
                    }
                    Err(e) => board.fault(format!("device {}: joining: {e}", setup.device)),
                },
                None => board.welcomed(setup.device, None),
            }
        }
    }
}

/// Reads one entry of the log with the subscription's key.
async fn fetch(setup: &ConnSetup, group: usize, seq: u64, sub: &Sub) -> Option<LogEntry> {
    let gid = setup.board.group_id(group);
    match setup.ds.log(&gid, seq, &sub.key, sub.epoch).await {
        Ok(page) => page.entries.into_iter().find(|e| e.seq == seq),
        Err(e) => {
            setup
                .board
                .fault(format!("device {}: reading entry {seq}: {e}", setup.device));
            None
        }
    }
}

/// Records a delivery; a real member also processes the entry and checks it.
async fn receive(
    setup: &ConnSetup,
    provider: &RustCrypto,
    group: usize,
    seq: u64,
    entry: Option<&LogEntry>,
) {
    let board = &setup.board;
    let Some((pending, expected)) = board.receipt(group, seq, setup.device) else {
        return;
    };
    if let (Some(real), Some(entry)) = (&setup.real, entry) {
        process(setup, provider, real, group, seq, entry, &expected).await;
    }
    board.delivered(&pending, setup.device);
}

/// A real member processes an entry (decrypts a message and compares it with what was
/// sent; merges a commit).
async fn process(
    setup: &ConnSetup,
    provider: &RustCrypto,
    real: &Arc<Mutex<RealState>>,
    group: usize,
    seq: u64,
    entry: &LogEntry,
    expected: &Receipt,
) {
    let board = &setup.board;
    // The sender does not decrypt its own application message (its keys for it are gone,
    // RFC 9420 §9.2); it does process its own commit, which merges the pending one.
    if expected.sender == setup.device && expected.kind == EntryKind::Application {
        return;
    }
    let mut state = real.lock().await;
    let Some(g) = state.groups.get_mut(&group) else {
        // Joined after this entry was written (or not yet from the Welcome).
        return;
    };
    let outcome = MlsMessage::decode(&entry.message.0)
        .map_err(|e| e.to_string())
        .and_then(|m| g.process(provider, &m).map_err(|e| e.to_string()));
    let checked = match (outcome, expected) {
        (
            Ok(Received::Application { data, .. }),
            Receipt {
                data: Some(want), ..
            },
        ) if data == want.as_slice() => Ok(()),
        (Ok(Received::Application { .. }), _) => Err("application data differs".to_owned()),
        (Ok(Received::Commit(staged)), _) => {
            let removed = staged.removes_us();
            g.merge(*staged).map_err(|e| e.to_string()).map(|_| {
                if removed {
                    state.groups.remove(&group);
                }
            })
        }
        (Ok(Received::OwnCommit), _) => Ok(()),
        (Ok(_), _) => Ok(()),
        (Err(e), _) => Err(e),
    };
    match checked {
        Ok(()) => board.checked(),
        Err(e) => board.fault(format!(
            "device {}: group {group} entry {seq}: {e}",
            setup.device
        )),
    }
}

/// Fetches the mailbox entry, joins the group its Welcome is for, and acknowledges it;
/// the groups joined.
async fn join(
    setup: &ConnSetup,
    provider: &RustCrypto,
    real: &Arc<Mutex<RealState>>,
    entry_id: i64,
) -> Result<Vec<usize>, LoadError> {
    let (mailbox, key) = &setup.mailbox;
    let entries = setup.ds.entries(mailbox, key, entry_id - 1).await?;
    let mut ids = Vec::new();
    let mut joined_groups = Vec::new();
    for entry in entries.into_iter().filter(|e| e.id == entry_id) {
        ids.push(entry.id);
        let message = MlsMessage::decode(&entry.data.0)?;
        let MlsMessageBody::Welcome(_) = &message.body else {
            continue;
        };
        let mut state = real.lock().await;
        let mut joined = None;
        for bundle in &state.bundles {
            if let Ok(staged) = Group::join(
                message.clone(),
                &state.identity,
                bundle,
                setup.validator.clone(),
            )
            .config(wire::group_config())
            .stage(provider)
            {
                joined = Some(staged.accept());
                break;
            }
        }
        let group = joined.ok_or_else(|| {
            LoadError::Server("a Welcome for none of the device's KeyPackages".into())
        })?;
        let index = setup
            .board
            .group_index(&Bytes(group.group_id().to_vec()).to_base64())
            .ok_or_else(|| LoadError::Server("a Welcome for an unknown group".into()))?;
        state.groups.insert(index, group);
        joined_groups.push(index);
    }
    setup.ds.ack(mailbox, key, ids).await?;
    Ok(joined_groups)
}
