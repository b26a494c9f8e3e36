//! The tool's open-file limit: each connection is one file descriptor, and many systems
//! start the soft limit at 1024, below what a 1000-client run needs.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for what is not a connection: stdio, the executor, `/proc` reads.
const SPARE_FDS: u64 = 32;

/// Raises the soft open-file limit towards the hard limit so that `connections` fit,
/// and prints a `#` warning when they still do not.
pub fn raise(connections: usize) {
    let wanted = connections as u64 + SPARE_FDS;
    let limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let Some(mut soft) = limit.current.filter(|&soft| soft < wanted) else {
        return;
    };
    let target = limit.maximum.map_or(wanted, |hard| hard.min(wanted));
    if target > soft && setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }).is_ok() {
        soft = target;
    }
    if soft < wanted {
        println!(
            "# warning: open-file limit {soft} is too low for {connections} connections (raise the hard limit, e.g. ulimit -Hn)"
        );
    }
}
