//! Listener, connection limit, upgrade, graceful shutdown: the part every app reuses.
//!
//! An app implements [`App`]: it supplies the page served at `/`, optional
//! health and metrics text, and a handler for each upgraded connection. The
//! server does the rest: it accepts connections (each one is taken up to the
//! upgrade by the `accept` module: TLS, request head, routing, limits) and,
//! on shutdown, stops accepting, closes every client with 1001, waits a
//! bounded time for them and then lets the app flush its state.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use event_listener::Event;
use futures_lite::future::FutureExt;
use log::{info, warn};
use smol::{Async, Executor, Timer};

use crate::accept;
use crate::config::ServerConfig;
use crate::connection::{Connection, MAX_FRAME_PAYLOAD};
use crate::http;
use crate::metrics::Metrics;
use crate::stream::TcpStream;
use crate::tripwire::Tripwire;

/// An application served by the core: a page, health text, metrics, and a WebSocket handler.
pub trait App: Send + Sync + 'static {
    /// The HTML page served at `/`.
    fn page(&self) -> &'static str;

    /// The body of `/healthz` (always status 200).
    fn health(&self) -> String {
        "ok".to_string()
    }

    /// The largest message a new connection may send before the app changes
    /// it through [`Connection::message_limit`] (never above `max-message-bytes`).
    fn message_limit(&self) -> usize {
        usize::MAX
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

/// Why the server could not start or stopped with an error.
#[derive(Debug)]
pub enum ServerError {
    /// The listening address cannot be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// Serving failed.
    Io(io::Error),
    /// The TLS certificate or key cannot be used.
    #[cfg(feature = "tls")]
    Tls(crate::tls::TlsError),
    /// TLS files were given to a build without the `tls` feature.
    TlsNotBuilt,
}

impl ServerError {
    /// Whether the configuration is at fault (the binary exits with 2 then).
    pub fn is_config(&self) -> bool {
        !matches!(self, ServerError::Io(_) | ServerError::Bind { .. })
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {}", bind_reason(source)),
            ServerError::Io(err) => write!(f, "{err}"),
            #[cfg(feature = "tls")]
            ServerError::Tls(err) => write!(f, "{err}"),
            ServerError::TlsNotBuilt => write!(f, "--tls-cert given, but this build has no TLS (cargo feature `tls`)"),
        }
    }
}

impl std::error::Error for ServerError {}

/// Why an address cannot be bound, in the words of whoever runs the server.
fn bind_reason(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => "the port is in use (by another smolcanvas?)".to_string(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)".to_string()
        }
        io::ErrorKind::AddrNotAvailable => "no network interface of this machine has that address".to_string(),
        _ => err.to_string(),
    }
}

impl From<io::Error> for ServerError {
    fn from(err: io::Error) -> Self {
        ServerError::Io(err)
    }
}

/// State shared by the listener and every connection task.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutdown: Tripwire,
    pub(crate) ws_config: WebSocketConfig,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<futures_rustls::TlsAcceptor>,
    /// WebSocket clients admitted (the `max-clients` gate).
    pub(crate) clients: AtomicUsize,
    /// Clients per address, with `max-clients-per-ip` set.
    pub(crate) per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Connection tasks alive, and an event when one ends.
    tasks: AtomicUsize,
    task_ended: Event,
}

/// Bytes of frames gathered before a write syscall.
const WRITE_BUFFER: usize = 8 * 1024;
/// Most bytes tungstenite may hold for writing to one client: the gathered
/// frames, one full fragment, and 2 KiB for pongs and a close frame.
pub const MAX_WRITE_BUFFER: usize = WRITE_BUFFER + MAX_FRAME_PAYLOAD + 2 * 1024;

