//! A progress line on a terminal for work that takes a while (the incident view): shown once a
//! second has passed, rewritten in place, erased at the end. Never when stderr is not a
//! terminal, nor with `--output json`: scripts read clean streams.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Progress {
    shown: bool,
    started: Instant,
    total: usize,
    /// Whether a line is on the screen to erase.
    drawn: Mutex<bool>,
}

impl Progress {
    pub fn new(total: usize, wanted: bool) -> Progress {
        Progress {
            shown: wanted && std::io::stderr().is_terminal(),
            started: Instant::now(),
            total,
            drawn: Mutex::new(false),
        }
    }

    pub fn done(&self, done: usize, what: &str) {
        if !self.shown || self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let mut drawn = self.drawn.lock().unwrap_or_else(|e| e.into_inner());
        let line = format!("\r\x1b[2Kdiagnosing {done}/{} releases: {what}", self.total);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        *drawn = true;
    }

    pub fn finish(&self) {
        if *self.drawn.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = std::io::stderr().lock().write_all(b"\r\x1b[2K");
        }
    }
}
