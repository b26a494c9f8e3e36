//! The boards on disk: loading, saving, compacting, rendering, and taking over a v1 data dir.
//!
//! # Layout of the data dir
//!
//! ```text
//! DATA/boards/NAME/meta.json     {"view":"<token>"}: written once, when the board comes into being (its first op)
//! DATA/boards/NAME/floor-G.png   the floor, generation G (no file for G = 0: a white floor)
//! DATA/boards/NAME/log.jsonl     first line {"floor":G,"committed":C} names the floor file; then one op a line
//! DATA/v1-migrated/              where a v1 data dir's snapshot.txt and journal.jsonl go once migrated
//! ```
//!
//! A board exists when its folder has a `meta.json`. Its state is the floor
//! named by the log's header (holding the first C items the board ever
//! committed) plus the log's ops replayed through [`model::Board::apply`]
//! with the undo window; items the replay commits are painted into the floor.
//! The log's line forms are in [`oplog`].
//!
//! Writes: ops are appended to `log.jsonl` in batches at most every flush
//! interval and fsynced, so a crash (or `kill -9`) loses at most the last
//! interval. Compaction replaces the log by the board's compacted form (the
//! live items, then every redo stack): it writes `floor-(G+1).png` (temp
//! file, fsync, rename, fsync of the folder), then the new log the same way
//! (its header names the new floor), then deletes `floor-G.png`. A crash at
//! any step leaves a log whose header names a whole floor file; stray floor
//! and temp files are removed when the board is next loaded. A board whose
//! floor is white after compaction has header floor 0 and no floor file.
//!
//! Everything here blocks (file I/O, PNG work, painting): the async side
//! calls it through `smol::unblock`, and [`BoardStore::run`] does all of
//! its own work there.

#![allow(dead_code)] // The multi-board hub that uses this module lands next.

mod files;
mod migrate;
pub mod oplog;
mod task;

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};

use async_tungstenite::tungstenite::Utf8Bytes;
use log::{info, warn};
use serde::Deserialize;

use super::cluster::Snapshot;
use super::model::{self, Board, Item, Op};
use super::picture::{Picture, Segment, parse_color, png_data_url};
use super::protocol::parse_journaled_draw;
#[cfg_attr(not(feature = "redis"), allow(unused_imports))] // Shared boards derive their view tokens.
pub use files::derived_view_token;
use files::{
    BOARDS_DIR, LOG_FILE, META_FILE, TMP_SUFFIX, at, board_dir, floor_file, floor_generation, read_optional,
    valid_name, valid_token,
};
pub use files::{StoreError, new_view_token};
#[allow(unused_imports)] // The multi-board hub that uses them lands next.
pub use migrate::{V1_CLIENT_ID, migrate_v1, recover_v1_journal};
use oplog::Header;
#[allow(unused_imports)] // The multi-board hub that uses them lands next.
pub use task::{FLOOR_NEWS_INTERVAL, StoreMetrics, StoreMsg, StoreNews, retry_interval};

/// A board's durable state, loaded.
pub struct Loaded {
    /// The live items and redo stacks, `committed()` set to what the floor holds.
    pub board: Board,
    /// The floor as a PNG data URL, as of `board.committed()`; `None` when it is white.
    pub floor_url: Option<Utf8Bytes>,
    /// The board's view token.
    pub view: String,
    /// Whether the board is on disk (something was drawn on it). A board that
    /// does not exist gets a fresh `view` token, stored with its first op.
    pub exists: bool,
    /// The board's store, to run as its store task ([`BoardStore::run`]).
    pub store: BoardStore,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded").field("view", &self.view).field("exists", &self.exists).finish_non_exhaustive()
    }
}

