//! `--diagnose`: a read-only look at a release, as findings, each with the one command that
//! fixes it.
//!
//! Everything here is pure: `pipeline::diagnose` gathers the inputs with the same capture,
//! orphan, verify and journal code a rollback uses, and this module decides what is wrong and
//! what to run. A part that could not be read is "not checked" with its reason — never a
//! finding, never a crash — so a namespace-scoped user still gets what it can see.

use serde::Serialize;

use crate::domain::classify::{classify, Class};
use crate::domain::model::Revision;
use crate::domain::preflight::Pending;
use crate::domain::readiness;
use crate::domain::report::LeftoverEntry;
use crate::domain::report::SCHEMA_VERSION;
use crate::domain::strays::Stray;
use crate::domain::target;
use crate::domain::verify::Drift;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The newest revision is pending.
    Pending,
    /// The newest revision's deploy failed.
    FailedRevision,
    /// An object owned by the release that no successful revision has.
    Orphan,
    /// An object that claims the release but is not in its newest revision.
    Stray,
    /// A journal of a run that died before it finished.
    UnfinishedRun,
    /// A live object unlike the current revision.
    Drift,
    /// An object of the current revision that is not ready.
    NotReady,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub summary: String,
    pub detail: Option<String>,
    /// The one command that fixes it; `null` when no command can (the detail says why).
    pub fix_command: Option<String>,
}

/// A failed revision newer than the last good one, with helm's description split into the
/// cause and helm's cleanup noise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub revision: u64,
    pub status: String,
    pub causes: Vec<String>,
    pub cleanup_noise: Vec<String>,
}

/// A journal of this release left in state `captured`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnfinishedRun {
    pub journal: String,
    pub pid: u32,
    /// Its process still runs on this machine: it is working, not dead.
    pub in_progress: bool,
}

/// Readiness of the current revision's objects, by the readiness check of a `--wait` timeout;
/// `checked: false` when a list could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NotReady {
    pub checked: bool,
    /// Worst first, as after a `--wait` timeout (`domain::readiness`).
    pub objects: Vec<readiness::NotReady>,
    /// Why they were not (all) checked.
    pub reason: Option<String>,
}

/// The JSON document of `--diagnose --output json` (schema in docs/diagnose.md).
#[derive(Clone, Debug, Serialize)]
pub struct Diagnosis {
    /// `diagnosis`: which document this is.
    pub kind: &'static str,
    pub schema_version: u32,
    pub release: String,
    pub namespace: String,
    pub helm_version: String,
    pub revision: Option<u64>,
    pub status: Option<String>,
    pub updated: Option<String>,
    pub description: Option<String>,
    pub last_good_revision: Option<u64>,
    pub pending: Option<Pending>,
    pub failures: Vec<Failure>,
    /// `null` when they could not be looked for (see `not_checked`).
    pub orphans: Option<Vec<LeftoverEntry>>,
    /// Objects of any kind that claim the release outside its newest revision; `null` when
    /// they could not be looked for (see `not_checked`).
    pub strays: Option<Vec<Stray>>,
    pub unfinished_runs: Vec<UnfinishedRun>,
    /// `null` when the live objects could not be compared (see `not_checked`).
    pub drifted: Option<Vec<Drift>>,
    pub not_ready: NotReady,
    /// What could not be checked, and why (RBAC, an unreachable part of the API).
    pub not_checked: Vec<String>,
    pub findings: Vec<Finding>,
    pub healthy: bool,
    pub exit_code: i32,
    pub duration_ms: u128,
}

/// Commands rendered for this release and cluster target (never a credential).
pub struct Commands<'a> {
    pub rollback_to: &'a dyn Fn(u64) -> String,
    pub finish: String,
    /// `kubectl describe` of an object that is not ready.
    pub describe: &'a dyn Fn(&readiness::NotReady) -> String,
}

/// What the pipeline read.
pub struct Inputs<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    pub helm_version: &'a str,
    pub history: &'a [Revision],
    pub pending: Option<Pending>,
    pub pending_max_age_seconds: i64,
    pub orphans: Option<Vec<LeftoverEntry>>,
    pub strays: Option<Vec<Stray>>,
    pub unfinished: Vec<UnfinishedRun>,
    pub drifted: Option<Vec<Drift>>,
    pub not_ready: NotReady,
    pub not_checked: Vec<String>,
    pub commands: Commands<'a>,
}

/// Only so many failures are explained: the newest are the ones that matter.
const FAILURES_SHOWN: usize = 5;

