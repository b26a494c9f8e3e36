//! One loaded board's link to Redis: the appender (the hub's operations
//! into the board's stream, in order, each exactly once) and the reader
//! (the stream's entries back to the hub, in order, with no gap).
//!
//! Both retry with backoff while Redis cannot be reached and tell the hub
//! when the board stops and starts being shared ([`Event::SharedState`]).
//! The appender keeps what it could not append (the hub bounds how much:
//! [`crate::canvas::cluster::MAX_UNSHARED_OPS`]) and retries the same operation numbers, so a batch whose answer was lost is
//! not appended twice ([`keys::APPEND`]). The reader checks that every entry
//! names the one it read before; if the stream was trimmed past it (it was
//! cut off while the others compacted), it asks the hub to reload the board
//! ([`Event::Reset`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use log::{debug, error, info, warn};
use redis::aio::MultiplexedConnection;

use super::keys::{self, BoardKeys};
use super::presence::Publish;
use super::{Backoff, Cluster, command, lock, within};
use crate::app::Spawner;
use crate::canvas::cluster::{Entry, LinkMsg, Origin, Snapshot};
use crate::canvas::hub::{ClientId, Event};
use crate::canvas::model::Op;
use crate::canvas::store::oplog::{self, Line};
use crate::metrics::add;

/// Entries read per XREAD.
const READ_BATCH: usize = 512;
/// How long one XREAD waits for new entries (the reader then checks that its hub is still there).
const READ_BLOCK: Duration = Duration::from_secs(1);
/// How long a link's operation numbers are remembered in Redis (for retries).
const SEQ_LIFETIME_SECS: u64 = 86_400;
/// How long this server holds a board's snapshot lease once it wrote a snapshot.
const LEASE_MS: u64 = 30_000;
/// How long an unloading board's appender may still try to append what it holds.
const FINAL_APPEND_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether the appender and the reader reach Redis; the hub hears of changes.
#[derive(Debug, Default)]
struct Health {
    appender: Option<String>,
    reader: Option<String>,
    told_down: bool,
}

/// One board's link.
pub struct Link {
    cluster: Arc<Cluster>,
    board: String,
    id: Arc<str>,
    keys: BoardKeys,
    /// This link's key of the last op number it appended.
    seq_key: String,
    /// [`keys::APPEND`], its SHA-1 computed once.
    append: redis::Script,
    /// [`keys::SNAPSHOT`], likewise.
    snapshot: redis::Script,
    hub: async_channel::Sender<Event>,
    health: Mutex<Health>,
}

/// One operation waiting to be appended.
#[derive(Debug)]
struct Held {
    seq: u64,
    line: String,
    origin: String,
}

impl Link {
    /// The link of board `name`, with link id `id`, to `hub`.
    pub fn new(cluster: Arc<Cluster>, name: &str, id: Arc<str>, hub: async_channel::Sender<Event>) -> Arc<Link> {
        let keys = BoardKeys::of(name);
        Arc::new(Link {
            cluster,
            board: name.to_string(),
            seq_key: format!("{}{id}", keys.seq),
            id,
            keys,
            append: redis::Script::new(keys::APPEND),
            snapshot: redis::Script::new(keys::SNAPSHOT),
            hub,
            health: Mutex::new(Health::default()),
        })
    }

    /// Starts the appender (reading `msgs`) and the reader (from after `after`).
    pub fn spawn(self: Arc<Self>, spawner: &Spawner, msgs: async_channel::Receiver<LinkMsg>, after: String) {
        spawner.spawn(self.clone().append_loop(msgs));
        spawner.spawn(self.read_loop(after));
    }

    /// Records whether one side reaches Redis; tells the hub when the board stops or starts being shared.
    fn report(&self, appender: bool, problem: Option<String>) {
        let mut health = lock(&self.health);
        let slot = if appender { &mut health.appender } else { &mut health.reader };
        if slot.is_none() && problem.is_none() {
            return; // Every append and every read reports: all is well, and was.
        }
        let part = format!("board {} ({})", self.board, if appender { "appending" } else { "reading" });
        self.cluster.report(&part, problem.clone());
        *slot = problem;
        let down = health.appender.as_ref().or(health.reader.as_ref()).cloned();
        if down.is_some() != health.told_down {
            health.told_down = down.is_some();
            // The hub's mailbox is bounded; the news must get there, so it waits its turn.
            let hub = self.hub.clone();
            smol::spawn(async move {
                let _ = hub.send(Event::SharedState(down)).await;
            })
            .detach();
        }
    }