/// Loads board `name` (a valid name) from `data_dir`, keeping `window` items live.
///
/// A board without a folder (or without `meta.json`) loads empty with a fresh
/// view token and `exists` false. Removes stray floor and temp files a crash
/// left. Fails on a read error or a damaged board file (`meta.json`, the
/// log's header, the floor file it names): starting empty would later
/// overwrite the board. A torn or corrupt op line is skipped with a warning
/// and the log is rewritten whole at its next save.
pub fn load(data_dir: &Path, name: &str, window: usize) -> Result<Loaded, StoreError> {
    debug_assert!(valid_name(name), "{name:?} is not a board name");
    let dir = board_dir(data_dir, name);
    let disk = read_board(&dir, window, true)?;
    let mut store = BoardStore::new(dir, name, disk);
    let floor_url = store.floor_url();
    if store.exists {
        info!(
            "board {name} loaded: {} live item(s), {} committed, {} floor",
            store.board.items().len(),
            store.board.committed(),
            if floor_url.is_some() { "a painted" } else { "a white" }
        );
    }
    Ok(Loaded { board: store.board.clone(), floor_url, view: store.view.clone(), exists: store.exists, store })
}

/// Every stored board: its name and view token. Folders whose name is not a
/// board name, or without a readable `meta.json`, are skipped with a warning.
pub fn scan(data_dir: &Path) -> Result<Vec<(String, String)>, StoreError> {
    let boards = data_dir.join(BOARDS_DIR);
    let entries = match std::fs::read_dir(&boards) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(at("listing", &boards)(e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(at("listing", &boards))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            warn!("{}: not a board name; ignored", path.display());
            continue;
        };
        if name.starts_with('.') {
            continue; // A migration's work folder.
        }
        if !valid_name(&name) || !path.is_dir() {
            warn!("{}: not a board folder (names are 1 to 64 of A-Z a-z 0-9 - _); ignored", path.display());
            continue;
        }
        match read_meta(&path) {
            Ok(Some(view)) => found.push((name, view)),
            Ok(None) => warn!("{}: no {META_FILE} (nothing was saved on it); ignored", path.display()),
            Err(e) => warn!("board {name} ignored: {e}"),
        }
    }
    found.sort();
    Ok(found)
}

/// The `board.png` of a board that is not loaded: its floor and its visible
/// live strokes, rendered from disk without changing anything there. `None`
/// when the board does not exist.
pub fn render_stored(data_dir: &Path, name: &str, window: usize) -> Result<Option<Vec<u8>>, StoreError> {
    let dir = board_dir(data_dir, name);
    let disk = match read_board(&dir, window, false) {
        // A board loaded meanwhile may have compacted between reading the log and its floor.
        Err(e) if e.is_not_found() => read_board(&dir, window, false)?,
        other => other?,
    };
    if !disk.exists {
        return Ok(None);
    }
    Ok(Some(render(&disk.floor, disk.board.items())))
}

/// `board.png`: the floor (unless a live clear hides it) with the visible strokes on top.
fn render(floor: &Picture, items: &VecDeque<Item>) -> Vec<u8> {
    let (floor_shows, strokes) = model::visible(items.iter());
    let mut picture = if floor_shows { floor.clone() } else { Picture::blank() };
    for stroke in strokes {
        picture.paint(&segments(&stroke.draws));
    }
    picture.encode_png()
}

/// A stroke's draws as segments to paint. Draws are normalized draw
/// messages; one that does not parse (it cannot, coming from the hub or the
/// log) is left out.
fn segments(draws: &[Utf8Bytes]) -> Vec<Segment> {
    let number = |n: &serde_json::Number| n.as_f64().unwrap_or(0.0) as f32;
    draws
        .iter()
        .filter_map(|draw| parse_journaled_draw(draw).ok())
        .map(|draw| Segment {
            x0: number(&draw.start_x),
            y0: number(&draw.start_y),
            x1: number(&draw.end_x),
            y1: number(&draw.end_y),
            width: number(&draw.line_width),
            // The page paints black what it cannot parse.
            rgb: parse_color(&draw.color).unwrap_or([0, 0, 0]),
        })
        .collect()
}