pub fn diagnose(inputs: Inputs) -> Diagnosis {
    let newest = inputs.history.iter().max_by_key(|r| r.revision);
    let last_good = newest.and_then(|n| target::last_good_before(inputs.history, n.revision + 1));
    let failures = failures_since(inputs.history, last_good);
    let mut findings = Vec::new();
    let rollback_to = inputs.commands.rollback_to;
    let back_to_good = last_good.map(rollback_to);
    if let Some(pending) = &inputs.pending {
        findings.push(pending_finding(pending, &inputs, back_to_good.clone()));
    }
    if let Some(newest) = newest.filter(|n| target::failed(n)) {
        findings.push(failed_finding(
            newest,
            &failures,
            last_good,
            back_to_good.clone(),
        ));
    }
    for orphan in inputs.orphans.iter().flatten() {
        findings.push(orphan_finding(orphan, inputs.namespace));
    }
    for stray in inputs.strays.iter().flatten() {
        findings.push(stray_finding(stray, inputs.namespace));
    }
    findings.extend(unfinished_findings(
        &inputs.unfinished,
        &inputs.commands.finish,
    ));
    // Re-applying the current revision repairs drift when it deployed; else go back to good.
    let current_good = newest.filter(|n| target::succeeded(n));
    let drift_fix = match current_good {
        Some(current) => Some(rollback_to(current.revision)),
        None => back_to_good.clone(),
    };
    // A failed revision the server rejects is that failure, already a finding with its cause.
    let newest_failed = newest.is_some_and(target::failed);
    let rejected = |d: &&Drift| newest_failed && d.fields.is_empty() && d.reason.is_some();
    for drift in inputs.drifted.iter().flatten().filter(|d| !rejected(d)) {
        findings.push(drift_finding(
            drift,
            newest.map(|n| n.revision),
            drift_fix.clone(),
        ));
    }
    // What makes an object ready depends on why it is not: the fix is the command that shows
    // Kubernetes' own account of it (events, conditions), the reason is already in the summary.
    findings.extend(inputs.not_ready.objects.iter().map(|object| Finding {
        kind: FindingKind::NotReady,
        severity: Severity::Warning,
        summary: format!("{} is not ready: {}", object.object(), object.reason),
        detail: Some(object.detail.clone()),
        fix_command: Some((inputs.commands.describe)(object)),
    }));
    Diagnosis {
        kind: "diagnosis",
        schema_version: SCHEMA_VERSION,
        release: inputs.release.to_string(),
        namespace: inputs.namespace.to_string(),
        helm_version: inputs.helm_version.to_string(),
        revision: newest.map(|n| n.revision),
        status: newest.map(|n| n.status.clone()),
        updated: newest.map(|n| n.updated.clone()),
        description: newest.map(|n| n.description.clone()),
        last_good_revision: last_good,
        pending: inputs.pending,
        failures,
        orphans: inputs.orphans,
        strays: inputs.strays,
        unfinished_runs: inputs.unfinished,
        drifted: inputs.drifted,
        not_ready: inputs.not_ready,
        not_checked: inputs.not_checked,
        healthy: findings.is_empty(),
        findings,
        exit_code: 0,
        duration_ms: 0,
    }
}

/// helm 4 applying server-side stops at every field another manager set since (`conflict with
/// "kubectl-patch" using v1: .data.k`): a rollback that is to repair drift needs
/// `--force-conflicts` to take those fields back.
pub fn needs_force_conflicts(server_side_apply: bool, drifted: &[Drift]) -> bool {
    server_side_apply && drifted.iter().any(|d| !d.fields.is_empty())
}

/// helm's description of a failed operation, `<Action> "<release>" failed: <error>`, read the
/// way the classifier reads helm's `Error:` line: the cause first, cleanup noise apart.
pub fn cause_of(description: &str) -> (Vec<String>, Vec<String>) {
    let error = description
        .split_once(" failed: ")
        .map_or(description, |(_, error)| error);
    let findings = classify(format!("Error: {error}\n").as_bytes());
    let of = |class| {
        findings
            .iter()
            .filter(|f| f.class == class)
            .map(|f| f.text.clone())
            .collect::<Vec<_>>()
    };
    let mut causes = of(Class::Primary);
    causes.extend(of(Class::Transient));
    causes.extend(of(Class::Lock));
    (causes, of(Class::CleanupNoise))
}

/// The failed revisions newer than the last good one, newest first.
fn failures_since(history: &[Revision], last_good: Option<u64>) -> Vec<Failure> {
    let mut failed: Vec<&Revision> = history
        .iter()
        .filter(|r| Some(r.revision) > last_good && target::failed(r))
        .collect();
    failed.sort_by_key(|r| std::cmp::Reverse(r.revision));
    failed
        .into_iter()
        .take(FAILURES_SHOWN)
        .map(|r| {
            let (causes, cleanup_noise) = cause_of(&r.description);
            Failure {
                revision: r.revision,
                status: r.status.clone(),
                causes,
                cleanup_noise,
            }
        })
        .collect()
}

