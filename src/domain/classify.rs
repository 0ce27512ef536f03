//! Sorts what helm printed into the error that matters and the noise around it.
//!
//! A failed rollback prints its real cause next to lines about helm's own cleanup
//! (`object not found, skipping delete`, `an error occurred while cleaning up resources…`), and
//! Helm 4 sometimes prints the cause *only* in a `level=WARN msg="Rollback … failed: …"` log line
//! while its `Error:` line carries nothing but cleanup noise. This module splits every line into
//! findings, each with a class, so the report can lead with the cause.
//!
//! The rule that keeps this honest: a line nobody recognises is [`Class::Primary`]. We hide only
//! what we positively know to be noise.

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Why the rollback failed (or something we do not understand, which may be why).
    Primary,
    /// Helm's own cleanup complaining about objects it could not delete.
    CleanupNoise,
    /// Network, API-server or optimistic-concurrency faults that a retry can get past.
    Transient,
    /// Another helm operation holds the release.
    Lock,
    /// Worth reading, not an error (Helm 4 taking over an existing object is one).
    Warning,
    /// Debug output, stack frames, success messages.
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub class: Class,
    pub text: String,
    /// 1-based line of helm's output the finding came from.
    pub line: usize,
}

/// The texts of the findings of one class, in order.
pub fn texts_of(findings: &[Finding], class: Class) -> Vec<&str> {
    findings
        .iter()
        .filter(|f| f.class == class)
        .map(|f| f.text.as_str())
        .collect()
}

/// Whether helm gave up waiting for the objects to become ready: its `--wait` deadline passed.
/// helm 3.17 says `context deadline exceeded` (older helm 3 `timed out waiting for the
/// condition`); helm 4 ends its list of objects not ready with `context deadline exceeded`.
pub fn wait_deadline_passed(findings: &[Finding]) -> bool {
    findings.iter().any(|f| {
        f.class == Class::Primary
            && (f.text.contains("context deadline exceeded") || is_bare_timeout(&f.text))
    })
}

/// helm 3's timeout that names nothing it waited for (a hook, or the objects of `--wait`):
/// `timed out waiting for the condition`.
pub fn is_bare_timeout(line: &str) -> bool {
    line.contains("timed out waiting for the condition")
}

/// Classifies helm's output. Bytes that are not UTF-8 are replaced, never fatal: stderr is
/// whatever the child wrote.
pub fn classify(output: &[u8]) -> Vec<Finding> {
    let text = String::from_utf8_lossy(output);
    let mut findings: Vec<Finding> = Vec::new();
    let mut context = Context::Start;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let (next_context, parts) = classify_line(line, context);
        if next_context == Context::ErrorContinuation && context != Context::Start {
            // A multi-line `Error:` message (Helm 4's wait timeout ends with a bare
            // `context deadline exceeded`) stays one finding.
            if let Some(last) = findings.last_mut() {
                last.text.push('\n');
                last.text.push_str(line);
                continue;
            }
        }
        context = next_context;
        findings.extend(parts.into_iter().map(|(class, text)| Finding {
            class,
            text,
            line: number,
        }));
    }
    findings
}

/// What the previous line was, because helm's multi-line records only make sense in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    Start,
    /// After an `Error:` line: unrecognised lines continue it.
    Error,
    ErrorContinuation,
    /// After a helm 3 `[debug]` line: Go stack frames follow.
    Debug,
}

fn classify_line(line: &str, context: Context) -> (Context, Vec<(Class, String)>) {
    if let Some(message) = line.strip_prefix("Error: ") {
        return (Context::Error, classify_error(message));
    }
    if line.starts_with("level=") || line.starts_with("time=") {
        return (Context::Start, classify_log_record(line));
    }
    if let Some(captures) = helm3_debug().captures(line) {
        let message = captures.get(1).map_or("", |m| m.as_str());
        if let Some(cause) = message
            .strip_prefix("warning: ")
            .and_then(rollback_failure_cause)
        {
            return (Context::Debug, classify_error(cause));
        }
        return (Context::Debug, vec![(Class::Info, line.to_string())]);
    }
    if context == Context::Debug && (line.starts_with('\t') || go_stack_frame().is_match(line)) {
        return (Context::Debug, vec![(Class::Info, line.to_string())]);
    }
    // client-go's own log (klog): its informational lines (a watch that ended when helm
    // stopped waiting) say nothing of the rollback; its warnings and errors are warnings, as
    // helm's verdict is its `Error:` line.
    if let Some(captures) = klog_line().captures(line) {
        let class = match &captures[1] {
            "I" => Class::Info,
            _ => Class::Warning,
        };
        return (Context::Start, vec![(class, line.to_string())]);
    }
    if line.starts_with("WARNING: ") {
        // helm 3's kubeconfig permission warnings.
        return (Context::Start, vec![(Class::Warning, line.to_string())]);
    }
    if success_message().is_match(line) {
        return (Context::Start, vec![(Class::Info, line.to_string())]);
    }
    if matches!(context, Context::Error | Context::ErrorContinuation) {
        return (Context::ErrorContinuation, Vec::new());
    }
    (Context::Start, classify_error(line))
}

