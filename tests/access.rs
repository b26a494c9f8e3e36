//! The optional access key: the page, `/ws` and `/metrics` need it, `/healthz` does not.

mod support;

use std::net::SocketAddr;

use async_tungstenite::tungstenite::http::HeaderValue;
use smolcanvas::{Canvas, CanvasConfig};

use support::*;

const KEY: &str = "correct-horse.battery_staple~1";

fn start(name: &str) -> (TestServer, TempDir) {
    let dir = TempDir::new(name);
    let mut server_config = config();
    server_config.access_key = Some(KEY.to_string());
    let canvas =
        Canvas::open(CanvasConfig { data_dir: dir.path().to_path_buf(), ..Default::default() }).expect("board");
    (TestServer::start(server_config, canvas), dir)
}

async fn get(addr: SocketAddr, path: &str, extra: &str) -> HttpResponse {
    http(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n")).await
}

#[test]
fn the_page_needs_the_key_and_the_key_becomes_an_http_only_cookie() {
    let (server, _dir) = start("access-page");
    let addr = server.addr;
    smol::block_on(async {
        let missing = get(addr, "/", "").await;
        assert_eq!(missing.status, 401);
        assert!(missing.text().contains("access key"), "{}", missing.text());
        assert_eq!(get(addr, "/?key=wrong", "").await.status, 401);
        assert_eq!(get(addr, &format!("/?key={KEY}x"), "").await.status, 401);

        let welcome = get(addr, &format!("/?key={KEY}"), "").await;
        assert_eq!(welcome.status, 303);
        assert_eq!(welcome.header("location"), Some("/"));
        let cookie = welcome.header("set-cookie").expect("a cookie").to_string();
        assert!(cookie.starts_with(&format!("smolcanvas_key={KEY};")), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        assert!(!cookie.contains("Secure"), "no Secure flag on plain HTTP: {cookie}");

        let page = get(addr, "/", &format!("Cookie: smolcanvas_key={KEY}\r\n")).await;
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")));
        let wrong_cookie = get(addr, "/", "Cookie: smolcanvas_key=nope\r\n").await;
        assert_eq!(wrong_cookie.status, 401);
    });
}

#[test]
fn the_socket_needs_the_key_from_the_cookie_or_the_query() {
    let (server, _dir) = start("access-ws");
    let addr = server.addr;
    smol::block_on(async {
        assert_eq!(refused_status(try_connect(addr, ws_request(addr)).await), 401);

        let mut with_cookie = ws_request(addr);
        let cookie = HeaderValue::from_str(&format!("smolcanvas_key={KEY}")).expect("header");
        with_cookie.headers_mut().insert("Cookie", cookie);
        let (mut ws, _) = try_connect(addr, with_cookie).await.expect("the cookie opens the socket");
        assert!(recv_text(&mut ws).await.contains("type"), "the canvas talks once the key is accepted");

        let query = format!("ws://{addr}/ws?key={KEY}");
        let request = async_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(query.as_str())
            .expect("request");
        assert!(try_connect(addr, request).await.is_ok(), "?key= works for clients without cookies");

        let wrong = format!("ws://{addr}/ws?key=nope");
        let request = async_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(wrong.as_str())
            .expect("request");
        assert_eq!(refused_status(try_connect(addr, request).await), 401);
    });
}

#[test]
fn metrics_need_the_key_and_healthz_stays_open() {
    let (server, _dir) = start("access-metrics");
    let addr = server.addr;
    smol::block_on(async {
        assert_eq!(get(addr, "/healthz", "").await.status, 200);
        let refused = get(addr, "/metrics", "").await;
        assert_eq!(refused.status, 401);
        assert!(refused.header("www-authenticate").is_some());
        let metrics = get(addr, "/metrics", &format!("Authorization: Bearer {KEY}\r\n")).await;
        assert_eq!(metrics.status, 200);
        assert!(
            metrics.text().contains(r#"smolcanvas_upgrades_rejected_total{reason="unauthorized"} 1"#),
            "{}",
            metrics.text()
        );
        assert_eq!(get(addr, &format!("/metrics?key={KEY}"), "").await.status, 200);
    });
}
