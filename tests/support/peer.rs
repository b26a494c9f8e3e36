//! A canvas client: speaks the board's JSON messages over a WebSocket and keeps `clientCount`
//! values apart from everything else.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use async_tungstenite::tungstenite::handshake::client::{Request, Response};
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::StreamExt;
use serde_json::Value;
use smol::net::TcpStream;

use super::messages::{canvas_state, string};
use super::wait::{WAIT, bounded_by};
use super::ws::{V2, Ws, ws_request, ws_request_to};

/// A canvas client: reads text messages as they come, tracks `clientCount` apart from the rest.
pub struct Peer {
    pub ws: Ws,
    /// Who this is in failure messages.
    name: String,
    /// The bound on each step.
    limit: Duration,
    /// Messages other than `clientCount` read while waiting for a count.
    pending: VecDeque<String>,
    /// Every `clientCount` value received, in order.
    pub counts: Vec<u64>,
}

impl Peer {
    /// Connects to `ws://addr/ws`, each step bounded by [`WAIT`].
    pub async fn connect(addr: SocketAddr) -> Peer {
        Peer::connect_as("the client", addr, WAIT).await
    }

    /// Connects to `ws://addr/ws` as `name` (for failure messages), each step bounded by `limit`.
    pub async fn connect_as(name: &str, addr: SocketAddr, limit: Duration) -> Peer {
        Peer::connect_with(name, addr, ws_request(addr), limit).await
    }

    /// Connects to `addr` and upgrades with `request` (any path, extra headers) as `name`, each
    /// step bounded by `limit`; the upgrade must succeed.
    pub async fn connect_with(name: &str, addr: SocketAddr, request: Request, limit: Duration) -> Peer {
        let url = request.uri().to_string();
        let ws = bounded_by(limit, &format!("{name}'s upgrade"), async {
            let stream = TcpStream::connect(addr).await.expect("connect for the upgrade");
            match async_tungstenite::client_async(request, stream).await {
                Ok((ws, _)) => ws,
                Err(err) => panic!("{name}: upgrade to {url} failed: {err}"),
            }
        })
        .await;
        Peer { ws, name: name.to_string(), limit, pending: VecDeque::new(), counts: Vec::new() }
    }

    /// Upgrades with `request` (any path, headers and subprotocols), each step bounded by
    /// [`WAIT`]; the server's refusal comes back as `WsError::Http`.
    pub async fn open_request(name: &str, addr: SocketAddr, request: Request) -> Result<(Peer, Response), WsError> {
        let (ws, response) = bounded_by(WAIT, &format!("{name}'s upgrade"), async {
            let stream = TcpStream::connect(addr).await.expect("connect for the upgrade");
            async_tungstenite::client_async(request, stream).await
        })
        .await?;
        let peer = Peer { ws, name: name.to_string(), limit: WAIT, pending: VecDeque::new(), counts: Vec::new() };
        Ok((peer, response))
    }

    /// Upgrades to `path`, offering `smolcanvas.v2` if `v2`; the HTTP status if refused.
    pub async fn open(addr: SocketAddr, path: &str, v2: bool) -> Result<Peer, u16> {
        let name = format!("the {} client on {path}", if v2 { "v2" } else { "v1" });
        match Peer::open_request(&name, addr, ws_request_to(addr, path, v2)).await {
            Ok((peer, response)) => {
                let chosen = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
                assert_eq!(chosen, v2.then_some(V2), "{name}: the subprotocol in the 101");
                Ok(peer)
            }
            Err(WsError::Http(response)) => Err(response.status().as_u16()),
            Err(err) => panic!("{name}: upgrade to {path} failed: {err}"),
        }
    }

    /// Connects to `path` (`/b/NAME/ws`, `/v/TOKEN/ws`, ...) as a v1 client.
    pub async fn connect_to(addr: SocketAddr, path: &str) -> Peer {
        Peer::open(addr, path, false).await.unwrap_or_else(|status| panic!("upgrade to {path} refused: {status}"))
    }

    /// Connects to `path` offering `smolcanvas.v2`; the server must choose it.
    pub async fn connect_v2(addr: SocketAddr, path: &str) -> Peer {
        Peer::open(addr, path, true).await.unwrap_or_else(|status| panic!("v2 upgrade to {path} refused: {status}"))
    }

    /// Connects to `path` as a v2 client and reads what must come first: its `welcome`, then its
    /// own `clientCount`. Its sync (`canvasState` and the live draws) follows.
    pub async fn join_v2(addr: SocketAddr, path: &str) -> (Peer, Welcome) {
        let mut peer = Peer::connect_v2(addr, path).await;
        let welcome = peer.read_welcome(path).await;
        (peer, welcome)
    }

