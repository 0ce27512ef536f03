//! The report as people and scripts read it: JSON (a public contract, see docs/json.md) and text
//! that leads with the cause. Both are pure functions of one [`Report`], so they cannot
//! disagree; `main` prints them.

use colored::Colorize;

use crate::domain::diagnosis::{Diagnosis, Severity};
use crate::domain::incident::{Entry, Incident};
use crate::domain::record::Outcome;
use crate::domain::report::{LeftoverEntry, Report};

pub fn render_json(report: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(report).expect("report serialises")
}

/// The text report: the outcome first, then the cause, then what is left to do.
pub fn render_text(report: &Report, debug: bool) -> String {
    let mut out = status_line(report);
    out.push('\n');
    verification(&mut out, report);
    for reason in &report.refusal_reasons {
        line(&mut out, "refused:".red().bold(), &indent(reason));
    }
    plan(&mut out, report);
    causes(&mut out, report);
    not_ready(&mut out, report);
    for warning in &report.warnings {
        line(&mut out, "warning:".yellow().bold(), &indent(warning));
    }
    cleanup_noise(&mut out, report, debug);
    render_objects(
        &mut out,
        "leftovers:",
        "objects this rollback created and helm left behind",
        &report.leftovers,
    );
    for entry in &report.hook_leftovers {
        let what = format!(
            "{}/{}/{} (uid {}), kept by its hook-delete-policy {}; we never delete hooks. To \
             remove it: {}",
            entry.kind,
            entry.namespace.as_deref().unwrap_or("-"),
            entry.name,
            entry.uid,
            entry.delete_policy,
            entry.delete_command
        );
        line(&mut out, "hook leftover:".yellow().bold(), &what);
    }
    render_objects(
        &mut out,
        "orphans:",
        "objects an earlier failed attempt left behind (owned by this release, in no successful revision)",
        &report.orphans,
    );
    for entry in &report.reconciled {
        let object = format!(
            "{}/{}/{}",
            entry.kind,
            entry.namespace.as_deref().unwrap_or("-"),
            entry.name
        );
        let what = format!(
            "{} {object} (uid {}): {}",
            entry.action, entry.uid, entry.result
        );
        line(&mut out, "cleanup:".cyan().bold(), &what);
    }
    if let Some(command) = &report.finish_command {
        let what =
            format!("the cleanup is unfinished; when the cluster answers again, run: {command}");
        line(&mut out, "next:".yellow().bold(), &what);
    }
    if let Some(journal) = &report.journal {
        out.push_str(&format!("  journal: {journal}\n"));
    }
    out
}

fn line(out: &mut String, label: colored::ColoredString, text: &str) {
    out.push_str(&format!("  {label} {text}\n"));
}

/// The first line: what happened to which release, with a mark a glance can read.
fn status_line(report: &Report) -> String {
    let revisions = match (report.from_revision, report.to_revision) {
        (Some(from), Some(to)) => format!(" from revision {from} to {to}"),
        _ => String::new(),
    };
    let release = report.release.bold();
    let failed = "✘".red().bold();
    match report.outcome {
        Outcome::Succeeded => format!(
            "{} rollback of {release}{revisions} succeeded",
            "✔".green().bold()
        ),
        Outcome::Failed if report.stage == "capture" => {
            format!("{failed} rollback of {release} not attempted: nothing was changed")
        }
        Outcome::Failed => format!(
            "{failed} rollback of {release}{revisions} failed (helm exit code {})",
            report.exit_code
        ),
        Outcome::Refused => format!(
            "{failed} rollback of {release}{revisions} refused before helm ran: nothing was changed"
        ),
        Outcome::Drifted => format!(
            "{failed} rollback of {release}{revisions}: helm reported success, but {} object(s) do not match revision {}",
            report.drifted.len(),
            report.to_revision.unwrap_or_default()
        ),
        Outcome::Planned => format!(
            "{} plan for the rollback of {release}{revisions} (nothing was changed)",
            "•".cyan().bold()
        ),
    }
}

/// Why the live objects were not checked, and each object unlike the target.
fn verification(out: &mut String, report: &Report) {
    if report.verified == Some(false) {
        if let Some(reason) = &report.verify_error {
            line(out, "not verified:".yellow().bold(), reason);
        }
    }
    for drift in &report.drifted {
        line(out, "drifted:".red().bold(), &drift.object());
        if let Some(reason) = &drift.reason {
            out.push_str(&format!("    {reason}\n"));
        }
        for field in &drift.fields {
            out.push_str(&format!(
                "    {}: expected {}, live {}\n",
                field.path, field.expected, field.live
            ));
        }
    }
}

