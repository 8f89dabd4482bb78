//! Progress and status: human lines on standard error, and with `--json`
//! one JSON object per line on standard output, for scripts and
//! supervisors.

use std::io::Write as _;
use std::time::{Duration, Instant};

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Report {
    /// Nowhere: for a library caller that watches JetStream or the store
    /// itself.
    #[default]
    Quiet,
    /// Human lines on standard error.
    Human,
    /// Human lines on standard error and JSON status lines on standard
    /// output.
    Json,
}

/// How often an idle run still writes a human progress line, to show it
/// is alive; JSON status lines come at every interval regardless, for
/// supervisors that watch them.
const IDLE_LINE_INTERVAL: Duration = Duration::from_secs(30);

/// Emits status lines and keeps the counts that the progress line needs.
#[derive(Debug)]
pub(crate) struct Reporter {
    report: Report,
    interval: Duration,
    last_at: Instant,
    last_count: u64,
    last_human: Option<Instant>,
}

impl Reporter {
    pub(crate) fn new(report: Report, interval: Duration) -> Reporter {
        Reporter {
            report,
            interval,
            last_at: Instant::now(),
            last_count: 0,
            last_human: None,
        }
    }

    /// One line: `human` on standard error, `json` on standard output.
    pub(crate) fn line(&self, human: &str, json: serde_json::Value) {
        if self.report == Report::Quiet {
            return;
        }
        // A closed terminal or pipe must not stop shipping: the lines are
        // a courtesy, so a failed write is dropped.
        let _ = writeln!(std::io::stderr().lock(), "annals-nats: {human}");
        if self.report == Report::Json {
            let _ = writeln!(std::io::stdout().lock(), "{json}");
        }
    }

    /// A progress line: the JSON one always, the human one when `busy`
    /// (events moved or some are waiting) or when the last one is
    /// [`IDLE_LINE_INTERVAL`] old.
    pub(crate) fn progress(&mut self, busy: bool, human: &str, json: serde_json::Value) {
        let now = Instant::now();
        let due = busy
            || self
                .last_human
                .is_none_or(|at| now.duration_since(at) >= IDLE_LINE_INTERVAL);
        if due {
            self.last_human = Some(now);
            self.line(human, json);
        } else if self.report == Report::Json {
            let _ = writeln!(std::io::stdout().lock(), "{json}");
        }
    }

    /// A timer for progress lines, whose first tick is one interval away.
    pub(crate) fn ticker(&self) -> tokio::time::Interval {
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker
    }

    /// The events per second since the last call, given the running
    /// total `count`.
    pub(crate) fn rate(&mut self, count: u64) -> u64 {
        let now = Instant::now();
        let secs = now.duration_since(self.last_at).as_secs_f64();
        let done = count.saturating_sub(self.last_count);
        self.last_at = now;
        self.last_count = count;
        if secs > 0.0 {
            (done as f64 / secs).round() as u64
        } else {
            0
        }
    }
}

/// Waits between attempts after a failure: 100 ms, doubling to 2 s, back
/// to 100 ms after an attempt that got somewhere.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub(crate) fn new() -> Backoff {
        Backoff { next: Self::FIRST }
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        wait
    }
}
