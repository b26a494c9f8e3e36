//! `soak`: about N clients stay connected for M minutes while C of them a second, one
//! every 1/C s, leave (close handshake, TCP drop, or half a frame then a drop) and are
//! replaced by new ones; K clients draw, and every other client checks what it receives.
//! The server's RSS and open fds are sampled as it goes, so a leak or a slowdown shows as
//! a trend.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_lite::{AsyncWriteExt, StreamExt, future};
use futures_sink::Sink;
use smol::channel::{self, Receiver, Sender};
use smol::{LocalExecutor, Timer};

use crate::client::wait_until;
use crate::histogram::Histogram;
use crate::load::{
    HANDSHAKE_TIMEOUT, HANDSHAKES_IN_FLIGHT, Incoming, Load, SEQ_SPLIT, Tally, Ws, bump, close_reason, draw_id,
    error_reason,
};
use crate::opts::Opts;
use crate::procfs::{self, CpuSample, CpuSpent};
use crate::snapshot::{SyncKind, TINY_SNAPSHOT};

/// A client without its canvasState this long after its upgrade counts as a sync timeout.
const SYNC_WAIT: Duration = Duration::from_secs(10);
/// How long a clean close (ours or the server's) waits for the other side's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// After the last draw: time for the last deliveries.
const DRAIN: Duration = Duration::from_secs(2);
/// After every client has closed: how long to wait for the server's fd count to come back down.
const RELEASE_WAIT: Duration = Duration::from_secs(3);
/// Out of every 20 churned clients, this many close mid-frame ...
const MID_FRAME_IN_20: u64 = 2;
/// ... and this many with a close handshake; the rest drop the TCP connection.
const CLEAN_IN_20: u64 = 9;
/// What a client that closes mid-frame sends half of (a valid draw, masked as a client must).
const HALF_SENT: &[u8] =
    br##"{"type":"draw","color":"#17becf","startX":1,"startY":2,"endX":3,"endY":4,"lineWidth":3}"##;
const _: () = assert!(HALF_SENT.len() < 126, "a 7-bit payload length");
/// Skipped draws one receiver keeps track of (to tell late ones from missed ones); more
/// are counted as missed at once.
const MAX_MISSING: usize = 4096;

#[derive(Clone, Copy)]
enum Exit {
    /// Close handshake, churned during the run.
    Clean,
    /// TCP connection dropped without a close frame.
    Drop,
    /// Half of a text frame, then the TCP connection dropped.
    MidFrame,
    /// Close handshake at the end of the run.
    Final,
}

enum End {
    Exit(Exit),
    /// The server sent a close frame: its code.
    Server(String),
    /// The connection failed or ended without a close frame.
    Error(String),
}

enum Event {
    Frame(Option<Result<Message, WsError>>),
    Wake,
    Due(usize, Instant),
}

/// A connected client, as the controller sees it.
struct Member {
    id: u64,
    upgraded: Instant,
    /// When it started connecting, on the load's clock: draws written earlier reach it only
    /// as the server's replay of its board.
    since_ns: u64,
    /// Snapshot answers given before it started connecting.
    answers_before: usize,
    synced: Cell<bool>,
    sync_timed_out: Cell<bool>,
    left: Cell<bool>,
    role: Cell<Option<usize>>,
    exit: Cell<Option<Exit>>,
    wake: Sender<()>,
}

/// What one receiver got of each drawing schedule.
struct Seen {
    last: Vec<Option<usize>>,
    /// `(schedule, seq)` skipped so far and not arrived since.
    missing: BTreeSet<(usize, usize)>,
}

/// One of the K drawing schedules; whoever owns it draws for it.
struct Role {
    owner: Cell<Option<u64>>,
    seq: Cell<usize>,
    due: Cell<Instant>,
}

