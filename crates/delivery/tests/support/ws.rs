//! A WebSocket client of the push API.

use super::random;
use conclave_api::delivery::*;
use ed25519_dalek::{Signer, SigningKey};
use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// A connection.
pub struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

/// A subscription proof signed with `key` for `path`.
pub fn proof(key: &SigningKey, path: &str) -> WsProof {
    let ts = conclave_ds::auth::now();
    let nonce = random::<16>();
    let hash: [u8; 32] = Sha256::digest(b"").into();
    let sig = key.sign(&signing_input("WS", path, &hash, ts, &nonce));
    WsProof {
        timestamp: ts,
        nonce: Bytes(nonce.to_vec()),
        signature: Bytes(sig.to_bytes().to_vec()),
    }
}

impl Ws {
    /// Connects to `http://addr`'s `/v1/ws`.
    pub async fn connect(base: &str) -> Ws {
        let url = format!("{}/v1/ws", base.replacen("http://", "ws://", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        Ws { stream }
    }

    /// Connects with a small kernel receive buffer on the client's socket, so a client that
    /// does not read makes the server's queue overflow quickly.
    pub async fn connect_slow(base: &str, recv_buffer: u32) -> Ws {
        let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(recv_buffer).expect("SO_RCVBUF");
        let tcp = socket.connect(addr).await.expect("connect");
        let url = format!("ws://{addr}/v1/ws");
        let (stream, _) =
            tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
                .await
                .expect("ws handshake");
        Ws { stream }
    }

    /// Sends a subscription request without waiting for the answer.
    pub async fn send_request(&mut self, r: &WsRequest) {
        let text = serde_json::to_string(r).expect("json");
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send");
    }

    async fn request(&mut self, r: &WsRequest) -> Result<(), ErrorBody> {
        let text = serde_json::to_string(r).expect("json");
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("send");
        loop {
            match self.next_event().await {
                WsEvent::Subscribed { .. } => return Ok(()),
                WsEvent::Error { error } => return Err(error),
                _ => {}
            }
        }
    }

    /// Subscribes to a group with an epoch's key.
    pub async fn subscribe_group(
        &mut self,
        group: &[u8],
        epoch: u64,
        key: &SigningKey,
    ) -> Result<(), ErrorBody> {
        let group_id = Bytes(group.to_vec()).to_base64();
        let path = format!("/v1/groups/{group_id}/log?epoch={epoch}");
        self.request(&WsRequest::SubscribeGroup {
            group_id,
            epoch,
            proof: proof(key, &path),
        })
        .await
    }

    /// Subscribes to a mailbox with its key.
    pub async fn subscribe_mailbox(
        &mut self,
        mailbox: &str,
        key: &SigningKey,
    ) -> Result<(), ErrorBody> {
        let path = format!("/v1/mailboxes/{mailbox}");
        self.request(&WsRequest::SubscribeMailbox {
            mailbox_id: mailbox.to_string(),
            proof: proof(key, &path),
        })
        .await
    }

    /// The next event (fails after 10 s).
    pub async fn next_event(&mut self) -> WsEvent {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an event within 10 s")
                .expect("open")
                .expect("frame");
            if let Message::Text(t) = m {
                return serde_json::from_str(t.as_str()).expect("event");
            }
        }
    }

    /// The raw frame stream.
    pub fn into_stream(
        self,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        self.stream
    }

    /// Whether no event arrives for `d`.
    pub async fn quiet_for(&mut self, d: Duration) -> bool {
        tokio::time::timeout(d, self.stream.next()).await.is_err()
    }
}
