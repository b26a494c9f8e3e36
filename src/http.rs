//! Request-head parsing (httparse), routing and plain HTTP responses.
//!
//! The server reads the request head itself so that one port serves the page,
//! `/healthz`, `/metrics` and the WebSocket upgrade, and so that the head and
//! the upgrade share one time bound. Every response closes the connection
//! (`Connection: close`): the page is one request, the rest is WebSocket.

use std::fmt;
use std::io;

use futures_lite::{AsyncRead, AsyncReadExt};

use crate::metrics::RejectReason;

/// Largest request head accepted; a larger one gets 431.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 64;

/// The parts of a request head the server looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// The query string after `?`, if any.
    pub query: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Headers in order, names lowercased, values as (lossy) text.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim())
    }

    /// Whether header `name` holds `token` in its comma-separated list (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Parses a complete head from `buf`; `Ok(None)` while more bytes are needed.
    /// Returns the head and the number of bytes it took.
    pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let len = match request.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(err) => return Err(HeadError::Malformed(err)),
        };
        let target = request.path.unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (target, None),
        };
        let head = RequestHead {
            method: request.method.unwrap_or("").to_string(),
            path: path.to_string(),
            query,
            version: request.version.unwrap_or(0),
            headers: request
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()))
                .collect(),
        };
        Ok(Some((head, len)))
    }
}

/// Why a request head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// Larger than [`MAX_HEAD_BYTES`].
    TooLarge,
    /// Not HTTP/1.x.
    Malformed(httparse::Error),
    /// The client closed the connection before the head was complete.
    Closed,
    /// The socket failed.
    Io(io::Error),
    /// The server began shutting down before the head was complete.
    ShuttingDown,
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadError::TooLarge => write!(f, "request head larger than {MAX_HEAD_BYTES} bytes"),
            HeadError::Malformed(err) => write!(f, "malformed request head: {err}"),
            HeadError::Closed => write!(f, "connection closed before the request head was complete"),
            HeadError::Io(err) => write!(f, "reading the request head: {err}"),
            HeadError::ShuttingDown => write!(f, "server shutting down before the request head was complete"),
        }
    }
}

impl std::error::Error for HeadError {}

/// Reads one request head; returns it with any bytes that followed it.
pub async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        // Read straight into the buffer: no chunk array kept in every connection's task.
        let len = buf.len();
        buf.resize((len + 1024).min(MAX_HEAD_BYTES), 0);
        let n = stream.read(&mut buf[len..]).await.map_err(HeadError::Io)?;
        buf.truncate(len + n);
        if n == 0 {
            return Err(HeadError::Closed);
        }
        if let Some((head, len)) = RequestHead::parse(&buf)? {
            return Ok((head, buf.split_off(len)));
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: the app's page.
    Page,
    /// `GET /healthz`.
    Health,
    /// `GET /metrics`.
    Metrics,
    /// A valid WebSocket upgrade on `/ws`, with its `Sec-WebSocket-Key`.
    Upgrade {
        /// The client's `Sec-WebSocket-Key`.
        key: String,
    },
    /// An answer without a body of interest: 404, 405, 426, 400 or 403.
    Reject(Status),
}

/// The statuses the server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200
    Ok,
    /// 303
    SeeOther,
    /// 400
    BadRequest,
    /// 401
    Unauthorized,
    /// 403
    Forbidden,
    /// 404
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 426
    UpgradeRequired,
    /// 429
    TooManyRequests,
    /// 431
    HeadTooLarge,
    /// 503
    Unavailable,
}

impl Status {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::SeeOther => 303,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::Forbidden => 403,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::UpgradeRequired => 426,
            Status::TooManyRequests => 429,
            Status::HeadTooLarge => 431,
            Status::Unavailable => 503,
        }
    }

    /// The reason phrase.
    pub fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::SeeOther => "See Other",
            Status::BadRequest => "Bad Request",
            Status::Unauthorized => "Unauthorized",
            Status::Forbidden => "Forbidden",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::UpgradeRequired => "Upgrade Required",
            Status::TooManyRequests => "Too Many Requests",
            Status::HeadTooLarge => "Request Header Fields Too Large",
            Status::Unavailable => "Service Unavailable",
        }
    }

    /// Which rejection counter an upgrade refused with this status bumps.
    pub fn reject_reason(self) -> RejectReason {
        match self {
            Status::Forbidden => RejectReason::Origin,
            Status::Unavailable => RejectReason::MaxClients,
            Status::Unauthorized => RejectReason::Unauthorized,
            Status::TooManyRequests => RejectReason::PerIp,
            Status::HeadTooLarge => RejectReason::HeadTooLarge,
            _ => RejectReason::BadRequest,
        }
    }
}

