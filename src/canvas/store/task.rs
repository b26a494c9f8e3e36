//! The store task of a loaded board: what the hub sends it, what it tells
//! the hub, and the loop that batches writes, debounces floor encodes and
//! retries a failing disk.
//!
//! A disk that fails does not stop the board: the task keeps every op in its
//! model (nothing in memory is lost), logs one error per kind of failure (not
//! one per retry), counts it, tells the hub (`Saving(Some(problem))`, so the
//! hub can send the `not_saving` notice) and retries every few flush
//! intervals; once a save works again the whole board is rewritten
//! (compaction) and the hub hears `Saving(None)`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Utf8Bytes;
use futures_lite::future::FutureExt;
use log::{debug, error, info};
use smol::Timer;

use super::{BoardStore, StoreError};
use crate::canvas::cluster::LinkMsg;
use crate::canvas::model::Op;
use crate::metrics::{add, write_metric};

/// Floor news (a PNG encode, ~10 to 50 ms of a core) is sent at most this
/// often per board: while a board is full every new stroke commits an old
/// one, and a client joining needs a floor that is recent, not one per stroke.
pub const FLOOR_NEWS_INTERVAL: Duration = Duration::from_millis(500);

/// What the hub sends its board's store task, in the order things happened.
#[derive(Debug)]
pub enum StoreMsg {
    /// An op the hub applied and that had an effect, in the order applied.
    Op(Op),
    /// A shared board's op (that had an effect), and its stream entry's id.
    SharedOp(Op, String),
    /// Render `board.png` (floor and visible live strokes) as of the ops sent before.
    Export {
        /// Where the PNG goes (a channel with room for it: the store never waits to answer).
        reply: async_channel::Sender<Result<Vec<u8>, StoreError>>,
    },
    /// Write everything now (shutdown, unload), compacting if the floor
    /// changed; answers `true` when nothing of the board would be lost by
    /// stopping now (a board nothing was drawn on needs no files).
    Flush {
        /// Where the answer goes (a channel with room for it).
        done: async_channel::Sender<bool>,
    },
}

/// What the store task tells the hub.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreNews {
    /// The floor holds the first `committed` items the board committed; `url`
    /// is its PNG data URL (`None`: white). The hub may drop the committed
    /// items it kept for syncs up to `committed`.
    Floor {
        /// The model's `committed()` when the floor was encoded.
        committed: u64,
        /// The floor, `None` when it is white.
        url: Option<Utf8Bytes>,
    },
    /// `Some(problem)` when the board cannot be saved (sent once when saving
    /// starts failing), `None` when it can again.
    Saving(Option<String>),
}

/// Counters of every board's store, shown in `/metrics` (totals, no per-board labels).
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// Failed saves (each retry that fails counts).
    pub store_errors: AtomicU64,
    /// Loaded boards that cannot be saved now.
    pub boards_not_saving: AtomicU64,
    /// Log compactions (each writes the log whole, and the floor if it changed).
    pub compactions: AtomicU64,
    /// Floors encoded as PNG for the hub's syncs.
    pub floor_encodes: AtomicU64,
}

impl StoreMetrics {
    /// Writes the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let rows: [(&str, &str, &str, &AtomicU64); 4] = [
            ("smolcanvas_store_errors_total", "counter", "Failed board saves.", &self.store_errors),
            (
                "smolcanvas_boards_not_saving",
                "gauge",
                "Loaded boards that cannot be saved now.",
                &self.boards_not_saving,
            ),
            ("smolcanvas_store_compactions_total", "counter", "Board log compactions.", &self.compactions),
            ("smolcanvas_floor_encodes_total", "counter", "Board floors encoded as PNG.", &self.floor_encodes),
        ];
        for (name, kind, help, value) in rows {
            write_metric(out, name, kind, help, value.load(Ordering::Relaxed));
        }
    }
}

/// How often a failing save is retried: five flush intervals, 0.5 s to 30 s.
pub fn retry_interval(flush_interval: Duration) -> Duration {
    (flush_interval * 5).clamp(Duration::from_millis(500), Duration::from_secs(30))
}

/// The task's view of its saves: when the next one is due and whether they fail.
struct Saving<'a> {
    name: String,
    metrics: &'a StoreMetrics,
    news: async_channel::Sender<StoreNews>,
    flush_interval: Duration,
    retry_every: Duration,
    /// When the unsaved ops are to be written.
    due: Option<Instant>,
    /// Saves fail (the hub was told).
    failing: bool,
    /// The kinds of failure logged since saves last worked.
    reported: Vec<&'static str>,
}

impl Saving<'_> {
    /// Something new is unsaved: a save is due within a flush interval (a retry interval while failing).
    fn schedule(&mut self) {
        if self.due.is_none() {
            let wait = if self.failing { self.retry_every } else { self.flush_interval };
            self.due = Some(Instant::now() + wait);
        }
    }

    /// Takes note of a save's result; returns whether it worked.
    async fn outcome(&mut self, result: Result<bool, StoreError>) -> bool {
        match result {
            Ok(compacted) => {
                self.due = None;
                if compacted {
                    add(&self.metrics.compactions, 1);
                }
                if self.failing {
                    self.failing = false;
                    self.reported.clear();
                    self.metrics.boards_not_saving.fetch_sub(1, Ordering::Relaxed);
                    info!("board {}: saving works again; the board is saved", self.name);
                    let _ = self.news.send(StoreNews::Saving(None)).await;
                }
                true
            }
            Err(err) => {
                add(&self.metrics.store_errors, 1);
                self.due = Some(Instant::now() + self.retry_every);
                if self.reported.contains(&err.action()) {
                    debug!("board {}: {err} (again)", self.name);
                } else {
                    self.reported.push(err.action());
                    error!(
                        "board {}: {err}; drawing goes on, the board is kept in memory and saving is retried every {:?}",
                        self.name, self.retry_every
                    );
                }
                if !self.failing {
                    self.failing = true;
                    add(&self.metrics.boards_not_saving, 1);
                    let _ = self.news.send(StoreNews::Saving(Some(err.summary()))).await;
                }
                false
            }
        }
    }
}

