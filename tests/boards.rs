//! Many boards by URL (PROTOCOL.md, v2 "Boards" and "Strokes"): boards are isolated from each
//! other, names are checked before anything else, `/new` makes fresh names, the board limits
//! answer with their status codes, v2 draws carry stroke keys that v1 clients never see, and a
//! client's `canvasState` never becomes anybody's board.

mod support;

use smolcanvas::SyncMode;
use support::*;

const RED: &str = "#ff0000";
const BLUE: &str = "#0000ff";

#[test]
fn a_draw_never_leaves_its_board() {
    let server = Board::start("boards-isolation", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        // Board main answers at /ws and at /b/main/ws alike.
        let sockets =
            [("one", "/b/one/ws", "/b/one/ws"), ("two", "/b/two/ws", "/b/two/ws"), ("main", "/ws", "/b/main/ws")];
        let mut boards = Vec::new();
        for (name, v1_path, v2_path) in sockets {
            let (v1, v1_id) = join_empty_v1(addr, v1_path).await;
            let (v2, welcome) = join_empty_v2(addr, v2_path).await;
            assert_eq!(welcome.board.as_deref(), Some(name), "the welcome names the board");
            boards.push((v1, v1_id, v2, welcome));
        }
        let (_, main_welcome) = join_empty_v2(addr, "/ws").await;
        assert_eq!(main_welcome.board.as_deref(), Some("main"), "/ws is board main's socket");

        for (i, (v1, _, v2, _)) in boards.iter_mut().enumerate() {
            let seq = 10 * i as u32;
            v1.send(draw(seq + 1)).await;
            v2.send(with_stroke(&draw(seq + 2), 1)).await;
        }
        for (i, (v1, v1_id, v2, welcome)) in boards.iter_mut().enumerate() {
            let seq = 10 * i as u32;
            let got = v2.next().await;
            let key = stroke_key(&got);
            let (id, n) = split_key(&key);
            assert!(
                id == v1_id && n >= MADE_UP_STROKES,
                "a v1 draw's key is its drawer's id and a made-up number: {key}"
            );
            assert_eq!(got, v2_form(&draw(seq + 1), &key), "board {i}: the v2 client gets its own board's draw first");
            assert_eq!(v1.next().await, draw(seq + 2), "board {i}: the v1 client gets its own board's draw first");
            let _ = welcome;
        }
        for (i, (name, v1_path, v2_path)) in sockets.into_iter().enumerate() {
            let seq = 10 * i as u32;
            let expected = (String::new(), vec![draw(seq + 1), draw(seq + 2)]);
            assert_eq!(board_at(addr, v1_path).await, expected, "board {name} as a v1 newcomer sees it");
            assert_eq!(board_at(addr, v2_path).await, expected, "board {name} at its other path");
        }
        // Nothing from another board was queued behind those draws, and every count was this board's.
        for (i, (mut v1, _, mut v2, _)) in boards.into_iter().enumerate() {
            for peer in [&mut v1, &mut v2] {
                assert!(
                    peer.counts.iter().all(|&n| n <= 4),
                    "board {i}: counts {:?} include other boards",
                    peer.counts
                );
                peer.send(CANVAS_REQUEST).await;
                let (_, data) = peer.expect_state().await;
                assert_eq!(data, "", "board {i}");
            }
        }
        // The page is the same everywhere; `/` is board main's.
        let page = request(addr, "GET", "/").await;
        assert_eq!(page.status, 200);
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        for path in ["/index.html", "/b/one", "/b/main"] {
            let other = request(addr, "GET", path).await;
            assert_eq!((other.status, other.body == page.body), (200, true), "GET {path}");
        }
    });
}