fn pending_finding(pending: &Pending, inputs: &Inputs, fix: Option<String>) -> Finding {
    let head = format!(
        "revision {} is {} since {} ({}s ago)",
        pending.revision, pending.status, pending.updated, pending.age_seconds
    );
    let (severity, summary) = match &pending.left_by {
        Some(journal) => (
            Severity::Warning,
            format!(
                "{head}: left by a finished helm safe-rollback (journal {journal}); abandoned, \
                 safe to supersede"
            ),
        ),
        None if pending.age_seconds >= inputs.pending_max_age_seconds => (
            Severity::Warning,
            format!(
                "{head}: no journal here accounts for it; older than {}s, it is treated as \
                 abandoned",
                inputs.pending_max_age_seconds
            ),
        ),
        None => (
            Severity::Error,
            format!(
                "{head}: no journal here accounts for it; another helm may still be working on it \
                 (wait; the command below supersedes it anyway)"
            ),
        ),
    };
    let young = pending.left_by.is_none() && pending.age_seconds < inputs.pending_max_age_seconds;
    Finding {
        kind: FindingKind::Pending,
        severity,
        summary,
        detail: None,
        fix_command: fix.map(|c| {
            if young {
                format!("{c} --allow-pending")
            } else {
                c
            }
        }),
    }
}

fn failed_finding(
    newest: &Revision,
    failures: &[Failure],
    last_good: Option<u64>,
    fix: Option<String>,
) -> Finding {
    let cause = failures
        .iter()
        .find(|f| f.revision == newest.revision)
        .and_then(|f| f.causes.first().cloned())
        .unwrap_or_else(|| {
            "helm recorded only its cleanup's complaint; the cause is in that run's output".into()
        });
    Finding {
        kind: FindingKind::FailedRevision,
        severity: Severity::Error,
        summary: format!("revision {} {}: {cause}", newest.revision, newest.status),
        detail: Some(match last_good {
            Some(good) => format!("the last revision that deployed successfully is {good}"),
            None => "no revision of this release deployed successfully".into(),
        }),
        fix_command: fix,
    }
}

fn orphan_finding(orphan: &LeftoverEntry, namespace: &str) -> Finding {
    Finding {
        kind: FindingKind::Orphan,
        severity: Severity::Warning,
        summary: format!(
            "{}/{}/{} (uid {}) is owned by this release but in no successful revision: an \
             earlier failed operation left it",
            orphan.kind,
            orphan.namespace.as_deref().unwrap_or(namespace),
            orphan.name,
            orphan.uid
        ),
        detail: None,
        fix_command: Some(orphan.delete_command.clone()),
    }
}

fn stray_finding(stray: &Stray, namespace: &str) -> Finding {
    let whose = match stray.last_revision {
        Some(revision) => format!("revision {revision} had it last"),
        None => "no revision helm keeps has it: made by hand, or left by a pruned one".into(),
    };
    Finding {
        kind: FindingKind::Stray,
        severity: Severity::Warning,
        summary: format!(
            "{}/{}/{} (uid {}) claims this release but is not in its newest revision ({whose})",
            stray.kind,
            stray.namespace.as_deref().unwrap_or(namespace),
            stray.name,
            stray.uid
        ),
        detail: Some(
            "a rollback to a revision that has it trips over it: helm 3 fails on an object its \
             current manifest does not list, helm 4 adopts it as it is"
                .into(),
        ),
        fix_command: Some(stray.delete_command.clone()),
    }
}

fn unfinished_findings(unfinished: &[UnfinishedRun], finish: &str) -> Vec<Finding> {
    unfinished
        .iter()
        .map(|run| match run.in_progress {
            true => Finding {
                kind: FindingKind::UnfinishedRun,
                severity: Severity::Warning,
                summary: format!(
                    "a helm safe-rollback (pid {}) is working on this release right now \
                     (journal {})",
                    run.pid, run.journal
                ),
                detail: None,
                fix_command: None,
            },
            false => Finding {
                kind: FindingKind::UnfinishedRun,
                severity: Severity::Error,
                summary: format!(
                    "an earlier helm safe-rollback (pid {}) died before it finished: its \
                     leftovers are not reconciled (journal {})",
                    run.pid, run.journal
                ),
                detail: None,
                fix_command: Some(finish.to_string()),
            },
        })
        .collect()
}

fn drift_finding(drift: &Drift, revision: Option<u64>, fix: Option<String>) -> Finding {
    let against = revision.map_or("the current revision".into(), |r| format!("revision {r}"));
    let detail = match &drift.reason {
        Some(reason) => reason.clone(),
        None => drift
            .fields
            .iter()
            .map(|f| format!("{}: {} in {against}, {} live", f.path, f.expected, f.live))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Finding {
        kind: FindingKind::Drift,
        severity: Severity::Warning,
        summary: format!("{} differs from {against}", drift.object()),
        detail: Some(detail),
        fix_command: fix,
    }
}

#[cfg(test)]
#[path = "diagnosis_tests.rs"]
mod tests;
