//! A load client (answers syncs, records what it receives, optionally sends draws on a
//! schedule) and the ramp that opens them batch by batch.

use std::rc::Rc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{StreamExt, future};
use smol::channel::Receiver;
use smol::{LocalExecutor, Timer};

use crate::load::{HANDSHAKE_TIMEOUT, HANDSHAKES_IN_FLIGHT, Load, SEQ_SPLIT, Ws, bump, close_reason, error_reason};

const POLL: Duration = Duration::from_millis(2);
/// After one batch has not settled in time, later batches wait at most this long.
const SETTLE_AFTER_TIMEOUT_SECS: f64 = 2.0;

/// A client's sending schedule: draw `seq` is due at `start + phase + seq * interval`,
/// `start` arriving on `start_rx` once every client is connected.
pub struct Sender {
    index: usize,
    count: usize,
    interval_ns: u64,
    phase_ns: u64,
    start_rx: Receiver<Instant>,
    seq: usize,
    start: Option<Instant>,
}

impl Sender {
    pub fn new(index: usize, count: usize, interval_ns: u64, phase_ns: u64, start_rx: Receiver<Instant>) -> Sender {
        Sender { index, count, interval_ns, phase_ns, start_rx, seq: 0, start: None }
    }

    fn due(&self) -> Option<Instant> {
        let start = self.start?;
        let offset = self.phase_ns + self.interval_ns * self.seq as u64;
        (self.seq < self.count).then(|| start + Duration::from_nanos(offset))
    }

    fn begin(&mut self, start: Option<Instant>) {
        self.start = Some(start.unwrap_or_else(Instant::now));
        if start.is_none() {
            self.count = 0;
        }
    }
}

enum Event {
    Frame(Option<Result<Message, WsError>>),
    Start(Option<Instant>),
    Due(Instant),
}

/// One load client, until the server closes it (or the process ends).
async fn client(load: Rc<Load>, slot: usize, mut sender: Option<Sender>) {
    let Some(mut ws) = load.open_slot(slot).await else { return };
    let why = loop {
        let step = match next_event(&mut ws, sender.as_ref()).await {
            Event::Frame(frame) => on_frame(&load, slot, &mut ws, frame).await,
            Event::Start(start) => {
                if let Some(sender) = sender.as_mut() {
                    sender.begin(start);
                }
                Ok(())
            }
            Event::Due(due) => match sender.as_mut() {
                Some(sender) => send_draw(&load, &mut ws, sender, due).await,
                None => Ok(()),
            },
        };
        if let Err(why) = step {
            break why;
        }
    };
    load.close_slot(slot, why);
}

/// The next frame, or for a sender its start signal or next due draw (checked first, so
/// that a busy socket does not hold up the schedule).
async fn next_event(ws: &mut Ws, sender: Option<&Sender>) -> Event {
    let frame = async { Event::Frame(ws.next().await) };
    let Some(sender) = sender else { return frame.await };
    if sender.start.is_none() {
        return future::or(async { Event::Start(sender.start_rx.recv().await.ok()) }, frame).await;
    }
    let Some(due) = sender.due() else { return frame.await };
    let timer = async move {
        Timer::at(due).await;
        Event::Due(due)
    };
    future::or(timer, frame).await
}

async fn on_frame(
    load: &Load,
    slot: usize,
    ws: &mut Ws,
    frame: Option<Result<Message, WsError>>,
) -> Result<(), String> {
    match frame {
        Some(Ok(Message::Text(text))) => {
            if let Some(reply) = load.on_text(slot, text.as_str()) {
                ws.send(Message::text(reply)).await.map_err(|err| error_reason(&err))?;
                bump(&load.answered);
            }
            Ok(())
        }
        Some(Ok(Message::Close(frame))) => Err(close_reason(frame)),
        Some(Ok(_)) => Ok(()),
        Some(Err(err)) => Err(error_reason(&err)),
        None => Err("eof".to_string()),
    }
}

async fn send_draw(load: &Load, ws: &mut Ws, sender: &mut Sender, due: Instant) -> Result<(), String> {
    let seq = sender.seq;
    sender.seq += 1;
    let text = format!(
        r##"{{"type":"draw","color":"#e4572e","startX":{},"startY":{},"endX":{},"endY":360,"lineWidth":3}}"##,
        sender.index,
        seq % SEQ_SPLIT,
        seq / SEQ_SPLIT
    );
    load.note_send(sender.index, seq, due);
    ws.send(Message::text(text)).await.map_err(|err| error_reason(&err))?;
    bump(&load.sent);
    Ok(())
}

/// Polls `done` every 2 ms until it holds (true) or `limit` has passed (false).
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        Timer::after(POLL).await;
    }
}

pub struct Ramp {
    secs: f64,
    settle_timeouts: usize,
}

impl Ramp {
    pub fn print(&self, load: &Load) {
        println!("ramp_secs={:.2}", self.secs);
        println!("ramp_settle_timeouts={}", self.settle_timeouts);
        println!("open_after_ramp={}", load.open.get());
    }
}

/// Opens a client per slot, `batch` at a time (0 = all at once), waiting after each batch
/// until every open client has seen the new clientCount.
pub async fn ramp(
    ex: &LocalExecutor<'_>,
    load: &Rc<Load>,
    batch: usize,
    settle_secs: f64,
    mut sender_for: impl FnMut(usize) -> Option<Sender>,
) -> Ramp {
    let n = load.slots();
    let t0 = Instant::now();
    let (mut started, mut settle_timeouts) = (0, 0);
    while started < n {
        let size = if batch == 0 { n - started } else { batch.min(n - started) };
        for slot in started..started + size {
            ex.spawn(client(load.clone(), slot, sender_for(slot))).detach();
        }
        started += size;
        let handshakes = HANDSHAKE_TIMEOUT * (size.div_ceil(HANDSHAKES_IN_FLIGHT) as u32 + 1);
        wait_until(handshakes, || load.attempted.get() >= started).await;
        let limit = if settle_timeouts == 0 { settle_secs } else { settle_secs.min(SETTLE_AFTER_TIMEOUT_SECS) };
        if !wait_until(Duration::from_secs_f64(limit), || load.settled(started)).await {
            if settle_timeouts == 0 {
                println!("# warning: clientCount did not settle at {started} connections within {limit} s");
            }
            settle_timeouts += 1;
        }
    }
    Ramp { secs: t0.elapsed().as_secs_f64(), settle_timeouts }
}
