//! Progress bars for runs longer than a second (indicatif), on stderr, hidden when stderr is
//! not a terminal so that logs and pipes stay clean. MINIX VM had nothing of the kind; it
//! belongs to the command line around the server.
//!
//! A run with warm-up has two phases: the untimed warm-up (every arena frame written, the
//! workload played once), shown as a spinner with its elapsed time, then the timed pass, a
//! bar whose rate and ETA count from the start of that pass only (counting the warm-up made
//! a 7 s run promise 86 minutes).

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const BAR: &str = "{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})";
const SPINNER: &str = "{spinner} {msg} {elapsed}";

/// A progress bar on stderr that appears once a run has lasted a second (the warm-up
/// spinner at once: nothing else would say why the terminal is quiet), and never when
/// stderr is not a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    what: String,
    total: u64,
    start: Cell<Instant>,
    shown: Cell<bool>,
}

fn style(template: &str) -> Option<ProgressStyle> {
    ProgressStyle::with_template(template).ok().map(|s| s.progress_chars("=> "))
}

impl Progress {
    /// A bar for `total` units described by `what`.
    pub fn new(total: u64, what: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if let Some(s) = style(BAR) {
            bar.set_style(s);
        }
        bar.set_message(what.to_string());
        Progress {
            bar,
            what: what.to_string(),
            total,
            start: Cell::new(Instant::now()),
            shown: Cell::new(false),
        }
    }

    fn show_if_due(&self) {
        if !self.shown.get()
            && self.start.get().elapsed() > Duration::from_secs(1)
            && std::io::stderr().is_terminal()
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
    }

    /// The untimed warm-up begins: a spinner with the elapsed time, ticking on its own
    /// (the warm-up reports no progress), shown once it has lasted a second.
    pub fn warming(&self) {
        if let Some(s) = style(SPINNER) {
            self.bar.set_style(s);
        }
        self.bar.set_message("warm-up (untimed)");
        self.bar.reset();
        self.start.set(Instant::now());
        self.bar.enable_steady_tick(Duration::from_millis(250));
        if std::io::stderr().is_terminal() {
            // Nothing calls `advance` during the warm-up: show the spinner now, it is cleared
            // when the timed pass starts or the run ends.
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
    }

    /// The timed pass begins: back to the bar, with position, rate and ETA counted from now.
    pub fn start(&self) {
        self.bar.disable_steady_tick();
        if let Some(s) = style(BAR) {
            self.bar.set_style(s);
        }
        self.bar.set_length(self.total);
        self.bar.set_message(self.what.clone());
        self.bar.reset();
        self.start.set(Instant::now());
    }

    /// Time counted by the bar's rate and ETA (since [`Self::start`], or creation).
    pub fn elapsed(&self) -> Duration {
        self.bar.elapsed()
    }

    /// Advances by `n`.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
        self.show_if_due();
    }

    /// Sets the position.
    pub fn set(&self, pos: u64) {
        self.bar.set_position(pos);
        self.advance(0);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.disable_steady_tick();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_eta_count_from_the_timed_pass_only() {
        let p = Progress::new(1000, "ops");
        p.warming();
        std::thread::sleep(Duration::from_millis(300));
        p.start();
        // The warm-up's 300 ms are not in the time the rate and ETA are computed from.
        assert!(p.elapsed() < Duration::from_millis(300), "{:?}", p.elapsed());
        assert_eq!(p.bar.length(), Some(1000));
        assert_eq!(p.bar.position(), 0);
        p.advance(10);
        assert_eq!(p.bar.position(), 10);
        p.finish();
    }
}
