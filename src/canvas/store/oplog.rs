//! `log.jsonl`: its line forms, how they are written and how a log is read back.
//!
//! The first line is the header `{"floor":G,"committed":C}`: the floor is
//! `floor-G.png` (white for G = 0) and holds the first C items the board ever
//! committed. Every further line is one [`Op`], in the order it was applied:
//!
//! ```text
//! {"op":"draw","by":"00000000000000ff","key":"7.12","draw":{"type":"draw","color":"#000000",...}}
//! {"op":"clear","by":"00000000000000ff"}
//! {"op":"undo","by":"00000000000000ff"}
//! {"op":"redo","by":"00000000000000ff"}
//! {"op":"restore","by":"00000000000000ff","key":"7.12","draws":[{...},{...}]}
//! {"op":"restore_undone","by":"00000000000000ff","key":"7.9","draws":[{...}]}
//! ```
//!
//! `by` is the author hash as 16 lowercase hex digits, `draw` and the
//! elements of `draws` are normalized v1 `draw` messages. `restore` and
//! `restore_undone` are the compacted forms (a whole live stroke, a whole
//! stroke on its author's redo stack); a live clear is compacted to its
//! `clear` line. A line that does not parse (torn by a crash mid-append, or
//! corrupt) is skipped; the header must parse, since the log is only ever
//! created whole by an atomic rename.

use std::fmt;
use std::fmt::Write as _;

use async_tungstenite::tungstenite::Utf8Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::canvas::model::{Author, Op, Stroke, StrokeKey};
use crate::canvas::protocol::parse_journaled_draw;

/// Longest stroke key a log line may carry: a `clientId` (at most 64 bytes),
/// a dot and a stroke number, with room to spare.
pub const MAX_KEY_BYTES: usize = 160;

/// The first line of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The floor file's generation; 0 for a white floor (no file).
    pub floor: u64,
    /// Items committed into that floor since the board began.
    pub committed: u64,
}

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// The log's first line.
    Header(Header),
    /// Any further line.
    Op(Op),
}

/// Why a line was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError(pub String);

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LineError {}

/// Every field any line form has; which are present decides the form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields<'a> {
    op: Option<String>,
    by: Option<String>,
    key: Option<String>,
    #[serde(borrow)]
    draw: Option<&'a RawValue>,
    #[serde(borrow)]
    draws: Option<Vec<&'a RawValue>>,
    floor: Option<u64>,
    committed: Option<u64>,
}

fn refuse<T>(problem: impl Into<String>) -> Result<T, LineError> {
    Err(LineError(problem.into()))
}

/// Parses one line (without its newline).
pub fn parse_line(line: &str) -> Result<Line, LineError> {
    let fields: Fields<'_> = serde_json::from_str(line).map_err(|e| LineError(format!("not a log line: {e}")))?;
    let Fields { op, by, key, draw, draws, floor, committed } = fields;
    let Some(op) = op else {
        return match (floor, committed, by, key, draw, draws) {
            (Some(floor), Some(committed), None, None, None, None) => Ok(Line::Header(Header { floor, committed })),
            _ => refuse("a line without op must be exactly the header {\"floor\":G,\"committed\":C}"),
        };
    };
    if floor.is_some() || committed.is_some() {
        return refuse("only the header has floor and committed");
    }
    let Some(by) = by else { return refuse("by is missing") };
    let author = parse_author(&by)?;
    let op = match op.as_str() {
        "draw" => match (key, draw, draws) {
            (Some(key), Some(draw), None) => Op::Draw { key: parse_key(key)?, author, draw: parse_draw(draw)? },
            _ => return refuse("draw needs key and draw"),
        },
        "clear" | "undo" | "redo" => {
            if key.is_some() || draw.is_some() || draws.is_some() {
                return refuse(format!("{op} has only by"));
            }
            match op.as_str() {
                "clear" => Op::Clear { author },
                "undo" => Op::Undo { author },
                _ => Op::Redo { author },
            }
        }
        "restore" | "restore_undone" => match (key, draw, draws) {
            (Some(key), None, Some(raw)) => {
                let draws = raw.into_iter().map(parse_draw).collect::<Result<Vec<_>, _>>()?;
                let stroke = Stroke { key: parse_key(key)?, author, draws };
                if op == "restore" { Op::Restore(stroke) } else { Op::RestoreUndone(stroke) }
            }
            _ => return refuse(format!("{op} needs key and draws")),
        },
        _ => return refuse("unknown op"),
    };
    Ok(Line::Op(op))
}

