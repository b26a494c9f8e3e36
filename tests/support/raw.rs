//! A plain TCP client that speaks bytes, HTTP heads and WebSocket frames by hand.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

use super::frame::Frame;
use super::wait::{WAIT, bounded_by};

/// The RFC 6455 example key and the accept value it must produce.
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A raw upgrade request for `/ws` with `key`; `extra` is more header lines, each ending in CRLF.
pub fn upgrade_request(addr: SocketAddr, key: &str, extra: &str) -> String {
    format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n{extra}\r\n"
    )
}

/// A raw upgrade request for `path` with `key`; `extra` is more header lines, each ending in CRLF.
pub fn upgrade_request_to(addr: SocketAddr, path: &str, key: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n{extra}\r\n"
    )
}

/// A plain TCP client that speaks bytes, HTTP heads and WebSocket frames by hand; each step is
/// bounded by its `limit`.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    limit: Duration,
}

impl RawClient {
    /// Connects, every later step bounded by [`WAIT`].
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient::connect_within(addr, WAIT).await
    }

    /// Connects, this and every later step bounded by `limit`.
    pub async fn connect_within(addr: SocketAddr, limit: Duration) -> RawClient {
        let stream = bounded_by(limit, "the TCP connection", TcpStream::connect(addr)).await.expect("connect");
        RawClient { stream, buf: Vec::new(), limit }
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
        bounded_by(self.limit, "a write", self.stream.write_all(bytes)).await
    }

    /// Writes all of `bytes` in one call.
    pub async fn send(&mut self, bytes: &[u8]) {
        bounded_by(self.limit, "a write", self.stream.write_all(bytes)).await.expect("write");
    }

    /// Reads more bytes into the buffer; returns how many (0 when the server closed).
    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = bounded_by(self.limit, "bytes from the server", self.stream.read(&mut chunk)).await.expect("read");
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

    /// Reads one server frame, or `None` once the server closed the connection
    /// (a reset counts as closed) between two frames; a connection that ends
    /// inside a frame fails the test (a torn frame).
    pub async fn read_frame_or_end(&mut self) -> Option<Frame> {
        loop {
            if let Some(len) = self.complete_frame_len() {
                let frame: Vec<u8> = self.buf.drain(..len).collect();
                let header = len - self.payload_len_of(&frame);
                return Some(Frame { opcode: frame[0] & 0x0f, payload: frame[header..].to_vec() });
            }
            let mut chunk = [0u8; 16 * 1024];
            let read = bounded_by(self.limit, "bytes from the server", self.stream.read(&mut chunk)).await;
            match read {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => {
                    assert!(self.buf.is_empty(), "the connection ended inside a frame: {:?}", self.buf);
                    return None;
                }
            }
        }
    }

    /// Header + payload length of the frame at the start of the buffer, once all of it is there.
    fn complete_frame_len(&self) -> Option<usize> {
        let buf = &self.buf;
        if buf.len() < 2 {
            return None;
        }
        assert_eq!(buf[1] & 0x80, 0, "server frames must not be masked");
        let (header, len) = match buf[1] & 0x7f {
            126 if buf.len() >= 4 => (4, usize::from(u16::from_be_bytes([buf[2], buf[3]]))),
            127 if buf.len() >= 10 => (10, u64::from_be_bytes(buf[2..10].try_into().ok()?) as usize),
            126 | 127 => return None,
            len => (2, usize::from(len)),
        };
        (buf.len() >= header + len).then_some(header + len)
    }

    fn payload_len_of(&self, frame: &[u8]) -> usize {
        match frame[1] & 0x7f {
            126 => usize::from(u16::from_be_bytes([frame[2], frame[3]])),
            127 => u64::from_be_bytes(frame[2..10].try_into().expect("eight bytes")) as usize,
            len => usize::from(len),
        }
    }

    /// Everything the server still sends until it closes the connection.
    pub async fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill().await > 0 {}
        std::mem::take(&mut self.buf)
    }
}
