//! The hub: the one broadcaster task that owns the client list, the pending canvas syncs and the board.
//!
//! Client tasks send it [`Event`]s through one bounded channel. The hub never
//! waits for a client: it pushes into each client's byte-bounded [`Outbox`]
//! and evicts (close 1008) a client whose outbox is full. Time-based work
//! (sync timeouts, coalesced `clientCount`, journal flushes) runs off one
//! timer set to the earliest deadline.
//!
//! Decisions where PROTOCOL.md leaves room:
//! - `clientCount` is sent at most once per 50 ms (the first change at once),
//!   always with the latest number.
//! - `clientCount` is the first message a newcomer gets.
//! - A sync asks at most [`MAX_SYNC_ATTEMPTS`] peers, oldest first, skipping
//!   peers whose own sync is still pending; then the server answers from its board.
//! - One peer is asked at a time: a sync that starts while another waits for
//!   its peer waits too, and is answered from the board once that snapshot
//!   is in, so no peer uploads a snapshot per newcomer in a join storm.
//! - A client's own `canvasRequest` starts a sync at most once per
//!   [`CANVAS_REQUEST_COOLDOWN`], and only once the board sent to it before
//!   has left its outbox; until then it waits (one at a time, per client).
//! - A sync's bytes never count against the newcomer's outbox limit: the
//!   board's snapshot and journal are shared with the outbox, not copied,
//!   so a newcomer costs its queue's slots, not a copy of the board.
//! - A snapshot forwarded to a newcomer becomes the board's base image when
//!   draws were journaled since the last one; the journal keeps every draw
//!   from the moment the peer was asked (a draw painted twice looks the same).
//!   It is written to disk at most every [`SNAPSHOT_SAVE_INTERVAL`]; until
//!   then the disk keeps the older snapshot and every draw since.
//! - Past `journal-limit` draws the server collects a snapshot (`"clientId":"server"`);
//!   if no peer delivers one the journal keeps growing up to 5x the limit,
//!   then its oldest draws are dropped from the store.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Message, Utf8Bytes};
use futures_lite::future::FutureExt;
use log::{debug, info, warn};
use smol::Timer;

use super::CanvasMetrics;
use super::board::{Board, StoreOp};
use super::config::{CanvasConfig, SNAPSHOT_ENVELOPE_BYTES};
use super::protocol::{self, SERVER_CLIENT_ID};
use crate::limit::MessageLimit;
use crate::metrics::add;
use crate::outbox::{Outbox, PushError};
use crate::wire::PreparedFrame;

/// A client's id: ascending in join order, sent as a decimal string.
pub type ClientId = u64;

/// Most peers asked for one sync before the server answers from its board.
pub const MAX_SYNC_ATTEMPTS: u32 = 3;
/// Shortest time between two `clientCount` broadcasts.
pub const COUNT_INTERVAL: Duration = Duration::from_millis(50);
/// Shortest time between two snapshot writes: every join brings a snapshot,
/// and an SD card should not fsync 8 MiB twenty times a second.
pub const SNAPSHOT_SAVE_INTERVAL: Duration = Duration::from_secs(10);
/// Shortest time between two syncs a client asks for itself.
pub const CANVAS_REQUEST_COOLDOWN: Duration = Duration::from_secs(2);
/// How often a held-back `canvasRequest` checks whether its client has read its last sync.
const UNREAD_SYNC_RECHECK: Duration = Duration::from_millis(100);
/// Events handled per wake-up before time-based work gets its turn.
const MAX_EVENTS_PER_WAKE: usize = 1024;

/// What client tasks tell the hub.
#[derive(Debug)]
pub enum Event {
    /// A client connected; messages for it go to `outbox`.
    Join {
        /// Its id.
        id: ClientId,
        /// Where to put what it should receive.
        outbox: Outbox,
        /// Its cap on incoming messages, raised while it owes a snapshot.
        limit: MessageLimit,
    },
    /// A client disconnected.
    Leave {
        /// Its id.
        id: ClientId,
    },
    /// A valid draw, already normalized and encoded.
    Draw {
        /// The sender.
        from: ClientId,
        /// The encoded `draw` message.
        draw: Utf8Bytes,
    },
    /// `clear` from a client.
    Clear {
        /// The sender.
        from: ClientId,
    },
    /// A client asks for a fresh sync for itself.
    CanvasRequest {
        /// The sender.
        from: ClientId,
    },
    /// A client answers a `canvasRequest`.
    CanvasState {
        /// The sender.
        from: ClientId,
        /// The `clientId` it answered for.
        client_id: String,
        /// The PNG data URL.
        data: String,
    },
    /// Flush the board; answer on `done` once it is on disk.
    Shutdown {
        /// Answered when the flush is complete: whether the board is saved.
        done: async_channel::Sender<bool>,
    },
}