#[derive(Default)]
struct Stats {
    connects_ok: Cell<u64>,
    connects_failed: Cell<u64>,
    syncs_peer: Cell<u64>,
    syncs_fallback: Cell<u64>,
    syncs_timed_out: Cell<u64>,
    syncs_late: Cell<u64>,
    syncs_abandoned: Cell<u64>,
    sync_times: RefCell<Histogram>,
    churned_clean: Cell<u64>,
    churned_drop: Cell<u64>,
    churned_mid_frame: Cell<u64>,
    clean_acked: Cell<u64>,
    clean_unacked: Tally,
    acks: Tally,
    final_acked: Cell<u64>,
    server_closes: Cell<u64>,
    server_close_codes: Tally,
    errors: Cell<u64>,
    error_reasons: Tally,
    server_requests: Cell<u64>,
    takeovers: Cell<u64>,
    stale: Cell<u64>,
    gaps: Cell<u64>,
    late: Cell<u64>,
    missed: Cell<u64>,
    repeated: Cell<u64>,
    /// Relay latencies since the last sample.
    window: RefCell<Histogram>,
}

struct Soak {
    load: Rc<Load>,
    target: usize,
    interval: Duration,
    per_role: usize,
    roles: Vec<Role>,
    members: RefCell<Vec<Rc<Member>>>,
    connecting: Cell<usize>,
    alive: Cell<usize>,
    next_id: Cell<u64>,
    rng: Cell<u64>,
    running: Cell<bool>,
    drawing: Cell<bool>,
    server_count: Cell<Option<u64>>,
    stats: Stats,
}

/// The server's RSS and open fds at one instant.
#[derive(Clone, Copy)]
struct Probe {
    t: f64,
    rss: Option<u64>,
    fds: Option<usize>,
}

impl Probe {
    fn take(pid: Option<u32>, t: f64) -> Probe {
        Probe { t, rss: pid.and_then(procfs::rss_kib), fds: pid.and_then(procfs::open_fds) }
    }
}

pub async fn run(ex: &LocalExecutor<'_>, opts: &Opts, addr: SocketAddr) {
    let pid = opts.server_pid;
    let idle = Probe::take(pid, 0.0);
    let soak = Rc::new(Soak::new(opts, addr));
    let ramp_start = Instant::now();
    for _ in 0..opts.clients {
        soak.open(ex);
    }
    let limit = HANDSHAKE_TIMEOUT * (opts.clients.div_ceil(HANDSHAKES_IN_FLIGHT) as u32 + 1) + SYNC_WAIT;
    wait_until(limit, || soak.connecting.get() == 0 && soak.members.borrow().iter().all(|m| m.synced.get())).await;
    println!(
        "minutes={} clients={} churn_per_sec={} drawers={} rate={} sample_secs={}",
        opts.minutes, opts.clients, opts.churn, opts.senders, opts.rate, opts.sample_secs
    );
    println!("ramp_secs={:.2}", ramp_start.elapsed().as_secs_f64());
    println!("open_after_ramp={}", soak.members.borrow().len());

    let t0 = Instant::now();
    soak.start(t0);
    let samples = soak.sample_until_end(ex, opts, t0).await;
    soak.drawing.set(false);
    soak.running.set(false);
    Timer::after(DRAIN).await;
    soak.close_all();
    wait_until(CLOSE_WAIT + Duration::from_secs(1), || soak.alive.get() == 0).await;
    if let (Some(pid), Some(before)) = (pid, idle.fds) {
        wait_until(RELEASE_WAIT, || procfs::open_fds(pid).is_some_and(|fds| fds <= before)).await;
    }
    let after = Probe::take(pid, t0.elapsed().as_secs_f64());
    print_server(opts, &samples, idle, after);
    soak.print();
}

