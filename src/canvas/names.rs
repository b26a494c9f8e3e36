//! Board names, view tokens, client ids and the board paths of PROTOCOL.md's v2 part.
//!
//! A path is matched against the shapes below and its name or token checked
//! before anything else looks at it: nothing unvalidated reaches a file path
//! or the registry.

use std::fs::File;
use std::io::Read;

/// Longest board name.
pub const MAX_NAME_CHARS: usize = 64;
/// Characters in a name made by `/new`.
pub const NEW_NAME_CHARS: usize = 10;
/// The board at `/` and `/ws`.
pub const MAIN: &str = "main";

/// Which board a path names, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BoardPath<'a> {
    /// `/b/NAME...` or `/...` (board `main`): an editor's path.
    Name(&'a str),
    /// `/v/TOKEN...`: a viewer's path.
    View(&'a str),
}

/// What a path asks of its board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The page.
    Page,
    /// The WebSocket.
    Socket,
    /// `board.png`.
    Png,
}

/// The board and resource a path names; `None` for any other path or an invalid name.
pub fn parse_path(path: &str) -> Option<(BoardPath<'_>, Resource)> {
    let resource = |rest: &str| match rest {
        "" => Some(Resource::Page),
        "/ws" => Some(Resource::Socket),
        "/board.png" => Some(Resource::Png),
        _ => None,
    };
    match path {
        "/" | "/index.html" => return Some((BoardPath::Name(MAIN), Resource::Page)),
        "/ws" => return Some((BoardPath::Name(MAIN), Resource::Socket)),
        "/board.png" => return Some((BoardPath::Name(MAIN), Resource::Png)),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/b/") {
        let (name, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        return valid_name(name).then_some(()).and_then(|_| resource(tail)).map(|r| (BoardPath::Name(name), r));
    }
    if let Some(rest) = path.strip_prefix("/v/") {
        let (token, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        return valid_token(token).then_some(()).and_then(|_| resource(tail)).map(|r| (BoardPath::View(token), r));
    }
    None
}

/// 1 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_CHARS).contains(&name.len()) && name.bytes().all(is_name_byte)
}

/// A view token as the store makes them (any other string is unknown anyway).
pub fn valid_token(token: &str) -> bool {
    (16..=64).contains(&token.len()) && token.bytes().all(is_name_byte)
}

/// An author secret from `hello`: 16 to 64 characters of `A-Z a-z 0-9 - _`.
pub fn valid_author(author: &str) -> bool {
    (16..=64).contains(&author.len()) && author.bytes().all(is_name_byte)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `n` random characters of `A-Z a-z 0-9 - _` (6 random bits each).
pub fn random_text(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    fill_random(&mut bytes);
    bytes.iter().map(|b| URL_SAFE[usize::from(b & 63)] as char).collect()
}

/// A fresh name for `/new`: 60 random bits, so two boards never meet by chance.
pub fn new_name() -> String {
    random_text(NEW_NAME_CHARS)
}

/// Fills `out` from the kernel's random source. Without one (no /dev/urandom
/// in a bare chroot) it falls back to the clock and a counter, which is
/// unique but guessable, and says so once.
pub fn fill_random(out: &mut [u8]) {
    if File::open("/dev/urandom").and_then(|mut f| f.read_exact(out)).is_ok() {
        return;
    }
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| log::warn!("/dev/urandom cannot be read: view links and names are guessable"));
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut state = (nanos as u64) ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, std::sync::atomic::Ordering::Relaxed);
    for byte in out {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        *byte = (z ^ (z >> 31)) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/"), Some((BoardPath::Name("main"), Resource::Page)));
        assert_eq!(parse_path("/ws"), Some((BoardPath::Name("main"), Resource::Socket)));
        assert_eq!(parse_path("/board.png"), Some((BoardPath::Name("main"), Resource::Png)));
        assert_eq!(parse_path("/b/team-1_x"), Some((BoardPath::Name("team-1_x"), Resource::Page)));
        assert_eq!(parse_path("/b/team/ws"), Some((BoardPath::Name("team"), Resource::Socket)));
        assert_eq!(parse_path("/b/team/board.png"), Some((BoardPath::Name("team"), Resource::Png)));
        let token = "abcdefghijklmnopqrstuv";
        assert_eq!(parse_path(&format!("/v/{token}/ws")), Some((BoardPath::View(token), Resource::Socket)));
        for bad in ["/b/", "/b/a.b", "/b/../x", "/b/%2e%2e", "/b/x/other", "/b/x/", "/v/short", "/b/é", "/x"] {
            assert_eq!(parse_path(bad), None, "{bad}");
        }
        assert_eq!(parse_path(&format!("/b/{}", "a".repeat(64))).map(|p| p.1), Some(Resource::Page));
        assert_eq!(parse_path(&format!("/b/{}", "a".repeat(65))), None);
    }

    #[test]
    fn random_names_are_valid_and_differ() {
        let (a, b) = (new_name(), new_name());
        assert!(valid_name(&a) && a.len() == NEW_NAME_CHARS);
        assert_ne!(a, b);
    }
}
