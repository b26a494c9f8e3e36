//! The v2 part of the protocol as the tests speak it: many boards by path, stroke keys, undo and
//! redo, `board.png`.

use std::net::SocketAddr;

use serde_json::Value;

use super::board::read_board;
use super::http::request;
use super::image::Image;
use super::peer::Peer;

pub const UNDO: &str = r#"{"type":"undo"}"#;
pub const REDO: &str = r#"{"type":"redo"}"#;
pub const CLEAR: &str = r#"{"type":"clear"}"#;
pub const CANVAS_REQUEST: &str = r#"{"type":"canvasRequest"}"#;

/// The first stroke number the server makes up for a draw without one (2^31).
pub const MADE_UP_STROKES: u64 = 1 << 31;

/// A segment in its normalized form (as relayed to v1 clients and journaled).
pub fn segment(color: &str, (x0, y0): (u32, u32), (x1, y1): (u32, u32), width: u32) -> String {
    format!(
        r#"{{"type":"draw","color":"{color}","startX":{x0},"startY":{y0},"endX":{x1},"endY":{y1},"lineWidth":{width}}}"#
    )
}

/// `draw` (a JSON object as text) with `"stroke":` and `n` (JSON text) added: what a v2 client sends.
pub fn with_stroke(draw: &str, n: impl std::fmt::Display) -> String {
    let body = draw.strip_suffix('}').unwrap_or_else(|| panic!("not a JSON object: {draw}"));
    format!(r#"{body},"stroke":{n}}}"#)
}

/// The v2 form of a normalized draw, as a v2 client receives it: `"stroke":"KEY"` added last.
pub fn v2_form(draw: &str, key: &str) -> String {
    with_stroke(draw, format!("\"{key}\""))
}

/// The `redo` message for the stroke `key` made of `draws` (normalized v1 forms).
pub fn redo_message(key: &str, draws: &[&str]) -> String {
    let draws: Vec<String> = draws.iter().map(|draw| v2_form(draw, key)).collect();
    format!(r#"{{"type":"redo","stroke":"{key}","draws":[{}]}}"#, draws.join(","))
}

/// The `undo` message for the stroke `key`.
pub fn undo_message(key: &str) -> String {
    format!(r#"{{"type":"undo","stroke":"{key}"}}"#)
}

/// `hello` with `author`.
pub fn hello(author: &str) -> String {
    format!(r#"{{"type":"hello","author":"{author}"}}"#)
}

/// The `stroke` key of a v2 draw message.
pub fn stroke_key(text: &str) -> String {
    let message: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON {text:?}: {e}"));
    assert_eq!(message["type"], "draw", "expected a draw, got {text}");
    message["stroke"].as_str().unwrap_or_else(|| panic!("no stroke key in {text}")).to_string()
}

/// Splits a stroke key into the drawer's `clientId` and the stroke number.
pub fn split_key(key: &str) -> (&str, u64) {
    let (id, n) = key.rsplit_once('.').unwrap_or_else(|| panic!("a stroke key is CLIENTID.N, got {key:?}"));
    (id, n.parse().unwrap_or_else(|_| panic!("the number in stroke key {key:?}")))
}

/// What a lone v1 newcomer on the socket `path` gets: the `canvasState` data, then the draws.
pub async fn board_at(addr: SocketAddr, path: &str) -> (String, Vec<String>) {
    let mut peer = Peer::connect_to(addr, path).await;
    let board = read_board(&mut peer).await;
    peer.close().await;
    board
}

/// What a v2 newcomer on the socket `path` gets: the `canvasState` data, then the draws (v2 forms).
pub async fn board_at_v2(addr: SocketAddr, path: &str) -> (String, Vec<String>) {
    let (mut peer, _) = Peer::join_v2(addr, path).await;
    let board = read_board(&mut peer).await;
    peer.close().await;
    board
}

/// `GET path` must answer a `board.png` named `filename`: `200`, `image/png`, not cached,
/// `inline`; returns the picture.
pub async fn fetch_png(addr: SocketAddr, path: &str, filename: &str) -> Image {
    let response = request(addr, "GET", path).await;
    assert_eq!(response.status, 200, "GET {path}: {}", response.text());
    assert_eq!(response.header("content-type"), Some("image/png"), "GET {path}");
    assert_eq!(response.header("cache-control"), Some("no-store"), "GET {path}");
    let disposition = format!("inline; filename=\"{filename}\"");
    assert_eq!(response.header("content-disposition"), Some(disposition.as_str()), "GET {path}");
    let image = Image::decode(&response.body);
    image.assert_board_sized();
    assert!(image.is_opaque(), "GET {path}: board.png must be opaque");
    image
}

/// The status of `GET path`.
pub async fn status_of(addr: SocketAddr, path: &str) -> u16 {
    request(addr, "GET", path).await.status
}

/// A v1 client on the socket `path` of a board that shows nothing: its `clientId` (from its sync).
pub async fn join_empty_v1(addr: SocketAddr, path: &str) -> (Peer, String) {
    let mut peer = Peer::connect_to(addr, path).await;
    let (id, data) = peer.expect_state().await;
    assert_eq!(data, "", "a newcomer on an empty board gets an empty canvasState");
    (peer, id)
}

/// A v2 client on the socket `path` of a board that shows nothing: its `welcome`.
pub async fn join_empty_v2(addr: SocketAddr, path: &str) -> (Peer, super::peer::Welcome) {
    let (mut peer, welcome) = Peer::join_v2(addr, path).await;
    let (id, data) = peer.expect_state().await;
    assert_eq!(id, welcome.client_id, "the canvasState names the newcomer");
    assert_eq!(data, "", "a newcomer on an empty board gets an empty canvasState");
    (peer, welcome)
}
