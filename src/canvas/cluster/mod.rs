//! Boards shared by several servers through Redis (`--redis URL`, cargo feature `redis`).
//!
//! What the hub sees of it is built in every build: a [`BoardLink`] it sends
//! its board's operations to, and the [`Entry`]s that come back in the one
//! order every server applies. The Redis side ([`Cluster`]) exists only with
//! the `redis` feature; without it `Cluster` has no values, so a build
//! without Redis carries none of it.
//!
//! # How a board is shared
//!
//! A hub never applies an operation of its own clients directly: it hands it
//! to its link, which appends it to the board's Redis stream; every server's
//! link reads the stream and gives the hub each entry in stream order, and
//! only then is it applied and relayed. So every server's model goes through
//! the same operations in the same order. While Redis cannot be reached, a
//! hub relays its own clients' draws and clears to its own clients at once
//! (they stay tentative), the link keeps them and appends them, exactly once,
//! when Redis answers again; then every local client is synced again, so its
//! picture is the stream's. The full design, with the Redis keys, is in
//! `docs/CLUSTER.md`.

#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::sync::Arc;

use super::hub::ClientId;
use super::model::Op;

#[cfg(feature = "redis")]
pub use self::redis::Cluster;

/// Without the `redis` feature there is no cluster: this type has no values.
#[cfg(not(feature = "redis"))]
#[derive(Debug)]
pub enum Cluster {}

#[cfg(not(feature = "redis"))]
#[allow(clippy::unused_async)]
impl Cluster {
    /// A build without the `redis` feature cannot share boards.
    pub fn open(_url: &str, _append_batch: usize, _keep: std::time::Duration) -> Result<Arc<Cluster>, ClusterError> {
        Err(ClusterError("this smolcanvas was built without Redis support (cargo feature `redis`)".into()))
    }

    /// Never called: there is no cluster.
    pub fn import(&self, _data_dir: &std::path::Path) -> Result<usize, ClusterError> {
        match *self {}
    }

    /// Never called: there is no cluster.
    pub async fn prepare(&self, _data_dir: &std::path::Path, _name: &str) -> Result<Prepared, ClusterError> {
        match *self {}
    }

    /// Never called: there is no cluster.
    pub fn link(
        self: &Arc<Self>,
        _name: &str,
        _hub: async_channel::Sender<super::hub::Event>,
        _after: &str,
        _spawner: &crate::app::Spawner,
    ) -> BoardLink {
        match **self {}
    }

    /// Never called: there is no cluster.
    pub fn view_token(&self, _name: &str) -> String {
        match *self {}
    }

    /// Never called: there is no cluster.
    pub fn board_of_token(&self, _token: &str) -> Option<String> {
        match *self {}
    }

    /// Never called: there is no cluster.
    pub fn boards(&self) -> Vec<String> {
        match *self {}
    }

    /// Never called: there is no cluster.
    pub fn created(&self, _name: &str) {
        match *self {}
    }

    /// Never called: there is no cluster.
    pub fn problem(&self) -> Option<String> {
        match *self {}
    }

    /// Never called: there is no cluster.
    pub fn start(self: &Arc<Self>, _spawner: &crate::app::Spawner) {
        match **self {}
    }

    /// Never called: there is no cluster.
    pub fn write_metrics(&self, _out: &mut String) {
        match *self {}
    }
}

/// Operations of one board a server may have handed to its link and not yet
/// read back from the stream; past it (Redis unreachable for long under
/// heavy drawing) a server takes no more operations on the board until Redis
/// is back. At the default rate limit that is minutes of a busy board, and a
/// few tens of MB at most.
pub const MAX_UNSHARED_OPS: u64 = 200_000;

/// Why the cluster cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterError(pub String);

impl fmt::Display for ClusterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

/// Who appended an entry: the server, its number for the operation, and the client that sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The appending server's id (random per run of the process).
    pub server: Arc<str>,
    /// The operation's number on that server's link to the board, from 1.
    pub seq: u64,
    /// The sending client's number on that server.
    pub client: ClientId,
}

impl Origin {
    /// `server/seq/client`: the form stored with the entry.
    pub fn encode(&self) -> String {
        format!("{}/{}/{}", self.server, self.seq, self.client)
    }

    /// Reads [`Origin::encode`]'s form.
    pub fn decode(text: &str) -> Option<Origin> {
        let mut parts = text.split('/');
        let server = parts.next().filter(|s| !s.is_empty())?;
        let seq = parts.next()?.parse().ok()?;
        let client = parts.next()?.parse().ok()?;
        parts.next().is_none().then(|| Origin { server: server.into(), seq, client })
    }
}

/// One operation of the board's shared order.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Its stream id (`ms-n`).
    pub id: String,
    /// The operation.
    pub op: Op,
    /// Who appended it.
    pub origin: Origin,
}

/// What a hub hands its link.
#[derive(Debug)]
pub enum LinkMsg {
    /// Append this operation of a local client.
    Append {
        /// The operation.
        op: Op,
        /// Its number on this link (the hub counts from 1).
        seq: u64,
        /// The sending client.
        from: ClientId,
    },
    /// This server now has this many clients on the board.
    Count(usize),
    /// The board's compacted form, to store as its snapshot (if this server holds the lease).
    Snapshot(Snapshot),
}

/// A board's durable state as of one stream entry: what replaces the stream up to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The id of the last entry it holds.
    pub upto: String,
    /// The compacted log (`log.jsonl`'s form: header line, then the live items and redo stacks).
    pub log: String,
    /// The floor PNG the log's header names; `None` while the floor is white.
    pub floor: Option<Vec<u8>>,
}

/// A board read from Redis before its hub starts.
#[derive(Debug)]
pub struct Prepared {
    /// The board's entries after its snapshot (written to the data dir), in order.
    pub entries: Vec<Entry>,
    /// The id of the last entry the board holds (its snapshot's or the last of `entries`); `0-0` for none.
    pub last: String,
}

/// A hub's way to its board's link; dropped, the link finishes its appends and ends.
#[derive(Debug)]
pub struct BoardLink {
    /// Where operations go.
    pub tx: async_channel::Sender<LinkMsg>,
    /// This server's id, to tell its own entries.
    pub server: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_round_trip_and_bad_ones_are_refused() {
        let origin = Origin { server: "a1B2c3".into(), seq: 17, client: 4 };
        assert_eq!(Origin::decode(&origin.encode()), Some(origin));
        for bad in ["", "a/1", "a/x/2", "/1/2", "a/1/2/3"] {
            assert_eq!(Origin::decode(bad), None, "{bad}");
        }
    }
}
