//! What the real binary tells its operator: why an upgrade was refused, in
//! words to act on, and nothing alarming for a peer that simply went away.

mod support;

use support::*;

#[test]
fn a_refused_origin_is_logged_with_both_sides_and_the_flag_that_allows_it() {
    let dir = TempDir::new("log-origin");
    let mut process = Process::start(dir.path());
    let addr = process.addr;
    let response = smol::block_on(http(addr, &upgrade_request(addr, RFC_KEY, "Origin: https://evil.example\r\n")));
    assert_eq!(response.status, 403);
    let line = process.wait_line("403");
    assert!(line.contains("https://evil.example"), "the Origin is named: {line}");
    assert!(line.contains(&addr.to_string()), "the Host is named: {line}");
    assert!(line.contains("--allow-origin https://evil.example"), "the flag that allows it is named: {line}");
}

#[test]
fn a_peer_dropping_tcp_without_a_close_is_not_logged_as_a_protocol_error() {
    let dir = TempDir::new("log-drop");
    let mut process = Process::start(dir.path());
    let addr = process.addr;
    smol::block_on(async {
        let raw = RawClient::upgrade(addr).await;
        drop(raw);
    });
    let lines = process.lines_until("disconnected");
    assert!(!lines.iter().any(|line| line.contains("1002")), "a plain disconnect logged as an error: {lines:?}");
}