#[test]
fn invalid_board_names_are_not_found_for_page_socket_and_png() {
    let server = Board::start("boards-bad-names", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        let long = format!("/b/{}", "a".repeat(65));
        let bad =
            ["/b/a.b", long.as_str(), "/b/..", "/b/.", "/b/%2e%2e", "/b/%61bc", "/b/a%20b", "/b/", "/b/a+b", "/b/a~b"];
        for board in bad {
            assert_eq!(status_of(addr, board).await, 404, "the page {board}");
            assert_eq!(upgrade_status(addr, &format!("{board}/ws")).await, 404, "the socket {board}/ws");
            assert_eq!(Peer::open(addr, &format!("{board}/ws"), true).await.err(), Some(404), "v2 on {board}/ws");
            assert_eq!(status_of(addr, &format!("{board}/board.png")).await, 404, "{board}/board.png");
        }
        for path in ["/b/ok/other", "/b/ok/ws/", "/b/ok/", "/b/ok/ws/x", "/b//ws", "/b/../ws", "/v/", "/v/ws"] {
            assert_eq!(status_of(addr, path).await, 404, "GET {path}");
            assert_eq!(upgrade_status(addr, path).await, 404, "upgrade {path}");
        }
        // An upgrade's headers and Origin are checked before its path is routed.
        let evil = try_upgrade(addr, "/b/a.b/ws", "Origin: http://evil.example\r\n").await;
        assert_eq!(evil.status, 403, "a foreign Origin, whatever the path");
        assert_eq!(try_upgrade(addr, "/b/ok/ws", "Origin: http://evil.example\r\n").await.status, 403);
        assert_eq!(status_of(addr, "/b/ok/ws").await, 426, "a socket path without upgrade headers");
        assert_eq!(metric(addr, "smolcanvas_boards_loaded").await, 0, "no invalid name loaded a board");
    });
}

#[test]
fn names_of_one_or_64_characters_with_dashes_and_underscores_work() {
    let server = Board::start("boards-good-names", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        for name in ["a".repeat(64), "-".to_string(), "_".to_string(), "Az09-_zZ".to_string(), "7".to_string()] {
            let page = request(addr, "GET", &format!("/b/{name}")).await;
            assert_eq!(page.status, 200, "the page of {name}");
            let socket = format!("/b/{name}/ws");
            let (mut editor, welcome) = join_empty_v2(addr, &socket).await;
            assert_eq!(welcome.board.as_deref(), Some(name.as_str()));
            assert_eq!(welcome.role, "editor");
            let (mut watcher, _) = join_empty_v1(addr, &socket).await;
            editor.send(with_stroke(&draw(1), 1)).await;
            assert_eq!(watcher.next().await, draw(1));
            fetch_png(addr, &format!("/b/{name}/board.png"), &format!("{name}.png")).await;
        }
        assert_eq!(metric(addr, "smolcanvas_boards_stored").await, 5);
    });
}

#[test]
fn new_redirects_to_a_fresh_random_board() {
    let server = Board::start("boards-new", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let response = request(addr, "GET", "/new").await;
            assert_eq!(response.status, 303, "GET /new");
            let location = response.header("location").expect("a Location header").to_string();
            let name = location.strip_prefix("/b/").unwrap_or_else(|| panic!("Location {location:?}"));
            assert_eq!(name.len(), 10, "a new name has 10 characters: {name:?}");
            assert!(
                name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "a new name is A-Z a-z 0-9 - _: {name:?}"
            );
            assert_eq!(status_of(addr, &location).await, 200, "the page at {location}");
            let (_, welcome) = join_empty_v2(addr, &format!("{location}/ws")).await;
            assert_eq!(welcome.board.as_deref(), Some(name));
            seen.push(location);
        }
        assert_ne!(seen[0], seen[1], "two calls of /new give two boards");
    });
}

