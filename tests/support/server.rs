//! A real server for any `App`, run in-process on its own thread on a free loopback port.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use smol::Executor;
use smolcanvas::{App, Metrics, Server, ServerConfig, Tripwire};

use super::wait::WAIT;

/// Default settings on a free loopback port, with a short shutdown grace.
pub fn config() -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_grace: Duration::from_secs(1),
        ..ServerConfig::default()
    }
}

/// A server running on its own thread and executor; dropping it trips the shutdown wire.
pub struct TestServer {
    pub addr: SocketAddr,
    pub wire: Tripwire,
    pub metrics: Arc<Metrics>,
    done: mpsc::Receiver<io::Result<()>>,
}

impl TestServer {
    /// Binds `config` (its `listen` should be port 0) and runs `app` in the background.
    pub fn start<A: App>(config: ServerConfig, app: A) -> TestServer {
        let server = Server::bind(config, app).expect("bind the test server");
        let addr = server.local_addr().expect("the bound address");
        let wire = server.shutdown_wire();
        let metrics = server.metrics();
        let (finished, done) = mpsc::channel();
        thread::Builder::new()
            .name(format!("server-{}", addr.port()))
            .spawn(move || {
                let executor: Executor<'static> = Executor::new();
                let result = smol::block_on(executor.run(server.run(&executor)));
                let _ = finished.send(result);
            })
            .expect("spawn the server thread");
        TestServer { addr, wire, metrics, done }
    }

    /// Trips the shutdown wire and waits for `run` to return.
    pub fn shutdown(&self) -> io::Result<()> {
        self.wire.trip();
        self.wait_stopped(WAIT)
    }

    /// Waits at most `within` for `run` to return, and returns its result.
    pub fn wait_stopped(&self, within: Duration) -> io::Result<()> {
        match self.done.recv_timeout(within) {
            Ok(result) => result,
            Err(_) => panic!("the server did not stop within {within:?}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.wire.trip();
    }
}

/// Raises this test process's open-file limit towards `wanted`, as far as the hard limit allows,
/// for tests that hold many sockets at once.
pub fn raise_open_files(wanted: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let target = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
    if limit.current.is_some_and(|soft| soft < target) {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum });
    }
}
