//! A reader that goes away early (`helm safe-rollback --help | head -1`, a CI step piping the
//! JSON report into a tool that stops reading) must not make us panic: the exit code still
//! says how the run ended. No test bed needed.

use std::process::{Command, Stdio};

#[test]
fn help_into_a_closed_pipe_exits_cleanly() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    // Nobody will ever read: every write gets EPIPE.
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_helm-safe-rollback"))
        .arg("--help")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run helm-safe-rollback");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
