//! The [`App`] trait: what an application built on the core supplies.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::{InvalidConfig, ServerConfig};
use crate::connection::Connection;
use crate::http::{RequestHead, Status};

/// An application served by the core: its routes, health text, metrics, and a WebSocket handler.
///
/// The core answers `/healthz` and `/metrics` itself and asks [`App::route`]
/// about every other path; it calls [`App::serve`] once per upgraded
/// connection, on its own task, with the endpoint the route named.
/// Everything else (TLS, limits, heartbeats, the close handshake, shutdown)
/// is the core's. An echo app, served on a free port and talked to by a real
/// client:
///
/// ```
/// use std::sync::Arc;
/// use futures_lite::StreamExt;
/// use smolcanvas::{App, Connection, Message, Request, Routed, Server, ServerConfig};
///
/// struct Echo;
///
/// impl App for Echo {
///     type Endpoint = ();
///
///     fn route(&self, request: &Request<'_>) -> Routed<()> {
///         Routed::page_and_socket(request, "<!doctype html><p>WebSocket echo at /ws</p>", ())
///     }
///
///     async fn serve(self: Arc<Self>, mut conn: Connection, _endpoint: ()) {
///         while let Some(message) = conn.recv().await {
///             if conn.send(message).await.is_err() {
///                 break;
///             }
///         }
///     }
/// }
///
/// let config = ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() };
/// let server = Server::bind(config, Echo).unwrap();
/// let (addr, wire) = (server.local_addr().unwrap(), server.shutdown_wire());
/// let executor: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
/// smol::block_on(executor.run(async {
///     let serving = executor.spawn(server.run(executor));
///     let tcp = smol::net::TcpStream::connect(addr).await.unwrap();
///     let (mut client, _) = async_tungstenite::client_async(format!("ws://{addr}/ws"), tcp).await.unwrap();
///     client.send(Message::text("hello")).await.unwrap();
///     assert_eq!(client.next().await.unwrap().unwrap(), Message::text("hello"));
///     // Shutdown closes the client with 1001 and returns once it is gone.
///     wire.trip();
///     assert!(client.next().await.unwrap().unwrap().is_close());
///     serving.await.unwrap();
/// }));
/// ```
pub trait App: Send + Sync + 'static {
    /// What a WebSocket route hands to [`App::serve`] (the canvas: the board
    /// and the client's role). Dropped unused when the upgrade is refused.
    type Endpoint: Send + 'static;

    /// Where a request for a path other than `/healthz` and `/metrics` goes.
    /// `request.upgrade` says whether it asks for a WebSocket (its headers
    /// and Origin are already checked); a socket path asked for without one
    /// is [`Routed::UpgradeRequired`] (a [`Routed::Socket`] is answered the same).
    fn route(&self, request: &Request<'_>) -> Routed<Self::Endpoint>;

    /// Whether `path` is served without the access key (`/healthz` always
    /// is; by default nothing else).
    fn public(&self, _path: &str) -> bool {
        false
    }

    /// The body of `/healthz` (always status 200).
    fn health(&self) -> String {
        "ok".to_string()
    }

    /// The largest message a new connection may send before the app changes
    /// it (the canvas raises it for a peer it asks for a snapshot); never above `max-message-bytes`.
    fn message_limit(&self) -> usize {
        usize::MAX
    }

    /// Checks that the server's settings suit the app (say, that
    /// `max_message_bytes` admits the largest message the app asks for);
    /// [`Server::bind`](crate::Server::bind) refuses to start otherwise.
    fn check(&self, _server: &ServerConfig) -> Result<(), InvalidConfig> {
        Ok(())
    }

    /// Appends the app's own metrics (Prometheus text) to `/metrics`.
    fn write_metrics(&self, _out: &mut String) {}

    /// Runs one upgraded connection until it is over.
    fn serve(self: Arc<Self>, conn: Connection, endpoint: Self::Endpoint) -> impl Future<Output = ()> + Send;

    /// Long-running work of the app (an actor such as the canvas hub), run on
    /// the server's executor from start until after [`App::shutdown`];
    /// `spawner` starts more tasks there.
    fn background(self: Arc<Self>, _spawner: Spawner) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Called when shutdown begins, before connections are closed (say
    /// goodbye to clients here).
    fn stopping(&self) {}

    /// Called once every connection has ended at shutdown (flush state here).
    fn shutdown(self: Arc<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// A request as [`App::route`] sees it.
#[derive(Debug)]
pub struct Request<'a> {
    /// The path, without the query.
    pub path: &'a str,
    /// The query string, if any.
    pub query: Option<&'a str>,
    /// Whether this is a WebSocket upgrade (headers and Origin already checked).
    pub upgrade: bool,
    /// The subprotocols the client offered (`Sec-WebSocket-Protocol`), in its order.
    pub protocols: Vec<&'a str>,
    pub(crate) head: &'a RequestHead,
}

impl Request<'_> {
    /// Whether the client offered subprotocol `name`.
    pub fn offers(&self, name: &str) -> bool {
        self.protocols.contains(&name)
    }

    /// The value of header `name` (case-insensitive; the first if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

/// A complete HTTP answer an app gives.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: Status,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra header lines, each ending in `\r\n`.
    pub headers: String,
    /// The body (dropped for `HEAD`).
    pub body: Cow<'static, [u8]>,
}

impl Reply {
    /// A plain-text answer.
    pub fn text(status: Status, body: impl Into<String>) -> Reply {
        let body = body.into().into_bytes();
        Reply { status, content_type: "text/plain; charset=utf-8", headers: String::new(), body: Cow::Owned(body) }
    }

    /// `200` with an HTML page.
    pub fn html(page: &'static str) -> Reply {
        Reply {
            status: Status::Ok,
            content_type: "text/html; charset=utf-8",
            headers: String::new(),
            body: Cow::Borrowed(page.as_bytes()),
        }
    }

    /// `303 See Other` to `location`.
    pub fn see_other(location: &str) -> Reply {
        Reply { headers: format!("Location: {location}\r\n"), ..Reply::text(Status::SeeOther, "303 See Other\n") }
    }
}

/// An answer computed off the accept path (say, an image rendered on demand).
pub type LaterReply = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// What [`App::route`] makes of a request.
pub enum Routed<E> {
    /// Answer now.
    Reply(Reply),
    /// Answer when the future is ready (bounded by the handshake timeout).
    Later(LaterReply),
    /// A WebSocket endpoint: upgrade (within the client limits) and serve `endpoint`.
    Socket {
        /// What [`App::serve`] gets.
        endpoint: E,
        /// The subprotocol chosen from those offered, sent in the `101`.
        protocol: Option<&'static str>,
    },
    /// A WebSocket path asked for without an upgrade: `426`.
    UpgradeRequired,
    /// No such path: `404`.
    NotFound,
}

impl<E> Routed<E> {
    /// The one-page app: `page` at `/`, and `endpoint` as the socket at `/ws`.
    pub fn page_and_socket(request: &Request<'_>, page: &'static str, endpoint: E) -> Routed<E> {
        match request.path {
            "/" | "/index.html" => Routed::Reply(Reply::html(page)),
            crate::http::WS_PATH if request.upgrade => Routed::Socket { endpoint, protocol: None },
            crate::http::WS_PATH => Routed::UpgradeRequired,
            _ => Routed::NotFound,
        }
    }
}

impl<E> std::fmt::Debug for Routed<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Routed::Reply(reply) => f.debug_tuple("Reply").field(reply).finish(),
            Routed::Later(_) => f.write_str("Later"),
            Routed::Socket { protocol, .. } => f.debug_struct("Socket").field("protocol", protocol).finish(),
            Routed::UpgradeRequired => f.write_str("UpgradeRequired"),
            Routed::NotFound => f.write_str("NotFound"),
        }
    }
}

/// Starts tasks on the server's executor (see [`App::background`]).
#[derive(Clone, Debug)]
pub struct Spawner(pub(crate) async_channel::Sender<BoxedTask>);

/// A task handed to a [`Spawner`].
pub(crate) type BoxedTask = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Spawner {
    /// Runs `task` to completion on the server's executor, detached.
    /// Returns `false` when the server is no longer running.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) -> bool {
        self.0.try_send(Box::pin(task)).is_ok()
    }
}
