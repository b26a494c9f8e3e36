//! The server core over loopback: echo, heartbeat, limits, every HTTP answer, the upgrade and shutdown.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Bytes;
use smolcanvas::RejectReason;
use smolcanvas::{App, CloseCode, Connection, Message, Request, Routed, ServerConfig};

use support::*;

const PAGE: &str = "<!doctype html><title>echo</title><p>echo test page</p>";

/// Sends every text and binary message back to its sender.
struct Echo;

impl App for Echo {
    type Endpoint = ();

    fn route(&self, request: &Request<'_>) -> Routed<()> {
        Routed::page_and_socket(request, PAGE, ())
    }

    async fn serve(self: Arc<Self>, mut conn: Connection, _endpoint: ()) {
        while let Some(message) = conn.recv().await {
            if conn.send(message).await.is_err() {
                break;
            }
        }
    }
}

fn echo_server(config: ServerConfig) -> TestServer {
    TestServer::start(config, Echo)
}

async fn assert_echoes(ws: &mut Ws, message: Message) {
    send(ws, message.clone()).await;
    assert_eq!(recv_data(ws).await, message);
}

#[test]
fn echoes_text_binary_and_a_large_message() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut ws = connect(server.addr).await;
        assert_echoes(&mut ws, Message::text("hello, board")).await;
        assert_echoes(&mut ws, Message::binary(vec![0u8, 1, 2, 254, 255])).await;
        let large: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        assert_echoes(&mut ws, Message::binary(large)).await;
        close(&mut ws).await;
    });
}

#[test]
fn ping_is_answered_with_pong() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut ws = connect(server.addr).await;
        send(&mut ws, Message::Ping(Bytes::from_static(b"are you there"))).await;
        match recv(&mut ws).await {
            Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"are you there"),
            other => panic!("expected a pong, got {other:?}"),
        }
    });
}

#[test]
fn silent_client_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let server = echo_server(ServerConfig { idle_timeout: idle, ping_interval: Duration::from_secs(60), ..config() });
    smol::block_on(async {
        let start = Instant::now();
        let mut ws = connect(server.addr).await;
        let frame = recv_close(&mut ws).await;
        assert_eq!(frame.code, CloseCode::Away);
        assert_eq!(frame.reason, "idle timeout");
        assert!(start.elapsed() >= idle, "closed after {:?}, before the idle timeout", start.elapsed());
        expect_end(&mut ws).await;
    });
}

#[test]
fn pings_keep_an_answering_client_alive() {
    let idle = Duration::from_millis(500);
    let server =
        echo_server(ServerConfig { idle_timeout: idle, ping_interval: Duration::from_millis(100), ..config() });
    smol::block_on(async {
        let start = Instant::now();
        let mut ws = connect(server.addr).await;
        let mut pings = 0;
        while start.elapsed() < idle * 2 {
            match recv(&mut ws).await {
                Some(Ok(Message::Ping(_))) => pings += 1,
                other => panic!("expected a ping, got {other:?}"),
            }
        }
        assert!(pings >= 5, "only {pings} pings in {:?}", start.elapsed());
        assert_echoes(&mut ws, Message::text("still here")).await;
    });
}

#[test]
fn oversize_message_closes_with_1009() {
    let server = echo_server(ServerConfig { max_message_bytes: 1024, ..config() });
    smol::block_on(async {
        let mut ws = connect(server.addr).await;
        assert_echoes(&mut ws, Message::text("x".repeat(1024))).await;
        send(&mut ws, Message::text("x".repeat(2048))).await;
        assert_eq!(recv_close(&mut ws).await.code, CloseCode::Size);
    });
}

#[test]
fn unanswered_pings_end_in_the_idle_close() {
    let idle = Duration::from_millis(300);
    let server = echo_server(ServerConfig { idle_timeout: idle, ping_interval: Duration::from_millis(50), ..config() });
    smol::block_on(async {
        let start = Instant::now();
        let mut raw = RawClient::upgrade(server.addr).await;
        let mut pings = 0;
        let close = loop {
            match raw.read_frame().await {
                frame if frame.opcode == PING => pings += 1,
                frame => break frame,
            }
        };
        assert_eq!(close.close_code(), 1001);
        assert!(pings >= 1, "no ping before the idle close");
        assert!(start.elapsed() >= idle, "closed after {:?}, before the idle timeout", start.elapsed());
    });
}

#[test]
fn message_over_the_limit_in_small_fragments_closes_with_1009() {
    let server = echo_server(ServerConfig { max_message_bytes: 1024, ..config() });
    smol::block_on(async {
        let mut raw = RawClient::upgrade(server.addr).await;
        let part = [b'x'; 600];
        let mut bytes = masked_fragment(false, TEXT, &part);
        bytes.extend(masked_fragment(true, CONTINUATION, &part));
        raw.send(&bytes).await;
        assert_eq!(raw.read_frame().await.close_code(), 1009);
    });
}

