//! Broadcasts written straight to the receivers' sockets (the fast path of
//! `Outbox::push_frame`), checked byte by byte by raw clients that parse
//! every frame: many receivers get the same frames in order; a receiver
//! whose socket fills gets the rest intact once it reads, or is evicted
//! past its outbox bound; pongs, pings and the close handshake racing with
//! broadcasts never tear or interleave a frame.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use smolcanvas::{Canvas, CanvasConfig, ServerConfig};

use support::*;

/// Reads frames until `want` draws have arrived; checks that each frame is a
/// whole text, ping or pong frame and that the draws come in order from `first`.
async fn read_draws(raw: &mut RawClient, first: u32, want: u32) {
    let mut next = first;
    while next < first + want {
        let frame = raw.read_frame().await;
        match frame.opcode {
            TEXT => {
                let text = String::from_utf8(frame.payload).expect("a text frame is UTF-8");
                if text.contains(r#""type":"draw""#) {
                    assert_eq!(draw_seq(&text), next, "draws out of order or missing");
                    next += 1;
                }
            }
            PING | PONG => {}
            other => panic!("unexpected frame with opcode {other}"),
        }
    }
}

/// A raw client joined to the board through `helper`'s sync.
async fn raw_join(addr: SocketAddr, helper: &mut Peer) -> RawClient {
    let mut raw = RawClient::upgrade(addr).await;
    let id = helper.expect_request().await;
    helper.send_state(&id, &png("F")).await;
    loop {
        let frame = raw.read_frame().await;
        assert_eq!(frame.opcode, TEXT);
        if String::from_utf8_lossy(&frame.payload).contains(r#""type":"canvasState""#) {
            return raw;
        }
    }
}

fn unlimited(c: &mut CanvasConfig) {
    peer_sync(c);
    // Every draw stays live: painting floods into the floor is not what these tests measure.
    c.undo_strokes = 1 << 20;
    c.rate_limit = 1e9;
    c.rate_burst = 1e9;
}

#[test]
fn many_receivers_get_every_broadcast_whole_and_in_order() {
    const RECEIVERS: usize = 20;
    const DRAWS: u32 = 500;
    let board = Board::start("fanout-many", unlimited);
    let addr = board.addr();
    smol::block_on(async {
        let (mut sender, _) = join_alone(addr).await;
        let mut receivers = Vec::new();
        for _ in 0..RECEIVERS {
            receivers.push(raw_join(addr, &mut sender).await);
        }
        for seq in 0..DRAWS {
            sender.send(draw(seq)).await;
        }
        for raw in &mut receivers {
            read_draws(raw, 0, DRAWS).await;
        }
        // Every delivery is counted, direct or queued.
        let out = metric(addr, "smolcanvas_messages_out_total").await;
        assert!(out >= u64::from(DRAWS) * RECEIVERS as u64, "{out} messages out");
    });
}

#[test]
fn a_receiver_whose_socket_fills_gets_the_rest_intact_once_it_reads() {
    // Enough to fill the loopback socket buffers many times over (~100 bytes a
    // draw), so direct sends hit a full socket, leave frame tails behind and
    // queue; the outbox bound is far above it, so nobody is evicted.
    const DRAWS: u32 = 60_000;
    let board = Board::start("fanout-fill", |c| {
        unlimited(c);
        c.outbox_bytes = 64 << 20;
    });
    let addr = board.addr();
    smol::block_on(async {
        let (mut sender, _) = join_alone(addr).await;
        let (mut reader, _) = join_via(addr, &mut sender, &png("R")).await;
        let mut stalled = raw_join(addr, &mut sender).await;
        for seq in 0..DRAWS {
            sender.send(draw(seq)).await;
            // The normal reader keeps up, so the sender is never the bottleneck.
            if seq % 64 == 63 {
                for want in seq - 63..=seq {
                    assert_eq!(draw_seq(&reader.next().await), want);
                }
            }
        }
        assert_eq!(metric(addr, "smolcanvas_slow_clients_closed_total").await, 0);
        read_draws(&mut stalled, 0, DRAWS).await;
    });
}

