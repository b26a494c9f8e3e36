//! The `canvasState` payload peers answer with: the data URL prefix, a 12-character
//! base64 tag (6 characters for this run, 6 for the answer's number), then fixed base64
//! filler. Every answer is valid base64 (a multiple of 4 characters) and can be told
//! apart from the others, so a newcomer knows whether it got a peer's fresh answer or a
//! snapshot the server stored earlier (possibly from another run).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

const DATA_URL_PREFIX: &str = "data:image/png;base64,";
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const DIGITS: usize = 6;
const TAG_LEN: usize = 2 * DIGITS;
/// Data URL size for runs that do not measure syncs.
pub const TINY_SNAPSHOT: usize = 96;

pub struct Snapshot {
    run: String,
    filler: String,
    /// One entry per answer given, by answer number: whether it went to a client (not "server").
    to_client: RefCell<Vec<bool>>,
}

#[derive(Clone, Copy)]
pub enum SyncKind {
    Peer,
    Empty,
    Stored,
}

impl Snapshot {
    pub fn new(data_url_bytes: usize) -> Snapshot {
        let len = data_url_bytes.saturating_sub(DATA_URL_PREFIX.len() + TAG_LEN) / 4 * 4;
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let filler = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(BASE64[(state >> 58) as usize])
            })
            .collect();
        Snapshot { run: encode(run_id()), filler, to_client: RefCell::new(Vec::new()) }
    }

    pub fn data_url_len(&self) -> usize {
        DATA_URL_PREFIX.len() + TAG_LEN + self.filler.len()
    }

    /// How many answers have been given so far.
    pub fn issued(&self) -> usize {
        self.to_client.borrow().len()
    }

    /// The `canvasState` message answering a `canvasRequest` for `client_id`.
    pub fn answer(&self, client_id: &str) -> String {
        let mut issued = self.to_client.borrow_mut();
        let (run, number) = (&self.run, encode(issued.len() as u64));
        issued.push(client_id != "server");
        let id = serde_json::to_string(client_id).expect("a string serializes");
        format!(r#"{{"type":"canvasState","clientId":{id},"data":"{DATA_URL_PREFIX}{run}{number}{}"}}"#, self.filler)
    }

    /// A peer sync is an answer given to a client after the `since`-th answer; anything
    /// else non-empty is a snapshot the server kept.
    pub fn classify(&self, data: &str, since: usize) -> SyncKind {
        if data.is_empty() {
            return SyncKind::Empty;
        }
        let tag = data.strip_prefix(DATA_URL_PREFIX).and_then(|rest| rest.get(..TAG_LEN));
        let number = tag.and_then(|tag| tag.strip_prefix(self.run.as_str())).and_then(decode);
        match number {
            Some(n) if n >= since && self.to_client.borrow().get(n) == Some(&true) => SyncKind::Peer,
            _ => SyncKind::Stored,
        }
    }
}

/// Tells this run's answers from those of earlier runs that a server may have stored.
fn run_id() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |t| t.subsec_nanos());
    u64::from(nanos) ^ u64::from(std::process::id()).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// The low 36 bits of `n` as 6 base64 digits.
fn encode(mut n: u64) -> String {
    let mut digits = [b'A'; DIGITS];
    for digit in digits.iter_mut().rev() {
        *digit = BASE64[(n % 64) as usize];
        n /= 64;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

fn decode(text: &str) -> Option<usize> {
    text.bytes().try_fold(0usize, |n, byte| Some(n * 64 + BASE64.iter().position(|&b| b == byte)?))
}