/// `--plan`: what helm would do to each object.
fn plan(out: &mut String, report: &Report) {
    let Some(plan) = &report.plan else { return };
    for (label, objects) in [
        ("create", &plan.create),
        ("update", &plan.update),
        ("delete", &plan.delete),
        ("take over", &plan.take_over),
        ("orphan (left by an earlier attempt)", &plan.orphans),
    ] {
        for object in objects {
            out.push_str(&format!("  {label}: {object}\n"));
        }
    }
    for delete in &plan.destructive {
        out.push_str(&format!(
            "  {} {}: takes {} with it\n",
            "destructive delete:".red().bold(),
            delete.object(),
            delete.loss
        ));
    }
    if report.refusal_reasons.is_empty() {
        out.push_str("  preflight: the rollback would proceed\n");
    }
}

/// Why it failed, cause first; a failure helm gave no words for is said to be one.
fn causes(out: &mut String, report: &Report) {
    // The reason leading `primary_errors` is also said by the refusal, drift, lock or
    // transient lines: said once here.
    let drift = crate::domain::report::drift_summary(report);
    let said_elsewhere = |e: &String| {
        report.refusal_reasons.contains(e)
            || report.lock_errors.contains(e)
            || report.transient_errors.contains(e)
            || drift.as_ref() == Some(e)
    };
    let mut causes: Vec<(&str, &String)> = Vec::new();
    causes.extend(
        report
            .primary_errors
            .iter()
            .filter(|e| !said_elsewhere(e))
            .map(|e| ("error", e)),
    );
    causes.extend(report.lock_errors.iter().map(|e| ("locked", e)));
    causes.extend(report.transient_errors.iter().map(|e| ("transient", e)));
    for (label, text) in &causes {
        line(out, format!("{label}:").red().bold(), &indent(text));
    }
}

/// After the cause: one line per object helm waited for in vain, worst first.
fn not_ready(out: &mut String, report: &Report) {
    for object in &report.not_ready {
        let what = format!(
            "{} {}: {}",
            object.object(),
            object.reason.bold(),
            object.detail
        );
        line(out, "not ready:".red().bold(), &what);
    }
}

/// helm's cleanup complaints: one line unless --debug asks for them.
fn cleanup_noise(out: &mut String, report: &Report, debug: bool) {
    if report.cleanup_noise.is_empty() {
        return;
    }
    if debug {
        for noise in &report.cleanup_noise {
            out.push_str(&format!("  {} {}\n", "cleanup noise:".dimmed(), noise));
        }
        return;
    }
    let n = report.cleanup_noise.len();
    let lines = if n == 1 { "line" } else { "lines" };
    out.push_str(&format!(
        "  {}\n",
        format!("{n} cleanup-noise {lines} hidden (see --debug)").dimmed()
    ));
}

/// Objects the user may want to remove, each with the command that does it.
fn render_objects(out: &mut String, label: &str, what: &str, objects: &[LeftoverEntry]) {
    if objects.is_empty() {
        return;
    }
    out.push_str(&format!("  {} {what}:\n", label.yellow().bold()));
    for object in objects {
        out.push_str(&format!(
            "    {}/{}/{} (uid {})\n      remove with: {}\n      or re-run with --cleanup-on-fail\n",
            object.kind,
            object.namespace.as_deref().unwrap_or("-"),
            object.name,
            object.uid,
            object.delete_command
        ));
    }
}

/// `--diagnose` as text: the release's state on the first line, then each finding with the
/// command that fixes it, then what could not be checked.
pub fn render_diagnosis(d: &Diagnosis) -> String {
    let state = match (d.revision, &d.status) {
        (Some(revision), Some(status)) => format!("revision {revision} {status}"),
        _ => "no revisions".to_string(),
    };
    let verdict = if d.healthy {
        format!("{} healthy", "✔".green().bold())
    } else {
        let n = d.findings.len();
        let s = if n == 1 { "" } else { "s" };
        format!("{} {n} finding{s}", "✘".red().bold())
    };
    let mut out = format!(
        "{verdict}: release {} in {} (helm {}), {state}\n",
        d.release.bold(),
        d.namespace,
        d.helm_version
    );
    for finding in &d.findings {
        let label = match finding.severity {
            Severity::Error => "error:".red().bold(),
            Severity::Warning => "warning:".yellow().bold(),
        };
        line(&mut out, label, &indent(&finding.summary));
        if let Some(detail) = &finding.detail {
            out.push_str(&format!("    {}\n", indent(detail)));
        }
        if let Some(fix) = &finding.fix_command {
            out.push_str(&format!("    {} {fix}\n", "fix:".cyan().bold()));
        }
    }
    for failure in d.failures.iter().skip(1) {
        let cause = failure.causes.first().map_or("(no cause recorded)", |c| c);
        let what = format!("revision {} {}: {cause}", failure.revision, failure.status);
        line(&mut out, "earlier failure:".dimmed(), &indent(&what));
    }
    for what in &d.not_checked {
        line(&mut out, "not checked:".yellow(), &indent(what));
    }
    out
}

fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

