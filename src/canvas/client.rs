//! One canvas client: reads its messages, validates them, applies its limits and feeds the hub.
//!
//! Limits (PROTOCOL.md's connection rules):
//! - every frame but a `canvasState` (an answer to the server's own
//!   request, paced by the server and held to the message-size limit) spends
//!   a token of the connection's bucket, which refills at `rate-limit` per
//!   second up to `rate-burst`: pings and pongs too, which the connection
//!   spends itself; an empty bucket closes the client with 1008;
//! - each invalid message is answered with an `error` and spends one of
//!   [`INVALID_BUDGET`] chances, which come back at one per second; the
//!   client that runs out is closed with 1008;
//! - a binary frame closes the client with 1003.

use std::sync::Arc;
use std::time::Instant;

use async_channel::TrySendError;

use async_tungstenite::tungstenite::Message;
use log::{debug, info};

use super::Canvas;
use super::hub::{ClientId, Event};
use super::protocol::{self, ClientMessage};
use crate::metrics::add;
use crate::outbox::Outbox;
use crate::rate::TokenBucket;
use crate::{CloseCode, Connection};

/// Invalid messages a client may send in a burst before it is closed.
pub const INVALID_BUDGET: f64 = 10.0;

/// Serves one upgraded connection as a canvas client until it ends.
///
/// A plain function returning an `async move` block: the block uses the
/// captured `conn` in place, where an `async fn` would keep a second copy of
/// it in every connection's task.
#[allow(clippy::manual_async_fn)]
pub fn serve(canvas: Arc<Canvas>, mut conn: Connection) -> impl Future<Output = ()> + Send {
    async move {
        let id = canvas.next_client_id();
        let peer = conn.peer_addr();
        let (tx, outbox) = Outbox::bounded(canvas.config.outbox_bytes);
        if canvas.events.send(Event::Join { id, outbox: tx, limit: conn.message_limit() }).await.is_err() {
            conn.close(CloseCode::Away, "server shutting down").await;
            return;
        }
        info!("{peer}: canvas client {id} connected");
        conn.limit_rate(canvas.config.rate_limit, canvas.config.rate_burst);
        let mut invalid = TokenBucket::new(1.0, INVALID_BUDGET);
        let metrics = &canvas.metrics;
        while let Some(message) = conn.next(Some(&outbox)).await {
            let text = match message {
                Message::Text(text) => text,
                _ => {
                    info!("{peer}: client {id} sent a binary frame: closing with 1003");
                    add(&metrics.binary_closed, 1);
                    conn.close(CloseCode::Unsupported, "binary frames are not accepted").await;
                    break;
                }
            };
            let now = Instant::now();
            let parsed = protocol::parse(&text, canvas.config.max_snapshot_bytes);
            // A canvasState answers the server's own request: the server paces those, not the
            // client (the oldest client answers every newcomer in a join storm).
            let answer = matches!(parsed, Ok(ClientMessage::CanvasState { .. }));
            if !answer && !conn.take_token() {
                conn.close_rate_limited().await;
                break;
            }
            match parsed {
                Ok(message) => {
                    // A full hub mailbox makes this client wait, but it keeps
                    // receiving what is queued for it meanwhile.
                    let sent = match canvas.events.try_send(event(id, message)) {
                        Ok(()) => true,
                        Err(TrySendError::Full(event)) => {
                            conn.deliver_until(&outbox, canvas.events.send(event)).await.is_some_and(|r| r.is_ok())
                        }
                        Err(TrySendError::Closed(_)) => false,
                    };
                    if !sent {
                        break;
                    }
                }
                Err(err) => {
                    debug!("{peer}: client {id} sent an invalid message: {err}");
                    add(&metrics.invalid_messages, 1);
                    if !invalid.take(now) {
                        info!("{peer}: client {id} keeps sending invalid messages: closing with 1008");
                        add(&metrics.invalid_closed, 1);
                        conn.close(CloseCode::Policy, "too many invalid messages").await;
                        break;
                    }
                    if conn.send(Message::Text(err.encode())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = canvas.events.send(Event::Leave { id }).await;
        info!("{peer}: canvas client {id} disconnected");
    }
}

fn event(from: ClientId, message: ClientMessage) -> Event {
    match message {
        ClientMessage::Draw(draw) => Event::Draw { from, draw: draw.encode() },
        ClientMessage::Clear => Event::Clear { from },
        ClientMessage::CanvasRequest => Event::CanvasRequest { from },
        ClientMessage::CanvasState { client_id, data } => Event::CanvasState { from, client_id, data },
    }
}
