//! The canvas app over loopback under a flood of draws: a client that reads too slowly is
//! evicted once its outbox is full, while a client that keeps up gets every draw, in order. The
//! test prints the relay latency before and during the flood.

mod support;

use std::time::{Duration, Instant};

use smolcanvas::{CloseCode, Message};

use support::*;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

#[test]
fn slow_reader_is_evicted_and_the_others_get_every_draw() {
    /// Draws the sender may be ahead of the normal reader, so that one never falls behind.
    const WINDOW: usize = 64;
    /// Draws sent after the eviction was seen.
    const AFTER: usize = 500;
    /// Gives up if nobody was evicted by then.
    const MAX_DRAWS: usize = 400_000;
    let board = Board::start("slow", |c| {
        peer_sync(c);
        // Every draw of the flood stays live: painting 30 000 strokes into the floor is not what this tests.
        c.undo_strokes = 1 << 20;
        c.outbox_bytes = 16 * 1024;
        c.rate_limit = 1e9;
        c.rate_burst = 1e9;
    });
    let addr = board.addr();
    smol::block_on(async {
        let (mut sender, _) = join_alone(addr).await;
        let (mut normal, _) = join_via(addr, &mut sender, &png("S1")).await;
        let (mut slow, _) = join_via(addr, &mut sender, &png("S2")).await;

        let mut before = Vec::new();
        for seq in 0..50 {
            let sent = Instant::now();
            sender.send(draw(seq)).await;
            assert_eq!(normal.next().await, draw(seq));
            before.push(sent.elapsed());
        }

        let first = 50;
        let mut sent_at = Vec::new();
        let mut during = Vec::new();
        let (mut sent, mut received, mut total) = (0, 0, MAX_DRAWS);
        let mut evicted_after = None;
        while received < total {
            while sent < total && sent - received < WINDOW {
                sender.send(draw((first + sent) as u32)).await;
                sent_at.push(Instant::now());
                sent += 1;
            }
            let text = normal.next().await;
            assert_eq!(draw_seq(&text) as usize, first + received, "the normal client missed a draw");
            during.push(sent_at[received].elapsed());
            received += 1;
            if evicted_after.is_none()
                && received % 1000 == 0
                && metric(addr, "smolcanvas_slow_clients_closed_total").await > 0
            {
                evicted_after = Some(sent);
                total = sent + AFTER;
            }
        }
        let Some(evicted_after) = evicted_after else {
            panic!("the slow client was not evicted after {MAX_DRAWS} draws");
        };
        println!(
            "relay latency median: {:?} before, {:?} during the flood ({total} draws; eviction seen after {evicted_after})",
            median(before),
            median(during)
        );
        assert_eq!(metric(addr, "smolcanvas_slow_clients_closed_total").await, 1, "only the slow client is evicted");

        let (mut got, mut closed) = (0, None);
        let end = loop {
            match recv(&mut slow.ws).await {
                Some(Ok(Message::Text(text))) if text.contains(r#""type":"draw""#) => got += 1,
                Some(Ok(Message::Text(_))) => {}
                Some(Ok(Message::Close(Some(frame)))) => closed = Some(frame),
                Some(Ok(_)) => {}
                Some(Err(err)) => break err.to_string(),
                None => break "end of stream".to_string(),
            }
        };
        println!("the slow client read {got} draws, then close frame {closed:?}, then {end}");
        if let Some(frame) = closed {
            assert_eq!((frame.code, frame.reason.as_str()), (CloseCode::Policy, "too slow: outbox full"));
        }
        assert!(got < first + total, "the slow client got all {got} draws");
        for peer in [&mut sender, &mut normal] {
            peer.wait_count(2).await;
        }
    });
}
