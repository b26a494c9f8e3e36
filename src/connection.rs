//! One upgraded WebSocket connection: heartbeat, idle timeout, outbox delivery and the close handshake.
//!
//! A connection is driven by a single task: [`Connection::next`] waits for
//! whichever comes first of a message from the peer, a message in the
//! client's outbox, the heartbeat timer, eviction or server shutdown. Outgoing
//! messages are written in batches (everything queued at that moment) and
//! flushed once, so a burst costs one syscall, not one per message.
//!
//! A broadcaster's prepared frames usually skip the task altogether: over
//! plain TCP, [`Connection::next`] attaches the socket to the outbox it
//! delivers, and `Outbox::push_frame` writes to it directly whenever nothing
//! is waiting to be written before (see `outbox` and `wire`). The task still
//! owns everything else: reads, pings, pongs, the close handshake, and
//! whatever the socket did not take at once.
//!
//! What one connection can make the server hold for writing is bounded: a
//! message larger than [`MAX_FRAME_PAYLOAD`] goes out as fragments of that
//! size, each written only once the one before has left tungstenite's
//! buffer, and pongs owed to a peer that does not read stay in that same
//! bounded buffer (see `server::websocket_config`).

use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::Frame;
use async_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data as OpData, OpCode};
use async_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use futures_lite::StreamExt;
use futures_lite::future::{self, FutureExt};
use futures_sink::Sink;
use log::{debug, info};
use smol::Timer;

use crate::limit::{Guarded, MessageLimit, MessageTooBig};
use crate::metrics::{Metrics, add};
use crate::outbox::{ConnectionClosed, OutboxReceiver, Outgoing};
use crate::rate::TokenBucket;
use crate::stream::Stream;
use crate::timeout::timeout;
use crate::tripwire::{TripListener, Tripwire};
use crate::wire::MAX_FRAME_PAYLOAD;

/// Most queued messages written before a flush; bounds one batch's latency.
const MAX_BATCH: usize = 256;
/// How long a close handshake waits for the peer's answer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a connection needs of the server: its timings, counters and shutdown wire.
#[derive(Debug)]
pub(crate) struct ConnectionSettings {
    /// How often a ping is sent.
    pub(crate) ping_interval: Duration,
    /// How long the peer may stay silent (also the bound on a stalled write).
    pub(crate) idle_timeout: Duration,
    /// How long a close at shutdown waits for the peer's answer.
    pub(crate) shutdown_grace: Duration,
    /// The server's counters.
    pub(crate) metrics: Arc<Metrics>,
    /// Tripped when the server shuts down.
    pub(crate) shutdown: Tripwire,
}

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
///
/// An app that broadcasts gives each client an [`Outbox`](crate::Outbox)
/// and lets [`Connection::next`] deliver it while waiting for the client's
/// messages; whoever pushes never waits for the client, and evicting it
/// closes the connection with 1008 even while a write to it is stuck:
///
/// ```
/// use std::sync::Arc;
/// use futures_lite::StreamExt;
/// use smolcanvas::{App, CloseCode, Connection, Message, Outbox, Request, Routed, Server, ServerConfig};
///
/// struct Greeter;
///
/// impl App for Greeter {
///     type Endpoint = ();
///
///     fn route(&self, request: &Request<'_>) -> Routed<()> {
///         Routed::page_and_socket(request, "greeter", ())
///     }
///
///     async fn serve(self: Arc<Self>, mut conn: Connection, _endpoint: ()) {
///         let (outbox, receiver) = Outbox::bounded(64 * 1024);
///         // Another task (a hub) would hold `outbox`; here the handler pushes itself.
///         outbox.push(Message::text("welcome")).unwrap();
///         outbox.evict("that is all");
///         while conn.next(Some(&receiver)).await.is_some() {}
///     }
/// }
///
/// let config = ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() };
/// let server = Server::bind(config, Greeter).unwrap();
/// let (addr, wire) = (server.local_addr().unwrap(), server.shutdown_wire());
/// let executor: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
/// smol::block_on(executor.run(async {
///     let serving = executor.spawn(server.run(executor));
///     let tcp = smol::net::TcpStream::connect(addr).await.unwrap();
///     let (mut client, _) = async_tungstenite::client_async(format!("ws://{addr}/ws"), tcp).await.unwrap();
///     // Eviction drops what was still queued: whether "welcome" left first is a race.
///     let close = loop {
///         match client.next().await.unwrap().unwrap() {
///             Message::Close(frame) => break frame.unwrap(),
///             message => assert_eq!(message, Message::text("welcome")),
///         }
///     };
///     assert_eq!((close.code, close.reason.as_str()), (CloseCode::Policy, "that is all"));
///     wire.trip();
///     serving.await.unwrap();
/// }));
/// ```
pub struct Connection {
    ws: WebSocketStream<Guarded<Stream>>,
    limit: MessageLimit,
    peer: SocketAddr,
    path: Box<str>,
    query: Option<Box<str>>,
    settings: Arc<ConnectionSettings>,
    state: State,
    last_seen: Instant,
    next_ping: Instant,
    heartbeat: Timer,
    shutdown: TripListener,
    /// The rate limit every frame from the peer spends, once the app set one.
    rate: Option<TokenBucket>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("path", &self.path)
            .field("state", &self.state)
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        debug!("{}: connection over", self.peer);
    }
}

