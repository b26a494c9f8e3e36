//! The canvas app over loopback, keeping the board: a lone newcomer gets the board's draws in
//! order, a peer's snapshot reaches the newcomer it was asked for and never the board, and a
//! clear empties the board.

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
fn a_peers_snapshot_reaches_its_newcomer_and_never_the_board() {
    let board = Board::start("snapshot", peer_sync);
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

        // The server's own picture: every draw, and nothing of what a peer claimed the board was.
        let mut c = Peer::connect(board.addr()).await;
        assert_eq!(read_board(&mut c).await, (String::new(), (1..=4).map(draw).collect()));
    });
}

#[test]
fn clear_is_relayed_to_the_others_and_empties_the_board() {
    let board = Board::start("clear", peer_sync);
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
    });
}
