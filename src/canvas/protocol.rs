//! The canvas messages of PROTOCOL.md: parsing, validation, error codes and the normalized outbound forms.
//!
//! Inbound text is parsed once into a [`ClientMessage`]; everything the
//! server sends is encoded once into a [`Utf8Bytes`] that every receiver
//! shares (cloning it only bumps a reference count).

use std::collections::HashMap;
use std::fmt;

use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::protocol::frame::coding::{Data as OpData, OpCode};
use async_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// Longest value of a field the server does not know (and of `clientId`).
pub const MAX_FIELD_BYTES: usize = 64;
/// The prefix every snapshot data URL must have.
pub const PNG_DATA_URL_PREFIX: &str = "data:image/png;base64,";

/// Default `lineWidth` when a draw has none.
pub const DEFAULT_LINE_WIDTH: u32 = 3;

/// One stroke segment, validated; numbers keep the form the client sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Draw {
    #[serde(rename = "type")]
    kind: &'static str,
    /// `#rgb` or `#rrggbb`.
    pub color: String,
    /// Start of the segment, logical x.
    #[serde(rename = "startX")]
    pub start_x: Number,
    /// Start of the segment, logical y.
    #[serde(rename = "startY")]
    pub start_y: Number,
    /// End of the segment, logical x.
    #[serde(rename = "endX")]
    pub end_x: Number,
    /// End of the segment, logical y.
    #[serde(rename = "endY")]
    pub end_y: Number,
    /// Stroke width in logical pixels.
    #[serde(rename = "lineWidth")]
    pub line_width: Number,
    /// A v2 client's stroke number (`"stroke": n`); never part of the v1 form.
    #[serde(skip)]
    pub stroke: Option<u32>,
}

impl Draw {
    /// The normalized `draw` message, as relayed and journaled.
    pub fn encode(&self) -> Utf8Bytes {
        encode(self)
    }
}

/// A message from a client, validated.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// A stroke segment to relay and journal.
    Draw(Draw),
    /// Wipe the board.
    Clear,
    /// Ask for a fresh canvas sync for oneself.
    CanvasRequest,
    /// A v2 client names its author secret.
    Hello {
        /// 16 to 64 characters of `A-Z a-z 0-9 - _`.
        author: String,
    },
    /// Undo the sender's author's newest live item.
    Undo,
    /// Redo the sender's author's most recently undone stroke.
    Redo,
    /// The answer to a `canvasRequest`.
    CanvasState {
        /// Copied from the request: the newcomer's id, or `"server"`.
        client_id: String,
        /// `data:image/png;base64,...`
        data: String,
    },
}

/// The `code` of an `error` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Not JSON, or not a JSON object.
    InvalidJson,
    /// A `type` the server does not know.
    UnknownType,
    /// A draw that breaks a rule.
    InvalidDraw,
    /// A canvasState that breaks a rule.
    InvalidCanvasState,
    /// Some other field breaks a rule.
    InvalidMessage,
    /// A viewer tried to change the board.
    ReadOnly,
    /// A `hello` whose author is not 16 to 64 characters of `A-Z a-z 0-9 - _`.
    InvalidHello,
    /// A first draw on a new board while `--max-boards` boards exist.
    BoardLimit,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::InvalidDraw => "invalid_draw",
            ErrorCode::InvalidCanvasState => "invalid_canvas_state",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::ReadOnly => "read_only",
            ErrorCode::InvalidHello => "invalid_hello",
            ErrorCode::BoardLimit => "board_limit",
        }
    }
}

/// Why a client message was rejected; sent back as an `error` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// What was wrong, for a person.
    pub message: String,
}

impl ProtocolError {
    /// An error with its code and text.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError { code, message: message.into() }
    }

    /// The `error` message to send to the client.
    pub fn encode(&self) -> Utf8Bytes {
        #[derive(Serialize)]
        struct ErrorMessage<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            code: &'static str,
            message: &'a str,
        }
        encode(&ErrorMessage { kind: "error", code: self.code.as_str(), message: &self.message })
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ProtocolError {}

const DRAW_FIELDS: [&str; 7] = ["color", "startX", "startY", "endX", "endY", "lineWidth", "stroke"];
/// Stroke numbers are below 2^31: JavaScript's safe small integers, and room above for keys the server makes up.
pub const STROKE_LIMIT: u64 = 1 << 31;

