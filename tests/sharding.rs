//! Boards sharded by name over two servers behind a real nginx (README, "More than one server").
//!
//! The test runs `deploy/nginx-sharded.conf`, the file README shows, with only its two server
//! addresses, its `listen` and its log path replaced, in front of two `smolcanvas` binaries with
//! data dirs of their own. For twenty boards (`main` at `/`, `/ws`, `/board.png`, the others at
//! `/b/NAME...`) it opens the page, two sockets that see each other's draws (with a browser's
//! `Origin`) and `board.png`, all through nginx, and shows that:
//!
//! - each board's folder exists in exactly one data dir, and nginx's log (which names the server
//!   that answered) says that every page, socket and PNG of the board went to that server;
//! - the boards are spread over both servers;
//! - a view link (`/v/TOKEN`, which does not name its board) reaches its board's server, after
//!   a 404 from the other one when the board does not live where `main` does;
//! - once one server is stopped, its boards answer 502 and are not opened on the other.
//!
//! It needs nginx (Debian's `nginx` package). Without it the test says on stderr that it did not
//! run and passes, unless `SMOLCANVAS_REQUIRE_NGINX` is set (`.ci/run` sets it), where it fails.

#[path = "support/blackbox.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::handshake::client::Request;

use support::*;

/// The nginx configuration README shows.
const CONFIG: &str = include_str!("../deploy/nginx-sharded.conf");

/// Bound on each step through the proxy.
const STEP: Duration = Duration::from_secs(10);

/// Boards besides `main`.
const BOARDS: u32 = 19;

