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

use crate::app::{App, Reply, Request, Routed};
use crate::connection::Connection;
use crate::http::{self, HeadError, Refusal, RequestHead, Route, Status};
use crate::limit::{Guarded, MessageLimit};
use crate::metrics::{RejectReason, add};
use crate::shared::{ClientSlot, ClientSlotIp, Shared, TaskGuard};
use crate::stream::{Stream, TcpStream};
use crate::timeout::timeout;

/// What the bounded part of a connection (head + upgrade) ended with.
enum Handshake<E> {
    Done,
    Upgraded(RequestHead, Vec<u8>, ClientSlot, E),
}

/// A connection's whole task: the upgrade, then the app's handler until it ends.
///
/// Of everything here, only the handler's future, the client slot and the
/// task guard stay in the task while it serves: the accepted socket and what
/// the upgrade needs travel in one box that the upgrade consumes, and the
/// upgrade itself runs in a future boxed for its duration. (Captured values
/// and the locals of an earlier await would otherwise keep their room in
/// every connection's task for its whole life.)
pub(crate) fn handle<A: App>(
    tcp: TcpStream,
    peer: SocketAddr,
    app: Arc<A>,
    shared: Arc<Shared>,
    task: TaskGuard,
) -> impl Future<Output = ()> + Send + 'static {
    let accepted = Box::new((tcp, peer, app, shared));
    async move {
        // Moved out of a temporary, so that the box is freed here, not when the task ends.
        let (tcp, peer, app, shared) = *{ accepted };
        // let-else, not if-let: the upgrade's result is moved apart at once instead of
        // keeping its room (a whole `Connection`) beside the handler's future.
        let Some((conn, slot, endpoint)) = Box::pin(open_socket(tcp, peer, &app, shared)).await else {
            return;
        };
        // The connection logs its end when the handler drops it.
        app.serve(conn, endpoint).await;
        drop(slot);
        drop(task);
    }
}

