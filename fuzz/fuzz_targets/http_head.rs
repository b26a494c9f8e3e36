//! Fuzzes the request-head parser and the router behind it.
//!
//! Arbitrary bytes go to `RequestHead::parse`, as `read_head` would hand them
//! over. A complete head is routed with no allowed origins and with its own
//! `Origin` allowed, and the answer the server would give is built. Checked:
//! nothing panics, a head never claims more bytes than it was given, reading
//! the same bytes in pieces never fails where reading them at once succeeds,
//! and the routing and response invariants below hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smolcanvas::Status;
use smolcanvas::fuzzing::http::{self, Refusal, RequestHead, Route};

const STATUSES: [Status; 9] = [
    Status::Ok,
    Status::BadRequest,
    Status::Unauthorized,
    Status::Forbidden,
    Status::NotFound,
    Status::MethodNotAllowed,
    Status::UpgradeRequired,
    Status::HeadTooLarge,
    Status::Unavailable,
];

fuzz_target!(|data: &[u8]| {
    let Ok(Some((head, len))) = RequestHead::parse(data) else {
        return;
    };
    assert!(len <= data.len(), "head of {len} bytes from {} bytes of input", data.len());
    assert_eq!(RequestHead::parse(&data[..len]).ok().flatten(), Some((head.clone(), len)), "head alone differs");
    check_prefixes(&data[..len], &head);

    let plain = http::route(&head, &[]);
    check_route(&head, &plain);
    let origin = head.header("origin").map(str::to_string);
    let allowed: Vec<String> = origin.iter().cloned().chain(["https://example.org".to_string()]).collect();
    let with_allowed = http::route(&head, &allowed);
    check_route(&head, &with_allowed);
    assert!(http::origin_allowed(&head, &allowed), "an Origin listed as allowed was refused");
    if origin.is_none() {
        assert!(http::origin_allowed(&head, &[]), "no Origin must pass");
    }
    let forbidden = |route: &Route| matches!(route, Route::Reject(Refusal::Origin { .. }));
    assert!(!forbidden(&with_allowed), "allowed Origin still 403");
    if !forbidden(&plain) {
        assert_eq!(plain, with_allowed, "allowing more origins changed a route that was not 403");
    }

    let head_only = head.method == "HEAD";
    let reply = match &with_allowed {
        Route::App { upgrade: Some(key) } => http::switching_protocols(key, Some("smolcanvas.v2")),
        Route::Reject(refusal) => http::plain_status(refusal.status(), head_only),
        _ => http::response(Status::Ok, "text/plain; charset=utf-8", "", head.path.as_bytes(), head_only),
    };
    check_response(&reply, head_only || matches!(with_allowed, Route::App { upgrade: Some(_) }));
    let status = STATUSES[usize::from(data[0]) % STATUSES.len()];
    for head_only in [false, true] {
        check_response(&http::plain_status(status, head_only), head_only);
        check_response(&http::response(status, "application/octet-stream", "X-A: b\r\n", data, head_only), head_only);
    }
});

/// `read_head` parses after every read: no prefix of a good head may be an error or a different head.
fn check_prefixes(bytes: &[u8], head: &RequestHead) {
    let step = (bytes.len() / 64).max(1);
    for end in (0..bytes.len()).step_by(step).chain(bytes.len().saturating_sub(4)..bytes.len()) {
        match RequestHead::parse(&bytes[..end]) {
            Ok(None) => {}
            Ok(Some((early, n))) => assert!(n <= end && early == *head, "prefix of {end} bytes gave another head"),
            Err(err) => panic!("prefix of {end} bytes of a good head failed: {err}"),
        }
    }
}

fn check_route(head: &RequestHead, route: &Route) {
    match route {
        Route::App { upgrade: Some(key) } => {
            assert_eq!(head.method, "GET");
            assert_eq!(head.version, 1);
            assert!(key.len() == 24 && key.ends_with("=="), "bad key accepted: {key:?}");
            assert_eq!(http::accept_key(key).len(), 28);
        }
        Route::App { upgrade: None } | Route::Health | Route::Metrics => {
            assert!(head.method == "GET" || head.method == "HEAD");
        }
        Route::Reject(refusal) => {
            let status = refusal.status();
            assert!(
                matches!(
                    status,
                    Status::BadRequest
                        | Status::Forbidden
                        | Status::NotFound
                        | Status::MethodNotAllowed
                        | Status::UpgradeRequired
                ),
                "route answered {status:?}"
            );
            assert!(!refusal.to_string().is_empty(), "a refusal without words: {refusal:?}");
        }
    }
}

/// A response is a status line, headers, a blank line and `Content-Length` bytes of body (none when `no_body`).
fn check_response(reply: &[u8], no_body: bool) {
    let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        panic!("response without an end of head");
    };
    let head = std::str::from_utf8(&reply[..end]).expect("response head is text");
    assert!(head.starts_with("HTTP/1.1 "), "status line: {head:?}");
    let body = &reply[end + 4..];
    match head.lines().find_map(|l| l.strip_prefix("Content-Length: ")) {
        Some(length) => {
            let length: usize = length.parse().expect("Content-Length is a number");
            let expected = if no_body { 0 } else { length };
            assert_eq!(body.len(), expected, "body length, Content-Length {length}, no_body {no_body}");
        }
        None => assert!(body.is_empty() && head.starts_with("HTTP/1.1 101 "), "no Content-Length: {head:?}"),
    }
}
