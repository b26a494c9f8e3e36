//! The [`App`] trait: what an application built on the core supplies.

use std::future::Future;
use std::sync::Arc;

use crate::config::{InvalidConfig, ServerConfig};
use crate::connection::Connection;

/// An application served by the core: a page, health text, metrics, and a WebSocket handler.
///
/// The server calls [`App::serve`] once per upgraded connection, on its own
/// task; everything else (TLS, limits, heartbeats, the close handshake,
/// shutdown) is the core's. An echo app, served on a free port and talked to
/// by a real client:
///
/// ```
/// use std::sync::Arc;
/// use futures_lite::StreamExt;
/// use smolcanvas::{App, Connection, Message, Server, ServerConfig};
///
/// struct Echo;
///
/// impl App for Echo {
///     fn page(&self) -> &'static str {
///         "<!doctype html><p>WebSocket echo at /ws</p>"
///     }
///
///     async fn serve(self: Arc<Self>, mut conn: Connection) {
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
    /// The HTML page served at `/`.
    fn page(&self) -> &'static str;

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
    fn serve(self: Arc<Self>, conn: Connection) -> impl Future<Output = ()> + Send;

    /// Long-running work of the app (an actor such as the canvas hub), run on
    /// the server's executor from start until after [`App::shutdown`].
    fn background(self: Arc<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Called once every connection has ended at shutdown (flush state here).
    fn shutdown(self: Arc<Self>) -> impl Future<Output = ()> + Send {
        async {}
    }
}
