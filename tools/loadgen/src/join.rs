//! `join`: N-1 peers answer canvas syncs with a large snapshot; a newcomer joins again
//! and again and times how long its `canvasState` takes, and where it came from.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use futures_lite::{StreamExt, future};
use smol::{LocalExecutor, Timer};

use crate::client::{ramp, wait_until};
use crate::histogram::Histogram;
use crate::load::{Incoming, Load, Ws, bump, close_reason, error_reason};
use crate::opts::Opts;
use crate::procfs::CpuSample;
use crate::snapshot::SyncKind;

const SYNC_WAIT: Duration = Duration::from_secs(10);
const CLOSE_WAIT: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Joins {
    total: Histogram,
    after_upgrade: Histogram,
    peer: usize,
    empty: usize,
    stored: usize,
    none: usize,
    connect_failed: usize,
    unsettled: usize,
}

pub async fn run(ex: &LocalExecutor<'_>, opts: &Opts, addr: SocketAddr) {
    let peers = opts.clients - 1;
    let load = Load::new(&opts.url, addr, peers, 0, 0, opts.png_kib * 1024);
    let ramp = ramp(ex, &load, opts.batch, opts.settle_secs, |_| None).await;
    println!("clients={} rounds={}", opts.clients, opts.rounds);
    println!("png_data_url_bytes={}", load.snapshot.data_url_len());
    ramp.print(&load);
    let before = CpuSample::take(opts.server_pid);
    let mut joins = Joins::default();
    for _ in 0..opts.rounds {
        if !wait_until(Duration::from_secs_f64(opts.settle_secs), || load.settled(peers)).await {
            joins.unsettled += 1;
        }
        joins.round(&load).await;
    }
    if let Some(secs) = CpuSample::take(opts.server_pid).since(&before).server_secs {
        println!("server_cpu_rounds_secs={secs:.2}");
    }
    joins.print();
    load.print_connections();
}

impl Joins {
    /// One newcomer: connect, wait (bounded) for its canvasState, leave.
    async fn round(&mut self, load: &Load) {
        let since = load.snapshot.issued();
        let t0 = Instant::now();
        let mut ws = match load.connect().await {
            Ok(ws) => ws,
            Err(err) => {
                self.connect_failed += 1;
                load.connect_errors.add(err);
                return;
            }
        };
        let upgraded = Instant::now();
        let timeout = async {
            Timer::after(SYNC_WAIT).await;
            None
        };
        let sync = future::or(await_state(load, &mut ws, since), timeout).await;
        self.record(sync, t0, upgraded);
        future::or(
            async {
                let _ = ws.close(None).await;
            },
            async {
                Timer::after(CLOSE_WAIT).await;
            },
        )
        .await;
    }

    fn record(&mut self, sync: Option<SyncKind>, t0: Instant, upgraded: Instant) {
        let Some(kind) = sync else {
            self.none += 1;
            return;
        };
        match kind {
            SyncKind::Peer => self.peer += 1,
            SyncKind::Empty => self.empty += 1,
            SyncKind::Stored => self.stored += 1,
        }
        self.total.record_us(t0.elapsed().as_micros() as u64);
        self.after_upgrade.record_us(upgraded.elapsed().as_micros() as u64);
    }

    fn print(&self) {
        println!("syncs_peer={}", self.peer);
        println!("syncs_fallback={}", self.empty + self.stored);
        println!("syncs_fallback_empty={}", self.empty);
        println!("syncs_fallback_stored={}", self.stored);
        println!("syncs_none={}", self.none);
        println!("newcomer_connect_failed={}", self.connect_failed);
        println!("rounds_peers_unsettled={}", self.unsettled);
        self.total.print("join_to_state", false);
        self.after_upgrade.print("upgrade_to_state", false);
    }
}

/// Reads until the newcomer's canvasState (answering any canvasRequest meanwhile).
async fn await_state(load: &Load, ws: &mut Ws, since: usize) -> Option<SyncKind> {
    while let Some(frame) = ws.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                load.closes.add(format!("newcomer:{}", close_reason(frame)));
                return None;
            }
            Ok(_) => continue,
            Err(err) => {
                load.closes.add(format!("newcomer:{}", error_reason(&err)));
                return None;
            }
        };
        let Ok(msg) = serde_json::from_str::<Incoming>(text.as_str()) else { continue };
        match msg.kind.as_deref() {
            Some("canvasState") => return Some(load.snapshot.classify(msg.data.as_deref().unwrap_or_default(), since)),
            Some("canvasRequest") => {
                let reply = load.snapshot.answer(msg.client_id.as_deref().unwrap_or_default());
                ws.send(Message::text(reply)).await.ok()?;
                bump(&load.answered);
            }
            _ => {}
        }
    }
    None
}