#[test]
fn max_boards_refuses_an_upgrade_to_a_board_that_does_not_exist_yet() {
    let server = Board::start("boards-max-boards", |config| config.max_boards = 2);
    let addr = server.addr();
    smol::block_on(async {
        // Opening a board alone makes nothing: three may be open while none exists.
        let (mut one, _) = join_empty_v2(addr, "/b/one/ws").await;
        let (mut two, _) = join_empty_v1(addr, "/b/two/ws").await;
        let (_main, _) = join_empty_v1(addr, "/ws").await;
        assert_eq!(metric(addr, "smolcanvas_boards_stored").await, 0);
        let (mut one_watcher, _) = join_empty_v1(addr, "/b/one/ws").await;
        let (mut two_watcher, _) = join_empty_v1(addr, "/b/two/ws").await;
        one.send(with_stroke(&draw(1), 1)).await;
        assert_eq!(one_watcher.next().await, draw(1));
        two.send(draw(2)).await;
        assert_eq!(two_watcher.next().await, draw(2));
        wait_metric(addr, "smolcanvas_boards_stored", 2).await;

        let refused = try_upgrade(addr, "/b/three/ws", "").await;
        assert_eq!(refused.status, 503, "an upgrade to a new board while 2 exist");
        assert!(refused.text().contains("--max-boards"), "the body names the limit: {:?}", refused.text());
        assert_eq!(Peer::open(addr, "/b/three/ws", true).await.err(), Some(503), "v2 alike");
        // Boards that exist, and boards already loaded, stay open to newcomers.
        let (mut again, _) = Peer::join_v2(addr, "/b/one/ws").await;
        again.expect_state().await;
        assert_eq!(board_at(addr, "/b/two/ws").await, (String::new(), vec![draw(2)]));
        assert_eq!(board_at(addr, "/ws").await, (String::new(), vec![]), "main was loaded before the limit");
    });
}

#[test]
fn a_first_draw_past_max_boards_gets_board_limit_and_is_not_relayed() {
    let server = Board::start("boards-board-limit", |config| config.max_boards = 1);
    let addr = server.addr();
    smol::block_on(async {
        let (mut x, x_welcome) = join_empty_v2(addr, "/b/alpha/ws").await;
        let (mut z, z_id) = join_empty_v1(addr, "/b/alpha/ws").await;
        let (mut y, _) = join_empty_v1(addr, "/b/beta/ws").await;
        let (mut w, _) = join_empty_v1(addr, "/b/beta/ws").await;
        y.send(draw(1)).await;
        assert_eq!(w.next().await, draw(1), "the first board comes into being");
        wait_metric(addr, "smolcanvas_boards_stored", 1).await;

        x.send(with_stroke(&draw(2), 1)).await;
        x.expect_error("board_limit").await;
        z.send(draw(3)).await;
        z.expect_error("board_limit").await;
        // Nothing was relayed: each one's next message is the sync it asks for, still empty, and
        // the error its next draw gets (both come through the board, in order).
        for (peer, id) in [(&mut x, &x_welcome.client_id), (&mut z, &z_id)] {
            peer.send(CANVAS_REQUEST).await;
            peer.send(draw(4)).await;
            assert_eq!(peer.expect_state().await, (id.clone(), String::new()));
            peer.expect_error("board_limit").await;
        }
        assert_eq!(status_of(addr, "/b/alpha/board.png").await, 404, "alpha does not exist");
        assert_eq!(metric(addr, "smolcanvas_boards_stored").await, 1);
        assert_eq!(metric(addr, "smolcanvas_draws_relayed_total").await, 1);
    });
}

#[test]
fn a_clear_on_a_board_nothing_was_drawn_on_is_relayed_but_stores_nothing() {
    let server = Board::start("boards-clear-new", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        let (mut x, _) = join_empty_v2(addr, "/b/ghost/ws").await;
        let (mut z, _) = join_empty_v1(addr, "/b/ghost/ws").await;
        x.send(CLEAR).await;
        assert_eq!(z.next().await, CLEAR);
        z.send(CLEAR).await;
        assert_eq!(x.next().await, CLEAR);
        assert_eq!(status_of(addr, "/b/ghost/board.png").await, 404);
        assert_eq!(metric(addr, "smolcanvas_boards_stored").await, 0);
    });
}

