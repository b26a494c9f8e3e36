//! The board: the latest snapshot plus the draws journaled since, in memory and in the data dir.
//!
//! On disk the data dir holds two files:
//! - `snapshot.txt`: the PNG data URL of the latest snapshot (absent when none),
//!   replaced atomically (temp file, fsync, rename, fsync of the dir);
//! - `journal.jsonl`: the draws since that snapshot, one normalized `draw`
//!   message a line, appended in batches every flush interval and fsynced.
//!
//! The hub owns the [`Board`] and never touches the disk: it hands
//! [`StoreOp`]s to the [`Store`] task, which runs the file work on smol's
//! blocking pool in order. Recovery at start skips torn or corrupt journal
//! lines (a crash mid-append) with a warning and rewrites the journal clean.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use async_tungstenite::tungstenite::Utf8Bytes;
use log::{info, warn};

use super::protocol::{PNG_DATA_URL_PREFIX, parse_journaled_draw};

const SNAPSHOT_FILE: &str = "snapshot.txt";
const JOURNAL_FILE: &str = "journal.jsonl";

/// The board as the hub keeps it.
#[derive(Debug, Default)]
pub struct Board {
    /// The latest snapshot's data URL.
    pub snapshot: Option<Utf8Bytes>,
    /// Draws since the snapshot, oldest first (the exact bytes relayed).
    pub journal: VecDeque<Utf8Bytes>,
    /// Sequence number of `journal[0]`; every journaled draw has one.
    pub base_seq: u64,
}

impl Board {
    /// Sequence number the next journaled draw will get.
    pub fn next_seq(&self) -> u64 {
        self.base_seq + self.journal.len() as u64
    }

    /// Sets a new snapshot that contains every draw before `mark`; drops those draws.
    /// Returns the draws kept (those from `mark` on).
    pub fn set_snapshot(&mut self, data: Utf8Bytes, mark: u64) -> Vec<Utf8Bytes> {
        let drop = mark.saturating_sub(self.base_seq).min(self.journal.len() as u64) as usize;
        self.journal.drain(..drop);
        self.base_seq += drop as u64;
        self.snapshot = Some(data);
        self.journal.iter().cloned().collect()
    }

    /// Drops the `n` oldest draws (the journal's hard bound was reached).
    pub fn drop_oldest(&mut self, n: usize) {
        let n = n.min(self.journal.len());
        self.journal.drain(..n);
        self.base_seq += n as u64;
    }

    /// Wipes the board.
    pub fn clear(&mut self) {
        self.base_seq = self.next_seq();
        self.snapshot = None;
        self.journal.clear();
    }
}

/// A change to make on disk, in order.
#[derive(Debug)]
pub enum StoreOp {
    /// Append these draws to the journal and fsync.
    Append(Vec<Utf8Bytes>),
    /// Replace the snapshot, then rewrite the journal with just these draws.
    Snapshot(Utf8Bytes, Vec<Utf8Bytes>),
    /// Rewrite the journal with just these draws (after dropping old ones).
    Rewrite(Vec<Utf8Bytes>),
    /// Remove the snapshot and empty the journal.
    Clear,
    /// Write everything still pending; answer on the channel whether the board is saved.
    Sync(async_channel::Sender<bool>),
}

/// What went wrong with the data dir; named in logs.
#[derive(Debug)]
pub struct StoreError {
    /// What the store was doing.
    pub action: &'static str,
    /// The file involved.
    pub path: PathBuf,
    /// The error.
    pub source: io::Error,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.action, self.path.display(), self.source)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// What the files lack between [`Store::absorb`] and [`Store::persist`].
#[derive(Debug, Default)]
struct Pending {
    /// Mirror draws from this index on are not in the journal file yet.
    append_from: Option<usize>,
    /// The journal file must be replaced (it supersedes `append_from`).
    rewrite_journal: bool,
    /// The snapshot file must be written or removed.
    snapshot: bool,
    /// Who waits for these changes to be on disk.
    syncs: Vec<async_channel::Sender<bool>>,
}

