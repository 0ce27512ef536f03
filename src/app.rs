//! The pipeline, in order: capture → preflight → run → classify → reconcile → report.
//!
//! Each step is a call into its module; this file only sequences them, keeps the journal up to
//! date between them, and maps the result to an exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::capture::{self, CaptureError, Snapshot};
use crate::classify::{self, Class, Finding};
use crate::cli::{self, Invocation, OutputFormat};
use crate::exec::{self, Echo, Output};
use crate::helm::Helm;
use crate::journal::{self, Action, Attempt, Journal, Record, RollbackRecord, State};
use crate::kubectl::Kubectl;
use crate::manifest;
use crate::model::LiveObject;
use crate::preflight::{self, Allowances, Findings};
use crate::reconcile::{self, Decision, Plan};
use crate::report::{self, LeftoverEntry, Outcome, ReconciledEntry, Report};

/// Exit codes beyond helm's own; the README's table documents them.
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_ATTEMPTED: i32 = 3;
pub const EXIT_CLEANUP_INCOMPLETE: i32 = 4;
pub const EXIT_REFUSED: i32 = 5;
pub const EXIT_BUSY: i32 = 6;
pub const EXIT_DRIFTED: i32 = 7;

struct Tools {
    helm: Helm,
    kubectl: Kubectl,
}