/// Paints an item that left the window into the floor.
fn commit(floor: &mut Picture, item: &Item) {
    match item {
        Item::Stroke(stroke) => floor.paint(&segments(&stroke.draws)),
        Item::Clear { .. } => floor.clear(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Meta {
    view: String,
}

/// The view token in `dir/meta.json`; `None` when there is no such file.
fn read_meta(dir: &Path) -> Result<Option<String>, StoreError> {
    let path = dir.join(META_FILE);
    let Some(bytes) = read_optional(&path)? else { return Ok(None) };
    match serde_json::from_slice::<Meta>(&bytes) {
        Ok(meta) if valid_token(&meta.view) => Ok(Some(meta.view)),
        Ok(_) => Err(StoreError::Corrupt { path, problem: "the view token is not a token".into() }),
        Err(e) => Err(StoreError::Corrupt { path, problem: e.to_string() }),
    }
}

/// `meta.json`'s contents.
fn meta_json(view: &str) -> String {
    format!("{{\"view\":{}}}\n", serde_json::to_string(view).unwrap_or_default())
}

/// A board as read from its folder.
struct OnDisk {
    view: String,
    exists: bool,
    board: Board,
    /// The floor with every commit of the replay painted.
    floor: Picture,
    /// The floor file's bytes, when the floor is that file (the replay committed nothing).
    png: Option<Vec<u8>>,
    /// The generation the log's header names.
    floor_gen: u64,
    /// The highest generation among the floor files seen.
    last_gen: u64,
    /// Whether the floor differs from the floor file (the replay committed items).
    floor_dirty: bool,
    /// Whether appending to the log is safe: it exists and ends with a whole line.
    log_ok: bool,
    /// The log's [`oplog::weight`].
    log_weight: u64,
}

/// Reads the board in `dir`; with `clean_up`, removes stray floor and temp files.
fn read_board(dir: &Path, window: usize, clean_up: bool) -> Result<OnDisk, StoreError> {
    let meta = read_meta(dir)?;
    let exists = meta.is_some();
    let view = meta.unwrap_or_else(new_view_token);
    let log_path = dir.join(LOG_FILE);
    let (header, ops, log_ok, log_weight) = match read_optional(&log_path)? {
        None => (Header { floor: 0, committed: 0 }, Vec::new(), false, 0),
        Some(bytes) => {
            let log = oplog::read_log(&bytes)
                .map_err(|e| StoreError::Corrupt { path: log_path.clone(), problem: e.to_string() })?;
            for (line, problem) in log.skipped.iter().take(5) {
                warn!("{} line {line}: torn or corrupt line skipped ({problem})", log_path.display());
            }
            if log.skipped.len() > 5 {
                warn!("{}: {} more lines skipped", log_path.display(), log.skipped.len() - 5);
            }
            let header = log.header.unwrap_or(Header { floor: 0, committed: 0 });
            (header, log.ops, log.clean, log.weight)
        }
    };
    let (mut floor, mut png) = if header.floor == 0 {
        (Picture::blank(), None)
    } else {
        let path = dir.join(floor_file(header.floor));
        let bytes = std::fs::read(&path).map_err(at("reading", &path))?;
        let floor = Picture::decode_png(&bytes)
            .map_err(|e| StoreError::Corrupt { path: path.clone(), problem: e.to_string() })?;
        (floor, Some(bytes))
    };
    let mut board = Board::new(window);
    board.set_committed(header.committed);
    let mut commits = Vec::new();
    for op in ops {
        board.apply(op, &mut commits);
    }
    let floor_dirty = !commits.is_empty();
    for item in &commits {
        commit(&mut floor, item);
    }
    if floor_dirty {
        png = None;
    }
    let last_gen = list_floors(dir, header.floor, clean_up)?.max(header.floor);
    Ok(OnDisk { view, exists, board, floor, png, floor_gen: header.floor, last_gen, floor_dirty, log_ok, log_weight })
}

/// The highest floor generation in `dir`; with `clean_up`, removes the floor
/// files other than `current` and the temp files.
fn list_floors(dir: &Path, current: u64, clean_up: bool) -> Result<u64, StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if files::is_absent(&e) => return Ok(0),
        Err(e) => return Err(at("listing", dir)(e)),
    };
    let mut highest = 0;
    for entry in entries {
        let entry = entry.map_err(at("listing", dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let generation = floor_generation(&name);
        if let Some(generation) = generation {
            highest = highest.max(generation);
        }
        let stray = generation.is_some_and(|g| g != current) || name.ends_with(TMP_SUFFIX);
        if clean_up && stray {
            match files::remove_file(&entry.path()) {
                Ok(()) => info!("{}: removed (left by an interrupted save)", entry.path().display()),
                Err(e) => warn!("{e}"),
            }
        }
    }
    Ok(highest)
}

/// The folder of board `name` in `data_dir`.
pub fn board_folder(data_dir: &Path, name: &str) -> PathBuf {
    board_dir(data_dir, name)
}

/// Board `name` as its files hold it, to move it elsewhere (Redis): its log
/// as written (header first; a board never compacted gets a header of its
/// own) and the floor PNG the header names (`None` for a white floor).
pub fn read_for_export(data_dir: &Path, name: &str) -> Result<(String, Option<Vec<u8>>), StoreError> {
    let dir = board_dir(data_dir, name);
    let log_path = dir.join(LOG_FILE);
    let mut log = String::from_utf8_lossy(&read_optional(&log_path)?.unwrap_or_default()).into_owned();
    let header = match log.lines().next().map(oplog::parse_line) {
        Some(Ok(oplog::Line::Header(header))) => header,
        _ => {
            let mut fresh = String::new();
            oplog::write_header(Header { floor: 0, committed: 0 }, &mut fresh);
            log.insert_str(0, &fresh);
            Header { floor: 0, committed: 0 }
        }
    };
    if header.floor == 0 {
        return Ok((log, None));
    }
    let floor_path = dir.join(floor_file(header.floor));
    match read_optional(&floor_path)? {
        Some(png) => Ok((log, Some(png))),
        None => {
            Err(StoreError::Corrupt { path: floor_path, problem: "the log names this floor, which is missing".into() })
        }
    }
}

/// Replaces board `name`'s folder by a board read from elsewhere (Redis):
/// `view` its token (`None`: the board does not exist, the folder is
/// removed), `log` its compacted log (`None`: nothing but the header of an
/// empty board) and `floor` the PNG the log's header names. The folder is a
/// cache then: whatever it held is dropped.
pub fn install(
    data_dir: &Path,
    name: &str,
    view: Option<&str>,
    log: Option<&str>,
    floor: Option<&[u8]>,
) -> Result<(), StoreError> {
    let dir = board_dir(data_dir, name);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if !files::is_absent(&e) => return Err(at("removing", &dir)(e)),
        _ => {}
    }
    let Some(view) = view else { return Ok(()) };
    files::create_dirs(&dir)?;
    let mut empty = String::new();
    let log = match log {
        Some(log) => log,
        None => {
            oplog::write_header(Header { floor: 0, committed: 0 }, &mut empty);
            &empty
        }
    };
    let header = log.lines().next().map(oplog::parse_line);
    let Some(Ok(oplog::Line::Header(header))) = header else {
        return Err(StoreError::Corrupt {
            path: dir.join(LOG_FILE),
            problem: "the snapshot's log has no header".into(),
        });
    };
    if header.floor != 0 {
        let Some(png) = floor else {
            return Err(StoreError::Corrupt {
                path: dir.join(floor_file(header.floor)),
                problem: "the snapshot names a floor it does not hold".into(),
            });
        };
        files::write_atomically(&dir.join(floor_file(header.floor)), png)?;
    }
    files::write_atomically(&dir.join(LOG_FILE), log.as_bytes())?;
    files::write_atomically(&dir.join(META_FILE), meta_json(view).as_bytes())
}

/// How much bigger than the board's compacted form the log may grow before
/// it is compacted: replaying it at load costs time in proportion, and the
/// log is the disk space a board takes beyond its floor.
pub const COMPACT_FACTOR: u64 = 4;
/// The log may also grow by this much (in [`oplog::weight`] units, about
/// 150 bytes each: ~1.5 MB) before it is compacted, so a board with few live
/// strokes is not compacted (a PNG encode and two file writes) every few seconds.
pub const COMPACT_SLACK: u64 = 10_000;

/// One board's files and the state they must hold: its own copy of the
/// model (every op the hub applied, applied again in the same order) and the
/// floor. Created by [`load`]; run by [`BoardStore::run`].
pub struct BoardStore {
    dir: PathBuf,
    name: String,
    view: String,
    board: Board,
    floor: Picture,
    /// Items committed but not painted into `floor` yet.
    unpainted: Vec<Item>,
    /// `floor` (with `unpainted`) encoded, while it has not changed since.
    png: Option<Vec<u8>>,
    /// The generation the log on disk names (0: white).
    floor_gen: u64,
    /// The highest generation used: a new floor file takes the next one.
    last_gen: u64,
    /// The floor differs from the floor file the log names.
    floor_dirty: bool,
    /// `meta.json` is on disk.
    exists: bool,
    /// The log on disk plus `pending` is the board: appending is enough.
    /// False before the board exists, after a torn tail or a failed write:
    /// the next save compacts.
    log_ok: bool,
    /// The log, open for appending.
    log: Option<File>,
    /// Lines of ops applied since the last save (only while `log_ok`).
    pending: String,
    /// The log's [`oplog::weight`], with `pending`.
    log_weight: u64,
    /// Ops were applied since the last successful save.
    unsaved: bool,
    /// The last `board.png`, while no op changed the board since: a page
    /// that downloads the board, or a viewer's refresh, costs one render.
    exported: Option<Vec<u8>>,
    /// For a shared board, the stream id of the last op applied.
    shared_upto: Option<String>,
    /// A shared board's compacted form, made by the last compaction, for Redis.
    snapshot: Option<Snapshot>,
}

impl BoardStore {
    fn new(dir: PathBuf, name: &str, disk: OnDisk) -> BoardStore {
        BoardStore {
            dir,
            name: name.to_string(),
            view: disk.view,
            board: disk.board,
            floor: disk.floor,
            unpainted: Vec::new(),
            png: disk.png,
            floor_gen: disk.floor_gen,
            last_gen: disk.last_gen,
            floor_dirty: disk.floor_dirty,
            exists: disk.exists,
            log_ok: disk.log_ok,
            log: None,
            pending: String::new(),
            log_weight: disk.log_weight,
            unsaved: false,
            exported: None,
            shared_upto: None,
            snapshot: None,
        }
    }

    /// Applies an op as the hub did; returns whether it committed items (the floor changed).
    fn apply(&mut self, op: Op) -> bool {
        let mark = self.pending.len();
        if self.log_ok {
            oplog::write_op(&op, &mut self.pending);
        }
        let weight = oplog::weight(&op);
        let no_effect_possible = matches!(op, Op::Undo { .. } | Op::Redo { .. });
        let mut commits = Vec::new();
        let outcome = self.board.apply(op, &mut commits);
        if no_effect_possible && outcome == model::Outcome::Nothing {
            // The hub sends only ops with an effect; an undo with nothing to undo needs no line.
            self.pending.truncate(mark);
            return false;
        }
        self.unsaved = true;
        self.exported = None;
        self.log_weight += weight;
        if commits.is_empty() {
            return false;
        }
        self.unpainted.extend(commits);
        self.floor_dirty = true;
        self.png = None;
        true
    }

    /// Paints the items committed since the last paint into the floor.
    fn paint(&mut self) {
        for item in self.unpainted.drain(..) {
            commit(&mut self.floor, &item);
        }
    }

    /// The floor's PNG, encoded once per change.
    fn floor_png(&mut self) -> &[u8] {
        self.paint();
        let floor = &self.floor;
        self.png.get_or_insert_with(|| floor.encode_png())
    }

    /// The floor as a data URL, `None` when white.
    fn floor_url(&mut self) -> Option<Utf8Bytes> {
        self.paint();
        if self.floor.is_blank() {
            return None;
        }
        Some(png_data_url(self.floor_png()).into())
    }

    /// `board.png` as it is now.
    fn export(&mut self) -> Vec<u8> {
        if let Some(png) = &self.exported {
            return png.clone();
        }
        self.paint();
        let png = render(&self.floor, self.board.items());
        self.exported = Some(png.clone());
        png
    }

    /// Whether something applied is not on disk yet.
    fn is_unsaved(&self) -> bool {
        self.unsaved
    }

    /// Brings the files up to the board: creates the board's folder and
    /// `meta.json` with its first op, appends the pending lines, or compacts
    /// when the log must be rewritten, has outgrown its bound, or (`flush`)
    /// the floor changed. Returns whether it compacted. After a failure
    /// nothing in memory is lost and the next save compacts.
    fn save(&mut self, flush: bool) -> Result<bool, StoreError> {
        if !self.exists && !self.unsaved {
            return Ok(false); // Nothing was ever drawn on it: it stays off disk.
        }
        let result = self.write(flush);
        match result {
            Ok(_) => self.unsaved = false,
            Err(_) => {
                self.log = None;
                self.log_ok = false;
                self.pending.clear();
            }
        }
        result
    }

    fn write(&mut self, flush: bool) -> Result<bool, StoreError> {
        if !self.exists {
            files::create_dirs(&self.dir)?;
            files::write_atomically(&self.dir.join(META_FILE), meta_json(&self.view).as_bytes())?;
            self.exists = true;
        }
        let bound = COMPACT_FACTOR * self.compacted_weight() + COMPACT_SLACK;
        if !self.log_ok || self.log_weight > bound || (flush && self.floor_dirty) {
            self.compact()?;
            return Ok(true);
        }
        self.append()?;
        Ok(false)
    }

    /// The [`oplog::weight`] of the board's compacted form.
    fn compacted_weight(&self) -> u64 {
        let live: u64 = self
            .board
            .items()
            .iter()
            .map(|item| match item {
                Item::Stroke(stroke) => oplog::stroke_weight(stroke),
                Item::Clear { .. } => 1,
            })
            .sum();
        live + self.board.undone().map(oplog::stroke_weight).sum::<u64>()
    }

    fn append(&mut self) -> Result<(), StoreError> {
        use std::io::Write;
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(LOG_FILE);
        let file = match &mut self.log {
            Some(file) => file,
            // Not `create`: a log that vanished must be rewritten whole.
            log => log.insert(File::options().append(true).open(&path).map_err(at("opening", &path))?),
        };
        file.write_all(self.pending.as_bytes()).and_then(|()| file.sync_data()).map_err(at("appending to", &path))?;
        self.pending.clear();
        Ok(())
    }

    /// Writes the floor (if it changed) and the log's compacted form; see the module doc.
    fn compact(&mut self) -> Result<(), StoreError> {
        self.log = None;
        self.log_ok = false;
        self.pending.clear();
        let mut generation = self.floor_gen;
        if self.floor_dirty {
            self.paint();
            if self.floor.is_blank() {
                generation = 0;
            } else {
                generation = self.last_gen + 1;
                let path = self.dir.join(floor_file(generation));
                files::write_atomically(&path, self.floor_png())?;
            }
        }
        let mut text = String::new();
        oplog::write_header(Header { floor: generation, committed: self.board.committed() }, &mut text);
        let mut weight = 0;
        for item in self.board.items() {
            match item {
                Item::Stroke(stroke) => {
                    oplog::write_restore(stroke, false, &mut text);
                    weight += oplog::stroke_weight(stroke);
                }
                Item::Clear { author } => {
                    oplog::write_live_clear(*author, &mut text);
                    weight += 1;
                }
            }
        }
        for stroke in self.board.undone() {
            oplog::write_restore(stroke, true, &mut text);
            weight += oplog::stroke_weight(stroke);
        }
        files::write_atomically(&self.dir.join(LOG_FILE), text.as_bytes())?;
        if let Some(upto) = self.shared_upto.clone() {
            let floor = (generation != 0).then(|| self.floor_png().to_vec());
            self.snapshot = Some(Snapshot { upto, log: text, floor });
        }
        let old = std::mem::replace(&mut self.floor_gen, generation);
        self.last_gen = self.last_gen.max(generation);
        self.floor_dirty = false;
        self.log_ok = true;
        self.log_weight = weight;
        if old != 0 && old != generation {
            // The board is whole without it; a file left here is removed at the next load.
            if let Err(e) = files::remove_file(&self.dir.join(floor_file(old))) {
                warn!("board {}: {e}", self.name);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
