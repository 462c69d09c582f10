//! The progress line on stderr while exporting (only on a terminal) and the final summary.

use std::io::Write;
use std::time::{Duration, Instant};

/// Redraws one status line at most every 200 ms.
#[derive(Debug)]
pub struct Progress {
    draw: bool,
    started: Instant,
    last_draw: Option<Instant>,
    from: u64,
    head: Option<u64>,
}

impl Progress {
    /// A progress line that draws only when `draw` (stderr is a terminal). `from` is where
    /// this run starts and `head` the last position of `$all` when known.
    pub fn new(draw: bool, from: u64, head: Option<u64>) -> Progress {
        Progress {
            draw,
            started: Instant::now(),
            last_draw: None,
            from,
            head,
        }
    }

    /// Seconds since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Notes that `events` were exported so far and `position` was reached.
    pub fn update(&mut self, events: u64, position: u64) {
        if !self.draw {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(200))
        {
            return;
        }
        self.last_draw = Some(now);
        let line = self.line(events, position);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// The status line's text.
    pub fn line(&self, events: u64, position: u64) -> String {
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            events as f64 / seconds
        } else {
            0.0
        };
        let mut line = format!("{events} events  {rate:.0} events/s  position {position}");
        if let Some(percent) = percent(self.from, position, self.head) {
            line.push_str(&format!("  {percent:.1}% of {}", self.head.unwrap_or(0)));
        }
        line
    }

    /// Clears the line before the summary is printed.
    pub fn finish(&mut self) {
        if self.draw && self.last_draw.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// How far `position` is from `from` towards `head`, in percent (at most 100).
pub fn percent(from: u64, position: u64, head: Option<u64>) -> Option<f64> {
    let head = head?;
    if head <= from {
        return Some(100.0);
    }
    let done = position.saturating_sub(from) as f64 / (head - from) as f64;
    Some((done * 100.0).min(100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_runs_from_the_start_position_to_the_head() {
        assert_eq!(percent(100, 100, Some(300)), Some(0.0));
        assert_eq!(percent(100, 200, Some(300)), Some(50.0));
        assert_eq!(percent(100, 900, Some(300)), Some(100.0));
        assert_eq!(percent(0, 5, None), None);
        assert_eq!(percent(10, 10, Some(10)), Some(100.0));
    }

    #[test]
    fn the_line_shows_events_position_and_share_of_the_head() {
        let p = Progress::new(false, 0, Some(1000));
        let line = p.line(7, 250);
        assert!(line.starts_with("7 events"), "{line}");
        assert!(line.contains("position 250"), "{line}");
        assert!(line.contains("25.0% of 1000"), "{line}");
    }
}
