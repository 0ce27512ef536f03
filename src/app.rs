//! The pipeline, in order: capture → run → classify → reconcile → report. Nothing else.

use std::io::IsTerminal;
use std::time::Instant;

use crate::capture::{self, CaptureError, Snapshot};
use crate::classify::{self, Class, Finding};
use crate::cli::{self, Invocation, OutputFormat};
use crate::exec::{self, Echo, Output};
use crate::helm::Helm;
use crate::journal::{self, Action, Journal, Record, RollbackRecord, State};
use crate::kubectl::Kubectl;
use crate::reconcile::{self, Decision, Plan};
use crate::report::{self, LeftoverEntry, Outcome, ReconciledEntry, Report};

/// Exit codes beyond helm's own; the README's table documents them.
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_ATTEMPTED: i32 = 3;
pub const EXIT_CLEANUP_INCOMPLETE: i32 = 4;

pub fn run(invocation: &Invocation, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    let started = Instant::now();
    let debug = invocation.kube.debug;
    let helm = Helm {
        bin: invocation.own.helm.clone(),
        global_args: invocation.helm_global_args.clone(),
    };
    let kubectl = Kubectl {
        bin: invocation.own.kubectl.clone(),
        connection_args: invocation.kube.kubectl_args(),
    };

    // 1. Capture.
    let request = capture::Request {
        release: &invocation.release,
        namespace: invocation.kube.namespace.as_deref(),
        revision: invocation.revision,
    };
    let snapshot = match capture::capture(&request, &helm, &kubectl) {
        Ok(snapshot) => snapshot,
        Err(failure) => return not_attempted(invocation, failure, started),
    };
    let journal = match open_journal(invocation, &snapshot, env) {
        Ok(journal) => journal,
        Err(error) => {
            let failure = CaptureError {
                step: "journal",
                error,
                helm: Some(snapshot.helm.clone()),
            };
            return not_attempted(invocation, failure, started);
        }
    };
    if debug {
        eprintln!(
            "safe-rollback: captured {} current and {} target objects ({} live); journal {}",
            snapshot.current.len(),
            snapshot.target.len(),
            snapshot.live.len(),
            journal.0.path.display()
        );
    }
    let (journal, mut record) = journal;

    // 2. Run the native rollback.
    let echo = match invocation.own.output {
        OutputFormat::Text => Echo::Stdout,
        // stdout must carry our JSON document alone; helm's own output still reaches the user.
        OutputFormat::Json => Echo::Stderr,
    };
    let rollback_started = Instant::now();
    let output = match helm.rollback(
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

    // 3. Classify.
    let findings = classify::classify(&output.stderr);
    let succeeded = output.success();
    record.rollback = Some(RollbackRecord {
        exit_code: output.code,
        signal: output.signal,
        duration_ms: rollback_started.elapsed().as_millis(),
        findings: findings.clone(),
    });

    // 4. Reconcile: only a failed rollback can have left objects behind.
    let mut reconcile_failed = false;
    let mut post_state_error = None;
    if !succeeded {
        match kubectl.identities(&snapshot.target, &snapshot.release.namespace) {
            Ok(after) => {
                let plan = reconcile::plan(&reconcile::Inputs {
                    release: &snapshot.release,
                    target: &snapshot.target,
                    before: &snapshot.live,
                    after: &after,
                    cleanup_requested: invocation.cleanup_on_fail && !invocation.own.no_reconcile,
                });
                record.actions = apply(&plan, &kubectl, &snapshot);
                reconcile_failed = record.actions.iter().any(|a| a.result != "deleted");
                record.live_after = Some(after);
                record.plan = Some(plan);
            }
            Err(error) => post_state_error = Some(error.to_string()),
        }
    }

    // 5. Report.
    let exit_code = if succeeded {
        0
    } else if reconcile_failed {
        EXIT_CLEANUP_INCOMPLETE
    } else {
        helm_exit_code(&output)
    };
    record.state = State::Completed;
    record.finished_at = Some(jiff::Timestamp::now().to_string());
    let journal_error = journal.write(&record).err();
    let mut report = build_report(
        invocation, &snapshot, &findings, &output, &record, exit_code, &kubectl,
    );
    report.journal = Some(journal.path.display().to_string());
    report.duration_ms = started.elapsed().as_millis();
    if let Some(error) = post_state_error {
        report.primary_errors.push(format!(
            "could not read the cluster after the rollback, so leftovers are unknown: {error}"
        ));
    }
    if let Some(error) = journal_error {
        report
            .warnings
            .push(format!("could not complete the journal: {error:#}"));
    }
    if debug {
        eprintln!(
            "safe-rollback: {} helm/kubectl processes started",
            exec::spawned_count()
        );
    }
    emit(invocation, &report);
    exit_code
}

type OpenJournal = (Journal, Record);

fn open_journal(
    invocation: &Invocation,
    snapshot: &Snapshot,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<OpenJournal> {
    let dir = match &invocation.own.journal_dir {
        Some(dir) => dir.clone(),
        None => journal::default_dir(env)?,
    };
    let journal = Journal::create(&dir, &snapshot.release.namespace, &snapshot.release.name)?;
    let mut helm_args = invocation.helm_global_args.clone();
    helm_args.extend(invocation.rollback_args.iter().cloned());
    let record = Record {
        schema: 1,
        tool_version: env!("CARGO_PKG_VERSION"),
        state: State::Captured,
        pid: std::process::id(),
        helm_args: cli::redact(&helm_args),
        snapshot: snapshot.clone(),
        rollback: None,
        live_after: None,
        plan: None,
        actions: Vec::new(),
        finished_at: None,
    };
    // Written before helm runs: this is the promise that the pre-state survives whatever follows.
    journal.write(&record)?;
    Ok((journal, record))
}

/// Deletes what the plan says may be deleted, then checks each is really gone.
fn apply(plan: &Plan, kubectl: &Kubectl, snapshot: &Snapshot) -> Vec<Action> {
    let to_delete: Vec<_> = plan
        .leftovers
        .iter()
        .filter(|l| l.decision == Decision::Delete)
        .map(|l| &l.object)
        .collect();
    if to_delete.is_empty() {
        return Vec::new();
    }
    let mut results: Vec<String> = to_delete
        .iter()
        .map(|object| match kubectl.delete(object) {
            Ok(()) => "deleted".to_string(),
            Err(error) => format!("failed: {error}"),
        })
        .collect();
    let refs: Vec<_> = to_delete.iter().map(|o| o.as_ref()).collect();
    match kubectl.identities(&refs, &snapshot.release.namespace) {
        Ok(still_there) => {
            for (object, result) in to_delete.iter().zip(results.iter_mut()) {
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
    to_delete
        .into_iter()
        .zip(results)
        .map(|(object, result)| Action {
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            uid: object.uid.clone(),
            action: "delete".into(),
            result,
        })
        .collect()
}

fn helm_exit_code(output: &Output) -> i32 {
    match (output.code, output.signal) {
        (Some(code), _) if code != 0 => code,
        (_, Some(signal)) => 128 + signal,
        _ => 1,
    }
}

fn build_report(
    invocation: &Invocation,
    snapshot: &Snapshot,
    findings: &[Finding],
    output: &Output,
    record: &Record,
    exit_code: i32,
    kubectl: &Kubectl,
) -> Report {
    let mut primary_errors = report::errors_of(findings, Class::Primary);
    if output.signal.is_some() {
        primary_errors.push(format!("helm {}", exec_status(output)));
    }
    if output.stderr_dropped > 0 {
        primary_errors.push(format!(
            "helm printed more than {} MiB on stderr; only the first {} MiB were classified",
            exec::CAPTURE_LIMIT / (1024 * 1024),
            exec::CAPTURE_LIMIT / (1024 * 1024)
        ));
    }
    let leftovers = record
        .plan
        .iter()
        .flat_map(|plan| plan.leftovers.iter())
        .filter(|l| l.decision == Decision::Report)
        .map(|l| LeftoverEntry {
            kind: l.object.kind.clone(),
            namespace: l.object.namespace.clone(),
            name: l.object.name.clone(),
            uid: l.object.uid.clone(),
            delete_command: reconcile::delete_command(&l.object, &kubectl.connection_args),
        })
        .collect();
    let reconciled = record
        .actions
        .iter()
        .map(|a| ReconciledEntry {
            kind: a.kind.clone(),
            namespace: a.namespace.clone(),
            name: a.name.clone(),
            uid: a.uid.clone(),
            action: a.action.clone(),
            result: a.result.clone(),
        })
        .collect();
    Report {
        release: invocation.release.clone(),
        namespace: Some(snapshot.release.namespace.clone()),
        helm_version: Some(snapshot.helm.version.clone()),
        from_revision: Some(snapshot.from_revision),
        to_revision: Some(snapshot.to_revision),
        outcome: if output.success() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        },
        stage: "rollback",
        exit_code,
        primary_errors,
        cleanup_noise: report::errors_of(findings, Class::CleanupNoise),
        transient_errors: report::errors_of(findings, Class::Transient),
        lock_errors: report::errors_of(findings, Class::Lock),
        warnings: report::errors_of(findings, Class::Warning),
        leftovers,
        reconciled,
        journal: None,
        duration_ms: 0,
    }
}

fn exec_status(output: &Output) -> String {
    match output.signal {
        Some(signal) => format!("was killed by signal {signal}"),
        None => format!("exited with code {}", output.code.unwrap_or(-1)),
    }
}

/// Capture (or starting helm) failed: nothing has changed. One clear line, exit 3.
fn not_attempted(invocation: &Invocation, failure: CaptureError, started: Instant) -> i32 {
    let message = format!("{:#}", failure.error);
    let report = Report {
        release: invocation.release.clone(),
        namespace: invocation.kube.namespace.clone(),
        helm_version: failure.helm.map(|h| h.version),
        from_revision: None,
        to_revision: None,
        outcome: Outcome::Failed,
        stage: "capture",
        exit_code: EXIT_NOT_ATTEMPTED,
        primary_errors: vec![message.clone()],
        cleanup_noise: Vec::new(),
        transient_errors: Vec::new(),
        lock_errors: Vec::new(),
        warnings: Vec::new(),
        leftovers: Vec::new(),
        reconciled: Vec::new(),
        journal: None,
        duration_ms: started.elapsed().as_millis(),
    };
    match invocation.own.output {
        OutputFormat::Json => println!("{}", report::render_json(&report)),
        OutputFormat::Text => {}
    }
    eprintln!(
        "Error: {} (at {}; nothing was changed)",
        message.replace('\n', " "),
        failure.step
    );
    EXIT_NOT_ATTEMPTED
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