/// The WebSocket settings, tuned for small machines.
///
/// - `read_buffer_size` 1 KiB: tungstenite allocates the read buffer eagerly
///   for every connection; its 128 KiB default would cost 640 MiB for 5 000
///   idle clients. A draw is ~130 bytes, so 1 KiB still takes several per
///   read; a large message (a snapshot) grows the buffer only while it
///   arrives, read 1 KiB per syscall.
/// - `write_buffer_size` 8 KiB: frames are gathered up to this before a
///   write syscall; the connection flushes once per batch anyway.
/// - `max_write_buffer_size` [`MAX_WRITE_BUFFER`]: the gathered frames, one
///   frame of at most [`MAX_FRAME_PAYLOAD`] (larger messages are fragmented)
///   and room for control frames. tungstenite queues a pong for every ping
///   into this buffer, so this bound is what a client that sends pings and
///   never reads can make the server hold.
/// - `max_message_size` = `max_frame_size` = `max-message-bytes`: tungstenite
///   reserves a frame's declared length as soon as its header arrives, so its
///   16 MiB frame default would let any client make the server reserve 16 MiB.
pub fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

/// A bound listener with its app, ready to [`run`](Server::run).
pub struct Server<A: App> {
    listener: Async<TcpListener>,
    app: Arc<A>,
    shared: Arc<Shared>,
}

impl<A: App> Server<A> {
    /// Binds `config.listen` (port 0 picks a free port) and loads the TLS
    /// certificate, if any.
    pub fn bind(config: ServerConfig, app: A) -> Result<Self, ServerError> {
        #[cfg(feature = "tls")]
        let tls = match &config.tls {
            Some(files) => Some(crate::tls::acceptor(&files.cert, &files.key).map_err(ServerError::Tls)?),
            None => None,
        };
        #[cfg(not(feature = "tls"))]
        if config.tls.is_some() {
            return Err(ServerError::TlsNotBuilt);
        }
        let listener = Async::<TcpListener>::bind(config.listen)
            .map_err(|source| ServerError::Bind { addr: config.listen, source })?;
        let shared = Arc::new(Shared {
            ws_config: websocket_config(config.max_message_bytes),
            #[cfg(feature = "tls")]
            tls,
            config,
            metrics: Arc::new(Metrics::default()),
            shutdown: Tripwire::new(),
            clients: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            tasks: AtomicUsize::new(0),
            task_ended: Event::new(),
        });
        Ok(Server { listener, app: Arc::new(app), shared })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.get_ref().local_addr()
    }

    /// Trip this wire to shut the server down gracefully.
    pub fn shutdown_wire(&self) -> Tripwire {
        self.shared.shutdown.clone()
    }

    /// The server's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The app being served.
    pub fn app(&self) -> Arc<A> {
        self.app.clone()
    }

    /// Accepts connections until the shutdown wire trips, then drains them
    /// (bounded by `shutdown-grace`) and calls [`App::shutdown`].
    /// Connection tasks run on `executor`.
    pub async fn run(self, executor: &Executor<'static>) -> io::Result<()> {
        let addr = self.local_addr()?;
        let (http, ws) = if self.shared.config.tls.is_some() { ("https", "wss") } else { ("http", "ws") };
        info!("listening on {http}://{addr} (WebSocket at {ws}://{addr}{})", http::WS_PATH);
        let key = if self.shared.config.access_key.is_some() { " (add ?key= and the access key)" } else { "" };
        info!("open {}{key}", crate::urls::page_urls(addr, self.shared.config.tls.is_some()).join(" or "));
        let background = executor.spawn(self.app.clone().background());
        let shared = &self.shared;
        loop {
            let accepted = async { Some(self.listener.accept().await) }
                .or(async {
                    shared.shutdown.tripped().await;
                    None
                })
                .await;
            match accepted {
                None => break,
                Some(Ok((io, peer))) => {
                    let _ = io.get_ref().set_nodelay(true);
                    let stream = TcpStream::new(io);
                    shared.tasks.fetch_add(1, Ordering::AcqRel);
                    let task = TaskGuard(shared.clone());
                    let (app, shared) = (self.app.clone(), shared.clone());
                    executor
                        .spawn(async move {
                            accept::handle(stream, peer, app, shared).await;
                            drop(task);
                        })
                        .detach();
                }
                Some(Err(err)) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    warn!("accept failed: {err}");
                    Timer::after(Duration::from_millis(100)).await;
                }
            }
        }
        drop(self.listener);
        let total = shared.metrics.connections_total.load(Ordering::Relaxed);
        info!("shutting down: stopped accepting; every client is closed with 1001 ({total} served since start)");
        let drained = shared.drained().or(async {
            Timer::after(shared.config.shutdown_grace + Duration::from_secs(1)).await;
        });
        drained.await;
        let left = shared.tasks.load(Ordering::Acquire);
        if left > 0 {
            warn!("{left} connection(s) did not close in time; dropping them");
        } else {
            info!("every connection is closed");
        }
        self.app.shutdown().await;
        background.cancel().await;
        info!("shutdown complete");
        Ok(())
    }
}

