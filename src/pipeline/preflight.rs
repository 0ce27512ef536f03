//! Step 2: decide whether helm runs at all — the checks are `domain::preflight`'s; this step
//! gathers their inputs, records the verdict, and removes an earlier attempt's orphans through
//! the one reconcile step when the user asked for cleanup.

use std::time::Instant;

use crate::cli::commands;
use crate::cli::Invocation;
use crate::domain::destructive::{self, Destroys, DestructiveDelete};
use crate::domain::frozen::{self, FrozenRender};
use crate::domain::live;
use crate::domain::model::{LiveObject, ObjectRef};
use crate::domain::plan::{Decision, Leftover, Plan};
use crate::domain::preflight::{self, Allowances, Findings, Pending};
use crate::domain::record::ActionKind;
use crate::domain::snapshot::Snapshot;
use crate::domain::target::{self, FailedTarget};
use crate::domain::verdict::Halt;
use crate::io::trace;
use crate::pipeline::capture::DryRun;
use crate::pipeline::ending::Ending;
use crate::pipeline::session::Session;

/// What the user allowed beyond the safe default, from the flags.
pub(crate) fn allowances(invocation: &Invocation) -> Allowances {
    Allowances {
        strict: invocation.own.strict,
        takeover: invocation.own.allow_takeover,
        young_pending: invocation.own.allow_pending,
        pending_max_age: invocation.pending_max_age,
        failed_target: invocation.own.allow_failed_target,
        destructive: invocation.own.allow_destructive,
        gitops: invocation.own.allow_gitops,
        replace_immutable: invocation.own.replace_immutable,
    }
}

impl Session<'_> {
    /// `Some(ending)` when the run ends here (refused, planned, orphans that would not go).
    pub fn preflight(&mut self, allowances: &Allowances, dry_run: DryRun) -> Option<Ending> {
        let own = &self.invocation.own;
        if own.no_preflight {
            if !own.plan {
                return None;
            }
            self.record.halt = Some(Halt::Planned);
            return Some(self.finish());
        }
        let removes_orphans = self.invocation.deletes_leftovers(false);
        let deciding = Instant::now();
        let left_by_us = self.left_by_us.clone();
        let mut findings = findings(self.snapshot(), &dry_run, removes_orphans, left_by_us);
        self.prediction = dry_run.and_then(Result::ok);
        if own.plan {
            let predicted = self.prediction.as_ref().map(|p| p.objects.clone());
            self.record.predicted = predicted.unwrap_or_default();
        }
        findings.failed_target = self.failed_target();
        findings.destructive = self.destructive_deletes(&mut findings.unchecked);
        let predicted = self.prediction.as_ref().map_or(&[][..], |p| &p.objects[..]);
        findings.frozen_renders = frozen::frozen_renders(self.snapshot(), &self.stored, predicted);
        findings.gitops = self.gitops_owner();
        self.immutable_changes(&mut findings);
        let namespace = &self.snapshot().release.namespace;
        let refusal = preflight::verdict(&findings, allowances, namespace);
        trace::step("preflight decisions", deciding);
        self.record.preflight = Some(findings.clone());
        if let Some(refusal) = &refusal {
            self.record.refusal_reasons = refusal.reasons.clone();
        }
        if !allowances.strict {
            for reason in &findings.unchecked {
                self.record
                    .warnings
                    .push(format!("a preflight check could not run: {reason}"));
            }
        }
        // Refused, the reason says it; otherwise helm's semantics are kept, with a warning.
        if let Some(failed) = &findings.failed_target {
            if failed.explicit || allowances.failed_target {
                self.record.warnings.push(failed.message());
            }
        }
        let frozen = findings.frozen_renders.iter().map(FrozenRender::warning);
        self.record.warnings.extend(frozen);
        if let Some(managed) = &findings.gitops {
            if managed.paused() || allowances.gitops {
                self.record.warnings.push(managed.note());
            }
        }
        if own.plan {
            self.record.halt = Some(Halt::Planned);
            return Some(self.finish());
        }
        if refusal.is_some() {
            self.record.halt = Some(Halt::Refused);
            return Some(self.finish());
        }
        if let Some(pending) = &findings.pending {
            self.record.warnings.push(superseded(pending));
        }
        if allowances.replace_immutable && !findings.immutable.is_empty() {
            if let Some(ending) = self.replace_immutable(&findings.immutable) {
                return Some(ending);
            }
        }
        if removes_orphans && !findings.orphans.is_empty() {
            return self.remove_orphans(&findings.orphans);
        }
        None
    }

    /// The deletes helm will make that destroy data, each with what goes with it, read only
    /// when there are any. What cannot be read is said in `unchecked` and counted as unknown:
    /// the delete is still refused.
    fn destructive_deletes(&self, unchecked: &mut Vec<String>) -> Vec<DestructiveDelete> {
        let snapshot = self.snapshot();
        let candidates = destructive::candidates(snapshot);
        if candidates.is_empty() {
            return Vec::new();
        }
        let namespace = &snapshot.release.namespace;
        let refs: Vec<ObjectRef> = candidates.iter().map(LiveObject::reference).collect();
        let bodies = self.tools.kubectl.objects(&refs, namespace);
        if let Err(error) = &bodies {
            unchecked.push(format!("what the deletes destroy: {error:#}"));
        }
        let bodies = bodies.unwrap_or_default();
        let body_of = |object: &LiveObject| live::with_uid(&bodies, &object.uid);
        let mut count = |body: &serde_json::Value| {
            let (group, version, plural, _) = destructive::served_resource(body)?;
            match self.tools.kubectl.count_all(&group, &version, &plural) {
                Ok(count) => Some(count),
                Err(error) => {
                    unchecked.push(format!("custom resources of {plural}.{group}: {error:#}"));
                    None
                }
            }
        };
        let mut deletes = Vec::new();
        for object in &candidates {
            let body = body_of(object);
            let custom_resources = match destructive::destroys(object) {
                Some(Destroys::CustomResources) => body.and_then(&mut count),
                _ => None,
            };
            deletes.extend(destructive::describe(object, body, custom_resources));
        }
        deletes
    }

    /// The target revision, when helm recorded its deploy as failed.
    pub(crate) fn failed_target(&self) -> Option<FailedTarget> {
        let snapshot = self.snapshot();
        let namespace = &snapshot.release.namespace;
        target::failed_target(
            &snapshot.history,
            snapshot.from_revision,
            snapshot.to_revision,
            self.invocation.revision.is_some(),
            |good| commands::rollback_command(self.invocation, namespace, good),
        )
    }

    /// Removes earlier attempts' leftovers so helm can create them cleanly; from here on the
    /// pre-state is the cluster without them. Only if nobody else wrote the release since we
    /// captured it (the reconcile step's guard).
    fn remove_orphans(&mut self, orphans: &[LiveObject]) -> Option<Ending> {
        let plan = Plan {
            leftovers: orphans
                .iter()
                .map(|o| Leftover {
                    object: o.clone(),
                    decision: Decision::Delete,
                })
                .collect(),
            spared: Vec::new(),
        };
        let settled = self.reconciler().settle(plan, 0, ActionKind::DeleteOrphan);
        let failed = settled.actions.len() < orphans.len()
            || settled.actions.iter().any(|a| !a.result.complete());
        let removed: Vec<&str> = settled
            .actions
            .iter()
            .filter(|a| a.result.complete())
            .map(|a| a.uid.as_str())
            .collect();
        let record = &mut self.record;
        record
            .snapshot
            .live
            .retain(|l| !removed.contains(&l.uid.as_str()));
        record.warnings.extend(settled.warnings);
        record.concurrent_revisions.extend(settled.concurrent);
        record.actions.extend(settled.actions);
        if failed {
            record.errors.push(
                "could not remove the leftovers of an earlier attempt; helm was not run".into(),
            );
            record.halt = Some(Halt::LeftoversRemain);
            return Some(self.finish());
        }
        self.write_journal();
        None
    }
}

