//! The one place that starts processes.
//!
//! helm and kubectl are the only programs we run, and every run goes through here, so that the
//! rest of the code deals in plain data and the failure modes of spawning (missing binary, not
//! executable, killed by a signal, flooding stderr) are handled once.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, Result};

use crate::io::{signals, trace};

/// Helm's stderr is kept for classification up to this size; beyond it we keep streaming to the
/// user but stop remembering, so a runaway child cannot exhaust our memory.
pub const CAPTURE_LIMIT: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// `None` when the child was killed by a signal.
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Bytes of stderr that were streamed but not kept (see [`CAPTURE_LIMIT`]).
    pub stderr_dropped: usize,
    /// Signals we received while the child ran and passed on to it.
    pub forwarded_signals: Vec<i32>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last `Error:` line, or the last non-empty line: what a one-line message should quote.
    pub fn error_line(&self) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("Error: "))
            .or(lines.last().copied())
            .map(str::to_string)
            .unwrap_or_else(|| describe_status(self.code, self.signal))
    }
}

fn describe_status(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(sig)) => format!("killed by signal {sig}"),
        (Some(code), _) => format!("exited with code {code} and printed nothing"),
        _ => "ended without an exit code".into(),
    }
}

/// The Go runtime settings for our own short-lived helm and kubectl children (reads, the proxy,
/// deletes): garbage collection off until the heap reaches 256 MiB. These processes live for a
/// fraction of a second, mostly starting up, and with two cores shared by four of them the
/// collector's work was a quarter of their CPU time — time the user waits for before helm even
/// starts. At 500 objects they peak at 50–60 MiB of RSS, far from the limit. Not for
/// `helm rollback` itself, which must run exactly as the user would run it, and not when the
/// user has tuned the Go runtime themselves.
fn lean_go_runtime() -> Vec<(&'static str, &'static str)> {
    lean_go_runtime_given(&|key| std::env::var_os(key))
}

fn lean_go_runtime_given(
    env: &dyn Fn(&str) -> Option<std::ffi::OsString>,
) -> Vec<(&'static str, &'static str)> {
    if env("GOGC").is_some() || env("GOMEMLIMIT").is_some() {
        return Vec::new();
    }
    vec![("GOGC", "off"), ("GOMEMLIMIT", "256MiB")]
}

/// Runs a program to completion and captures its output.
pub fn capture(program: &Path, args: &[String]) -> Result<Output> {
    capture_with_input(program, args, None)
}

/// Like [`capture`], feeding `input` on stdin (manifests for kubectl, which never touch disk).
pub fn capture_with_input(program: &Path, args: &[String], input: Option<&[u8]>) -> Result<Output> {
    trace::SPAWNED.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    // A bare name (`kubectl`) must be looked up in PATH as a shell would; duct resolves a `Path`
    // with one component against the current directory instead, so hand it the name as a string.
    let mut command = duct::cmd(program.as_os_str(), args);
    for (key, value) in lean_go_runtime() {
        command = command.env(key, value);
    }
    let command = match input {
        Some(bytes) => command.stdin_bytes(bytes.to_vec()),
        None => command.stdin_null(),
    };
    let output = command
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| spawn_error(program, e))?;
    trace::child(program, args, started);
    let (code, signal) = status_parts(output.status);
    Ok(Output {
        stdout: output.stdout,
        stderr: output.stderr,
        code,
        signal,
        stderr_dropped: 0,
        forwarded_signals: Vec::new(),
    })
}

/// A long-lived helper process (`kubectl proxy`) that lives exactly as long as this value.
///
/// It runs in its own process group, so a terminal's ^C (which helm must get, and we must
/// survive to reconcile) does not take it down, and on Linux it is killed by the kernel when we
/// die, even by SIGKILL: a proxy holding the user's credentials must never outlive us.
pub struct Background {
    child: std::process::Child,
    program: String,
    args: Vec<String>,
    started: Instant,
}

impl Background {
    /// `Some(status)` once the process has ended (it should not before we drop it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        trace::child(Path::new(&self.program), &self.args, self.started);
    }
}

/// Starts `program` in the background, stdout discarded and stderr appended to `stderr_to`.
/// Must be called from the main thread: the kernel's parent-death signal follows the thread
/// that forked, not the process.
pub fn spawn_background(
    program: &Path,
    args: &[String],
    stderr_to: std::fs::File,
) -> Result<Background> {
    use std::os::unix::process::CommandExt;
    trace::SPAWNED.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let parent = std::process::id() as libc::pid_t;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(lean_go_runtime())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_to);
    // SAFETY: only async-signal-safe calls (setpgid, prctl, getppid, _exit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::setpgid(0, 0);
            #[cfg(target_os = "linux")]
            {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // We may have died before the prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
            }
            let _ = parent;
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| spawn_error(program, e))?;
    Ok(Background {
        child,
        program: program.display().to_string(),
        args: args.to_vec(),
        started,
    })
}

/// Where a streamed child's stdout is echoed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    Stdout,
    Stderr,
    /// Captured only (tests of this module, which must not flood the test runner's terminal).
    Nowhere,
}

