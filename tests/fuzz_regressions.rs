//! Inputs found by, or written alongside, the fuzz targets in `fuzz/`: the request-head parser and router,
//! the canvas message parser, and journal recovery. Each asserts the exact outcome, not just "no panic".

use std::path::Path;

use serde_json::{Number, Value};
use smolcanvas::Status;
use smolcanvas::fuzzing::http::{self, HeadError, RequestHead, Route};
use smolcanvas::fuzzing::protocol::{self, ClientMessage, Draw, ErrorCode};
use smolcanvas::fuzzing::recover_journal;

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: box:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// Numbers as a client may send them, and the float each one denotes.
const FULL_PRECISION: [(&str, f64); 2] =
    [("0.999999999999499999", 0.999_999_999_999_5), ("-3779.4045996915356", -3_779.404_599_691_535_6)];

const DRAW: &str = r##"{"type":"draw","color":"#000","startX":1,"startY":2,"endX":3,"endY":4,"lineWidth":3}"##;

fn head(bytes: &[u8]) -> RequestHead {
    match RequestHead::parse(bytes) {
        Ok(Some((head, len))) => {
            assert!(len <= bytes.len());
            head
        }
        other => panic!("expected a complete head, got {other:?}"),
    }
}

/// The status `route` refuses with; `None` when it does not refuse.
fn refused(route: Route) -> Option<Status> {
    match route {
        Route::Reject(refusal) => Some(refusal.status()),
        _ => None,
    }
}

fn code(text: &str) -> ErrorCode {
    match protocol::parse(text, 1024) {
        Err(err) => {
            let encoded: Value = serde_json::from_str(err.encode().as_str()).expect("error message is JSON");
            assert_eq!(encoded["code"], err.code.as_str());
            err.code
        }
        Ok(message) => panic!("expected an error for {text:?}, got {message:?}"),
    }
}

fn draw(text: &str) -> Draw {
    match protocol::parse(text, 0) {
        Ok(ClientMessage::Draw(draw)) => draw,
        other => panic!("expected a draw for {text:?}, got {other:?}"),
    }
}