#[derive(Debug)]
struct Client {
    id: ClientId,
    outbox: Outbox,
    limit: MessageLimit,
    /// Has a complete board (received a canvasState); only such peers are asked.
    synced: bool,
    /// When its latest `canvasRequest` started a sync (the cooldown runs from here).
    requested_sync_at: Option<Instant>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Client(ClientId),
    Server,
}

impl Target {
    /// The `clientId` a `canvasRequest` for this target carries.
    fn id(self) -> String {
        match self {
            Target::Client(id) => id.to_string(),
            Target::Server => SERVER_CLIENT_ID.to_string(),
        }
    }
}

/// The one sync in progress: a peer asked for a snapshot, or about to be.
#[derive(Debug)]
struct PendingSync {
    /// Who gets the peer's snapshot.
    target: Target,
    /// The `clientId` the asked peer was sent (the target's, or that of a
    /// target that left since).
    request_id: String,
    /// Clients whose sync started meanwhile: answered from the board when it ends.
    waiters: Vec<ClientId>,
    asked: Option<ClientId>,
    attempts: u32,
    deadline: Instant,
    /// Journal position when the current peer was asked.
    mark: u64,
    /// Board epoch (bumped by `clear`) when the sync started.
    epoch: u64,
}

impl PendingSync {
    fn serves(&self, id: ClientId) -> bool {
        self.target == Target::Client(id) || self.waiters.contains(&id)
    }
}

/// The broadcaster actor. Create it with [`Hub::new`], run it with [`Hub::run`].
pub struct Hub {
    config: CanvasConfig,
    metrics: Arc<CanvasMetrics>,
    events: async_channel::Receiver<Event>,
    store: async_channel::Sender<StoreOp>,
    clients: Vec<Client>,
    sync: Option<PendingSync>,
    /// Clients' own `canvasRequest`s held back by the cooldown, and when they are due.
    resyncs: Vec<(ClientId, Instant)>,
    board: Board,
    epoch: u64,
    unflushed: Vec<Utf8Bytes>,
    flush_at: Option<Instant>,
    count_dirty: bool,
    count_sent_at: Option<Instant>,
    compact_at: usize,
    /// Peers allowed to send a large message (a snapshot) now, and until when.
    uploads: Vec<(ClientId, Instant)>,
    /// When a snapshot was last written to disk.
    snapshot_saved_at: Option<Instant>,
    /// When the newer snapshot held in memory is due on disk.
    save_snapshot_at: Option<Instant>,
    timer: Timer,
    armed: Option<Instant>,
}

impl Hub {
    /// A hub over `board`, reading `events` and handing disk work to `store`.
    pub fn new(
        config: CanvasConfig,
        board: Board,
        events: async_channel::Receiver<Event>,
        store: async_channel::Sender<StoreOp>,
        metrics: Arc<CanvasMetrics>,
    ) -> Hub {
        let compact_at = config.journal_limit;
        let hub = Hub {
            config,
            metrics,
            events,
            store,
            clients: Vec::new(),
            sync: None,
            resyncs: Vec::new(),
            board,
            epoch: 0,
            unflushed: Vec::new(),
            flush_at: None,
            count_dirty: false,
            count_sent_at: None,
            compact_at,
            uploads: Vec::new(),
            snapshot_saved_at: None,
            save_snapshot_at: None,
            timer: Timer::never(),
            armed: None,
        };
        hub.update_board_gauges();
        hub
    }

