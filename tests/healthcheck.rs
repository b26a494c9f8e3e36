//! `smolcanvas healthcheck`, the container HEALTHCHECK: exit 0 and the health body from a running
//! server, exit 1 from a closed port, a port that never answers, a non-200 answer, or with TLS.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::*;

/// Longer than the check's own bound on a silent server (3 s), with room for a loaded machine.
const LIMIT: Duration = Duration::from_secs(15);

/// Runs `smolcanvas healthcheck ARGS` with `env` added, waiting at most [`LIMIT`].
fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = Command::new(BIN)
        .arg("healthcheck")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smolcanvas healthcheck");
    let pid = child.id();
    let (sender, output) = mpsc::channel();
    thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match output.recv_timeout(LIMIT) {
        Ok(output) => output.expect("wait for smolcanvas healthcheck"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("smolcanvas healthcheck {args:?} did not exit within {LIMIT:?}")
        }
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A port on 127.0.0.1 that nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().expect("its address").port()
}

#[test]
fn a_running_server_is_up_by_flag_and_by_environment() {
    let dir = TempDir::new("healthcheck-up");
    let server = Process::start(dir.path());
    let listen = server.addr.to_string();

    let output = healthcheck(&["--listen", &listen], &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "ok\n");

    let output = healthcheck(&[], &[("SMOLCANVAS_LISTEN", &listen)]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "ok\n");

    // A server on every interface is asked through loopback.
    let everywhere = format!("0.0.0.0:{}", server.addr.port());
    let output = healthcheck(&["--listen", &everywhere], &[]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
}

#[test]
fn a_closed_port_is_down() {
    let listen = format!("127.0.0.1:{}", closed_port());
    let output = healthcheck(&["--listen", &listen], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot connect"), "stderr: {}", stderr(&output));
    assert!(stdout(&output).is_empty());
}

#[test]
fn a_port_that_never_answers_is_down_after_the_bound() {
    // Connections complete in the kernel's backlog, and nothing ever reads or writes them.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let listen = listener.local_addr().expect("its address").to_string();
    let output = healthcheck(&["--listen", &listen], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no answer"), "stderr: {}", stderr(&output));
}

#[test]
fn an_answer_other_than_200_is_down() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let listen = listener.local_addr().expect("its address").to_string();
    let answering = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept the check");
        stream.set_read_timeout(Some(WAIT)).expect("set a read timeout");
        let mut head = [0u8; 512];
        let _ = stream.read(&mut head);
        let body = "starting";
        let answer = format!("HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        stream.write_all(answer.as_bytes()).expect("answer");
    });
    let output = healthcheck(&["--listen", &listen], &[]);
    answering.join().expect("the answering thread");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("503"), "stderr: {}", stderr(&output));
}

#[test]
fn with_tls_it_refuses_and_says_why() {
    let listen = format!("127.0.0.1:{}", closed_port());
    let output = healthcheck(&["--listen", &listen, "--tls-cert", "cert.pem", "--tls-key", "key.pem"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("plain HTTP"), "stderr: {}", stderr(&output));
}

#[test]
fn a_flag_it_cannot_use_is_down_not_2() {
    let output = healthcheck(&["--listen", "nowhere"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("--listen"), "stderr: {}", stderr(&output));
}
