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
    if line.starts_with("WARNING: ") || line.starts_with("W1") || line.starts_with("W0") {
        // helm 3's kubeconfig permission warnings and client-go's klog warnings.
        if klog_or_helm_warning().is_match(line) {
            return (Context::Start, vec![(Class::Warning, line.to_string())]);
        }
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

fn klog_or_helm_warning() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^(WARNING: |W\d{4} \d\d:\d\d:\d\d\.\d+ )").unwrap())
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
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(format!("tests/fixtures/real-helm/{path}")).unwrap()
    }

    use super::texts_of as of;

    const SEED_CAUSE_V3: &str = "cannot patch \"seed-h3-web\" with kind Deployment: Deployment.apps \"seed-h3-web\" is invalid: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\"";
    const SEED_CAUSE_V4: &str = "server-side apply failed for object default/seed-h4-web apps/v1, Kind=Deployment: Deployment.apps \"seed-h4-web\" is invalid: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\"";

    /// Every step of the seed scenario, for both helm versions: the Deployment's validation error
    /// is the one primary error, including Helm 4 step 06 where only the WARN line carries it.
    #[test]
    fn seed_rollbacks_lead_with_the_validation_error() {
        for (dir, cause) in [
            ("seed/helm-v3.17.3", SEED_CAUSE_V3),
            ("seed/helm-v4.3.1", SEED_CAUSE_V4),
        ] {
            for step in [
                "04-rollback2-cleanup",
                "05-rollback2-nocleanup",
                "06-rollback2-cleanup-leftover",
            ] {
                let findings = classify(&fixture(&format!("{dir}/{step}.stderr")));
                let mut primary = of(&findings, Class::Primary);
                primary.dedup();
                assert_eq!(primary.len(), 1, "{dir}/{step}: {findings:#?}");
                assert!(
                    primary[0].starts_with(cause),
                    "{dir}/{step}: {}",
                    primary[0]
                );
                assert!(primary[0].ends_with("*[a-z0-9])?)*')"), "{}", primary[0]);
                let noise = of(&findings, Class::CleanupNoise);
                if step.starts_with("06") {
                    assert_eq!(noise.len(), 1, "{dir}/{step}: {findings:#?}");
                    assert!(noise[0].contains("object not found, skipping delete"));
                } else {
                    assert!(noise.is_empty(), "{dir}/{step}: {findings:#?}");
                }
            }
        }
    }

    #[test]
    fn helm4_warn_line_is_unescaped_exactly_like_the_error_line() {
        let findings = classify(&fixture("seed/helm-v4.3.1/05-rollback2-nocleanup.stderr"));
        let primary = of(&findings, Class::Primary);
        assert_eq!(primary.len(), 2);
        assert_eq!(primary[0], primary[1], "WARN and Error lines must dedupe");
    }

    #[test]
    fn helm3_foreign_object_error_is_primary_and_its_cleanup_is_noise() {
        let findings = classify(&fixture(
            "more/helm-v3.17.3/03-rollback1-unmanaged-conflict.stderr",
        ));
        assert_eq!(
            of(&findings, Class::Primary),
            ["no ConfigMap with the name \"more-h3-extra\" found"]
        );
        assert_eq!(of(&findings, Class::CleanupNoise).len(), 1);
    }

    #[test]
    fn helm4_takeover_is_a_warning_naming_the_object() {
        let findings = classify(&fixture(
            "more/helm-v4.3.1/03-rollback1-unmanaged-conflict.stderr",
        ));
        let warnings = of(&findings, Class::Warning);
        assert_eq!(warnings.len(), 1, "{findings:#?}");
        assert!(warnings[0].contains("resource exists on cluster but not in original release"));
        assert!(warnings[0].contains("name=more-h4-extra kind=ConfigMap"));
        assert!(of(&findings, Class::Primary).is_empty());
    }

    #[test]
    fn helm4_multi_line_timeout_stays_one_primary_error() {
        let findings = classify(&fixture("more/helm-v4.3.1/07-rollback-wait-timeout.stderr"));
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].class, Class::Primary);
        assert!(findings[0]
            .text
            .ends_with("Available: 0/1\ncontext deadline exceeded"));
        let v3 = classify(&fixture(
            "more/helm-v3.17.3/07-rollback-wait-timeout.stderr",
        ));
        assert_eq!(
            of(&v3, Class::Primary),
            ["release more-h3 failed: context deadline exceeded"]
        );
    }

    #[test]
    fn unreachable_cluster_is_transient_on_both_versions() {
        for dir in ["more/helm-v3.17.3", "more/helm-v4.3.1"] {
            let findings = classify(&fixture(&format!("{dir}/08-unreachable.stderr")));
            assert_eq!(findings.len(), 1);
            assert_eq!(findings[0].class, Class::Transient, "{dir}");
        }
    }

    #[test]
    fn unknown_release_and_revision_are_primary() {
        for dir in ["seed/helm-v3.17.3", "seed/helm-v4.3.1"] {
            for (step, text) in [
                ("09-rollback-norelease", "release: not found"),
                ("10-rollback-norevision", "release has no 99 version"),
            ] {
                let findings = classify(&fixture(&format!("{dir}/{step}.stderr")));
                assert_eq!(of(&findings, Class::Primary), [text], "{dir}/{step}");
            }
        }
    }

    #[test]
    fn immutable_field_upgrade_failures_are_primary() {
        let v4 = classify(&fixture(
            "more/helm-v4.3.1/04-upgrade-selector-change.stderr",
        ));
        let primary = of(&v4, Class::Primary);
        assert_eq!(primary.len(), 2, "{v4:#?}");
        assert!(primary[0].ends_with("field is immutable"));
        assert!(primary[1].starts_with("UPGRADE FAILED: "));
    }

    #[test]
    fn success_output_has_no_errors() {
        for dir in ["seed/helm-v3.17.3", "seed/helm-v4.3.1"] {
            let out = classify(&fixture(&format!("{dir}/07-rollback3-good.stdout")));
            assert!(out.iter().all(|f| f.class == Class::Info), "{out:#?}");
            assert!(classify(&fixture(&format!("{dir}/07-rollback3-good.stderr"))).is_empty());
        }
    }

    /// Every transcript we hold, stdout and stderr: nothing panics, and whatever a failed step
    /// printed yields at least one error a human would be shown.
    #[test]
    fn every_failed_transcript_yields_an_error_to_show() {
        for scenario in ["seed", "more", "e2e"] {
            for version in ["helm-v3.17.3", "helm-v4.3.1"] {
                let dir = format!("tests/fixtures/real-helm/{scenario}/{version}");
                for entry in std::fs::read_dir(&dir).unwrap() {
                    let path = entry.unwrap().path();
                    if path.extension().is_some_and(|e| e == "rc") {
                        let rc = std::fs::read_to_string(&path).unwrap();
                        let stderr = std::fs::read(path.with_extension("stderr")).unwrap();
                        let findings = classify(&stderr);
                        let shown = findings.iter().any(|f| {
                            matches!(f.class, Class::Primary | Class::Transient | Class::Lock)
                        });
                        assert_eq!(rc.trim() != "0", shown, "{}: {findings:#?}", path.display());
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_lines_are_primary_and_odd_bytes_are_survived() {
        let findings = classify(b"something new went wrong \xff\xfe\n\n");
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].class, Class::Primary);
        assert!(findings[0].text.contains('\u{fffd}'));
    }

    #[test]
    fn a_pending_release_is_a_lock_on_both_versions() {
        for version in ["helm-v3.17.3", "helm-v4.3.1"] {
            let findings = classify(&fixture(&format!(
                "e2e/{version}/upgrade-while-pending.stderr"
            )));
            assert_eq!(findings.len(), 1, "{version}");
            assert_eq!(findings[0].class, Class::Lock, "{version}");
        }
    }

    #[test]
    fn debug_output_leaves_only_the_cause_primary() {
        for version in ["helm-v3.17.3", "helm-v4.3.1"] {
            let findings = classify(&fixture(&format!("e2e/{version}/rollback-debug.stderr")));
            let mut primary = of(&findings, Class::Primary);
            primary.dedup();
            assert_eq!(primary.len(), 1, "{version}: {primary:#?}");
            assert!(
                primary[0].contains("Invalid value: \"Bad_Name\""),
                "{version}"
            );
            let frames = findings
                .iter()
                .filter(|f| f.text.contains("runtime.goexit") || f.text.contains("level=DEBUG"))
                .count();
            assert!(frames > 0, "{version}: the debug lines are there, as info");
        }
    }

    #[test]
    fn faults_half_way_through_a_rollback_are_transient() {
        for version in ["helm-v3.17.3", "helm-v4.3.1"] {
            for fault in ["rollback-reset-on-create", "rollback-503-on-create"] {
                let findings = classify(&fixture(&format!("e2e/{version}/{fault}.stderr")));
                assert!(
                    of(&findings, Class::Primary).is_empty(),
                    "{version}/{fault}"
                );
                assert!(
                    !of(&findings, Class::Transient).is_empty(),
                    "{version}/{fault}"
                );
            }
        }
    }
}