/// `text` with each `(from, to)` replaced; each `from` must occur exactly once, so a change to
/// the README's config that this test does not follow fails here rather than testing something else.
fn templated(text: &str, replacements: &[(&str, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in replacements {
        let found = out.matches(from).count();
        assert_eq!(
            found, 1,
            "deploy/nginx-sharded.conf has {from:?} {found} times, not once: update tests/sharding.rs"
        );
        out = out.replace(from, to);
    }
    out
}

/// nginx with README's sharded configuration in front of `backends`.
fn start_sharded(bin: &Path, backends: [SocketAddr; 2]) -> Nginx {
    Nginx::run(bin, "nginx", |d, addr| {
        let site = templated(
            CONFIG,
            &[
                ("server 10.0.0.11:8080 ", format!("server {} ", backends[0])),
                ("server 10.0.0.12:8080 ", format!("server {} ", backends[1])),
                ("listen 80;", format!("listen {addr};")),
                ("/var/log/nginx/smolcanvas.log", format!("{d}/access.log")),
            ],
        );
        std::fs::write(format!("{d}/smolcanvas.conf"), site).expect("write the site config");
        format!("    include {d}/smolcanvas.conf;")
    })
}

/// The access log: one `(method and path, status, servers tried)` per line.
fn access_log(nginx: &Nginx) -> Vec<(String, u16, Vec<String>)> {
    nginx
        .read("access.log")
        .lines()
        .map(|line| {
            // 127.0.0.1 [29/Nov/2025:20:03:01 +0000] "GET /b/x/ws" 101 127.0.0.1:4001, 127.0.0.1:4002
            let mut quoted = line.splitn(3, '"').skip(1);
            let (request, rest) = (quoted.next().unwrap_or_default(), quoted.next().unwrap_or_default());
            let (status, servers) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
            let servers = servers.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
            (request.to_string(), status.parse().unwrap_or(0), servers)
        })
        .collect()
}

/// A board's paths: its page, socket and PNG.
struct Paths {
    page: String,
    socket: String,
    png: String,
}

fn paths(board: &str) -> Paths {
    if board == "main" {
        Paths { page: "/".into(), socket: "/ws".into(), png: "/board.png".into() }
    } else {
        Paths { page: format!("/b/{board}"), socket: format!("/b/{board}/ws"), png: format!("/b/{board}/board.png") }
    }
}

async fn get(proxy: SocketAddr, path: &str) -> HttpResponse {
    http_within(proxy, &format!("GET {path} HTTP/1.1\r\nHost: {proxy}\r\nConnection: close\r\n\r\n"), STEP).await
}

/// The upgrade a browser on the proxy's page sends: its `Origin`, and v2 if `v2`.
fn upgrade(proxy: SocketAddr, path: &str, origin: &str, v2: bool) -> Request {
    let mut request = format!("ws://{proxy}{path}").into_client_request().expect("a WebSocket URL");
    request.headers_mut().insert("Origin", origin.parse().expect("an Origin value"));
    if v2 {
        request.headers_mut().insert("Sec-WebSocket-Protocol", "smolcanvas.v2".parse().expect("a protocol"));
    }
    request
}

fn assert_png(response: &HttpResponse, what: &str) {
    assert_eq!(response.status, 200, "{what}: {}", response.text());
    assert_eq!(response.header("content-type"), Some("image/png"), "{what}");
    assert!(response.body.starts_with(b"\x89PNG"), "{what}: not a PNG");
}

/// Through the proxy: the board's page, a draw seen by a second client, a draw back, `board.png`.
/// Returns the board's view path, from a v2 client's `welcome`.
async fn use_board(proxy: SocketAddr, board: &str) -> String {
    let origin = format!("http://{proxy}");
    let p = paths(board);
    let page = get(proxy, &p.page).await;
    assert_eq!(page.status, 200, "the page of {board}");
    assert!(page.text().contains("smolcanvas"), "the page of {board}");

    let mut a =
        Peer::connect_with(&format!("A on {board}"), proxy, upgrade(proxy, &p.socket, &origin, false), STEP).await;
    assert_eq!(a.expect_state().await.1, "", "{board} is new");
    a.send(draw(1)).await;
    let mut b =
        Peer::connect_with(&format!("B on {board}"), proxy, upgrade(proxy, &p.socket, &origin, false), STEP).await;
    b.expect_state().await;
    assert_eq!(b.next().await, draw(1), "B on {board} gets A's draw");
    b.send(draw(2)).await;
    assert_eq!(a.next().await, draw(2), "A on {board} gets B's draw");

    let mut v2 =
        Peer::connect_with(&format!("v2 on {board}"), proxy, upgrade(proxy, &p.socket, &origin, true), STEP).await;
    let welcome = v2.expect("welcome").await;
    let view = welcome["viewPath"].as_str().unwrap_or_else(|| panic!("no viewPath in {welcome}")).to_string();

    assert_png(&get(proxy, &p.png).await, &format!("board.png of {board}"));
    for mut peer in [a, b, v2] {
        peer.close().await;
    }
    view
}

/// Through the proxy, a view link: its page, its PNG and a viewer that gets the board's draws.
async fn view_board(proxy: SocketAddr, board: &str, view: &str) {
    let page = get(proxy, view).await;
    assert_eq!(page.status, 200, "the view page of {board} ({view}): {}", page.text());
    assert_png(&get(proxy, &format!("{view}/board.png")).await, &format!("view.png of {board}"));
    let request = upgrade(proxy, &format!("{view}/ws"), &format!("http://{proxy}"), false);
    let mut viewer = Peer::connect_with(&format!("viewer of {board}"), proxy, request, STEP).await;
    viewer.expect_state().await;
    assert_eq!((viewer.next().await, viewer.next().await), (draw(1), draw(2)), "the viewer of {board}");
    viewer.close().await;
}

/// The data dir that holds `board` (its folder appears at its first draw, written off the hub):
/// exactly one of `dirs`.
fn holder(board: &str, dirs: &[&Path; 2]) -> usize {
    let has = |dir: &Path| dir.join("boards").join(board).join("meta.json").is_file();
    let start = Instant::now();
    while !dirs.iter().any(|dir| has(dir)) {
        assert!(start.elapsed() < STEP, "board {board} is in neither data dir after {STEP:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let holders: Vec<usize> = (0..2).filter(|&i| has(dirs[i])).collect();
    assert_eq!(holders.len(), 1, "board {board} is in more than one data dir");
    holders[0]
}

#[test]
fn boards_are_sharded_by_name_over_two_servers_behind_nginx() {
    let Some(bin) = nginx_or_skip("tests/sharding.rs") else { return };
    let dirs = [TempDir::new("shard-a"), TempDir::new("shard-b")];
    let mut servers = [Process::start(dirs[0].path()), Process::start(dirs[1].path())];
    let backends = [servers[0].addr, servers[1].addr];
    let mut nginx = start_sharded(&bin, backends);
    let proxy = nginx.addr;
    let boards: Vec<String> =
        std::iter::once("main".to_string()).chain((1..=BOARDS).map(|i| format!("shard-{i:02}"))).collect();

    let mut views = BTreeMap::new();
    smol::block_on(async {
        for board in &boards {
            views.insert(board.clone(), use_board(proxy, board).await);
        }
    });

    let data = [dirs[0].path(), dirs[1].path()];
    let holders: BTreeMap<&str, usize> = boards.iter().map(|b| (b.as_str(), holder(b, &data))).collect();
    let main_holder = holders["main"];
    for (server, backend) in backends.iter().enumerate() {
        let held: Vec<&str> = holders.iter().filter(|(_, h)| **h == server).map(|(b, _)| *b).collect();
        eprintln!("server {server} ({backend}) holds {} board(s): {held:?}", held.len());
        assert!(!held.is_empty(), "no board hashed to server {server} ({backend}): {holders:?}");
    }

    // Everything else through the proxy, now that the holders are known.
    smol::block_on(async {
        for (board, view) in &views {
            view_board(proxy, board, view).await;
        }
        let unknown = get(proxy, "/v/AAAAAAAAAAAAAAAAAAAAAA").await;
        assert_eq!(unknown.status, 404, "an unknown view link");

        let new = get(proxy, "/new").await;
        assert_eq!(new.status, 303, "/new");
        let location = new.header("location").expect("a Location from /new").to_string();
        assert!(location.starts_with("/b/"), "/new redirects to {location}");
        assert_eq!(get(proxy, &location).await.status, 200, "the new board's page");

        // The Origin check still guards the socket behind the proxy.
        let foreign = upgrade(proxy, "/b/shard-01/ws", "http://evil.example", false);
        assert_eq!(refused_status(try_connect(proxy, foreign).await), 403, "a foreign Origin through nginx");
    });

    // nginx's log: which server answered each request (it logs a socket when it closes).
    let expected_lines = boards.len() * 8 + 4;
    let start = Instant::now();
    let log = loop {
        let log = access_log(&nginx);
        if log.len() >= expected_lines || start.elapsed() > STEP {
            break log;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(log.len(), expected_lines, "nginx's access log: {log:#?}");
    let answered = |request: &str| -> Vec<(u16, Vec<String>)> {
        log.iter().filter(|(r, _, _)| r == request).map(|(_, status, servers)| (*status, servers.clone())).collect()
    };
    let addr = |server: usize| backends[server].to_string();
    for board in &boards {
        let (p, held) = (paths(board), holders[board.as_str()]);
        for (path, status, count) in [(&p.page, 200, 1), (&p.socket, 101, 3), (&p.png, 200, 1)] {
            let request = format!("GET {path}");
            let mut answers = answered(&request);
            if board == "shard-01" && *path == p.socket {
                let at = answers.iter().position(|(status, _)| *status == 403).expect("the foreign Origin's 403");
                assert_eq!(
                    answers.remove(at),
                    (403, vec![addr(held)]),
                    "the foreign Origin, refused by {board}'s server"
                );
            }
            assert_eq!(
                answers,
                vec![(status, vec![addr(held)]); count],
                "{request}: board {board} is on {}",
                addr(held)
            );
        }
        // A view link goes first where `main` lives, then, on a 404, to the other server.
        let tried: Vec<String> =
            if held == main_holder { vec![addr(held)] } else { vec![addr(main_holder), addr(held)] };
        let view = &views[board];
        for (path, status) in [(view.clone(), 200), (format!("{view}/board.png"), 200), (format!("{view}/ws"), 101)] {
            assert_eq!(answered(&format!("GET {path}")), vec![(status, tried.clone())], "view link of {board}");
        }
    }
    let both = vec![addr(main_holder), addr(1 - main_holder)];
    assert_eq!(answered("GET /v/AAAAAAAAAAAAAAAAAAAAAA"), vec![(404, both)], "an unknown view link asks both servers");
    assert_eq!(answered("GET /new"), vec![(303, vec![addr(main_holder)])], "/new goes where main lives");

    // One server stops: its boards answer 502 and are not opened on the other.
    let (stopped, running) = (1 - main_holder, main_holder);
    servers[stopped].signal("-TERM");
    assert_eq!(servers[stopped].wait_exit().code(), Some(0));
    let orphan = holders.iter().find(|(_, h)| **h == stopped).map(|(b, _)| *b).expect("a board on the stopped server");
    smol::block_on(async {
        let p = paths(orphan);
        assert_eq!(get(proxy, &p.png).await.status, 502, "board.png of {orphan}, whose server is stopped");
        let request = upgrade(proxy, &p.socket, &format!("http://{proxy}"), false);
        assert_eq!(
            refused_status(try_connect(proxy, request).await),
            502,
            "a socket on {orphan}, whose server is stopped"
        );
        assert_png(&get(proxy, &paths("main").png).await, "board.png of main, on the running server");
    });
    assert!(!data[running].join("boards").join(orphan).exists(), "board {orphan} was opened on the running server");

    nginx.stop();
    let errors: Vec<_> = nginx
        .error_log()
        .lines()
        .filter(|l| l.contains("[emerg]") || l.contains("[alert]"))
        .map(String::from)
        .collect();
    assert!(errors.is_empty(), "nginx's error log: {errors:#?}");
    servers[running].signal("-TERM");
    assert_eq!(servers[running].wait_exit().code(), Some(0));
}

#[test]
fn readme_shows_the_tested_config_verbatim() {
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("```nginx\n{CONFIG}```\n")),
        "README's \"More than one server\" must quote deploy/nginx-sharded.conf whole, as tests/sharding.rs runs it"
    );
}
