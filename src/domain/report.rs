//! Step 5: tell the user what happened, the cause first.
//!
//! [`Report`] is everything a renderer needs; rendering is a pure function of it, so the text a
//! human reads and the JSON a script reads can never disagree.

use colored::Colorize;
use serde::Serialize;

use crate::domain::classify::{Class, Finding};
use crate::domain::concurrency::ConcurrentRevision;
use crate::domain::preflight::Forecast;
use crate::domain::verify::Drift;
use crate::io::delete::ActionResult;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Preflight found a reason not to run helm; nothing was changed.
    Refused,
    /// `--plan`: nothing was meant to change.
    Planned,
    /// helm said it succeeded, but live objects do not match the target revision.
    Drifted,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct LeftoverEntry {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    /// How to remove it by hand, when we did not.
    pub delete_command: String,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ReconciledEntry {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub action: String,
    #[serde(flatten)]
    pub result: ActionResult,
}

/// The JSON document of `--output json`; its fields are a public contract (see the README).
#[derive(Debug, Serialize)]
pub struct Report {
    pub release: String,
    pub namespace: Option<String>,
    pub helm_version: Option<String>,
    pub from_revision: Option<u64>,
    pub to_revision: Option<u64>,
    pub outcome: Outcome,
    /// Where it stopped when it stopped before helm ran (`"capture"`), else `"rollback"`.
    pub stage: &'static str,
    pub exit_code: i32,
    pub primary_errors: Vec<String>,
    pub cleanup_noise: Vec<String>,
    pub transient_errors: Vec<String>,
    pub lock_errors: Vec<String>,
    pub warnings: Vec<String>,
    pub leftovers: Vec<LeftoverEntry>,
    pub reconciled: Vec<ReconciledEntry>,
    /// Why preflight refused to run helm (outcome `refused`).
    pub refusal_reasons: Vec<String>,
    /// Leftovers of earlier failed attempts found by preflight (removed first with
    /// --cleanup-on-fail; see `reconciled`).
    pub orphans: Vec<LeftoverEntry>,
    /// What helm would do (`--plan` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Forecast>,
    /// Objects whose live state differs from the target revision after a "successful"
    /// rollback, each with the fields that differ (a Secret's values never shown).
    pub drifted: Vec<Drift>,
    /// Whether the live objects were checked against the target after helm reported success:
    /// `null` when there was no success to check, `false` when the check could not be made
    /// (see `verify_error`) or was turned off.
    pub verified: Option<bool>,
    /// Why the live objects could not be checked (`verified: false`).
    pub verify_error: Option<String>,
    /// Revisions another writer made while we ran; when set, nothing was deleted (issue 17).
    pub concurrent_revisions: Vec<ConcurrentRevision>,
    /// Set when the reconcile could not be done (the cluster stopped answering): the command that
    /// finishes it from the journal once the cluster is back.
    pub finish_command: Option<String>,
    /// How many times `helm rollback` ran (0 when it never did; >1 with --retries).
    pub attempts: u32,
    pub journal: Option<String>,
    pub duration_ms: u128,
}

/// Groups findings by class, keeping first-seen order and dropping repeats (helm 4 prints its
/// cause in a WARN line and again in the `Error:` line).
pub fn errors_of(findings: &[Finding], class: Class) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for finding in findings.iter().filter(|f| f.class == class) {
        if !out.contains(&finding.text) {
            out.push(finding.text.clone());
        }
    }
    out
}

pub fn render_json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("report serialises")
}

