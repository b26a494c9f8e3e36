//! The state the listener and every connection task share: settings,
//! counters, the shutdown wire, the client slots and the live-task count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use event_listener::Event;

use crate::config::ServerConfig;
use crate::connection::ConnectionSettings;
use crate::metrics::Metrics;
use crate::tripwire::Tripwire;
use crate::wire::MAX_FRAME_PAYLOAD;

/// State shared by the listener and every connection task.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) shutdown: Tripwire,
    pub(crate) ws_config: WebSocketConfig,
    /// What every connection is handed.
    pub(crate) connection: Arc<ConnectionSettings>,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<futures_rustls::TlsAcceptor>,
    /// WebSocket clients admitted (the `max-clients` gate).
    pub(crate) clients: AtomicUsize,
    /// Clients per address, with `max-clients-per-ip` set.
    pub(crate) per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Connection tasks alive, and an event when one ends.
    pub(crate) tasks: AtomicUsize,
    task_ended: Event,
}

impl Shared {
    /// The state for a server with `config` (and its TLS acceptor, if any).
    pub(crate) fn new(
        config: ServerConfig,
        #[cfg(feature = "tls")] tls: Option<futures_rustls::TlsAcceptor>,
    ) -> Shared {
        let (metrics, shutdown) = (Arc::new(Metrics::default()), Tripwire::new());
        let connection = Arc::new(ConnectionSettings {
            ping_interval: config.ping_interval,
            idle_timeout: config.idle_timeout,
            shutdown_grace: config.shutdown_grace,
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        });
        Shared {
            ws_config: websocket_config(config.max_message_bytes),
            connection,
            #[cfg(feature = "tls")]
            tls,
            config,
            metrics,
            shutdown,
            clients: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            tasks: AtomicUsize::new(0),
            task_ended: Event::new(),
        }
    }
}

/// tungstenite's read buffer per connection, and the most one read syscall takes.
const READ_BUFFER: usize = 256;
/// Bytes of frames gathered before a write syscall.
const WRITE_BUFFER: usize = 8 * 1024;
/// Most bytes tungstenite may hold for writing to one client: the gathered
/// frames, one full fragment, and 2 KiB for pongs and a close frame.
pub const MAX_WRITE_BUFFER: usize = WRITE_BUFFER + MAX_FRAME_PAYLOAD + 2 * 1024;

/// The WebSocket settings, tuned for small machines.
///
/// - `read_buffer_size` [`READ_BUFFER`]: tungstenite allocates the read
///   buffer eagerly for every connection and never gives it back, and the
///   same setting caps each read syscall (tungstenite 0.30 has no separate
///   chunk size). A draw is ~130 bytes, so 256 still reads one per syscall;
///   a large message (a snapshot) grows the buffer only while it arrives,
///   read 256 bytes per syscall: a 1 MiB upload costs ~4300 reads instead of
///   ~1100 with 1 KiB (about 2.5 ms more server CPU per MiB on this machine),
///   for 768 bytes less per idle connection.
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
pub(crate) fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

impl Shared {
    /// Waits until no connection task is alive.
    pub(crate) async fn drained(&self) {
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
pub(crate) struct TaskGuard(pub(crate) Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Ordering::AcqRel);
        self.0.task_ended.notify(usize::MAX);
    }
}

/// Holds one of the `max-clients` slots (and of its address's, with a per-IP cap).
pub(crate) struct ClientSlot(pub(crate) Arc<Shared>, pub(crate) IpAddr);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
        self.0.release_ip_slot(self.1);
    }
}

/// Gives back an address's slot taken before `max-clients` refused the upgrade.
pub(crate) struct ClientSlotIp(pub(crate) Arc<Shared>, pub(crate) IpAddr);

impl Drop for ClientSlotIp {
    fn drop(&mut self) {
        self.0.release_ip_slot(self.1);
    }
}

impl Shared {
    fn release_ip_slot(&self, ip: IpAddr) {
        if self.config.max_clients_per_ip == 0 {
            return;
        }
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }

    /// Clients connected from `ip` now (counted only with a per-address cap).
    pub(crate) fn ip_clients(&self, ip: IpAddr) -> usize {
        let per_ip = self.per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Takes a slot for `ip` unless it already holds `max-clients-per-ip` (0: no cap).
    pub(crate) fn take_ip_slot(&self, ip: IpAddr) -> bool {
        let cap = self.config.max_clients_per_ip;
        if cap == 0 {
            return true;
        }
        // Only upgrades and disconnects touch this map, never a message.
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= cap {
            return false;
        }
        *count += 1;
        true
    }
}
