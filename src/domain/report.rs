//! Tell the user what happened, the cause first.
//!
//! [`Report`] is everything a renderer needs (see `render`), and it is built from the run's
//! [`Record`] at the end — the same record the journal holds — never kept beside it, so the
//! journal and what the user reads cannot drift apart. Runs that never got a record (capture
//! failed, the release was busy) have their own constructors.

use serde::Serialize;

use crate::domain::classify::{Class, Finding};
use crate::domain::concurrency::ConcurrentRevision;
use crate::domain::frozen::FrozenRender;
use crate::domain::gitops::Managed;
use crate::domain::hooks::HookLeftover;
use crate::domain::immutable::ImmutableChange;
use crate::domain::live;
use crate::domain::model::LiveObject;
use crate::domain::plan::{self, Decision};
use crate::domain::preflight::{self, Findings, Forecast};
use crate::domain::readiness::NotReady;
use crate::domain::record::{Action, ActionKind, ActionResult, Attempt, Outcome, Record, Stage};
use crate::domain::target::FailedTarget;
use crate::domain::verify::Drift;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LeftoverEntry {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    /// How to remove it by hand, when we did not.
    pub delete_command: String,
}

impl LeftoverEntry {
    /// `connection`: kubectl's connection flags, credentials already replaced.
    pub fn new(object: &LiveObject, connection: &[String]) -> LeftoverEntry {
        LeftoverEntry {
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            uid: object.uid.clone(),
            delete_command: plan::delete_command(object, connection),
        }
    }
}

/// A hook object a failed hook left behind: listed with the command to remove it, never
/// deleted by us (its delete policy is helm's to apply).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct HookLeftoverEntry {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    /// `helm.sh/hook-delete-policy` as helm applied it (its default: `before-hook-creation`).
    pub delete_policy: String,
    pub delete_command: String,
}

