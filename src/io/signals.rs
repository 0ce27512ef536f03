//! SIGINT, SIGTERM and SIGHUP: before the pre-state is journaled they end the run; after, they
//! are remembered, passed on to helm while it runs, and the pipeline stops where it safely can.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;
use std::thread;

use anyhow::Result;

/// The pid of the child that gets our SIGINT/SIGTERM/SIGHUP (helm rollback), 0 when none.
pub(crate) static FOREGROUND_CHILD: AtomicI32 = AtomicI32::new(0);
/// Until the pre-state is journaled, a signal ends us at once: nothing has changed yet.
static DIE_ON_SIGNAL: AtomicBool = AtomicBool::new(true);
static RECEIVED: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Takes SIGINT, SIGTERM and SIGHUP for the whole process, once: before anything is journaled
/// they end the run (exit 128+N); from then on they are remembered, passed on to the
/// foreground child (helm) while one runs, and the pipeline decides what to stop (see
/// [`interrupted`]). One handler for the process, not one per child: a handler installed per
/// child would stay installed after it, and ^C after the first helm run would do nothing.
pub fn handle_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if DIE_ON_SIGNAL.load(Ordering::SeqCst) {
                    std::process::exit(128 + signal);
                }
                RECEIVED.lock().expect("signals lock").push(signal);
                let child = FOREGROUND_CHILD.load(Ordering::SeqCst);
                if child > 0 {
                    // SAFETY: kill(2) on a child that is not yet reaped (see `exec::stream`).
                    unsafe { libc::kill(child, signal) };
                }
            }
        })?;
    Ok(())
}

/// From now on a signal no longer ends the run: there is a journal to complete.
pub fn survive_signals() {
    DIE_ON_SIGNAL.store(false, Ordering::SeqCst);
}

/// The signals received since [`survive_signals`].
pub fn received_signals() -> Vec<i32> {
    RECEIVED.lock().expect("signals lock").clone()
}

/// The first signal received, if any: the user wants the run to stop as soon as it safely can.
pub fn interrupted() -> Option<i32> {
    received_signals().first().copied()
}
