//! Fuzzes v1 journal recovery, as the v1 migration (`migrate_v1`) runs it on `journal.jsonl`.
//!
//! Arbitrary bytes are a journal file. Checked: nothing panics; exactly the
//! non-empty lines that parse as draws come back, in order, each in its
//! normalized form, and that form reads back as the same draw (numbers to
//! within one ULP, see `smolcanvas_fuzz`); the file is clean exactly when no
//! non-empty line was skipped and it is empty or ends with a newline; and the
//! journal written back from the recovered draws recovers, clean, to the same
//! draws.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use smolcanvas::fuzzing::recover_journal;
use smolcanvas::fuzzing::protocol::{self, Draw};
use smolcanvas_fuzz::same_draw;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("journal.jsonl");
    let (draws, clean) = recover_journal(data, path);
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').filter(|line| !line.is_empty()).collect();
    let expected: Vec<Draw> = lines
        .iter()
        .filter_map(|line| std::str::from_utf8(line).ok().and_then(|text| protocol::parse_journaled_draw(text).ok()))
        .collect();
    let skipped = lines.len() - expected.len();
    let terminated = data.is_empty() || data.ends_with(b"\n");
    assert_eq!(clean, skipped == 0 && terminated, "{skipped} line(s) skipped, terminated: {terminated}");
    assert_eq!(draws.len(), expected.len(), "recovered draws");

    let mut rewritten = Vec::new();
    let mut read_back = Vec::new();
    for (line, draw) in draws.iter().zip(&expected) {
        let line = line.as_str();
        assert_eq!(line, draw.encode().as_str(), "recovered draw is not the normalized form");
        let back = protocol::parse_journaled_draw(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(same_draw(&back, draw), "{line} reads back as {back:?}, not {draw:?}");
        read_back.push(back);
        rewritten.extend_from_slice(line.as_bytes());
        rewritten.push(b'\n');
    }
    let (again, clean_again) = recover_journal(&rewritten, path);
    assert!(clean_again, "rewritten journal is not clean");
    assert_eq!(again.len(), read_back.len(), "rewritten journal lost draws");
    for (line, back) in again.iter().zip(&read_back) {
        assert_eq!(line.as_str(), back.encode().as_str(), "rewritten journal recovers another form");
    }
});
