//! The process's logger: one line a record on stderr; a line that cannot be written is dropped and counted.
//!
//! A line looks like `2024-05-01T12:00:00.123Z INFO  [smolcanvas::server] listening on ...`
//! (UTC time, level, target, message). Each line is written with one
//! `write_all` to the locked stderr, so lines from several threads never
//! interleave. A write that fails (stderr is a pipe whose reader is gone, a
//! full disk behind a redirect) is dropped and counted in
//! `smolcanvas_log_lines_dropped_total`: logging never panics and never takes
//! a task down with it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Crates that are chatty at `debug`: they log at `warn` at most, whatever the level.
const QUIET_TARGETS: [&str; 4] = ["tungstenite", "async_tungstenite", "async_io", "polling"];

/// Log lines that could not be written since start.
static LINES_DROPPED: AtomicU64 = AtomicU64::new(0);

static LOGGER: StderrLogger = StderrLogger;

/// Starts logging to stderr at `level` for this crate and the app, keeping
/// the WebSocket and I/O crates at `warn` (they are chatty at debug).
/// A second call changes nothing but the level.
pub fn init_logging(level: LevelFilter) {
    // Fails only when a logger is already set, which then stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// How many log lines could not be written to stderr since start.
pub fn lines_dropped() -> u64 {
    LINES_DROPPED.load(Ordering::Relaxed)
}

/// Writes records to stderr, dropping (and counting) the lines it cannot write.
struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= level_for(metadata.target(), log::max_level())
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(SystemTime::now(), record.level(), target(record), record.args());
        if std::io::stderr().lock().write_all(line.as_bytes()).is_err() {
            LINES_DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().lock().flush();
    }
}

/// The most verbose level `target` logs at, with `max` for the process.
fn level_for(target: &str, max: LevelFilter) -> LevelFilter {
    let quiet = QUIET_TARGETS
        .iter()
        .any(|name| target.strip_prefix(name).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")));
    if quiet { max.min(LevelFilter::Warn) } else { max }
}

fn target<'a>(record: &'a Record<'_>) -> &'a str {
    match record.target() {
        "" => record.module_path().unwrap_or_default(),
        target => target,
    }
}

/// One log line, newline included.
fn format_line(now: SystemTime, level: Level, target: &str, message: &std::fmt::Arguments<'_>) -> String {
    let mut line = String::with_capacity(64);
    // Writing to a String fails only if a Display impl does; the line is then cut short.
    let _ = writeln!(line, "{} {:<5} [{target}] {message}", utc_timestamp(now), level.as_str());
    line
}

/// `now` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (clocks before 1970 read as 1970).
fn utc_timestamp(now: SystemTime) -> String {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_date((secs / 86_400) as i64);
    let time = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        time / 3600,
        time / 60 % 60,
        time % 60,
        since_epoch.subsec_millis()
    )
}

/// The proleptic Gregorian date of a day counted from 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_match_the_calendar() {
        // Day numbers from `date -u -d DATE +%s` / 86400.
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(11_017), (2000, 3, 1));
        assert_eq!(civil_date(19_782), (2024, 2, 29));
        assert_eq!(civil_date(47_541), (2100, 3, 1));
    }

    #[test]
    fn a_line_has_time_level_target_and_message() {
        let now = UNIX_EPOCH + Duration::from_millis(19_782 * 86_400_000 + 13 * 3_600_000 + 4 * 60_000 + 5_006);
        let line = format_line(now, Level::Info, "smolcanvas::server", &format_args!("listening on {}", 1));
        assert_eq!(line, "2024-02-29T13:04:05.006Z INFO  [smolcanvas::server] listening on 1\n");
        assert_eq!(utc_timestamp(UNIX_EPOCH - Duration::from_secs(5)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn chatty_crates_stay_at_warn() {
        assert_eq!(level_for("tungstenite::protocol", LevelFilter::Trace), LevelFilter::Warn);
        assert_eq!(level_for("async_io", LevelFilter::Debug), LevelFilter::Warn);
        assert_eq!(level_for("polling", LevelFilter::Error), LevelFilter::Error);
        assert_eq!(level_for("tungstenite_like", LevelFilter::Debug), LevelFilter::Debug);
        assert_eq!(level_for("smolcanvas::server", LevelFilter::Debug), LevelFilter::Debug);
    }
}