#[test]
fn max_loaded_boards_refuses_an_upgrade_that_would_load_one_more() {
    let server = Board::start("boards-max-loaded", |config| {
        config.max_loaded_boards = 1;
        config.board_unload = std::time::Duration::from_millis(200);
    });
    let addr = server.addr();
    smol::block_on(async {
        let (one, _) = join_empty_v2(addr, "/b/one/ws").await;
        wait_metric(addr, "smolcanvas_boards_loaded", 1).await;
        let refused = try_upgrade(addr, "/b/two/ws", "").await;
        assert_eq!(refused.status, 503, "a second board while one is loaded");
        assert!(refused.text().contains("--max-loaded-boards"), "the body names the limit: {:?}", refused.text());
        assert_eq!(upgrade_status(addr, "/ws").await, 503, "main too");
        // The loaded board still takes newcomers.
        let (also_one, _) = join_empty_v1(addr, "/b/one/ws").await;
        leave_all(addr, vec![one, also_one]).await;
        wait_metric(addr, "smolcanvas_boards_loaded", 0).await;
        let (_two, _) = join_empty_v2(addr, "/b/two/ws").await;
        assert_eq!(metric(addr, "smolcanvas_boards_loaded").await, 1);
        assert_eq!(upgrade_status(addr, "/b/one/ws").await, 503, "now one is the board that would be one more");
    });
}

#[test]
fn v2_draws_carry_stroke_keys_and_v1_clients_get_the_v1_form() {
    let server = Board::start("boards-strokes", |_| {});
    let addr = server.addr();
    let path = "/b/keys/ws";
    smol::block_on(async {
        let (mut a, a_welcome) = join_empty_v2(addr, path).await;
        let (mut b, _) = join_empty_v2(addr, path).await;
        let (mut c, c_id) = join_empty_v1(addr, path).await;
        let a_id = a_welcome.client_id.clone();
        let five = [segment(RED, (10, 10), (20, 10), 4), segment(RED, (20, 10), (30, 12), 4)];
        let loose = segment(BLUE, (40, 40), (50, 50), 3);
        let top = segment(BLUE, (60, 60), (70, 70), 3);
        let zero = segment(RED, (80, 80), (90, 90), 3);
        for part in &five {
            a.send(with_stroke(part, 5)).await;
        }
        a.send(loose.clone()).await;
        a.send(with_stroke(&top, 2_147_483_647u32)).await;
        a.send(with_stroke(&zero, 0)).await;

        let five_key = format!("{a_id}.5");
        for part in &five {
            assert_eq!(b.next().await, v2_form(part, &five_key));
        }
        let loose_relay = b.next().await;
        let loose_key = stroke_key(&loose_relay);
        let (id, n) = split_key(&loose_key);
        assert!(id == a_id && n >= MADE_UP_STROKES, "a draw without stroke gets a made-up key: {loose_key}");
        assert_eq!(loose_relay, v2_form(&loose, &loose_key));
        assert_eq!(b.next().await, v2_form(&top, &format!("{a_id}.2147483647")));
        assert_eq!(b.next().await, v2_form(&zero, &format!("{a_id}.0")));
        for sent in five.iter().chain([&loose, &top, &zero]) {
            assert_eq!(c.next().await, *sent, "a v1 client gets the v1 form, without stroke");
        }

        // A v1 client's draws: each a stroke of its own, keyed by its clientId and a made-up number.
        let mut v1_keys = Vec::new();
        for seq in 1..=2 {
            c.send(draw(seq)).await;
            let relay = a.next().await;
            let key = stroke_key(&relay);
            assert_eq!(b.next().await, relay, "every v2 client gets the same key");
            let (id, n) = split_key(&key);
            assert!(id == c_id && n >= MADE_UP_STROKES, "a v1 draw's key: {key}");
            assert_eq!(relay, v2_form(&draw(seq), &key));
            v1_keys.push(key);
        }
        assert_ne!(v1_keys[0], v1_keys[1], "two draws without stroke are two strokes");

        // A newcomer's sync carries the same keys, in order.
        let (_, synced) = board_at_v2(addr, path).await;
        let keys: Vec<String> = synced.iter().map(|d| stroke_key(d)).collect();
        let mut expected =
            vec![five_key.clone(), five_key, loose_key, format!("{a_id}.2147483647"), format!("{a_id}.0")];
        expected.extend(v1_keys);
        assert_eq!(keys, expected);
    });
}

