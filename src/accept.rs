//! One accepted connection, up to the upgrade: TLS, the request head,
//! routing, the access key, plain answers, and the client slot, all within
//! the handshake timeout. Then the app's handler gets the [`Connection`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::Role;
use futures_lite::future::FutureExt;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use log::{debug, info};
use smol::Timer;

use crate::app::App;
use crate::connection::Connection;
use crate::http::{self, HeadError, RequestHead, Route, Status};
use crate::limit::{Guarded, MessageLimit};
use crate::metrics::{RejectReason, add};
use crate::shared::{ClientSlot, ClientSlotIp, Shared};
use crate::stream::{Stream, TcpStream};
use crate::timeout::timeout;

/// What the bounded part of a connection (head + upgrade) ended with.
enum Handshake {
    Done,
    Upgraded(RequestHead, Vec<u8>, ClientSlot),
}

pub(crate) async fn handle<A: App>(tcp: TcpStream, peer: SocketAddr, app: Arc<A>, shared: Arc<Shared>) {
    let timeout = shared.config.handshake_timeout;
    // The TLS handshake, the request head and the upgrade share one time bound.
    // Boxed: they are large and short-lived; in the task they would add their
    // size to every connection for its whole life.
    let bounded = Box::pin(async {
        let mut stream = match open(tcp, peer, &shared).await {
            Some(stream) => stream,
            None => return None,
        };
        match handshake(&mut stream, peer, &app, &shared).await {
            Handshake::Done => None,
            Handshake::Upgraded(head, leftover, slot) => Some((stream, head, leftover, slot)),
        }
    });
    let timed_out = async {
        Timer::after(timeout).await;
        shared.metrics.reject(RejectReason::Timeout);
        info!("{peer}: closed: request head and upgrade not complete within {timeout:?}");
        None
    };
    // The handshake's results live in this block only: the task keeps just the
    // connection and its slot while it serves.
    let (conn, slot) = match bounded.or(timed_out).await {
        None => return,
        Some((stream, head, leftover, slot)) => {
            debug!("{peer}: upgraded {}", head.path);
            let limit = MessageLimit::new(app.message_limit().min(shared.config.max_message_bytes));
            let mut guarded = Guarded::new(stream, limit.clone());
            // Bytes that came with the request head reach tungstenite without a read: check them here.
            if let Err(too_big) = guarded.inspect(&leftover) {
                info!("{peer}: closed: {too_big}");
                return;
            }
            let ws =
                Box::pin(WebSocketStream::from_partially_read(guarded, leftover, Role::Server, Some(shared.ws_config)))
                    .await;
            (Connection::new(ws, limit, peer, head.path, head.query, shared.connection.clone()), slot)
        }
    };
    app.serve(conn).await;
    drop(slot);
    debug!("{peer}: connection over");
}

/// Plain TCP as it is, or the TLS handshake when the server has a certificate.
async fn open(tcp: TcpStream, peer: SocketAddr, shared: &Shared) -> Option<Stream> {
    #[cfg(feature = "tls")]
    if let Some(acceptor) = &shared.tls {
        use crate::tls::{Accepted, accept};
        return match accept(acceptor, tcp, peer).await {
            Accepted::Tls(stream) => Some(stream),
            Accepted::Plain(mut stream) => {
                shared.metrics.reject(RejectReason::BadRequest);
                let body = b"400 Bad Request: this port speaks HTTPS; use https:// (or wss://)\n";
                respond(&mut stream, http::response(Status::BadRequest, "text/plain; charset=utf-8", "", body, false))
                    .await;
                None
            }
            Accepted::Failed => None,
        };
    }
    let _ = (peer, shared);
    Some(Stream::Tcp(tcp))
}

