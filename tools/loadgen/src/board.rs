//! `board`: a board with a painted floor and a full undo window, a newcomer's sync and `board.png`.
//!
//! A v2 drawer (subprotocol `smolcanvas.v2`) draws `--strokes` strokes of `--segments`
//! short segments each on the board of `--url` (a socket path such as
//! `ws://HOST:PORT/b/NAME/ws`), paced at `--rate` draws/s; the strokes older than the
//! server's undo window (`--window`, default 500) are painted into its floor. The drawer
//! then asks for a sync of its own and counts the live draws, which proves the board is
//! whole, and waits `--settle-secs` for the floor image. `--clients` - 1 v1 clients join
//! the board and stay. Then, `--rounds` times, a v2 newcomer connects and is timed from
//! TCP connect to its last live draw (the `canvasState` with the floor, then every live
//! draw); and `board.png` is fetched and timed from connect to the end of the answer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::Message;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::http::HeaderValue;
use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
use smol::net::TcpStream;
use smol::{LocalExecutor, Timer};

use crate::histogram::Histogram;
use crate::load::Ws;
use crate::opts::Opts;
use crate::procfs::{self, CpuSample};

/// What a round waits for at most.
const ROUND_LIMIT: Duration = Duration::from_secs(30);

pub async fn run(ex: &LocalExecutor<'_>, opts: &Opts, addr: SocketAddr) {
    let live = opts.strokes.min(opts.window) * opts.segments;
    println!("strokes={} segments={} window={} live_draws={live}", opts.strokes, opts.segments, opts.window);
    let mut drawer = match connect(opts, addr, true).await {
        Ok(ws) => ws,
        Err(err) => return println!("# the drawer could not connect: {err}"),
    };
    let started = Instant::now();
    draw(&mut drawer, opts).await;
    println!("draw_secs={:.2}", started.elapsed().as_secs_f64());
    let _ = drawer.send(Message::text(r#"{"type":"canvasRequest"}"#)).await;
    match sync(&mut drawer, live).await {
        Ok(_) => println!("# the board holds {live} live draws"),
        Err(err) => return println!("# the drawer's own sync failed: {err}"),
    }
    Timer::after(Duration::from_secs_f64(opts.settle_secs)).await;
    let mut peers = Vec::new();
    for _ in 1..opts.clients {
        match connect(opts, addr, false).await {
            Ok(ws) => peers.push(ex.spawn(drain(ws))),
            Err(err) => println!("# a peer could not connect: {err}"),
        }
    }
    println!("clients_on_board={}", peers.len() + 2);
    let rss = opts.server_pid.and_then(procfs::rss_kib);
    let before = CpuSample::take(opts.server_pid);
    let mut joins = Histogram::default();
    let mut floor_bytes = 0;
    for _ in 0..opts.rounds {
        let t0 = Instant::now();
        let joined = async {
            let mut ws = connect(opts, addr, true).await?;
            let floor = sync(&mut ws, live).await?;
            let _ = ws.close(None).await;
            Ok::<usize, String>(floor)
        };
        match joined.await {
            Ok(floor) => {
                joins.record_us(t0.elapsed().as_micros() as u64);
                floor_bytes = floor;
            }
            Err(err) => println!("# a newcomer failed: {err}"),
        }
    }
    let mut pngs = Histogram::default();
    let mut png_bytes = 0;
    for _ in 0..opts.rounds {
        let t0 = Instant::now();
        match fetch_png(addr, &opts.url).await {
            Ok(bytes) => {
                pngs.record_us(t0.elapsed().as_micros() as u64);
                png_bytes = bytes;
            }
            Err(err) => println!("# board.png failed: {err}"),
        }
    }
    if let Some(secs) = CpuSample::take(opts.server_pid).since(&before).server_secs {
        println!("server_cpu_rounds_secs={secs:.2}");
    }
    if let Some(kib) = rss {
        println!("server_rss_kib={kib}");
    }
    println!("floor_data_url_bytes={floor_bytes}");
    joins.print("join_to_last_draw", false);
    println!("png_bytes={png_bytes}");
    pngs.print("board_png", false);
    for peer in peers {
        peer.cancel().await;
    }
}

/// A client on the board: v2 when `v2`.
async fn connect(opts: &Opts, addr: SocketAddr, v2: bool) -> Result<Ws, String> {
    let mut request = opts.url.as_str().into_client_request().map_err(|e| e.to_string())?;
    if v2 {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("smolcanvas.v2"));
    }
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let (ws, _) = async_tungstenite::client_async(request, tcp).await.map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Draws the strokes: a random walk of short segments each, paced at `--rate`.
async fn draw(ws: &mut Ws, opts: &Opts) {
    let interval = Duration::from_secs_f64(1.0 / opts.rate);
    let start = Instant::now();
    let mut sent = 0u32;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |range: f64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 10_000.0 * range
    };
    for stroke in 0..opts.strokes {
        let (mut x, mut y) = (next(1280.0), next(720.0));
        for _ in 0..opts.segments {
            let (nx, ny) = ((x + next(24.0) - 12.0).clamp(0.0, 1280.0), (y + next(24.0) - 12.0).clamp(0.0, 720.0));
            let color = ["#1e1e1e", "#e03131", "#1971c2", "#2f9e44"][stroke % 4];
            let draw = format!(
                r#"{{"type":"draw","color":"{color}","startX":{x:.1},"startY":{y:.1},"endX":{nx:.1},"endY":{ny:.1},"lineWidth":{},"stroke":{stroke}}}"#,
                2 + stroke % 6
            );
            (x, y) = (nx, ny);
            let due = start + interval * sent;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                Timer::after(wait).await;
            }
            if ws.send(Message::text(draw)).await.is_err() {
                println!("# the drawer was closed after {sent} draws");
                return;
            }
            sent += 1;
        }
    }
}

/// Reads a sync: up to the `canvasState` (skipping `welcome` and counts), then `live`
/// draws. Returns the size of the `canvasState`, the floor's data URL and a little JSON.
async fn sync(ws: &mut Ws, live: usize) -> Result<usize, String> {
    let reading = async {
        let mut floor = None;
        let mut draws = 0;
        while floor.is_none() || draws < live {
            let text = match ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                other => return Err(format!("the connection ended: {other:?}")),
            };
            if text.contains(r#""type":"canvasState""#) {
                floor = Some(text.len());
            } else if floor.is_some() && text.contains(r#""type":"draw""#) {
                draws += 1;
            }
        }
        Ok(floor.unwrap_or(0))
    };
    futures_lite::future::or(reading, async {
        Timer::after(ROUND_LIMIT).await;
        Err(format!("no whole sync within {ROUND_LIMIT:?}"))
    })
    .await
}

/// Reads and drops everything a client receives.
async fn drain(mut ws: Ws) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// `GET board.png` of the board whose socket is `url`; the answer's size.
async fn fetch_png(addr: SocketAddr, url: &str) -> Result<usize, String> {
    let path = url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..])).unwrap_or("/ws");
    let png_path = format!("{}/board.png", path.strip_suffix("/ws").unwrap_or(""));
    let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let request = format!("GET {png_path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.map_err(|e| e.to_string())?;
    if !answer.starts_with(b"HTTP/1.1 200") {
        let head = String::from_utf8_lossy(&answer[..answer.len().min(80)]).to_string();
        return Err(format!("{png_path}: {head}"));
    }
    Ok(answer.len())
}
