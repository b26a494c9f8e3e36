//! Plain HTTP exchanges: one request on a fresh connection, the whole response read up to the
//! server's close (the server always closes after one response).

use std::net::SocketAddr;
use std::time::Duration;

use super::raw::RawClient;
use super::wait::WAIT;

/// A complete HTTP response.
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

/// Sends `request` verbatim and reads the whole response, each step bounded by [`WAIT`].
pub async fn http(addr: SocketAddr, request: &str) -> HttpResponse {
    http_within(addr, request, WAIT).await
}

/// Sends `request` verbatim and reads the whole response, each step bounded by `limit`.
pub async fn http_within(addr: SocketAddr, request: &str, limit: Duration) -> HttpResponse {
    let mut raw = RawClient::connect_within(addr, limit).await;
    raw.send(request.as_bytes()).await;
    let (status, headers) = raw.read_head().await;
    let body = raw.read_to_end().await;
    HttpResponse { status, headers, body }
}

/// `method path` with a `Host` header and nothing else.
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    http(addr, &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await
}

/// A raw upgrade request for `path` (any path, valid or not); `extra` is more header lines, each
/// ending in CRLF. A refusal comes back whole (read up to the server's close); a `101` comes
/// back with its head only, and the connection is dropped.
pub async fn try_upgrade(addr: SocketAddr, path: &str, extra: &str) -> HttpResponse {
    let mut raw = RawClient::connect(addr).await;
    raw.send(super::raw::upgrade_request_to(addr, path, super::raw::RFC_KEY, extra).as_bytes()).await;
    let (status, headers) = raw.read_head().await;
    let body = if status == 101 { Vec::new() } else { raw.read_to_end().await };
    HttpResponse { status, headers, body }
}

/// The status of a raw upgrade request for `path` (see [`try_upgrade`]).
pub async fn upgrade_status(addr: SocketAddr, path: &str) -> u16 {
    try_upgrade(addr, path, "").await.status
}