    /// Runs until a [`Event::Shutdown`] has been handled (or every sender is gone).
    pub async fn run(mut self) {
        loop {
            let (events, timer) = (&self.events, &mut self.timer);
            let woke = async { Some(events.recv().await) }
                .or(async {
                    timer.await;
                    None
                })
                .await;
            let mut next = match woke {
                Some(Ok(event)) => Some(event),
                Some(Err(_)) => return self.flush(),
                None => None,
            };
            let mut handled = 0;
            while let Some(event) = next.take() {
                if let Event::Shutdown { done } = event {
                    if self.save_snapshot_at.is_some() {
                        self.save_snapshot(Instant::now());
                    }
                    self.flush();
                    let _ = self.store.try_send(StoreOp::Sync(done));
                    return;
                }
                self.handle(event);
                handled += 1;
                if handled < MAX_EVENTS_PER_WAKE {
                    next = self.events.try_recv().ok();
                }
            }
            self.on_time(Instant::now());
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Join { id, outbox, limit } => {
                debug!("client {id} joined");
                // The newcomer learns the count first; the others with the next broadcast.
                let _ = outbox.push(Message::Text(protocol::client_count(self.clients.len() + 1)));
                // Ids are taken before the Join is sent, so with several executor
                // threads Joins can arrive out of id order: keep the list sorted.
                let at = self.clients.partition_point(|c| c.id < id);
                self.clients.insert(at, Client { id, outbox, limit, synced: false, requested_sync_at: None });
                self.count_dirty = true;
                self.start_sync(Target::Client(id));
            }
            Event::Leave { id } => {
                debug!("client {id} left");
                self.remove_client(id);
            }
            Event::Draw { from, draw } => {
                self.broadcast(&draw, Some(from));
                add(&self.metrics.draws_relayed, 1);
                self.journal(draw);
            }
            Event::Clear { from } => {
                info!("client {from} cleared the board");
                self.broadcast(&protocol::clear(), Some(from));
                self.board.clear();
                self.epoch += 1;
                self.unflushed.clear();
                self.save_snapshot_at = None;
                self.compact_at = self.config.journal_limit;
                self.to_store(StoreOp::Clear);
                self.update_board_gauges();
                // A compaction snapshot asked before the clear is of no use now.
                if self.sync.as_ref().is_some_and(|s| s.target == Target::Server) {
                    self.sync.take().into_iter().flat_map(|s| s.waiters).for_each(|id| self.answer_from_board(id));
                }
            }
            Event::CanvasRequest { from } => self.on_canvas_request(from, Instant::now()),
            Event::CanvasState { from, client_id, data } => self.on_canvas_state(from, &client_id, data),
            Event::Shutdown { .. } => unreachable!("handled in run"),
        }
    }

    /// A client asks to be synced again: at most once per cooldown, and only
    /// once it has read the board it was sent before; until then the request waits.
    fn on_canvas_request(&mut self, from: ClientId, now: Instant) {
        if self.sync.as_ref().is_some_and(|s| s.serves(from)) || self.resyncs.iter().any(|(id, _)| *id == from) {
            debug!("client {from} asked for a sync while one is in flight; ignored");
            return;
        }
        let Ok(index) = self.clients.binary_search_by_key(&from, |c| c.id) else {
            return;
        };
        let client = &mut self.clients[index];
        let cooldown = client.requested_sync_at.map(|at| at + CANVAS_REQUEST_COOLDOWN).filter(|due| now < *due);
        let unread = client.outbox.exempt_queued() > 0;
        match (cooldown, unread) {
            (Some(due), _) => self.resyncs.push((from, due)),
            (None, true) => self.resyncs.push((from, now + UNREAD_SYNC_RECHECK)),
            (None, false) => {
                client.requested_sync_at = Some(now);
                self.start_sync(Target::Client(from));
            }
        }
    }

    fn on_canvas_state(&mut self, from: ClientId, client_id: &str, data: String) {
        let asked = self.sync.as_ref().is_some_and(|s| s.asked == Some(from) && s.request_id == client_id);
        // One sync at a time: whatever `from` sent, it owes nothing else now.
        self.end_upload(from);
        let Some(sync) = self.sync.take_if(|_| asked) else {
            debug!("client {from}: canvasState for {client_id:?} not asked for or too late; dropped");
            add(&self.metrics.canvas_states_dropped, 1);
            return;
        };
        // Shared by the newcomer's outbox and the board: one copy, whoever holds it.
        let data = Utf8Bytes::from(data);
        if let Target::Client(id) = sync.target {
            debug!("client {from} answered the sync for client {id} ({} bytes)", data.len());
            add(&self.metrics.syncs_from_peers, 1);
            self.send_state(id, &data);
        }
        let news = sync.mark > self.board.base_seq || self.board.snapshot.is_none() || sync.target == Target::Server;
        if sync.epoch == self.epoch && news {
            let kept = self.board.set_snapshot(data, sync.mark).len();
            self.compact_at = self.config.journal_limit.max(kept + self.config.journal_limit / 4);
            debug!("board snapshot from client {from}; {kept} draw(s) kept after it");
            let now = Instant::now();
            match self.snapshot_saved_at {
                Some(at) if now < at + SNAPSHOT_SAVE_INTERVAL => {
                    self.save_snapshot_at = Some(at + SNAPSHOT_SAVE_INTERVAL)
                }
                _ => self.save_snapshot(now),
            }
            self.update_board_gauges();
        }
        for id in sync.waiters {
            self.answer_from_board(id);
        }
    }

