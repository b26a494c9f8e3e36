//! State shared by every client of a run (all on one thread): connection bookkeeping,
//! what clients saw, and the table of draw send times.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::Error as WsError;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use futures_lite::future;
use serde::Deserialize;
use smol::Timer;
use smol::lock::Semaphore;
use smol::net::TcpStream;

use crate::histogram::Histogram;
use crate::snapshot::Snapshot;

pub type Ws = WebSocketStream<TcpStream>;

/// tungstenite zero-fills its read buffer on every read: keep it small.
const READ_BUFFER: usize = 8 * 1024;
pub const HANDSHAKES_IN_FLIGHT: usize = 256;
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// A draw's sequence number is split over two coordinates: `startY` = seq mod this, `endX` = seq div this.
pub const SEQ_SPLIT: usize = 10_000;

/// A server URL the run connects to, and its address.
pub struct Target {
    pub url: String,
    pub addr: SocketAddr,
}

/// What the clients of one target received, kept when a run has several targets.
#[derive(Default)]
struct TargetStats {
    delivered: Cell<u64>,
    latencies: RefCell<Histogram>,
}

pub struct Load {
    targets: Vec<Target>,
    /// Per target, when there are several.
    target_stats: Vec<TargetStats>,
    base: Instant,
    handshakes: Semaphore,
    pub snapshot: Snapshot,
    slots: Vec<Slot>,
    pub open: Cell<usize>,
    pub attempted: Cell<usize>,
    connect_failed: Cell<usize>,
    pub connect_errors: Tally,
    closed_by_server: Cell<usize>,
    pub closes: Tally,
    pub server_errors: Cell<u64>,
    first_server_error: RefCell<Option<String>>,
    pub answered: Cell<u64>,
    pub sent: Cell<u64>,
    pub delivered: Cell<u64>,
    pub unmatched: Cell<u64>,
    pub latencies: RefCell<Histogram>,
    /// `[sender][seq]`: nanoseconds since `base` when the draw was written, plus one (0 = not sent).
    send_ns: Vec<Vec<Cell<u64>>>,
    pub max_send_lag: Cell<Duration>,
}

#[derive(Default)]
struct Slot {
    open: Cell<bool>,
    count: Cell<u32>,
    /// Index into `targets`.
    target: usize,
}

/// Counts by reason, printed as `# {label} {reason} {count}` lines.
#[derive(Default)]
pub struct Tally(RefCell<BTreeMap<String, u64>>);

impl Tally {
    pub fn add(&self, key: String) {
        *self.0.borrow_mut().entry(key).or_default() += 1;
    }

    pub fn print(&self, label: &str) {
        for (key, count) in self.0.borrow().iter() {
            println!("# {label} {key} {count}");
        }
    }

    /// `{prefix}{reason}={count}` lines.
    pub fn print_keys(&self, prefix: &str) {
        for (key, count) in self.0.borrow().iter() {
            println!("{prefix}{key}={count}");
        }
    }

    pub fn total(&self) -> u64 {
        self.0.borrow().values().sum()
    }
}

/// The fields of any canvas message that the tool looks at.
#[derive(Deserialize)]
pub struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(rename = "clientCount")]
    pub client_count: Option<f64>,
    #[serde(rename = "startX")]
    start_x: Option<f64>,
    #[serde(rename = "startY")]
    start_y: Option<f64>,
    #[serde(rename = "endX")]
    end_x: Option<f64>,
    #[serde(rename = "clientId", borrow)]
    pub client_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub data: Option<Cow<'a, str>>,
    #[serde(borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    message: Option<Cow<'a, str>>,
}

pub fn bump(cell: &Cell<u64>) {
    cell.set(cell.get() + 1);
}

impl Load {
    /// `slots` clients, `senders` of which send `per_sender` draws each, answering syncs
    /// with a data URL of about `snapshot_bytes`.
    pub fn new(
        url: &str,
        addr: SocketAddr,
        slots: usize,
        senders: usize,
        per_sender: usize,
        snapshot_bytes: usize,
    ) -> Rc<Load> {
        let target = Target { url: url.to_string(), addr };
        Load::with_targets(vec![target], vec![0; slots], senders, per_sender, snapshot_bytes)
    }

