//! Canvas protocol helpers shared by the canvas and restart tests: a JSON-speaking client, messages, metrics, temp dirs.
#![allow(dead_code)]

pub mod process;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::CloseFrame;
use serde_json::Value;
use smolcanvas::Message;

use crate::common::{WAIT, Ws, bounded, connect, expect_end, recv, recv_text, request, send};

/// A data directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh, empty directory whose name includes `name`, the process id and a counter.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("smolcanvas-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A canvas client: reads text messages as they come, tracks `clientCount` apart from everything else.
pub struct Peer {
    pub ws: Ws,
    /// Messages other than `clientCount` read while waiting for a count.
    pending: VecDeque<String>,
    /// Every `clientCount` value received, in order.
    pub counts: Vec<u64>,
}

impl Peer {
    pub async fn connect(addr: SocketAddr) -> Peer {
        Peer { ws: connect(addr).await, pending: VecDeque::new(), counts: Vec::new() }
    }

    /// The latest `clientCount` received.
    pub fn count(&self) -> Option<u64> {
        self.counts.last().copied()
    }

    pub async fn send(&mut self, text: impl Into<String>) {
        send(&mut self.ws, Message::text(text.into())).await;
    }

    /// The next message that is not a `clientCount`, as sent.
    pub async fn next(&mut self) -> String {
        if let Some(text) = self.pending.pop_front() {
            return text;
        }
        loop {
            let text = recv_text(&mut self.ws).await;
            match client_count(&text) {
                Some(count) => self.counts.push(count),
                None => return text,
            }
        }
    }

    /// The next message that is not a `clientCount`, parsed.
    pub async fn next_json(&mut self) -> Value {
        let text = self.next().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the server sent invalid JSON {text:?}: {e}"))
    }

    /// Reads until the latest `clientCount` is `n`, keeping other messages for [`Peer::next`].
    pub async fn wait_count(&mut self, n: u64) {
        while self.count() != Some(n) {
            let text = recv_text(&mut self.ws).await;
            match client_count(&text) {
                Some(count) => self.counts.push(count),
                None => self.pending.push_back(text),
            }
        }
    }

    /// The next message must be a `canvasState`; returns its `clientId` and `data`.
    pub async fn expect_state(&mut self) -> (String, String) {
        let message = self.next_json().await;
        assert_eq!(message["type"], "canvasState", "expected a canvasState, got {message}");
        (string(&message, "clientId"), string(&message, "data"))
    }

    /// The next message must be a `canvasRequest`; returns its `clientId`.
    pub async fn expect_request(&mut self) -> String {
        let message = self.next_json().await;
        assert_eq!(message["type"], "canvasRequest", "expected a canvasRequest, got {message}");
        assert_eq!(message.as_object().map(|o| o.len()), Some(2), "extra fields in {message}");
        string(&message, "clientId")
    }

