//! nginx for the proxy tests (tests/sharding.rs, tests/cluster.rs): found on the machine (or the
//! test is skipped, unless `SMOLCANVAS_REQUIRE_NGINX` is set), run in the foreground with its
//! config, pid, logs and temp files in a folder of its own, stopped and waited for.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::dir::TempDir;
use super::tools::{find_program, skip_or_fail};

/// The bound on nginx starting to listen, and on it stopping.
const NGINX_WAIT: Duration = Duration::from_secs(10);

/// The environment variable that turns a missing nginx into a failure (`.ci/run` sets it).
pub const REQUIRE_NGINX: &str = "SMOLCANVAS_REQUIRE_NGINX";

/// A free TCP port on 127.0.0.1 (free when asked; taken again by whoever binds it first).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The nginx binary, or `None` after saying on stderr that `test` is skipped; fails instead when
/// [`REQUIRE_NGINX`] is set.
pub fn nginx_or_skip(test: &str) -> Option<PathBuf> {
    let found = find_program("nginx");
    if found.is_none() {
        skip_or_fail(test, "nginx is not installed", "apt-get install nginx; .ci/run does", REQUIRE_NGINX);
    }
    found
}

/// nginx in the foreground.
pub struct Nginx {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its folder: `nginx.conf`, `error.log`, and whatever the test's `http` block writes there.
    pub dir: TempDir,
}

impl Nginx {
    /// Starts `bin` on a free 127.0.0.1 port, in a fresh folder named after `name`, with the
    /// `http {}` block `http(folder, addr)` returns (it must `listen` on `addr`); waits until it listens.
    pub fn run(bin: &Path, name: &str, http: impl FnOnce(&str, SocketAddr) -> String) -> Nginx {
        let dir = TempDir::new(name);
        let d = dir.path().display().to_string();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let main = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 256; }}\nhttp {{\n{}\n}}\n",
            http(&d, addr)
        );
        std::fs::write(dir.path().join("nginx.conf"), main).expect("write nginx.conf");
        let child = Command::new(bin)
            .args(["-p", &format!("{d}/"), "-c", &format!("{d}/nginx.conf"), "-e", &format!("{d}/error.log")])
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", bin.display()));
        let mut nginx = Nginx { child, addr, dir };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}) before listening on {addr}:\n{}", nginx.error_log());
            }
            let waited = start.elapsed();
            assert!(waited < NGINX_WAIT, "nginx is not listening on {addr} after {waited:?}:\n{}", nginx.error_log());
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// Its error log so far.
    pub fn error_log(&self) -> String {
        self.read("error.log")
    }

    /// A file of its folder (a log), empty if it is not there.
    pub fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
    }

    /// Fast shutdown (SIGTERM: the master stops its workers), waited for.
    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let start = Instant::now();
        while self.child.try_wait().ok().flatten().is_none() {
            if start.elapsed() > NGINX_WAIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("nginx did not stop within {NGINX_WAIT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop();
        } else if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
        }
    }
}
