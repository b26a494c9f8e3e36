//! One upgraded WebSocket connection: heartbeat, idle timeout, outbox delivery and the close handshake.
//!
//! A connection is driven by a single task: [`Connection::next`] waits for
//! whichever comes first of a message from the peer, a message in the
//! client's outbox, the heartbeat timer, eviction or server shutdown. Outgoing
//! messages are written in batches (everything queued at that moment) and
//! flushed once, so a burst costs one syscall, not one per message.

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::StreamExt;
use futures_lite::future::{self, FutureExt};
use futures_sink::Sink;
use log::{debug, info};
use smol::Timer;

use crate::limit::{Guarded, MessageLimit, MessageTooBig};
use crate::metrics::{Metrics, add};
use crate::outbox::OutboxReceiver;
use crate::server::{Shared, timeout};
use crate::stream::Stream;
use crate::tripwire::TripListener;

/// Most queued messages written before a flush; bounds one batch's latency.
const MAX_BATCH: usize = 256;
/// How long a close handshake waits for the peer's answer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Closed,
}

/// An upgraded WebSocket connection, handed to the app's handler.
///
/// Pings, pongs, the idle timeout, shutdown (close 1001) and protocol errors
/// (close 1002, 1007, 1009) are handled inside; the app only sees text and
/// binary messages.
pub struct Connection {
    ws: WebSocketStream<Guarded<Stream>>,
    limit: MessageLimit,
    peer: SocketAddr,
    path: String,
    query: Option<String>,
    shared: Arc<Shared>,
    state: State,
    last_seen: Instant,
    next_ping: Instant,
    heartbeat: Timer,
    shutdown: TripListener,
}

enum Wake {
    Read(Option<Result<Message, WsError>>),
    Outgoing(Option<Message>),
    Heartbeat,
    Shutdown,
}