/// Runs a program with its output echoed live (stdout to `stdout_echo`, stderr to our stderr)
/// and captured at the same time.
///
/// SIGINT, SIGTERM and SIGHUP sent to us while it runs are passed on to the child instead of
/// killing us (see [`signals::handle_signals`]): helm gets to stop the way it chooses, and we live on to
/// finish the journal and the reconcile. (A CI runner's SIGTERM reaches only our pid; a
/// terminal's ^C reaches both.)
pub fn stream(program: &Path, args: &[String], stdout_echo: Echo) -> Result<Output> {
    stream_echoing(program, args, stdout_echo, Echo::Stderr)
}

fn stream_echoing(
    program: &Path,
    args: &[String],
    stdout_echo: Echo,
    stderr_echo: Echo,
) -> Result<Output> {
    trace::SPAWNED.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let signals_before = signals::received_signals().len();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(program, e))?;
    let child_stdout = child.stdout.take().expect("piped stdout");
    let child_stderr = child.stderr.take().expect("piped stderr");
    signals::FOREGROUND_CHILD.store(child.id() as i32, Ordering::SeqCst);
    let (stdout, stderr) = thread::scope(|scope| {
        let out = scope.spawn(move || tee(child_stdout, stdout_echo));
        let err = scope.spawn(move || tee(child_stderr, stderr_echo));
        (
            out.join().expect("stdout tee"),
            err.join().expect("stderr tee"),
        )
    });
    // Cleared before the child is reaped: a signal is never sent to a recycled pid.
    signals::FOREGROUND_CHILD.store(0, Ordering::SeqCst);
    let status = child.wait()?;
    trace::child(program, args, started);
    let (code, signal) = status_parts(status);
    Ok(Output {
        stdout: stdout.0,
        stderr: stderr.0,
        code,
        signal,
        stderr_dropped: stderr.1,
        forwarded_signals: signals::received_signals()[signals_before..].to_vec(),
    })
}

fn tee(mut from: impl Read, echo: Echo) -> (Vec<u8>, usize) {
    let mut kept = Vec::new();
    let mut dropped = 0;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buffer[..n];
        // The user must see helm's output even when we cannot write it (a closed pipe): keep
        // reading so the child never blocks on a full pipe.
        let _ = match echo {
            Echo::Stdout => std::io::stdout().lock().write_all(chunk),
            Echo::Stderr => std::io::stderr().lock().write_all(chunk),
            Echo::Nowhere => Ok(()),
        };
        let room = CAPTURE_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
        dropped += n - n.min(room);
    }
    (kept, dropped)
}

fn status_parts(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        (status.code(), status.signal())
    }
    #[cfg(not(unix))]
    {
        (status.code(), None)
    }
}

fn spawn_error(program: &Path, error: std::io::Error) -> anyhow::Error {
    match error.kind() {
        std::io::ErrorKind::NotFound => anyhow!("{} not found", program.display()),
        std::io::ErrorKind::PermissionDenied => {
            anyhow!("{} is not executable", program.display())
        }
        _ if error.raw_os_error() == Some(libc::ENOEXEC) => {
            anyhow!("{} is not an executable program", program.display())
        }
        _ => anyhow!("cannot run {}: {error}", program.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Result<Output> {
        stream_echoing(
            Path::new("/bin/sh"),
            &["-c".to_string(), script.to_string()],
            Echo::Nowhere,
            Echo::Nowhere,
        )
    }

    /// 100 MB on stderr: all of it is drained (the child never blocks), a bounded part kept.
    #[test]
    fn a_flood_on_stderr_is_drained_but_not_all_kept() {
        let output = sh("head -c 100000000 /dev/zero | tr '\\0' x >&2; echo done").unwrap();
        assert!(output.success());
        assert_eq!(output.stdout, b"done\n");
        assert_eq!(output.stderr.len(), CAPTURE_LIMIT);
        assert_eq!(output.stderr.len() + output.stderr_dropped, 100_000_000);
    }

    #[test]
    fn a_child_killed_by_a_signal_is_reported_as_such() {
        let output = sh("kill -9 $$").unwrap();
        assert_eq!(output.code, None);
        assert_eq!(output.signal, Some(9));
        assert_eq!(output.error_line(), "killed by signal 9");
    }

    #[test]
    fn our_children_run_with_a_lean_go_runtime_unless_the_user_tuned_it() {
        let output = capture(
            Path::new("/bin/sh"),
            &["-c".into(), "echo \"$GOGC $GOMEMLIMIT\"".into()],
        )
        .unwrap();
        let expected = match (std::env::var("GOGC"), std::env::var("GOMEMLIMIT")) {
            (Err(_), Err(_)) => "off 256MiB\n".to_string(),
            (gogc, limit) => format!(
                "{} {}\n",
                gogc.unwrap_or_default(),
                limit.unwrap_or_default()
            ),
        };
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
        let tuned = |key: &str| (key == "GOGC").then(|| "50".into());
        assert!(lean_go_runtime_given(&tuned).is_empty());
    }

    #[test]
    fn the_rollback_itself_runs_with_the_users_go_runtime() {
        let output = sh("echo \"${GOGC-unset}\"").unwrap();
        let expected = std::env::var("GOGC").unwrap_or_else(|_| "unset".into());
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), expected);
    }

    #[test]
    fn a_missing_program_is_one_clear_error() {
        let err = capture(Path::new("/nonexistent/helm"), &[]).unwrap_err();
        assert_eq!(err.to_string(), "/nonexistent/helm not found");
    }
}
