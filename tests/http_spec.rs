//! The request head as RFC 9112 and RFC 6455 have it, over raw TCP: header count, head size,
//! absolute-form targets, `Host` and a repeated `Sec-WebSocket-Key`.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use smolcanvas::RejectReason;
use smolcanvas::fuzzing::http::MAX_HEAD_BYTES;
use smolcanvas::{App, Connection, Request, Routed};

use support::*;

/// Sends every message back to its sender.
struct Echo;

impl App for Echo {
    type Endpoint = ();

    fn route(&self, request: &Request<'_>) -> Routed<()> {
        Routed::page_and_socket(request, "<!doctype html><title>echo</title>", ())
    }

    async fn serve(self: Arc<Self>, mut conn: Connection, _endpoint: ()) {
        while let Some(message) = conn.recv().await {
            if conn.send(message).await.is_err() {
                break;
            }
        }
    }
}

/// `count` header lines `X-Hnnnn: v` (11 bytes each).
fn short_headers(count: usize) -> String {
    (0..count).map(|i| format!("X-H{i:04}: v\r\n")).collect()
}

/// The status of the answer to a raw request head (a 101 included: the head is all it reads).
async fn status(addr: SocketAddr, request: &str) -> u16 {
    let mut raw = RawClient::connect(addr).await;
    raw.send(request.as_bytes()).await;
    raw.read_head().await.0
}

/// An upgrade request for `/ws` without its `Host` line.
fn upgrade_without_host(addr: SocketAddr, extra: &str) -> String {
    upgrade_request(addr, RFC_KEY, extra).replacen(&format!("Host: {addr}\r\n"), "", 1)
}

#[test]
fn a_hundred_small_headers_are_answered_normally() {
    let server = TestServer::start(config(), Echo);
    let addr = server.addr;
    smol::block_on(async {
        let headers = short_headers(100);
        let health = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n{headers}\r\n");
        assert!(health.len() < 1600, "a head of {} bytes", health.len());
        let response = http(addr, &health).await;
        assert_eq!((response.status, response.text().as_str()), (200, "ok"));

        let upgrade = upgrade_request(addr, RFC_KEY, &headers);
        assert!(upgrade.len() < 1600, "a head of {} bytes", upgrade.len());
        let mut raw = RawClient::connect(addr).await;
        raw.send(upgrade.as_bytes()).await;
        assert_eq!(raw.read_head().await.0, 101);
    });
}

#[test]
fn a_head_over_8_kib_gets_431_whatever_its_number_of_lines() {
    let server = TestServer::start(config(), Echo);
    let addr = server.addr;
    smol::block_on(async {
        let many_lines = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n{}\r\n", short_headers(9 * 1024 / 11));
        assert!(many_lines.len() > MAX_HEAD_BYTES);
        assert_eq!(status(addr, &many_lines).await, 431, "a head of many short lines");

        let one_line = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nX-Filler: {}\r\n\r\n", "a".repeat(9 * 1024));
        assert_eq!(status(addr, &one_line).await, 431, "a head of one long line");
        assert_eq!(server.metrics.rejected(RejectReason::HeadTooLarge), 2);
        assert_eq!(server.metrics.rejected(RejectReason::BadRequest), 0);
    });
}

#[test]
fn absolute_form_targets_route_on_their_path() {
    let server = TestServer::start(config(), Echo);
    let addr = server.addr;
    smol::block_on(async {
        for target in [
            format!("http://{addr}/healthz"),
            format!("HTTPS://{addr}/healthz?probe=1"),
            format!("Http://{addr}/healthz"),
        ] {
            let response = http(addr, &format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
            assert_eq!((response.status, response.text().as_str()), (200, "ok"), "GET {target}");
        }
        let page = http(addr, &format!("GET http://{addr} HTTP/1.1\r\nHost: {addr}\r\n\r\n")).await;
        assert_eq!(page.status, 200, "an absolute URL without a path is the page");

        let upgrade = upgrade_request(addr, RFC_KEY, "").replacen("GET /ws ", &format!("GET http://{addr}/ws "), 1);
        let mut raw = RawClient::connect(addr).await;
        raw.send(upgrade.as_bytes()).await;
        assert_eq!(raw.read_head().await.0, 101, "upgrade by an absolute-form target");
        raw.send(&masked_frame(TEXT, b"absolute")).await;
        assert_eq!(raw.read_frame().await.payload, b"absolute");

        // The target's authority stands in for Host (RFC 9112, section 3.2.2), also against Origin.
        let upgrade = upgrade_request(addr, RFC_KEY, &format!("Origin: http://{addr}\r\n"))
            .replacen("GET /ws ", &format!("GET http://{addr}/ws "), 1)
            .replacen(&format!("Host: {addr}"), "Host: elsewhere.example", 1);
        let mut raw = RawClient::connect(addr).await;
        raw.send(upgrade.as_bytes()).await;
        assert_eq!(raw.read_head().await.0, 101, "Origin matched against the target's authority");

        for target in
            [addr.to_string(), format!("ftp://{addr}/healthz"), "healthz".to_string(), "http:///healthz".into()]
        {
            let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            assert_eq!(status(addr, &request).await, 400, "GET {target}");
        }
    });
}

#[test]
fn host_is_required_once_in_http_1_1_and_at_most_once_in_http_1_0() {
    let server = TestServer::start(config(), Echo);
    let addr = server.addr;
    smol::block_on(async {
        assert_eq!(status(addr, "GET /healthz HTTP/1.1\r\n\r\n").await, 400, "HTTP/1.1 without Host");
        let twice = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nHost: {addr}\r\n\r\n");
        assert_eq!(status(addr, &twice).await, 400, "HTTP/1.1 with two Host headers");
        assert_eq!(status(addr, "GET /healthz HTTP/1.0\r\n\r\n").await, 200, "HTTP/1.0 without Host");
        let twice = format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\nHost: other.example\r\n\r\n");
        assert_eq!(status(addr, &twice).await, 400, "HTTP/1.0 with two Host headers");
        assert_eq!(server.metrics.rejected(RejectReason::BadRequest), 3);

        assert_eq!(status(addr, &upgrade_without_host(addr, "")).await, 400, "upgrade without Host");
        let twice = upgrade_request(addr, RFC_KEY, &format!("Host: {addr}\r\n"));
        assert_eq!(status(addr, &twice).await, 400, "upgrade with two Host headers");
        assert_eq!(server.metrics.rejected(RejectReason::BadRequest), 5);
    });
}

#[test]
fn a_repeated_websocket_key_is_a_bad_request() {
    let server = TestServer::start(config(), Echo);
    let addr = server.addr;
    smol::block_on(async {
        let other = "AAAAAAAAAAAAAAAAAAAAAA==";
        for extra in [format!("Sec-WebSocket-Key: {other}\r\n"), format!("Sec-WebSocket-Key: {RFC_KEY}\r\n")] {
            assert_eq!(status(addr, &upgrade_request(addr, RFC_KEY, &extra)).await, 400, "with {extra:?}");
        }
        assert_eq!(server.metrics.rejected(RejectReason::BadRequest), 2);
        assert_eq!(server.metrics.connections_total.load(std::sync::atomic::Ordering::Relaxed), 0);
    });
}
