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
use super::config::SyncMode;
use super::hub::{ClientId, Event, author_hash};
use super::protocol::{self, ClientMessage, ErrorCode, ProtocolError};
use super::registry::Endpoint;
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
pub fn serve(canvas: Arc<Canvas>, mut conn: Connection, endpoint: Endpoint) -> impl Future<Output = ()> + Send {
    async move {
        let (id, name) = canvas.next_client();
        let peer = conn.peer_addr();
        let (tx, outbox) = Outbox::bounded(canvas.config.outbox_bytes);
        let Endpoint { board, viewer, v2 } = endpoint;
        let events = &board.events;
        let join = Event::Join { id, name, outbox: tx, limit: conn.message_limit(), v2, viewer };
        if events.send(join).await.is_err() {
            info!("{peer}: board {} could not be opened: closing client {id} with 1011", board.name);
            conn.close(CloseCode::Error, "the board cannot be opened now").await;
            return;
        }
        let role = if viewer { "viewer" } else { "editor" };
        info!(
            "{peer}: canvas client {id} connected to board {} ({role}, {})",
            board.name,
            if v2 { "v2" } else { "v1" }
        );
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
            // With `--sync server` nobody is ever asked, so no canvasState is exempt.
            let answer =
                canvas.config.sync == SyncMode::Peers && matches!(parsed, Ok(ClientMessage::CanvasState { .. }));
            if !answer && !conn.take_token() {
                conn.close_rate_limited().await;
                break;
            }
            match parsed {
                Ok(message) if viewer && changes_the_board(&message) => {
                    debug!("{peer}: viewer {id} tried to change the board");
                    let error = ProtocolError::new(ErrorCode::ReadOnly, "this is a view-only link");
                    if conn.send(Message::Text(error.encode())).await.is_err() {
                        break;
                    }
                }
                Ok(message) => {
                    // A full hub mailbox makes this client wait, but it keeps
                    // receiving what is queued for it meanwhile.
                    let sent = match events.try_send(event(id, message)) {
                        Ok(()) => true,
                        Err(TrySendError::Full(event)) => {
                            conn.deliver_until(&outbox, events.send(event)).await.is_some_and(|r| r.is_ok())
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
        let _ = events.send(Event::Leave { id }).await;
        info!("{peer}: canvas client {id} disconnected");
    }
}

/// What a viewer may not send.
fn changes_the_board(message: &ClientMessage) -> bool {
    matches!(
        message,
        ClientMessage::Draw(_)
            | ClientMessage::Clear
            | ClientMessage::Undo
            | ClientMessage::Redo
            | ClientMessage::CanvasRequest
    )
}

fn event(from: ClientId, message: ClientMessage) -> Event {
    match message {
        ClientMessage::Draw(draw) => Event::Draw { from, stroke: draw.stroke, draw: draw.encode() },
        ClientMessage::Clear => Event::Clear { from },
        ClientMessage::Undo => Event::Undo { from },
        ClientMessage::Redo => Event::Redo { from },
        ClientMessage::Hello { author } => Event::Hello { from, author: author_hash(b"author:", &author) },
        ClientMessage::CanvasRequest => Event::CanvasRequest { from },
        ClientMessage::CanvasState { client_id, data } => Event::CanvasState { from, client_id, data },
    }
}