    /// As `new`, with one client per entry of `slot_targets`, which connects to that
    /// index of `targets`.
    pub fn with_targets(
        targets: Vec<Target>,
        slot_targets: Vec<usize>,
        senders: usize,
        per_sender: usize,
        snapshot_bytes: usize,
    ) -> Rc<Load> {
        assert!(slot_targets.iter().all(|&target| target < targets.len()));
        let several = targets.len() > 1;
        Rc::new(Load {
            target_stats: if several { targets.iter().map(|_| TargetStats::default()).collect() } else { Vec::new() },
            targets,
            base: Instant::now(),
            handshakes: Semaphore::new(HANDSHAKES_IN_FLIGHT),
            snapshot: Snapshot::new(snapshot_bytes),
            slots: slot_targets.into_iter().map(|target| Slot { target, ..Slot::default() }).collect(),
            open: Cell::new(0),
            attempted: Cell::new(0),
            connect_failed: Cell::new(0),
            connect_errors: Tally::default(),
            closed_by_server: Cell::new(0),
            closes: Tally::default(),
            server_errors: Cell::new(0),
            first_server_error: RefCell::new(None),
            answered: Cell::new(0),
            sent: Cell::new(0),
            delivered: Cell::new(0),
            unmatched: Cell::new(0),
            latencies: RefCell::default(),
            send_ns: (0..senders).map(|_| (0..per_sender).map(|_| Cell::new(0)).collect()).collect(),
            max_send_lag: Cell::new(Duration::ZERO),
        })
    }

    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// TCP connect and WebSocket upgrade to the first target, bounded by the handshake timeout.
    pub async fn connect(&self) -> Result<Ws, String> {
        self.connect_to(0).await
    }

    /// TCP connect and WebSocket upgrade to `targets[target]`, bounded by the handshake timeout.
    async fn connect_to(&self, target: usize) -> Result<Ws, String> {
        let Target { url, addr } = &self.targets[target];
        let _permit = self.handshakes.acquire().await;
        let attempt = async {
            let tcp = TcpStream::connect(addr).await.map_err(|err| err.to_string())?;
            tcp.set_nodelay(true).map_err(|err| err.to_string())?;
            let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
            let (ws, _) = async_tungstenite::client_async_with_config(url.as_str(), tcp, Some(config))
                .await
                .map_err(|err| err.to_string())?;
            Ok(ws)
        };
        future::or(attempt, async {
            Timer::after(HANDSHAKE_TIMEOUT).await;
            Err(format!("handshake timeout ({} s)", HANDSHAKE_TIMEOUT.as_secs()))
        })
        .await
    }

    pub async fn open_slot(&self, slot: usize) -> Option<Ws> {
        let result = self.connect_to(self.slots[slot].target).await;
        self.attempted.set(self.attempted.get() + 1);
        match result {
            Ok(ws) => {
                self.slots[slot].open.set(true);
                self.open.set(self.open.get() + 1);
                Some(ws)
            }
            Err(err) => {
                self.connect_failed.set(self.connect_failed.get() + 1);
                self.connect_errors.add(err);
                None
            }
        }
    }

    pub fn close_slot(&self, slot: usize, why: String) {
        if self.slots[slot].open.replace(false) {
            self.open.set(self.open.get() - 1);
            self.closed_by_server.set(self.closed_by_server.get() + 1);
            self.closes.add(why);
        }
    }

    /// Whether every open client among the first `upto` has seen the current number of connections.
    pub fn settled(&self, upto: usize) -> bool {
        let want = self.open.get() as u32;
        self.slots[..upto].iter().all(|slot| !slot.open.get() || slot.count.get() == want)
    }

    /// Handles one text message to a slot's client; returns the reply to send, if any.
    pub fn on_text(&self, slot: usize, text: &str) -> Option<String> {
        let msg: Incoming = serde_json::from_str(text).ok()?;
        match msg.kind.as_deref()? {
            "draw" => self.on_draw(slot, &msg),
            "clientCount" => self.slots[slot].count.set(msg.client_count.unwrap_or(-1.0) as u32),
            "canvasRequest" => return Some(self.snapshot.answer(msg.client_id.as_deref().unwrap_or_default())),
            "error" => self.on_server_error(&msg),
            _ => {}
        }
        None
    }

