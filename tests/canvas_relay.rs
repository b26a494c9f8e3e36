//! The canvas app over loopback, relaying: every client learns the client count as clients come
//! and go, and a draw reaches every other client, normalized, and never its sender.

mod support;

use support::*;

#[test]
fn client_count_reaches_every_client_on_join_and_leave() {
    let board = Board::start("count", peer_sync);
    smol::block_on(async {
        let mut a = Peer::connect(board.addr()).await;
        a.wait_count(1).await;
        let mut b = Peer::connect(board.addr()).await;
        for peer in [&mut a, &mut b] {
            peer.wait_count(2).await;
        }
        let mut c = Peer::connect(board.addr()).await;
        for peer in [&mut a, &mut b, &mut c] {
            peer.wait_count(3).await;
        }
        b.close().await;
        for peer in [&mut a, &mut c] {
            peer.wait_count(2).await;
        }
        let seen = (a.counts.len(), c.counts.len());
        a.send(draw(1)).await;
        while c.next().await != draw(1) {}
        c.send(draw(2)).await;
        while a.next().await != draw(2) {}
        assert!(a.counts[seen.0..].iter().all(|&n| n == 2), "a stale count reached a: {:?}", a.counts);
        assert!(c.counts[seen.1..].iter().all(|&n| n == 2), "a stale count reached c: {:?}", c.counts);
        drop(c);
        a.wait_count(1).await;
    });
}

#[test]
fn draw_is_relayed_normalized_to_every_other_client_and_not_echoed() {
    let board = Board::start("relay", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A1")).await;
        let (mut c, _) = join_via(board.addr(), &mut a, &png("A2")).await;

        a.send(draw(7)).await;
        assert_eq!(b.next().await, draw(7));
        assert_eq!(c.next().await, draw(7));

        let messy = r##"{"lineWidth":7.5,"endY":4,"note":"hi","startX":1.5,"color":"#ABC","startY":-2,"type":"draw","endX":3}"##;
        b.send(messy).await;
        let normalized =
            r##"{"type":"draw","color":"#ABC","startX":1.5,"startY":-2,"endX":3,"endY":4,"lineWidth":7.5}"##;
        assert_eq!(a.next().await, normalized, "a's first message after its own draw is b's draw");
        assert_eq!(c.next().await, normalized);

        c.send(r##"{"type":"draw","color":"#fff","startX":-10000,"startY":10000,"endX":0,"endY":0}"##).await;
        let defaulted =
            r##"{"type":"draw","color":"#fff","startX":-10000,"startY":10000,"endX":0,"endY":0,"lineWidth":3}"##;
        assert_eq!(a.next().await, defaulted);
        assert_eq!(b.next().await, defaulted, "b's first message after its own draw is c's draw");
        c.send(draw(8)).await;
        assert_eq!(a.next().await, draw(8));
        assert_eq!(b.next().await, draw(8));
    });
}

#[test]
fn seed_bare_draw_is_accepted() {
    let board = Board::start("bare", peer_sync);
    smol::block_on(async {
        let (mut a, _) = join_alone(board.addr()).await;
        let (mut b, _) = join_via(board.addr(), &mut a, &png("A")).await;
        a.send(r##"{"color":"#000000","endX":484,"endY":202,"startX":450,"startY":202}"##).await;
        assert_eq!(
            b.next().await,
            r##"{"type":"draw","color":"#000000","startX":450,"startY":202,"endX":484,"endY":202,"lineWidth":3}"##
        );
    });
}
