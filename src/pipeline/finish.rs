//! `--finish`: complete what a run that died (SIGKILL, lost API server) left unfinished, from its
//! journal. It finds out how helm ended, then re-enters the run's own reconcile and report steps
//! — never a copy of them.

use std::time::Instant;

use crate::cli::helm_flags;
use crate::cli::Invocation;
use crate::domain::exit::Exit;
use crate::domain::model::{Cluster, Revision};
use crate::domain::record::{Attempt, Record, RollbackRecord, Stage, State};
use crate::domain::report::Report;
use crate::domain::verdict;
use crate::io::journal::{self, Journal, Unfinished};
use crate::io::lease::Lease;
use crate::io::signals;
use crate::pipeline::capture::Step;
use crate::pipeline::ending::Ending;
use crate::pipeline::exclusion::{local_holder, lock, take_lease, Locked};
use crate::pipeline::reconcile::Reconciler;
use crate::pipeline::tools::Tools;

/// `--finish`: complete the journals of runs that died before finishing.
pub fn finish_interrupted(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    tools: &Tools,
    started: Instant,
) -> Ending {
    let failed = |step, error| Ending::failed_at(invocation, step, error, started);
    let (cluster, context_namespace) = match tools.kubectl.cluster_target() {
        Ok(target) => target,
        Err(e) => return failed(Step::Namespace, e),
    };
    // As helm picks it: the flag or HELM_NAMESPACE, the context's, else `default`.
    let namespace = (invocation.kube.namespace.clone().or(context_namespace))
        .unwrap_or_else(|| "default".into());
    let (dir, _lock) = match lock(invocation, env, &namespace) {
        Ok(Locked::Held(dir, lock)) => (dir, lock),
        Ok(Locked::Busy(path)) => return Ending::busy(invocation, &local_holder(&path)),
        Err(error) => return failed(Step::Journal, error),
    };
    let interrupted = match journal::unfinished(&dir, &namespace, &invocation.release) {
        Ok(found) if found.is_empty() => {
            let report = Report::nothing_to_finish(&invocation.release, &namespace);
            return Ending::reported(Exit::Success, report);
        }
        Ok(found) => found,
        Err(error) => return failed(Step::Journal, error),
    };
    if let Err(error) = same_cluster(&interrupted, &cluster) {
        return failed(Step::CheckingTheCluster, error);
    }
    // Only now, on the journal's own cluster, is there anything to hold the release for.
    let (lease, lease_warnings) = match take_lease(invocation, env, tools, &namespace) {
        Ok(taken) => taken,
        Err(ending) => return ending,
    };
    // Finishing writes journals: a signal must no longer cut that short.
    signals::survive_signals();
    let history = match tools.helm.history(&invocation.release) {
        Ok(history) => history,
        Err(error) => return failed(Step::HelmHistory, error),
    };
    let finisher = Finisher {
        invocation,
        tools,
        history: &history,
        lease_lost: lease.as_ref().is_some_and(Lease::lost),
    };
    match finisher.complete_all(&interrupted, lease_warnings) {
        Ok(records) => ending(records, &interrupted, started),
        Err(error) => failed(Step::LiveObjects, error),
    }
}

/// A journal is only evidence about the cluster it was written against.
fn same_cluster(interrupted: &[Unfinished], cluster: &Cluster) -> anyhow::Result<()> {
    let Some(other) = interrupted
        .iter()
        .find(|earlier| earlier.snapshot.cluster.differs_from(cluster))
    else {
        return Ok(());
    };
    anyhow::bail!(
        "the interrupted run's journal {} was written against {}, but this run targets {}; \
         run --finish with that cluster's --kube-context/--kubeconfig",
        other.path.display(),
        other.snapshot.cluster.describe(),
        cluster.describe()
    )
}