async fn handshake<A: App>(stream: &mut Stream, peer: SocketAddr, app: &Arc<A>, shared: &Arc<Shared>) -> Handshake {
    let shutting_down = async {
        shared.shutdown.tripped().await;
        Err(HeadError::ShuttingDown)
    };
    let (head, leftover) = match http::read_head(stream).or(shutting_down).await {
        Ok(read) => read,
        Err(HeadError::TooLarge) => {
            shared.metrics.reject(RejectReason::HeadTooLarge);
            info!("{peer}: 431: request head larger than {} bytes", http::MAX_HEAD_BYTES);
            respond(stream, http::plain_status(Status::HeadTooLarge, false)).await;
            return Handshake::Done;
        }
        Err(HeadError::Malformed(err)) => {
            shared.metrics.reject(RejectReason::BadRequest);
            info!("{peer}: 400: malformed request head: {err}");
            respond(stream, http::plain_status(Status::BadRequest, false)).await;
            return Handshake::Done;
        }
        Err(err) => {
            debug!("{peer}: {err}");
            return Handshake::Done;
        }
    };
    let head_only = head.method == "HEAD";
    let route = http::route(&head, &shared.config.allow_origins);
    if let Some(reply) = check_access(&head, &route, shared, peer) {
        add(&shared.metrics.http_requests, 1);
        respond(stream, reply).await;
        return Handshake::Done;
    }
    let reply = match route {
        Route::Upgrade { key } => return upgrade(stream, peer, head, leftover, &key, shared).await,
        Route::Page => http::response(Status::Ok, "text/html; charset=utf-8", "", app.page().as_bytes(), head_only),
        Route::Health => {
            http::response(Status::Ok, "text/plain; charset=utf-8", "", app.health().as_bytes(), head_only)
        }
        Route::Metrics => {
            let mut text = String::with_capacity(4096);
            shared.metrics.render(&mut text);
            app.write_metrics(&mut text);
            http::response(Status::Ok, "text/plain; version=0.0.4; charset=utf-8", "", text.as_bytes(), head_only)
        }
        Route::Reject(refusal) => {
            let status = refusal.status();
            // Refused upgrades and malformed requests are counted and said; a 404 or 405 elsewhere is routine.
            if head.path == http::WS_PATH || status == Status::BadRequest {
                shared.metrics.reject(status.reject_reason());
                info!("{peer}: {} on {} {}: {refusal}", status.code(), head.method, head.path);
            } else {
                debug!("{peer}: {} on {} {}: {refusal}", status.code(), head.method, head.path);
            }
            http::plain_status(status, head_only)
        }
    };
    add(&shared.metrics.http_requests, 1);
    respond(stream, reply).await;
    Handshake::Done
}

/// With an access key set, the page, `/ws` and `/metrics` need it: `None`
/// lets the request through, `Some` is the answer instead (401, or the 303
/// that moves a `?key=` on the page into a cookie).
fn check_access(head: &RequestHead, route: &Route, shared: &Shared, peer: SocketAddr) -> Option<Vec<u8>> {
    let expected = shared.config.access_key.as_deref()?;
    if !matches!(route, Route::Page | Route::Metrics | Route::Upgrade { .. }) {
        return None;
    }
    match http::presented_key(head) {
        Some(given) if http::keys_match(given, expected) => {
            let redirect = *route == Route::Page && http::key_in_query(head);
            redirect.then(|| http::key_cookie_redirect(expected, shared.config.tls.is_some()))
        }
        given => {
            shared.metrics.reject(RejectReason::Unauthorized);
            let what = if given.is_some() { "wrong" } else { "no" };
            info!("{peer}: 401 on {} {}: {what} access key", head.method, head.path);
            let body = b"401 Unauthorized: this board needs its access key; open the link you were given (it ends in ?key=...)\n";
            let extra = "WWW-Authenticate: Bearer realm=\"smolcanvas\"\r\n";
            Some(http::response(Status::Unauthorized, "text/plain; charset=utf-8", extra, body, head.method == "HEAD"))
        }
    }
}

async fn upgrade(
    stream: &mut Stream,
    peer: SocketAddr,
    head: RequestHead,
    leftover: Vec<u8>,
    key: &str,
    shared: &Arc<Shared>,
) -> Handshake {
    if !shared.take_ip_slot(peer.ip()) {
        let cap = shared.config.max_clients_per_ip;
        shared.metrics.reject(RejectReason::PerIp);
        info!("{peer}: 429: {cap} clients already connected from {}, the limit set by --max-clients-per-ip", peer.ip());
        respond(stream, http::plain_status(Status::TooManyRequests, false)).await;
        return Handshake::Done;
    }
    let max = shared.config.max_clients;
    if shared.clients.fetch_add(1, Ordering::AcqRel) >= max {
        drop(ClientSlotIp(shared.clone(), peer.ip()));
        shared.clients.fetch_sub(1, Ordering::AcqRel);
        shared.metrics.reject(RejectReason::MaxClients);
        info!("{peer}: 503: {max} clients connected, the limit set by --max-clients");
        respond(stream, http::plain_status(Status::Unavailable, false)).await;
        return Handshake::Done;
    }
    add(&shared.metrics.connections_open, 1);
    let slot = ClientSlot(shared.clone(), peer.ip());
    if let Err(err) = stream.write_all(&http::switching_protocols(key)).await {
        debug!("{peer}: upgrade failed: {err}");
        return Handshake::Done;
    }
    add(&shared.metrics.connections_total, 1);
    Handshake::Upgraded(head, leftover, slot)
}

/// Writes a complete response, then closes politely: our side first, then
/// drain (bounded) what the client still sends, so the kernel does not
/// answer unread bytes with a reset that could destroy the response.
pub(crate) async fn respond(stream: &mut Stream, bytes: Vec<u8>) {
    if stream.write_all(&bytes).await.is_err() {
        return;
    }
    // TLS sends close_notify here; both then shut down the TCP write half.
    let _ = stream.close().await;
    let mut sink = [0u8; 1024];
    let drain = async {
        let mut total = 0;
        while let Ok(n @ 1..) = stream.read(&mut sink).await {
            total += n;
            if total > 64 * 1024 {
                break;
            }
        }
    };
    let _ = timeout(Duration::from_secs(1), drain).await;
}