    /// The next message must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) {
        let message = self.next_json().await;
        assert_eq!(message["type"], "error", "expected an error, got {message}");
        assert_eq!(message["code"], code, "wrong error code in {message}");
        assert!(message["message"].as_str().is_some_and(|m| !m.is_empty()), "no message in {message}");
    }

    /// Skips data messages up to the server's close frame.
    pub async fn expect_close(&mut self) -> CloseFrame {
        loop {
            match recv(&mut self.ws).await {
                Some(Ok(Message::Close(Some(frame)))) => return frame,
                Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
                Some(Ok(_)) => {}
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    /// Closes from the client side, skipping what the server sent meanwhile, and waits for the end.
    pub async fn close(&mut self) {
        bounded("sending a close", self.ws.close(None)).await.expect("send a close");
        loop {
            match recv(&mut self.ws).await {
                Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
                other => panic!("expected the server to answer the close, got {other:?}"),
            }
        }
        expect_end(&mut self.ws).await;
    }

    /// Answers a `canvasRequest` for `client_id` with `data`.
    pub async fn send_state(&mut self, client_id: &str, data: &str) {
        self.send(canvas_state(client_id, data)).await;
    }
}

fn string(message: &Value, field: &str) -> String {
    match message[field].as_str() {
        Some(value) => value.to_string(),
        None => panic!("no string {field} in {message}"),
    }
}

fn client_count(text: &str) -> Option<u64> {
    let message: Value = serde_json::from_str(text).ok()?;
    if message["type"] != "clientCount" {
        return None;
    }
    Some(message["clientCount"].as_u64().unwrap_or_else(|| panic!("bad clientCount message {text}")))
}

/// A draw in its normalized form (as relayed and journaled); `seq` is recoverable with [`draw_seq`].
pub fn draw(seq: u32) -> String {
    format!(
        r##"{{"type":"draw","color":"#0a0b0c","startX":{},"startY":{},"endX":5,"endY":6,"lineWidth":2}}"##,
        seq / 10_000,
        seq % 10_000
    )
}

/// The `seq` of a message made by [`draw`].
pub fn draw_seq(text: &str) -> u32 {
    let message: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"));
    assert_eq!(message["type"], "draw", "expected a draw, got {text}");
    let part = |field: &str| message[field].as_u64().unwrap_or_else(|| panic!("bad {field} in {text}")) as u32;
    part("startX") * 10_000 + part("startY")
}

/// A `canvasState` message.
pub fn canvas_state(client_id: &str, data: &str) -> String {
    let quote = |s: &str| Value::from(s).to_string();
    format!(r#"{{"type":"canvasState","clientId":{},"data":{}}}"#, quote(client_id), quote(data))
}

/// A PNG data URL tagged with `tag` (the server never decodes it).
pub fn png(tag: &str) -> String {
    format!("data:image/png;base64,{tag}")
}

/// The value of the unlabelled metric `name` in `/metrics`.
pub async fn metric(addr: SocketAddr, name: &str) -> u64 {
    let response = request(addr, "GET", "/metrics").await;
    assert_eq!(response.status, 200);
    let text = response.text();
    let line = text.lines().find(|line| line.split(' ').next() == Some(name));
    let value = line.and_then(|line| line.split(' ').nth(1)).and_then(|v| v.parse().ok());
    value.unwrap_or_else(|| panic!("no metric {name} in /metrics"))
}

/// Polls `/metrics` until `name` has `value`, failing after [`WAIT`].
pub async fn wait_metric(addr: SocketAddr, name: &str, value: u64) {
    let start = Instant::now();
    loop {
        let now = metric(addr, name).await;
        if now == value {
            return;
        }
        assert!(start.elapsed() < WAIT, "{name} is {now}, still not {value} after {WAIT:?}");
        smol::Timer::after(std::time::Duration::from_millis(10)).await;
    }
}

/// Reads the board a lone newcomer gets: the canvasState's data, then the draws up to a second
/// canvasState, which the newcomer's own `canvasRequest` asks for (so nothing more can be pending).
pub async fn read_board(peer: &mut Peer) -> (String, Vec<String>) {
    let (id, data) = peer.expect_state().await;
    peer.send(r#"{"type":"canvasRequest"}"#).await;
    let mut draws = Vec::new();
    loop {
        let text = peer.next().await;
        if text.contains(r#""type":"canvasState""#) {
            assert_eq!(text, canvas_state(&id, &data), "the second answer differs from the first");
            break;
        }
        draws.push(text);
    }
    for draw in &draws {
        assert_eq!(peer.next().await, *draw, "the replay differs from the first one");
    }
    (data, draws)
}

/// What a new client alone on the board at `addr` gets: the snapshot data, then the draws.
pub async fn board_of(addr: SocketAddr) -> (String, Vec<String>) {
    let mut peer = Peer::connect(addr).await;
    let board = read_board(&mut peer).await;
    peer.close().await;
    board
}

/// Two synced clients: `a` (the oldest, which answers `b`'s sync) and `b`.
pub async fn synced_pair(addr: SocketAddr) -> (Peer, Peer) {
    let mut a = Peer::connect(addr).await;
    a.expect_state().await;
    let mut b = Peer::connect(addr).await;
    let id = a.expect_request().await;
    a.send_state(&id, &png("AAAA")).await;
    b.expect_state().await;
    (a, b)
}
