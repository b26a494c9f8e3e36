//! The canvas app's settings: [`CanvasConfig`], its defaults and what must agree with the server's.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{InvalidConfig, ServerConfig};

/// Room for the JSON around a snapshot's data URL (`type`, `clientId`).
pub(crate) const SNAPSHOT_ENVELOPE_BYTES: usize = 1024;

/// Settings of the canvas application: board store, sync and per-client limits.
#[derive(Clone, Debug)]
pub struct CanvasConfig {
    /// Where the board (snapshot and journal) is kept.
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
    /// Journal length (draws) at which the server asks a peer for a snapshot.
    pub journal_limit: usize,
    /// Peers that may be sending a snapshot at once (each may hold up to
    /// `max_snapshot_bytes` in memory while it arrives).
    pub max_snapshot_uploads: usize,
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
            journal_limit: 20_000,
            max_snapshot_uploads: 8,
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
        for (setting, value) in [
            ("max-snapshot-bytes", self.max_snapshot_bytes),
            ("journal-limit", self.journal_limit),
            ("max-snapshot-uploads", self.max_snapshot_uploads),
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
        let canvas = CanvasConfig { journal_limit: 0, ..CanvasConfig::default() };
        assert_eq!(canvas.validate(&ServerConfig::default()).unwrap_err().setting, "journal-limit");
    }
}
