//! A board's files in the data dir, as the tests read them (the layout is in
//! `src/canvas/store/mod.rs`): its folder, and how many draws its log holds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::wait::WAIT;

/// Board `name`'s folder in the data dir `data_dir`.
pub fn board_folder(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("boards").join(name)
}

/// Board `name`'s `log.jsonl` as `(committed, ops)`: the items its header says the floor holds
/// and the op lines after the header; `(0, 0)` while it has no log.
pub fn board_log(data_dir: &Path, name: &str) -> (u64, usize) {
    let log = std::fs::read_to_string(board_folder(data_dir, name).join("log.jsonl")).unwrap_or_default();
    let Some(header) = log.lines().next() else { return (0, 0) };
    let header: serde_json::Value =
        serde_json::from_str(header).unwrap_or_else(|e| panic!("board {name}'s log header {header:?}: {e}"));
    let committed = header["committed"].as_u64().unwrap_or_else(|| panic!("no committed in {header}"));
    (committed, log.lines().count() - 1)
}

/// The draws board `name`'s files hold, counted from its log: those in the floor, then one op
/// line each (a draw without a stroke number, as v1 clients send, is a stroke of its own, and
/// the log's compacted form has one line per live stroke). Only for boards drawn on that way,
/// without clears, undos or redos.
pub fn saved_draws(data_dir: &Path, name: &str) -> usize {
    let (committed, ops) = board_log(data_dir, name);
    committed as usize + ops
}

/// Waits (bounded by [`WAIT`]) until board `name`'s files hold `draws` draws ([`saved_draws`]):
/// the store has written (and fsynced) them.
pub fn wait_saved_draws(data_dir: &Path, name: &str, draws: usize) {
    let start = Instant::now();
    while saved_draws(data_dir, name) != draws {
        let now = saved_draws(data_dir, name);
        assert!(start.elapsed() < WAIT, "board {name}'s files hold {now} draws, not {draws}, after {WAIT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