/// A draw with `value` as its startX.
fn draw_at(value: &str) -> String {
    format!(r##"{{"type":"draw","color":"#f00","startX":{value},"startY":2,"endX":0,"endY":0,"lineWidth":3}}"##)
}

#[test]
fn head_with_100_headers_parses() {
    let mut text = String::from("GET / HTTP/1.1\r\nHost: box\r\n");
    for i in 0..100 {
        text.push_str(&format!("X-H{i}: {i}\r\n"));
    }
    let head = head(format!("{text}\r\n").as_bytes());
    assert_eq!(head.headers.len(), 101);
    assert_eq!(http::route(&head, &[]), Route::App { upgrade: None });
}

#[test]
fn nul_and_control_bytes_in_a_head_are_malformed() {
    assert!(matches!(RequestHead::parse(b"GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n"), Err(HeadError::Malformed(_))));
    assert!(matches!(RequestHead::parse(b"GET /\0 HTTP/1.1\r\n\r\n"), Err(HeadError::Malformed(_))));
    assert!(matches!(RequestHead::parse(b"\0\0\0\0\r\n\r\n"), Err(HeadError::Malformed(_))));
}

#[test]
fn overlong_utf8_origin_is_replaced_and_refused() {
    let text = [UPGRADE.as_bytes(), b"Origin: http://box:8080\xc0\xaf\r\n\r\n"].concat();
    let head = head(&text);
    assert_eq!(head.header("origin"), Some("http://box:8080\u{fffd}\u{fffd}"));
    assert!(!http::origin_allowed(&head, &[]));
    assert_eq!(refused(http::route(&head, &[])), Some(Status::Forbidden));
}

#[test]
fn key_with_multibyte_characters_is_a_bad_request() {
    for key in ["dGhlIHNhbXBsZSBub25jZé==", "dGhlIHNhbXBsZSBub25j€==", "ééééééééééé=="] {
        let text = UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", key);
        assert_eq!(refused(http::route(&head(format!("{text}\r\n").as_bytes()), &[])), Some(Status::BadRequest));
    }
}

#[test]
fn head_read_in_pieces_is_partial_until_complete() {
    let text = format!("{UPGRADE}Origin: http://BOX:8080\r\n\r\nleftover");
    let complete = text.len() - "leftover".len();
    for end in 0..complete {
        assert!(matches!(RequestHead::parse(&text.as_bytes()[..end]), Ok(None)), "prefix of {end} bytes");
    }
    let (head, len) = RequestHead::parse(text.as_bytes()).unwrap().unwrap();
    assert_eq!(len, complete);
    assert!(matches!(http::route(&head, &[]), Route::App { upgrade: Some(_) }));
}

#[test]
fn bare_newlines_end_a_head() {
    let head = head(b"GET /healthz?x HTTP/1.0\nHost: box\n\n");
    assert_eq!((head.path.as_str(), head.query.as_deref(), head.version), ("/healthz", Some("x"), 0));
    assert_eq!(http::route(&head, &[]), Route::Health);
}

#[test]
fn odd_request_targets_and_methods_are_rejected() {
    let status = |text: &[u8]| refused(http::route(&head(text), &[]));
    // A URL target is routed on its path: the app answers `/ws` without an upgrade (426).
    assert_eq!(
        http::route(&head(b"GET http://box/ws HTTP/1.1\r\nHost: box\r\n\r\n"), &[]),
        Route::App { upgrade: None }
    );
    assert_eq!(status(b"GET box:80 HTTP/1.1\r\nHost: box\r\n\r\n"), Some(Status::BadRequest));
    assert_eq!(status(b"OPTIONS * HTTP/1.1\r\nHost: box\r\n\r\n"), Some(Status::MethodNotAllowed));
    assert_eq!(status(b"get / HTTP/1.1\r\nHost: box\r\n\r\n"), Some(Status::MethodNotAllowed));
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), Some(Status::BadRequest));
    let upgrade_by_head = UPGRADE.replacen("GET", "HEAD", 1);
    assert_eq!(
        refused(http::route(&head(format!("{upgrade_by_head}\r\n").as_bytes()), &[])),
        Some(Status::UpgradeRequired)
    );
}

