//! `board.png` (PROTOCOL.md v2 "Boards"): the board as it is now, 1280 x 720, opaque, white where
//! nothing is drawn and the strokes' colours where they are; named after the board (`view.png`
//! through a view link); `404` for a board nothing was drawn on; rendered from disk for a board that
//! is not loaded, without loading it; counted in `smolcanvas_exports_total`.

mod support;

use std::time::Duration;

use support::*;

const RED: &str = "#ff0000";
const BLUE: &str = "#0000ff";

/// The pixels a picture of the test's two strokes must have: the red one's, the blue one's if it
/// shows, and white around them.
fn check_strokes(png: &Image, blue_shows: bool, what: &str) {
    let (red, blue) = (rgb(RED), rgb(BLUE));
    for at in [(100, 100), (250, 100), (400, 100), (250, 93), (250, 107)] {
        png.assert_pixel(at, red, &format!("{what}: the red stroke"));
    }
    for at in [(640, 300), (640, 400), (640, 500), (800, 500), (900, 500)] {
        png.assert_pixel(at, if blue_shows { blue } else { WHITE }, &format!("{what}: the blue stroke"));
    }
    for at in [(0, 0), (1279, 719), (1279, 0), (0, 719), (250, 125), (250, 75), (70, 100), (430, 100), (640, 250)] {
        png.assert_pixel(at, WHITE, &format!("{what}: nothing drawn there"));
    }
}

#[test]
fn board_png_shows_the_strokes_on_white_loaded_or_not() {
    let server = Board::start("png", |config| {
        config.board_unload = Duration::from_millis(200);
        config.max_loaded_boards = 1;
    });
    let addr = server.addr();
    let path = "/b/pic/ws";
    smol::block_on(async {
        assert_eq!(status_of(addr, "/board.png").await, 404, "main: nothing was ever drawn on it");
        let (mut editor, welcome) = join_empty_v2(addr, path).await;
        let (mut watcher, _) = join_empty_v1(addr, path).await;
        assert_eq!(status_of(addr, "/b/pic/board.png").await, 404, "loaded, but nothing drawn yet");
        let view = welcome.view_path.clone().expect("viewPath");
        assert_eq!(status_of(addr, &format!("{view}/board.png")).await, 404);
        assert_eq!(metric(addr, "smolcanvas_exports_total").await, 0, "404s render nothing");

        let red = segment(RED, (100, 100), (400, 100), 20);
        let blue = [segment(BLUE, (640, 300), (640, 500), 10), segment(BLUE, (640, 500), (900, 500), 10)];
        editor.send(with_stroke(&red, 1)).await;
        for part in &blue {
            editor.send(with_stroke(part, 2)).await;
        }
        for expected in [&red, &blue[0], &blue[1]] {
            assert_eq!(watcher.next().await, *expected);
        }
        let png = fetch_png(addr, "/b/pic/board.png", "pic.png").await;
        check_strokes(&png, true, "loaded");
        let viewed = fetch_png(addr, &format!("{view}/board.png"), "view.png").await;
        assert_eq!(viewed, png, "the view link's picture is the board's");
        assert_eq!(metric(addr, "smolcanvas_exports_total").await, 2);

        editor.send(UNDO).await;
        assert_eq!(editor.next().await, undo_message(&format!("{}.2", welcome.client_id)));
        let undone = fetch_png(addr, "/b/pic/board.png", "pic.png").await;
        check_strokes(&undone, false, "after the undo");

        // Unloaded: rendered from disk, and nothing is loaded for it (not even past the cap).
        leave_all(addr, vec![editor, watcher]).await;
        wait_metric(addr, "smolcanvas_boards_loaded", 0).await;
        let stored = fetch_png(addr, "/b/pic/board.png", "pic.png").await;
        check_strokes(&stored, false, "unloaded");
        assert_eq!(metric(addr, "smolcanvas_boards_loaded").await, 0, "board.png loaded nothing");
        let (_other, _) = join_empty_v1(addr, "/b/other/ws").await;
        let stored = fetch_png(addr, "/b/pic/board.png", "pic.png").await;
        check_strokes(&stored, false, "unloaded");
        let viewed = fetch_png(addr, &format!("{view}/board.png"), "view.png").await;
        check_strokes(&viewed, false, "unloaded, through the view link");
        assert_eq!(metric(addr, "smolcanvas_boards_loaded").await, 1, "board.png loaded nothing");
        assert_eq!(upgrade_status(addr, path).await, 503, "pic is still not loaded: it would be one too many");
        assert_eq!(metric(addr, "smolcanvas_exports_total").await, 6);
    });
}

#[test]
fn board_png_of_a_cleared_board_is_white() {
    let server = Board::start("png-cleared", |_| {});
    let addr = server.addr();
    smol::block_on(async {
        let (mut editor, _) = join_empty_v1(addr, "/ws").await;
        let (mut watcher, _) = join_empty_v2(addr, "/ws").await;
        editor.send(segment(RED, (100, 100), (400, 100), 20)).await;
        editor.send(CLEAR).await;
        watcher.next().await;
        assert_eq!(watcher.next().await, CLEAR);
        let png = fetch_png(addr, "/board.png", "main.png").await;
        png.assert_pixel((250, 100), WHITE, "the cleared stroke");
        assert_eq!(fetch_png(addr, "/b/main/board.png", "main.png").await, png);
    });
}
