//! What a finished process did (exit code, stdout, stderr as text), the assertions tests make on
//! it, and the line helm adds below a failed plugin's own output.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The line helm itself (3 and 4) prints on stderr after a plugin exits non-zero. A user running
/// `helm safe-rollback` always sees it below our own output; we cannot suppress it.
pub const HELM_PLUGIN_ERROR: &str = "Error: plugin \"safe-rollback\" exited with error";

/// A JSON array of strings from a report, e.g. `primary_errors`.
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// What a process did, with its output as text for assertions and failure messages.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs `command` to its end, or panics once `timeout` has passed (the child killed), so
    /// that a hung process fails its test instead of stalling the whole run. Both pipes are
    /// drained on threads: a chatty child must not block on a full pipe while we wait.
    pub fn within(mut command: Command, timeout: Duration) -> Run {
        let what = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {what}: {e}"));
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped")));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("waiting for the child") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{what} still running after {timeout:?}; stderr so far:\n{}",
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default())
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        Run::from(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }

    /// stdout as one JSON document; one of ours must also be what its schema says.
    pub fn json(&self) -> serde_json::Value {
        let document = serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"));
        if let Some(violations) = super::schema::violations(&document) {
            assert!(
                violations.is_empty(),
                "the document breaks docs/schema/{}.schema.json:\n{}\n{self}",
                document["kind"],
                violations.join("\n")
            );
        }
        document
    }

    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }

    /// A signal's death counts as a failure too: its code is -1.
    pub fn failed(self) -> Run {
        assert_ne!(self.code, 0, "expected failure:\n{self}");
        self
    }

    /// Our own stderr lines from a run through the plugin: when we exited non-zero, helm adds
    /// [`HELM_PLUGIN_ERROR`] as the last line; it must be there, and it is not ours.
    pub fn plugin_stderr_lines(&self) -> Vec<&str> {
        let mut lines: Vec<&str> = self.stderr.lines().collect();
        if self.code != 0 {
            assert_eq!(
                lines.pop(),
                Some(HELM_PLUGIN_ERROR),
                "helm's own last line after a failed plugin:\n{self}"
            );
        }
        lines
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