impl BoardStore {
    /// Runs the board's store until `msgs` is closed, then saves (as
    /// [`StoreMsg::Flush`] does) and returns.
    ///
    /// Ops are applied to the store's own model at once and written in one
    /// batch per `flush_interval` (appended and fsynced); items they commit
    /// are painted into the floor, which is encoded and sent as
    /// [`StoreNews::Floor`] at most every [`FLOOR_NEWS_INTERVAL`]. All
    /// painting, PNG and file work runs on smol's blocking pool. Send `news`
    /// on an unbounded channel (or read it promptly): the task waits for room.
    /// A shared board's compactions go to its `link` as snapshots.
    pub async fn run(
        mut self,
        msgs: async_channel::Receiver<StoreMsg>,
        news: async_channel::Sender<StoreNews>,
        flush_interval: Duration,
        metrics: &StoreMetrics,
        link: Option<async_channel::Sender<LinkMsg>>,
    ) {
        let mut saving = Saving {
            name: self.name.clone(),
            metrics,
            news: news.clone(),
            flush_interval,
            retry_every: retry_interval(flush_interval),
            due: None,
            failing: false,
            reported: Vec::new(),
        };
        // When the next floor news is due, and when the last was sent.
        let mut news_due: Option<Instant> = None;
        let mut news_sent: Option<Instant> = None;
        let mut committed_told = self.board.committed();
        loop {
            let wake = [saving.due, news_due].into_iter().flatten().min();
            let msg = match wake {
                // A save or floor news that is due goes first, however many ops wait:
                // otherwise a busy board would never be written.
                Some(at) if at <= Instant::now() => None,
                None => Some(msgs.recv().await),
                Some(at) => {
                    async { Some(msgs.recv().await) }
                        .or(async {
                            Timer::at(at).await;
                            None
                        })
                        .await
                }
            };
            match msg {
                Some(Ok(msg @ (StoreMsg::Op(_) | StoreMsg::SharedOp(..)))) => {
                    let floor_changed = match msg {
                        StoreMsg::SharedOp(op, id) => {
                            let changed = self.apply(op);
                            // With the op, so a compaction never holds an op its `upto` does not cover.
                            self.shared_upto = Some(id);
                            changed
                        }
                        StoreMsg::Op(op) => self.apply(op),
                        _ => false,
                    };
                    if self.is_unsaved() {
                        saving.schedule();
                    }
                    if floor_changed && news_due.is_none() {
                        let now = Instant::now();
                        news_due = Some(news_sent.map_or(now, |sent| (sent + FLOOR_NEWS_INTERVAL).max(now)));
                    }
                }
                Some(Ok(StoreMsg::Export { reply })) => {
                    let (back, png) = smol::unblock(move || {
                        let png = self.export();
                        (self, png)
                    })
                    .await;
                    self = back;
                    let _ = reply.try_send(Ok(png));
                }
                Some(Ok(StoreMsg::Flush { done })) => {
                    let result;
                    (self, result) = self.save_off_executor(true, link.as_ref()).await;
                    let saved = saving.outcome(result).await;
                    let _ = done.try_send(saved);
                }
                Some(Err(_closed)) => {
                    let result;
                    (self, result) = self.save_off_executor(true, link.as_ref()).await;
                    if !saving.outcome(result).await {
                        error!(
                            "board {}: unloaded without being saved; what was drawn since the last save is lost",
                            self.name
                        );
                    }
                    if saving.failing {
                        metrics.boards_not_saving.fetch_sub(1, Ordering::Relaxed);
                    }
                    return;
                }
                None => {
                    let now = Instant::now();
                    if news_due.is_some_and(|at| at <= now) {
                        news_due = None;
                        news_sent = Some(now);
                        let (back, committed, url) = smol::unblock(move || {
                            let url = self.floor_url();
                            let committed = self.board.committed();
                            (self, committed, url)
                        })
                        .await;
                        self = back;
                        if committed != committed_told {
                            committed_told = committed;
                            add(&metrics.floor_encodes, 1);
                            let _ = news.send(StoreNews::Floor { committed, url }).await;
                        }
                    }
                    if saving.due.is_some_and(|at| at <= now) {
                        let result;
                        (self, result) = self.save_off_executor(false, link.as_ref()).await;
                        saving.outcome(result).await;
                    }
                }
            }
        }
    }

    async fn save_off_executor(
        mut self,
        flush: bool,
        link: Option<&async_channel::Sender<LinkMsg>>,
    ) -> (BoardStore, Result<bool, StoreError>) {
        let (mut store, result) = smol::unblock(move || {
            let result = self.save(flush);
            (self, result)
        })
        .await;
        if let Some(snapshot) = store.snapshot.take()
            && let Some(link) = link
        {
            // Straight to the link: the last one, made as the board unloads, must get there too.
            let _ = link.try_send(LinkMsg::Snapshot(snapshot));
        }
        (store, result)
    }
}
