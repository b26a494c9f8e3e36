//! Listener, connection limit, upgrade, graceful shutdown: the part every app reuses.
//!
//! An app implements [`App`]: it supplies the page served at `/`, optional
//! health and metrics text, and a handler for each upgraded connection. The
//! server does the rest: it accepts connections (each one is taken up to the
//! upgrade by the `accept` module: TLS, request head, routing, limits) and,
//! on shutdown, stops accepting, closes every client with 1001, waits a
//! bounded time for them and then lets the app flush its state.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_lite::future::FutureExt;
use log::{info, warn};
use smol::{Async, Executor, Timer};

use crate::accept;
use crate::app::{App, BoxedTask, Spawner};
use crate::config::{InvalidConfig, ServerConfig};
use crate::http;
use crate::metrics::Metrics;
use crate::os::{raise_fd_limit, stop_on_signals};
use crate::shared::{Shared, TaskGuard};
use crate::stream::TcpStream;
use crate::tripwire::Tripwire;

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
    /// Settings that do not agree with each other or with the app.
    Config(InvalidConfig),
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
            ServerError::Config(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Bind { source, .. } | ServerError::Io(source) => Some(source),
            #[cfg(feature = "tls")]
            ServerError::Tls(err) => Some(err),
            ServerError::Config(err) => Some(err),
            ServerError::TlsNotBuilt => None,
        }
    }
}

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

/// A bound listener with its app, ready to [`run`](Server::run).
pub struct Server<A: App> {
    listener: Async<TcpListener>,
    app: Arc<A>,
    shared: Arc<Shared>,
}

impl<A: App> std::fmt::Debug for Server<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.local_addr().ok()).finish_non_exhaustive()
    }
}

impl<A: App> Server<A> {
    /// Binds `config.listen` (port 0 picks a free port) and loads the TLS
    /// certificate, if any.
    pub fn bind(config: ServerConfig, app: A) -> Result<Self, ServerError> {
        config.validate().map_err(ServerError::Config)?;
        app.check(&config).map_err(ServerError::Config)?;
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
        let shared = Arc::new(Shared::new(
            config,
            #[cfg(feature = "tls")]
            tls,
        ));
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
        let (spawner, spawns) = async_channel::unbounded();
        let background = executor.spawn(self.app.clone().background(Spawner(spawner)));
        let shared = &self.shared;
        loop {
            let woke = async { Woke::Accepted(self.listener.accept().await) }
                .or(async {
                    shared.shutdown.tripped().await;
                    Woke::Stop
                })
                .or(async {
                    match spawns.recv().await {
                        Ok(task) => Woke::Spawn(task),
                        Err(_) => std::future::pending().await,
                    }
                })
                .await;
            let accepted = match woke {
                Woke::Stop => None,
                Woke::Accepted(accepted) => Some(accepted),
                Woke::Spawn(task) => {
                    // Tasks the app starts (one per board, say) run beside the connections.
                    executor.spawn(task).detach();
                    continue;
                }
            };
            match accepted {
                None => break,
                Some(Ok((io, peer))) => {
                    let _ = io.get_ref().set_nodelay(true);
                    let stream = TcpStream::new(io);
                    shared.tasks.fetch_add(1, Ordering::AcqRel);
                    let task = TaskGuard(shared.clone());
                    executor.spawn(accept::handle(stream, peer, self.app.clone(), shared.clone(), task)).detach();
                }
                Some(Err(err)) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    warn!("accept failed: {err}");
                    Timer::after(Duration::from_millis(100)).await;
                }
            }
        }
        drop(self.listener);
        self.app.stopping();
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
        // Tasks the app starts while it shuts down (say, a board's last flush).
        let spawning = async {
            while let Ok(task) = spawns.recv().await {
                executor.spawn(task).detach();
            }
        };
        self.app.shutdown().or(spawning).await;
        background.cancel().await;
        info!("shutdown complete");
        Ok(())
    }
}

/// What the accept loop woke up for.
enum Woke {
    Accepted(io::Result<(Async<std::net::TcpStream>, SocketAddr)>),
    Spawn(BoxedTask),
    Stop,
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