/// Parses and validates one text message. `max_snapshot_bytes` bounds a canvasState's data.
pub fn parse(text: &str, max_snapshot_bytes: usize) -> Result<ClientMessage, ProtocolError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ProtocolError::new(ErrorCode::InvalidJson, format!("not valid JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(ProtocolError::new(ErrorCode::InvalidJson, "a message must be a JSON object"));
    };
    let kind = match object.remove("type") {
        None => None,
        Some(Value::String(kind)) => Some(kind),
        Some(_) => return Err(ProtocolError::new(ErrorCode::InvalidMessage, "type must be a string")),
    };
    match kind.as_deref() {
        Some("draw") => parse_draw(object, text).map(ClientMessage::Draw),
        // The seed clients send bare segments without a type.
        None if object.contains_key("color") => parse_draw(object, text).map(ClientMessage::Draw),
        None => Err(ProtocolError::new(ErrorCode::UnknownType, "missing type")),
        Some("clear") => check_extra(&object, &[], ErrorCode::InvalidMessage, text).map(|_| ClientMessage::Clear),
        Some("canvasRequest") => {
            check_extra(&object, &["clientId"], ErrorCode::InvalidMessage, text).map(|_| ClientMessage::CanvasRequest)
        }
        Some("canvasState") => parse_canvas_state(object, max_snapshot_bytes, text),
        Some("undo") => check_extra(&object, &[], ErrorCode::InvalidMessage, text).map(|_| ClientMessage::Undo),
        Some("redo") => check_extra(&object, &[], ErrorCode::InvalidMessage, text).map(|_| ClientMessage::Redo),
        Some("hello") => parse_hello(object, text),
        Some(other) => Err(ProtocolError::new(ErrorCode::UnknownType, format!("unknown type {:?}", truncate(other)))),
    }
}

/// Parses one journal line (a normalized draw) back into a [`Draw`].
pub fn parse_journaled_draw(line: &str) -> Result<Draw, ProtocolError> {
    match parse(line, 0)? {
        ClientMessage::Draw(draw) => Ok(draw),
        _ => Err(ProtocolError::new(ErrorCode::InvalidDraw, "not a draw")),
    }
}

fn parse_draw(object: Map<String, Value>, text: &str) -> Result<Draw, ProtocolError> {
    let invalid = |message: String| ProtocolError::new(ErrorCode::InvalidDraw, message);
    check_extra(&object, &DRAW_FIELDS, ErrorCode::InvalidDraw, text)?;
    let color = match object.get("color") {
        Some(Value::String(color)) if is_hex_color(color) => color.clone(),
        Some(_) => return Err(invalid("color must be #rgb or #rrggbb".into())),
        None => return Err(invalid("color is missing".into())),
    };
    let number = |name: &str, min: f64, max: f64, default: Option<Number>| -> Result<Number, ProtocolError> {
        match object.get(name) {
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v.is_finite() && (min..=max).contains(&v)) => {
                Ok(n.clone())
            }
            Some(_) => Err(invalid(format!("{name} must be a number in [{min}, {max}]"))),
            None => default.ok_or_else(|| invalid(format!("{name} is missing"))),
        }
    };
    let coordinate = |name: &str| number(name, -10_000.0, 10_000.0, None);
    Ok(Draw {
        kind: "draw",
        color,
        start_x: coordinate("startX")?,
        start_y: coordinate("startY")?,
        end_x: coordinate("endX")?,
        end_y: coordinate("endY")?,
        line_width: number("lineWidth", 0.5, 100.0, Some(Number::from(DEFAULT_LINE_WIDTH)))?,
        stroke: match object.get("stroke") {
            None => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n) if n < STROKE_LIMIT => Some(n as u32),
                _ => return Err(invalid(format!("stroke must be an integer in [0, {STROKE_LIMIT})"))),
            },
            Some(_) => return Err(invalid(format!("stroke must be an integer in [0, {STROKE_LIMIT})"))),
        },
    })
}

fn parse_hello(object: Map<String, Value>, text: &str) -> Result<ClientMessage, ProtocolError> {
    check_extra(&object, &["author"], ErrorCode::InvalidHello, text)?;
    match object.get("author") {
        Some(Value::String(author)) if super::names::valid_author(author) => {
            Ok(ClientMessage::Hello { author: author.clone() })
        }
        _ => Err(ProtocolError::new(ErrorCode::InvalidHello, "author must be 16 to 64 characters of A-Z a-z 0-9 - _")),
    }
}

