//! Fuzzes board log recovery, as loading a board runs it on `log.jsonl`.
//!
//! Arbitrary bytes are a log. Checked: nothing panics; a log whose first line
//! is not a header is refused, any other is read with every later non-empty
//! line either recovered as an op or skipped; the log is clean exactly when
//! nothing was skipped and it ends with a newline; each recovered op, written
//! back, parses as the same op (draws in their normalized form); and the log
//! written back from the header and the ops reads back clean, to the same
//! ops and weight.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smolcanvas::fuzzing::board_log::{Line, parse_line, read_log, write_header, write_op};

fuzz_target!(|data: &[u8]| {
    let Ok(log) = read_log(data) else { return };
    let header = log.header.expect("a log that reads has a header");
    let later_lines = data.split(|b| *b == b'\n').skip(1).filter(|line| !line.is_empty()).count();
    assert_eq!(log.ops.len() + log.skipped.len(), later_lines, "every line is an op or skipped");
    assert_eq!(log.clean, log.skipped.is_empty() && data.ends_with(b"\n"), "clean");

    let mut rewritten = String::new();
    write_header(header, &mut rewritten);
    for op in &log.ops {
        let mut line = String::new();
        write_op(op, &mut line);
        let text = line.strip_suffix('\n').expect("a line ends with its newline");
        assert!(!text.contains('\n'), "one op, one line: {text}");
        match parse_line(text) {
            Ok(Line::Op(back)) => assert_eq!(&back, op, "{text} reads back as another op"),
            other => panic!("{text} reads back as {other:?}"),
        }
        rewritten.push_str(&line);
    }
    let again = read_log(rewritten.as_bytes()).expect("a written log reads");
    assert!(again.clean, "a written log is clean");
    assert_eq!(again.header, Some(header));
    assert_eq!(again.ops, log.ops);
    assert_eq!(again.weight, log.weight);
});