    /// Writes the board's snapshot and the draws after it, replacing the
    /// files. Until then the disk holds an older snapshot and every draw
    /// since, which paints the same board.
    fn save_snapshot(&mut self, now: Instant) {
        self.snapshot_saved_at = Some(now);
        self.save_snapshot_at = None;
        // The rewrite carries every journaled draw, the unflushed ones too.
        self.unflushed.clear();
        self.flush_at = None;
        let snapshot = self.board.snapshot.clone().unwrap_or_default();
        info!("saving the board: a snapshot and {} draw(s) after it", self.board.journal.len());
        self.to_store(StoreOp::Snapshot(snapshot, self.board.journal.iter().cloned().collect()));
    }

    fn journal(&mut self, draw: Utf8Bytes) {
        self.board.journal.push_back(draw.clone());
        self.unflushed.push(draw);
        if self.flush_at.is_none() {
            self.flush_at = Some(Instant::now() + self.config.flush_interval);
        }
        let len = self.board.journal.len();
        // A sync in flight brings a snapshot too.
        if len >= self.compact_at && self.sync.is_none() {
            info!("journal holds {len} draws: asking a peer for a snapshot");
            self.start_sync(Target::Server);
        }
        let hard_limit = self.config.journal_limit.saturating_mul(5);
        if len > hard_limit {
            warn!(
                "journal passed {hard_limit} draws with no snapshot from any peer: dropping its oldest {}",
                self.config.journal_limit
            );
            self.flush();
            self.board.drop_oldest(self.config.journal_limit);
            if self.save_snapshot_at.is_some() {
                self.save_snapshot(Instant::now());
            } else {
                self.to_store(StoreOp::Rewrite(self.board.journal.iter().cloned().collect()));
            }
        }
        self.metrics.journal_draws.store(self.board.journal.len() as u64, Ordering::Relaxed);
    }

    fn flush(&mut self) {
        self.flush_at = None;
        if !self.unflushed.is_empty() {
            let draws = std::mem::take(&mut self.unflushed);
            self.to_store(StoreOp::Append(draws));
        }
    }

    fn to_store(&self, op: StoreOp) {
        // Unbounded: ops come at most once per flush interval or per sync.
        if self.store.try_send(op).is_err() {
            warn!("board store is gone; change not saved");
        }
    }

    fn update_board_gauges(&self) {
        let snapshot = self.board.snapshot.as_ref().map_or(0, |s| s.len());
        self.metrics.snapshot_bytes.store(snapshot as u64, Ordering::Relaxed);
        self.metrics.journal_draws.store(self.board.journal.len() as u64, Ordering::Relaxed);
    }

    /// Pushes `message` to every client but `except`; evicts those that are full.
    fn broadcast(&mut self, message: &Utf8Bytes, except: Option<ClientId>) {
        let before = self.clients.len();
        let metrics = &self.metrics;
        // Framed once: most clients get these bytes straight into their socket.
        let frame = PreparedFrame::text(message.clone());
        self.clients.retain(|client| Some(client.id) == except || push(client, &frame, metrics));
        if self.clients.len() != before {
            self.clients_removed();
        }
    }

    /// Pushes `message` to one client; `false` (and the client removed) if that failed.
    fn send_to(&mut self, id: ClientId, message: Utf8Bytes) -> bool {
        let Ok(index) = self.clients.binary_search_by_key(&id, |c| c.id) else {
            return false;
        };
        if push(&self.clients[index], &PreparedFrame::text(message), &self.metrics) {
            return true;
        }
        self.clients.remove(index);
        self.clients_removed();
        false
    }

