//! Progress bars for runs longer than a second (indicatif), on stderr, hidden when stderr is
//! not a terminal so that logs and pipes stay clean. MINIX VM had nothing of the kind; it
//! belongs to the command line around the server.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar on stderr that appears only once a run has lasted a second, and never
/// when stderr is not a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    shown: std::cell::Cell<bool>,
}

impl Progress {
    /// A bar for `total` units described by `what`.
    pub fn new(total: u64, what: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Progress { bar, start: Instant::now(), shown: std::cell::Cell::new(false) }
    }

    /// Advances by `n`.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
        if !self.shown.get()
            && self.start.elapsed() > Duration::from_secs(1)
            && std::io::stderr().is_terminal()
        {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown.set(true);
        }
    }

    /// Sets the position.
    pub fn set(&self, pos: u64) {
        self.bar.set_position(pos);
        self.advance(0);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
