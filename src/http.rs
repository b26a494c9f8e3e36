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

/// Largest request head accepted, whatever its number of lines; a larger one gets 431.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header lines a head of [`MAX_HEAD_BYTES`] can hold: the shortest, `a:` and a line feed, is 3 bytes.
const MAX_HEADER_LINES: usize = MAX_HEAD_BYTES / 3;

/// The parts of a request head the server looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path without its query string, also of an absolute-form target (`http://host/path`).
    /// A target that is neither a path nor an `http://` or `https://` URL is kept here as it came,
    /// and [`route`] refuses it.
    pub path: String,
    /// The query string after `?`, if any.
    pub query: Option<String>,
    /// The authority of an absolute-form target (`host:port` of `http://host:port/path`).
    pub authority: Option<String>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Headers in order, names lowercased, values as (lossy) text.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// Every value of header `name` (lowercase), in order.
    pub fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.trim())
    }

    /// The host the client addressed: the authority of an absolute-form target, which
    /// stands in for `Host` (RFC 9112, section 3.2.2), or else the `Host` header.
    pub fn host(&self) -> Option<&str> {
        self.authority.as_deref().or_else(|| self.header("host"))
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
    /// Returns the head and the number of bytes it took. Any number of header
    /// lines parses; only the head's size is limited (by the caller, or here when
    /// `buf` holds more lines than [`MAX_HEAD_BYTES`] can).
    pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
        // A slot for every line read so far: each header takes a line. The slots
        // live only while parsing, sized by the head, not in every connection's task.
        let lines = buf.iter().filter(|&&b| b == b'\n').count();
        let mut headers = vec![httparse::EMPTY_HEADER; lines.min(MAX_HEADER_LINES)];
        let mut request = httparse::Request::new(&mut headers);
        let len = match request.parse(buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(err) => return Err(HeadError::Malformed(err)),
        };
        let (authority, path, query) = split_target(request.path.unwrap_or("/"));
        let head = RequestHead {
            method: request.method.unwrap_or("").to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            authority: authority.map(str::to_string),
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

/// Splits a request target into the authority of an absolute-form target
/// (RFC 9112, section 3.2.2; `http` or `https` in any case), the path (`/` when
/// an absolute URL has none) and the query.
fn split_target(target: &str) -> (Option<&str>, &str, Option<&str>) {
    let absolute = ["http://", "https://"].iter().find_map(|scheme| {
        let given = target.get(..scheme.len())?;
        given.eq_ignore_ascii_case(scheme).then(|| &target[scheme.len()..])
    });
    let (authority, rest) = match absolute {
        Some(rest) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            (Some(&rest[..end]), &rest[end..])
        }
        None => (None, target),
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let path = if path.is_empty() && authority.is_some() { "/" } else { path };
    (authority, path, query)
}

/// Why a request head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// Larger than [`MAX_HEAD_BYTES`], or more header lines than that can hold.
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

impl std::error::Error for HeadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HeadError::Malformed(err) => Some(err),
            HeadError::Io(err) => Some(err),
            HeadError::TooLarge | HeadError::Closed | HeadError::ShuttingDown => None,
        }
    }
}

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
    /// `GET /healthz`.
    Health,
    /// `GET /metrics`.
    Metrics,
    /// Any other path: the app's. `upgrade` is the client's `Sec-WebSocket-Key`
    /// when the request is a valid WebSocket upgrade.
    App {
        /// The key of a valid upgrade.
        upgrade: Option<String>,
    },
    /// An answer without a body of interest (404, 405, 426, 400 or 403), and why.
    Reject(Refusal),
}

