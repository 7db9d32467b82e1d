//! A progress line for long reads of the ledger (`liaison audit verify` and
//! `replay` over millions of records), on stderr, only when stderr is a
//! terminal: pipes, files and CI logs get nothing but the final summary.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// Redraws at most every this often.
const EVERY: Duration = Duration::from_millis(200);

/// Progress through `total` records.
pub struct Progress {
    what: &'static str,
    total: u64,
    started: Instant,
    drawn: Option<Instant>,
    shown: bool,
}

impl Progress {
    /// A progress line for `what` ("verifying"), shown if stderr is a terminal.
    pub fn new(what: &'static str, total: u64) -> Self {
        Self::showing(what, total, std::io::stderr().is_terminal())
    }

    fn showing(what: &'static str, total: u64, shown: bool) -> Self {
        Self {
            what,
            total,
            started: Instant::now(),
            drawn: None,
            shown,
        }
    }

    /// The line for `done` records at `now`.
    pub fn line(&self, done: u64, now: Instant) -> String {
        let elapsed = now.duration_since(self.started).as_secs_f64().max(1e-9);
        let rate = done as f64 / elapsed;
        let percent = if self.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / self.total as f64
        };
        let left = if rate > 0.0 && self.total > done {
            format!(", {:.0} s left", (self.total - done) as f64 / rate)
        } else {
            String::new()
        };
        let width = 30usize;
        let filled = ((percent / 100.0) * width as f64).round() as usize;
        format!(
            "{} [{}{}] {done}/{} records ({percent:.0}%), {rate:.0}/s{left}",
            self.what,
            "#".repeat(filled.min(width)),
            " ".repeat(width - filled.min(width)),
            self.total
        )
    }

    /// Notes that `done` records are through; redraws if it is time.
    pub fn tick(&mut self, done: u64) {
        if !self.shown {
            return;
        }
        let now = Instant::now();
        if self.drawn.is_some_and(|t| now.duration_since(t) < EVERY) {
            return;
        }
        self.drawn = Some(now);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", self.line(done, now));
        let _ = err.flush();
    }

    /// Clears the line.
    pub fn finish(&mut self) {
        if self.shown && self.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_how_far_how_fast_and_how_long() {
        let progress = Progress::showing("verifying", 1_000_000, false);
        let line = progress.line(250_000, progress.started + Duration::from_secs(1));
        assert!(line.starts_with("verifying [########"), "{line}");
        assert!(
            line.contains("250000/1000000 records (25%), 250000/s, 3 s left"),
            "{line}"
        );
        let done = progress.line(1_000_000, progress.started + Duration::from_secs(4));
        assert!(done.contains("(100%)") && !done.contains("left"), "{done}");
        assert!(
            Progress::showing("x", 0, false)
                .line(0, Instant::now())
                .contains("(100%)")
        );
    }
}