fn parse_author(by: &str) -> Result<Author, LineError> {
    if by.len() != 16 || !by.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return refuse("by must be 16 lowercase hex digits");
    }
    u64::from_str_radix(by, 16).map(Author).map_err(|e| LineError(format!("by: {e}")))
}

fn parse_key(key: String) -> Result<StrokeKey, LineError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return refuse(format!("key must be 1 to {MAX_KEY_BYTES} bytes"));
    }
    Ok(StrokeKey(key.into()))
}

/// A draw comes back in its normalized form, whatever the line's spelling.
fn parse_draw(raw: &RawValue) -> Result<Utf8Bytes, LineError> {
    parse_journaled_draw(raw.get()).map(|draw| draw.encode()).map_err(|e| LineError(format!("draw: {e}")))
}

/// Appends the header line (with its newline) to `out`.
pub fn write_header(header: Header, out: &mut String) {
    let _ = writeln!(out, r#"{{"floor":{},"committed":{}}}"#, header.floor, header.committed);
}

/// Appends `op`'s line (with its newline) to `out`. Draws are written as
/// they are: they must be JSON objects (the hub's normalized draws are).
pub fn write_op(op: &Op, out: &mut String) {
    match op {
        Op::Draw { key, author, draw } => {
            let _ = write!(out, r#"{{"op":"draw","by":"{author}","key":{},"draw":{draw}}}"#, json_string(key));
            out.push('\n');
        }
        Op::Clear { author } => write_bare("clear", *author, out),
        Op::Undo { author } => write_bare("undo", *author, out),
        Op::Redo { author } => write_bare("redo", *author, out),
        Op::Restore(stroke) => write_restore(stroke, false, out),
        Op::RestoreUndone(stroke) => write_restore(stroke, true, out),
    }
}

fn write_bare(name: &str, author: Author, out: &mut String) {
    let _ = writeln!(out, r#"{{"op":"{name}","by":"{author}"}}"#);
}

/// Appends the compacted form of a live stroke (`restore`), or of one on
/// its author's redo stack (`restore_undone`), with its newline.
pub fn write_restore(stroke: &Stroke, undone: bool, out: &mut String) {
    let name = if undone { "restore_undone" } else { "restore" };
    let _ = write!(out, r#"{{"op":"{name}","by":"{}","key":{},"draws":["#, stroke.author, json_string(&stroke.key));
    for (i, draw) in stroke.draws.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(draw);
    }
    out.push_str("]}\n");
}

/// The compacted form of a live clear: its `clear` line.
pub fn write_live_clear(author: Author, out: &mut String) {
    write_bare("clear", author, out);
}

fn json_string(key: &StrokeKey) -> String {
    // Serializing a string cannot fail.
    serde_json::to_string(key.as_str()).unwrap_or_default()
}

/// The [`weight`] of a stroke's compacted form.
pub fn stroke_weight(stroke: &Stroke) -> u64 {
    1 + stroke.draws.len() as u64
}

/// How much replaying `op` costs, in the unit the compaction bound counts:
/// one per line plus one per draw it carries.
pub fn weight(op: &Op) -> u64 {
    match op {
        Op::Draw { .. } => 2,
        Op::Restore(stroke) | Op::RestoreUndone(stroke) => stroke_weight(stroke),
        Op::Clear { .. } | Op::Undo { .. } | Op::Redo { .. } => 1,
    }
}

/// A log read back.
#[derive(Debug, Default)]
pub struct LogContents {
    /// The first line.
    pub header: Option<Header>,
    /// The ops of the lines that parsed, in order.
    pub ops: Vec<Op>,
    /// 1-based numbers of the lines skipped, with why.
    pub skipped: Vec<(usize, LineError)>,
    /// Nothing was skipped and the log ends with a newline: appending to it is safe.
    pub clean: bool,
    /// The weight of `ops` (see `weight`: what compacting it would save).
    pub weight: u64,
}

/// Reads a whole log. `Err` when the first line is not a header (the log is
/// not ours, or damaged beyond a torn tail); otherwise every line that does
/// not parse as an op is skipped and named in `skipped`.
pub fn read_log(bytes: &[u8]) -> Result<LogContents, LineError> {
    let mut lines = bytes.split(|b| *b == b'\n').enumerate();
    let first = lines.next().map(|(_, line)| line).unwrap_or_default();
    let header = match std::str::from_utf8(first).map_err(|e| LineError(e.to_string())).and_then(parse_line) {
        Ok(Line::Header(header)) => header,
        Ok(Line::Op(_)) => return refuse("the first line is not the header"),
        Err(e) => return refuse(format!("the header does not parse: {e}")),
    };
    let mut log = LogContents { header: Some(header), clean: bytes.ends_with(b"\n"), ..LogContents::default() };
    for (index, line) in lines {
        if line.is_empty() {
            continue;
        }
        let parsed = std::str::from_utf8(line).map_err(|e| LineError(format!("not UTF-8: {e}"))).and_then(parse_line);
        match parsed {
            Ok(Line::Op(op)) => {
                log.weight += weight(&op);
                log.ops.push(op);
            }
            Ok(Line::Header(_)) => log.skipped.push((index + 1, LineError("a second header".into()))),
            Err(e) => log.skipped.push((index + 1, e)),
        }
    }
    if !log.skipped.is_empty() {
        log.clean = false;
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRAW: &str =
        r##"{"type":"draw","color":"#000000","startX":450,"startY":202,"endX":484.5,"endY":202,"lineWidth":3}"##;

    fn stroke(key: &str) -> Stroke {
        Stroke { key: StrokeKey(key.into()), author: Author(0xabc), draws: vec![DRAW.into(), DRAW.into()] }
    }

    #[test]
    fn every_form_reads_back_as_written() {
        let ops = [
            Op::Draw { key: StrokeKey("7.12".into()), author: Author(u64::MAX), draw: DRAW.into() },
            Op::Clear { author: Author(0) },
            Op::Undo { author: Author(1) },
            Op::Redo { author: Author(2) },
            Op::Restore(stroke("a\"b\\c.1")),
            Op::RestoreUndone(stroke("v1-0.3")),
        ];
        let mut text = String::new();
        write_header(Header { floor: 3, committed: 1200 }, &mut text);
        for op in &ops {
            write_op(op, &mut text);
        }
        let log = read_log(text.as_bytes()).unwrap();
        assert_eq!(log.header, Some(Header { floor: 3, committed: 1200 }));
        assert_eq!(log.ops, ops);
        assert!(log.clean && log.skipped.is_empty());
        assert_eq!(log.weight, 2 + 1 + 1 + 1 + 3 + 3);
    }

    #[test]
    fn bad_lines_are_skipped_and_a_bad_header_refused() {
        let text = format!(
            "{{\"floor\":0,\"committed\":0}}\n{}\n{}\n{{\"op\":\"undo\",\"by\":\"00000000000000FF\"}}\n{{\"op\":\"undo\",\"by\":\"0000000000000001\",\"key\":\"x\"}}\n{{\"floor\":1,\"committed\":1}}\n{{\"op\":\"dr",
            r#"{"op":"undo","by":"0000000000000001"}"#,
            r#"{"op":"draw","by":"0000000000000001","key":"1.1","draw":{"color":"red"}}"#,
        );
        let log = read_log(text.as_bytes()).unwrap();
        assert_eq!(log.ops, [Op::Undo { author: Author(1) }]);
        assert_eq!(log.skipped.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [3, 4, 5, 6, 7]);
        assert!(!log.clean);
        assert!(read_log(b"").is_err());
        assert!(read_log(b"{\"op\":\"undo\",\"by\":\"0000000000000001\"}\n").is_err());
        assert!(read_log(b"{\"floor\":1}\n").is_err());
    }
}