    /// Reads what a v2 client gets first: its `welcome`, then its own `clientCount`. `path`
    /// names the client in failure messages from now on.
    pub async fn read_welcome(&mut self, path: &str) -> Welcome {
        let first = self.read().await;
        let welcome: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("invalid JSON {first:?}: {e}"));
        assert_eq!(welcome["type"], "welcome", "{}: the first message must be welcome, got {first}", self.name);
        let second = self.read().await;
        let count = client_count(&second)
            .unwrap_or_else(|| panic!("{}: the message after welcome must be clientCount, got {second}", self.name));
        self.counts.push(count);
        let field = |name: &str| welcome.get(name).map(|v| v.as_str().unwrap_or_else(|| panic!("{name} in {welcome}")));
        let welcome = Welcome {
            client_id: string(&welcome, "clientId").to_string(),
            role: string(&welcome, "role").to_string(),
            board: field("board").map(str::to_string),
            view_path: field("viewPath").map(str::to_string),
            raw: welcome,
        };
        self.name = format!("v2 {} {} on {path}", welcome.role, welcome.client_id);
        welcome
    }

    /// Renames this client in failure messages.
    pub fn named(mut self, name: &str) -> Peer {
        self.name = name.to_string();
        self
    }

    /// The latest `clientCount` received.
    pub fn count(&self) -> Option<u64> {
        self.counts.last().copied()
    }

    /// Sends one text message.
    pub async fn send(&mut self, text: impl Into<String>) {
        let what = format!("a send by {}", self.name);
        let sent = bounded_by(self.limit, &what, self.ws.send(Message::text(text.into()))).await;
        sent.unwrap_or_else(|err| panic!("{what}: {err}"));
    }

    /// The next text message, skipping pings and pongs.
    async fn read(&mut self) -> String {
        let what = format!("a message to {}", self.name);
        loop {
            match bounded_by(self.limit, &what, self.ws.next()).await {
                Some(Ok(Message::Text(text))) => return text.to_string(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("{}: expected a text message, got {other:?}", self.name),
            }
        }
    }

    /// The next message that is not a `clientCount`, as sent.
    pub async fn next(&mut self) -> String {
        if let Some(text) = self.pending.pop_front() {
            return text;
        }
        loop {
            let text = self.read().await;
            match client_count(&text) {
                Some(count) => self.counts.push(count),
                None => return text,
            }
        }
    }

    /// The next message that is not a `clientCount`, parsed.
    pub async fn next_json(&mut self) -> Value {
        let text = self.next().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: invalid JSON {text:?}: {e}", self.name))
    }

    /// The next message that is not a `clientCount`, parsed; it must have `"type"` `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let message = self.next_json().await;
        assert_eq!(message["type"], kind, "{}: expected a {kind:?} message, got {message}", self.name);
        message
    }

    /// Reads until the latest `clientCount` is `n`, keeping other messages for [`Peer::next`].
    pub async fn wait_count(&mut self, n: u64) {
        let what = format!("clientCount {n} at {}", self.name);
        bounded_by(self.limit, &what, async {
            while self.count() != Some(n) {
                let text = self.read().await;
                match client_count(&text) {
                    Some(count) => self.counts.push(count),
                    None => self.pending.push_back(text),
                }
            }
        })
        .await;
    }

    /// The next message must be a `canvasState`; returns its `clientId` and `data`.
    pub async fn expect_state(&mut self) -> (String, String) {
        let message = self.expect("canvasState").await;
        (string(&message, "clientId").to_string(), string(&message, "data").to_string())
    }

    /// The next message must be a `canvasRequest`; returns its `clientId`.
    pub async fn expect_request(&mut self) -> String {
        let message = self.expect("canvasRequest").await;
        assert_eq!(message.as_object().map(|o| o.len()), Some(2), "extra fields in {message}");
        string(&message, "clientId").to_string()
    }

    /// The next message must be an `error` with `code`.
    pub async fn expect_error(&mut self, code: &str) {
        let message = self.expect("error").await;
        assert_eq!(message["code"], code, "wrong error code in {message}");
        assert!(message["message"].as_str().is_some_and(|m| !m.is_empty()), "no message in {message}");
    }

    /// Skips data messages up to the server's close frame, and returns it.
    pub async fn expect_close(&mut self) -> CloseFrame {
        let what = format!("the server closing {}", self.name);
        bounded_by(self.limit, &what, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(Some(frame)))) => return frame,
                    Some(Ok(Message::Close(None))) => panic!("{}: a close frame without a code", self.name),
                    Some(Ok(_)) => {}
                    other => panic!("{}: expected a close frame, got {other:?}", self.name),
                }
            }
        })
        .await
    }

    /// Reads on, whatever comes, until the connection ends or fails (after a close from the
    /// server, reading is what sends the client's answer).
    pub async fn read_until_end(&mut self) {
        let what = format!("the end of {}'s connection", self.name);
        bounded_by(self.limit, &what, async { while let Some(Ok(_)) = self.ws.next().await {} }).await;
    }

    /// Closes from the client side, skipping what the server sent meanwhile, and waits for the end.
    pub async fn close(&mut self) {
        let what = format!("{} closing", self.name);
        bounded_by(self.limit, &what, self.ws.close(None)).await.expect("send a close");
        bounded_by(self.limit, &what, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(_))) => break,
                    Some(Ok(_)) => {}
                    other => panic!("{}: expected the server to answer the close, got {other:?}", self.name),
                }
            }
            if let Some(other) = self.ws.next().await {
                panic!("{}: expected the connection to end, got {other:?}", self.name);
            }
        })
        .await;
    }

    /// Answers a `canvasRequest` for `client_id` with `data`.
    pub async fn send_state(&mut self, client_id: &str, data: &str) {
        self.send(canvas_state(client_id, data)).await;
    }
}

/// A v2 client's `welcome`.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// Its `clientId`.
    pub client_id: String,
    /// `editor` or `viewer`.
    pub role: String,
    /// The board's name (editors only).
    pub board: Option<String>,
    /// The board's read-only link (editors only).
    pub view_path: Option<String>,
    /// The message as received.
    pub raw: Value,
}

/// The count in a `clientCount` message; `None` for any other message.
fn client_count(text: &str) -> Option<u64> {
    let message: Value = serde_json::from_str(text).ok()?;
    if message["type"] != "clientCount" {
        return None;
    }
    Some(message["clientCount"].as_u64().unwrap_or_else(|| panic!("bad clientCount message {text}")))
}
