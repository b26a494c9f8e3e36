//! The `smolcanvas` binary at start: a start that cannot work exits 1 with one line saying why
//! (data dir unusable or in use, address taken); a start that works lists the URLs to open.

mod support;

use std::net::TcpListener;
use std::process::ExitStatus;

use support::*;

/// Runs the binary with `args` on 127.0.0.1 and waits (bounded) for it to exit: it must not start.
fn refused(args: &[&str]) -> (Process, ExitStatus) {
    let mut all = vec!["--listen", "127.0.0.1:0"];
    all.extend(args);
    let mut process = Process::spawn(&all);
    let status = process.wait_exit();
    (process, status)
}

/// The `ERROR` lines of a process that has exited.
fn error_lines(process: &mut Process) -> Vec<String> {
    process.remaining_lines().into_iter().filter(|line| line.contains("ERROR")).collect()
}

fn path_str(path: &std::path::Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn a_file_in_place_of_the_data_dir_exits_1_naming_it() {
    let dir = TempDir::new("startup-file");
    let file = dir.path().join("board");
    std::fs::write(&file, "a file, not a directory").expect("write the file");
    let (mut process, status) = refused(&["--data-dir", path_str(&file)]);
    assert_eq!(status.code(), Some(1));
    let errors = error_lines(&mut process);
    assert_eq!(errors.len(), 1, "one line: {errors:#?}");
    assert!(errors[0].contains(path_str(&file)) && errors[0].contains("not a directory"), "{errors:#?}");
}

#[test]
fn a_data_dir_under_a_file_exits_1_naming_it() {
    let dir = TempDir::new("startup-parent");
    let file = dir.path().join("file");
    std::fs::write(&file, "a file, not a directory").expect("write the file");
    let board = file.join("board");
    let (mut process, status) = refused(&["--data-dir", path_str(&board)]);
    assert_eq!(status.code(), Some(1));
    let errors = error_lines(&mut process);
    assert_eq!(errors.len(), 1, "one line: {errors:#?}");
    assert!(errors[0].contains(&format!("cannot create data dir {}: ", path_str(&board))), "{errors:#?}");
}

/// Tests run as root, for whom permissions do not stop a write: `/proc/self` is a directory
/// in which nobody can create a file.
#[test]
fn a_data_dir_that_cannot_be_written_exits_1_naming_it() {
    let (mut process, status) = refused(&["--data-dir", "/proc/self"]);
    assert_eq!(status.code(), Some(1));
    let errors = error_lines(&mut process);
    assert_eq!(errors.len(), 1, "one line: {errors:#?}");
    assert!(errors[0].contains("cannot write in the data dir: /proc/self/smolcanvas.lock: "), "{errors:#?}");
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_1_naming_the_first() {
    let dir = TempDir::new("startup-twice");
    let mut first = Process::start(dir.path());
    let (mut second, status) = refused(&["--data-dir", path_str(dir.path())]);
    assert_eq!(status.code(), Some(1));
    let errors = error_lines(&mut second);
    assert_eq!(errors.len(), 1, "one line: {errors:#?}");
    let holder = format!("data dir {} is in use by process {}", path_str(dir.path()), first.pid());
    assert!(errors[0].contains(&holder), "{errors:#?}");

    // The first one is unharmed, and its lock goes with it, even after kill -9.
    smol::block_on(board_of(first.addr));
    first.signal("-KILL");
    assert_eq!(first.wait_exit().code(), None, "killed by a signal");
    let mut third = Process::start(dir.path());
    third.signal("-TERM");
    assert_eq!(third.wait_exit().code(), Some(0));
}

#[test]
fn a_taken_port_exits_1_naming_the_address() {
    let dir = TempDir::new("startup-port");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("the bound address");
    let mut process = Process::spawn(&["--listen", &addr.to_string(), "--data-dir", path_str(dir.path())]);
    assert_eq!(process.wait_exit().code(), Some(1));
    let errors = error_lines(&mut process);
    assert_eq!(errors.len(), 1, "one line: {errors:#?}");
    assert!(errors[0].contains(&format!("cannot listen on {addr}: ")), "{errors:#?}");
}

#[test]
fn the_start_lists_the_url_to_open() {
    let dir = TempDir::new("startup-url");
    let mut process = Process::start(dir.path());
    let url = format!("http://localhost:{}/", process.addr.port());
    let line = process.wait_line(&url);
    assert!(line.contains("INFO"), "{line}");
    process.signal("-TERM");
    assert_eq!(process.wait_exit().code(), Some(0));
}
