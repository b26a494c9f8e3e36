//! Fuzzes the canvas message parser and the encoders it feeds.
//!
//! Arbitrary bytes become text (lossily: the server only parses frames that
//! are valid UTF-8) and go to `protocol::parse` with a small and a large
//! snapshot bound. Checked: nothing panics; the two bounds disagree only on a
//! canvasState's size; a draw is valid, and its normalized form parses back,
//! both as a message and as a journal line, to the same draw (numbers to
//! within one ULP, see `smolcanvas_fuzz`); a canvasState re-encodes to
//! itself; an error encodes to the JSON `error` message carrying its code and
//! text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use smolcanvas::fuzzing::protocol::{self, ClientMessage, Draw, ErrorCode, ProtocolError};
use smolcanvas_fuzz::same_draw;

const SMALL: usize = 64;
const LARGE: usize = 8 * 1024 * 1024;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let small = protocol::parse(&text, SMALL);
    let large = protocol::parse(&text, LARGE);
    match (&small, &large) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) if a != b => {
            assert!(a.code == ErrorCode::InvalidCanvasState && b.code == a.code, "{a:?} / {b:?}");
        }
        (Err(_), Err(_)) => {}
        (Err(a), Ok(ClientMessage::CanvasState { data, .. })) => {
            assert_eq!(a.code, ErrorCode::InvalidCanvasState);
            assert!(data.len() > SMALL, "refused a {}-byte snapshot under the small bound", data.len());
        }
        _ => panic!("small bound {small:?}, large bound {large:?}"),
    }
    match large {
        Ok(ClientMessage::Draw(draw)) => check_draw(&draw),
        Ok(ClientMessage::CanvasState { client_id, data }) => {
            assert!(!client_id.is_empty() && client_id.len() <= protocol::MAX_FIELD_BYTES);
            assert!(data.starts_with(protocol::PNG_DATA_URL_PREFIX) && data.len() <= LARGE);
            let again = protocol::parse(protocol::canvas_state(&client_id, &data).as_str(), LARGE);
            assert_eq!(again, Ok(ClientMessage::CanvasState { client_id, data }));
        }
        Ok(ClientMessage::Hello { author }) => {
            assert!((16..=64).contains(&author.len()), "author of {} bytes", author.len());
            assert!(author.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{author:?}");
        }
        Ok(ClientMessage::Clear | ClientMessage::CanvasRequest | ClientMessage::Undo | ClientMessage::Redo) => {}
        Err(err) => check_error(&err),
    }
    if let Err(err) = small {
        check_error(&err);
    }
});

fn check_draw(draw: &Draw) {
    assert!(draw.stroke.is_none_or(|n| n < 1 << 31), "stroke {:?}", draw.stroke);
    let bytes = draw.encode();
    let Ok(Value::Object(object)) = serde_json::from_str::<Value>(bytes.as_str()) else {
        panic!("draw encodes to something other than a JSON object: {}", bytes.as_str());
    };
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 7, "normalized draw fields: {keys:?}");
    assert_eq!(object.get("type").and_then(Value::as_str), Some("draw"));
    let color = draw.color.strip_prefix('#').expect("color starts with #");
    assert!(matches!(color.len(), 3 | 6) && color.bytes().all(|b| b.is_ascii_hexdigit()), "{}", draw.color);
    for (n, min, max) in [
        (&draw.start_x, -10_000.0, 10_000.0),
        (&draw.start_y, -10_000.0, 10_000.0),
        (&draw.end_x, -10_000.0, 10_000.0),
        (&draw.end_y, -10_000.0, 10_000.0),
        (&draw.line_width, 0.5, 100.0),
    ] {
        let v = n.as_f64().expect("a number");
        assert!(v.is_finite() && (min..=max).contains(&v), "{n} outside [{min}, {max}]");
    }
    let journaled = protocol::parse_journaled_draw(bytes.as_str())
        .unwrap_or_else(|e| panic!("journal line {} does not parse: {e}", bytes.as_str()));
    assert!(same_draw(&journaled, draw), "journal line {} reads back as {journaled:?}", bytes.as_str());
    match protocol::parse(bytes.as_str(), 0) {
        Ok(ClientMessage::Draw(again)) => assert_eq!(again, journaled, "message and journal line differ"),
        other => panic!("normalized draw {} parses as {other:?}", bytes.as_str()),
    }
    let twice = journaled.encode();
    assert!(same_draw(&protocol::parse_journaled_draw(twice.as_str()).expect("re-encoded draw parses"), draw));
}

fn check_error(err: &ProtocolError) {
    let bytes = err.encode();
    let value: Value = serde_json::from_str(bytes.as_str()).expect("error message is JSON");
    assert_eq!(value["type"], "error");
    assert_eq!(value["code"], err.code.as_str());
    assert_eq!(value["message"], err.message.as_str());
    assert_eq!(value.as_object().map(|o| o.len()), Some(3));
    assert!(err.to_string().starts_with(err.code.as_str()));
}