impl HookLeftoverEntry {
    fn new(leftover: &HookLeftover, connection: &[String]) -> HookLeftoverEntry {
        let object = &leftover.object;
        HookLeftoverEntry {
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            uid: object.uid.clone(),
            delete_policy: leftover.delete_policy.clone(),
            delete_command: plan::delete_command(object, connection),
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ReconciledEntry {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub action: ActionKind,
    #[serde(flatten)]
    pub result: ActionResult,
}

impl From<&Action> for ReconciledEntry {
    fn from(a: &Action) -> Self {
        ReconciledEntry {
            kind: a.kind.clone(),
            namespace: a.namespace.clone(),
            name: a.name.clone(),
            uid: a.uid.clone(),
            action: a.action,
            result: a.result.clone(),
        }
    }
}

/// The version of the JSON documents' shape (`schema_version` in each, docs/schema/): raised
/// when a key is removed or changes its meaning, not when one is added.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON document of `--output json`; its fields are a public contract (see docs/json.md).
#[derive(Debug, Serialize)]
pub struct Report {
    /// `rollback`: which document this is (`--diagnose` prints a `diagnosis`).
    pub kind: &'static str,
    pub schema_version: u32,
    pub release: String,
    pub namespace: Option<String>,
    pub helm_version: Option<String>,
    pub from_revision: Option<u64>,
    pub to_revision: Option<u64>,
    pub outcome: Outcome,
    /// Where it stopped when it stopped before helm ran (`"capture"`), else `"rollback"`
    /// (`"finish"` for `--finish`).
    pub stage: &'static str,
    pub exit_code: i32,
    pub primary_errors: Vec<String>,
    pub cleanup_noise: Vec<String>,
    pub transient_errors: Vec<String>,
    pub lock_errors: Vec<String>,
    pub warnings: Vec<String>,
    pub leftovers: Vec<LeftoverEntry>,
    /// Hook objects a failed rollback hook left (e.g. a failed Job whose delete policy lacks
    /// `hook-failed`), each with the command to remove it; never deleted by us.
    pub hook_leftovers: Vec<HookLeftoverEntry>,
    pub reconciled: Vec<ReconciledEntry>,
    /// Why preflight refused to run helm (outcome `refused`).
    pub refusal_reasons: Vec<String>,
    /// The target revision's deploy failed: the revision, helm's description, the last
    /// revision that deployed successfully and the command to roll back to it; `null` otherwise.
    pub failed_target: Option<FailedTarget>,
    /// ConfigMaps and Secrets whose live data the rollback gives back to the target
    /// revision's rendering: keys only, never values.
    pub frozen_renders: Vec<FrozenRender>,
    /// Fields the rollback cannot change in place, with the live and target values and the
    /// way past each.
    pub immutable: Vec<ImmutableChange>,
    /// The GitOps controller that manages the release, whether it is paused, and the command
    /// that pauses it; `null` when none does.
    pub gitops: Option<Managed>,
    /// Leftovers of earlier failed attempts found by preflight (removed first with
    /// --cleanup-on-fail; see `reconciled`).
    pub orphans: Vec<LeftoverEntry>,
    /// What helm would do (`--plan` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Forecast>,
    /// When helm's `--wait` ran out of time: each target object that was not ready, worst
    /// first, with Kubernetes' reason (empty when helm did not time out waiting).
    pub not_ready: Vec<NotReady>,
    /// Objects whose live state differs from the target revision after a "successful"
    /// rollback, each with the fields that differ (a Secret's values never shown).
    pub drifted: Vec<Drift>,
    /// Whether the live objects were checked against the target after helm reported success:
    /// `null` when there was no success to check, `false` when the check could not be made
    /// (see `verify_error`) or was turned off.
    pub verified: Option<bool>,
    /// Why the live objects could not be checked (`verified: false`).
    pub verify_error: Option<String>,
    /// Revisions another writer made while we ran; when set, nothing was deleted.
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

impl From<&Record> for Report {
    fn from(record: &Record) -> Report {
        let snapshot = &record.snapshot;
        let findings = record.preflight.clone().unwrap_or_default();
        let mut report = Report {
            namespace: Some(snapshot.release.namespace.clone()),
            helm_version: Some(snapshot.helm.version.clone()),
            from_revision: Some(snapshot.from_revision),
            to_revision: Some(snapshot.to_revision),
            outcome: record.outcome.unwrap_or(Outcome::Failed),
            stage: match record.stage {
                Stage::Rollback => "rollback",
                Stage::Finish => "finish",
            },
            exit_code: record.exit_code.unwrap_or_default(),
            refusal_reasons: record.refusal_reasons.clone(),
            failed_target: findings.failed_target.clone(),
            frozen_renders: findings.frozen_renders.clone(),
            immutable: findings.immutable.clone(),
            gitops: findings.gitops.clone(),
            orphans: orphans_left(record),
            warnings: record.warnings.clone(),
            concurrent_revisions: record.concurrent_revisions.clone(),
            reconciled: record.all_actions().map(ReconciledEntry::from).collect(),
            finish_command: record.finish_command.clone(),
            attempts: record.rollbacks(),
            ..Report::blank(&snapshot.release.name, None)
        };
        if let Some(attempt) = record.attempts.last().filter(|a| !a.retried) {
            report.add_attempt(attempt, &record.kubectl_connection);
        }
        report.primary_errors.extend(record.errors.iter().cloned());
        if report.outcome == Outcome::Planned {
            let mut forecast = preflight::forecast(snapshot, &findings);
            forecast.predicted = record
                .predicted
                .iter()
                .cloned()
                .map(live::without_secret_values)
                .collect();
            report.plan = Some(forecast);
        }
        if let Some(verification) = &record.verification {
            report.verified = Some(verification.verified);
            report.verify_error = verification.error.clone();
            report.drifted = verification.drifted.clone();
        }
        report.lead_with_the_reason();
        report
    }
}

/// What a drifted run's first primary error says: how many objects differ, and the first.
pub fn drift_summary(report: &Report) -> Option<String> {
    let first = report.drifted.first()?;
    let how = match (&first.reason, first.fields.first()) {
        (Some(reason), _) => reason.clone(),
        (None, Some(field)) => format!(
            "{}: expected {}, live {}",
            field.path, field.expected, field.live
        ),
        (None, None) => "differs".into(),
    };
    Some(format!(
        "helm reported success, but {} object(s) do not match revision {}: {} ({how})",
        report.drifted.len(),
        report.to_revision.unwrap_or_default(),
        first.object()
    ))
}

/// The orphans preflight found that are still there (not removed before helm ran).
fn orphans_left(record: &Record) -> Vec<LeftoverEntry> {
    let Some(Findings { orphans, .. }) = &record.preflight else {
        return Vec::new();
    };
    let removed = |o: &LiveObject| {
        record
            .actions
            .iter()
            .any(|a| a.uid == o.uid && a.result.complete())
    };
    orphans
        .iter()
        .filter(|o| !removed(o))
        .map(|o| LeftoverEntry::new(o, &record.kubectl_connection))
        .collect()
}

impl Report {
    /// The attempt that ended the run: its errors, helm's words by class, its leftovers.
    fn add_attempt(&mut self, attempt: &Attempt, connection: &[String]) {
        let findings = &attempt.rollback.findings;
        // Which hook failed and why comes first; helm's own line stays after it.
        self.primary_errors = attempt.hook_failure.iter().cloned().collect();
        self.primary_errors
            .extend(errors_of(findings, Class::Primary));
        self.hook_leftovers = attempt
            .hook_leftovers
            .iter()
            .map(|l| HookLeftoverEntry::new(l, connection))
            .collect();
        self.primary_errors.extend(attempt.errors.iter().cloned());
        self.cleanup_noise = errors_of(findings, Class::CleanupNoise);
        self.transient_errors = errors_of(findings, Class::Transient);
        self.lock_errors = errors_of(findings, Class::Lock);
        self.warnings.extend(errors_of(findings, Class::Warning));
        self.warnings.extend(attempt.warnings.iter().cloned());
        self.concurrent_revisions
            .extend(attempt.concurrent_revisions.iter().cloned());
        self.not_ready = attempt.not_ready.clone();
        let Some(plan) = &attempt.plan else { return };
        self.leftovers = plan
            .leftovers
            .iter()
            .filter(|l| l.decision == Decision::Report)
            .map(|l| LeftoverEntry::new(&l.object, connection))
            .collect();
    }

    /// Makes `primary_errors[0]` the reason the run did not succeed, whatever the outcome and
    /// whichever helm: the refusal's reason, the drift, the lock or transient error when helm
    /// gave no other, or that helm gave none.
    fn lead_with_the_reason(&mut self) {
        let reason = match self.outcome {
            Outcome::Succeeded => return,
            Outcome::Refused | Outcome::Planned => self.refusal_reasons.first().cloned(),
            Outcome::Drifted => drift_summary(self),
            Outcome::Failed => self
                .primary_errors
                .first()
                .or(self.lock_errors.first())
                .or(self.transient_errors.first())
                .cloned()
                .or_else(|| {
                    (self.stage == "rollback").then(|| {
                        format!(
                            "helm rollback exited with code {} and printed no error message",
                            self.exit_code
                        )
                    })
                }),
        };
        if let Some(reason) = reason {
            self.primary_errors.retain(|e| *e != reason);
            self.primary_errors.insert(0, reason);
        }
    }

    /// Folds in the report of a run finished before this one (`--finish` with several).
    pub fn absorb_earlier(&mut self, earlier: Report) {
        fn before<T>(earlier: Vec<T>, later: &mut Vec<T>) {
            let later_items = std::mem::replace(later, earlier);
            later.extend(later_items);
        }
        before(earlier.warnings, &mut self.warnings);
        before(earlier.leftovers, &mut self.leftovers);
        before(earlier.hook_leftovers, &mut self.hook_leftovers);
        before(earlier.reconciled, &mut self.reconciled);
        before(earlier.concurrent_revisions, &mut self.concurrent_revisions);
    }

    /// A run that stopped before anything changed (capture failed): one error.
    pub fn not_attempted(
        release: &str,
        namespace: Option<String>,
        helm_version: Option<String>,
        message: String,
    ) -> Report {
        Report {
            helm_version,
            primary_errors: vec![message],
            ..Report::blank(release, namespace)
        }
    }

    /// Another run holds the release (exit 6).
    pub fn busy(release: &str, namespace: Option<String>, message: String) -> Report {
        let mut report = Report {
            lock_errors: vec![message],
            ..Report::blank(release, namespace)
        };
        report.lead_with_the_reason();
        report
    }

    /// `--finish` found no interrupted run.
    pub fn nothing_to_finish(release: &str, namespace: &str) -> Report {
        Report {
            outcome: Outcome::Succeeded,
            stage: "finish",
            warnings: vec![format!(
                "nothing to finish: no interrupted run of {namespace}/{release}"
            )],
            ..Report::blank(release, Some(namespace.to_string()))
        }
    }

    fn blank(release: &str, namespace: Option<String>) -> Report {
        Report {
            kind: "rollback",
            schema_version: SCHEMA_VERSION,
            release: release.to_string(),
            namespace,
            helm_version: None,
            from_revision: None,
            to_revision: None,
            outcome: Outcome::Failed,
            stage: "capture",
            exit_code: 0,
            primary_errors: Vec::new(),
            cleanup_noise: Vec::new(),
            transient_errors: Vec::new(),
            lock_errors: Vec::new(),
            warnings: Vec::new(),
            leftovers: Vec::new(),
            hook_leftovers: Vec::new(),
            reconciled: Vec::new(),
            refusal_reasons: Vec::new(),
            failed_target: None,
            frozen_renders: Vec::new(),
            immutable: Vec::new(),
            gitops: None,
            orphans: Vec::new(),
            plan: None,
            not_ready: Vec::new(),
            drifted: Vec::new(),
            verified: None,
            verify_error: None,
            concurrent_revisions: Vec::new(),
            finish_command: None,
            attempts: 0,
            journal: None,
            duration_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::Verification;
    use crate::domain::snapshot::Snapshot;
    use crate::domain::verify::{Drift, FieldDiff};

    fn record(outcome: Outcome) -> Record {
        let snapshot: Snapshot = serde_json::from_value(serde_json::json!({
            "release": {"name": "web", "namespace": "prod"},
            "helm": {"version": "v3.17.3", "major": 3},
            "history": [], "from_revision": 3, "to_revision": 1,
            "current": [], "target": [], "live": [], "taken_at": "",
            "last_successful_revision": null, "last_successful": [],
        }))
        .unwrap();
        let mut record = Record::captured(1, Vec::new(), snapshot);
        record.outcome = Some(outcome);
        record
    }

    #[test]
    fn a_refusal_leads_primary_errors_with_its_reason_on_every_helm() {
        let mut refused = record(Outcome::Refused);
        refused.refusal_reasons = vec!["the API server rejects the target".into()];
        refused.errors = vec!["later".into()];
        let report = Report::from(&refused);
        assert_eq!(
            report.primary_errors,
            ["the API server rejects the target", "later"]
        );
        let mut planned = record(Outcome::Planned);
        assert!(Report::from(&planned).primary_errors.is_empty());
        planned.refusal_reasons = vec!["refused".into()];
        assert_eq!(Report::from(&planned).primary_errors, ["refused"]);
        assert!(Report::from(&record(Outcome::Succeeded))
            .primary_errors
            .is_empty());
    }

    #[test]
    fn a_drift_or_a_silent_failure_is_named_first() {
        let mut drifted = record(Outcome::Drifted);
        drifted.verification = Some(Verification {
            verified: true,
            error: None,
            drifted: vec![Drift {
                kind: "Deployment".into(),
                namespace: "prod".into(),
                name: "web".into(),
                fields: vec![FieldDiff {
                    path: "spec.replicas".into(),
                    expected: 1.into(),
                    live: 3.into(),
                }],
                reason: None,
            }],
        });
        assert_eq!(
            Report::from(&drifted).primary_errors,
            [
                "helm reported success, but 1 object(s) do not match revision 1: \
              Deployment/prod/web (spec.replicas: expected 1, live 3)"
            ]
        );
        let silent = Report::from(&record(Outcome::Failed));
        assert_eq!(
            silent.primary_errors,
            ["helm rollback exited with code 0 and printed no error message"]
        );
        let busy = Report::busy("web", None, "another run holds web".into());
        assert_eq!(busy.primary_errors, busy.lock_errors);
    }
}
