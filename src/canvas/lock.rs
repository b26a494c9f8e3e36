//! The data dir at start: created if missing, proven writable, and locked to one process.
//!
//! `smolcanvas.lock` in the data dir holds the PID of the server using it
//! and is locked with `flock`. A second server on the same dir finds it
//! locked and stops, naming that PID; two servers writing one journal would
//! corrupt it. The kernel releases the lock when the process ends, however it
//! ends (`kill -9` included), so a stale file never blocks a start.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// Name of the lock file in the data dir.
pub const LOCK_FILE: &str = "smolcanvas.lock";

/// Why the data dir cannot be used; the binary then exits with 1.
#[derive(Debug)]
pub enum DataDirError {
    /// The dir (or one of its parents) cannot be created.
    Create {
        /// The data dir.
        dir: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Something other than a directory is in its place.
    NotADirectory {
        /// The data dir.
        dir: PathBuf,
    },
    /// The lock file cannot be created, locked or written.
    Write {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process holds the lock.
    InUse {
        /// The data dir.
        dir: PathBuf,
        /// The holder's PID as its lock file says, if it could be read.
        pid: Option<u32>,
    },
}

impl fmt::Display for DataDirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataDirError::Create { dir, source } => write!(f, "cannot create data dir {}: {source}", dir.display()),
            DataDirError::NotADirectory { dir } => {
                write!(f, "cannot use data dir {}: it exists and is not a directory", dir.display())
            }
            DataDirError::Write { path, source } => {
                write!(f, "cannot write in the data dir: {}: {source}", path.display())
            }
            DataDirError::InUse { dir, pid: Some(pid) } => {
                write!(f, "data dir {} is in use by process {pid} (another smolcanvas?)", dir.display())
            }
            DataDirError::InUse { dir, pid: None } => {
                write!(f, "data dir {} is in use by another process (another smolcanvas?)", dir.display())
            }
        }
    }
}

impl std::error::Error for DataDirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataDirError::Create { source, .. } | DataDirError::Write { source, .. } => Some(source),
            DataDirError::NotADirectory { .. } | DataDirError::InUse { .. } => None,
        }
    }
}

/// The data dir's lock, held until dropped (or until the process ends).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed, then locks it for this process and writes
    /// this process's PID in its lock file, which proves the dir writable.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, DataDirError> {
        if let Err(source) = fs::create_dir_all(dir) {
            return Err(if dir.exists() && !dir.is_dir() {
                DataDirError::NotADirectory { dir: dir.to_path_buf() }
            } else {
                DataDirError::Create { dir: dir.to_path_buf(), source }
            });
        }
        let path = dir.join(LOCK_FILE);
        let write_error = |source| DataDirError::Write { path: path.clone(), source };
        // Not truncated on open: until it holds the lock, this process must
        // not erase the PID of the one that does.
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(write_error)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(errno) if errno == rustix::io::Errno::WOULDBLOCK => {
                return Err(DataDirError::InUse { dir: dir.to_path_buf(), pid: holder(&mut file) });
            }
            Err(errno) => return Err(write_error(errno.into())),
        }
        file.set_len(0).map_err(write_error)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(write_error)?;
        Ok(DataDirLock { _file: file })
    }
}

/// The PID in a lock file held by another process.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("smolcanvas-lock-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_lock_names_the_first_holder_until_it_is_dropped() {
        let dir = temp_dir("twice");
        let first = DataDirLock::acquire(&dir.join("board")).expect("the first lock");
        let text = fs::read_to_string(dir.join("board").join(LOCK_FILE)).expect("read the lock file");
        assert_eq!(text, format!("{}\n", std::process::id()));
        match DataDirLock::acquire(&dir.join("board")) {
            Err(DataDirError::InUse { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected the dir in use, got {other:?}"),
        }
        drop(first);
        DataDirLock::acquire(&dir.join("board")).expect("the lock once the first is dropped");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_in_place_of_the_dir_or_of_a_parent_is_named() {
        let dir = temp_dir("file");
        fs::create_dir_all(&dir).expect("create the temp dir");
        let file = dir.join("file");
        fs::write(&file, "not a dir").expect("write a file");
        let err = DataDirLock::acquire(&file).expect_err("a file is not a data dir");
        assert!(matches!(err, DataDirError::NotADirectory { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("cannot use data dir {}: it exists and is not a directory", file.display())
        );
        let err = DataDirLock::acquire(&file.join("board")).expect_err("a file is not a parent");
        assert!(matches!(err, DataDirError::Create { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("cannot create data dir {}/board: ", file.display())), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
