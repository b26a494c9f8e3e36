//! Smoke test of the `smolcanvas` binary as a black box, the way a Raspberry Pi runs it.
//!
//! The server command is `$SMOLCANVAS_SMOKE_CMD` (shell words, for example
//! `qemu-aarch64 -L /usr/aarch64-linux-gnu target/aarch64-unknown-linux-gnu/release/smolcanvas`,
//! as `.ci/cross` runs it for every cross-built binary), or the binary of this build when unset.
//! The test appends `--listen 127.0.0.1:0 --data-dir DIR --log-level info`, learns the port from
//! the `listening on` line, then checks `/healthz`, `/metrics`, two canvas clients (counts, the
//! server's fallback sync, a peer sync, a relayed draw that is not echoed) and a clean exit on
//! SIGTERM. Every wait is bounded, generously, for emulators.

#[path = "support/blackbox.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use serde_json::{Value, json};

use support::*;

/// Bound on the server's start, up to its `listening on` line (an emulator is slow to start), on
/// its exit after SIGTERM, and on every other wait for its stderr.
const STARTUP: Duration = Duration::from_secs(30);

/// Bound on any one step against the running server.
const STEP: Duration = Duration::from_secs(20);

/// Sends `GET path` over a fresh connection and reads the response up to the server's close.
async fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_within(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), STEP).await
}

#[test]
fn shell_words_split_like_a_shell() {
    let words = |line: &str| split_words(line).expect("a valid line");
    assert_eq!(words(""), Vec::<String>::new());
    assert_eq!(
        words("  qemu-arm   -L /usr/arm-linux-gnueabihf  bin "),
        ["qemu-arm", "-L", "/usr/arm-linux-gnueabihf", "bin"]
    );
    assert_eq!(words(r#"a'b c'd "e \"f\" \x" g\ h ''"#), ["ab cd", r#"e "f" \x"#, "g h", ""]);
    assert!(split_words("'open").is_err());
    assert!(split_words("\"open").is_err());
    assert!(split_words("end\\").is_err());
}

#[test]
fn binary_serves_the_canvas_and_stops_cleanly_on_sigterm() {
    let command = server_command();
    eprintln!("server command: {command:?}");
    let dir = TempDir::new("board");
    let mut server = Process::start_command(&command, dir.path(), STARTUP);
    let addr = server.addr;

    smol::block_on(async {
        let health = get(addr, "/healthz").await;
        assert_eq!((health.status, health.text().as_str()), (200, "ok"), "/healthz");
        let metrics = get(addr, "/metrics").await;
        assert_eq!(metrics.status, 200, "/metrics");
        assert!(metrics.text().contains("smolcanvas_"), "no smolcanvas metric in {:?}", metrics.text());

        let mut a = Peer::connect_as("client A", addr, STEP).await;
        a.wait_count(1).await;
        let state = a.expect("canvasState").await;
        assert_eq!(string(&state, "data"), "", "the server's fallback for a fresh board: {state}");
        let a_id = string(&state, "clientId").to_string();

        let bare: Value = json!({"color": "#ff8000", "startX": 10, "startY": 20.5, "endX": 300, "endY": 400});
        a.send(&bare.to_string()).await;

        // The server answers every sync from its own picture of the board: here, a's stroke.
        let mut b = Peer::connect_as("client B", addr, STEP).await;
        let state = b.expect("canvasState").await;
        let b_id = string(&state, "clientId").to_string();
        assert_ne!(a_id, b_id, "two clients with one id");
        assert_eq!(string(&state, "data"), "", "a board of one live stroke has a white floor");
        assert_relayed(&b.expect("draw").await, &bare);
        a.wait_count(2).await;
        b.wait_count(2).await;

        let full: Value =
            json!({"type": "draw", "color": "#00f", "startX": 1, "startY": 2, "endX": 3, "endY": 4, "lineWidth": 5});
        b.send(&full.to_string()).await;
        let next = a.expect("draw").await;
        assert_ne!(next["color"], bare["color"], "client A got its own draw back: {next}");
        assert_relayed(&next, &full);

        server.signal("-TERM");
        for peer in [&mut a, &mut b] {
            assert_eq!(peer.expect_close().await.code, CloseCode::Away, "the close code at shutdown");
            peer.read_until_end().await;
        }
    });

    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");
    let bad: Vec<_> =
        server.full_log().iter().filter(|line| line.contains("panicked") || line.contains(" ERROR ")).collect();
    assert!(bad.is_empty(), "errors in the log: {bad:#?}");
}