    async fn append_loop(self: Arc<Self>, msgs: async_channel::Receiver<LinkMsg>) {
        let mut held: VecDeque<Held> = VecDeque::new();
        let mut snapshot: Option<Snapshot> = None;
        let mut conn: Option<MultiplexedConnection> = None;
        let mut backoff = Backoff::new();
        let mut open = true;
        while open {
            if held.is_empty() && snapshot.is_none() {
                match msgs.recv().await {
                    Ok(msg) => self.take(msg, &mut held, &mut snapshot),
                    Err(_) => open = false,
                }
            }
            while let Ok(msg) = msgs.try_recv() {
                self.take(msg, &mut held, &mut snapshot);
            }
            if open && msgs.is_closed() && msgs.is_empty() {
                open = false;
            }
            if !open {
                // Unloading: a last bounded attempt at what is held and at the last snapshot, then the link ends.
                let last = async {
                    self.append_all(&mut conn, &mut held).await;
                    if let Some(snap) = snapshot.take().filter(|_| held.is_empty()) {
                        self.store_snapshot(&mut conn, snap).await;
                    }
                };
                let tried = crate::timeout::timeout(FINAL_APPEND_TIMEOUT, last).await;
                if tried.is_none() || !held.is_empty() {
                    error!(
                        "board {}: unloaded while Redis could not be reached: {} operation(s) drawn here were not shared",
                        self.board,
                        held.len()
                    );
                }
                break;
            }
            if let Err(problem) = self.append_some(&mut conn, &mut held).await {
                conn = None;
                self.report(true, Some(problem));
                backoff.wait().await;
                continue;
            }
            if let Some(snap) = snapshot.take() {
                self.store_snapshot(&mut conn, snap).await;
            }
            backoff.reset();
        }
        // A reloaded board's new link may be counting already: only the current link says 0.
        if self.cluster.unlinked(&self.board, &self.hub) {
            let _ = self.cluster.publish.0.try_send(Publish::Count(self.board.clone(), 0));
        }
        debug!("board {}: link {} ended", self.board, self.id);
    }

    fn take(&self, msg: LinkMsg, held: &mut VecDeque<Held>, snapshot: &mut Option<Snapshot>) {
        match msg {
            LinkMsg::Append { op, seq, from } => {
                held.push_back(Held { seq, line: op_line(&op), origin: self.origin(seq, from) });
            }
            LinkMsg::Count(count) => {
                let _ = self.cluster.publish.0.try_send(Publish::Count(self.board.clone(), count));
            }
            LinkMsg::Snapshot(snap) => *snapshot = Some(snap),
        }
    }

    fn origin(&self, seq: u64, client: ClientId) -> String {
        Origin { server: self.id.clone(), seq, client }.encode()
    }

    async fn append_all(&self, conn: &mut Option<MultiplexedConnection>, held: &mut VecDeque<Held>) {
        while !held.is_empty() {
            if self.append_some(conn, held).await.is_err() {
                return;
            }
        }
    }

    /// Appends up to `--redis-append-batch` held operations in one round trip.
    async fn append_some(
        &self,
        conn: &mut Option<MultiplexedConnection>,
        held: &mut VecDeque<Held>,
    ) -> Result<(), String> {
        if held.is_empty() {
            return Ok(());
        }
        let c = match conn {
            Some(c) => c,
            None => {
                let mut fresh = self.cluster.connect().await?;
                command(self.append.prepare_invoke().load_async(&mut fresh)).await?;
                conn.insert(fresh)
            }
        };
        let n = held.len().min(self.cluster.append_batch);
        let mut pipe = redis::pipe();
        for op in held.iter().take(n) {
            pipe.cmd("EVALSHA")
                .arg(self.append.get_hash())
                .arg(3)
                .arg(&self.keys.ops)
                .arg(&self.keys.head)
                .arg(&self.seq_key)
                .arg(op.seq)
                .arg(&op.line)
                .arg(&op.origin)
                .arg(SEQ_LIFETIME_SECS);
        }
        let result = command(pipe.query_async::<Vec<String>>(c)).await;
        let ids = match result {
            Err(problem) if problem.to_ascii_uppercase().contains("NOSCRIPT") => {
                // Redis restarted (its script cache is empty): load the script, then the same batch again.
                command(self.append.prepare_invoke().load_async(c)).await?;
                command(pipe.query_async::<Vec<String>>(c)).await?
            }
            other => other?,
        };
        held.drain(..n);
        let appended = ids.iter().filter(|id| !id.is_empty()).count();
        add(&self.cluster.metrics.appends, appended as u64);
        if appended < ids.len() {
            info!(
                "board {}: {} operation(s) were already appended before Redis's answer was lost",
                self.board,
                ids.len() - appended
            );
        }
        self.report(true, None);
        Ok(())
    }

