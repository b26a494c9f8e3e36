//! Viewers (PROTOCOL.md v2 "Viewers"): a client on `/v/TOKEN/ws` receives everything an editor
//! receives but the board's name, counts in `clientCount`, and every change it tries is answered
//! `read_only` and goes nowhere; an unknown token is a 404 everywhere; view links need no access key.

mod support;

use async_tungstenite::tungstenite::http::HeaderValue;
use smolcanvas::{Canvas, CanvasConfig};
use support::*;

const RED: &str = "#ff0000";
const BLUE: &str = "#0000ff";

/// The token in a `viewPath`, checked: at least 128 bits of URL-safe characters.
fn token_of(view_path: &str) -> &str {
    let token = view_path.strip_prefix("/v/").unwrap_or_else(|| panic!("viewPath is /v/TOKEN, got {view_path:?}"));
    assert!(token.len() >= 22, "a view token has at least 128 bits: {token:?}");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "URL-safe: {token:?}");
    token
}

#[test]
fn a_viewer_receives_everything_and_changes_nothing() {
    let server = Board::start("viewers-read-only", |_| {});
    let addr = server.addr();
    let board = "/b/gallery/ws";
    smol::block_on(async {
        let (mut editor, welcome) = join_empty_v2(addr, board).await;
        let view = welcome.view_path.clone().expect("an editor's welcome has viewPath");
        token_of(&view);
        let (mut watcher, _) = join_empty_v1(addr, board).await;
        let first = segment(RED, (100, 100), (200, 100), 8);
        editor.send(with_stroke(&first, 1)).await;
        assert_eq!(watcher.next().await, first);
        let key = |n: u32| format!("{}.{n}", welcome.client_id);

        let (mut viewer, seen) = Peer::join_v2(addr, &format!("{view}/ws")).await;
        assert_eq!(seen.role, "viewer");
        assert!(seen.board.is_none() && seen.view_path.is_none(), "a viewer learns nothing of the board: {}", seen.raw);
        assert_eq!(seen.raw.as_object().map(|o| o.len()), Some(3), "welcome has type, clientId, role: {}", seen.raw);
        assert_ne!(seen.client_id, welcome.client_id);
        assert_eq!(viewer.count(), Some(3), "the viewer counts itself");
        assert_eq!(viewer.expect_state().await, (seen.client_id.clone(), String::new()));
        assert_eq!(viewer.next().await, v2_form(&first, &key(1)), "the viewer's sync has the live strokes");
        // A v1 client on the view link is a viewer too.
        let mut old = Peer::connect_to(addr, &format!("{view}/ws")).await;
        old.expect_state().await;
        assert_eq!(old.next().await, first);
        editor.wait_count(4).await;
        watcher.wait_count(4).await;

        let attempts = [
            with_stroke(&segment(BLUE, (0, 0), (1280, 720), 50), 9),
            segment(BLUE, (0, 720), (1280, 0), 50),
            CLEAR.to_string(),
            UNDO.to_string(),
            REDO.to_string(),
            CANVAS_REQUEST.to_string(),
        ];
        // Twice over: more than the invalid-message budget, which read_only does not spend.
        for _ in 0..2 {
            for text in &attempts {
                viewer.send(text.clone()).await;
                viewer.expect_error("read_only").await;
            }
        }
        for text in &attempts {
            old.send(text.clone()).await;
            old.expect_error("read_only").await;
        }
        // None of it reached anyone: the next thing each one sees is an editor's next stroke.
        let second = segment(RED, (100, 200), (200, 200), 8);
        editor.send(with_stroke(&second, 2)).await;
        assert_eq!(watcher.next().await, second);
        assert_eq!(viewer.next().await, v2_form(&second, &key(2)), "viewers receive live draws");
        assert_eq!(old.next().await, second);
        let third = segment(RED, (100, 300), (200, 300), 8);
        watcher.send(third.clone()).await;
        let relayed = editor.next().await;
        assert_eq!(relayed, v2_form(&third, &stroke_key(&relayed)));
        assert_eq!(viewer.next().await, relayed);
        assert_eq!(old.next().await, third);

        assert_eq!(board_at(addr, board).await, (String::new(), vec![first, second, third]));
        assert_eq!(metric(addr, "smolcanvas_undos_total").await, 0);
        let png = fetch_png(addr, &format!("{view}/board.png"), "view.png").await;
        png.assert_pixel((640, 360), WHITE, "no viewer's blue cross");
        png.assert_pixel((150, 100), [255, 0, 0], "the editor's stroke");
        // Leaving viewers count down like anyone.
        viewer.close().await;
        old.close().await;
        editor.wait_count(2).await;
    });
}

