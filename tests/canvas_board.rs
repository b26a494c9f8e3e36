//! The canvas app over loopback, keeping the board: a lone newcomer gets the journaled draws in
//! order, a forwarded snapshot becomes the base image, a clear empties the board, and a journal at
//! its limit makes the server ask the oldest client for a snapshot to compact into.

mod support;

use support::*;

#[test]
fn lone_newcomer_gets_the_journaled_draws_in_order() {
    let board = Board::start("journal", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.send(r##"{"color":"#123","endX":2,"endY":2,"startX":1,"startY":1}"##).await;
        for seq in 1..=20 {
            a.send(draw(seq)).await;
        }
        leave_all(board.addr(), vec![a]).await;

        let (mut b, _) = join_alone(board.addr()).await;
        b.send(draw(21)).await;
        leave_all(board.addr(), vec![b]).await;

        let mut c = Peer::connect(board.addr()).await;
        let mut expected = vec![
            r##"{"type":"draw","color":"#123","startX":1,"startY":1,"endX":2,"endY":2,"lineWidth":3}"##.to_string(),
        ];
        expected.extend((1..=21).map(draw));
        assert_eq!(read_board(&mut c).await, (String::new(), expected));
    });
}

#[test]
fn forwarded_snapshot_becomes_the_board_base_image() {
    let board = Board::start("snapshot", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.send(draw(1)).await;
        a.send(draw(2)).await;
        assert_eq!(resync(&mut a).await, (String::new(), vec![draw(1), draw(2)]));
        let mut b = Peer::connect(board.addr()).await;
        let id_b = a.expect_request().await;
        a.send(draw(3)).await;
        a.send_state(&id_b, &png("snap")).await;
        assert_eq!(b.next().await, draw(3), "b gets the draws made while a painted its snapshot");
        assert_eq!(b.expect_state().await, (id_b, png("snap")));
        a.send(draw(4)).await;
        assert_eq!(b.next().await, draw(4));
        leave_all(board.addr(), vec![a, b]).await;

        let mut c = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut c).await, (png("snap"), vec![draw(3), draw(4)]));
        assert_eq!(metric(board.addr(), "smolcanvas_snapshot_bytes").await, png("snap").len() as u64);
    });
}

#[test]
fn clear_is_relayed_to_the_others_and_empties_the_board() {
    let board = Board::start("clear", |_| {});
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        a.send(draw(1)).await;
        assert_eq!(resync(&mut a).await, (String::new(), vec![draw(1)]));
        let (mut b, _) = join_via(board.addr(), &mut a, &png("before")).await;
        a.send(draw(2)).await;
        assert_eq!(b.next().await, draw(2));
        a.send(r#"{"type":"clear"}"#).await;
        assert_eq!(b.next().await, r#"{"type":"clear"}"#);
        b.send(draw(3)).await;
        assert_eq!(a.next().await, draw(3), "the clear was echoed to its sender");
        b.send(r#"{"type":"clear"}"#).await;
        leave_all(board.addr(), vec![a, b]).await;

        let mut c = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut c).await, (String::new(), vec![]));
        assert_eq!(metric(board.addr(), "smolcanvas_journal_draws").await, 0);
        assert_eq!(metric(board.addr(), "smolcanvas_snapshot_bytes").await, 0);
    });
}

#[test]
fn journal_limit_makes_the_server_ask_the_oldest_client_for_a_snapshot() {
    let board = Board::start("compaction", |c| c.journal_limit = 10);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A1")).await;
        for seq in 0..10 {
            b.send(draw(seq)).await;
        }
        for seq in 0..10 {
            assert_eq!(a.next().await, draw(seq));
        }
        assert_eq!(a.expect_request().await, "server");
        a.send(draw(100)).await;
        assert_eq!(b.next().await, draw(100), "b was asked for the snapshot too");
        a.send_state("server", &png("compacted")).await;
        leave_all(board.addr(), vec![a, b]).await;
        assert_eq!(metric(board.addr(), "smolcanvas_journal_draws").await, 1);

        let mut c = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut c).await, (png("compacted"), vec![draw(100)]));
        assert_eq!(metric(board.addr(), "smolcanvas_canvas_states_dropped_total").await, 0);
    });
}
