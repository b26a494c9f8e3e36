//! A WebSocket client over loopback (async-tungstenite), every step bounded by `WAIT`.

use std::net::SocketAddr;

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::handshake::client::{Request, Response};
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::StreamExt;
use smol::net::TcpStream;

use super::wait::bounded;

/// A WebSocket client over a smol TCP stream.
pub type Ws = WebSocketStream<TcpStream>;

/// An upgrade request for `ws://addr/ws`, ready for extra headers.
pub fn ws_request(addr: SocketAddr) -> Request {
    format!("ws://{addr}/ws").into_client_request().expect("a valid WebSocket URL")
}

/// The subprotocol a v2 canvas client offers.
pub const V2: &str = "smolcanvas.v2";

/// An upgrade request for `ws://addr{path}` (any path: `/b/NAME/ws`, `/v/TOKEN/ws`), offering
/// the `smolcanvas.v2` subprotocol when `v2` is set.
pub fn ws_request_to(addr: SocketAddr, path: &str, v2: bool) -> Request {
    let mut request = format!("ws://{addr}{path}").into_client_request().expect("a valid WebSocket URL");
    if v2 {
        request.headers_mut().insert("Sec-WebSocket-Protocol", V2.parse().expect("a valid header value"));
    }
    request
}

/// Connects and upgrades with `request`; the server's refusal comes back as `WsError::Http`.
pub async fn try_connect(addr: SocketAddr, request: Request) -> Result<(Ws, Response), WsError> {
    let stream = bounded("the TCP connection", TcpStream::connect(addr)).await?;
    bounded("the upgrade", async_tungstenite::client_async(request, stream)).await
}

/// Connects to `/ws`, failing the test if the upgrade is refused.
pub async fn connect(addr: SocketAddr) -> Ws {
    match try_connect(addr, ws_request(addr)).await {
        Ok((ws, _)) => ws,
        Err(err) => panic!("upgrade to ws://{addr}/ws failed: {err}"),
    }
}

/// The HTTP status of a refused upgrade; fails the test if it was accepted.
pub fn refused_status(result: Result<(Ws, Response), WsError>) -> u16 {
    match result {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(err) => panic!("expected an HTTP refusal, got {err}"),
        Ok(_) => panic!("expected an HTTP refusal, but the upgrade succeeded"),
    }
}

/// Sends one message.
pub async fn send(ws: &mut Ws, message: Message) {
    bounded("a send", ws.send(message)).await.expect("send a message");
}

/// The next thing the client reads, pings and pongs included; `None` once the stream is over.
pub async fn recv(ws: &mut Ws) -> Option<Result<Message, WsError>> {
    bounded("a WebSocket message", ws.next()).await
}

/// The next text or binary message, skipping pings and pongs.
pub async fn recv_data(ws: &mut Ws) -> Message {
    loop {
        match recv(ws).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => return message,
            other => panic!("expected a data message, got {other:?}"),
        }
    }
}

/// The next text message, skipping pings and pongs.
pub async fn recv_text(ws: &mut Ws) -> String {
    match recv_data(ws).await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The server's close frame, skipping pings and pongs.
pub async fn recv_close(ws: &mut Ws) -> CloseFrame {
    loop {
        match recv(ws).await {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Reads on after a close (which sends the client's answer) until the server ends the connection.
pub async fn expect_end(ws: &mut Ws) {
    if let Some(other) = recv(ws).await {
        panic!("expected the connection to end, got {other:?}");
    }
}

/// Closes from the client side and waits for the server's answer and the end of the connection.
pub async fn close(ws: &mut Ws) {
    bounded("sending a close", ws.close(None)).await.expect("send a close");
    match recv(ws).await {
        Some(Ok(Message::Close(_))) => expect_end(ws).await,
        other => panic!("expected the server to answer the close, got {other:?}"),
    }
}
