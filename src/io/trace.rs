//! `--debug`'s timeline, and the count of child processes a run started.
//!
//! With `--debug`, every child's command (subcommand words only: flags can carry credentials),
//! when it started and how long it took go to stderr, with the steps that are not processes (a
//! batch of API requests): where a slow run spent its time. The benchmarks read the count.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// How many child processes this run started; the benchmarks report it.
pub(crate) static SPAWNED: AtomicUsize = AtomicUsize::new(0);

pub fn spawned_count() -> usize {
    SPAWNED.load(Ordering::Relaxed)
}

/// With `--debug`, every child's command (subcommand words only: flags can carry credentials),
/// when it started and how long it took go to stderr: where a slow run spent its time.
static TRACE: AtomicBool = AtomicBool::new(false);
static EPOCH: OnceLock<Instant> = OnceLock::new();

pub fn enable(enabled: bool) {
    EPOCH.get_or_init(Instant::now);
    TRACE.store(enabled, Ordering::Relaxed);
}

pub(crate) fn child(program: &Path, args: &[String], started: Instant) {
    let name = program.file_name().unwrap_or_default().to_string_lossy();
    step(&format!("{name} {}", subcommand(args)), started);
}

/// Traces one step that is not a child process (a batch of API requests) like a child.
pub fn step(what: &str, started: Instant) {
    if !TRACE.load(Ordering::Relaxed) {
        return;
    }
    let epoch = *EPOCH.get_or_init(Instant::now);
    eprintln!(
        "safe-rollback: [{:>7.3}s] {what} took {:.3}s",
        started.saturating_duration_since(epoch).as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// Traces a fact worth knowing when a run is slow (a cached answer, a skipped step).
pub fn note(what: &str) {
    if TRACE.load(Ordering::Relaxed) {
        eprintln!("safe-rollback: {what}");
    }
}

/// The leading words of a command line that are neither flags nor flag values, e.g. `get
/// manifest` or `apply`, at most two.
fn subcommand(args: &[String]) -> String {
    args.iter()
        .take_while(|a| !a.starts_with('-'))
        .take(2)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}