/// The warning that a pending revision nobody works on is superseded by this rollback.
fn superseded(pending: &Pending) -> String {
    match &pending.left_by {
        Some(journal) => format!(
            "revision {} is {}, left by an earlier helm safe-rollback whose helm has exited \
             (journal {journal}): nobody is working on it, this rollback supersedes it",
            pending.revision, pending.status
        ),
        None => format!(
            "revision {} was {} since {} ({}s ago): treated as abandoned, this rollback \
             supersedes it",
            pending.revision, pending.status, pending.updated, pending.age_seconds
        ),
    }
}

/// What preflight found. A dry run that could not be made at all is one check that did not run:
/// a warning, never a reason to stop what native helm would do.
fn findings(
    snapshot: &Snapshot,
    dry_run: &DryRun,
    removes_orphans: bool,
    left_by_us: Option<(std::ops::RangeInclusive<u64>, String)>,
) -> Findings {
    let (invalid, unchecked) = match dry_run {
        None => (Vec::new(), Vec::new()),
        Some(Ok(dry_run)) => (
            dry_run.rejections.iter().map(|(_, m)| m.clone()).collect(),
            dry_run.unchecked.clone(),
        ),
        Some(Err(error)) => (
            Vec::new(),
            vec![format!("the server-side dry run: {error:#}")],
        ),
    };
    let orphans = preflight::orphans(snapshot, &snapshot.last_successful);
    let removed: &[LiveObject] = if removes_orphans { &orphans } else { &[] };
    Findings {
        invalid,
        unchecked,
        foreign: preflight::foreign_objects(snapshot),
        helm3_unlisted: preflight::helm3_unlisted(snapshot, removed),
        failed_target: None,
        destructive: Vec::new(),
        frozen_renders: Vec::new(),
        immutable: Vec::new(),
        gitops: None,
        orphans,
        pending: preflight::pending(&snapshot.history, jiff::Timestamp::now(), left_by_us),
    }
}
