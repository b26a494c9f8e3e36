//! Canvas protocol messages as the tests write and check them: draws, snapshots, `canvasState`.

use serde_json::Value;

/// A draw in its normalized form (as relayed and stored); `seq` is recoverable with [`draw_seq`].
///
/// A short segment, like the ones the page sends while the pointer moves: the server paints every
/// stroke that leaves the undo window into the board's floor, and a test that sends thousands of
/// draws is about relaying or keeping them, not about painting long lines.
pub fn draw(seq: u32) -> String {
    let (x, y) = (seq / 10_000, seq % 10_000);
    format!(
        r##"{{"type":"draw","color":"#0a0b0c","startX":{x},"startY":{y},"endX":{},"endY":{y},"lineWidth":2}}"##,
        x + 5
    )
}

/// The `seq` of a message made by [`draw`].
pub fn draw_seq(text: &str) -> u32 {
    let message: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"));
    assert_eq!(message["type"], "draw", "expected a draw, got {text}");
    let part = |field: &str| message[field].as_u64().unwrap_or_else(|| panic!("bad {field} in {text}")) as u32;
    part("startX") * 10_000 + part("startY")
}

/// A `canvasState` message.
pub fn canvas_state(client_id: &str, data: &str) -> String {
    let quote = |s: &str| Value::from(s).to_string();
    format!(r#"{{"type":"canvasState","clientId":{},"data":{}}}"#, quote(client_id), quote(data))
}

/// A PNG data URL tagged with `tag` (the server never decodes it).
pub fn png(tag: &str) -> String {
    format!("data:image/png;base64,{tag}")
}

/// `message[field]` as a string, failing the test when it is not one.
pub fn string<'a>(message: &'a Value, field: &str) -> &'a str {
    message[field].as_str().unwrap_or_else(|| panic!("no string {field} in {message}"))
}

/// Asserts that `message` is the normalized relay of `draw`: `"type":"draw"`, the same color and
/// coordinates, `lineWidth` as sent or 3, and nothing else.
pub fn assert_relayed(message: &Value, draw: &Value) {
    assert_eq!(message["type"], "draw", "expected a draw, got {message}");
    assert_eq!(message["color"], draw["color"], "color changed in {message}");
    for field in ["startX", "startY", "endX", "endY"] {
        assert_eq!(message[field].as_f64(), draw[field].as_f64(), "{field} changed in {message}");
    }
    let width = draw["lineWidth"].as_f64().unwrap_or(3.0);
    assert_eq!(message["lineWidth"].as_f64(), Some(width), "lineWidth in {message}");
    assert_eq!(message.as_object().map(serde_json::Map::len), Some(7), "extra fields in {message}");
}