enum Wake {
    /// A text or binary message for the app.
    Data(Message),
    /// Any other read result: a control frame, the end, an error.
    Read(Option<Result<Message, WsError>>),
    Outgoing(Option<Outgoing>),
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
        settings: Arc<ConnectionSettings>,
    ) -> Self {
        let now = Instant::now();
        let next_ping = now + settings.ping_interval;
        let first_check = next_ping.min(now + settings.idle_timeout);
        let shutdown = settings.shutdown.listener();
        Connection {
            ws,
            limit,
            peer,
            path: path.into(),
            query: query.map(String::into_boxed_str),
            settings,
            state: State::Open,
            last_seen: now,
            next_ping,
            heartbeat: Timer::at(first_check),
            shutdown,
            rate: None,
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
    pub(crate) fn message_limit(&self) -> MessageLimit {
        self.limit.clone()
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.settings.metrics
    }

    /// Holds the peer to `rate` frames a second with bursts of `burst`.
    ///
    /// Control frames (pings, pongs) spend a token as they arrive, and a
    /// peer that runs out is closed with 1008. Data messages spend one when
    /// the app calls [`Connection::take_token`], so the app can exempt the
    /// messages it asked for.
    pub fn limit_rate(&mut self, rate: f64, burst: f64) {
        self.rate = Some(TokenBucket::new(rate, burst));
    }

    /// Spends one of the peer's tokens; `false` when it exceeded the rate
    /// limit (always `true` without one).
    pub fn take_token(&mut self) -> bool {
        self.rate.as_mut().is_none_or(|bucket| bucket.take(Instant::now()))
    }

    /// Closes the connection with 1008 because the peer exceeded its rate limit.
    pub async fn close_rate_limited(&mut self) {
        info!("{}: exceeded the rate limit: closing with 1008", self.peer);
        add(&self.settings.metrics.rate_limited_closed, 1);
        self.close(CloseCode::Policy, "rate limit exceeded").await;
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
        // This future is what every idle connection's task holds while it waits, so it
        // keeps nothing but its two references: the wait is a plain poll of what the
        // connection already owns, a data message is handed over without an await, and
        // every other wake-up (all of them rare) is handled in a future boxed for its
        // duration. (`wake` moves into that future whole, so it takes no room here.)
        self.attach(outbox);
        while self.state == State::Open {
            let wake = future::poll_fn(|cx| self.poll_wake(cx, outbox)).await;
            if let Wake::Data(message) = wake {
                return Some(message);
            }
            if let Some(message) = Box::pin(self.on_wake(wake, outbox)).await {
                return Some(message);
            }
        }
        self.stop_direct();
        None
    }

    /// Whichever comes first of shutdown, something to write, a read and the heartbeat.
    fn poll_wake(&mut self, cx: &mut Context<'_>, outbox: Option<&OutboxReceiver>) -> Poll<Wake> {
        if Pin::new(&mut self.shutdown).poll(cx).is_ready() {
            return Poll::Ready(Wake::Shutdown);
        }
        // Eviction closes the outbox, which ends `poll_outgoing` with `None`.
        if let Some(Poll::Ready(outgoing)) = outbox.map(|outbox| outbox.poll_outgoing(cx)) {
            return Poll::Ready(Wake::Outgoing(outgoing));
        }
        if let Poll::Ready(read) = Pin::new(&mut self.ws).poll_next(cx) {
            return Poll::Ready(match self.on_data(read) {
                Ok(message) => Wake::Data(message),
                Err(read) => Wake::Read(read),
            });
        }
        if Pin::new(&mut self.heartbeat).poll(cx).is_ready() {
            return Poll::Ready(Wake::Heartbeat);
        }
        Poll::Pending
    }

    /// A text or binary message for the app, counted; anything else back for [`Connection::on_read`].
    #[allow(clippy::result_large_err)]
    fn on_data(&mut self, read: Option<Result<Message, WsError>>) -> Result<Message, Option<Result<Message, WsError>>> {
        match read {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                self.last_seen = Instant::now();
                add(&self.settings.metrics.messages_in, 1);
                add(&self.settings.metrics.bytes_in, message.len() as u64);
                Ok(message)
            }
            other => Err(other),
        }
    }

    /// Handles every wake-up but a data message (boxed by the caller); a data
    /// message read meanwhile is for the app.
    async fn on_wake(&mut self, wake: Wake, outbox: Option<&OutboxReceiver>) -> Option<Message> {
        match wake {
            Wake::Data(message) => return Some(message),
            Wake::Read(read) => self.on_read(read).await,
            Wake::Outgoing(Some(outgoing)) => {
                // Over plain TCP broadcasts mostly go out without this task.
                if self.write(outgoing.into_message(), outbox).await {
                    // Give the peer a turn so a busy outbox cannot starve reading.
                    if let Some(read) = future::poll_once(self.ws.next()).await {
                        match self.on_data(read) {
                            Ok(message) => return Some(message),
                            Err(read) => self.on_read(read).await,
                        }
                    }
                }
            }
            Wake::Outgoing(None) => self.on_outbox_closed(outbox).await,
            Wake::Heartbeat => self.on_heartbeat().await,
            Wake::Shutdown => self.close(CloseCode::Away, "server shutting down").await,
        }
        None
    }

    /// Lets broadcasters write to this connection's socket directly (plain TCP only).
    fn attach(&self, outbox: Option<&OutboxReceiver>) {
        if let (Some(outbox), Some(wire)) = (outbox, self.ws.get_ref().get_ref().wire()) {
            outbox.attach(wire, &self.settings.metrics);
        }
    }

    /// No more direct writes: the close frame is about to go out, or the connection is over.
    fn stop_direct(&self) {
        if let Some(wire) = self.ws.get_ref().get_ref().wire() {
            wire.close_direct();
        }
    }

    /// Runs `work` to its end while writing whatever `outbox` queues
    /// meanwhile, reading nothing: an app that waits (for room in a busy
    /// actor's mailbox, say) keeps delivering to its client, so only a client
    /// that does not read is ever too slow. `None` if the connection ended first.
    pub async fn deliver_until<T>(&mut self, outbox: &OutboxReceiver, work: impl Future<Output = T>) -> Option<T> {
        self.attach(Some(outbox));
        let mut work = pin!(work);
        while self.state == State::Open {
            let step = async { Ok(work.as_mut().await) }.or(async { Err(outbox.outgoing().await) }).await;
            match step {
                Ok(done) => return Some(done),
                Err(Some(outgoing)) => {
                    Box::pin(self.write(outgoing.into_message(), Some(outbox))).await;
                }
                Err(None) => self.on_outbox_closed(Some(outbox)).await,
            }
        }
        self.stop_direct();
        None
    }

    /// The outbox ended: the app evicted the client or dropped its session.
    async fn on_outbox_closed(&mut self, outbox: Option<&OutboxReceiver>) {
        match outbox.and_then(OutboxReceiver::eviction_reason) {
            Some(reason) => {
                info!("{}: closing: {reason}", self.peer);
                self.close(CloseCode::Policy, reason).await;
            }
            None => self.close(CloseCode::Away, "server closed the session").await,
        }
    }

    /// Handles a read result other than a data message (control frames, the end,
    /// errors); runs boxed, once in a while.
    async fn on_read(&mut self, read: Option<Result<Message, WsError>>) {
        match read {
            Some(Ok(message)) => {
                self.last_seen = Instant::now();
                match message {
                    Message::Close(frame) => {
                        debug!("{}: peer closed ({})", self.peer, describe(frame.as_ref()));
                        // tungstenite's close reply goes out on the next read: nothing may follow it.
                        self.stop_direct();
                        // Reading on sends tungstenite's queued close reply and ends the stream.
                        let _ = timeout(CLOSE_TIMEOUT, self.ws.next()).await;
                        self.state = State::Closed;
                    }
                    // Pings are answered by tungstenite; pongs only count as
                    // life. Both spend the peer's rate tokens like any frame.
                    Message::Ping(_) | Message::Pong(_) => {
                        if !self.take_token() {
                            self.close_rate_limited().await;
                        }
                    }
                    // Data messages went to the app (`on_data`); raw frames are never read.
                    Message::Text(_) | Message::Binary(_) | Message::Frame(_) => {}
                }
            }
            None => {
                debug!("{}: connection ended", self.peer);
                self.state = State::Closed;
            }
            Some(Err(err)) => self.on_error(err).await,
        }
    }

    async fn on_error(&mut self, err: WsError) {
        let (code, reason) = match &err {
            WsError::Capacity(_) => (CloseCode::Size, "message too big"),
            WsError::Io(io) if MessageTooBig::find(io).is_some() => (CloseCode::Size, "message too big"),
            WsError::Utf8(_) => (CloseCode::Invalid, "invalid UTF-8 in text message"),
            // A peer that drops TCP without a close frame is ordinary (a
            // closed laptop lid, a lost network): nothing to answer.
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                debug!("{}: peer went away without a close frame", self.peer);
                self.state = State::Closed;
                return;
            }
            WsError::Protocol(_) => (CloseCode::Protocol, "protocol error"),
            _ => {
                debug!("{}: connection failed: {err}", self.peer);
                self.state = State::Closed;
                return;
            }
        };
        info!("{}: closing with {}: {err}", self.peer, u16::from(code));
        self.stop_direct();
        // The read side has ended; send the close and give up on its answer.
        let frame = CloseFrame { code, reason: reason.into() };
        let _ = timeout(CLOSE_TIMEOUT, self.ws.send(Message::Close(Some(frame)))).await;
        self.state = State::Closed;
    }

    async fn on_heartbeat(&mut self) {
        let now = Instant::now();
        let config = &self.settings;
        let idle_deadline = self.last_seen + config.idle_timeout;
        if now >= idle_deadline {
            info!("{}: closing: nothing received for {:?}", self.peer, config.idle_timeout);
            self.close(CloseCode::Away, "idle timeout").await;
            return;
        }
        if now >= self.next_ping {
            self.next_ping = now + config.ping_interval;
            if !self.write(Some(Message::Ping(Default::default())), None).await {
                return;
            }
        }
        self.heartbeat.set_at(self.next_ping.min(idle_deadline));
    }

    /// Sends one message now (a large one in fragments); an error once the
    /// connection is over.
    pub async fn send(&mut self, message: Message) -> Result<(), ConnectionClosed> {
        if Box::pin(self.write(Some(message), None)).await { Ok(()) } else { Err(ConnectionClosed) }
    }

    /// Writes `first` and then whatever is queued in `outbox`, flushing once
    /// (which also sends the tail of a direct send the socket did not take).
    /// Once everything taken from `outbox` is written, direct sends may
    /// resume. A write that makes no progress for the idle timeout ends the
    /// connection.
    async fn write(&mut self, first: Option<Message>, outbox: Option<&OutboxReceiver>) -> bool {
        if self.state != State::Open {
            return false;
        }
        let stall = self.settings.idle_timeout;
        let settings = self.settings.clone();
        let mut batch = pin!(write_batch(&mut self.ws, first, outbox, &settings.metrics));
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
                    settings.shutdown.tripped().await;
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
            Ok(()) => {
                if let Some(outbox) = outbox {
                    outbox.release();
                }
                true
            }
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
        self.stop_direct();
        debug!("{}: closing with {}: {reason}", self.peer, u16::from(code));
        let frame = CloseFrame { code, reason: reason.to_string().into() };
        let grace =
            if code == CloseCode::Away { self.settings.shutdown_grace.min(CLOSE_TIMEOUT) } else { CLOSE_TIMEOUT };
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

impl Outgoing {
    /// The message to write first; `None` when only a flush is owed.
    fn into_message(self) -> Option<Message> {
        match self {
            Outgoing::Message(message) => Some(message),
            Outgoing::Flush => None,
        }
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
    first: Option<Message>,
    outbox: Option<&OutboxReceiver>,
    metrics: &Metrics,
) -> Result<(), WriteError> {
    let mut next = first.or_else(|| outbox.and_then(OutboxReceiver::try_recv));
    let mut count = 0;
    while let Some(message) = next.take() {
        // A message queued as fragments is written whole: nothing may come between them.
        let unfinished = matches!(&message, Message::Frame(frame) if !frame.header().is_final);
        count_out(metrics, &message);
        send_fragmented(ws, message).await.map_err(WriteError::Ws)?;
        count += 1;
        if count < MAX_BATCH || unfinished {
            next = outbox.and_then(OutboxReceiver::try_recv);
        }
    }
    future::poll_fn(|cx| Pin::new(&mut *ws).poll_flush(cx)).await.map_err(WriteError::Ws)
}

/// Counts an outgoing data message (a data frame that starts one counts as the message).
fn count_out(metrics: &Metrics, message: &Message) {
    let starts_message = match message {
        Message::Text(_) | Message::Binary(_) => true,
        Message::Frame(frame) => matches!(frame.header().opcode, OpCode::Data(OpData::Text | OpData::Binary)),
        _ => return,
    };
    if starts_message {
        add(&metrics.messages_out, 1);
    }
    if !matches!(message, Message::Frame(frame) if !matches!(frame.header().opcode, OpCode::Data(_))) {
        add(&metrics.bytes_out, message.len() as u64);
    }
}

/// A data message or data frame as (opcode, payload, final); anything else back as it is.
fn data_frame(message: Message) -> Result<(OpCode, Bytes, bool), Message> {
    match message {
        Message::Text(text) => Ok((OpCode::Data(OpData::Text), text.into(), true)),
        Message::Binary(bytes) => Ok((OpCode::Data(OpData::Binary), bytes, true)),
        Message::Frame(frame) if matches!(frame.header().opcode, OpCode::Data(_)) => {
            let (opcode, fin) = (frame.header().opcode, frame.header().is_final);
            Ok((opcode, frame.into_payload(), fin))
        }
        other => Err(other),
    }
}

/// Sends `message`, as fragments of at most [`MAX_FRAME_PAYLOAD`] when it is larger.
async fn send_fragmented(ws: &mut WebSocketStream<Guarded<Stream>>, message: Message) -> Result<(), WsError> {
    if message.len() <= MAX_FRAME_PAYLOAD {
        return send_one(ws, message).await;
    }
    let (mut opcode, payload, fin) = match data_frame(message) {
        Ok(parts) => parts,
        Err(other) => return send_one(ws, other).await,
    };
    let mut start = 0;
    while start < payload.len() {
        let end = (start + MAX_FRAME_PAYLOAD).min(payload.len());
        let last = end == payload.len();
        send_one(ws, Message::Frame(Frame::message(payload.slice(start..end), opcode, last && fin))).await?;
        opcode = OpCode::Data(OpData::Continue);
        start = end;
    }
    Ok(())
}

/// Hands one message (or frame) to tungstenite. When its write buffer is
/// full (of pongs owed to a peer that does not read, say), waits until the
/// socket takes the buffer, then queues the message.
async fn send_one(ws: &mut WebSocketStream<Guarded<Stream>>, message: Message) -> Result<(), WsError> {
    future::poll_fn(|cx| Pin::new(&mut *ws).poll_ready(cx)).await?;
    match Pin::new(&mut *ws).start_send(message) {
        Err(WsError::WriteBufferFull(message)) => {
            future::poll_fn(|cx| Pin::new(&mut *ws).poll_flush(cx)).await?;
            Pin::new(&mut *ws).start_send(*message)
        }
        other => other,
    }
}

fn describe(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(frame) => format!("{} {}", u16::from(frame.code), frame.reason),
        None => "no code".to_string(),
    }
}
