//! What the server asks of the operating system: shutdown signals and room for file descriptors.

use std::io;

use log::{info, warn};

use crate::tripwire::Tripwire;

/// Trips `wire` on the first SIGINT or SIGTERM; exits the process at once on the second.
pub async fn stop_on_signals(wire: Tripwire) -> io::Result<()> {
    use async_signal::{Signal, Signals};
    let mut signals = Signals::new([Signal::Int, Signal::Term])?;
    if let Some(signal) = futures_lite::StreamExt::next(&mut signals).await {
        info!("received {}: shutting down (send it again to exit at once)", signal_name(signal?));
        wire.trip();
    }
    if let Some(signal) = futures_lite::StreamExt::next(&mut signals).await {
        warn!("received {} again: exiting now", signal_name(signal?));
        std::process::exit(130);
    }
    Ok(())
}

fn signal_name(signal: async_signal::Signal) -> &'static str {
    match signal {
        async_signal::Signal::Int => "SIGINT",
        async_signal::Signal::Term => "SIGTERM",
        _ => "a signal",
    }
}

/// Raises the soft limit on open files towards the hard limit (as Go does),
/// since each client is one file descriptor and many systems start at 1024;
/// warns when the limit still cannot hold `max_clients`.
pub fn raise_fd_limit(max_clients: usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = max_clients as u64 + 64;
    let target = match limit.maximum {
        Some(hard) => hard.min(wanted.max(limit.current.unwrap_or(0))),
        None => wanted,
    };
    let mut current = limit.current;
    if current.is_some_and(|soft| soft < target) {
        match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }) {
            Ok(()) => current = Some(target),
            Err(err) => warn!("cannot raise the open-file limit to {target}: {err}"),
        }
    }
    if let Some(soft) = current.filter(|soft| *soft < wanted) {
        warn!(
            "open-file limit is {soft}: fewer than --max-clients {max_clients} clients can connect (raise it, e.g. LimitNOFILE= in the systemd unit)"
        );
    }
}