    fn remove_client(&mut self, id: ClientId) {
        if let Ok(index) = self.clients.binary_search_by_key(&id, |c| c.id) {
            self.clients.remove(index);
            self.clients_removed();
        }
    }

    /// After clients left: drop them from the sync, re-ask if they were its peer.
    fn clients_removed(&mut self) {
        self.count_dirty = true;
        self.metrics.clients.store(self.clients.len() as u64, Ordering::Relaxed);
        let clients = &self.clients;
        let present = |id: ClientId| clients.binary_search_by_key(&id, |c| c.id).is_ok();
        self.uploads.retain(|(id, _)| present(*id));
        self.resyncs.retain(|(id, _)| present(*id));
        let Some(sync) = &mut self.sync else {
            return;
        };
        sync.waiters.retain(|id| present(*id));
        if let Target::Client(id) = sync.target
            && !present(id)
        {
            // The peer's answer still serves whoever waits; it names the old id.
            if sync.waiters.is_empty() {
                self.sync = None;
                return;
            }
            sync.target = Target::Client(sync.waiters.remove(0));
        }
        if sync.asked.is_some_and(|id| !present(id)) {
            sync.deadline = Instant::now();
        }
    }

    /// Starts a sync for `target`, or lets it wait for the one in flight.
    fn start_sync(&mut self, target: Target) {
        let now = Instant::now();
        if let Some(sync) = &mut self.sync {
            // A compaction needs no sync of its own: the one in flight brings a snapshot.
            if let Target::Client(id) = target
                && !sync.serves(id)
            {
                sync.waiters.push(id);
            }
            return;
        }
        let sync = PendingSync {
            target,
            request_id: target.id(),
            waiters: Vec::new(),
            asked: None,
            attempts: 0,
            deadline: now,
            mark: 0,
            epoch: self.epoch,
        };
        self.sync = Some(sync);
        self.advance_sync(now);
    }

    /// Moves the sync to its next peer once its deadline passed, or ends it.
    fn advance_sync(&mut self, now: Instant) {
        while let Some(sync) = self.sync.as_ref().filter(|s| s.deadline <= now) {
            if let Some(asked) = sync.asked {
                debug!("client {asked} did not answer the sync for {:?} in time", sync.target);
                add(&self.metrics.sync_timeouts, 1);
            }
            let after = sync.asked.unwrap_or(0);
            let candidate = if sync.attempts < MAX_SYNC_ATTEMPTS {
                self.clients.iter().find(|c| c.synced && c.id > after && !sync.serves(c.id)).map(|c| c.id)
            } else {
                None
            };
            match candidate.filter(|peer| self.allow_upload(*peer, now)) {
                Some(peer) => {
                    let mark = self.board.next_seq();
                    let Some(sync) = self.sync.as_mut() else { return };
                    sync.asked = Some(peer);
                    sync.attempts += 1;
                    sync.deadline = now + self.config.sync_timeout;
                    sync.mark = mark;
                    let request = protocol::canvas_request(&sync.request_id);
                    // A failed push removes the peer, which makes this sync due again.
                    self.send_to(peer, request);
                }
                None => {
                    let Some(sync) = self.sync.take() else { return };
                    match sync.target {
                        Target::Client(id) => self.answer_from_board(id),
                        Target::Server => {
                            self.compact_at = self.board.journal.len() + self.config.journal_limit / 4;
                            debug!("no peer gave a snapshot; next try at {} draws", self.compact_at);
                        }
                    }
                    for id in sync.waiters {
                        self.answer_from_board(id);
                    }
                }
            }
        }
    }

    /// Lets `peer` send one large message (a snapshot) for a while, if fewer
    /// than `max-snapshot-uploads` peers may do so now. Every other client is
    /// held to [`super::SMALL_MESSAGE_BYTES`], so stalled half-sent messages
    /// cannot pile up in memory.
    fn allow_upload(&mut self, peer: ClientId, now: Instant) -> bool {
        let until = now + self.config.sync_timeout * 3;
        if let Some(upload) = self.uploads.iter_mut().find(|(id, _)| *id == peer) {
            upload.1 = until;
            return true;
        }
        if self.uploads.len() >= self.config.max_snapshot_uploads {
            debug!("{} peers are already sending snapshots; not asking client {peer}", self.uploads.len());
            return false;
        }
        let Ok(index) = self.clients.binary_search_by_key(&peer, |c| c.id) else {
            return false;
        };
        self.clients[index].limit.set(self.config.max_snapshot_bytes + SNAPSHOT_ENVELOPE_BYTES);
        self.uploads.push((peer, until));
        true
    }