/// Why [`route`] refused a request, in words an operator can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` missing from an HTTP/1.1 request, or given more than once: 400.
    Host(&'static str),
    /// A method other than `GET` and `HEAD`: 405.
    Method(String),
    /// A request target that is neither a path nor an `http://` or `https://` URL with a host: 400.
    Target,
    /// No such path: 404.
    NotFound,
    /// `/ws` without a WebSocket upgrade (what is missing): 426.
    NotUpgrade(&'static str),
    /// An `Origin` that is neither the host the client addressed nor an allowed origin: 403.
    Origin {
        /// The `Origin` header.
        origin: String,
        /// The host it was compared with, if the request named one.
        host: Option<String>,
    },
    /// A WebSocket upgrade with a bad or repeated `Sec-WebSocket-Key`, or over HTTP/1.0: 400.
    BadUpgrade(&'static str),
}

impl Refusal {
    /// The status the refusal is answered with.
    pub fn status(&self) -> Status {
        match self {
            Refusal::Host(_) | Refusal::Target | Refusal::BadUpgrade(_) => Status::BadRequest,
            Refusal::Method(_) => Status::MethodNotAllowed,
            Refusal::NotFound => Status::NotFound,
            Refusal::NotUpgrade(_) => Status::UpgradeRequired,
            Refusal::Origin { .. } => Status::Forbidden,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Host(why) => write!(f, "{why} (RFC 9112, section 3.2)"),
            Refusal::Method(method) => write!(f, "method {method} is not GET or HEAD"),
            Refusal::Target => write!(f, "the request target is neither a path nor an http:// or https:// URL"),
            Refusal::NotFound => write!(f, "no such path"),
            Refusal::NotUpgrade(missing) => write!(f, "not a WebSocket upgrade: {missing}"),
            Refusal::Origin { origin, host } => {
                match host {
                    Some(host) => write!(f, "Origin {origin} does not match Host {host}")?,
                    None => write!(f, "Origin {origin} and no Host to match it with")?,
                }
                // The values `--allow-origin` takes: a scheme, a host and no trailing slash.
                let flag_takes_it =
                    (origin.starts_with("http://") || origin.starts_with("https://")) && !origin.ends_with('/');
                if flag_takes_it {
                    write!(f, "; allow it with --allow-origin {origin}")
                } else {
                    write!(f, "; it is not an http:// or https:// origin, so --allow-origin cannot allow it")
                }
            }
            Refusal::BadUpgrade(why) => write!(f, "bad WebSocket upgrade: {why}"),
        }
    }
}

/// The statuses the server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200
    Ok,
    /// 303
    SeeOther,
    /// 304
    NotModified,
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
            Status::NotModified => 304,
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
            Status::NotModified => "Not Modified",
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
    checked_route(head, allow_origins).unwrap_or_else(Route::Reject)
}

fn checked_route(head: &RequestHead, allow_origins: &[String]) -> Result<Route, Refusal> {
    check_host(head)?;
    if head.method != "GET" && head.method != "HEAD" {
        return Err(Refusal::Method(head.method.clone()));
    }
    let bad_authority = head.authority.as_deref().is_some_and(|a| a.is_empty() || a.contains('@'));
    if !head.path.starts_with('/') || bad_authority {
        return Err(Refusal::Target);
    }
    match head.path.as_str() {
        "/healthz" => Ok(Route::Health),
        "/metrics" => Ok(Route::Metrics),
        // Asking for a WebSocket: the upgrade is checked here, wherever it goes.
        _ if head.has_token("upgrade", "websocket") => route_upgrade(head, allow_origins),
        _ => Ok(Route::App { upgrade: None }),
    }
}

/// An HTTP/1.1 request names its host in exactly one `Host` header (RFC 9112,
/// section 3.2). HTTP/1.0 predates `Host`, so an HTTP/1.0 request without one
/// is served; two are refused whatever the version.
fn check_host(head: &RequestHead) -> Result<(), Refusal> {
    match head.values("host").count() {
        0 if head.version == 1 => Err(Refusal::Host("an HTTP/1.1 request without a Host header")),
        0 | 1 => Ok(()),
        _ => Err(Refusal::Host("more than one Host header")),
    }
}

fn route_upgrade(head: &RequestHead, allow_origins: &[String]) -> Result<Route, Refusal> {
    if head.method != "GET" {
        return Err(Refusal::NotUpgrade("an upgrade is a GET request"));
    }
    if !head.has_token("upgrade", "websocket") {
        return Err(Refusal::NotUpgrade("no `Upgrade: websocket` header"));
    }
    if !head.has_token("connection", "upgrade") {
        return Err(Refusal::NotUpgrade("no `Connection: Upgrade` header"));
    }
    if !origin_allowed(head, allow_origins) {
        let origin = head.header("origin").unwrap_or_default().to_string();
        return Err(Refusal::Origin { origin, host: head.host().map(str::to_string) });
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Err(Refusal::NotUpgrade("no `Sec-WebSocket-Version: 13` header"));
    }
    if head.version != 1 {
        return Err(Refusal::BadUpgrade("an upgrade needs HTTP/1.1"));
    }
    // One key only: a repeated one is refused (RFC 6455, section 11.3.1).
    let mut keys = head.values("sec-websocket-key");
    match (keys.next(), keys.next()) {
        (Some(key), None) if is_valid_key(key) => Ok(Route::App { upgrade: Some(key.to_string()) }),
        (Some(_), None) => Err(Refusal::BadUpgrade("Sec-WebSocket-Key is not 16 bytes in base64")),
        (Some(_), Some(_)) => Err(Refusal::BadUpgrade("more than one Sec-WebSocket-Key header")),
        (None, _) => Err(Refusal::BadUpgrade("no Sec-WebSocket-Key header")),
    }
}

/// A key is the base64 form of 16 bytes: 22 characters and `==`.
fn is_valid_key(key: &str) -> bool {
    key.len() == 24
        && key.ends_with("==")
        && key[..22].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// No `Origin` passes (non-browser clients); otherwise it must be the server's
/// own host (as the client addressed it: [`RequestHead::host`]) or one of `allow_origins`.
pub fn origin_allowed(head: &RequestHead, allow_origins: &[String]) -> bool {
    head.header("origin").is_none_or(|origin| origin_matches(head, origin, allow_origins))
}

/// The header a page's plain GET of its socket path names its origin in, to
/// learn whether an upgrade from it would be refused (a same-origin GET carries no `Origin`).
pub const PROBE_ORIGIN_HEADER: &str = "x-smolcanvas-origin";

/// Why an upgrade with Origin `origin` would be refused, if it would.
pub fn origin_refusal(head: &RequestHead, origin: &str, allow_origins: &[String]) -> Option<Refusal> {
    (!origin_matches(head, origin, allow_origins))
        .then(|| Refusal::Origin { origin: origin.to_string(), host: head.host().map(str::to_string) })
}

fn origin_matches(head: &RequestHead, origin: &str, allow_origins: &[String]) -> bool {
    if allow_origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(host) = head.host() else {
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

/// `303` to `path` (without its query) that stores the key in an HttpOnly cookie, so it leaves the address bar.
pub fn key_cookie_redirect(key: &str, secure: bool, path: &str) -> Vec<u8> {
    let secure = if secure { "; Secure" } else { "" };
    let headers = format!(
        "Location: {path}\r\nSet-Cookie: {KEY_COOKIE}={key}; Path=/; HttpOnly; SameSite=Strict; Max-Age=31536000{secure}\r\n"
    );
    response(Status::SeeOther, "text/plain; charset=utf-8", &headers, b"303 See Other\n", false)
}

/// The `Sec-WebSocket-Accept` value for a client's key (RFC 6455, section 4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    crate::base64::encode_after(String::with_capacity(28), &sha.digest().bytes())
}

/// The `101 Switching Protocols` answer to an upgrade, naming the chosen subprotocol if any.
pub fn switching_protocols(key: &str, protocol: Option<&str>) -> Vec<u8> {
    let protocol = protocol.map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n")).unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{protocol}\r\n",
        accept_key(key)
    )
    .into_bytes()
}

/// The subprotocols a request offers (`Sec-WebSocket-Protocol`, comma-separated, possibly repeated).
pub fn offered_protocols(head: &RequestHead) -> Vec<&str> {
    head.values("sec-websocket-protocol").flat_map(|v| v.split(',')).map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// A complete response that closes the connection. `head_only` drops the body (for HEAD).
pub fn response(status: Status, content_type: &str, extra_headers: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    // Nothing is cached unless the caller says how.
    let cache = if extra_headers.contains("Cache-Control:") { "" } else { "Cache-Control: no-store\r\n" };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{cache}{extra_headers}\r\n",
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
    }

    #[test]
    fn partial_head_needs_more() {
        assert!(RequestHead::parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(matches!(RequestHead::parse(b"\x16\x03\x01garbage\r\n\r\n"), Err(HeadError::Malformed(_))));
    }

    /// The status `route` refuses `text` with; `None` when it does not refuse.
    fn refused(text: &str) -> Option<Status> {
        match route(&head(text), &[]) {
            Route::Reject(refusal) => Some(refusal.status()),
            _ => None,
        }
    }

    #[test]
    fn routes() {
        assert_eq!(route(&head("GET / HTTP/1.1\r\nHost: box\r\n\r\n"), &[]), Route::App { upgrade: None });
        assert_eq!(route(&head("GET /healthz?x=1 HTTP/1.1\r\nHost: box\r\n\r\n"), &[]), Route::Health);
        // Paths other than the core's are the app's to answer (404 included).
        assert_eq!(route(&head("GET /nope HTTP/1.1\r\nHost: box\r\n\r\n"), &[]), Route::App { upgrade: None });
        assert_eq!(refused("POST / HTTP/1.1\r\nHost: box\r\n\r\n"), Some(Status::MethodNotAllowed));
        assert_eq!(route(&head("GET /ws HTTP/1.1\r\nHost: box\r\n\r\n"), &[]), Route::App { upgrade: None });
        assert!(matches!(route(&head(&format!("{UPGRADE}\r\n")), &[]), Route::App { upgrade: Some(_) }));
    }

    #[test]
    fn host_once_in_http_1_1_at_most_once_in_http_1_0() {
        assert_eq!(refused("GET / HTTP/1.1\r\n\r\n"), Some(Status::BadRequest));
        assert_eq!(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), Some(Status::BadRequest));
        assert_eq!(refused("GET / HTTP/1.0\r\n\r\n"), None);
        assert_eq!(refused("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), Some(Status::BadRequest));
    }

    #[test]
    fn absolute_form_targets() {
        let absolute = head("GET hTTps://Box:8080/ws?x=1 HTTP/1.1\r\nHost: box:8080\r\n\r\n");
        assert_eq!(absolute.authority.as_deref(), Some("Box:8080"));
        assert_eq!((absolute.path.as_str(), absolute.query.as_deref()), ("/ws", Some("x=1")));
        assert_eq!(absolute.host(), Some("Box:8080"));
        let bare = head("GET http://box?x HTTP/1.1\r\nHost: box\r\n\r\n");
        assert_eq!((bare.path.as_str(), bare.query.as_deref()), ("/", Some("x")));
        assert_eq!(route(&bare, &[]), Route::App { upgrade: None });
        for target in ["box:80", "ftp://box/", "http:///", "http://user@box/", "*", "ws", "http:/box/"] {
            let text = format!("GET {target} HTTP/1.1\r\nHost: box\r\n\r\n");
            assert_eq!(route(&head(&text), &[]), Route::Reject(Refusal::Target), "{target}");
        }
    }

    #[test]
    fn any_number_of_header_lines_within_the_head_size() {
        let text = format!("GET / HTTP/1.1\nHost: box\n{}\n", "a:1\n".repeat(2000));
        assert!(text.len() <= MAX_HEAD_BYTES);
        assert_eq!(head(&text).headers.len(), 2001);
        // More lines than a head of MAX_HEAD_BYTES can hold make it too large, complete or not.
        let text = format!("GET / HTTP/1.1\n{}", "a:\n".repeat(MAX_HEADER_LINES + 1));
        assert!(matches!(RequestHead::parse(text.as_bytes()), Err(HeadError::TooLarge)));
        assert!(matches!(RequestHead::parse(format!("{text}\n").as_bytes()), Err(HeadError::TooLarge)));
    }

    #[test]
    fn refusals_say_why() {
        let foreign = route(&head(&format!("{UPGRADE}Origin: https://evil.example\r\n\r\n")), &[]);
        let Route::Reject(refusal) = foreign else { panic!("foreign Origin upgraded") };
        assert_eq!(
            refusal.to_string(),
            "Origin https://evil.example does not match Host box:8080; allow it with --allow-origin https://evil.example"
        );
        let null = route(&head(&format!("{UPGRADE}Origin: null\r\n\r\n")), &[]);
        let Route::Reject(refusal) = null else { panic!("Origin null upgraded") };
        assert!(refusal.to_string().ends_with("so --allow-origin cannot allow it"), "{refusal}");
        let twice = head(&format!("{UPGRADE}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
        assert_eq!(route(&twice, &[]), Route::Reject(Refusal::BadUpgrade("more than one Sec-WebSocket-Key header")));
        let plain = head("GET /ws HTTP/1.1\r\nHost: box\r\nConnection: Upgrade\r\n\r\n");
        assert_eq!(route(&plain, &[]), Route::App { upgrade: None });
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
        assert!(matches!(route(&same, &[]), Route::App { upgrade: Some(_) }));
        let foreign = head(&format!("{UPGRADE}Origin: https://evil.example\r\n\r\n"));
        assert!(matches!(route(&foreign, &[]), Route::Reject(Refusal::Origin { .. })));
        assert!(matches!(route(&foreign, &["https://evil.example".to_string()]), Route::App { upgrade: Some(_) }));
        let default_port = head(&format!("{UPGRADE}Origin: http://box\r\n\r\n").replace("box:8080", "box:80"));
        assert!(matches!(route(&default_port, &[]), Route::App { upgrade: Some(_) }));
        let bad_key = head(&format!("{UPGRADE}\r\n").replace("dGhlIHNhbXBsZSBub25jZQ==", "x"));
        assert_eq!(
            route(&bad_key, &[]),
            Route::Reject(Refusal::BadUpgrade("Sec-WebSocket-Key is not 16 bytes in base64"))
        );
    }
}
