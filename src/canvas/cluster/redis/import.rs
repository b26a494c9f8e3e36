//! A single server's boards moved into Redis, the first time its data dir is
//! used with `--redis`; from then on the data dir is a cache, and says so in
//! [`MARKER`].

use std::path::Path;

use log::{info, warn};

use super::keys::{self, BoardKeys};
use super::{Cluster, command};
use crate::canvas::cluster::ClusterError;
use crate::canvas::store;

/// Where boards go that Redis has a board of the same name for (they are not used, but kept).
pub const NOT_MOVED: &str = "not-moved-into-redis";

/// The file that marks a data dir as a cache of boards shared through Redis.
pub const MARKER: &str = "SHARED-THROUGH-REDIS.txt";

const MARKER_TEXT: &str = "\
This data dir is a cache of boards shared through Redis (smolcanvas --redis).\n\
The boards are in Redis; a server rewrites a board's folder here from Redis when it loads it.\n\
Its boards, if any, were moved into Redis when it was first used with --redis.\n";

/// Moves every board of `data_dir` that Redis does not know into Redis, unless
/// the data dir is a cache already; answers how many were moved.
pub async fn import(cluster: &Cluster, data_dir: &Path) -> Result<usize, ClusterError> {
    let marker = data_dir.join(MARKER);
    if marker.exists() {
        return Ok(0);
    }
    let fail = |what: String| ClusterError(format!("moving the boards of {} into Redis: {what}", data_dir.display()));
    let (dir, scanning) = (data_dir.to_path_buf(), data_dir.to_path_buf());
    let boards = smol::unblock(move || store::scan(&scanning)).await.map_err(|e| fail(e.to_string()))?;
    let mut conn = cluster.connect().await.map_err(fail)?;
    let script = redis::Script::new(keys::IMPORT);
    let mut moved = 0;
    for (name, _) in boards {
        let (reading, board) = (dir.clone(), name.clone());
        let (log, floor) = smol::unblock(move || store::read_for_export(&reading, &board))
            .await
            .map_err(|e| fail(format!("board {name}: {e}")))?;
        let keys = BoardKeys::of(&name);
        let mut call = script.key(&keys.snap);
        call.key(&keys.ops).key(keys::BOARDS).arg(&log).arg(floor.unwrap_or_default()).arg(&name);
        let stored: i64 =
            command(call.invoke_async(&mut conn)).await.map_err(|e| fail(format!("board {name}: {e}")))?;
        if stored == 1 {
            moved += 1;
            cluster.learn(&name);
            info!("board {name} moved into Redis; its view link is now /v/{}", cluster.view_token(&name));
        } else {
            // Loading the board would overwrite its folder with Redis's board: it is kept aside.
            let (from, to) = (store::board_folder(&dir, &name), dir.join(NOT_MOVED).join(&name));
            let moving = (from.clone(), to.clone());
            smol::unblock(move || {
                std::fs::create_dir_all(moving.1.parent().unwrap_or(&moving.1))?;
                std::fs::rename(&moving.0, &moving.1)
            })
            .await
            .map_err(|e| fail(format!("board {name}: moving {} aside: {e}", from.display())))?;
            warn!(
                "board {name}: Redis has a board of that name already; this data dir's board was moved to {}",
                to.display()
            );
        }
    }
    let writing = marker.clone();
    smol::unblock(move || std::fs::write(&writing, MARKER_TEXT))
        .await
        .map_err(|e| fail(format!("writing {}: {e}", marker.display())))?;
    Ok(moved)
}
