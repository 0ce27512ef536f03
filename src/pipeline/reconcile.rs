//! The one reconcile step, for the live run after a failed helm and for `--finish` after a dead
//! one: read what is there now, apply the safety rules (`domain::plan`), guard against other
//! writers (`domain::concurrency`), delete what may be deleted (`io::delete`). Removing an
//! earlier attempt's orphans before helm runs enters at [`Reconciler::settle`] with its own plan.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::domain::concurrency::{self, Assessment, ConcurrentRevision};
use crate::domain::manifest::{self, objects_of};
use crate::domain::model::{LiveObject, ObjectRef};
use crate::domain::plan::{self, Decision, Plan};
use crate::domain::record::{Action, ActionKind, Attempt};
use crate::domain::snapshot::Snapshot;
use crate::io::delete;
use crate::io::helm::Helm;
use crate::pipeline::tools::Tools;

/// What reconciling one release needs to know.
pub(crate) struct Reconciler<'a> {
    pub tools: &'a Tools,
    pub snapshot: &'a Snapshot,
    /// How long deleted objects are waited for (`RollbackFlags::delete_wait`).
    pub wait: Duration,
    /// Another run took our Lease: nothing may be deleted.
    pub lease_lost: bool,
}

/// What a reconcile decided and did.
pub(crate) struct Settled {
    pub live_after: Option<Vec<LiveObject>>,
    pub plan: Plan,
    pub actions: Vec<Action>,
    pub warnings: Vec<String>,
    pub concurrent: Vec<ConcurrentRevision>,
}

impl Settled {
    /// Whether every leftover was deleted and is gone: the cluster is back to its pre-state.
    pub fn back_to_pre_state(&self) -> bool {
        self.actions.iter().all(|a| a.result.complete())
            && self
                .plan
                .leftovers
                .iter()
                .all(|l| l.decision == Decision::Delete)
    }

    /// Into the attempt whose leftovers these were.
    pub fn record_into(self, attempt: &mut Attempt) {
        attempt.live_after = self.live_after;
        attempt.plan = Some(self.plan);
        attempt.actions = self.actions;
        attempt.warnings.extend(self.warnings);
        attempt.concurrent_revisions.extend(self.concurrent);
    }
}

impl Reconciler<'_> {
    /// After a helm rollback that failed (or died): what it left, and the deletes allowed.
    /// `our_revisions`: how many rollbacks the run started (see `concurrency::assess`). `Err`
    /// only when the cluster could not be read, so nothing is known.
    pub fn after_failure(&self, cleanup: bool, our_revisions: usize) -> Result<Settled> {
        let snapshot = self.snapshot;
        let after = self
            .tools
            .kubectl
            .identities(&snapshot.target, &snapshot.release.namespace)?;
        let plan = plan::plan(&plan::Inputs {
            release: &snapshot.release,
            target: &snapshot.target,
            before: &snapshot.live,
            after: &after,
            cleanup_requested: cleanup,
        });
        let mut settled = self.settle(plan, our_revisions, ActionKind::Delete);
        settled.live_after = Some(after);
        Ok(settled)
    }

    /// Right before any delete, guards the plan; then deletes what it still says to delete.
    pub fn settle(&self, mut plan: Plan, our_revisions: usize, kind: ActionKind) -> Settled {
        let (warnings, concurrent) = self.protect(&mut plan, our_revisions);
        let to_delete: Vec<&LiveObject> = plan
            .leftovers
            .iter()
            .filter(|l| l.decision == Decision::Delete)
            .map(|l| &l.object)
            .collect();
        let namespace = &self.snapshot.release.namespace;
        let actions =
            delete::delete_all(&to_delete, kind, &self.tools.kubectl, namespace, self.wait);
        Settled {
            live_after: None,
            plan,
            actions,
            warnings,
            concurrent,
        }
    }

    /// Turns deletes into reports when another writer changed the release or took our Lease,
    /// and spares what the deployed revision needs. The warnings and the other writer's
    /// revisions are returned.
    fn protect(
        &self,
        plan: &mut Plan,
        our_revisions: usize,
    ) -> (Vec<String>, Vec<ConcurrentRevision>) {
        let mut warnings = Vec::new();
        let mut concurrent = Vec::new();
        if plan.leftovers.is_empty() {
            return (warnings, concurrent);
        }
        let snapshot = self.snapshot;
        let release = &snapshot.release;
        match check(&self.tools.helm, snapshot, our_revisions) {
            Ok((assessment, deployed)) => {
                concurrency::guard(plan, &assessment, &deployed, &release.namespace);
                if !assessment.concurrent.is_empty() {
                    warnings.push(concurrency::warning(&assessment.concurrent));
                    concurrent = assessment.concurrent;
                }
            }
            Err(error) => {
                concurrency::hold(plan);
                warnings.push(format!(
                    "could not check for other writers before deleting ({error:#}); nothing was \
                     deleted"
                ));
            }
        }
        if self.lease_lost {
            concurrency::hold(plan);
            warnings.push(
                "another run took this release's Lease while this one ran (we could not renew \
                 it in time); nothing was deleted"
                    .into(),
            );
        }
        (warnings, concurrent)
    }
}

/// What the guard needs, read now: the history, and the deployed revision's objects (from the
/// snapshot when it is a revision we captured, else `helm status`).
fn check(
    helm: &Helm,
    snapshot: &Snapshot,
    our_revisions: usize,
) -> Result<(Assessment, Vec<ObjectRef>)> {
    let release = &snapshot.release.name;
    let now = helm
        .history(release)
        .context("re-reading the release history before deleting")?;
    let assessment = concurrency::assess(&snapshot.history, &now, our_revisions);
    let Some(revision) = assessment.deployed_now else {
        return Ok((assessment, Vec::new()));
    };
    let mut known: Vec<(u64, &[ObjectRef])> = vec![
        (snapshot.from_revision, &snapshot.current),
        (snapshot.to_revision, &snapshot.target),
    ];
    if let Some(successful) = snapshot.last_successful_revision {
        known.push((successful, &snapshot.last_successful));
    }
    let deployed = match known.iter().find(|(r, _)| *r == revision) {
        Some((_, objects)) => objects.to_vec(),
        None => {
            let stored = helm.revision(release, Some(revision), snapshot.helm.major)?;
            objects_of(
                &manifest::parse_documents(stored.manifest.as_bytes())
                    .with_context(|| format!("manifest of the deployed revision {revision}"))?,
            )
        }
    };
    Ok((assessment, deployed))
}
