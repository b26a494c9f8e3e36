//! Loading a shared board: its snapshot and the entries after it, read from
//! Redis in one transaction, the snapshot written into the data dir (a cache
//! of Redis), the entries handed to the hub.

use std::collections::HashMap;
use std::path::Path;

use super::keys::{self, BoardKeys};
use super::link::check_entries;
use super::{Cluster, command};
use crate::canvas::cluster::{ClusterError, Prepared};
use crate::canvas::store;

/// See the module doc.
pub async fn prepare(cluster: &Cluster, data_dir: &Path, name: &str) -> Result<Prepared, ClusterError> {
    let keys = BoardKeys::of(name);
    let fail = |problem: String| ClusterError(format!("board {name} cannot be read from Redis: {problem}"));
    let mut conn = cluster.connect().await.map_err(fail)?;
    type Stream = Vec<(String, HashMap<String, String>)>;
    let mut pipe = redis::pipe();
    pipe.atomic().hgetall(&keys.snap).cmd("XRANGE").arg(&keys.ops).arg("-").arg("+");
    let (snap, stream): (HashMap<String, Vec<u8>>, Stream) =
        command(pipe.query_async(&mut conn)).await.map_err(fail)?;
    let text = |field: &str| snap.get(field).map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    let upto = text("upto").unwrap_or_else(|| "0-0".to_string());
    let log = text("log");
    let floor = snap.get("floor").filter(|png| !png.is_empty()).cloned();
    // Entries up to the snapshot are in it (trimming keeps some for readers that lag).
    let after: Stream =
        stream.into_iter().filter(|(id, _)| keys::compare(id, &upto) == Some(std::cmp::Ordering::Greater)).collect();
    let mut last = upto;
    let entries = check_entries(name, &mut last, after).map_err(fail)?;
    let exists = log.is_some() || !entries.is_empty() || cluster.knows(name);
    let view = cluster.view_token(name);
    let (dir, board) = (data_dir.to_path_buf(), name.to_string());
    smol::unblock(move || {
        store::install(&dir, &board, exists.then_some(view.as_str()), log.as_deref(), floor.as_deref())
    })
    .await
    .map_err(|e| fail(e.to_string()))?;
    if exists {
        cluster.learn(name);
    }
    Ok(Prepared { entries, last })
}