fn parse_canvas_state(
    mut object: Map<String, Value>,
    max_snapshot_bytes: usize,
    text: &str,
) -> Result<ClientMessage, ProtocolError> {
    let invalid = |message: String| ProtocolError::new(ErrorCode::InvalidCanvasState, message);
    check_extra(&object, &["clientId", "data"], ErrorCode::InvalidCanvasState, text)?;
    let client_id = match object.remove("clientId") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_FIELD_BYTES => id,
        _ => return Err(invalid("clientId must be the string from the canvasRequest".into())),
    };
    let data = match object.remove("data") {
        Some(Value::String(data)) => data,
        _ => return Err(invalid("data must be a PNG data URL string".into())),
    };
    if !data.starts_with(PNG_DATA_URL_PREFIX) {
        return Err(invalid(format!("data must start with {PNG_DATA_URL_PREFIX}")));
    }
    if data.len() > max_snapshot_bytes {
        return Err(invalid(format!("data is {} bytes, more than the {max_snapshot_bytes} allowed", data.len())));
    }
    Ok(ClientMessage::CanvasState { client_id, data })
}

/// Fields other than `known` may exist, but neither their names nor their
/// values may exceed 64 bytes, as sent (`text` is the message as received:
/// a number's value is its text, which parsing it would shorten).
fn check_extra(object: &Map<String, Value>, known: &[&str], code: ErrorCode, text: &str) -> Result<(), ProtocolError> {
    for (name, value) in object {
        if known.contains(&name.as_str()) {
            if let Value::String(s) = value
                && name == "clientId"
                && s.len() > MAX_FIELD_BYTES
            {
                return Err(ProtocolError::new(code, format!("clientId is longer than {MAX_FIELD_BYTES} bytes")));
            }
            continue;
        }
        let too_long = name.len() > MAX_FIELD_BYTES
            || match value {
                Value::String(s) => s.len() > MAX_FIELD_BYTES,
                Value::Number(_) => raw_len(text, name) > MAX_FIELD_BYTES,
                Value::Array(_) | Value::Object(_) => value.to_string().len() > MAX_FIELD_BYTES,
                Value::Bool(_) | Value::Null => false,
            };
        if too_long {
            return Err(ProtocolError::new(
                code,
                format!("field {:?} is longer than {MAX_FIELD_BYTES} bytes", truncate(name)),
            ));
        }
    }
    Ok(())
}

/// The length of field `name`'s value as written in `text` (a rare path:
/// only messages with a numeric field the server does not know get here).
fn raw_len(text: &str, name: &str) -> usize {
    serde_json::from_str::<HashMap<String, Box<RawValue>>>(text)
        .ok()
        .and_then(|fields| fields.get(name).map(|raw| raw.get().len()))
        .unwrap_or(0)
}

fn is_hex_color(color: &str) -> bool {
    let digits = color.strip_prefix('#').unwrap_or("");
    (digits.len() == 3 || digits.len() == 6)
        && color.len() == digits.len() + 1
        && digits.bytes().all(|b| b.is_ascii_hexdigit())
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(MAX_FIELD_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn encode<T: Serialize>(message: &T) -> Utf8Bytes {
    // Serializing these plain structs cannot fail: no maps with non-string keys, no custom serializers.
    serde_json::to_string(message).expect("protocol messages serialize").into()
}

/// `{"type":"clientCount","clientCount":n}`
pub fn client_count(count: usize) -> Utf8Bytes {
    format!(r#"{{"type":"clientCount","clientCount":{count}}}"#).into()
}

/// `{"type":"canvasRequest","clientId":"…"}`
pub fn canvas_request(client_id: &str) -> Utf8Bytes {
    #[derive(Serialize)]
    struct CanvasRequest<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(rename = "clientId")]
        client_id: &'a str,
    }
    encode(&CanvasRequest { kind: "canvasRequest", client_id })
}

/// `{"type":"canvasState","clientId":"…","data":"…"}`
pub fn canvas_state(client_id: &str, data: &str) -> Utf8Bytes {
    #[derive(Serialize)]
    struct CanvasState<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(rename = "clientId")]
        client_id: &'a str,
        data: &'a str,
    }
    encode(&CanvasState { kind: "canvasState", client_id, data })
}

/// Snapshots at most this long go out as one text message; longer ones as
/// frames that share the snapshot's bytes instead of copying them per client.
const SHARED_SNAPSHOT_MIN_BYTES: usize = 16 * 1024;