    fn on_draw(&self, slot: usize, msg: &Incoming) {
        match draw_id(msg).and_then(|(sender, seq)| self.sent_ns(sender, seq)) {
            Some(sent) => {
                let us = self.record_delivery(sent);
                if let Some(stats) = self.target_stats.get(self.slots[slot].target) {
                    bump(&stats.delivered);
                    stats.latencies.borrow_mut().record_us(us);
                }
            }
            None => bump(&self.unmatched),
        }
    }

    /// When draw `seq` of `sender` was written (nanoseconds since the run's base), if it was.
    pub fn sent_ns(&self, sender: usize, seq: usize) -> Option<u64> {
        self.send_ns.get(sender)?.get(seq)?.get().checked_sub(1)
    }

    /// Counts a delivery of a draw written at `sent_ns` and records its latency, which it returns in µs.
    pub fn record_delivery(&self, sent_ns: u64) -> u64 {
        let us = self.now_ns().saturating_sub(sent_ns) / 1000;
        bump(&self.delivered);
        self.latencies.borrow_mut().record_us(us);
        us
    }

    pub fn on_server_error(&self, msg: &Incoming) {
        bump(&self.server_errors);
        self.first_server_error.borrow_mut().get_or_insert_with(|| {
            format!("{}: {}", msg.code.as_deref().unwrap_or("?"), msg.message.as_deref().unwrap_or("?"))
        });
    }

    /// Records draw `seq` of `sender` as written now, `due` being when it was scheduled.
    pub fn note_send(&self, sender: usize, seq: usize, due: Instant) {
        self.max_send_lag.set(self.max_send_lag.get().max(due.elapsed()));
        self.send_ns[sender][seq].set(self.now_ns() + 1);
    }

    /// With several targets, `target{i}_url=`, `_clients=`, `_delivered=` and the latency of
    /// what that target's clients received, for each; `is_sender(slot)` tells senders apart.
    pub fn print_targets(&self, is_sender: impl Fn(usize) -> bool) {
        for (i, (target, stats)) in self.targets.iter().zip(&self.target_stats).enumerate() {
            let on_target = |slot: &(usize, &Slot)| slot.1.target == i;
            let clients = self.slots.iter().enumerate().filter(on_target).count();
            let senders = self.slots.iter().enumerate().filter(on_target).filter(|(slot, _)| is_sender(*slot)).count();
            println!("target{i}_url={}", target.url);
            println!("target{i}_clients={clients}");
            println!("target{i}_senders={senders}");
            println!("target{i}_delivered={}", stats.delivered.get());
            stats.latencies.borrow().print(&format!("target{i}_latency"), false);
        }
    }

    pub fn print_connections(&self) {
        println!("connect_failed={}", self.connect_failed.get());
        self.connect_errors.print("connect error");
        println!("closed_by_server={}", self.closed_by_server.get());
        self.closes.print("closed");
        println!("canvas_requests_answered={}", self.answered.get());
        println!("server_error_msgs={}", self.server_errors.get());
        if let Some(err) = self.first_server_error.borrow().as_ref() {
            println!("# first server error: {err}");
        }
    }
}

/// The sender index and sequence number a draw of this tool carries.
pub fn draw_id(msg: &Incoming) -> Option<(usize, usize)> {
    let low = whole(msg.start_y?).filter(|&low| low < SEQ_SPLIT)?;
    Some((whole(msg.start_x?)?, whole(msg.end_x?)? * SEQ_SPLIT + low))
}

fn whole(value: f64) -> Option<usize> {
    ((0.0..1e12).contains(&value) && value.fract() == 0.0).then_some(value as usize)
}

pub fn close_reason(frame: Option<CloseFrame>) -> String {
    frame.map_or_else(|| "no-code".to_string(), |frame| u16::from(frame.code).to_string())
}

pub fn error_reason(err: &WsError) -> String {
    let text: String = err.to_string().chars().take(48).collect();
    format!("error:{}", text.replace(' ', "_"))
}