impl Shared {
    async fn drained(&self) {
        loop {
            let listener = self.task_ended.listen();
            if self.tasks.load(Ordering::Acquire) == 0 {
                return;
            }
            listener.await;
        }
    }
}

/// Counts a live connection task; wakes the drain when it ends.
struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Ordering::AcqRel);
        self.0.task_ended.notify(usize::MAX);
    }
}

/// Trips `wire` on the first SIGINT or SIGTERM; exits the process at once on the second.
pub async fn stop_on_signals(wire: Tripwire) -> io::Result<()> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Int, Signal::Term])?;
    if let Some(signal) = futures_lite::StreamExt::next(&mut signals).await {
        info!("received {}: shutting down (send it again to exit at once)", signal_name(signal?));
        wire.trip();
    }
    if let Some(signal) = futures_lite::StreamExt::next(&mut signals).await {
        warn!("received {} again: exiting now", signal_name(signal?));
        std::process::exit(130);
    }
    Ok(())
}

fn signal_name(signal: async_signal::Signal) -> &'static str {
    match signal {
        async_signal::Signal::Int => "SIGINT",
        async_signal::Signal::Term => "SIGTERM",
        _ => "a signal",
    }
}

/// Raises the soft limit on open files towards the hard limit (as Go does),
/// since each client is one file descriptor and many systems start at 1024;
/// warns when the limit still cannot hold `max_clients`.
pub fn raise_fd_limit(max_clients: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = max_clients as u64 + 64;
    let target = match limit.maximum {
        Some(hard) => hard.min(wanted.max(limit.current.unwrap_or(0))),
        None => wanted,
    };
    let mut current = limit.current;
    if current.is_some_and(|soft| soft < target) {
        match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }) {
            Ok(()) => current = Some(target),
            Err(err) => warn!("cannot raise the open-file limit to {target}: {err}"),
        }
    }
    if let Some(soft) = current.filter(|soft| *soft < wanted) {
        warn!(
            "open-file limit is {soft}: fewer than --max-clients {max_clients} clients can connect (raise it, e.g. LimitNOFILE= in the systemd unit)"
        );
    }
}

/// Runs `app` on `config` until SIGINT/SIGTERM: binds, runs `config.threads`
/// executor threads, shuts down gracefully. What the binary and examples call.
pub fn run<A: App>(config: ServerConfig, app: A) -> Result<(), ServerError> {
    let threads = config.threads;
    raise_fd_limit(config.max_clients);
    let server = Server::bind(config, app)?;
    let wire = server.shutdown_wire();
    let executor: Arc<Executor<'static>> = Arc::new(Executor::new());
    let done = Tripwire::new();
    let workers: Vec<_> = (1..threads)
        .map(|i| {
            let (executor, done) = (executor.clone(), done.clone());
            std::thread::Builder::new()
                .name(format!("smolcanvas-{i}"))
                .spawn(move || smol::block_on(executor.run(done.tripped())))
        })
        .collect::<io::Result<_>>()?;
    let signals = executor.spawn(stop_on_signals(wire));
    // The server runs as a task of its own: the future given to `run` is
    // polled on every wake-up of the executor, and an accept loop there would
    // retry accept(2) and re-arm the listener once per message sent.
    let server = executor.spawn({
        let executor = executor.clone();
        async move { server.run(&executor).await }
    });
    let result = smol::block_on(executor.run(async {
        let result = server.await;
        drop(signals);
        result
    }));
    done.trip();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(result?)
}

/// Waits for a future, at most `duration`; `None` if time ran out.
pub async fn timeout<T>(duration: Duration, fut: impl Future<Output = T>) -> Option<T> {
    async { Some(fut.await) }
        .or(async {
            Timer::after(duration).await;
            None
        })
        .await
}