/// `canvasState` for `client_id` with `data`, as messages for an outbox.
///
/// A large snapshot becomes one text message in three frames (the JSON
/// before the data, the data itself, the closing `"}`), the middle one
/// sharing `data`'s bytes, so a hundred newcomers cost one copy of the
/// board, not a hundred. That needs `data` to be its own JSON string body
/// (no quote, backslash or control character), which every valid data URL
/// is; any other data is encoded in full.
pub fn canvas_state_frames(client_id: &str, data: &Utf8Bytes) -> Vec<Message> {
    let plain = data.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if data.len() <= SHARED_SNAPSHOT_MIN_BYTES || !plain {
        return vec![Message::Text(canvas_state(client_id, data))];
    }
    let id = serde_json::to_string(client_id).expect("a string serializes");
    let head = format!(r#"{{"type":"canvasState","clientId":{id},"data":""#);
    let text = OpCode::Data(OpData::Text);
    let more = OpCode::Data(OpData::Continue);
    vec![
        Message::Frame(Frame::message(Bytes::from(head), text, false)),
        Message::Frame(Frame::message(Bytes::from(data.clone()), more, false)),
        Message::Frame(Frame::message(Bytes::from_static(b"\"}"), more, true)),
    ]
}

/// `{"type":"clear"}`
pub fn clear() -> Utf8Bytes {
    Utf8Bytes::from_static(r#"{"type":"clear"}"#)
}

/// The v2 form of a normalized draw: the v1 form with `"stroke":"KEY"` added.
pub fn v2_draw(v1: &str, key: &str) -> Utf8Bytes {
    let body = v1.strip_suffix('}').unwrap_or(v1);
    let mut out = String::with_capacity(body.len() + key.len() + 14);
    out.push_str(body);
    out.push_str(r#","stroke":""#);
    out.push_str(key);
    out.push_str("\"}");
    out.into()
}

/// `welcome`: `board` and `view_path` go to editors only.
pub fn welcome(client_id: &str, role: &str, board: Option<(&str, &str)>) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Welcome<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        #[serde(rename = "clientId")]
        client_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        board: Option<&'a str>,
        role: &'a str,
        #[serde(rename = "viewPath", skip_serializing_if = "Option::is_none")]
        view_path: Option<&'a str>,
    }
    encode(&Welcome { kind: "welcome", client_id, board: board.map(|b| b.0), role, view_path: board.map(|b| b.1) })
}

/// `notice` with its code and a sentence for people.
pub fn notice(code: &str, message: &str) -> Utf8Bytes {
    #[derive(Serialize)]
    struct Notice<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        code: &'a str,
        message: &'a str,
    }
    encode(&Notice { kind: "notice", code, message })
}