impl Connection {
    pub(crate) fn new(
        ws: WebSocketStream<Guarded<Stream>>,
        limit: MessageLimit,
        peer: SocketAddr,
        path: String,
        query: Option<String>,
        shared: Arc<Shared>,
    ) -> Self {
        let now = Instant::now();
        let next_ping = now + shared.config.ping_interval;
        let first_check = next_ping.min(now + shared.config.idle_timeout);
        let shutdown = shared.shutdown.listener();
        Connection {
            ws,
            limit,
            peer,
            path,
            query,
            shared,
            state: State::Open,
            last_seen: now,
            next_ping,
            heartbeat: Timer::at(first_check),
            shutdown,
        }
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The request path of the upgrade (`/ws`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string of the upgrade request, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The cap on this client's incoming messages, to lower or raise at any
    /// time (for example while it owes the server a large message).
    pub fn message_limit(&self) -> MessageLimit {
        self.limit.clone()
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Whether the connection is still open.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The next text or binary message from the peer; `None` once the connection is over.
    pub async fn recv(&mut self) -> Option<Message> {
        self.next(None).await
    }

    /// The next text or binary message from the peer, meanwhile delivering
    /// everything queued in `outbox`; `None` once the connection is over
    /// (closed by the peer, idle, evicted, shut down or failed).
    pub async fn next(&mut self, outbox: Option<&OutboxReceiver>) -> Option<Message> {
        while self.state == State::Open {
            match self.wait(outbox).await {
                Wake::Read(read) => {
                    if let Some(message) = self.on_read(read).await {
                        return Some(message);
                    }
                }
                Wake::Outgoing(Some(message)) => {
                    if self.write(message, outbox).await {
                        // Give the peer a turn so a busy outbox cannot starve reading.
                        if let Some(read) = future::poll_once(self.ws.next()).await {
                            if let Some(message) = self.on_read(read).await {
                                return Some(message);
                            }
                        }
                    }
                }
                Wake::Outgoing(None) => match outbox.and_then(OutboxReceiver::eviction_reason) {
                    Some(reason) => {
                        info!("{}: closing: {reason}", self.peer);
                        self.close(CloseCode::Policy, reason).await;
                    }
                    None => self.close(CloseCode::Away, "server closed the session").await,
                },
                // Boxed: every 20 s per connection, not worth a larger task for all of them.
                Wake::Heartbeat => Box::pin(self.on_heartbeat()).await,
                Wake::Shutdown => self.close(CloseCode::Away, "server shutting down").await,
            }
        }
        None
    }

    async fn wait(&mut self, outbox: Option<&OutboxReceiver>) -> Wake {
        let shutdown = async {
            (&mut self.shutdown).await;
            Wake::Shutdown
        };
        // Eviction closes the outbox, which wakes `outgoing`.
        let outgoing = async {
            match outbox {
                Some(outbox) => Wake::Outgoing(outbox.recv().await),
                None => future::pending().await,
            }
        };
        let read = async { Wake::Read(self.ws.next().await) };
        let heartbeat = async {
            (&mut self.heartbeat).await;
            Wake::Heartbeat
        };
        shutdown.or(outgoing).or(read).or(heartbeat).await
    }

    /// Handles one read result; returns a data message for the app.
    async fn on_read(&mut self, read: Option<Result<Message, WsError>>) -> Option<Message> {
        match read {
            Some(Ok(message)) => {
                self.last_seen = Instant::now();
                match message {
                    Message::Text(_) | Message::Binary(_) => {
                        add(&self.shared.metrics.messages_in, 1);
                        add(&self.shared.metrics.bytes_in, message.len() as u64);
                        Some(message)
                    }
                    Message::Close(frame) => {
                        debug!("{}: peer closed ({})", self.peer, describe(frame.as_ref()));
                        // Reading on sends tungstenite's queued close reply and ends the stream.
                        let _ = timeout(CLOSE_TIMEOUT, self.ws.next()).await;
                        self.state = State::Closed;
                        None
                    }
                    // Pings are answered by tungstenite; pongs only count as life.
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => None,
                }
            }
            None => {
                debug!("{}: connection ended", self.peer);
                self.state = State::Closed;
                None
            }
            Some(Err(err)) => {
                Box::pin(self.on_error(err)).await;
                None
            }
        }
    }

    async fn on_error(&mut self, err: WsError) {
        let (code, reason) = match &err {
            WsError::Capacity(_) => (CloseCode::Size, "message too big"),
            WsError::Io(io) if MessageTooBig::find(io).is_some() => (CloseCode::Size, "message too big"),
            WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in text message"),
            WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            _ => {
                debug!("{}: connection failed: {err}", self.peer);
                self.state = State::Closed;
                return;
            }
        };
        info!("{}: closing with {}: {err}", self.peer, u16::from(code));
        // The read side has ended; send the close and give up on its answer.
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = timeout(CLOSE_TIMEOUT, self.ws.send(Message::Close(Some(frame)))).await;
        self.state = State::Closed;
    }

    async fn on_heartbeat(&mut self) {
        let now = Instant::now();
        let config = &self.shared.config;
        let idle_deadline = self.last_seen + config.idle_timeout;
        if now >= idle_deadline {
            info!("{}: closing: nothing received for {:?}", self.peer, config.idle_timeout);
            self.close(CloseCode::Away, "idle timeout").await;
            return;
        }
        if now >= self.next_ping {
            self.next_ping = now + config.ping_interval;
            if !self.write(Message::Ping(Default::default()), None).await {
                return;
            }
        }
        self.heartbeat.set_at(self.next_ping.min(idle_deadline));
    }

    /// Sends one message now; `false` if the connection failed.
    pub async fn send(&mut self, message: Message) -> bool {
        self.write(message, None).await
    }

    /// Writes `first` and then whatever is queued in `outbox`, flushing once.
    /// A write that makes no progress for the idle timeout ends the connection.
    async fn write(&mut self, first: Message, outbox: Option<&OutboxReceiver>) -> bool {
        if self.state != State::Open {
            return false;
        }
        let stall = self.shared.config.idle_timeout;
        let shared = self.shared.clone();
        let mut batch = pin!(write_batch(&mut self.ws, first, outbox, &shared.metrics));
        // Usually the socket takes the batch at once: no timer needed then.
        let result = match future::poll_once(batch.as_mut()).await {
            Some(result) => result,
            None => {
                let evicted = async {
                    match outbox {
                        Some(outbox) => outbox.evicted().await,
                        None => future::pending().await,
                    }
                    Err(WriteError::Evicted)
                };
                let shutdown = async {
                    shared.shutdown.tripped().await;
                    Err(WriteError::Shutdown)
                };
                let stalled = async {
                    Timer::after(stall).await;
                    Err(WriteError::Stalled)
                };
                // Boxed: only a socket that is full gets here.
                Box::pin(batch.or(evicted).or(shutdown).or(stalled)).await
            }
        };
        match result {
            Ok(()) => true,
            Err(WriteError::Ws(err)) => {
                debug!("{}: write failed: {err}", self.peer);
                self.state = State::Closed;
                false
            }
            Err(WriteError::Stalled) => {
                info!("{}: closing: could not write for {stall:?}", self.peer);
                self.state = State::Closed;
                false
            }
            // The close is sent from `next`, which sees the same condition.
            Err(WriteError::Evicted) | Err(WriteError::Shutdown) => true,
        }
    }

    /// Starts the close handshake with `code` and waits (bounded) for the peer's answer.
    pub async fn close(&mut self, code: CloseCode, reason: &str) {
        if self.state != State::Open {
            return;
        }
        self.state = State::Closed;
        debug!("{}: closing with {}: {reason}", self.peer, u16::from(code));
        let frame = CloseFrame { code, reason: reason.to_string().into() };
        let grace =
            if code == CloseCode::Away { self.shared.config.shutdown_grace.min(CLOSE_TIMEOUT) } else { CLOSE_TIMEOUT };
        let handshake = async {
            if self.ws.send(Message::Close(Some(frame))).await.is_err() {
                return;
            }
            // Wait for the peer's close (or the end of the stream), ignoring late data.
            while let Some(Ok(message)) = self.ws.next().await {
                if message.is_close() {
                    let _ = self.ws.next().await;
                    break;
                }
            }
        };
        // Boxed: a cold path that would otherwise add its size to every connection's task.
        let _ = Box::pin(timeout(grace, handshake)).await;
    }
}

enum WriteError {
    Ws(WsError),
    Stalled,
    Evicted,
    Shutdown,
}

async fn write_batch(
    ws: &mut WebSocketStream<Guarded<Stream>>,
    first: Message,
    outbox: Option<&OutboxReceiver>,
    metrics: &Metrics,
) -> Result<(), WriteError> {
    let mut next = Some(first);
    let mut count = 0;
    while let Some(message) = next.take() {
        if message.is_text() || message.is_binary() {
            add(&metrics.messages_out, 1);
            add(&metrics.bytes_out, message.len() as u64);
        }
        future::poll_fn(|cx| Pin::new(&mut *ws).poll_ready(cx)).await.map_err(WriteError::Ws)?;
        Pin::new(&mut *ws).start_send(message).map_err(WriteError::Ws)?;
        count += 1;
        if count < MAX_BATCH {
            next = outbox.and_then(OutboxReceiver::try_recv);
        }
    }
    future::poll_fn(|cx| Pin::new(&mut *ws).poll_flush(cx)).await.map_err(WriteError::Ws)
}

fn describe(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) => format!("{} {}", u16::from(frame.code), frame.reason),
        None => "no code".to_string(),
    }
}
