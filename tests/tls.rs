//! TLS on the one port: wss:// relays draws with a certificate made at test time, plain HTTP on the TLS port is refused cleanly.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use async_tungstenite::WebSocketStream;
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_rustls::rustls::{ClientConfig, RootCertStore, crypto::ring};
use rustls_pki_types::ServerName;
use smol::net::TcpStream;
use smolcanvas::{Canvas, CanvasConfig, Message, TlsFiles};

use support::*;

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A server on a fresh data dir with a self-signed certificate for `localhost`.
struct TlsBoard {
    server: TestServer,
    connector: TlsConnector,
    _dir: TempDir,
}

fn start(name: &str) -> TlsBoard {
    let dir = TempDir::new(name);
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("certificate params")
        .self_signed(&key)
        .expect("a self-signed certificate");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");

    let mut server_config = config();
    server_config.tls = Some(TlsFiles { cert: cert_path, key: key_path });
    let canvas = CanvasConfig { data_dir: dir.path().join("board"), ..Default::default() };
    let server = TestServer::start(server_config, Canvas::open(canvas).expect("open the board"));

    let mut roots = RootCertStore::empty();
    roots.add(cert.der().clone()).expect("trust the test certificate");
    let client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsBoard { server, connector: TlsConnector::from(Arc::new(client)), _dir: dir }
}

async fn tls_connect(board: &TlsBoard) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(board.server.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("a server name");
    board.connector.connect(name, tcp).await.expect("TLS handshake")
}

async fn wss(board: &TlsBoard) -> Wss {
    let url = format!("wss://localhost:{}/ws", board.server.addr.port());
    let (ws, _) = async_tungstenite::client_async(url, tls_connect(board).await).await.expect("wss upgrade");
    ws
}

/// The next text message whose `type` is `kind`.
async fn next_of(ws: &mut Wss, kind: &str) -> String {
    bounded(kind, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) if text.contains(&format!(r#""type":"{kind}""#)) => {
                    return text.to_string();
                }
                Some(Ok(_)) => {}
                other => panic!("connection ended while waiting for {kind}: {other:?}"),
            }
        }
    })
    .await
}

#[test]
fn wss_client_draws_and_is_relayed() {
    let board = start("tls-relay");
    smol::block_on(async {
        let mut a = wss(&board).await;
        next_of(&mut a, "canvasState").await;
        let mut b = wss(&board).await;
        next_of(&mut b, "canvasState").await;
        a.send(Message::text(draw(7))).await.expect("send draw");
        let relayed = next_of(&mut b, "draw").await;
        assert!(relayed.starts_with(r#"{"type":"draw""#), "{relayed}");
        assert!(relayed.contains(r#""startY":7"#), "{relayed}");
    });
}

#[test]
fn https_serves_the_page_and_health() {
    let board = start("tls-https");
    smol::block_on(async {
        let mut stream = tls_connect(&board).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
        let mut answer = String::new();
        bounded("health answer", stream.read_to_string(&mut answer)).await.expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("ok"), "{answer}");
    });
}

#[test]
fn plain_http_on_the_tls_port_gets_400_and_the_server_carries_on() {
    let board = start("tls-plain");
    smol::block_on(async {
        let answer = plain_request(board.server.addr).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("HTTPS"), "{answer}");
        // Garbage that is neither TLS nor HTTP is also just closed.
        let mut junk = TcpStream::connect(board.server.addr).await.expect("connect");
        junk.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0]).await.expect("write");
        let mut rest = Vec::new();
        let _ = bounded("junk closed", junk.read_to_end(&mut rest)).await;
        // A real TLS client still gets through.
        let mut ws = wss(&board).await;
        next_of(&mut ws, "canvasState").await;
    });
}

async fn plain_request(addr: SocketAddr) -> String {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
    let mut answer = String::new();
    bounded("plain answer", tcp.read_to_string(&mut answer)).await.expect("read");
    answer
}