#[test]
fn an_unknown_or_guessed_view_token_is_not_found() {
    let server = Board::start("viewers-unknown", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        let (mut editor, welcome) = join_empty_v2(addr, "/b/secret/ws").await;
        let view = welcome.view_path.clone().expect("viewPath");
        let token = token_of(&view).to_string();
        // Before anything is drawn: the page and the socket work, there is no picture yet.
        assert_eq!(status_of(addr, &view).await, 200);
        assert_eq!(status_of(addr, &format!("{view}/board.png")).await, 404);
        let (mut watcher, _) = Peer::join_v2(addr, &format!("{view}/ws")).await;
        watcher.expect_state().await;
        editor.send(with_stroke(&draw(1), 1)).await;
        watcher.next().await;
        fetch_png(addr, &format!("{view}/board.png"), "view.png").await;

        let last = token.chars().last().expect("a token");
        let flipped = format!("{}{}", &token[..token.len() - 1], if last == 'A' { 'B' } else { 'A' });
        let guesses = [
            flipped,
            "A".repeat(22),
            "abcdefghijklmnopqrstuv".to_string(),
            format!("{token}x"),
            token[1..].to_string(),
        ];
        for guess in guesses.iter().map(String::as_str).chain(["secret", "main", "short", "..", "a.b"]) {
            let view = format!("/v/{guess}");
            assert_eq!(status_of(addr, &view).await, 404, "the page {view}");
            assert_eq!(upgrade_status(addr, &format!("{view}/ws")).await, 404, "the socket {view}/ws");
            assert_eq!(Peer::open(addr, &format!("{view}/ws"), true).await.err(), Some(404), "v2 on {view}/ws");
            assert_eq!(status_of(addr, &format!("{view}/board.png")).await, 404, "{view}/board.png");
        }
    });
}

#[test]
fn view_links_need_no_access_key_and_editing_paths_do() {
    const KEY: &str = "viewers-test-access-key-1234";
    let dir = TempDir::new("viewers-key");
    let mut server_config = support::config();
    server_config.access_key = Some(KEY.to_string());
    let canvas =
        Canvas::open(CanvasConfig { data_dir: dir.path().to_path_buf(), ..Default::default() }).expect("board");
    let server = TestServer::start(server_config, canvas);
    let addr = server.addr;
    smol::block_on(async {
        for path in ["/", "/b/locked", "/new", "/board.png", "/b/locked/board.png", "/metrics"] {
            assert_eq!(status_of(addr, path).await, 401, "GET {path} without the key");
        }
        for path in ["/ws", "/b/locked/ws"] {
            assert_eq!(upgrade_status(addr, path).await, 401, "upgrade {path} without the key");
        }
        // The key in the query: a cookie, and back to the same path.
        let keyed = request(addr, "GET", &format!("/b/locked?key={KEY}")).await;
        assert_eq!((keyed.status, keyed.header("location")), (303, Some("/b/locked")), "?key= goes back to the page");
        let mut request = ws_request_to(addr, "/b/locked/ws", true);
        let bearer = HeaderValue::from_str(&format!("Bearer {KEY}")).expect("a header value");
        request.headers_mut().insert("Authorization", bearer);
        let (mut editor, _) = Peer::open_request("the editor", addr, request).await.expect("the key opens the board");
        let welcome = editor.read_welcome("/b/locked/ws").await;
        editor.expect_state().await;
        let view = welcome.view_path.expect("viewPath");

        assert_eq!(status_of(addr, &view).await, 200, "the view page needs no key");
        let (mut viewer, seen) = Peer::join_v2(addr, &format!("{view}/ws")).await;
        assert_eq!(seen.role, "viewer");
        viewer.expect_state().await;
        editor.send(with_stroke(&segment(RED, (10, 10), (300, 10), 10), 1)).await;
        viewer.next().await;
        let png = fetch_png(addr, &format!("{view}/board.png"), "view.png").await;
        png.assert_pixel((150, 10), [255, 0, 0], "the stroke, through the view link");
    });
}
