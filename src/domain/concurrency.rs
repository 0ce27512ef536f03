//! Another writer on the release while we ran (issue 17): a native `helm rollback` on another
//! machine, a pipeline, a person at a terminal.
//!
//! "Absent before, present now, owned by the release" proves an object ours only if nobody else
//! wrote the release meanwhile. So right before any delete we read the release history again:
//! a revision we did not create, or a deployed revision that is neither the one we started from
//! nor ours, means another writer, and nothing is deleted. Whoever created it, an object the
//! release's deployed revision contains is never deleted: that revision needs it.
//!
//! The decisions ([`assess`], [`guard`]) are pure; [`check`] gathers their inputs.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::domain::manifest::{self, objects_of};
use crate::domain::model::{ManifestIndex, ObjectRef, Revision};
use crate::domain::plan::{Decision, Plan, Spared};
use crate::domain::report::Report;
use crate::io::helm::Helm;
use crate::pipeline::capture::Snapshot;

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

/// What the guard needs, read now: the history, and the deployed revision's objects (from the
/// snapshot when it is a revision we captured, else `helm get manifest`). `known` maps revision
/// numbers to objects we already hold.
pub fn check(
    helm: &Helm,
    release: &str,
    captured: &[Revision],
    our_revisions: usize,
    known: &[(u64, &[ObjectRef])],
) -> Result<(Assessment, Vec<ObjectRef>)> {
    let now = helm
        .history(release)
        .context("re-reading the release history before deleting")?;
    let assessment = assess(captured, &now, our_revisions);
    let deployed = match assessment.deployed_now {
        None => Vec::new(),
        Some(revision) => match known.iter().find(|(r, _)| *r == revision) {
            Some((_, objects)) => objects.to_vec(),
            None => {
                let bytes = helm.manifest(release, Some(revision))?;
                objects_of(
                    &manifest::parse_documents(&bytes)
                        .with_context(|| format!("manifest of the deployed revision {revision}"))?,
                )
            }
        },
    };
    Ok((assessment, deployed))
}

/// Right before any delete: turns deletes into reports when another writer changed the release
/// or took our Lease, and spares what the deployed revision needs. `our_revisions` as for
/// [`assess`]. Warnings and the other writer's revisions go into the report.
pub fn protect(
    helm: &Helm,
    snapshot: &Snapshot,
    our_revisions: usize,
    lease_lost: bool,
    plan: &mut Plan,
    report: &mut Report,
) {
    if plan.leftovers.is_empty() {
        return;
    }
    let mut known: Vec<(u64, &[ObjectRef])> = vec![
        (snapshot.from_revision, &snapshot.current),
        (snapshot.to_revision, &snapshot.target),
    ];
    if let Some(revision) = snapshot.last_successful_revision {
        known.push((revision, &snapshot.last_successful));
    }
    let release = &snapshot.release;
    match check(
        helm,
        &release.name,
        &snapshot.history,
        our_revisions,
        &known,
    ) {
        Ok((assessment, deployed)) => {
            guard(plan, &assessment, &deployed, &release.namespace);
            if !assessment.concurrent.is_empty() {
                report.warnings.push(warning(&assessment.concurrent));
                report.concurrent_revisions.extend(assessment.concurrent);
            }
        }
        Err(error) => {
            hold(plan);
            report.warnings.push(format!(
                "could not check for other writers before deleting ({error:#}); nothing was deleted"
            ));
        }
    }
    if lease_lost {
        hold(plan);
        report.warnings.push(
            "another run took this release's Lease while this one ran (we could not renew it in \
             time); nothing was deleted"
                .into(),
        );
    }
}

/// Nothing is deleted: every leftover is only reported.
fn hold(plan: &mut Plan) {
    for leftover in &mut plan.leftovers {
        leftover.decision = Decision::Report;
    }
}

#[cfg(test)]
#[path = "concurrency_tests.rs"]
mod tests;
