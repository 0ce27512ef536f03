//! `--finish`: complete what a run that died (SIGKILL, lost API server) left unfinished, from its
//! journal. It finds out how helm ended, then reconciles exactly as the run would have.

use std::time::Instant;

use crate::cli::helm_flags;
use crate::cli::Invocation;
use crate::domain::concurrency;
use crate::domain::plan::{self as reconcile, Decision};
use crate::domain::report::Outcome;
use crate::io::journal::{self, Attempt, Journal, Record, RollbackRecord, State};
use crate::io::lease::Lease;
use crate::pipeline::capture::CaptureError;
use crate::pipeline::exclusion::{busy, local_holder, lock, take_lease, Locked};
use crate::pipeline::{
    apply, base_report, emit, empty_report, leftover_entry, not_attempted, reconciled_entries,
    Tools, EXIT_CLEANUP_INCOMPLETE,
};

/// `--finish`: complete the journals of runs that died before finishing.
pub fn finish_interrupted(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    tools: &Tools,
    started: Instant,
) -> i32 {
    let failure = |step, error| CaptureError {
        step,
        error,
        helm: None,
    };
    let (cluster, context_namespace) = match tools.kubectl.cluster_target() {
        Ok(target) => target,
        Err(e) => return not_attempted(invocation, failure("namespace", e), started),
    };
    let namespace = invocation
        .kube
        .namespace
        .clone()
        .or(context_namespace)
        .unwrap_or_else(|| "default".into());
    let (dir, _lock) = match lock(invocation, env, &namespace) {
        Ok(Locked::Held(dir, lock)) => (dir, lock),
        Ok(Locked::Busy(path)) => return busy(invocation, &local_holder(&path)),
        Err(error) => return not_attempted(invocation, failure("journal", error), started),
    };
    let interrupted = match journal::unfinished(&dir, &namespace, &invocation.release) {
        Ok(found) => found,
        Err(error) => return not_attempted(invocation, failure("journal", error), started),
    };
    let Some(last) = interrupted.last() else {
        let mut report = empty_report(invocation);
        report.namespace = Some(namespace.clone());
        report.outcome = Outcome::Succeeded;
        report.stage = "finish";
        report.warnings.push(format!(
            "nothing to finish: no interrupted run of {namespace}/{}",
            invocation.release
        ));
        emit(invocation, &report);
        return 0;
    };
    // A journal is only evidence about the cluster it was written against.
    if let Some(other) = interrupted
        .iter()
        .find(|earlier| earlier.snapshot.cluster.differs_from(&cluster))
    {
        let error = anyhow::anyhow!(
            "the interrupted run's journal {} was written against {}, but this run targets {}; \
             run --finish with that cluster's --kube-context/--kubeconfig",
            other.path.display(),
            other.snapshot.cluster.describe(),
            cluster.describe()
        );
        return not_attempted(invocation, failure("checking the cluster", error), started);
    }
    // Only now, on the journal's own cluster, is there anything to hold the release for.
    let (lease, lease_warnings) = match take_lease(invocation, env, tools, &namespace) {
        Ok(taken) => taken,
        Err(exit_code) => return exit_code,
    };
    // Finishing writes journals: a signal must no longer cut that short.
    crate::io::exec::survive_signals();
    let history = match tools.helm.history(&invocation.release) {
        Ok(history) => history,
        Err(error) => return not_attempted(invocation, failure("helm history", error), started),
    };
    let mut exit_code = 0;
    let mut report = base_report(invocation, &last.snapshot);
    report.stage = "finish";
    report.warnings.extend(lease_warnings);
    for earlier in &interrupted {
        let snapshot = &earlier.snapshot;
        let newest = history.iter().max_by_key(|r| r.revision);
        // helm got as far as a deployed revision after the one we started from: it succeeded.
        let succeeded =
            newest.is_some_and(|r| r.revision > snapshot.from_revision && r.status == "deployed");
        let mut record = Record::captured(earlier.pid, earlier.helm_args.clone(), snapshot.clone());
        report.outcome = if succeeded {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        if !succeeded {
            let after = match tools
                .kubectl
                .identities(&snapshot.target, &snapshot.release.namespace)
            {
                Ok(after) => after,
                Err(e) => {
                    return not_attempted(
                        invocation,
                        failure("reading the live objects", e),
                        started,
                    )
                }
            };
            // The interrupted run's own flags, read as they were read when it started.
            let cleanup_asked_then = helm_flags::rollback_flags(&earlier.helm_args)
                .is_ok_and(|flags| flags.cleanup_on_fail);
            let cleanup = (invocation.rollback.cleanup_on_fail || cleanup_asked_then)
                && !invocation.own.no_reconcile;
            let mut plan = reconcile::plan(&reconcile::Inputs {
                release: &snapshot.release,
                target: &snapshot.target,
                before: &snapshot.live,
                after: &after,
                cleanup_requested: cleanup,
            });
            // The dead run's rollbacks: those it recorded, and one it may have been running.
            let its_revisions = earlier.attempts.len() + 1;
            let lease_lost = lease.as_ref().is_some_and(Lease::lost);
            concurrency::protect(
                &tools.helm,
                snapshot,
                its_revisions,
                lease_lost,
                &mut plan,
                &mut report,
            );
            let wait = crate::io::delete::wait_bound(&invocation.rollback);
            let actions = apply(&plan, "delete", &tools.kubectl, snapshot, wait);
            if actions.iter().any(|a| !a.result.complete()) {
                exit_code = EXIT_CLEANUP_INCOMPLETE;
            }
            report.leftovers.extend(
                plan.leftovers
                    .iter()
                    .filter(|l| l.decision == Decision::Report)
                    .map(|l| leftover_entry(&l.object, &tools.kubectl)),
            );
            report.reconciled.extend(reconciled_entries(&actions));
            // Attempt 0: the reconcile of a run that died; helm's outcome is unknown to us.
            record.attempts.push(Attempt {
                number: 0,
                rollback: RollbackRecord {
                    exit_code: None,
                    signal: None,
                    duration_ms: 0,
                    findings: Vec::new(),
                },
                live_after: Some(after),
                plan: Some(plan),
                actions,
            });
        }
        let journal = Journal {
            path: earlier.path.clone(),
        };
        report.journal = Some(earlier.path.display().to_string());
        record.state = State::Completed;
        record.outcome = Some(report.outcome);
        record.finished_at = Some(jiff::Timestamp::now().to_string());
        if let Err(error) = journal.write(&record) {
            report
                .warnings
                .push(format!("could not complete the journal: {error:#}"));
        }
    }
    report.exit_code = exit_code;
    report.duration_ms = started.elapsed().as_millis();
    emit(invocation, &report);
    exit_code
}
