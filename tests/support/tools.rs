//! The outside programs some tests need (nginx, redis-server, network namespaces): found on the
//! machine, or the test is skipped and says so, unless the environment variable that requires the
//! program is set (`.ci/run` sets them all): then it fails.

use std::io::Write;
use std::path::PathBuf;

/// `name` on `PATH`, or in the bin and sbin folders a plain user's `PATH` may lack.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `test` cannot run here because `missing` (`hint` says how to get it): it fails when the
/// environment variable `require` is set, and otherwise says on stderr that it is skipped.
pub fn skip_or_fail(test: &str, missing: &str, hint: &str, require: &str) {
    assert!(std::env::var_os(require).is_none(), "{test}: {missing}, and {require} is set ({hint})");
    // Straight to stderr, past the test harness's capture: a skipped test must say so.
    let _ = writeln!(std::io::stderr(), "{test}: SKIPPED, {missing} ({hint}; {require}=1 makes this fail)");
}
