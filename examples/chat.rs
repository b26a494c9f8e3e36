//! Chat room: every text message a client sends to `/ws` goes to every other client.
//!
//! It shows the pattern the drawing board is built on. One hub task owns the list of
//! clients and never awaits a client: it pushes each message into the other clients'
//! outboxes, each bounded in bytes, and a client whose outbox is full is evicted (close
//! 1008) instead of slowing the room. smol's own chat example awaits each client's write
//! inside its broadcast loop, so there one client that stops reading stalls everyone.
//! Each client is also held to a message size and a rate, so that one sender cannot
//! fill the others' outboxes faster than they read.
//!
//! `cargo run --release --example chat -- --listen 127.0.0.1:8080`, then open
//! <http://127.0.0.1:8080/> in two browser windows.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use smol::channel::{Receiver, Sender, bounded};
use smolcanvas::{App, Connection, Message, Outbox, PushError, Request, Routed, ServerConfig, Spawner};

/// Largest message a client may send: a line of chat, not a file.
const MAX_MESSAGE_BYTES: usize = 4 * 1024;
/// Messages a client may send a second, and in a burst: more than anyone types.
const RATE: (f64, f64) = (10.0, 20.0);
/// Bytes waiting for one client before it is too slow and is evicted: room for three
/// senders' full bursts at once (3 x 20 x 4 KiB).
const OUTBOX_BYTES: usize = 256 * 1024;
/// Events queued for the hub; a client that sends faster waits for room.
const HUB_QUEUE: usize = 1024;

/// What client tasks tell the hub.
enum Event {
    Join(u64, Outbox),
    Say(u64, Message),
    Leave(u64),
}

/// The chat app: the hub's mailbox and the next client id.
struct Chat {
    events: (Sender<Event>, Receiver<Event>),
    next_id: AtomicU64,
}

impl App for Chat {
    type Endpoint = ();

    fn route(&self, request: &Request<'_>) -> Routed<()> {
        Routed::page_and_socket(request, PAGE, ())
    }

    fn message_limit(&self) -> usize {
        MAX_MESSAGE_BYTES
    }

    async fn serve(self: Arc<Self>, mut conn: Connection, _endpoint: ()) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (outbox, inbox) = Outbox::bounded(OUTBOX_BYTES);
        let hub = &self.events.0;
        let _ = hub.send(Event::Join(id, outbox)).await;
        conn.limit_rate(RATE.0, RATE.1);
        // `next` delivers the outbox while it waits for the client's next message.
        while let Some(message) = conn.next(Some(&inbox)).await {
            let Message::Text(_) = &message else { continue };
            if !conn.take_token() {
                conn.close_rate_limited().await;
                break;
            }
            // While the hub's mailbox is full, the client keeps receiving.
            let said = conn.deliver_until(&inbox, hub.send(Event::Say(id, message))).await;
            if !matches!(said, Some(Ok(()))) {
                break;
            }
        }
        let _ = hub.send(Event::Leave(id)).await;
    }

    /// The hub: owns the clients, waits only for events, never for a client.
    async fn background(self: Arc<Self>, _spawner: Spawner) {
        let mut clients: Vec<(u64, Outbox)> = Vec::new();
        while let Ok(event) = self.events.1.recv().await {
            match event {
                Event::Join(id, outbox) => clients.push((id, outbox)),
                Event::Leave(id) => clients.retain(|(other, _)| *other != id),
                // A push never waits, and the text's bytes are shared, not copied per client.
                Event::Say(from, message) => {
                    for (_, outbox) in clients.iter().filter(|(id, _)| *id != from) {
                        if let Err(PushError::Full(_)) = outbox.push(message.clone()) {
                            outbox.evict("too slow: outbox full");
                        }
                    }
                }
            }
        }
    }
}

const PAGE: &str = r#"<!doctype html><meta charset=utf-8><title>chat</title>
<pre id=log></pre><form id=form><input id=line autofocus size=60></form>
<script>
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
const show = (text) => (log.textContent += text + "\n");
ws.onmessage = (e) => show(e.data);
ws.onclose = (e) => show(`closed: ${e.code} ${e.reason}`);
form.onsubmit = (e) => { e.preventDefault(); ws.send(line.value); show("me: " + line.value); line.value = ""; };
</script>"#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = match args.as_slice() {
        [] => Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
        [flag, addr] if flag == "--listen" => addr.parse().ok(),
        _ => None,
    };
    let Some(listen) = listen else {
        eprintln!("usage: chat [--listen IP:PORT]");
        return ExitCode::from(2);
    };
    smolcanvas::init_logging(log::LevelFilter::Info);
    let chat = Chat { events: bounded(HUB_QUEUE), next_id: AtomicU64::new(0) };
    match smolcanvas::run(ServerConfig { listen, ..ServerConfig::default() }, chat) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err}");
            ExitCode::FAILURE
        }
    }
}