#[test]
fn a_stroke_that_is_not_an_integer_below_2_pow_31_makes_the_draw_invalid() {
    let server = Board::start("boards-bad-strokes", |_| {});
    let addr = server.addr();
    let path = "/b/bad-strokes/ws";
    smol::block_on(async {
        let (mut a, a_welcome) = join_empty_v2(addr, path).await;
        let (mut b, _) = join_empty_v1(addr, path).await;
        for bad in ["-1", "2147483648", "4294967296", "1.5", r#""3""#, "null", "true", "[1]"] {
            a.send(with_stroke(&draw(1), bad)).await;
            a.expect_error("invalid_draw").await;
        }
        a.send(with_stroke(&draw(2), 7)).await;
        assert_eq!(b.next().await, draw(2), "none of the invalid draws was relayed");
        let (_, synced) = board_at_v2(addr, path).await;
        assert_eq!(synced, vec![v2_form(&draw(2), &format!("{}.7", a_welcome.client_id))]);
    });
}

#[test]
fn hello_with_a_bad_author_gets_invalid_hello() {
    let server = Board::start("boards-bad-hello", |_| {});
    let addr = server.addr();
    let path = "/b/hello/ws";
    smol::block_on(async {
        let (mut a, _) = join_empty_v2(addr, path).await;
        let (mut b, _) = join_empty_v1(addr, path).await;
        let bad = [
            hello(&"a".repeat(15)),
            hello(&"a".repeat(65)),
            hello("sixteen.chars.no"),
            hello("sixteen chars no"),
            r#"{"type":"hello","author":1234567890123456}"#.to_string(),
            r#"{"type":"hello"}"#.to_string(),
        ];
        for text in bad {
            a.send(text).await;
            a.expect_error("invalid_hello").await;
        }
        // Good authors are taken silently: the next thing anyone sees is a's draw.
        a.send(hello(&"a".repeat(16))).await;
        a.send(hello(&format!("{}-", "Zz9".repeat(21)))).await;
        a.send(with_stroke(&draw(1), 1)).await;
        assert_eq!(b.next().await, draw(1));
    });
}

#[test]
fn a_canvas_state_from_a_client_is_dropped_and_counted_in_server_mode() {
    let server = Board::start("boards-forged", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        let (mut a, a_id) = join_empty_v1(addr, "/ws").await;
        let (mut b, b_id) = join_empty_v1(addr, "/ws").await;
        let (mut v, v_welcome) = join_empty_v2(addr, "/ws").await;
        a.send(draw(1)).await;
        assert_eq!(b.next().await, draw(1));
        v.next().await;
        let forged = png_data_url(&encode_png(8, 8, |_, _| [255, 0, 0]));
        a.send(canvas_state(&b_id, &forged)).await;
        a.send(canvas_state(&v_welcome.client_id, &forged)).await;
        a.send(canvas_state("nobody", &forged)).await;
        b.send(canvas_state(&a_id, &forged)).await;
        wait_metric(addr, "smolcanvas_canvas_states_dropped_total", 4).await;
        // Nobody got it: the next thing each one sees is a's next draw.
        a.send(draw(2)).await;
        assert_eq!(b.next().await, draw(2));
        let relayed = v.next().await;
        assert_eq!(relayed, v2_form(&draw(2), &stroke_key(&relayed)));
        // Newcomers get the server's own picture.
        assert_eq!(board_at(addr, "/ws").await, (String::new(), vec![draw(1), draw(2)]));
        let (data, draws) = board_at_v2(addr, "/b/main/ws").await;
        assert_eq!((data.as_str(), draws.len()), ("", 2));
        let png = fetch_png(addr, "/board.png", "main.png").await;
        for at in [(7, 0), (100, 100), (1000, 600)] {
            png.assert_pixel(at, WHITE, "the forged red picture is nowhere");
        }
    });
}