#[test]
fn a_receiver_past_its_outbox_bound_is_evicted_with_whole_frames() {
    const MAX_DRAWS: u32 = 400_000;
    let board = Board::start("fanout-evict", |c| {
        unlimited(c);
        c.outbox_bytes = 16 * 1024;
    });
    let addr = board.addr();
    smol::block_on(async {
        let (mut sender, _) = join_alone(addr).await;
        let (mut reader, _) = join_via(addr, &mut sender, &png("R")).await;
        let mut stalled = raw_join(addr, &mut sender).await;
        let mut sent = 0;
        while sent < MAX_DRAWS {
            for _ in 0..64 {
                sender.send(draw(sent)).await;
                sent += 1;
            }
            for want in sent - 64..sent {
                assert_eq!(draw_seq(&reader.next().await), want);
            }
            if sent % 4096 == 0 && metric(addr, "smolcanvas_slow_clients_closed_total").await > 0 {
                break;
            }
        }
        assert_eq!(metric(addr, "smolcanvas_slow_clients_closed_total").await, 1, "the stalled client is evicted");
        // Whatever reached the socket is whole frames: draws in order, then at most a close 1008.
        let (mut next, mut closed) = (0, None);
        loop {
            let frame = stalled.read_frame_or_end().await;
            let Some(frame) = frame else { break };
            assert!(closed.is_none(), "a frame after the close frame: {frame:?}");
            match frame.opcode {
                TEXT => {
                    let text = String::from_utf8(frame.payload).expect("UTF-8");
                    if text.contains(r#""type":"draw""#) {
                        assert_eq!(draw_seq(&text), next, "draws out of order or missing");
                        next += 1;
                    }
                }
                CLOSE => closed = Some(frame.close_code()),
                PING | PONG => {}
                other => panic!("unexpected opcode {other}"),
            }
        }
        assert!(next < sent, "the evicted client got all {sent} draws");
        if let Some(code) = closed {
            assert_eq!(code, 1008);
        }
    });
}

#[test]
fn pings_pongs_and_the_close_racing_with_broadcasts_never_tear_a_frame() {
    const DRAWS: u32 = 20_000;
    let dir = TempDir::new("fanout-race");
    let canvas = CanvasConfig { data_dir: dir.path().to_path_buf(), ..Default::default() };
    let mut canvas = canvas;
    unlimited(&mut canvas);
    // Server pings every 5 ms race with the broadcasts too.
    let config = ServerConfig { ping_interval: Duration::from_millis(5), ..config() };
    let server = TestServer::start(config, Canvas::open(canvas).expect("open the board"));
    let addr = server.addr;
    smol::block_on(async {
        let (mut sender, _) = join_alone(addr).await;
        let mut raw = raw_join(addr, &mut sender).await;
        let flood = async {
            for seq in 0..DRAWS {
                sender.send(draw(seq)).await;
            }
            sender
        };
        // Meanwhile the raw client sends pings (each answered with a pong
        // written by its connection task), then a close; it reads everything.
        let pings = async {
            for i in 0..200u32 {
                raw.send(&masked_frame(PING, &i.to_be_bytes())).await;
                smol::future::yield_now().await;
            }
            raw.send(&close_frame(1000, "bye")).await;
            let (mut next, mut closed, mut frames) = (0, false, 0);
            while let Some(frame) = raw.read_frame_or_end().await {
                frames += 1;
                assert!(!closed, "a frame after the close frame: {frame:?}");
                match frame.opcode {
                    TEXT => {
                        let text = String::from_utf8(frame.payload).expect("UTF-8");
                        if text.contains(r#""type":"draw""#) {
                            assert_eq!(draw_seq(&text), next, "draws out of order or missing");
                            next += 1;
                        }
                    }
                    PING | PONG => assert!(frame.payload.len() <= 125),
                    CLOSE => closed = true,
                    other => panic!("unexpected opcode {other}"),
                }
            }
            assert!(closed, "no close frame after {frames} frames");
            next
        };
        let (_sender, got) = smol::future::zip(flood, pings).await;
        println!("the closing client read {got} draws before the close");
    });
    server.wire.trip();
    server.wait_stopped(WAIT).expect("the server stops cleanly");
}
