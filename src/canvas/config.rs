//! The canvas app's settings: [`CanvasConfig`], its defaults and what must agree with the server's.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{InvalidConfig, ServerConfig};

/// Room for the JSON around a snapshot's data URL (`type`, `clientId`).
pub(crate) const SNAPSHOT_ENVELOPE_BYTES: usize = 1024;

/// Settings of the canvas application: board store, sync and per-client limits.
#[derive(Clone, Debug)]
pub struct CanvasConfig {
    /// Where the boards are kept.
    pub data_dir: PathBuf,
    /// How long a peer has to answer a `canvasRequest` before the next one is asked.
    pub sync_timeout: Duration,
    /// How often journaled draws are written to disk.
    pub flush_interval: Duration,
    /// Largest `canvasState` data URL accepted.
    pub max_snapshot_bytes: usize,
    /// Sustained frames per second allowed per client.
    pub rate_limit: f64,
    /// Frames a client may send in a burst above the sustained rate.
    pub rate_burst: f64,
    /// Bytes that may wait in one client's outbox before it is closed as too slow.
    pub outbox_bytes: usize,
    /// Peers that may be sending a snapshot at once (each may hold up to
    /// `max_snapshot_bytes` in memory while it arrives).
    pub max_snapshot_uploads: usize,
    /// Who answers a v1 newcomer's sync.
    pub sync: SyncMode,
    /// Newest items (strokes and clears) per board that can still be undone;
    /// older ones are painted into the board's floor.
    pub undo_strokes: usize,
    /// Boards that may exist in the data dir.
    pub max_boards: usize,
    /// Boards held in memory at once.
    pub max_loaded_boards: usize,
    /// How long a board stays loaded after its last client left.
    pub board_unload: Duration,
    /// The Redis through which boards are shared with other servers (`--redis`); `None`: not shared.
    pub redis: Option<String>,
    /// Operations of one board appended to Redis in one round trip, at most.
    pub redis_append_batch: usize,
    /// How long a board's stream keeps its entries after a snapshot holds them,
    /// for servers that read behind (cut off from Redis for a while).
    pub redis_keep: Duration,
}

/// Who answers a v1 newcomer's sync (`--sync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SyncMode {
    /// The server, from its own picture of the board.
    #[default]
    Server,
    /// The longest-connected synced v1 editor, then the next, then the server.
    Peers,
}

impl std::str::FromStr for SyncMode {
    type Err = ();

    fn from_str(text: &str) -> Result<SyncMode, ()> {
        match text {
            "server" => Ok(SyncMode::Server),
            "peers" => Ok(SyncMode::Peers),
            _ => Err(()),
        }
    }
}

impl Default for CanvasConfig {
    /// The documented defaults (`smolcanvas --help` lists them).
    fn default() -> Self {
        CanvasConfig {
            data_dir: PathBuf::from("./smolcanvas-data"),
            sync_timeout: Duration::from_secs(2),
            flush_interval: Duration::from_secs(1),
            max_snapshot_bytes: 8 * 1024 * 1024,
            rate_limit: 1000.0,
            rate_burst: 2000.0,
            outbox_bytes: 1024 * 1024,
            max_snapshot_uploads: 8,
            sync: SyncMode::Server,
            undo_strokes: 500,
            max_boards: 1000,
            max_loaded_boards: 32,
            board_unload: Duration::from_secs(60),
            redis: None,
            redis_append_batch: 256,
            redis_keep: Duration::from_secs(60),
        }
    }
}

impl CanvasConfig {
    /// Checks the settings, and that the server accepts the largest message
    /// the canvas asks a client for (a snapshot and its JSON).
    ///
    /// ```
    /// use smolcanvas::{CanvasConfig, ServerConfig};
    ///
    /// let server = ServerConfig { max_message_bytes: 1024 * 1024, ..ServerConfig::default() };
    /// let problem = CanvasConfig::default().validate(&server).unwrap_err();
    /// assert_eq!(problem.setting, "max-message-bytes");
    /// ```
    pub fn validate(&self, server: &ServerConfig) -> Result<(), InvalidConfig> {
        let invalid = |setting, problem: String| Err(InvalidConfig { setting, problem });
        let largest = self.max_snapshot_bytes + SNAPSHOT_ENVELOPE_BYTES;
        if server.max_message_bytes < largest {
            return invalid(
                "max-message-bytes",
                format!(
                    "{} is below the largest message a peer may be asked for: a snapshot of --max-snapshot-bytes {} and its JSON ({largest})",
                    server.max_message_bytes, self.max_snapshot_bytes
                ),
            );
        }
        if !(self.rate_limit.is_finite() && self.rate_limit > 0.0) {
            return invalid("rate-limit", "must be a number above 0".into());
        }
        if !(self.rate_burst.is_finite() && self.rate_burst >= 1.0) {
            return invalid("rate-burst", "must be at least 1".into());
        }
        if self.outbox_bytes < 1024 {
            return invalid("outbox-bytes", "must be at least 1024".into());
        }
        if self.redis.is_some() && self.sync == SyncMode::Peers {
            return invalid(
                "redis",
                "cannot be used with --sync peers: shared boards are synced from the servers' own picture".into(),
            );
        }
        for (setting, value) in [
            ("max-snapshot-bytes", self.max_snapshot_bytes),
            ("max-snapshot-uploads", self.max_snapshot_uploads),
            ("undo-strokes", self.undo_strokes),
            ("max-boards", self.max_boards),
            ("max-loaded-boards", self.max_loaded_boards),
            ("redis-append-batch", self.redis_append_batch),
        ] {
            if value == 0 {
                return invalid(setting, "must be at least 1".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_agree_with_the_server_defaults() {
        assert_eq!(CanvasConfig::default().validate(&ServerConfig::default()), Ok(()));
    }

    #[test]
    fn a_snapshot_larger_than_the_message_limit_is_refused() {
        let canvas = CanvasConfig { max_snapshot_bytes: 16 * 1024 * 1024, ..CanvasConfig::default() };
        assert_eq!(canvas.validate(&ServerConfig::default()).unwrap_err().setting, "max-message-bytes");
        let canvas = CanvasConfig { undo_strokes: 0, ..CanvasConfig::default() };
        assert_eq!(canvas.validate(&ServerConfig::default()).unwrap_err().setting, "undo-strokes");
    }
}