    /// Stores the board's snapshot and trims its stream, if this server holds (or can take) the lease.
    async fn store_snapshot(&self, conn: &mut Option<MultiplexedConnection>, snap: Snapshot) {
        let c = match conn {
            Some(c) => c,
            None => match self.cluster.connect().await {
                Ok(fresh) => conn.insert(fresh),
                Err(problem) => {
                    warn!("board {}: snapshot not stored: {problem}", self.board);
                    return;
                }
            },
        };
        let floor = snap.floor.unwrap_or_default();
        let mut call = self.snapshot.key(&self.keys.lease);
        call.key(&self.keys.snap)
            .key(&self.keys.ops)
            .arg(&*self.cluster.server)
            .arg(LEASE_MS)
            .arg(&snap.upto)
            .arg(&snap.log)
            .arg(floor)
            .arg(self.cluster.keep.as_millis() as u64);
        match within(Duration::from_secs(10), call.invoke_async::<i64>(c)).await {
            Ok(1) => {
                add(&self.cluster.metrics.snapshots, 1);
                info!("board {}: snapshot up to {} stored in Redis; stream trimmed", self.board, snap.upto);
            }
            Ok(0) => debug!("board {}: another server holds the snapshot lease", self.board),
            Ok(_) => debug!("board {}: Redis holds a newer snapshot than {}", self.board, snap.upto),
            Err(problem) => warn!("board {}: snapshot not stored: {problem}", self.board),
        }
    }

    async fn read_loop(self: Arc<Self>, mut last: String) {
        let mut conn: Option<MultiplexedConnection> = None;
        let mut backoff = Backoff::new();
        while !self.hub.is_closed() {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match self.cluster.connect().await {
                    Ok(c) => conn.insert(c),
                    Err(problem) => {
                        self.report(false, Some(problem));
                        backoff.wait().await;
                        continue;
                    }
                },
            };
            let mut read = redis::cmd("XREAD");
            read.arg("COUNT").arg(READ_BATCH).arg("BLOCK").arg(READ_BLOCK.as_millis() as u64);
            read.arg("STREAMS").arg(&self.keys.ops).arg(&last);
            type Reply = Option<Vec<(String, Vec<(String, HashMap<String, String>)>)>>;
            let reply = within(READ_BLOCK + super::COMMAND_TIMEOUT, read.query_async::<Reply>(c)).await;
            let streams = match reply {
                Ok(streams) => streams.unwrap_or_default(),
                Err(problem) => {
                    conn = None;
                    self.report(false, Some(problem));
                    backoff.wait().await;
                    continue;
                }
            };
            self.report(false, None);
            backoff.reset();
            let raw = streams.into_iter().flat_map(|(_, entries)| entries);
            let entries = match check_entries(&self.board, &mut last, raw) {
                Ok(entries) => entries,
                Err(gap) => {
                    warn!("board {}: {gap}; the board is reloaded", self.board);
                    let _ = self.hub.send(Event::Reset).await;
                    return;
                }
            };
            if !entries.is_empty() && self.hub.send(Event::Shared(entries)).await.is_err() {
                return;
            }
        }
    }
}

/// The log line of an operation, without its newline.
fn op_line(op: &Op) -> String {
    let mut line = String::new();
    oplog::write_op(op, &mut line);
    line.truncate(line.trim_end().len());
    line
}

/// The entries read after `last`, parsed; `Err` when one does not follow the
/// one before (a gap). An entry that cannot be read is skipped with an error
/// (every server skips it alike).
pub fn check_entries(
    board: &str,
    last: &mut String,
    raw: impl IntoIterator<Item = (String, HashMap<String, String>)>,
) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    for (id, fields) in raw {
        let prev = fields.get("prev").map_or("", String::as_str);
        if prev != last {
            return Err(format!("entry {id} follows {prev}, not {last}, the last entry read here"));
        }
        *last = id.clone();
        let op = fields.get("op").map(|line| oplog::parse_line(line));
        let origin = fields.get("origin").and_then(|text| Origin::decode(text));
        match (op, origin) {
            (Some(Ok(Line::Op(op))), Some(origin)) if shareable(&op) => entries.push(Entry { id, op, origin }),
            _ => error!("board {board}: stream entry {id} is not an operation smolcanvas wrote; skipped"),
        }
    }
    Ok(entries)
}

/// Only what clients do travels through the stream (not the log's compacted forms).
fn shareable(op: &Op) -> bool {
    matches!(op, Op::Draw { .. } | Op::Clear { .. } | Op::Undo { .. } | Op::Redo { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: &str, prev: &str, op: &str) -> (String, HashMap<String, String>) {
        let fields = [("prev", prev), ("op", op), ("origin", "s.1/1/7")];
        (id.to_string(), fields.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn entries_must_follow_each_other() {
        let clear = r#"{"op":"clear","by":"00000000000000ff"}"#;
        let mut last = "0-0".to_string();
        let got = check_entries("b", &mut last, [raw("5-0", "0-0", clear), raw("6-0", "5-0", "junk")]).unwrap();
        assert_eq!(got.len(), 1, "the unreadable entry is skipped, the chain goes on");
        assert_eq!(last, "6-0");
        assert!(check_entries("b", &mut last, [raw("9-0", "7-0", clear)]).is_err());
    }
}