/// The files of one data dir, and a mirror of what they should hold.
///
/// The mirror (the last snapshot and the draws since, sharing their bytes
/// with the hub) lets a failed write be retried without losing anything:
/// after any failure the store is dirty, and the next write, or
/// [`Store::retry`], rewrites both files whole.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    journal: Option<File>,
    snapshot: Option<Utf8Bytes>,
    draws: Vec<Utf8Bytes>,
    dirty: bool,
    pending: Pending,
}

impl Store {
    /// Recovers the board from `dir`, creating `dir` if needed.
    ///
    /// A data dir that cannot be created holds nothing to lose: the store
    /// starts empty and dirty, and keeps trying. A board that exists but
    /// cannot be read is an error, since starting empty would later
    /// overwrite it.
    pub fn open(dir: &Path) -> Result<(Store, Board), StoreError> {
        let err = |action, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError { action, path, source }
        };
        let mut store = Store {
            dir: dir.to_path_buf(),
            journal: None,
            snapshot: None,
            draws: Vec::new(),
            dirty: true,
            pending: Pending::default(),
        };
        if fs::create_dir_all(dir).is_err() {
            // The store task reports it and keeps trying.
            return Ok((store, Board::default()));
        }
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let snapshot = match fs::read_to_string(&snapshot_path) {
            Ok(data) if data.starts_with(PNG_DATA_URL_PREFIX) => Some(Utf8Bytes::from(data)),
            Ok(_) => {
                warn!("{}: not a PNG data URL; ignoring it", snapshot_path.display());
                None
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(err("reading", &snapshot_path)(e)),
        };
        let journal_path = dir.join(JOURNAL_FILE);
        let (journal, clean) = match fs::read(&journal_path) {
            Ok(bytes) => recover_journal(&bytes, &journal_path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (VecDeque::new(), false),
            Err(e) => return Err(err("reading", &journal_path)(e)),
        };
        store.snapshot = snapshot.clone();
        store.draws = journal.iter().cloned().collect();
        store.dirty = false;
        // A journal that needs rewriting but cannot be written leaves the store
        // dirty: the store task reports it and keeps trying.
        if !clean && store.rewrite_journal().is_err() {
            store.dirty = true;
        }
        info!(
            "board loaded from {}: {} snapshot, {} journaled draw(s)",
            dir.display(),
            if snapshot.is_some() { "a" } else { "no" },
            journal.len()
        );
        Ok((store, Board { snapshot, journal, base_seq: 0 }))
    }

    /// Whether the files lag behind the board (a write failed).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Carries out one operation: [`Store::absorb`], then [`Store::persist`].
    #[cfg(test)]
    pub fn apply(&mut self, op: StoreOp) -> Result<(), StoreError> {
        self.absorb(op);
        self.persist()
    }

    /// Takes one operation into the mirror; the files follow at the next [`Store::persist`].
    pub fn absorb(&mut self, op: StoreOp) {
        let pending = &mut self.pending;
        match op {
            StoreOp::Sync(done) => pending.syncs.push(done),
            StoreOp::Append(draws) => {
                if !pending.rewrite_journal && pending.append_from.is_none() {
                    pending.append_from = Some(self.draws.len());
                }
                self.draws.extend(draws);
            }
            StoreOp::Snapshot(data, keep) => {
                self.snapshot = Some(data);
                self.draws = keep;
                pending.snapshot = true;
                pending.rewrite_journal = true;
            }
            StoreOp::Rewrite(keep) => {
                self.draws = keep;
                pending.rewrite_journal = true;
            }
            StoreOp::Clear => {
                self.snapshot = None;
                self.draws.clear();
                pending.snapshot = true;
                pending.rewrite_journal = true;
            }
        }
    }

    /// Brings the files up to the mirror with one append or one rewrite,
    /// however many operations were absorbed, then answers the syncs among
    /// them. So a burst of operations (a client clearing over and over)
    /// costs one write, and the queue in front of the store cannot outgrow
    /// the disk.
    pub fn persist(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        let result = if self.dirty { self.retry() } else { self.write(&pending) };
        if result.is_err() {
            self.dirty = true;
        }
        for done in pending.syncs {
            let _ = done.try_send(result.is_ok());
        }
        result
    }

    fn write(&mut self, pending: &Pending) -> Result<(), StoreError> {
        let at = |action, path: PathBuf| move |source| StoreError { action, path, source };
        let journal_path = self.dir.join(JOURNAL_FILE);
        if pending.snapshot {
            self.write_snapshot().map_err(at("writing", self.dir.join(SNAPSHOT_FILE)))?;
        }
        if pending.rewrite_journal {
            self.rewrite_journal().map_err(at("rewriting", journal_path))
        } else if let Some(from) = pending.append_from {
            append(&mut self.journal, &journal_path, &self.draws[from..]).map_err(at("appending to", journal_path))
        } else {
            Ok(())
        }
    }

    /// If a write failed before, writes everything again (creating the dir if needed).
    pub fn retry(&mut self) -> Result<(), StoreError> {
        if !self.dirty {
            return Ok(());
        }
        let at = |action, path: PathBuf| move |source| StoreError { action, path, source };
        fs::create_dir_all(&self.dir).map_err(at("creating data dir", self.dir.clone()))?;
        self.write_snapshot().map_err(at("writing", self.dir.join(SNAPSHOT_FILE)))?;
        self.rewrite_journal().map_err(at("rewriting", self.dir.join(JOURNAL_FILE)))?;
        self.dirty = false;
        Ok(())
    }

    fn write_snapshot(&mut self) -> io::Result<()> {
        let path = self.dir.join(SNAPSHOT_FILE);
        self.journal = None;
        match &self.snapshot {
            Some(data) => write_atomically(&path, |file| file.write_all(data.as_bytes())),
            None => match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Replaces the journal file with the mirror's draws and opens it for appending.
    fn rewrite_journal(&mut self) -> io::Result<()> {
        self.journal = None;
        let path = self.dir.join(JOURNAL_FILE);
        write_atomically(&path, |file| {
            let mut out = io::BufWriter::new(file);
            for draw in &self.draws {
                out.write_all(draw.as_bytes())?;
                out.write_all(b"\n")?;
            }
            out.flush()
        })?;
        self.journal = Some(OpenOptions::new().append(true).open(path)?);
        Ok(())
    }
}

/// Appends `draws` to the journal at `path` through `journal` (opened on
/// first use, dropped after a failure so the next append reopens it) and fsyncs.
fn append(journal: &mut Option<File>, path: &Path, draws: &[Utf8Bytes]) -> io::Result<()> {
    if journal.is_none() {
        *journal = Some(OpenOptions::new().create(true).append(true).open(path)?);
    }
    let Some(file) = journal.as_mut() else { unreachable!("opened above") };
    let mut buf = Vec::with_capacity(draws.iter().map(|d| d.len() + 1).sum());
    for draw in draws {
        buf.extend_from_slice(draw.as_bytes());
        buf.push(b'\n');
    }
    let result = file.write_all(&buf).and_then(|()| file.sync_data());
    if result.is_err() {
        *journal = None;
    }
    result
}

/// Parses journal bytes; returns the draws and whether the file was clean.
///
/// Each non-empty line must be one draw that [`parse_journaled_draw`] accepts;
/// it comes back re-encoded in normalized form. A line that does not parse
/// (torn by a crash mid-append, or corrupt) is skipped with a warning naming
/// `path`. The file is clean when nothing was skipped and it is empty or ends
/// with a newline; opening the store rewrites a journal that is not clean.
pub fn recover_journal(bytes: &[u8], path: &Path) -> (VecDeque<Utf8Bytes>, bool) {
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

/// Writes `path` through a temp file: write, fsync, rename, fsync the dir.
fn write_atomically(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    write(&mut file)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("smolcanvas-board-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    const DRAW: &str = r##"{"type":"draw","color":"#000","startX":1,"startY":2,"endX":3,"endY":4,"lineWidth":3}"##;

    #[test]
    fn torn_last_line_is_skipped_and_journal_rewritten() {
        let dir = temp_dir("torn");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(JOURNAL_FILE), format!("{DRAW}\n{DRAW}\n{{\"type\":\"dr")).unwrap();
        let (mut store, board) = Store::open(&dir).unwrap();
        assert_eq!(board.journal.len(), 2);
        store.apply(StoreOp::Append(vec![Utf8Bytes::from_static(DRAW)])).unwrap();
        let (_, board) = Store::open(&dir).unwrap();
        assert_eq!(board.journal.len(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_append_is_kept_and_written_by_the_retry() {
        let dir = temp_dir("retry");
        let (mut store, _) = Store::open(&dir).unwrap();
        store.apply(StoreOp::Append(vec![Utf8Bytes::from_static(DRAW)])).unwrap();
        // A directory where the temp file must go makes every rewrite fail, even for root.
        fs::create_dir_all(dir.join("journal.tmp")).unwrap();
        store.journal = None;
        fs::remove_file(dir.join(JOURNAL_FILE)).unwrap();
        fs::create_dir_all(dir.join(JOURNAL_FILE)).unwrap();
        assert!(store.apply(StoreOp::Append(vec![Utf8Bytes::from_static(DRAW)])).is_err());
        assert!(store.is_dirty());
        assert!(store.apply(StoreOp::Append(vec![Utf8Bytes::from_static(DRAW)])).is_err());
        fs::remove_dir(dir.join("journal.tmp")).unwrap();
        fs::remove_dir(dir.join(JOURNAL_FILE)).unwrap();
        store.retry().unwrap();
        assert!(!store.is_dirty());
        let (_, board) = Store::open(&dir).unwrap();
        assert_eq!(board.journal.len(), 3, "nothing was lost while the disk failed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_burst_of_operations_is_written_once_and_right() {
        let dir = temp_dir("burst");
        let (mut store, _) = Store::open(&dir).unwrap();
        let draw = || Utf8Bytes::from_static(DRAW);
        store.absorb(StoreOp::Append(vec![draw()]));
        for _ in 0..1000 {
            store.absorb(StoreOp::Clear);
            store.absorb(StoreOp::Append(vec![draw(), draw()]));
        }
        store.absorb(StoreOp::Snapshot(Utf8Bytes::from_static("data:image/png;base64,AAAA"), vec![draw()]));
        store.absorb(StoreOp::Append(vec![draw()]));
        let (done, saved) = async_channel::bounded(1);
        store.absorb(StoreOp::Sync(done));
        store.persist().unwrap();
        assert_eq!(saved.try_recv(), Ok(true));
        let (_, board) = Store::open(&dir).unwrap();
        assert_eq!(board.snapshot.as_deref(), Some("data:image/png;base64,AAAA"));
        assert_eq!(board.journal.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn snapshot_truncates_and_clear_empties() {
        let dir = temp_dir("snapshot");
        let (mut store, mut board) = Store::open(&dir).unwrap();
        for _ in 0..3 {
            board.journal.push_back(Utf8Bytes::from_static(DRAW));
        }
        store.apply(StoreOp::Append(board.journal.iter().cloned().collect())).unwrap();
        let keep = board.set_snapshot(Utf8Bytes::from_static("data:image/png;base64,AAAA"), 2);
        assert_eq!((keep.len(), board.base_seq, board.next_seq()), (1, 2, 3));
        store.apply(StoreOp::Snapshot(board.snapshot.clone().unwrap(), keep)).unwrap();
        let (mut store, loaded) = Store::open(&dir).unwrap();
        assert_eq!(loaded.snapshot.as_deref(), Some("data:image/png;base64,AAAA"));
        assert_eq!(loaded.journal.len(), 1);
        store.apply(StoreOp::Clear).unwrap();
        let (_, loaded) = Store::open(&dir).unwrap();
        assert!(loaded.snapshot.is_none() && loaded.journal.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
