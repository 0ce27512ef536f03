//! Another writer on the release while we ran: a native `helm rollback` on another
//! machine, a pipeline, a person at a terminal.
//!
//! "Absent before, present now, owned by the release" proves an object ours only if nobody else
//! wrote the release meanwhile. So right before any delete we read the release history again:
//! a revision we did not create, or a deployed revision that is neither the one we started from
//! nor ours, means another writer, and nothing is deleted. Whoever created it, an object the
//! release's deployed revision contains is never deleted: that revision needs it.
//!
//! The decisions ([`assess`], [`guard`]) are pure; `pipeline::reconcile` reads their inputs.

use serde::Serialize;

use crate::domain::model::{ManifestIndex, ObjectRef, Revision};
use crate::domain::plan::{Decision, Plan, Spared};

/// A revision someone else made while we ran, as the JSON report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConcurrentRevision {
    pub revision: u64,
    pub status: String,
    pub description: String,
    /// When helm recorded it (helm history's `updated`).
    pub created: String,
}

impl From<&Revision> for ConcurrentRevision {
    fn from(r: &Revision) -> Self {
        ConcurrentRevision {
            revision: r.revision,
            status: r.status.clone(),
            description: r.description.clone(),
            created: r.updated.clone(),
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Revisions another writer made, oldest first; empty when we were alone.
    pub concurrent: Vec<ConcurrentRevision>,
    /// The newest `deployed` revision now (helm's own notion of "the deployed one").
    pub deployed_now: Option<u64>,
}

/// Compares the history we captured with the history now. `our_revisions` is how many
/// revisions this run may have created (one per `helm rollback` it started). Which new
/// revisions are ours is not recorded by helm; we take the oldest ones. That only matters when
/// fewer new revisions appeared than we started rollbacks (a helm that failed before creating
/// its revision): a foreign one may then pass as ours, and [`guard`] still never deletes what
/// the deployed revision contains.
pub fn assess(captured: &[Revision], now: &[Revision], our_revisions: usize) -> Assessment {
    let newest_before = captured.iter().map(|r| r.revision).max().unwrap_or(0);
    let mut new: Vec<&Revision> = now.iter().filter(|r| r.revision > newest_before).collect();
    new.sort_by_key(|r| r.revision);
    let ours: Vec<u64> = new.iter().take(our_revisions).map(|r| r.revision).collect();
    let mut concurrent: Vec<&Revision> = new.into_iter().skip(our_revisions).collect();
    let deployed_before = newest_deployed(captured);
    let deployed_now = newest_deployed(now);
    if let Some(deployed) = deployed_now {
        let explained = Some(deployed) == deployed_before
            || ours.contains(&deployed)
            || concurrent.iter().any(|r| r.revision == deployed);
        if !explained {
            concurrent.extend(now.iter().filter(|r| r.revision == deployed));
            concurrent.sort_by_key(|r| r.revision);
        }
    }
    Assessment {
        concurrent: concurrent
            .into_iter()
            .map(ConcurrentRevision::from)
            .collect(),
        deployed_now,
    }
}

fn newest_deployed(history: &[Revision]) -> Option<u64> {
    history
        .iter()
        .filter(|r| r.status == "deployed")
        .map(|r| r.revision)
        .max()
}

/// Applies the assessment to a reconcile plan: leftovers the deployed revision contains are
/// spared; with another writer about, nothing else is deleted either, only reported.
pub fn guard(
    plan: &mut Plan,
    assessment: &Assessment,
    deployed: &[ObjectRef],
    release_namespace: &str,
) {
    let index = ManifestIndex::new(deployed, release_namespace);
    let (needed, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut plan.leftovers)
        .into_iter()
        .partition(|l| index.contains(&l.object));
    plan.spared.extend(needed.into_iter().map(|l| Spared {
        object: l.object,
        reason: "in the manifest of the release's deployed revision",
    }));
    plan.leftovers = rest;
    if !assessment.concurrent.is_empty() {
        hold(plan);
    }
}

/// The warning that names the other writer's revisions: one line.
pub fn warning(concurrent: &[ConcurrentRevision]) -> String {
    let revisions: Vec<String> = concurrent
        .iter()
        .map(|r| format!("{} ({}: {})", r.revision, r.status, r.description))
        .collect();
    format!(
        "another operation changed the release while this one ran: revision {}; nothing was \
         deleted because of it (objects it may need are left for a human to judge)",
        revisions.join(", ")
    )
}

/// Nothing is deleted: every leftover is only reported.
pub fn hold(plan: &mut Plan) {
    for leftover in &mut plan.leftovers {
        leftover.decision = Decision::Report;
    }
}

#[cfg(test)]
#[path = "concurrency_tests.rs"]
mod tests;