    /// Takes the large-message allowance back from `peer`.
    fn end_upload(&mut self, peer: ClientId) {
        self.uploads.retain(|(id, _)| *id != peer);
        if let Ok(index) = self.clients.binary_search_by_key(&peer, |c| c.id) {
            self.clients[index].limit.set(super::SMALL_MESSAGE_BYTES);
        }
    }

    /// Sends client `id` a `canvasState` with `data` (shared, not copied) and marks it synced.
    fn send_state(&mut self, id: ClientId, data: &Utf8Bytes) {
        let Ok(index) = self.clients.binary_search_by_key(&id, |c| c.id) else {
            return;
        };
        let client = &mut self.clients[index];
        client.synced = true;
        if client.outbox.push_exempt(protocol::canvas_state_frames(&id.to_string(), data)).is_err() {
            self.remove_client(id);
        }
    }

    /// The server's own answer: its snapshot (or `""`), then every journaled draw.
    fn answer_from_board(&mut self, id: ClientId) {
        let Ok(index) = self.clients.binary_search_by_key(&id, |c| c.id) else {
            return;
        };
        debug!("answering the sync for client {id} from the board ({} draws)", self.board.journal.len());
        add(&self.metrics.syncs_from_server, 1);
        let client = &mut self.clients[index];
        client.synced = true;
        let empty = Utf8Bytes::from_static("");
        let state = protocol::canvas_state_frames(&id.to_string(), self.board.snapshot.as_ref().unwrap_or(&empty));
        // The replay shares the snapshot's and the journal's bytes, and does
        // not count against the outbox limit: a newcomer is never "too slow"
        // for a large board, and costs a queue slot per draw, not a copy.
        let replay = state.into_iter().chain(self.board.journal.iter().map(|draw| Message::Text(draw.clone())));
        if client.outbox.push_exempt(replay).is_err() {
            self.remove_client(id);
        }
    }

    fn on_time(&mut self, now: Instant) {
        self.advance_sync(now);
        let expired: Vec<ClientId> =
            self.uploads.iter().filter(|(_, until)| *until <= now).map(|(id, _)| *id).collect();
        for id in expired {
            if self.sync.as_ref().is_none_or(|s| s.asked != Some(id)) {
                self.end_upload(id);
            }
        }
        if self.resyncs.iter().any(|(_, due)| *due <= now) {
            let (due, later) = std::mem::take(&mut self.resyncs).into_iter().partition(|(_, due)| *due <= now);
            self.resyncs = later;
            for (id, _) in due {
                self.on_canvas_request(id, now);
            }
        }
        if self.count_dirty {
            let due = self.count_sent_at.map_or(now, |at| at + COUNT_INTERVAL);
            if due <= now {
                self.count_dirty = false;
                self.count_sent_at = Some(now);
                self.metrics.clients.store(self.clients.len() as u64, Ordering::Relaxed);
                self.broadcast(&protocol::client_count(self.clients.len()), None);
            }
        }
        if self.save_snapshot_at.is_some_and(|at| at <= now) {
            self.save_snapshot(now);
        }
        if self.flush_at.is_some_and(|at| at <= now) {
            self.flush();
        }
        self.arm(now);
    }

    fn arm(&mut self, now: Instant) {
        let count = self.count_dirty.then(|| self.count_sent_at.map_or(now, |at| at + COUNT_INTERVAL));
        let upload = self.uploads.iter().map(|(_, until)| *until).min();
        let sync = self.sync.as_ref().map(|s| s.deadline);
        let resync = self.resyncs.iter().map(|(_, due)| *due).min();
        let next = [count, self.flush_at, sync, upload, resync, self.save_snapshot_at].into_iter().flatten().min();
        if next != self.armed {
            self.armed = next;
            match next {
                Some(at) => {
                    self.timer.set_at(at);
                }
                None => self.timer = Timer::never(),
            }
        }
    }
}