pub fn run(invocation: &Invocation, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    let started = Instant::now();
    let debug = invocation.kube.debug;
    let tools = Tools {
        helm: Helm {
            bin: invocation.own.helm.clone(),
            global_args: invocation.helm_global_args.clone(),
        },
        kubectl: Kubectl {
            bin: invocation.own.kubectl.clone(),
            connection_args: invocation.kube.kubectl_args(),
        },
    };
    let allowances = match allowances(invocation) {
        Ok(allowances) => allowances,
        Err(error) => {
            eprintln!("Error: {error}");
            return EXIT_USAGE;
        }
    };

    if invocation.own.finish {
        return finish_interrupted(invocation, env, &tools, started);
    }

    // 1. Capture, and journal it before anything changes.
    let request = capture::Request {
        release: &invocation.release,
        namespace: invocation.kube.namespace.as_deref(),
        revision: invocation.revision,
    };
    let captured = match capture::capture(
        &request,
        &tools.helm,
        &tools.kubectl,
        !invocation.own.no_preflight,
    ) {
        Ok(captured) => captured,
        Err(failure) => return not_attempted(invocation, failure, started),
    };
    let mut snapshot = captured.snapshot;
    let journal_failure = |error| CaptureError {
        step: "journal",
        error,
        helm: Some(snapshot.helm.clone()),
    };
    let (dir, _lock) = match lock(invocation, env, &snapshot.release.namespace) {
        Ok(Locked::Held(dir, lock)) => (dir, lock),
        Ok(Locked::Busy(path)) => return busy(invocation, &path),
        Err(error) => return not_attempted(invocation, journal_failure(error), started),
    };
    let interrupted =
        journal::unfinished(&dir, &snapshot.release.namespace, &snapshot.release.name)
            .unwrap_or_default();
    let (journal, mut record) = match open_journal(invocation, &snapshot, &dir) {
        Ok(opened) => opened,
        Err(error) => return not_attempted(invocation, journal_failure(error), started),
    };
    if debug {
        eprintln!(
            "safe-rollback: captured {} current and {} target objects ({} live); journal {}",
            snapshot.current.len(),
            snapshot.target.len(),
            snapshot.live.len(),
            journal.path.display()
        );
    }
    let mut report = base_report(invocation, &snapshot);
    report.journal = Some(journal.path.display().to_string());
    for earlier in &interrupted {
        report.warnings.push(format!(
            "an earlier run (pid {}) did not finish: its journal is {}; run `{}` to reconcile what it left",
            earlier.pid,
            earlier.path.display(),
            finish_command(invocation, &snapshot.release.namespace)
        ));
    }

    // 2. Preflight: decide whether helm runs at all.
    if invocation.own.no_preflight {
        if invocation.own.plan {
            report.plan = Some(preflight::forecast(&snapshot, &Findings::default()));
            report.outcome = Outcome::Planned;
            return finish(invocation, &journal, record, report, 0, started);
        }
    } else {
        let removes_orphans = invocation.cleanup_on_fail && !invocation.own.no_reconcile;
        let dry_run = captured.dry_run.unwrap_or_else(|| Ok(Vec::new()));
        let findings = match preflight_findings(&snapshot, dry_run, removes_orphans) {
            Ok(findings) => findings,
            Err(error) => {
                let failure = CaptureError {
                    step: "preflight",
                    error,
                    helm: Some(snapshot.helm.clone()),
                };
                return not_attempted(invocation, failure, started);
            }
        };
        record.preflight = Some(findings.clone());
        report.orphans = findings
            .orphans
            .iter()
            .map(|o| leftover_entry(o, &tools.kubectl))
            .collect();
        let refusal = preflight::verdict(&findings, &allowances, &snapshot.release.namespace);
        if let Some(refusal) = &refusal {
            report.refusal_reasons = refusal.reasons.clone();
        }
        if invocation.own.plan {
            report.plan = Some(preflight::forecast(&snapshot, &findings));
            report.outcome = Outcome::Planned;
            let code = if refusal.is_some() { EXIT_REFUSED } else { 0 };
            return finish(invocation, &journal, record, report, code, started);
        }
        if refusal.is_some() {
            report.outcome = Outcome::Refused;
            return finish(invocation, &journal, record, report, EXIT_REFUSED, started);
        }
        if let Some(pending) = &findings.pending {
            report.warnings.push(format!(
                "revision {} was {} since {} ({}s ago): treated as abandoned, this rollback supersedes it",
                pending.revision, pending.status, pending.updated, pending.age_seconds
            ));
        }
        if !findings.orphans.is_empty()
            && invocation.cleanup_on_fail
            && !invocation.own.no_reconcile
        {
            // Remove earlier attempts' leftovers so helm can create them cleanly; from here on
            // the pre-state is the cluster without them.
            let orphans: Vec<&LiveObject> = findings.orphans.iter().collect();
            let actions = delete_and_verify(&orphans, "delete-orphan", &tools.kubectl, &snapshot);
            let failed = actions.iter().any(|a| a.result != "deleted");
            snapshot
                .live
                .retain(|l| !findings.orphans.iter().any(|o| o.uid == l.uid));
            record.snapshot.live = snapshot.live.clone();
            report.reconciled.extend(reconciled_entries(&actions));
            record.actions.extend(actions);
            report.orphans.clear();
            if failed {
                report.primary_errors.push(
                    "could not remove the leftovers of an earlier attempt; helm was not run".into(),
                );
                report.outcome = Outcome::Failed;
                return finish(
                    invocation,
                    &journal,
                    record,
                    report,
                    EXIT_CLEANUP_INCOMPLETE,
                    started,
                );
            }
            if let Err(error) = journal.write(&record) {
                report
                    .warnings
                    .push(format!("could not update the journal: {error:#}"));
            }
        }
    }

    // 3–5. Run the native rollback, classify, reconcile; again while the failure was transient
    // and the cluster is back to its pre-state, if the user asked for retries.
    let echo = match invocation.own.output {
        OutputFormat::Text => Echo::Stdout,
        // stdout must carry our JSON document alone; helm's own output still reaches the user.
        OutputFormat::Json => Echo::Stderr,
    };
    let mut number = 0;
    loop {
        number += 1;
        let rollback_started = Instant::now();
        let output = match tools.helm.rollback(
            &snapshot.release.name,
            snapshot.to_revision,
            &invocation.rollback_args,
            echo,
        ) {
            Ok(output) => output,
            Err(error) => {
                let failure = CaptureError {
                    step: "helm rollback",
                    error,
                    helm: Some(snapshot.helm.clone()),
                };
                return not_attempted(invocation, failure, started);
            }
        };
        let findings = classify::classify(&output.stderr);
        let mut attempt = Attempt {
            number,
            rollback: RollbackRecord {
                exit_code: output.code,
                signal: output.signal,
                duration_ms: rollback_started.elapsed().as_millis(),
                findings: findings.clone(),
            },
            live_after: None,
            plan: None,
            actions: Vec::new(),
        };
        report.attempts = number;
        let mut this_attempt = base_report(invocation, &snapshot);
        add_findings(&mut this_attempt, &findings, &output);

        if output.success() {
            record.attempts.push(attempt);
            merge_attempt(&mut report, this_attempt);
            report.outcome = Outcome::Succeeded;
            let mut exit_code = 0;
            if should_verify(invocation) {
                match verify(&snapshot, &tools.kubectl) {
                    Ok(drifted) if drifted.is_empty() => {}
                    Ok(drifted) => {
                        report.drifted = drifted;
                        report.outcome = Outcome::Drifted;
                        exit_code = EXIT_DRIFTED;
                    }
                    Err(error) => report
                        .warnings
                        .push(format!("could not verify the live objects: {error:#}")),
                }
            }
            return finish(invocation, &journal, record, report, exit_code, started);
        }

        let mut exit_code = helm_exit_code(&output);
        let mut back_to_pre_state = false;
        match tools
            .kubectl
            .identities(&snapshot.target, &snapshot.release.namespace)
        {
            Ok(after) => {
                let plan = reconcile::plan(&reconcile::Inputs {
                    release: &snapshot.release,
                    target: &snapshot.target,
                    before: &snapshot.live,
                    after: &after,
                    cleanup_requested: invocation.cleanup_on_fail && !invocation.own.no_reconcile,
                });
                attempt.actions = apply(&plan, &tools.kubectl, &snapshot);
                let cleanup_failed = attempt.actions.iter().any(|a| a.result != "deleted");
                if cleanup_failed {
                    exit_code = EXIT_CLEANUP_INCOMPLETE;
                }
                back_to_pre_state = !cleanup_failed
                    && plan
                        .leftovers
                        .iter()
                        .all(|l| l.decision == Decision::Delete);
                this_attempt.leftovers = plan
                    .leftovers
                    .iter()
                    .filter(|l| l.decision == Decision::Report)
                    .map(|l| leftover_entry(&l.object, &tools.kubectl))
                    .collect();
                attempt.live_after = Some(after);
                attempt.plan = Some(plan);
            }
            Err(error) => {
                this_attempt.primary_errors.push(format!(
                    "could not read the cluster after the rollback, so leftovers are unknown: {error}"
                ));
                // The journal stays open (`captured`) so that --finish can do the reconcile
                // once the cluster answers again.
                report.finish_command =
                    Some(finish_command(invocation, &snapshot.release.namespace));
            }
        }
        report
            .reconciled
            .extend(reconciled_entries(&attempt.actions));
        record.attempts.push(attempt);

        let transient_only = !this_attempt.transient_errors.is_empty()
            && this_attempt.primary_errors.is_empty()
            && this_attempt.lock_errors.is_empty();
        let retry = transient_only
            && back_to_pre_state
            && number <= invocation.own.retries
            && output.forwarded_signals.is_empty();
        if !retry {
            merge_attempt(&mut report, this_attempt);
            report.outcome = Outcome::Failed;
            return finish(invocation, &journal, record, report, exit_code, started);
        }
        let delay = backoff(number);
        report.warnings.push(format!(
            "attempt {number} failed on a transient error ({}); the cluster is back to its \
             pre-state; retrying in {}s",
            this_attempt.transient_errors.join("; "),
            delay.as_secs()
        ));
        if let Err(error) = journal.write(&record) {
            report
                .warnings
                .push(format!("could not update the journal: {error:#}"));
        }
        std::thread::sleep(delay);
    }
}