/// Everything up to the upgrade, within the handshake timeout; the
/// connection for the app's handler, its client slot and its endpoint.
async fn open_socket<A: App>(
    tcp: TcpStream,
    peer: SocketAddr,
    app: &Arc<A>,
    shared: Arc<Shared>,
) -> Option<(Connection, ClientSlot, A::Endpoint)> {
    let shared = &shared;
    let timeout = shared.config.handshake_timeout;
    // The TLS handshake, the request head and the upgrade share one time bound.
    let bounded = async {
        let mut stream = open(tcp, peer, shared).await?;
        match handshake(&mut stream, peer, app, shared).await {
            Handshake::Done => None,
            Handshake::Upgraded(head, leftover, slot, endpoint) => Some((stream, head, leftover, slot, endpoint)),
        }
    };
    let timed_out = async {
        Timer::after(timeout).await;
        shared.metrics.reject(RejectReason::Timeout);
        info!("{peer}: closed: request head and upgrade not complete within {timeout:?}");
        None
    };
    let (stream, head, leftover, slot, endpoint) = bounded.or(timed_out).await?;
    debug!("{peer}: upgraded {}", head.path);
    let limit = MessageLimit::new(app.message_limit().min(shared.config.max_message_bytes));
    let mut guarded = Guarded::new(stream, limit.clone());
    // Bytes that came with the request head reach tungstenite without a read: check them here.
    if let Err(too_big) = guarded.inspect(&leftover) {
        info!("{peer}: closed: {too_big}");
        return None;
    }
    let ws = WebSocketStream::from_partially_read(guarded, leftover, Role::Server, Some(shared.ws_config)).await;
    Some((Connection::new(ws, limit, peer, head.path, head.query, shared.connection.clone()), slot, endpoint))
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

async fn handshake<A: App>(
    stream: &mut Stream,
    peer: SocketAddr,
    app: &Arc<A>,
    shared: &Arc<Shared>,
) -> Handshake<A::Endpoint> {
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
    if let Some(reply) = check_access(&head, &route, app.as_ref(), shared, peer) {
        add(&shared.metrics.http_requests, 1);
        respond(stream, reply).await;
        return Handshake::Done;
    }
    let reply = match route {
        Route::Health => {
            http::response(Status::Ok, "text/plain; charset=utf-8", "", app.health().as_bytes(), head_only)
        }
        Route::Metrics => {
            let mut text = String::with_capacity(4096);
            shared.metrics.render(&mut text);
            app.write_metrics(&mut text);
            http::response(Status::Ok, "text/plain; version=0.0.4; charset=utf-8", "", text.as_bytes(), head_only)
        }
        Route::App { upgrade: key } => {
            let request = Request {
                path: &head.path,
                query: head.query.as_deref(),
                upgrade: key.is_some(),
                protocols: http::offered_protocols(&head),
                head: &head,
            };
            // A page's probe names its origin: answer as the upgrade would, before anything else.
            if key.is_none()
                && let Some(origin) = head.header(http::PROBE_ORIGIN_HEADER)
                && let Some(refusal) = http::origin_refusal(&head, origin, &shared.config.allow_origins)
            {
                debug!("{peer}: 403 on a probe of {}: {refusal}", head.path);
                let body = format!("403 Forbidden: {refusal}\n");
                add(&shared.metrics.http_requests, 1);
                respond(
                    stream,
                    http::response(Status::Forbidden, "text/plain; charset=utf-8", "", body.as_bytes(), head_only),
                )
                .await;
                return Handshake::Done;
            }
            let routed = app.route(&request);
            match (routed, key) {
                (Routed::Socket { endpoint, protocol }, Some(key)) => {
                    return upgrade(stream, peer, head, leftover, &key, protocol, endpoint, shared).await;
                }
                (Routed::Socket { .. } | Routed::UpgradeRequired, None) => probe(&head, peer, shared, head_only),
                (Routed::UpgradeRequired, Some(_)) => {
                    refuse(&head, Refusal::NotUpgrade("the app expects no upgrade here"), peer, shared, head_only)
                }
                (Routed::NotFound, key) => {
                    let refusal = Refusal::NotFound;
                    if key.is_some() {
                        refuse(&head, refusal, peer, shared, head_only)
                    } else {
                        debug!("{peer}: 404 on {} {}: {refusal}", head.method, head.path);
                        http::plain_status(Status::NotFound, head_only)
                    }
                }
                (Routed::Reply(reply), key) => {
                    if key.is_some() && reply.status.code() >= 400 {
                        let reason = match reply.status {
                            Status::Unavailable => RejectReason::AppLimit,
                            status => status.reject_reason(),
                        };
                        shared.metrics.reject(reason);
                        info!(
                            "{peer}: {} on {} {}: {}",
                            reply.status.code(),
                            head.method,
                            head.path,
                            reply_text(&reply)
                        );
                    }
                    reply_bytes(&reply, head_only)
                }
                (Routed::Later(later), _) => reply_bytes(&later.await, head_only),
            }
        }
        Route::Reject(refusal) => refuse(&head, refusal, peer, shared, head_only),
    };
    add(&shared.metrics.http_requests, 1);
    respond(stream, reply).await;
    Handshake::Done
}

/// A plain GET of a socket path: what an upgrade from this client would get
/// now, short of the upgrade itself (the 403 for the Origin it names in
/// `X-Smolcanvas-Origin`, which a same-origin GET cannot send as `Origin`,
/// is answered before the app routes it; here 429 or 503 for the client
/// limits), else 426, which is no refusal and is neither counted nor logged. A page asks this to tell its
/// user why its socket failed: a browser never shows a refused upgrade's status.
fn probe(head: &RequestHead, peer: SocketAddr, shared: &Shared, head_only: bool) -> Vec<u8> {
    let cap = shared.config.max_clients_per_ip;
    if cap > 0 && shared.ip_clients(peer.ip()) >= cap {
        let body = format!(
            "429 Too Many Requests: {cap} clients already connected from this address (--max-clients-per-ip)\n"
        );
        return http::response(Status::TooManyRequests, "text/plain; charset=utf-8", "", body.as_bytes(), head_only);
    }
    let max = shared.config.max_clients;
    if shared.clients.load(Ordering::Acquire) >= max {
        let body = format!("503 Service Unavailable: {max} clients connected, the limit set by --max-clients\n");
        return http::response(Status::Unavailable, "text/plain; charset=utf-8", "", body.as_bytes(), head_only);
    }
    let missing = if head.method == "GET" { "no `Upgrade: websocket` header" } else { "an upgrade is a GET request" };
    debug!("{peer}: 426 on {} {}: {}", head.method, head.path, Refusal::NotUpgrade(missing));
    http::plain_status(Status::UpgradeRequired, head_only)
}

/// The answer to a refused request. Refused upgrades and malformed requests
/// are counted and said; a 404 or 405 elsewhere is routine.
fn refuse(head: &RequestHead, refusal: Refusal, peer: SocketAddr, shared: &Shared, head_only: bool) -> Vec<u8> {
    let status = refusal.status();
    if head.has_token("upgrade", "websocket") || status == Status::BadRequest || status == Status::UpgradeRequired {
        shared.metrics.reject(status.reject_reason());
        info!("{peer}: {} on {} {}: {refusal}", status.code(), head.method, head.path);
    } else {
        debug!("{peer}: {} on {} {}: {refusal}", status.code(), head.method, head.path);
    }
    http::plain_status(status, head_only)
}

fn reply_bytes(reply: &Reply, head_only: bool) -> Vec<u8> {
    http::response(reply.status, reply.content_type, &reply.headers, &reply.body, head_only)
}

/// A plain-text reply's body, for the log line.
fn reply_text(reply: &Reply) -> &str {
    std::str::from_utf8(&reply.body).unwrap_or("").trim_end()
}

/// With an access key set, the page, `/ws` and `/metrics` need it: `None`
/// lets the request through, `Some` is the answer instead (401, or the 303
/// that moves a `?key=` on the page into a cookie).
fn check_access<A: App>(
    head: &RequestHead,
    route: &Route,
    app: &A,
    shared: &Shared,
    peer: SocketAddr,
) -> Option<Vec<u8>> {
    let expected = shared.config.access_key.as_deref()?;
    let guarded = match route {
        Route::Metrics => true,
        Route::App { .. } => !app.public(&head.path),
        Route::Health | Route::Reject(_) => false,
    };
    if !guarded {
        return None;
    }
    match http::presented_key(head) {
        Some(given) if http::keys_match(given, expected) => {
            let redirect = *route == Route::App { upgrade: None } && http::key_in_query(head);
            redirect.then(|| http::key_cookie_redirect(expected, shared.config.tls.is_some(), &head.path))
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

#[allow(clippy::too_many_arguments)]
async fn upgrade<E>(
    stream: &mut Stream,
    peer: SocketAddr,
    head: RequestHead,
    leftover: Vec<u8>,
    key: &str,
    protocol: Option<&str>,
    endpoint: E,
    shared: &Arc<Shared>,
) -> Handshake<E> {
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
    if let Err(err) = stream.write_all(&http::switching_protocols(key, protocol)).await {
        debug!("{peer}: upgrade failed: {err}");
        return Handshake::Done;
    }
    add(&shared.metrics.connections_total, 1);
    Handshake::Upgraded(head, leftover, slot, endpoint)
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