/// The incident view: one line per release, worst first, its first finding and fix, then the
/// summary.
pub fn render_incident(view: &Incident) -> String {
    let mut out = String::new();
    for entry in &view.releases {
        match entry {
            Entry::Diagnosed(d) => incident_line(&mut out, d),
            Entry::Unreadable {
                release,
                namespace,
                unreadable,
            } => out.push_str(&format!(
                "{} {namespace}/{}  could not be read: {unreadable}\n",
                "?".yellow().bold(),
                release.bold()
            )),
        }
    }
    for what in &view.not_checked {
        line(&mut out, "not checked:".yellow(), &indent(what));
    }
    let s = &view.summary;
    let scope = match &view.namespace {
        Some(namespace) => format!("in {namespace}"),
        None => "in every namespace".to_string(),
    };
    out.push_str(&format!(
        "{} releases {scope}: {} with errors, {} with warnings, {} unreadable, {} healthy\n",
        s.releases, s.with_errors, s.with_warnings, s.unreadable, s.healthy
    ));
    out
}

fn incident_line(out: &mut String, d: &Diagnosis) {
    let state = match (d.revision, &d.status) {
        (Some(revision), Some(status)) => format!("revision {revision} {status}"),
        _ => "no revisions".to_string(),
    };
    let name = format!("{}/{}", d.namespace, d.release.bold());
    let Some(first) = d.findings.first() else {
        out.push_str(&format!(
            "{} {name}  {state}  healthy\n",
            "✔".green().bold()
        ));
        return;
    };
    let mark = match d.findings.iter().any(|f| f.severity == Severity::Error) {
        true => "✘".red().bold(),
        false => "!".yellow().bold(),
    };
    let n = d.findings.len();
    let s = if n == 1 { "" } else { "s" };
    out.push_str(&format!(
        "{mark} {name}  {state}  {n} finding{s}: {}\n",
        first.summary.replace('\n', " ")
    ));
    if let Some(fix) = &first.fix_command {
        out.push_str(&format!("    {} {fix}\n", "fix:".cyan().bold()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::classify::{classify, Class};
    use crate::domain::report::errors_of;

    fn report_for(stderr_fixture: &str) -> Report {
        let stderr = std::fs::read(format!("tests/fixtures/real-helm/{stderr_fixture}")).unwrap();
        let findings = classify(&stderr);
        Report {
            kind: "rollback",
            schema_version: crate::domain::report::SCHEMA_VERSION,
            release: "seed-h4".into(),
            namespace: Some("default".into()),
            helm_version: Some("v4.3.1".into()),
            from_revision: Some(5),
            to_revision: Some(2),
            outcome: Outcome::Failed,
            stage: "rollback",
            exit_code: 1,
            primary_errors: errors_of(&findings, Class::Primary),
            cleanup_noise: errors_of(&findings, Class::CleanupNoise),
            transient_errors: errors_of(&findings, Class::Transient),
            lock_errors: errors_of(&findings, Class::Lock),
            warnings: errors_of(&findings, Class::Warning),
            frozen_renders: vec![],
            immutable: vec![],
            gitops: None,
            leftovers: vec![],
            hook_leftovers: vec![],
            reconciled: vec![],
            refusal_reasons: vec![],
            failed_target: None,
            orphans: vec![],
            plan: None,
            not_ready: vec![],
            attempts: 1,
            drifted: vec![],
            verified: None,
            verify_error: None,
            concurrent_revisions: vec![],
            finish_command: None,
            journal: Some("/state/j.json".into()),
            duration_ms: 12,
        }
    }

    #[test]
    fn text_leads_with_the_cause_and_collapses_noise() {
        colored::control::set_override(false);
        let report = report_for("seed/helm-v4.3.1/06-rollback2-cleanup-leftover.stderr");
        let text = render_text(&report, false);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("failed (helm exit code 1)"), "{text}");
        assert!(
            lines[1].starts_with("  error: server-side apply failed"),
            "{text}"
        );
        assert!(
            lines[2].contains("1 cleanup-noise line hidden (see --debug)"),
            "{text}"
        );
        assert!(!text.contains("skipping delete"), "{text}");
        assert!(render_text(&report, true).contains("skipping delete"));
    }

    #[test]
    fn json_has_the_documented_keys() {
        let report = report_for("seed/helm-v3.17.3/06-rollback2-cleanup-leftover.stderr");
        let value: serde_json::Value = serde_json::from_str(&render_json(&report)).unwrap();
        for key in [
            "release",
            "namespace",
            "helm_version",
            "from_revision",
            "to_revision",
            "outcome",
            "primary_errors",
            "cleanup_noise",
            "transient_errors",
            "leftovers",
            "hook_leftovers",
            "reconciled",
            "journal",
            "duration_ms",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        assert_eq!(value["outcome"], "failed");
        assert_eq!(value["primary_errors"].as_array().unwrap().len(), 1);
    }
}
