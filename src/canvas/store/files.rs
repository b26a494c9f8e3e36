//! File primitives of the store: atomic replacement, directory fsync, the
//! names of a board's files, and errors that name what was being done.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Folder of all boards, in the data dir.
pub const BOARDS_DIR: &str = "boards";
/// A board's view token.
pub const META_FILE: &str = "meta.json";
/// A board's log.
pub const LOG_FILE: &str = "log.jsonl";
/// Where a v1 data dir's files go once migrated.
pub const V1_MIGRATED_DIR: &str = "v1-migrated";
/// The suffix of temp files (cleaned at load).
pub const TMP_SUFFIX: &str = ".tmp";

/// Why the store failed: a file operation, or a file that is not what it should be.
#[derive(Debug)]
pub enum StoreError {
    /// A file operation failed.
    Io {
        /// What the store was doing ("appending to", "creating", ...); errors are reported once per action.
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A file the store wrote reads back wrong (damaged outside the server).
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
}

impl StoreError {
    /// What the store was doing, for reporting each kind of failure once.
    pub fn action(&self) -> &'static str {
        match self {
            StoreError::Io { action, .. } => action,
            StoreError::Corrupt { .. } => "reading",
        }
    }

    /// What failed, without the data dir's path (for people on the board):
    /// the action, the file's name and the OS error.
    pub fn summary(&self) -> String {
        let (action, path, problem) = match self {
            StoreError::Io { action, path, source } => (*action, path, source.to_string()),
            StoreError::Corrupt { path, problem } => ("reading", path, problem.clone()),
        };
        let file = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
        format!("{action} {file}: {problem}")
    }

    /// Whether the error is a missing file.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io { action, path, source } => write!(f, "{action} {}: {source}", path.display()),
            StoreError::Corrupt { path, problem } => write!(f, "{} is damaged: {problem}", path.display()),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Corrupt { .. } => None,
        }
    }
}

/// `map_err(at("writing", &path))`: wraps an I/O error with what was done to which file.
pub fn at(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { action, path, source }
}

/// A board's folder.
pub fn board_dir(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(BOARDS_DIR).join(name)
}

/// The floor file of generation `generation` (> 0).
pub fn floor_file(generation: u64) -> String {
    format!("floor-{generation}.png")
}

/// The generation a floor file's name carries.
pub fn floor_generation(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_prefix("floor-")?.strip_suffix(".png")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether `name` is a board name: 1 to 64 of `A-Z a-z 0-9 - _`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Writes `path` through a temp file beside it: write, fsync, rename, fsync the folder.
/// A crash leaves either the old file or the new one, whole (and maybe the temp file).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(TMP_SUFFIX);
    let tmp = PathBuf::from(tmp);
    let mut file = File::create(&tmp).map_err(at("creating", &tmp))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(at("writing", &tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(at("renaming into", path))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Fsyncs a folder, so the names created, renamed or removed in it last.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(at("syncing folder", dir))
}

/// Creates `dir` and the folders above it that are missing, fsyncing each parent
/// so the new names last.
pub fn create_dirs(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(at("creating folder", dir)(e)),
        _ => {}
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Removes a file; a missing one is fine.
pub fn remove_file(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at("removing", path)(e)),
        _ => Ok(()),
    }
}

/// Whether an error means the file is not there (a folder on its path is
/// missing, or is a file: then the first save reports it).
pub fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// Reads a whole file; `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(at("reading", path)(e)),
    }
}

/// A fresh view token: 128 random bits as 22 characters of base64url.
///
/// The bits come from `/dev/urandom`; should it be unreadable (a sandbox
/// without /dev), from std's randomly keyed SipHash, whose keys the OS supplies.
pub fn new_view_token() -> String {
    let mut bytes = [0u8; 16];
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        use std::hash::{BuildHasher, Hasher};
        for (i, half) in bytes.chunks_mut(8).enumerate() {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(i);
            hasher.write_u128(std::time::SystemTime::UNIX_EPOCH.elapsed().map(|d| d.as_nanos()).unwrap_or(0));
            half.copy_from_slice(&hasher.finish().to_le_bytes());
        }
    }
    base64url(&bytes)
}

/// The view token of board `name` in a cluster with `secret`: the same on
/// every server, and as unguessable as the secret (SHA-1 of both, 128 bits).
pub fn derived_view_token(secret: &str, name: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(b"smolcanvas view token\0");
    sha.update(secret.as_bytes());
    sha.update(b"\0");
    sha.update(name.as_bytes());
    base64url(&sha.digest().bytes()[..16])
}

/// Whether `token` looks like a view token this store makes (or could have made).
pub fn valid_token(token: &str) -> bool {
    (16..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_22_url_safe_characters_and_differ() {
        let a = new_view_token();
        let b = new_view_token();
        assert_eq!(a.len(), 22);
        assert!(valid_token(&a) && a != b);
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        assert_eq!(base64url(b"Man"), "TWFu");
    }

    #[test]
    fn floor_names_round_trip() {
        assert_eq!(floor_generation(&floor_file(17)), Some(17));
        assert_eq!(floor_generation("floor-.png"), None);
        assert_eq!(floor_generation("floor-1.png.tmp"), None);
        assert!(valid_name("main") && valid_name("a-B_9") && !valid_name("") && !valid_name(".x"));
        assert!(!valid_name(&"a".repeat(65)));
    }
}