impl Soak {
    fn new(opts: &Opts, addr: SocketAddr) -> Soak {
        let per_role = opts.draws_per_sender();
        let now = Instant::now();
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |t| t.as_nanos() as u64);
        Soak {
            load: Load::new(&opts.url, addr, 0, opts.senders, per_role, TINY_SNAPSHOT),
            target: opts.clients,
            interval: Duration::from_secs_f64(1.0 / opts.rate),
            per_role,
            roles: (0..opts.senders)
                .map(|_| Role { owner: Cell::new(None), seq: Cell::new(0), due: Cell::new(now) })
                .collect(),
            members: RefCell::default(),
            connecting: Cell::new(0),
            alive: Cell::new(0),
            next_id: Cell::new(0),
            rng: Cell::new(seed | 1),
            running: Cell::new(true),
            drawing: Cell::new(false),
            server_count: Cell::new(None),
            stats: Stats::default(),
        }
    }

    /// xorshift64: a number below `n` (n > 0).
    fn random(&self, n: usize) -> usize {
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.set(x);
        (x % n as u64) as usize
    }

    fn open(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        self.connecting.set(self.connecting.get() + 1);
        self.alive.set(self.alive.get() + 1);
        let soak = self.clone();
        ex.spawn(async move {
            soak.session().await;
            soak.alive.set(soak.alive.get() - 1);
        })
        .detach();
    }

    /// Staggers the drawing schedules over one interval from `t0` and hands them out.
    fn start(&self, t0: Instant) {
        let k = self.roles.len() as u32;
        for (index, role) in self.roles.iter().enumerate() {
            role.due.set(t0 + self.interval * index as u32 / k);
        }
        self.drawing.set(true);
        self.fill_roles();
    }

    /// Replaces a client every 1/C s and samples every `--sample-secs` until the end of the
    /// run, which gets a sample of its own (a sample comes before a replacement due at the
    /// same time); returns the samples.
    async fn sample_until_end(self: &Rc<Self>, ex: &LocalExecutor<'_>, opts: &Opts, t0: Instant) -> Vec<Probe> {
        let step = (opts.churn > 0).then(|| Duration::from_secs(1) / opts.churn as u32);
        let mut next_churn = step.map(|step| t0 + step);
        let mut cpu = CpuSample::take(opts.server_pid);
        let mut samples = Vec::new();
        for k in 0u64.. {
            let t = (k as f64 * opts.sample_secs).min(opts.secs);
            let at = t0 + Duration::from_secs_f64(t);
            while let Some(due) = next_churn.filter(|&due| due < at) {
                Timer::at(due).await;
                self.replace_one(ex);
                next_churn = step.map(|step| due + step);
            }
            Timer::at(at).await;
            if t < opts.secs {
                self.tend(ex);
            }
            let probe = Probe::take(opts.server_pid, t);
            let now = CpuSample::take(opts.server_pid);
            let spent = now.since(&cpu);
            self.print_sample(probe, &spent);
            cpu = now;
            samples.push(probe);
            if t >= opts.secs {
                break;
            }
        }
        samples
    }

    fn print_sample(&self, probe: Probe, cpu: &CpuSpent) {
        let pct = |secs: Option<f64>| secs.map(|secs| format!("{:.1}", 100.0 * secs / cpu.wall_secs.max(1e-9)));
        let show = |value: Option<String>| value.unwrap_or_else(|| "na".to_string());
        let window = std::mem::take(&mut *self.stats.window.borrow_mut());
        println!(
            "# t={:.0} rss_kib={} fds={} clients={} server_count={} p99_ms={:.3} server_cpu_pct={} loadgen_cpu_pct={}",
            probe.t,
            show(probe.rss.map(|rss| rss.to_string())),
            show(probe.fds.map(|fds| fds.to_string())),
            self.members.borrow().len(),
            show(self.server_count.get().map(|n| n.to_string())),
            window.quantile_ms(0.99),
            show(pct(cpu.server_secs)),
            show(pct(cpu.own_secs)),
        );
    }

    /// A random client leaves, and a new one joins.
    fn replace_one(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        let len = self.members.borrow().len();
        if len > 0 {
            let member = self.members.borrow()[self.random(len)].clone();
            let exit = match self.random(20) as u64 {
                n if n < MID_FRAME_IN_20 => Exit::MidFrame,
                n if n < MID_FRAME_IN_20 + CLEAN_IN_20 => Exit::Clean,
                _ => Exit::Drop,
            };
            bump(match exit {
                Exit::MidFrame => &self.stats.churned_mid_frame,
                Exit::Clean | Exit::Final => &self.stats.churned_clean,
                Exit::Drop => &self.stats.churned_drop,
            });
            self.dismiss(&member, exit);
        }
        self.tend(ex);
    }

    /// Counts overdue syncs, hands out free drawing schedules and opens clients until N are
    /// connected or connecting.
    fn tend(self: &Rc<Self>, ex: &LocalExecutor<'_>) {
        self.check_syncs();
        self.fill_roles();
        let present = self.members.borrow().len() + self.connecting.get();
        for _ in present..self.target {
            self.open(ex);
        }
    }

    fn dismiss(&self, member: &Member, exit: Exit) {
        self.leave(member);
        member.exit.set(Some(exit));
        let _ = member.wake.try_send(());
    }

    fn close_all(&self) {
        let members = self.members.borrow().clone();
        for member in members {
            self.dismiss(&member, Exit::Final);
        }
    }

    /// Counts the clients whose canvasState is overdue.
    fn check_syncs(&self) {
        for member in self.members.borrow().iter() {
            if !member.synced.get() && !member.sync_timed_out.get() && member.upgraded.elapsed() >= SYNC_WAIT {
                member.sync_timed_out.set(true);
                bump(&self.stats.syncs_timed_out);
            }
        }
    }

    /// Gives every schedule without a drawer to a random synced client that does not draw yet.
    fn fill_roles(&self) {
        if !self.drawing.get() {
            return;
        }
        for (index, role) in self.roles.iter().enumerate() {
            if role.owner.get().is_some() {
                continue;
            }
            let members = self.members.borrow();
            let free: Vec<&Rc<Member>> =
                members.iter().filter(|m| m.synced.get() && m.role.get().is_none() && m.exit.get().is_none()).collect();
            if free.is_empty() {
                return;
            }
            let member = free[self.random(free.len())];
            member.role.set(Some(index));
            role.owner.set(Some(member.id));
            role.due.set(role.due.get().max(Instant::now()));
            if role.seq.get() > 0 {
                bump(&self.stats.takeovers);
            }
            let _ = member.wake.try_send(());
        }
    }

    /// Takes a client off the list (once): its schedule goes free, its sync is settled.
    fn leave(&self, member: &Member) {
        if member.left.replace(true) {
            return;
        }
        let mut members = self.members.borrow_mut();
        if let Some(index) = members.iter().position(|m| m.id == member.id) {
            members.swap_remove(index);
        }
        if let Some(role) = member.role.get().map(|index| &self.roles[index]) {
            if role.owner.get() == Some(member.id) {
                role.owner.set(None);
            }
        }
        if !member.synced.get() && !member.sync_timed_out.get() {
            if member.upgraded.elapsed() >= SYNC_WAIT {
                bump(&self.stats.syncs_timed_out);
            } else {
                bump(&self.stats.syncs_abandoned);
            }
        }
    }

    /// One client, from its connect to its close.
    async fn session(&self) {
        let since_ns = self.load.now_ns();
        let answers_before = self.load.snapshot.issued();
        let connected = self.load.connect().await;
        self.connecting.set(self.connecting.get() - 1);
        let mut ws = match connected {
            Ok(ws) => ws,
            Err(err) => {
                bump(&self.stats.connects_failed);
                self.load.connect_errors.add(err);
                return;
            }
        };
        bump(&self.stats.connects_ok);
        let (wake, woken) = channel::bounded(1);
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let member = Rc::new(Member {
            id,
            upgraded: Instant::now(),
            since_ns,
            answers_before,
            synced: Cell::new(false),
            sync_timed_out: Cell::new(false),
            left: Cell::new(false),
            role: Cell::new(None),
            exit: Cell::new(None),
            wake,
        });
        if self.running.get() {
            self.members.borrow_mut().push(member.clone());
        } else {
            member.exit.set(Some(Exit::Final));
        }
        let mut seen = Seen { last: vec![None; self.roles.len()], missing: BTreeSet::new() };
        let end = loop {
            if let Some(exit) = member.exit.get() {
                break End::Exit(exit);
            }
            let step = match self.next_event(&mut ws, &member, &woken).await {
                Event::Frame(frame) => self.on_frame(&member, &mut ws, &mut seen, frame).await,
                Event::Wake => Ok(()),
                Event::Due(role, due) => self.send_draw(&member, &mut ws, role, due).await,
            };
            if let Err(end) = step {
                break end;
            }
        };
        self.leave(&member);
        add(&self.stats.missed, seen.missing.len());
        match end {
            End::Exit(exit) => self.close(ws, exit).await,
            End::Server(code) => {
                bump(&self.stats.server_closes);
                self.stats.server_close_codes.add(code);
                let _ = bounded(CLOSE_WAIT, async { while ws.next().await.is_some() {} }).await;
            }
            End::Error(reason) => {
                bump(&self.stats.errors);
                self.stats.error_reasons.add(reason);
            }
        }
    }

    /// The client's next frame or wake-up, or for a drawer its next due draw (checked first).
    async fn next_event(&self, ws: &mut Ws, member: &Member, woken: &Receiver<()>) -> Event {
        let frame = async { Event::Frame(ws.next().await) };
        let wake = async {
            let _ = woken.recv().await;
            Event::Wake
        };
        let inputs = future::or(wake, frame);
        match self.due(member) {
            Some((role, due)) => {
                let timer = async move {
                    Timer::at(due).await;
                    Event::Due(role, due)
                };
                future::or(timer, inputs).await
            }
            None => inputs.await,
        }
    }

    fn due(&self, member: &Member) -> Option<(usize, Instant)> {
        let index = member.role.get()?;
        let role = &self.roles[index];
        let mine = role.owner.get() == Some(member.id) && self.drawing.get() && role.seq.get() < self.per_role;
        mine.then(|| (index, role.due.get()))
    }

    async fn send_draw(&self, member: &Member, ws: &mut Ws, index: usize, due: Instant) -> Result<(), End> {
        if self.due(member).is_none() {
            return Ok(());
        }
        let role = &self.roles[index];
        let seq = role.seq.get();
        role.seq.set(seq + 1);
        let next = due + self.interval;
        let now = Instant::now();
        role.due.set(if now.saturating_duration_since(next) > self.interval { now } else { next });
        let text = format!(
            r##"{{"type":"draw","color":"#e4572e","startX":{index},"startY":{},"endX":{},"endY":360,"lineWidth":3}}"##,
            seq % SEQ_SPLIT,
            seq / SEQ_SPLIT
        );
        self.load.note_send(index, seq, due);
        ws.send(Message::text(text)).await.map_err(|err| End::Error(error_reason(&err)))?;
        bump(&self.load.sent);
        Ok(())
    }

    async fn on_frame(
        &self,
        member: &Member,
        ws: &mut Ws,
        seen: &mut Seen,
        frame: Option<Result<Message, WsError>>,
    ) -> Result<(), End> {
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return Err(End::Server(close_reason(frame))),
            Some(Ok(_)) => return Ok(()),
            Some(Err(err)) => return Err(End::Error(error_reason(&err))),
            None => return Err(End::Error("eof".to_string())),
        };
        let Ok(msg) = serde_json::from_str::<Incoming>(text.as_str()) else { return Ok(()) };
        match msg.kind.as_deref() {
            Some("draw") => self.on_draw(member, seen, &msg),
            Some("canvasState") => self.on_state(member, &msg),
            Some("clientCount") => self.server_count.set(msg.client_count.map(|n| n as u64)),
            Some("canvasRequest") => {
                let client_id = msg.client_id.as_deref().unwrap_or_default();
                if client_id == "server" {
                    bump(&self.stats.server_requests);
                }
                let reply = self.load.snapshot.answer(client_id);
                ws.send(Message::text(reply)).await.map_err(|err| End::Error(error_reason(&err)))?;
                bump(&self.load.answered);
            }
            Some("error") => self.load.on_server_error(&msg),
            _ => {}
        }
        Ok(())
    }

    /// A relayed draw: a delivery if it is new to this client, a gap if draws of its
    /// schedule were skipped since the latest one this client got, late if it was skipped.
    fn on_draw(&self, member: &Member, seen: &mut Seen, msg: &Incoming) {
        let sent = draw_id(msg).and_then(|(role, seq)| Some((role, seq, self.load.sent_ns(role, seq)?)));
        let Some((role, seq, sent_ns)) = sent else {
            bump(&self.load.unmatched);
            return;
        };
        if sent_ns < member.since_ns {
            bump(&self.stats.stale);
            return;
        }
        match seen.last[role] {
            Some(last) if seq <= last => {
                if !seen.missing.remove(&(role, seq)) {
                    bump(&self.stats.repeated);
                    return;
                }
                bump(&self.stats.late);
            }
            Some(last) => {
                let skipped = last + 1..seq;
                add(&self.stats.gaps, skipped.len());
                if seen.missing.len() + skipped.len() <= MAX_MISSING {
                    seen.missing.extend(skipped.map(|skipped| (role, skipped)));
                } else {
                    add(&self.stats.missed, skipped.len());
                }
                seen.last[role] = Some(seq);
            }
            None => seen.last[role] = Some(seq),
        }
        let us = self.load.record_delivery(sent_ns);
        self.stats.window.borrow_mut().record_us(us);
    }

    fn on_state(&self, member: &Member, msg: &Incoming) {
        if member.synced.replace(true) {
            return;
        }
        if member.sync_timed_out.get() {
            bump(&self.stats.syncs_late);
            return;
        }
        match self.load.snapshot.classify(msg.data.as_deref().unwrap_or_default(), member.answers_before) {
            SyncKind::Peer => bump(&self.stats.syncs_peer),
            SyncKind::Empty | SyncKind::Stored => bump(&self.stats.syncs_fallback),
        }
        self.stats.sync_times.borrow_mut().record_us(member.upgraded.elapsed().as_micros() as u64);
    }

    async fn close(&self, mut ws: Ws, exit: Exit) {
        match exit {
            Exit::Drop => drop(ws),
            Exit::MidFrame => {
                let mask = (self.random(1 << 31) as u32).to_be_bytes();
                let mut frame = vec![0x81, 0x80 | HALF_SENT.len() as u8];
                frame.extend(mask);
                frame.extend(HALF_SENT[..HALF_SENT.len() / 2].iter().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
                let _ = future::poll_fn(|cx| Pin::new(&mut ws).poll_flush(cx)).await;
                let _ = ws.get_mut().write_all(&frame).await;
            }
            Exit::Clean | Exit::Final => {
                let handshake = async {
                    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                    ws.close(Some(frame)).await.map_err(|err| error_reason(&err))?;
                    loop {
                        match ws.next().await {
                            Some(Ok(Message::Close(frame))) => return Ok(close_reason(frame)),
                            Some(Ok(_)) => {}
                            Some(Err(err)) => return Err(error_reason(&err)),
                            None => return Err("eof".to_string()),
                        }
                    }
                };
                let answer = bounded(CLOSE_WAIT, handshake).await.unwrap_or_else(|| Err("timeout".to_string()));
                match (exit, answer) {
                    (Exit::Final, Ok(_)) => bump(&self.stats.final_acked),
                    (_, Ok(code)) => {
                        bump(&self.stats.clean_acked);
                        self.stats.acks.add(code);
                    }
                    (_, Err(reason)) => self.stats.clean_unacked.add(reason),
                }
            }
        }
    }

    fn print(&self) {
        let stats = &self.stats;
        let syncs_ok = stats.syncs_peer.get() + stats.syncs_fallback.get();
        println!("connects_ok={}", stats.connects_ok.get());
        println!("connects_failed={}", stats.connects_failed.get());
        self.load.connect_errors.print("connect error");
        println!("syncs_ok={syncs_ok}");
        println!("syncs_peer={}", stats.syncs_peer.get());
        println!("syncs_fallback={}", stats.syncs_fallback.get());
        println!("syncs_timed_out={}", stats.syncs_timed_out.get());
        println!("syncs_late={}", stats.syncs_late.get());
        println!("syncs_abandoned={}", stats.syncs_abandoned.get());
        stats.sync_times.borrow().print("sync", false);
        println!("churned_clean={}", stats.churned_clean.get());
        println!("churned_drop={}", stats.churned_drop.get());
        println!("churned_mid_frame={}", stats.churned_mid_frame.get());
        println!("clean_close_acked={}", stats.clean_acked.get());
        stats.acks.print_keys("clean_close_ack_code_");
        println!("clean_close_unacked={}", stats.clean_unacked.total());
        stats.clean_unacked.print("clean close unacked");
        println!("final_close_acked={}", stats.final_acked.get());
        println!("server_closes={}", stats.server_closes.get());
        stats.server_close_codes.print_keys("server_close_code_");
        println!("errors={}", stats.errors.get());
        stats.error_reasons.print("error");
        println!("server_error_msgs={}", self.load.server_errors.get());
        println!("canvas_requests_answered={}", self.load.answered.get());
        println!("server_snapshot_requests={}", stats.server_requests.get());
        println!("drawer_takeovers={}", stats.takeovers.get());
        println!("sent={}", self.load.sent.get());
        println!("deliveries={}", self.load.delivered.get());
        println!("# draws sent before the receiver connected (the server's replay of its board), not counted");
        println!("stale_draws={}", stats.stale.get());
        println!("# per receiver: draws skipped when a later one of their schedule came first (gaps), of those the");
        println!("# ones that came afterwards (late) and the ones that never came while it was connected (missed)");
        println!("draw_gaps={}", stats.gaps.get());
        println!("draws_late={}", stats.late.get());
        println!("draws_missed={}", stats.missed.get());
        println!("draws_repeated={}", stats.repeated.get());
        println!("# draws this run did not send (an earlier run's, in the board the server replays)");
        println!("unmatched_draws={}", self.load.unmatched.get());
        self.load.latencies.borrow().print("latency", false);
        println!("max_send_lag_ms={:.3}", self.load.max_send_lag.get().as_secs_f64() * 1000.0);
    }
}

