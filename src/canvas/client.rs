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
use super::registry::{BoardHandle, Endpoint};
use crate::metrics::add;
use crate::outbox::{Outbox, OutboxReceiver};
use crate::rate::TokenBucket;
use crate::{CloseCode, Connection};

/// Invalid messages a client may send in a burst before it is closed.
pub const INVALID_BUDGET: f64 = 10.0;

/// Serves one upgraded connection as a canvas client until it ends.
///
/// This future is most of what an idle connection costs, so it holds just
/// the connection, the [`Client`] and `Connection::next`'s small future
/// while it waits: joining, leaving and every reply that has to wait for the
/// socket or the hub run in futures boxed for their duration, and a message
/// that only goes to the hub is handled without an await.
///
/// A plain function returning an `async move` block: the block uses the
/// captured `conn` in place, where an `async fn` would keep a second copy of
/// it in every connection's task.
#[allow(clippy::manual_async_fn)]
pub fn serve(canvas: Arc<Canvas>, mut conn: Connection, endpoint: Endpoint) -> impl Future<Output = ()> + Send {
    // Built before the block, so that the block captures only `conn`, the client and
    // the boxed join (not the canvas and endpoint as well, dead after the join).
    let (mut client, join) = Client::new(canvas, &conn, endpoint);
    async move {
        if !Box::pin(client.join(&mut conn, join)).await {
            return;
        }
        while let Some(message) = conn.next(Some(&client.outbox)).await {
            let go_on = match client.on_message(&mut conn, message) {
                Step::Next => true,
                Step::Stop => false,
                Step::Later(later) => Box::pin(client.finish(&mut conn, later)).await,
            };
            if !go_on {
                break;
            }
        }
        Box::pin(client.leave(&conn)).await;
    }
}

/// One joined canvas client, as its connection task keeps it.
struct Client {
    canvas: Arc<Canvas>,
    board: Arc<BoardHandle>,
    id: ClientId,
    viewer: bool,
    v2: bool,
    outbox: OutboxReceiver,
    /// The invalid-message budget.
    invalid: TokenBucket,
}

/// What is left to do for a message after [`Client::on_message`].
enum Step {
    /// Nothing: read the next one.
    Next,
    /// The connection is over.
    Stop,
    /// Something that waits (for the socket or the hub's mailbox): [`Client::finish`].
    Later(Later),
}

enum Later {
    /// Close with this code and reason.
    Close(CloseCode, &'static str),
    /// Close with 1008 for the rate limit.
    RateLimited,
    /// Answer the client with this message.
    Reply(Message),
    /// The hub's mailbox is full: wait for room, delivering meanwhile.
    Hub(Event),
}

impl Client {
    /// The client, and the event that joins it to its board.
    fn new(canvas: Arc<Canvas>, conn: &Connection, endpoint: Endpoint) -> (Client, Box<Event>) {
        let (id, name) = canvas.next_client();
        let (tx, outbox) = Outbox::bounded(canvas.config.outbox_bytes);
        let Endpoint { board, viewer, v2 } = endpoint;
        let join = Box::new(Event::Join { id, name, outbox: tx, limit: conn.message_limit(), v2, viewer });
        let invalid = TokenBucket::new(1.0, INVALID_BUDGET);
        (Client { canvas, board, id, viewer, v2, outbox, invalid }, join)
    }

    /// Joins the board; `false` (and the connection closed) when the hub is gone.
    async fn join(&mut self, conn: &mut Connection, join: Box<Event>) -> bool {
        let (peer, id, board) = (conn.peer_addr(), self.id, &self.board);
        if board.events.send(*join).await.is_err() {
            info!("{peer}: board {} could not be opened: closing client {id} with 1011", board.name);
            conn.close(CloseCode::Error, "the board cannot be opened now").await;
            return false;
        }
        let role = if self.viewer { "viewer" } else { "editor" };
        info!(
            "{peer}: canvas client {id} connected to board {} ({role}, {})",
            board.name,
            if self.v2 { "v2" } else { "v1" }
        );
        conn.limit_rate(self.canvas.config.rate_limit, self.canvas.config.rate_burst);
        true
    }

    /// Handles one message from the client as far as it can without waiting.
    fn on_message(&mut self, conn: &mut Connection, message: Message) -> Step {
        let (id, peer, metrics) = (self.id, conn.peer_addr(), &self.canvas.metrics);
        let Message::Text(text) = message else {
            info!("{peer}: client {id} sent a binary frame: closing with 1003");
            add(&metrics.binary_closed, 1);
            return Step::Later(Later::Close(CloseCode::Unsupported, "binary frames are not accepted"));
        };
        let now = Instant::now();
        let parsed = protocol::parse(&text, self.canvas.config.max_snapshot_bytes);
        // A canvasState answers the server's own request: the server paces those, not the
        // client (the oldest client answers every newcomer in a join storm).
        // With `--sync server` nobody is ever asked, so no canvasState is exempt.
        let answer =
            self.canvas.config.sync == SyncMode::Peers && matches!(parsed, Ok(ClientMessage::CanvasState { .. }));
        if !answer && !conn.take_token() {
            return Step::Later(Later::RateLimited);
        }
        match parsed {
            Ok(message) if self.viewer && changes_the_board(&message) => {
                debug!("{peer}: viewer {id} tried to change the board");
                let error = ProtocolError::new(ErrorCode::ReadOnly, "this is a view-only link");
                Step::Later(Later::Reply(Message::Text(error.encode())))
            }
            // A full hub mailbox makes this client wait, but it keeps
            // receiving what is queued for it meanwhile.
            Ok(message) => match self.board.events.try_send(event(id, message)) {
                Ok(()) => Step::Next,
                Err(TrySendError::Full(event)) => Step::Later(Later::Hub(event)),
                Err(TrySendError::Closed(_)) => Step::Stop,
            },
            Err(err) => {
                debug!("{peer}: client {id} sent an invalid message: {err}");
                add(&metrics.invalid_messages, 1);
                if !self.invalid.take(now) {
                    info!("{peer}: client {id} keeps sending invalid messages: closing with 1008");
                    add(&metrics.invalid_closed, 1);
                    return Step::Later(Later::Close(CloseCode::Policy, "too many invalid messages"));
                }
                Step::Later(Later::Reply(Message::Text(err.encode())))
            }
        }
    }

    /// Finishes what [`Client::on_message`] left; `false` when the connection is over.
    async fn finish(&mut self, conn: &mut Connection, later: Later) -> bool {
        match later {
            Later::Close(code, reason) => {
                conn.close(code, reason).await;
                false
            }
            Later::RateLimited => {
                conn.close_rate_limited().await;
                false
            }
            Later::Reply(message) => conn.send(message).await.is_ok(),
            Later::Hub(event) => {
                conn.deliver_until(&self.outbox, self.board.events.send(event)).await.is_some_and(|sent| sent.is_ok())
            }
        }
    }

    /// Tells the hub the client left.
    async fn leave(self, conn: &Connection) {
        let _ = self.board.events.send(Event::Leave { id: self.id }).await;
        info!("{}: canvas client {} disconnected", conn.peer_addr(), self.id);
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
