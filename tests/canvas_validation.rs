//! The canvas app over loopback, refusing: each invalid message gets its error code and goes no
//! further; a binary frame, a flood past the rate limit and repeated invalid messages close the
//! connection with their codes, while answering syncs never counts against the rate limit.

mod support;

use smolcanvas::{CloseCode, Message};

use support::*;

/// Sends each bad message from `a`, expects the error code, then a marker draw that `b` must get next.
async fn assert_rejected(a: &mut Peer, b: &mut Peer, cases: &[(&str, String)]) {
    for (i, (code, text)) in cases.iter().enumerate() {
        a.send(text.as_str()).await;
        a.expect_error(code).await;
        let marker = draw(100 + i as u32);
        a.send(marker.as_str()).await;
        assert_eq!(b.next().await, marker, "b got something else than the marker after {text}");
    }
}

#[test]
fn each_invalid_draw_gets_invalid_draw_and_is_not_relayed() {
    let board = Board::start("invalid-draw", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A")).await;
        let ok = r#""startX":1,"startY":2,"endX":3,"endY":4"#;
        let bad = |s: String| ("invalid_draw", s);
        let cases = [
            bad(format!(r#"{{"type":"draw","color":"red",{ok}}}"#)),
            bad(format!(r##"{{"color":"#12345g",{ok}}}"##)),
            bad(r##"{"type":"draw","color":"#fff","startX":10001,"startY":2,"endX":3,"endY":4}"##.into()),
            bad(r##"{"type":"draw","color":"#fff","startX":1,"startY":2,"endX":3,"endY":-10000.5}"##.into()),
            bad(r##"{"type":"draw","color":"#fff","startX":1,"startY":"2","endX":3,"endY":4}"##.into()),
            bad(r##"{"type":"draw","color":"#fff","startX":1,"startY":2,"endY":4}"##.into()),
            bad(format!(r##"{{"type":"draw","color":"#fff",{ok},"lineWidth":101}}"##)),
            bad(format!(r##"{{"type":"draw","color":"#fff",{ok},"lineWidth":0.4}}"##)),
            bad(format!(r##"{{"type":"draw","color":"#fff",{ok},"note":"{}"}}"##, "x".repeat(65))),
        ];
        assert_rejected(&mut a, &mut b, &cases).await;
        assert_eq!(metric(board.addr(), "smolcanvas_invalid_messages_total").await, cases.len() as u64);
    });
}

#[test]
fn bad_json_unknown_type_and_other_invalid_messages_get_their_codes() {
    let board = Board::start("invalid-other", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A")).await;
        let cases = [
            ("invalid_json", "{".to_string()),
            ("invalid_json", "[1,2]".into()),
            ("invalid_json", r#""draw""#.into()),
            ("unknown_type", r#"{"type":"paint"}"#.into()),
            ("unknown_type", r#"{"startX":1}"#.into()),
            ("invalid_message", r#"{"type":7}"#.into()),
            ("invalid_message", format!(r#"{{"type":"clear","note":"{}"}}"#, "x".repeat(65))),
            ("invalid_canvas_state", canvas_state("1", "data:image/jpeg;base64,AAAA")),
        ];
        assert_rejected(&mut a, &mut b, &cases).await;
    });
}

#[test]
fn binary_frame_closes_with_1003() {
    let board = Board::start("binary", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.ws.send(Message::binary(vec![1u8, 2, 3])).await.expect("send a binary frame");
        assert_eq!(a.expect_close().await.code, CloseCode::Unsupported);
        expect_end(&mut a.ws).await;
        assert_eq!(metric(board.addr(), "smolcanvas_binary_closed_total").await, 1);
    });
}

#[test]
fn exceeding_the_rate_limit_closes_with_1008() {
    let board = Board::start("rate", |c| {
        peer_sync(c);
        c.rate_limit = 5.0;
        c.rate_burst = 5.0;
    });
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        for seq in 0..30 {
            a.send(draw(seq)).await;
        }
        let frame = a.expect_close().await;
        assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Policy, "rate limit exceeded"));
        expect_end(&mut a.ws).await;
        assert_eq!(metric(board.addr(), "smolcanvas_rate_limited_closed_total").await, 1);
    });
}

#[test]
fn answering_many_syncs_does_not_count_against_the_rate_limit() {
    let board = Board::start("rate-answers", |c| {
        peer_sync(c);
        c.rate_limit = 5.0;
        c.rate_burst = 5.0;
    });
    smol::block_on(async {
        let (mut oldest, _) = join_alone(board.addr()).await;
        let mut newcomers = Vec::new();
        for _ in 0..12 {
            let mut newcomer = Peer::connect(board.addr()).await;
            let id = oldest.expect_request().await;
            oldest.send_state(&id, &png("AAAA")).await;
            newcomer.expect_state().await;
            newcomers.push(newcomer);
        }
        oldest.send(draw(1)).await;
        assert_eq!(draw_seq(&newcomers[0].next().await), 1, "the oldest client is still connected");
        assert_eq!(metric(board.addr(), "smolcanvas_rate_limited_closed_total").await, 0);
    });
}

#[test]
fn repeated_invalid_messages_close_with_1008() {
    let board = Board::start("invalid-close", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        for _ in 0..15 {
            a.send("{").await;
        }
        let mut errors = 0;
        let frame = loop {
            match recv(&mut a.ws).await {
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"error""#) => errors += 1,
                Some(Ok(Message::Close(Some(frame)))) => break frame,
                Some(Ok(_)) => {}
                other => panic!("expected errors and then a close, got {other:?}"),
            }
        };
        assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Policy, "too many invalid messages"));
        assert!((10..15).contains(&errors), "{errors} errors before the close");
        expect_end(&mut a.ws).await;
        assert_eq!(metric(board.addr(), "smolcanvas_invalid_closed_total").await, 1);
    });
}