/// 1s, 2s, 4s … capped at 30s: long enough for an API server to come back, short enough for CI.
fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_secs((1u64 << (attempt - 1).min(5)).min(30))
}

/// The final attempt's errors and leftovers are the report's; earlier attempts already left
/// their warnings and reconcile actions in it.
fn merge_attempt(report: &mut Report, attempt: Report) {
    report.primary_errors.extend(attempt.primary_errors);
    report.cleanup_noise = attempt.cleanup_noise;
    report.transient_errors = attempt.transient_errors;
    report.lock_errors = attempt.lock_errors;
    report.warnings.extend(attempt.warnings);
    report.leftovers = attempt.leftovers;
}

/// A dry-run rollback changes nothing, so there is nothing to verify.
fn should_verify(invocation: &Invocation) -> bool {
    !invocation.own.no_verify
        && !invocation.rollback_args.iter().any(|a| {
            a == "--dry-run"
                || (a.starts_with("--dry-run=") && a != "--dry-run=false" && a != "--dry-run=none")
        })
}

fn verify(snapshot: &Snapshot, kubectl: &Kubectl) -> anyhow::Result<Vec<String>> {
    let documents = manifest::parse_documents(&snapshot.target_manifest)?;
    kubectl.drifted(&documents, &snapshot.release.namespace)
}

