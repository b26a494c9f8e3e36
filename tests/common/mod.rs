//! Test harness: a real server for any `App` on 127.0.0.1:0, WebSocket and raw TCP clients, and bounded waits.
#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::handshake::client::{Request, Response};
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use smol::Executor;
use smol::net::TcpStream;
use smolcanvas::metrics::Metrics;
use smolcanvas::server::timeout;
use smolcanvas::{App, Server, ServerConfig, Tripwire};

/// The longest any single step of a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// The RFC 6455 example key and the accept value it must produce.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// WebSocket opcodes, for raw frames.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Default settings on a free loopback port, with a short shutdown grace.
pub fn config() -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_grace: Duration::from_secs(1),
        ..ServerConfig::default()
    }
}

/// Waits for `fut`, failing the test after [`WAIT`].
pub async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match timeout(WAIT, fut).await {
        Some(value) => value,
        None => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// A server running on its own thread and executor; dropping it trips the shutdown wire.
pub struct TestServer {
    pub addr: SocketAddr,
    pub wire: Tripwire,
    pub metrics: Arc<Metrics>,
    done: mpsc::Receiver<io::Result<()>>,
}

impl TestServer {
    /// Binds `config` (its `listen` should be port 0) and runs `app` in the background.
    pub fn start<A: App>(config: ServerConfig, app: A) -> TestServer {
        let server = Server::bind(config, app).expect("bind the test server");
        let addr = server.local_addr().expect("the bound address");
        let wire = server.shutdown_wire();
        let metrics = server.metrics();
        let (finished, done) = mpsc::channel();
        thread::Builder::new()
            .name(format!("server-{}", addr.port()))
            .spawn(move || {
                let executor: Executor<'static> = Executor::new();
                let result = smol::block_on(executor.run(server.run(&executor)));
                let _ = finished.send(result);
            })
            .expect("spawn the server thread");
        TestServer { addr, wire, metrics, done }
    }

    /// Trips the shutdown wire and waits for `run` to return.
    pub fn shutdown(&self) -> io::Result<()> {
        self.wire.trip();
        self.wait_stopped(WAIT)
    }

    /// Waits at most `within` for `run` to return, and returns its result.
    pub fn wait_stopped(&self, within: Duration) -> io::Result<()> {
        match self.done.recv_timeout(within) {
            Ok(result) => result,
            Err(_) => panic!("the server did not stop within {within:?}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.wire.trip();
    }
}

/// A WebSocket client over a smol TCP stream.
pub type Ws = WebSocketStream<TcpStream>;

/// An upgrade request for `ws://addr/ws`, ready for extra headers.
pub fn ws_request(addr: SocketAddr) -> Request {
    format!("ws://{addr}/ws").into_client_request().expect("a valid WebSocket URL")
}

/// Connects and upgrades with `request`; the server's refusal comes back as `WsError::Http`.
pub async fn try_connect(addr: SocketAddr, request: Request) -> Result<(Ws, Response), WsError> {
    let stream = bounded("the TCP connection", TcpStream::connect(addr)).await?;
    bounded("the upgrade", async_tungstenite::client_async(request, stream)).await
}

/// Connects to `/ws`, failing the test if the upgrade is refused.
pub async fn connect(addr: SocketAddr) -> Ws {
    match try_connect(addr, ws_request(addr)).await {
        Ok((ws, _)) => ws,
        Err(err) => panic!("upgrade to ws://{addr}/ws failed: {err}"),
    }
}

/// The HTTP status of a refused upgrade; fails the test if it was accepted.
pub fn refused_status(result: Result<(Ws, Response), WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(err) => panic!("expected an HTTP refusal, got {err}"),
        Ok(_) => panic!("expected an HTTP refusal, but the upgrade succeeded"),
    }
}

/// Sends one message.
pub async fn send(ws: &mut Ws, message: Message) {
    bounded("a send", ws.send(message)).await.expect("send a message");
}

/// The next thing the client reads, pings and pongs included; `None` once the stream is over.
pub async fn recv(ws: &mut Ws) -> Option<Result<Message, WsError>> {
    bounded("a WebSocket message", ws.next()).await
}

/// The next text or binary message, skipping pings and pongs.
pub async fn recv_data(ws: &mut Ws) -> Message {
    loop {
        match recv(ws).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => return message,
            other => panic!("expected a data message, got {other:?}"),
        }
    }
}

/// The next text message, skipping pings and pongs.
pub async fn recv_text(ws: &mut Ws) -> String {
    match recv_data(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The server's close frame, skipping pings and pongs.
pub async fn recv_close(ws: &mut Ws) -> CloseFrame {
    loop {
        match recv(ws).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Reads on after a close (which sends the client's answer) until the server ends the connection.
pub async fn expect_end(ws: &mut Ws) {
    if let Some(other) = recv(ws).await {
        panic!("expected the connection to end, got {other:?}");
    }
}

/// Closes from the client side and waits for the server's answer and the end of the connection.
pub async fn close(ws: &mut Ws) {
    bounded("sending a close", ws.close(None)).await.expect("send a close");
    match recv(ws).await {
        Some(Ok(Message::Close(_))) => expect_end(ws).await,
        other => panic!("expected the server to answer the close, got {other:?}"),
    }
}

/// A complete HTTP response (the server always closes after one).
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` verbatim and reads the whole response.
pub async fn http(addr: SocketAddr, request: &str) -> HttpResponse {
    let mut raw = RawClient::connect(addr).await;
    raw.send(request.as_bytes()).await;
    let (status, headers) = raw.read_head().await;
    let body = raw.read_to_end().await;
    HttpResponse { status, headers, body }
}

/// `method path` with a `Host` header and nothing else.
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    http(addr, &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await
}

/// A raw upgrade request for `/ws` with `key`; `extra` is more header lines, each ending in CRLF.
pub fn upgrade_request(addr: SocketAddr, key: &str, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n{extra}\r\n"
    )
}

/// One client frame: final, masked as RFC 6455 requires.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    masked_fragment(true, opcode, payload)
}

/// One masked client frame; `fin` false leaves the message open for continuation frames (opcode 0).
pub fn masked_fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![if fin { 0x80 | opcode } else { opcode }];
    match payload.len() {
        len @ 0..=125 => frame.push(0x80 | len as u8),
        len => {
            let len = u16::try_from(len).expect("raw test frames stay under 64 KiB");
            frame.push(0x80 | 126);
            frame.extend_from_slice(&len.to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    frame
}

/// A client close frame with `code` and `reason`.
pub fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    masked_frame(CLOSE, &payload)
}

/// A frame as the server sent it.
#[derive(Debug)]
pub struct Frame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame.
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        u16::from_be_bytes([self.payload[0], self.payload[1]])
    }
}

/// A plain TCP client that speaks bytes, HTTP heads and WebSocket frames by hand.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = bounded("the TCP connection", TcpStream::connect(addr)).await.expect("connect");
        RawClient { stream, buf: Vec::new() }
    }

    /// Connects and completes an upgrade to `/ws`, failing the test unless it gets 101.
    pub async fn upgrade(addr: SocketAddr) -> RawClient {
        let mut raw = RawClient::connect(addr).await;
        raw.send(upgrade_request(addr, RFC_KEY, "").as_bytes()).await;
        let (status, _) = raw.read_head().await;
        assert_eq!(status, 101, "upgrade refused");
        raw
    }

    /// Writes all of `bytes`, bounded in time; the error if the socket failed.
    pub async fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        bounded("a write", self.stream.write_all(bytes)).await
    }

    /// Writes all of `bytes` in one call.
    pub async fn send(&mut self, bytes: &[u8]) {
        bounded("a write", self.stream.write_all(bytes)).await.expect("write");
    }

    /// Reads more bytes into the buffer; returns how many (0 when the server closed).
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = bounded("bytes from the server", self.stream.read(&mut chunk)).await.expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    async fn fill_to(&mut self, len: usize) {
        while self.buf.len() < len {
            assert!(self.fill().await > 0, "the server closed the connection early");
        }
    }

    /// Reads a response head: the status code and the headers. What follows stays buffered.
    pub async fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            assert!(self.fill().await > 0, "the server closed before a complete response head");
        };
        let head = String::from_utf8(self.buf.drain(..end + 4).collect()).expect("an ASCII response head");
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {status_line:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        (status, headers)
    }

    /// Reads one server frame (unmasked, final).
    pub async fn read_frame(&mut self) -> Frame {
        self.fill_to(2).await;
        assert_eq!(self.buf[1] & 0x80, 0, "server frames must not be masked");
        let (header, len) = match self.buf[1] & 0x7f {
            126 => {
                self.fill_to(4).await;
                (4, usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])))
            }
            127 => {
                self.fill_to(10).await;
                let len = u64::from_be_bytes(self.buf[2..10].try_into().expect("eight length bytes"));
                (10, usize::try_from(len).expect("a frame length that fits in memory"))
            }
            len => (2, usize::from(len)),
        };
        self.fill_to(header + len).await;
        let frame: Vec<u8> = self.buf.drain(..header + len).collect();
        Frame { opcode: frame[0] & 0x0f, payload: frame[header..].to_vec() }
    }

    /// Everything the server still sends until it closes the connection.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }
}