/// The path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// Routes a request head. `allow_origins` are the extra origins accepted on `/ws`.
pub fn route(head: &RequestHead, allow_origins: &[String]) -> Route {
    if head.method != "GET" && head.method != "HEAD" {
        return Route::Reject(Status::MethodNotAllowed);
    }
    match head.path.as_str() {
        "/" | "/index.html" => Route::Page,
        "/healthz" => Route::Health,
        "/metrics" => Route::Metrics,
        WS_PATH => route_upgrade(head, allow_origins),
        _ => Route::Reject(Status::NotFound),
    }
}

fn route_upgrade(head: &RequestHead, allow_origins: &[String]) -> Route {
    let wants_upgrade = head.has_token("upgrade", "websocket") && head.has_token("connection", "upgrade");
    if !wants_upgrade || head.method != "GET" {
        return Route::Reject(Status::UpgradeRequired);
    }
    if !origin_allowed(head, allow_origins) {
        return Route::Reject(Status::Forbidden);
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Route::Reject(Status::UpgradeRequired);
    }
    match head.header("sec-websocket-key") {
        Some(key) if head.version == 1 && is_valid_key(key) => Route::Upgrade { key: key.to_string() },
        _ => Route::Reject(Status::BadRequest),
    }
}

/// A key is the base64 form of 16 bytes: 22 characters and `==`.
fn is_valid_key(key: &str) -> bool {
    key.len() == 24
        && key.ends_with("==")
        && key[..22].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// No `Origin` passes (non-browser clients); otherwise it must be the server's
/// own host (as the client addressed it) or one of `allow_origins`.
pub fn origin_allowed(head: &RequestHead, allow_origins: &[String]) -> bool {
    let Some(origin) = head.header("origin") else {
        return true;
    };
    if allow_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = head.header("host") else {
        return false;
    };
    let (bare, default_port) = match origin.split_once("://") {
        Some(("http", bare)) => (bare, ":80"),
        Some(("https", bare)) => (bare, ":443"),
        _ => return false,
    };
    let without_default = |h: &'_ str| -> String { h.strip_suffix(default_port).unwrap_or(h).to_ascii_lowercase() };
    without_default(bare) == without_default(host)
}

/// Name of the cookie that carries the access key.
pub const KEY_COOKIE: &str = "smolcanvas_key";

/// The access key a request presents: `?key=`, the cookie, or `Authorization: Bearer`.
pub fn presented_key(head: &RequestHead) -> Option<&str> {
    let from_query = head.query.as_deref().and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("key=")));
    let from_cookie = || {
        head.headers
            .iter()
            .filter(|(name, _)| name == "cookie")
            .flat_map(|(_, value)| value.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(KEY_COOKIE)?.strip_prefix('='))
    };
    let from_bearer = || head.header("authorization")?.strip_prefix("Bearer ").map(str::trim);
    from_query.or_else(from_cookie).or_else(from_bearer)
}