fn allowances(invocation: &Invocation) -> anyhow::Result<Allowances> {
    let pending_max_age = preflight::parse_go_duration(&invocation.own.pending_max_age)
        .map_err(|e| anyhow::anyhow!("--pending-max-age: {e}"))?;
    Ok(Allowances {
        takeover: invocation.own.allow_takeover,
        young_pending: invocation.own.allow_pending,
        pending_max_age,
    })
}

fn preflight_findings(
    snapshot: &Snapshot,
    dry_run: anyhow::Result<Vec<String>>,
    removes_orphans: bool,
) -> anyhow::Result<Findings> {
    let invalid = dry_run?;
    let orphans = preflight::orphans(snapshot, &snapshot.last_successful);
    let removed: &[LiveObject] = if removes_orphans { &orphans } else { &[] };
    Ok(Findings {
        invalid,
        foreign: preflight::foreign_objects(snapshot),
        helm3_unlisted: preflight::helm3_unlisted(snapshot, removed),
        orphans,
        pending: preflight::pending(&snapshot.history, jiff::Timestamp::now()),
    })
}

enum Locked {
    Held(PathBuf, journal::ReleaseLock),
    /// Another run holds the lock at this path.
    Busy(PathBuf),
}

/// One run per release at a time: the journal directory doubles as the lock's home.
fn lock(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    namespace: &str,
) -> anyhow::Result<Locked> {
    let dir = match &invocation.own.journal_dir {
        Some(dir) => dir.clone(),
        None => journal::default_dir(env)?,
    };
    Ok(
        match journal::lock_release(&dir, namespace, &invocation.release)? {
            Some(lock) => Locked::Held(dir, lock),
            None => Locked::Busy(dir.join(namespace).join(&invocation.release).join(".lock")),
        },
    )
}

fn busy(invocation: &Invocation, lock: &Path) -> i32 {
    let message = format!(
        "another helm safe-rollback is working on release {} right now (lock {}); nothing was changed",
        invocation.release,
        lock.display()
    );
    if invocation.own.output == OutputFormat::Json {
        let report = Report {
            exit_code: EXIT_BUSY,
            lock_errors: vec![message.clone()],
            ..empty_report(invocation)
        };
        println!("{}", report::render_json(&report));
    }
    eprintln!("Error: {message}");
    EXIT_BUSY
}

fn finish_command(invocation: &Invocation, namespace: &str) -> String {
    format!(
        "helm safe-rollback {} --namespace {namespace} --finish{}",
        invocation.release,
        if invocation.cleanup_on_fail {
            " --cleanup-on-fail"
        } else {
            ""
        }
    )
}