/// `{"type":"undo","stroke":"KEY"}`
pub fn undo(key: &str) -> Utf8Bytes {
    format!(r#"{{"type":"undo","stroke":"{key}"}}"#).into()
}

/// `{"type":"redo","stroke":"KEY","draws":[...]}` from the stroke's v1 draws.
pub fn redo<'a>(key: &str, draws: impl Iterator<Item = &'a Utf8Bytes>) -> Utf8Bytes {
    let mut out = format!(r#"{{"type":"redo","stroke":"{key}","draws":["#);
    for (i, draw) in draws.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&v2_draw(draw, key));
    }
    out.push_str("]}");
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw_error(text: &str) -> String {
        match parse(text, 1024) {
            Err(ProtocolError { code: ErrorCode::InvalidDraw, message }) => message,
            other => panic!("expected invalid_draw for {text}, got {other:?}"),
        }
    }

    #[test]
    fn bare_seed_draw_is_normalized() {
        let text = r##"{"color":"#000000","endX":484,"endY":202,"startX":450,"startY":202}"##;
        let ClientMessage::Draw(draw) = parse(text, 0).unwrap() else { panic!() };
        assert_eq!(
            draw.encode().as_str(),
            r##"{"type":"draw","color":"#000000","startX":450,"startY":202,"endX":484,"endY":202,"lineWidth":3}"##
        );
        assert_eq!(parse_journaled_draw(draw.encode().as_str()).unwrap(), draw);
    }

    #[test]
    fn decimals_are_kept() {
        let text =
            r##"{"type":"draw","color":"#abc","startX":1.5,"startY":-2.25,"endX":0,"endY":1e2,"lineWidth":0.5}"##;
        let ClientMessage::Draw(draw) = parse(text, 0).unwrap() else { panic!() };
        assert!(draw.encode().as_str().contains(r#""startX":1.5,"startY":-2.25"#));
    }

    #[test]
    fn invalid_draws_say_why() {
        let ok = r##""startX":1,"startY":1,"endX":2,"endY":2"##;
        assert_eq!(draw_error(&format!(r#"{{"color":"red",{ok}}}"#)), "color must be #rgb or #rrggbb");
        assert_eq!(draw_error(&format!(r##"{{"color":"#12345g",{ok}}}"##)), "color must be #rgb or #rrggbb");
        assert!(draw_error(r##"{"color":"#fff","startX":10001,"startY":1,"endX":2,"endY":2}"##).starts_with("startX"));
        assert!(draw_error(r##"{"color":"#fff","startX":"1","startY":1,"endX":2,"endY":2}"##).starts_with("startX"));
        assert!(draw_error(r##"{"color":"#fff","startY":1,"endX":2,"endY":2}"##).starts_with("startX is missing"));
        assert!(draw_error(&format!(r##"{{"color":"#fff",{ok},"lineWidth":101}}"##)).starts_with("lineWidth"));
        assert!(draw_error(&format!(r##"{{"color":"#fff",{ok},"lineWidth":0.4}}"##)).starts_with("lineWidth"));
        let long = "x".repeat(65);
        assert!(draw_error(&format!(r##"{{"color":"#fff",{ok},"note":"{long}"}}"##)).contains("longer than 64"));
        assert!(parse(&format!(r##"{{"color":"#fff",{ok},"note":"short"}}"##), 0).is_ok());
        // A number is as long as it was written, not as long as it prints once parsed.
        let digits = format!("1{}", "0".repeat(64));
        assert!(draw_error(&format!(r##"{{"color":"#fff",{ok},"note":{digits}}}"##)).contains("longer than 64"));
        assert!(parse(&format!(r##"{{"color":"#fff",{ok},"note":{}}}"##, &digits[..64]), 0).is_ok());
    }

    #[test]
    fn a_large_canvas_state_shares_the_snapshot_and_reads_back_whole() {
        let data = Utf8Bytes::from(format!("{PNG_DATA_URL_PREFIX}{}", "A".repeat(40_000)));
        let frames = canvas_state_frames("7", &data);
        assert_eq!(frames.len(), 3);
        let text: Vec<u8> = frames
            .into_iter()
            .flat_map(|frame| match frame {
                Message::Frame(frame) => frame.into_payload().to_vec(),
                other => panic!("expected frames, got {other:?}"),
            })
            .collect();
        assert_eq!(String::from_utf8(text).unwrap(), canvas_state("7", &data).as_str());
        let small = canvas_state_frames("7", &Utf8Bytes::from_static("data:image/png;base64,AA"));
        assert_eq!(small, vec![Message::Text(canvas_state("7", "data:image/png;base64,AA"))]);
    }

    #[test]
    fn other_messages() {
        assert_eq!(parse(r#"{"type":"clear"}"#, 0), Ok(ClientMessage::Clear));
        assert_eq!(parse(r#"{"type":"canvasRequest"}"#, 0), Ok(ClientMessage::CanvasRequest));
        assert_eq!(parse("[1]", 0).unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(parse("{", 0).unwrap_err().code, ErrorCode::InvalidJson);
        assert_eq!(parse(r#"{"type":"paint"}"#, 0).unwrap_err().code, ErrorCode::UnknownType);
        let state = r#"{"type":"canvasState","clientId":"7","data":"data:image/png;base64,AAAA"}"#;
        assert!(matches!(parse(state, 100), Ok(ClientMessage::CanvasState { .. })));
        assert_eq!(parse(state, 10).unwrap_err().code, ErrorCode::InvalidCanvasState);
        let jpeg = r#"{"type":"canvasState","clientId":"7","data":"data:image/jpeg;base64,AAAA"}"#;
        assert_eq!(parse(jpeg, 100).unwrap_err().code, ErrorCode::InvalidCanvasState);
    }

    #[test]
    fn outbound_forms() {
        assert_eq!(client_count(4).as_str(), r#"{"type":"clientCount","clientCount":4}"#);
        assert_eq!(canvas_request("7").as_str(), r#"{"type":"canvasRequest","clientId":"7"}"#);
        assert_eq!(canvas_state("7", "").as_str(), r#"{"type":"canvasState","clientId":"7","data":""}"#);
        let error = ProtocolError::new(ErrorCode::InvalidDraw, "color \"x\"").encode();
        assert_eq!(error.as_str(), r#"{"type":"error","code":"invalid_draw","message":"color \"x\""}"#);
    }
}