/// RSS and fds: before the ramp, at the start, middle and end of the run, their maximum, and
/// once every client has gone.
fn print_server(opts: &Opts, samples: &[Probe], idle: Probe, after: Probe) {
    println!("soak_secs={}", opts.secs);
    let Some(pid) = opts.server_pid else { return };
    let (Some(start), Some(end)) = (samples.first(), samples.last()) else { return };
    let mid = samples.iter().min_by(|a, b| (a.t - opts.secs / 2.0).abs().total_cmp(&(b.t - opts.secs / 2.0).abs()));
    let show = |value: Option<u64>| value.map_or_else(|| "na".to_string(), |v| v.to_string());
    let fds = |probe: Option<&Probe>| show(probe.and_then(|p| p.fds).map(|fds| fds as u64));
    println!("rss_kib_before_ramp={}", show(idle.rss));
    println!("rss_kib_start={}", show(start.rss));
    println!("rss_kib_mid={}", show(mid.and_then(|p| p.rss)));
    println!("rss_kib_end={}", show(end.rss));
    println!("rss_kib_max={}", show(samples.iter().filter_map(|p| p.rss).max()));
    let second_half: Vec<Probe> = samples.iter().filter(|p| p.t >= opts.secs / 2.0).copied().collect();
    for (key, samples) in [("rss_kib_slope_per_min", samples), ("rss_kib_slope_per_min_2nd_half", &second_half[..])] {
        if let Some(slope) = slope_per_min(samples) {
            println!("{key}={slope:.1}");
        }
    }
    println!("rss_kib_after_close={}", show(after.rss));
    println!("fds_before_ramp={}", fds(Some(&idle)));
    println!("fds_start={}", fds(Some(start)));
    println!("fds_mid={}", fds(mid));
    println!("fds_end={}", fds(Some(end)));
    println!("fds_max={}", show(samples.iter().filter_map(|p| p.fds).max().map(|fds| fds as u64)));
    println!("fds_after_close={}", fds(Some(&after)));
    if idle.rss.is_none() {
        println!("# cannot read /proc/{pid}/status");
    }
}

/// Least-squares slope of RSS over the samples, in KiB per minute.
fn slope_per_min(samples: &[Probe]) -> Option<f64> {
    let points: Vec<(f64, f64)> = samples.iter().filter_map(|p| Some((p.t / 60.0, p.rss? as f64))).collect();
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let (mean_t, mean_r) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let cov: f64 = points.iter().map(|(t, r)| (t - mean_t) * (r - mean_r)).sum();
    let var: f64 = points.iter().map(|(t, _)| (t - mean_t).powi(2)).sum();
    (var > 0.0).then(|| cov / var)
}

fn add(counter: &Cell<u64>, n: usize) {
    counter.set(counter.get() + n as u64);
}

/// `work`, or `None` after `limit`.
async fn bounded<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    future::or(async { Some(work.await) }, async {
        Timer::after(limit).await;
        None
    })
    .await
}