/// Compares two keys in time that depends only on their lengths, not on where they differ.
pub fn keys_match(given: &str, expected: &str) -> bool {
    let (given, expected) = (given.as_bytes(), expected.as_bytes());
    let mut diff = given.len() ^ expected.len();
    for (i, byte) in expected.iter().enumerate() {
        diff |= usize::from(byte ^ given.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Whether the key came in the query string (the page then sets the cookie).
pub fn key_in_query(head: &RequestHead) -> bool {
    head.query.as_deref().is_some_and(|q| q.split('&').any(|pair| pair.starts_with("key=")))
}

/// `303` to `/` that stores the key in an HttpOnly cookie, so it leaves the address bar.
pub fn key_cookie_redirect(key: &str, secure: bool) -> Vec<u8> {
    let secure = if secure { "; Secure" } else { "" };
    let headers = format!(
        "Location: /\r\nSet-Cookie: {KEY_COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000{secure}\r\n"
    );
    response(Status::SeeOther, "text/plain; charset=utf-8", &headers, b"303 See Other\n", false)
}

/// The `Sec-WebSocket-Accept` value for a client's key (RFC 6455, section 4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&sha.digest().bytes())
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `101 Switching Protocols` answer to an upgrade.
pub fn switching_protocols(key: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// A complete response that closes the connection. `head_only` drops the body (for HEAD).
pub fn response(status: Status, content_type: &str, extra_headers: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n{extra_headers}\r\n",
        status.code(),
        status.reason(),
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A plain-text response whose body is the status line's reason, for rejections.
pub fn plain_status(status: Status, head_only: bool) -> Vec<u8> {
    let extra =
        if status == Status::UpgradeRequired { "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" } else { "" };
    let body = format!("{} {}\n", status.code(), status.reason());
    response(status, "text/plain; charset=utf-8", extra, body.as_bytes(), head_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> RequestHead {
        RequestHead::parse(text.as_bytes()).unwrap().unwrap().0
    }

    const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: box:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

    #[test]
    fn rfc_accept_key() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn partial_head_needs_more() {
        assert!(RequestHead::parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(matches!(RequestHead::parse(b"\x16\x03\x01garbage\r\n\r\n"), Err(HeadError::Malformed(_))));
    }

    #[test]
    fn routes() {
        assert_eq!(route(&head("GET / HTTP/1.1\r\n\r\n"), &[]), Route::Page);
        assert_eq!(route(&head("GET /healthz?x=1 HTTP/1.1\r\n\r\n"), &[]), Route::Health);
        assert_eq!(route(&head("GET /nope HTTP/1.1\r\n\r\n"), &[]), Route::Reject(Status::NotFound));
        assert_eq!(route(&head("POST / HTTP/1.1\r\n\r\n"), &[]), Route::Reject(Status::MethodNotAllowed));
        assert_eq!(route(&head("GET /ws HTTP/1.1\r\n\r\n"), &[]), Route::Reject(Status::UpgradeRequired));
        assert!(matches!(route(&head(&format!("{UPGRADE}\r\n")), &[]), Route::Upgrade { .. }));
    }

    #[test]
    fn access_keys() {
        let key = |text: &str| presented_key(&head(text)).map(str::to_string);
        assert_eq!(key("GET /?a=1&key=s3cret HTTP/1.1\r\n\r\n").as_deref(), Some("s3cret"));
        assert_eq!(key("GET / HTTP/1.1\r\nCookie: x=1; smolcanvas_key=abc\r\n\r\n").as_deref(), Some("abc"));
        assert_eq!(key("GET /metrics HTTP/1.1\r\nAuthorization: Bearer tok\r\n\r\n").as_deref(), Some("tok"));
        assert_eq!(key("GET / HTTP/1.1\r\n\r\n"), None);
        assert!(keys_match("s3cret", "s3cret"));
        assert!(!keys_match("s3cre", "s3cret") && !keys_match("s3cretX", "s3cret") && !keys_match("", "s3cret"));
        assert!(!keys_match("S3cret", "s3cret"));
    }

    #[test]
    fn origins() {
        let same = head(&format!("{UPGRADE}Origin: http://box:8080\r\n\r\n"));
        assert!(matches!(route(&same, &[]), Route::Upgrade { .. }));
        let foreign = head(&format!("{UPGRADE}Origin: https://evil.example\r\n\r\n"));
        assert_eq!(route(&foreign, &[]), Route::Reject(Status::Forbidden));
        assert!(matches!(route(&foreign, &["https://evil.example".to_string()]), Route::Upgrade { .. }));
        let default_port = head(&format!("{UPGRADE}Origin: http://box\r\n\r\n").replace("box:8080", "box:80"));
        assert!(matches!(route(&default_port, &[]), Route::Upgrade { .. }));
        let bad_key = head(
            "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n\r\n",
        );
        assert_eq!(route(&bad_key, &[]), Route::Reject(Status::BadRequest));
    }
}