pub fn render_text(report: &Report, debug: bool) -> String {
    let mut out = String::new();
    let revisions = match (report.from_revision, report.to_revision) {
        (Some(from), Some(to)) => format!(" from revision {from} to {to}"),
        _ => String::new(),
    };
    let status = match report.outcome {
        Outcome::Succeeded => format!(
            "{} rollback of {}{revisions} succeeded",
            "✔".green().bold(),
            report.release.bold()
        ),
        Outcome::Failed if report.stage == "capture" => format!(
            "{} rollback of {} not attempted: nothing was changed",
            "✘".red().bold(),
            report.release.bold()
        ),
        Outcome::Failed => format!(
            "{} rollback of {}{revisions} failed (helm exit code {})",
            "✘".red().bold(),
            report.release.bold(),
            report.exit_code
        ),
        Outcome::Refused => format!(
            "{} rollback of {}{revisions} refused before helm ran: nothing was changed",
            "✘".red().bold(),
            report.release.bold()
        ),
        Outcome::Drifted => format!(
            "{} rollback of {}{revisions}: helm reported success, but {} object(s) do not match revision {}",
            "✘".red().bold(),
            report.release.bold(),
            report.drifted.len(),
            report.to_revision.unwrap_or_default()
        ),
        Outcome::Planned => format!(
            "{} plan for the rollback of {}{revisions} (nothing was changed)",
            "•".cyan().bold(),
            report.release.bold()
        ),
    };
    out.push_str(&status);
    out.push('\n');

    if report.verified == Some(false) {
        if let Some(reason) = &report.verify_error {
            out.push_str(&format!("  {} {reason}\n", "not verified:".yellow().bold()));
        }
    }
    for drift in &report.drifted {
        out.push_str(&format!(
            "  {} {}\n",
            "drifted:".red().bold(),
            drift.object()
        ));
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
    for reason in &report.refusal_reasons {
        out.push_str(&format!(
            "  {} {}\n",
            "refused:".red().bold(),
            indent(reason)
        ));
    }
    if let Some(plan) = &report.plan {
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
        if report.refusal_reasons.is_empty() {
            out.push_str("  preflight: the rollback would proceed\n");
        }
    }
    let mut causes: Vec<(&str, &String)> = Vec::new();
    causes.extend(report.primary_errors.iter().map(|e| ("error", e)));
    causes.extend(report.lock_errors.iter().map(|e| ("locked", e)));
    causes.extend(report.transient_errors.iter().map(|e| ("transient", e)));
    for (label, text) in causes {
        out.push_str(&format!(
            "  {} {}\n",
            format!("{label}:").red().bold(),
            indent(text)
        ));
    }
    if report.outcome == Outcome::Failed
        && report.stage == "rollback"
        && report.primary_errors.is_empty()
        && report.lock_errors.is_empty()
        && report.transient_errors.is_empty()
    {
        out.push_str("  error: helm printed no error message\n");
    }
    for warning in &report.warnings {
        out.push_str(&format!(
            "  {} {}\n",
            "warning:".yellow().bold(),
            indent(warning)
        ));
    }
    if !report.cleanup_noise.is_empty() {
        if debug {
            for noise in &report.cleanup_noise {
                out.push_str(&format!("  {} {}\n", "cleanup noise:".dimmed(), noise));
            }
        } else {
            let n = report.cleanup_noise.len();
            let lines = if n == 1 { "line" } else { "lines" };
            out.push_str(&format!(
                "  {}\n",
                format!("{n} cleanup-noise {lines} hidden (see --debug)").dimmed()
            ));
        }
    }
    render_objects(
        &mut out,
        "leftovers:",
        "objects this rollback created and helm left behind",
        &report.leftovers,
    );
    render_objects(
        &mut out,
        "orphans:",
        "objects an earlier failed attempt left behind (owned by this release, in no successful revision)",
        &report.orphans,
    );
    for entry in &report.reconciled {
        out.push_str(&format!(
            "  {} {} {}/{}/{} (uid {}): {}\n",
            "cleanup:".cyan().bold(),
            entry.action,
            entry.kind,
            entry.namespace.as_deref().unwrap_or("-"),
            entry.name,
            entry.uid,
            entry.result
        ));
    }
    if let Some(command) = &report.finish_command {
        out.push_str(&format!(
            "  {} the cleanup is unfinished; when the cluster answers again, run: {command}\n",
            "next:".yellow().bold()
        ));
    }
    if let Some(journal) = &report.journal {
        out.push_str(&format!("  journal: {journal}\n"));
    }
    out
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

fn indent(text: &str) -> String {
    text.replace('\n', "\n    ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::classify::classify;

    fn report_for(stderr_fixture: &str) -> Report {
        let stderr = std::fs::read(format!("tests/fixtures/real-helm/{stderr_fixture}")).unwrap();
        let findings = classify(&stderr);
        Report {
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
            leftovers: vec![],
            reconciled: vec![],
            refusal_reasons: vec![],
            orphans: vec![],
            plan: None,
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