/// One report for all the runs finished, the last one's journal named; exit 4 when any cleanup
/// did not complete.
fn ending(records: Vec<Record>, interrupted: &[Unfinished], started: Instant) -> Ending {
    let incomplete = records
        .iter()
        .any(|r| verdict::conclude(r).1 == Exit::CleanupIncomplete);
    let mut reports = records.iter().map(Report::from);
    let mut report = reports.next().expect("at least one run to finish");
    for later in reports {
        let earlier = std::mem::replace(&mut report, later);
        report.absorb_earlier(earlier);
    }
    report.journal = interrupted.last().map(|r| r.path.display().to_string());
    report.duration_ms = started.elapsed().as_millis();
    let exit = if incomplete {
        Exit::CleanupIncomplete
    } else {
        Exit::Success
    };
    Ending::reported(exit, report)
}

struct Finisher<'a> {
    invocation: &'a Invocation,
    tools: &'a Tools,
    /// The release's history now.
    history: &'a [Revision],
    lease_lost: bool,
}

impl Finisher<'_> {
    /// Each run in turn (the lease's warnings go with the first); `Err` stops at the first
    /// whose cluster could not be read, the runs before it completed.
    fn complete_all(
        &self,
        interrupted: &[Unfinished],
        mut warnings: Vec<String>,
    ) -> anyhow::Result<Vec<Record>> {
        let mut records = Vec::new();
        for earlier in interrupted {
            records.push(self.complete(earlier, std::mem::take(&mut warnings))?);
        }
        Ok(records)
    }

    /// Finds out how the dead run's helm ended, reconciles if it failed, and completes its
    /// journal. `Err` when the cluster could not be read.
    fn complete(&self, earlier: &Unfinished, warnings: Vec<String>) -> anyhow::Result<Record> {
        let snapshot = &earlier.snapshot;
        let mut record = Record::captured(earlier.pid, earlier.helm_args.clone(), snapshot.clone());
        record.stage = Stage::Finish;
        record.warnings = warnings;
        record.kubectl_connection = self.tools.printable_connection();
        if !helm_succeeded(self.history, snapshot.from_revision) {
            record.attempts.push(self.reconcile(earlier)?);
        }
        let (outcome, exit) = verdict::conclude(&record);
        record.outcome = Some(outcome);
        record.exit_code = Some(exit.code());
        record.state = State::Completed;
        record.finished_at = Some(jiff::Timestamp::now().to_string());
        let journal = Journal {
            path: earlier.path.clone(),
        };
        if let Err(error) = journal.write(&record) {
            record
                .warnings
                .push(format!("could not complete the journal: {error:#}"));
        }
        Ok(record)
    }

    /// Attempt 0: the reconcile of a run that died; helm's outcome is unknown to us.
    fn reconcile(&self, earlier: &Unfinished) -> anyhow::Result<Attempt> {
        // The interrupted run's own flags, read as they were read when it started.
        let cleanup_asked_then =
            helm_flags::rollback_flags(&earlier.helm_args).is_ok_and(|flags| flags.cleanup_on_fail);
        let invocation = self.invocation;
        let cleanup = invocation.deletes_leftovers(cleanup_asked_then);
        let reconciler = Reconciler {
            tools: self.tools,
            snapshot: &earlier.snapshot,
            wait: invocation.rollback.delete_wait(),
            lease_lost: self.lease_lost,
        };
        // The dead run's rollbacks: those it recorded, and one it may have been running.
        let its_revisions = earlier.attempts.len() + 1;
        let settled = reconciler.after_failure(cleanup, its_revisions)?;
        let mut attempt = Attempt::ran(
            0,
            RollbackRecord {
                exit_code: None,
                signal: None,
                duration_ms: 0,
                findings: Vec::new(),
            },
        );
        settled.record_into(&mut attempt);
        Ok(attempt)
    }
}

/// helm got as far as a deployed revision after the one the run started from: it succeeded.
fn helm_succeeded(history: &[Revision], from_revision: u64) -> bool {
    let newest = history.iter().max_by_key(|r| r.revision);
    newest.is_some_and(|r| r.revision > from_revision && r.status == "deployed")
}