/// Classifies an error message, splitting helm's cleanup wrapper from the cause it wraps.
fn classify_error(message: &str) -> Vec<(Class, String)> {
    const WRAPPER: &str =
        "an error occurred while cleaning up resources. original rollback error: ";
    const CLEANUP: &str = "unable to cleanup resources: ";
    if let Some(rest) = message.strip_prefix(WRAPPER) {
        // helm wraps as "<wrapper><cause>: unable to cleanup resources: <errors>"; Helm 4 drops
        // the cause entirely ("<wrapper>unable to cleanup resources: …").
        let (cause, cleanup) = match rest.rfind(CLEANUP) {
            Some(at) => (rest[..at].trim_end_matches(": "), &rest[at..]),
            None => (rest, ""),
        };
        let mut parts = Vec::new();
        if !cause.trim().is_empty() {
            parts.extend(classify_error(cause));
        }
        parts.push((
            Class::CleanupNoise,
            format!("{}{cleanup}", WRAPPER.trim_end()),
        ));
        return parts;
    }
    let class = if message.contains("another operation (install/upgrade/rollback) is in progress") {
        Class::Lock
    } else if cleanup_noise().is_match(message) {
        Class::CleanupNoise
    } else if transient().is_match(message) {
        Class::Transient
    } else {
        Class::Primary
    };
    vec![(class, message.to_string())]
}

/// Helm 4 logs through slog's text handler: `level=WARN msg="…" key=value …`.
fn classify_log_record(line: &str) -> Vec<(Class, String)> {
    let fields = parse_logfmt(line);
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let level = get("level").unwrap_or("");
    let message = get("msg").unwrap_or("");
    if let Some(cause) = rollback_failure_cause(message) {
        return classify_error(cause);
    }
    if let Some(error) = get("error") {
        if matches!(level, "WARN" | "ERROR") {
            return classify_error(error);
        }
    }
    match level {
        "WARN" => {
            let mut text = message.to_string();
            let details: Vec<String> = fields
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "time" | "level" | "msg"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !details.is_empty() {
                text = format!("{text} ({})", details.join(" "));
            }
            vec![(Class::Warning, text)]
        }
        "ERROR" => classify_error(message),
        _ => vec![(Class::Info, line.to_string())],
    }
}

/// `Rollback "NAME" failed: CAUSE` → `CAUSE`: the wording helm 3 and 4 log when the update fails.
fn rollback_failure_cause(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Rollback \"")?;
    let end = rest.find("\" failed: ")?;
    Some(&rest[end + "\" failed: ".len()..])
}

/// Splits a logfmt record into key/value pairs, undoing Go's quoting of values.
fn parse_logfmt(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ' ' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some('r') => value.push('\r'),
                            Some(other) => value.push(other),
                            None => break,
                        },
                        other => value.push(other),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ' ' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        fields.push((key, value));
    }
    fields
}

fn helm3_debug() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // helm 3.17 puts a timestamp between the source location and the tag:
    // `rollback.go:65: 2026-11-24 19:43:52.707181167 +0000 UTC m=+0.072325030 [debug] …`.
    RE.get_or_init(|| Regex::new(r"^[\w.-]+\.go:\d+: (?:[^\[]*)\[debug\] (.*)$").unwrap())
}

fn go_stack_frame() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[\w./-]+\.(\(\*?\w+\)\.)?[\w.]+$").unwrap())
}

/// klog's header: severity, `MMDD hh:mm:ss.uuuuuu`, thread id, `file:line]`.
fn klog_line() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w./-]+:\d+\] ").unwrap()
    })
}

fn success_message() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^Rollback was a success! Happy Helming!$").unwrap())
}

fn cleanup_noise() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(unable to cleanup resources: |object not found, skipping delete)").unwrap()
    })
}

fn transient() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"(?i)connection refused|connection reset by peer|broken pipe|unexpected EOF",
            r"|TLS handshake timeout|i/o timeout|http2: client connection lost",
            r"|etcdserver: (request timed out|leader changed|too many requests)",
            r"|the server is currently unable to handle the request|Service Unavailable",
            r"|Too Many Requests|the server has received too many requests",
            r"|the object has been modified; please apply your changes",
            r"|the server was unable to return a response in the time allotted",
            r"|Kubernetes cluster unreachable|no route to host|(^|[^\w])EOF$"
        ))
        .unwrap()
    })
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