#[test]
fn invalid_utf8_text_closes_with_1007() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut raw = RawClient::upgrade(server.addr).await;
        raw.send(&masked_frame(TEXT, &[b'o', b'k', 0xc3, 0x28])).await;
        assert_eq!(raw.read_frame().await.close_code(), 1007);
    });
}

#[test]
fn page_is_served_as_html() {
    let server = echo_server(config());
    smol::block_on(async {
        let page = request(server.addr, "GET", "/").await;
        assert_eq!(page.status, 200);
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(page.text(), PAGE);

        let head = request(server.addr, "HEAD", "/").await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some(PAGE.len().to_string().as_str()));
        assert!(head.body.is_empty(), "HEAD got a body: {:?}", head.text());
    });
}

#[test]
fn healthz_says_ok() {
    let server = echo_server(config());
    smol::block_on(async {
        let health = request(server.addr, "GET", "/healthz").await;
        assert_eq!(health.status, 200);
        assert_eq!(health.text(), "ok");
    });
}

#[test]
fn metrics_count_connections_messages_and_rejections() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut ws = connect(server.addr).await;
        assert_echoes(&mut ws, Message::text("hello")).await;
        assert_eq!(request(server.addr, "GET", "/nope").await.status, 404);
        let mut foreign = ws_request(server.addr);
        foreign.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
        assert_eq!(refused_status(try_connect(server.addr, foreign).await), 403);

        let metrics = request(server.addr, "GET", "/metrics").await;
        assert_eq!(metrics.status, 200);
        assert!(metrics.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
        let text = metrics.text();
        for line in [
            "smolcanvas_connections_open 1",
            "smolcanvas_connections_total 1",
            "smolcanvas_upgrades_rejected_total{reason=\"origin\"} 1",
            "smolcanvas_upgrades_rejected_total{reason=\"max_clients\"} 0",
            "smolcanvas_http_requests_total 2",
            "smolcanvas_messages_in_total 1",
            "smolcanvas_bytes_in_total 5",
            "smolcanvas_messages_out_total 1",
            "smolcanvas_bytes_out_total 5",
        ] {
            assert!(text.lines().any(|l| l == line), "/metrics lacks {line:?}:\n{text}");
        }
    });
}

#[test]
fn plain_http_rejections() {
    let server = echo_server(config());
    smol::block_on(async {
        for (method, path, status) in
            [("GET", "/ws", 426), ("GET", "/nope", 404), ("POST", "/", 405), ("DELETE", "/ws", 405)]
        {
            let response = request(server.addr, method, path).await;
            assert_eq!(response.status, status, "{method} {path}");
            assert_eq!(response.header("connection"), Some("close"), "{method} {path}");
        }
        let upgrade_required = request(server.addr, "GET", "/ws").await;
        assert_eq!(upgrade_required.header("upgrade"), Some("websocket"));
    });
}

#[test]
fn foreign_origin_is_forbidden() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut request = ws_request(server.addr);
        request.headers_mut().insert("origin", "https://evil.example".parse().unwrap());
        assert_eq!(refused_status(try_connect(server.addr, request).await), 403);
        assert_eq!(server.metrics.rejected(RejectReason::Origin), 1);
    });
}

#[test]
fn own_host_allowed_and_missing_origins_upgrade() {
    let allowed = "https://draw.example.org";
    let server = echo_server(ServerConfig { allow_origins: vec![allowed.to_string()], ..config() });
    smol::block_on(async {
        let own = format!("http://{}", server.addr);
        for origin in [Some(own.as_str()), Some(allowed), None] {
            let mut request = ws_request(server.addr);
            if let Some(origin) = origin {
                request.headers_mut().insert("origin", origin.parse().unwrap());
            }
            let (mut ws, _) = try_connect(server.addr, request)
                .await
                .unwrap_or_else(|err| panic!("origin {origin:?} refused: {err}"));
            assert_echoes(&mut ws, Message::text("hi")).await;
            close(&mut ws).await;
        }
    });
}

#[test]
fn upgrades_past_max_clients_get_503_until_a_slot_frees() {
    let server = echo_server(ServerConfig { max_clients: 2, ..config() });
    smol::block_on(async {
        let mut first = connect(server.addr).await;
        let mut second = connect(server.addr).await;
        assert_eq!(refused_status(try_connect(server.addr, ws_request(server.addr)).await), 503);
        assert_echoes(&mut second, Message::text("still served")).await;

        close(&mut first).await;
        let mut third = connect(server.addr).await;
        assert_echoes(&mut third, Message::text("a slot freed")).await;
        assert_eq!(server.metrics.rejected(RejectReason::MaxClients), 1);
    });
}

