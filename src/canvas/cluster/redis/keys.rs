//! The Redis keys, channels and scripts of a shared board, and stream ids.

use std::cmp::Ordering;

/// Every key and channel starts with this.
pub const PREFIX: &str = "smolcanvas:";
/// The cluster's secret, from which view tokens are derived (set once, by the first server).
pub const SECRET: &str = "smolcanvas:secret";
/// The set of board names that exist.
pub const BOARDS: &str = "smolcanvas:boards";
/// Channel of client counts: `SERVER BOARD COUNT`.
pub const PRESENCE: &str = "smolcanvas:presence";
/// Channel of boards that came into being: `NAME`.
pub const CREATED: &str = "smolcanvas:created";

/// The keys of one board.
#[derive(Clone, Debug)]
pub struct BoardKeys {
    /// The stream of operations.
    pub ops: String,
    /// The id of the newest entry (what the next entry names as `prev`).
    pub head: String,
    /// The snapshot hash: `upto`, `log`, `floor`.
    pub snap: String,
    /// Who may write the snapshot and trim the stream.
    pub lease: String,
    /// Start of the per-link keys holding the last operation number appended.
    pub seq: String,
}

impl BoardKeys {
    /// The keys of board `name`.
    pub fn of(name: &str) -> BoardKeys {
        let base = format!("{PREFIX}board:{name}:");
        BoardKeys {
            ops: format!("{base}ops"),
            head: format!("{base}head"),
            snap: format!("{base}snap"),
            lease: format!("{base}lease"),
            seq: format!("{base}seq:"),
        }
    }
}

/// Appends one operation unless this link already appended its number (a
/// retry after a lost answer): `KEYS` ops, head, the link's seq key; `ARGV`
/// seq, op, origin, seq key lifetime (s). Answers the new id, or `""` for a repeat.
/// Each entry names the entry before it (`prev`), so a reader sees any gap.
pub const APPEND: &str = r"
local last = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[1]) <= last then return '' end
local prev = redis.call('GET', KEYS[2]) or '0-0'
local id = redis.call('XADD', KEYS[1], '*', 'op', ARGV[2], 'origin', ARGV[3], 'prev', prev)
redis.call('SET', KEYS[2], id)
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[4])
return id
";

/// Stores a snapshot if this server holds (or takes) the board's lease and
/// the snapshot is newer than the stored one, then trims the stream up to it
/// (keeping entries of the last `margin` ms for readers that lag): `KEYS`
/// lease, snap, ops; `ARGV` server, lease ms, upto, log, floor, margin ms.
/// Answers 1 when stored, 0 when another server holds the lease, -1 when older.
pub const SNAPSHOT: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local function parse(id)
  local ms, n = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(n)
end
local um, un = parse(ARGV[3])
local cur = redis.call('HGET', KEYS[2], 'upto')
if cur then
  local cm, cn = parse(cur)
  if um < cm or (um == cm and un <= cn) then return -1 end
end
redis.call('HSET', KEYS[2], 'upto', ARGV[3], 'log', ARGV[4], 'floor', ARGV[5])
local t = redis.call('TIME')
local keep = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[6])
local minid
if keep < um then minid = string.format('%d-0', keep) else minid = string.format('%d-%d', um, un + 1) end
redis.call('XTRIM', KEYS[3], 'MINID', minid)
return 1
";

/// Makes a board that Redis does not know from a single server's files:
/// `KEYS` snap, ops, boards; `ARGV` log, floor, name. Answers 1 when
/// stored, 0 when Redis has the board already (then it is left alone).
pub const IMPORT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'upto', '0-0', 'log', ARGV[1], 'floor', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
";

/// A stream id `ms-n`, ordered as Redis orders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamId(pub u64, pub u64);

impl StreamId {
    /// Reads `ms-n`.
    pub fn parse(text: &str) -> Option<StreamId> {
        let (ms, n) = text.split_once('-')?;
        Some(StreamId(ms.parse().ok()?, n.parse().ok()?))
    }
}

/// Orders two ids as text (`None` if one is not an id).
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(StreamId::parse(a)?.cmp(&StreamId::parse(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_time_then_number() {
        assert_eq!(compare("10-2", "9-5"), Some(Ordering::Greater));
        assert_eq!(compare("10-2", "10-10"), Some(Ordering::Less));
        assert_eq!(compare("0-0", "0-0"), Some(Ordering::Equal));
        assert_eq!(compare("x", "0-0"), None);
        assert_eq!(BoardKeys::of("main").ops, "smolcanvas:board:main:ops");
    }
}