/// `--finish`: complete the journals of runs that died before finishing.
fn finish_interrupted(
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
    let namespace = match &invocation.kube.namespace {
        Some(ns) => ns.clone(),
        None => match tools.kubectl.context_namespace() {
            Ok(ns) => ns.unwrap_or_else(|| "default".into()),
            Err(e) => return not_attempted(invocation, failure("namespace", e), started),
        },
    };
    let (dir, _lock) = match lock(invocation, env, &namespace) {
        Ok(Locked::Held(dir, lock)) => (dir, lock),
        Ok(Locked::Busy(path)) => return busy(invocation, &path),
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
    let history = match tools.helm.history(&invocation.release) {
        Ok(history) => history,
        Err(error) => return not_attempted(invocation, failure("helm history", error), started),
    };
    let mut exit_code = 0;
    let mut report = base_report(invocation, &last.snapshot);
    report.stage = "finish";
    for earlier in &interrupted {
        let snapshot = &earlier.snapshot;
        let newest = history.iter().max_by_key(|r| r.revision);
        // helm got as far as a deployed revision after the one we started from: it succeeded.
        let succeeded =
            newest.is_some_and(|r| r.revision > snapshot.from_revision && r.status == "deployed");
        let mut record = Record {
            schema: 1,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            state: State::Captured,
            pid: earlier.pid,
            helm_args: earlier.helm_args.clone(),
            snapshot: snapshot.clone(),
            preflight: None,
            attempts: Vec::new(),
            actions: Vec::new(),
            outcome: None,
            finished_at: None,
        };
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
                Err(e) => return not_attempted(invocation, failure("kubectl get", e), started),
            };
            let cleanup = (invocation.cleanup_on_fail
                || earlier
                    .helm_args
                    .iter()
                    .any(|a| a.starts_with("--cleanup-on-fail")))
                && !invocation.own.no_reconcile;
            let plan = reconcile::plan(&reconcile::Inputs {
                release: &snapshot.release,
                target: &snapshot.target,
                before: &snapshot.live,
                after: &after,
                cleanup_requested: cleanup,
            });
            let actions = apply(&plan, &tools.kubectl, snapshot);
            if actions.iter().any(|a| a.result != "deleted") {
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

fn open_journal(
    invocation: &Invocation,
    snapshot: &Snapshot,
    dir: &Path,
) -> anyhow::Result<(Journal, Record)> {
    let journal = Journal::create(dir, &snapshot.release.namespace, &snapshot.release.name)?;
    let mut helm_args = invocation.helm_global_args.clone();
    helm_args.extend(invocation.rollback_args.iter().cloned());
    let record = Record {
        schema: 1,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        state: State::Captured,
        pid: std::process::id(),
        helm_args: cli::redact(&helm_args),
        snapshot: snapshot.clone(),
        preflight: None,
        attempts: Vec::new(),
        actions: Vec::new(),
        outcome: None,
        finished_at: None,
    };
    // Written before helm runs: this is the promise that the pre-state survives whatever follows.
    journal.write(&record)?;
    Ok((journal, record))
}

/// Deletes what the plan says may be deleted.
fn apply(plan: &Plan, kubectl: &Kubectl, snapshot: &Snapshot) -> Vec<Action> {
    let to_delete: Vec<&LiveObject> = plan
        .leftovers
        .iter()
        .filter(|l| l.decision == Decision::Delete)
        .map(|l| &l.object)
        .collect();
    delete_and_verify(&to_delete, "delete", kubectl, snapshot)
}

/// Deletes each object, then re-reads them all at once to check each is really gone.
fn delete_and_verify(
    objects: &[&LiveObject],
    action: &str,
    kubectl: &Kubectl,
    snapshot: &Snapshot,
) -> Vec<Action> {
    if objects.is_empty() {
        return Vec::new();
    }
    let mut results: Vec<String> = objects
        .iter()
        .map(|object| match kubectl.delete(object) {
            Ok(()) => "deleted".to_string(),
            Err(error) => format!("failed: {error}"),
        })
        .collect();
    let refs: Vec<_> = objects.iter().map(|o| o.as_ref()).collect();
    match kubectl.identities(&refs, &snapshot.release.namespace) {
        Ok(still_there) => {
            for (object, result) in objects.iter().zip(results.iter_mut()) {
                if still_there.iter().any(|o| o.uid == object.uid) && result == "deleted" {
                    *result = "failed: still present after delete".into();
                }
            }
        }
        Err(error) => {
            for result in results.iter_mut().filter(|r| *r == "deleted") {
                *result = format!("unverified: {error}");
            }
        }
    }
    objects
        .iter()
        .zip(results)
        .map(|(object, result)| Action {
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            uid: object.uid.clone(),
            action: action.into(),
            result,
        })
        .collect()
}

fn exec_status(output: &Output) -> String {
    match (output.code, output.signal) {
        (_, Some(signal)) => format!("was killed by signal {signal}"),
        (Some(code), _) => format!("exited with code {code}"),
        _ => "ended without an exit code".into(),
    }
}

fn helm_exit_code(output: &Output) -> i32 {
    match (output.code, output.signal) {
        (Some(code), _) if code != 0 => code,
        (_, Some(signal)) => 128 + signal,
        _ => 1,
    }
}

fn base_report(invocation: &Invocation, snapshot: &Snapshot) -> Report {
    Report {
        namespace: Some(snapshot.release.namespace.clone()),
        helm_version: Some(snapshot.helm.version.clone()),
        from_revision: Some(snapshot.from_revision),
        to_revision: Some(snapshot.to_revision),
        stage: "rollback",
        ..empty_report(invocation)
    }
}

fn add_findings(report: &mut Report, findings: &[Finding], output: &Output) {
    report.primary_errors = report::errors_of(findings, Class::Primary);
    if report.primary_errors.is_empty() && !output.success() && findings.is_empty() {
        report.primary_errors.push(format!(
            "helm rollback {} and printed no error",
            exec_status(output)
        ));
    }
    if let Some(signal) = output.signal {
        report
            .primary_errors
            .push(format!("helm was killed by signal {signal}"));
    }
    if output.stderr_dropped > 0 {
        report.primary_errors.push(format!(
            "helm printed more than {} MiB on stderr; only the first {} MiB were classified",
            exec::CAPTURE_LIMIT >> 20,
            exec::CAPTURE_LIMIT >> 20
        ));
    }
    for signal in &output.forwarded_signals {
        report.warnings.push(format!(
            "received signal {signal} while helm ran; passed it on to helm and finished the journal"
        ));
    }
    report.cleanup_noise = report::errors_of(findings, Class::CleanupNoise);
    report.transient_errors = report::errors_of(findings, Class::Transient);
    report.lock_errors = report::errors_of(findings, Class::Lock);
    report
        .warnings
        .extend(report::errors_of(findings, Class::Warning));
}

fn leftover_entry(object: &LiveObject, kubectl: &Kubectl) -> LeftoverEntry {
    LeftoverEntry {
        kind: object.kind.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        uid: object.uid.clone(),
        delete_command: reconcile::delete_command(object, &kubectl.connection_args),
    }
}

fn reconciled_entries(actions: &[Action]) -> Vec<ReconciledEntry> {
    actions
        .iter()
        .map(|a| ReconciledEntry {
            kind: a.kind.clone(),
            namespace: a.namespace.clone(),
            name: a.name.clone(),
            uid: a.uid.clone(),
            action: a.action.clone(),
            result: a.result.clone(),
        })
        .collect()
}

/// Completes the journal, prints the report, returns the exit code.
fn finish(
    invocation: &Invocation,
    journal: &Journal,
    mut record: Record,
    mut report: Report,
    exit_code: i32,
    started: Instant,
) -> i32 {
    if report.finish_command.is_none() {
        record.state = State::Completed;
        record.finished_at = Some(jiff::Timestamp::now().to_string());
    }
    record.outcome = Some(report.outcome);
    if let Err(error) = journal.write(&record) {
        report
            .warnings
            .push(format!("could not complete the journal: {error:#}"));
    }
    report.exit_code = exit_code;
    report.duration_ms = started.elapsed().as_millis();
    if invocation.kube.debug {
        eprintln!(
            "safe-rollback: {} helm/kubectl processes started",
            exec::spawned_count()
        );
    }
    emit(invocation, &report);
    exit_code
}

/// Capture (or starting helm) failed: nothing has changed. One clear line, exit 3.
fn not_attempted(invocation: &Invocation, failure: CaptureError, started: Instant) -> i32 {
    let message = format!("{:#}", failure.error);
    let report = Report {
        helm_version: failure.helm.map(|h| h.version),
        exit_code: EXIT_NOT_ATTEMPTED,
        primary_errors: vec![message.clone()],
        duration_ms: started.elapsed().as_millis(),
        ..empty_report(invocation)
    };
    if invocation.own.output == OutputFormat::Json {
        println!("{}", report::render_json(&report));
    }
    eprintln!(
        "Error: {} (at {}; nothing was changed)",
        message.replace('\n', " "),
        failure.step
    );
    EXIT_NOT_ATTEMPTED
}

fn empty_report(invocation: &Invocation) -> Report {
    Report {
        release: invocation.release.clone(),
        namespace: invocation.kube.namespace.clone(),
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
        reconciled: Vec::new(),
        refusal_reasons: Vec::new(),
        orphans: Vec::new(),
        plan: None,
        drifted: Vec::new(),
        finish_command: None,
        attempts: 0,
        journal: None,
        duration_ms: 0,
    }
}

fn emit(invocation: &Invocation, report: &Report) {
    match invocation.own.output {
        OutputFormat::Json => println!("{}", report::render_json(report)),
        OutputFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            colored::control::set_override(color);
            print!("{}", report::render_text(report, invocation.kube.debug));
        }
    }
}