#[test]
fn with_sync_peers_a_peers_snapshot_reaches_its_newcomer_only() {
    let server = Board::start("boards-peers", |config| config.sync = SyncMode::Peers);
    let addr = server.addr();
    let path = "/b/peers/ws";
    smol::block_on(async {
        let (mut a, _) = join_empty_v1(addr, path).await;
        let mut b = Peer::connect_to(addr, path).await;
        let b_id = a.expect_request().await;
        let forged = png_data_url(&encode_png(8, 8, |_, _| [255, 0, 0]));
        a.send_state(&b_id, &forged).await;
        assert_eq!(b.expect_state().await, (b_id.clone(), forged.clone()), "the asked peer's answer is forwarded");
        a.send(draw(1)).await;
        assert_eq!(b.next().await, draw(1));
        // Unasked, it is dropped and counted.
        a.send_state(&b_id, &forged).await;
        wait_metric(addr, "smolcanvas_canvas_states_dropped_total", 1).await;
        a.send(draw(2)).await;
        assert_eq!(b.next().await, draw(2), "the unasked canvasState reached nobody");
        // A v2 newcomer always gets the server's picture, which the peer's snapshot never became.
        let (data, draws) = board_at_v2(addr, path).await;
        assert_eq!((data.as_str(), draws.len()), ("", 2));
        leave_all(addr, vec![a, b]).await;
        assert_eq!(board_at(addr, path).await, (String::new(), vec![draw(1), draw(2)]));
    });
}

#[test]
fn with_sync_peers_only_synced_v1_editors_are_asked() {
    let server = Board::start("boards-peers-asked", |config| config.sync = SyncMode::Peers);
    let addr = server.addr();
    let path = "/b/asked/ws";
    smol::block_on(async {
        // A v2 editor and a v1 viewer hold the board; neither is asked for a newcomer's picture.
        let (mut editor, welcome) = join_empty_v2(addr, path).await;
        let view = welcome.view_path.expect("viewPath");
        let (mut viewer, _) = join_empty_v1(addr, &format!("{view}/ws")).await;
        editor.send(with_stroke(&draw(1), 1)).await;
        assert_eq!(viewer.next().await, draw(1));
        let mut old = Peer::connect_to(addr, path).await;
        assert_eq!(old.expect_state().await.1, "", "the server answers: nobody it may ask is there");
        assert_eq!(old.next().await, draw(1));
        old.send(draw(2)).await;
        assert_eq!(viewer.next().await, draw(2), "the viewer was not asked");
        let relayed = editor.next().await;
        assert_eq!(relayed, v2_form(&draw(2), &stroke_key(&relayed)), "the v2 editor was not asked");
        // Now a synced v1 editor is there: it is the one asked.
        let mut newcomer = Peer::connect_to(addr, path).await;
        let id = old.expect_request().await;
        let picture = png_data_url(&encode_png(4, 4, |_, _| [0, 0, 255]));
        old.send_state(&id, &picture).await;
        assert_eq!(newcomer.expect_state().await, (id, picture));
    });
}

#[test]
fn a_message_over_16_kib_closes_a_client_nobody_asked_with_1009() {
    let server = Board::start("boards-16k", |_| {});
    let addr = server.addr();
    let path = "/b/big/ws";
    smol::block_on(async {
        let (mut small, _) = join_empty_v2(addr, path).await;
        let (mut big, _) = join_empty_v1(addr, path).await;
        let (mut watcher, _) = join_empty_v1(addr, path).await;
        // Just under the limit: a canvasState nobody asked for is dropped, the client stays.
        let envelope = canvas_state("nobody", &png("")).len();
        let under = canvas_state("nobody", &png(&"A".repeat(16 * 1024 - envelope)));
        assert_eq!(under.len(), 16 * 1024);
        small.send(under).await;
        wait_metric(addr, "smolcanvas_canvas_states_dropped_total", 1).await;
        small.send(with_stroke(&draw(1), 1)).await;
        assert_eq!(watcher.next().await, draw(1), "the client under the limit is still there");
        // Over it, in server mode (nobody is ever asked): closed with 1009.
        big.send(canvas_state("nobody", &png(&"A".repeat(16 * 1024)))).await;
        assert_eq!(big.expect_close().await.code, smolcanvas::CloseCode::Size);
    });
}