/// Pushes to one client; on a full outbox evicts it. `false` when the client must go.
fn push(client: &Client, frame: &PreparedFrame, metrics: &CanvasMetrics) -> bool {
    match client.outbox.push_frame(frame) {
        Ok(()) => true,
        Err(PushError::Full(_)) => {
            info!(
                "client {}: outbox full ({} bytes queued): closing it as too slow",
                client.id,
                client.outbox.queued_bytes()
            );
            add(&metrics.slow_clients_closed, 1);
            client.outbox.evict("too slow: outbox full");
            false
        }
        Err(PushError::Closed(_)) => false,
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("clients", &self.clients.len()).field("sync", &self.sync).finish()
    }
}

#[cfg(test)]
mod tests {
    //! The hub as a pure actor: driven with events, read through its clients' outboxes.

    use std::future::Future;
    use std::sync::Arc;
    use std::time::Duration;

    use async_tungstenite::tungstenite::Message;

    use super::*;
    use crate::canvas::board::Board;
    use crate::canvas::{CanvasMetrics, SMALL_MESSAGE_BYTES};
    use crate::limit::MessageLimit;
    use crate::outbox::OutboxReceiver;
    use crate::timeout::timeout;

    /// The longest any single step of a test may take before it fails.
    const WAIT: Duration = Duration::from_secs(5);

    /// Waits for `fut`, failing the test after [`WAIT`].
    async fn bounded<T>(what: &str, fut: impl Future<Output = T>) -> T {
        match timeout(WAIT, fut).await {
            Some(value) => value,
            None => panic!("timed out after {WAIT:?} waiting for {what}"),
        }
    }

    /// A PNG data URL tagged with `tag` (the hub never decodes it).
    fn png(tag: &str) -> String {
        format!("data:image/png;base64,{tag}")
    }

    /// A `canvasState` message as the hub sends it.
    fn canvas_state(client_id: &str, data: &str) -> String {
        let quote = |s: &str| serde_json::Value::from(s).to_string();
        format!(r#"{{"type":"canvasState","clientId":{},"data":{}}}"#, quote(client_id), quote(data))
    }

    /// The next message in `outbox` that is not a `clientCount`.
    async fn next_queued(outbox: &OutboxReceiver) -> String {
        loop {
            match bounded("a queued message", outbox.recv()).await {
                Some(Message::Text(text)) if !text.contains(r#""type":"clientCount""#) => return text.to_string(),
                Some(Message::Text(_)) => {}
                other => panic!("expected a text message in the outbox, got {other:?}"),
            }
        }
    }

    #[test]
    fn joins_reaching_the_hub_out_of_id_order_still_get_their_sync() {
        smol::block_on(async {
            let (events, mailbox) = async_channel::bounded(16);
            let (store, _ops) = async_channel::unbounded();
            let config = CanvasConfig { sync_timeout: Duration::from_secs(60), ..Default::default() };
            let hub = Hub::new(config, Board::default(), mailbox, store, Arc::new(CanvasMetrics::default()));
            let hub = smol::spawn(hub.run());
            let join = |id| {
                let (tx, rx) = Outbox::bounded(1 << 20);
                (Event::Join { id, outbox: tx, limit: MessageLimit::new(SMALL_MESSAGE_BYTES) }, rx)
            };
            let answer =
                |from, client_id: &str| Event::CanvasState { from, client_id: client_id.into(), data: png("1") };

            let (event, one) = join(1);
            events.send(event).await.expect("the hub is running");
            assert_eq!(next_queued(&one).await, canvas_state("1", ""));
            let (event, three) = join(3);
            events.send(event).await.expect("the hub is running");
            assert_eq!(next_queued(&one).await, r#"{"type":"canvasRequest","clientId":"3"}"#);
            events.send(answer(1, "3")).await.expect("the hub is running");
            assert_eq!(next_queued(&three).await, canvas_state("3", &png("1")));
            let (event, two) = join(2);
            events.send(event).await.expect("the hub is running");
            assert_eq!(next_queued(&one).await, r#"{"type":"canvasRequest","clientId":"2"}"#);
            events.send(answer(1, "2")).await.expect("the hub is running");
            assert_eq!(next_queued(&two).await, canvas_state("2", &png("1")));

            drop(events);
            bounded("the hub to stop", hub).await;
        });
    }
}