#[test]
fn long_header_value_parses_and_answers_are_well_formed() {
    let text = format!("GET / HTTP/1.1\r\nCookie: {}\r\n\r\n", "c".repeat(http::MAX_HEAD_BYTES));
    assert_eq!(head(text.as_bytes()).header("cookie").map(str::len), Some(http::MAX_HEAD_BYTES));
    let reply = http::plain_status(Status::UpgradeRequired, true);
    let reply = std::str::from_utf8(&reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    assert!(reply.contains("Content-Length: 21\r\n") && reply.ends_with("Sec-WebSocket-Version: 13\r\n\r\n"));
}

#[test]
fn ten_thousand_digit_numbers() {
    let digits = "9".repeat(10_000);
    assert_eq!(code(&draw_at(&digits)), ErrorCode::InvalidJson);
    assert_eq!(code(&draw_at(&format!("-{digits}"))), ErrorCode::InvalidJson);
    let tiny = draw(&draw_at(&format!("0.{}1", "0".repeat(10_000))));
    assert_eq!(tiny.start_x, Number::from_f64(0.0).unwrap());
    let long = draw(&draw_at(&format!("1.{}", "0".repeat(10_000))));
    assert_eq!(long.start_x, Number::from_f64(1.0).unwrap());
}

#[test]
fn huge_and_odd_numbers() {
    assert_eq!(code(&draw_at("1e400")), ErrorCode::InvalidJson);
    assert_eq!(code(&draw_at("1e308")), ErrorCode::InvalidDraw);
    assert_eq!(code(&draw_at("18446744073709551615")), ErrorCode::InvalidDraw);
    assert_eq!(code(&draw_at("-9223372036854775809")), ErrorCode::InvalidDraw);
    assert_eq!(code(&draw_at("NaN")), ErrorCode::InvalidJson);
    assert_eq!(code(&draw_at("Infinity")), ErrorCode::InvalidJson);
    assert_eq!(code(&draw_at("0x10")), ErrorCode::InvalidJson);
    assert_eq!(draw(&draw_at("10000.0000000000001")).start_x, Number::from_f64(10_000.0).unwrap());
    assert_eq!(draw(&draw_at("1e4")).start_x, Number::from_f64(10_000.0).unwrap());
    assert_eq!(code(&draw_at("10000.001")), ErrorCode::InvalidDraw);
    let negative_zero = draw(&draw_at("-0"));
    assert!(negative_zero.encode().as_str().contains(r#""startX":-0.0,"#));
    assert_eq!(protocol::parse_journaled_draw(negative_zero.encode().as_str()).unwrap(), negative_zero);
}

#[test]
fn deeply_nested_json() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(code(&deep), ErrorCode::InvalidJson);
    let extra = |depth: usize| {
        format!(
            r##"{{"color":"#fff","startX":1,"startY":1,"endX":2,"endY":2,"x":{}1{}}}"##,
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    assert_eq!(code(&extra(200)), ErrorCode::InvalidJson);
    assert_eq!(code(&extra(40)), ErrorCode::InvalidDraw);
    assert!(matches!(protocol::parse(&extra(30), 0), Ok(ClientMessage::Draw(_))));
}

#[test]
fn nul_bytes_surrogates_and_byte_order_marks() {
    assert_eq!(code("{\"type\":\"clear\0\"}"), ErrorCode::InvalidJson);
    assert_eq!(code(r#"{"type":"clear\u0000"}"#), ErrorCode::UnknownType);
    assert_eq!(code(r#"{"type":"\ud800"}"#), ErrorCode::InvalidJson);
    assert_eq!(code("\u{feff}{\"type\":\"clear\"}"), ErrorCode::InvalidJson);
    assert_eq!(code("\0"), ErrorCode::InvalidJson);
    assert_eq!(code(""), ErrorCode::InvalidJson);
    let multibyte_name = format!(r#"{{"type":"{}"}}"#, "é".repeat(40));
    assert_eq!(code(&multibyte_name), ErrorCode::UnknownType);
    let err = protocol::parse(&multibyte_name, 0).unwrap_err();
    assert_eq!(err.message, format!("unknown type {:?}", "é".repeat(32)));
}

#[test]
fn duplicate_keys_keep_the_last() {
    assert_eq!(code(r##"{"type":"draw","type":"paint","color":"#fff"}"##), ErrorCode::UnknownType);
    let text = r##"{"color":"#zzz","color":"#fff","startX":1,"startY":1,"endX":2,"endY":2}"##;
    assert_eq!(draw(text).color, "#fff");
}

#[test]
fn message_framing_and_types() {
    assert_eq!(protocol::parse(" \t\r\n{\"type\":\"clear\"}\n ", 0), Ok(ClientMessage::Clear));
    assert_eq!(code(r#"{"type":"clear"}{}"#), ErrorCode::InvalidJson);
    assert_eq!(code(r#"{"type":null}"#), ErrorCode::InvalidMessage);
    assert_eq!(code("{}"), ErrorCode::UnknownType);
    assert_eq!(code(r#""draw""#), ErrorCode::InvalidJson);
    assert_eq!(code(r##"{"color":"#fff"}"##), ErrorCode::InvalidDraw);
}

#[test]
fn canvas_state_bounds() {
    let state = |id: &str, data: &str| format!(r#"{{"type":"canvasState","clientId":"{id}","data":"{data}"}}"#);
    let data = format!("{}{}", protocol::PNG_DATA_URL_PREFIX, "A".repeat(10));
    let ok = protocol::parse(&state(&"7".repeat(64), &data), data.len());
    assert_eq!(ok, Ok(ClientMessage::CanvasState { client_id: "7".repeat(64), data: data.clone() }));
    assert_eq!(protocol::parse(&state("7", &data), data.len() - 1).unwrap_err().code, ErrorCode::InvalidCanvasState);
    assert_eq!(protocol::parse(&state(&"7".repeat(65), &data), 1024).unwrap_err().code, ErrorCode::InvalidCanvasState);
    assert_eq!(protocol::parse(&state("", &data), 1024).unwrap_err().code, ErrorCode::InvalidCanvasState);
}

/// Found by the journal fuzz target: serde_json's default float parser is not correctly rounded, so about
/// one full-precision coordinate in thirteen came back one ULP off. With its `float_roundtrip` feature every
/// coordinate is relayed and journaled exactly as sent.
#[test]
fn full_precision_coordinates_round_trip_exactly() {
    for (text, sent) in FULL_PRECISION {
        let first = draw(&draw_at(text));
        assert_eq!(first.start_x.as_f64(), Some(sent));
        assert_eq!(protocol::parse_journaled_draw(first.encode().as_str()).unwrap(), first);
    }
    let shortest = draw_at("-3779.4045996915356");
    assert_eq!(draw(&shortest).encode().as_str(), shortest);
    let journal = format!("{}\n", r##"{"color":"#f00","startX":1,"startY":2,"endX":0,"endY":0.999999999999499999}"##);
    let (draws, clean) = recover_journal(journal.as_bytes(), Path::new("journal.jsonl"));
    assert!(clean);
    let recovered = protocol::parse_journaled_draw(draws[0].as_str()).unwrap();
    assert_eq!(recovered.end_y.as_f64(), Some(0.999_999_999_999_5));
}

#[test]
fn journal_clean_and_torn() {
    let path = Path::new("journal.jsonl");
    assert_eq!(recover_journal(b"", path), (Default::default(), true));
    assert_eq!(recover_journal(b"\n\n\n", path), (Default::default(), true));
    let (draws, clean) = recover_journal(format!("{DRAW}\n{DRAW}\n{{\"type\":\"dr").as_bytes(), path);
    assert_eq!((draws.len(), clean), (2, false));
    let (draws, clean) = recover_journal(DRAW.as_bytes(), path);
    assert_eq!((draws.len(), clean), (1, false));
    assert_eq!(draws[0].as_str(), DRAW);
}

#[test]
fn journal_corrupt_lines_are_skipped() {
    let path = Path::new("journal.jsonl");
    let corrupt = [
        b"\0\0\0\0".as_slice(),
        b"\xff\xfe{}",
        b"{\"type\":\"clear\"}",
        b"{\"type\":\"canvasState\",\"clientId\":\"7\",\"data\":\"data:image/png;base64,AAAA\"}",
        b"[1,2,3]",
        b"\xc0\xaf",
    ];
    for line in corrupt {
        let journal = [DRAW.as_bytes(), b"\n", line, b"\n", DRAW.as_bytes(), b"\n"].concat();
        let (draws, clean) = recover_journal(&journal, path);
        assert_eq!((draws.len(), clean), (2, false), "{line:?}");
    }
}

#[test]
fn journal_lines_come_back_normalized() {
    let path = Path::new("journal.jsonl");
    let bare = r##"{"color":"#000","endX":3,"endY":4,"startX":1,"startY":2}"##;
    let (draws, clean) = recover_journal(format!("{bare}\r\n\n{DRAW}\n").as_bytes(), path);
    assert!(clean);
    assert_eq!(draws.iter().map(|d| d.as_str()).collect::<Vec<_>>(), [DRAW, DRAW]);
}
