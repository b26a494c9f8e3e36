//! Taking over a v1 data dir as board `main`.
//!
//! A v1 server kept one board in `DATA/snapshot.txt` (the PNG data URL of a
//! client's canvas, any size, possibly absent) and `DATA/journal.jsonl` (the
//! draws since, one normalized draw a line, possibly with a torn last line).
//! [`migrate_v1`] makes the snapshot the floor of board `main` and each
//! journaled draw a stroke of its own on top, then moves the two files into
//! `DATA/v1-migrated/`, so a later clear and restart never bring them back.
//!
//! Crash safety: board `main` is written whole into `DATA/boards/.main.v1`
//! (not a board name, so [`super::scan`] skips it), fsynced, then renamed to
//! `DATA/boards/main`, so `main` exists only once complete. The v1 files are
//! moved only after that; a crash in between is finished at the next start
//! without migrating twice.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use async_tungstenite::tungstenite::Utf8Bytes;
use log::{info, warn};

use super::files::{self, BOARDS_DIR, V1_MIGRATED_DIR, at, board_dir, read_optional};
use super::{BoardStore, OnDisk, StoreError, commit, new_view_token};
use crate::canvas::model::{Author, Board, Op, StrokeKey};
use crate::canvas::picture::{Picture, data_url_png};
use crate::canvas::protocol::parse_journaled_draw;

/// The v1 snapshot.
pub const V1_SNAPSHOT: &str = "snapshot.txt";
/// The v1 journal.
pub const V1_JOURNAL: &str = "journal.jsonl";
/// The board a v1 data dir becomes.
const MAIN: &str = "main";
/// Where board `main` is written before it is renamed into place.
const WORK_DIR: &str = ".main.v1";
/// The `clientId` part of the migrated strokes' keys (`v1-0.1`, `v1-0.2`, ...):
/// the hub never gives a client this id.
pub const V1_CLIENT_ID: &str = "v1-0";

/// Takes over a v1 data dir as board `main`, keeping `window` strokes live
/// (the older journaled draws are painted into the floor). Returns whether it
/// migrated something. Does nothing when there are no v1 files; when board
/// `main` already exists, only moves the v1 files away (a crash interrupted
/// an earlier migration after `main` was written). Blocks.
pub fn migrate_v1(data_dir: &Path, window: usize) -> Result<bool, StoreError> {
    let snapshot_path = data_dir.join(V1_SNAPSHOT);
    let journal_path = data_dir.join(V1_JOURNAL);
    let snapshot = read_optional(&snapshot_path)?;
    let journal = read_optional(&journal_path)?;
    if snapshot.is_none() && journal.is_none() {
        return Ok(false);
    }
    let main = board_dir(data_dir, MAIN);
    if fs::symlink_metadata(&main).is_ok() {
        info!(
            "board main exists: the v1 files in {} were migrated before; moving them to {V1_MIGRATED_DIR}",
            data_dir.display()
        );
        move_v1_files(data_dir)?;
        return Ok(false);
    }

    let mut floor = Picture::blank();
    if let Some(bytes) = &snapshot {
        let decoded = std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|url| data_url_png(url.trim_end()).map_err(|e| e.to_string()))
            .and_then(|png| Picture::decode_png(&png).map_err(|e| e.to_string()));
        match decoded {
            Ok(picture) => floor = picture,
            Err(e) if bytes.is_empty() => warn!("{}: empty ({e})", snapshot_path.display()),
            Err(e) => warn!(
                "{}: cannot be read as a PNG data URL ({e}); board main starts from a white floor (the file is kept in {V1_MIGRATED_DIR})",
                snapshot_path.display()
            ),
        }
    }
    let (draws, _) = journal.as_deref().map(|bytes| recover_v1_journal(bytes, &journal_path)).unwrap_or_default();
    let draw_count = draws.len();
    let mut board = Board::new(window);
    let mut commits = Vec::new();
    for (n, draw) in draws.into_iter().enumerate() {
        let key = StrokeKey(format!("{V1_CLIENT_ID}.{}", n + 1).into());
        board.apply(Op::Draw { key, author: Author::NOBODY, draw }, &mut commits);
    }
    for item in &commits {
        commit(&mut floor, item);
    }

    let boards = data_dir.join(BOARDS_DIR);
    let work = boards.join(WORK_DIR);
    if fs::symlink_metadata(&work).is_ok() {
        fs::remove_dir_all(&work).map_err(at("removing an interrupted migration", &work))?;
    }
    let live = board.items().len();
    let disk = OnDisk {
        view: new_view_token(),
        exists: false,
        board,
        floor,
        png: None,
        floor_gen: 0,
        last_gen: 0,
        floor_dirty: true,
        log_ok: false,
        log_weight: 0,
    };
    let mut store = BoardStore::new(work.clone(), MAIN, disk);
    store.unsaved = true;
    store.save(true)?;
    drop(store);
    fs::rename(&work, &main).map_err(at("renaming into", &main))?;
    files::sync_dir(&boards)?;
    info!(
        "v1 board in {} migrated to board main: {} snapshot as the floor, {draw_count} journaled draw(s) as strokes \
         ({live} live, {} painted into the floor)",
        data_dir.display(),
        if snapshot.is_some() { "its" } else { "no" },
        commits.len()
    );
    move_v1_files(data_dir)?;
    Ok(true)
}

/// Moves the v1 files that are still in `data_dir` into `v1-migrated/`
/// (under a free name: nothing there is overwritten), fsyncing both folders.
fn move_v1_files(data_dir: &Path) -> Result<(), StoreError> {
    let to = data_dir.join(V1_MIGRATED_DIR);
    files::create_dirs(&to)?;
    for name in [V1_SNAPSHOT, V1_JOURNAL] {
        let from = data_dir.join(name);
        if fs::symlink_metadata(&from).is_err() {
            continue;
        }
        let target = free_name(&to, name);
        fs::rename(&from, &target).map_err(at("moving a v1 file into", &target))?;
        info!("{} moved to {}", from.display(), target.display());
    }
    files::sync_dir(&to)?;
    files::sync_dir(data_dir)
}

/// `dir/name`, or `dir/name.1`, `dir/name.2`, ... whichever does not exist.
fn free_name(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.join(name);
    let mut n = 0;
    while fs::symlink_metadata(&path).is_ok() {
        n += 1;
        path = dir.join(format!("{name}.{n}"));
    }
    path
}

/// Parses a v1 journal; returns the draws and whether the file was clean.
///
/// Each non-empty line must be one draw that [`parse_journaled_draw`] accepts;
/// it comes back re-encoded in normalized form. A line that does not parse
/// (torn by a crash mid-append, or corrupt) is skipped with a warning naming
/// `path`. The file is clean when nothing was skipped and it is empty or ends
/// with a newline.
pub fn recover_v1_journal(bytes: &[u8], path: &Path) -> (VecDeque<Utf8Bytes>, bool) {
    let mut draws = VecDeque::new();
    let mut clean = bytes.is_empty() || bytes.ends_with(b"\n");
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match std::str::from_utf8(line).ok().map(parse_journaled_draw) {
            Some(Ok(draw)) => draws.push_back(draw.encode()),
            _ => {
                warn!("{} line {}: torn or corrupt draw skipped", path.display(), index + 1);
                clean = false;
            }
        }
    }
    (draws, clean)
}