#[test]
fn upgrades_past_the_per_ip_cap_get_429_and_the_cap_is_off_by_default() {
    let server = echo_server(ServerConfig { max_clients_per_ip: 2, ..config() });
    smol::block_on(async {
        let mut first = connect(server.addr).await;
        let _second = connect(server.addr).await;
        assert_eq!(refused_status(try_connect(server.addr, ws_request(server.addr)).await), 429);
        close(&mut first).await;
        let mut third = connect(server.addr).await;
        assert_echoes(&mut third, Message::text("a slot of this address freed")).await;
        assert_eq!(server.metrics.rejected(RejectReason::PerIp), 1);
    });
    let uncapped = echo_server(config());
    smol::block_on(async {
        let mut clients = Vec::new();
        for _ in 0..5 {
            clients.push(connect(uncapped.addr).await);
        }
        assert_echoes(&mut clients[4], Message::text("five from one address")).await;
    });
}

#[test]
fn head_over_8_kib_gets_431() {
    let server = echo_server(config());
    smol::block_on(async {
        let filler = "a".repeat(9 * 1024);
        let response =
            http(server.addr, &format!("GET / HTTP/1.1\r\nHost: {}\r\nX-Filler: {filler}\r\n\r\n", server.addr)).await;
        assert_eq!(response.status, 431);
    });
}

#[test]
fn incomplete_head_is_closed_after_the_handshake_timeout() {
    let limit = Duration::from_millis(200);
    let server = echo_server(ServerConfig { handshake_timeout: limit, ..config() });
    smol::block_on(async {
        let start = Instant::now();
        let mut raw = RawClient::connect(server.addr).await;
        raw.send(b"GET / HTTP/1.1\r\nHost: slow\r\n").await;
        assert_eq!(raw.read_to_end().await, b"", "the server answered an incomplete head");
        assert!(start.elapsed() >= limit, "closed after {:?}", start.elapsed());
        assert_eq!(server.metrics.rejected(RejectReason::Timeout), 1);
    });
}

#[test]
fn accept_key_matches_rfc_6455() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut raw = RawClient::connect(server.addr).await;
        raw.send(upgrade_request(server.addr, RFC_KEY, "").as_bytes()).await;
        let (status, headers) = raw.read_head().await;
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(status, 101);
        assert_eq!(header("sec-websocket-accept"), Some(RFC_ACCEPT));
        assert_eq!(header("upgrade"), Some("websocket"));
    });
}

#[test]
fn shutdown_closes_clients_with_1001_and_run_returns() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut clients = vec![connect(server.addr).await, connect(server.addr).await];
        for ws in &mut clients {
            assert_echoes(ws, Message::text("before shutdown")).await;
        }
        server.wire.trip();
        for ws in &mut clients {
            let frame = recv_close(ws).await;
            assert_eq!(frame.code, CloseCode::Away);
            expect_end(ws).await;
        }
    });
    server.wait_stopped(WAIT).expect("run returns Ok after shutdown");
}

#[test]
fn shutdown_waits_a_bounded_time_for_a_client_that_never_answers() {
    let server = echo_server(ServerConfig { shutdown_grace: Duration::from_millis(200), ..config() });
    smol::block_on(async {
        let mut raw = RawClient::upgrade(server.addr).await;
        server.wire.trip();
        assert_eq!(raw.read_frame().await.close_code(), 1001);
        server.wait_stopped(WAIT).expect("run returns Ok after shutdown");
        assert_eq!(raw.read_to_end().await, b"");
    });
}

#[test]
fn shutdown_is_not_held_up_by_an_unfinished_request_head() {
    let grace = Duration::from_secs(3);
    let server = echo_server(ServerConfig { shutdown_grace: grace, ..config() });
    smol::block_on(async {
        let mut raw = RawClient::connect(server.addr).await;
        raw.send(b"GET /ws HTTP/1.1\r\nHost: slow\r\n").await;
        let mut ws = connect(server.addr).await;
        server.wire.trip();
        assert_eq!(recv_close(&mut ws).await.code, CloseCode::Away);
        expect_end(&mut ws).await;
        server.wait_stopped(grace / 2).expect("run returns Ok after shutdown");
        assert_eq!(raw.read_to_end().await, b"");
    });
}

#[test]
fn client_close_is_answered_then_tcp_closed() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut raw = RawClient::upgrade(server.addr).await;
        raw.send(&close_frame(1000, "bye")).await;
        let answer = raw.read_frame().await;
        assert_eq!(answer.close_code(), 1000);
        assert_eq!(raw.read_to_end().await, b"", "bytes after the close answer");
    });
}

#[test]
fn frame_pipelined_behind_the_upgrade_is_not_lost() {
    let server = echo_server(config());
    smol::block_on(async {
        let mut raw = RawClient::connect(server.addr).await;
        let mut bytes = upgrade_request(server.addr, RFC_KEY, "").into_bytes();
        bytes.extend(masked_frame(TEXT, b"right behind the head"));
        raw.send(&bytes).await;
        assert_eq!(raw.read_head().await.0, 101);
        let echo = raw.read_frame().await;
        assert_eq!((echo.opcode, &echo.payload[..]), (TEXT, &b"right behind the head"[..]));
    });
}
