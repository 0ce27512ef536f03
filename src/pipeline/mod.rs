//! The pipeline, in order: capture → preflight → run → classify → reconcile → report (`--finish`
//! is in `resume`).
//!
//! Each step is a call into its module; this file only sequences them, keeps the journal up to
//! date between them, and maps the result to an exit code.

pub mod capture;
pub mod exclusion;
pub mod finish;

use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

use self::capture::{CaptureError, Snapshot};
use self::exclusion::{busy, local_holder, lock, take_lease, Locked};
use self::finish as resume;
use crate::cli::{self, Invocation, OutputFormat};
use crate::domain::classify::{self, Class, Finding};
use crate::domain::concurrency;
use crate::domain::model::LiveObject;
use crate::domain::plan::{self as reconcile, Decision, Leftover, Plan};
use crate::domain::preflight::{self, Allowances, Findings};
use crate::domain::report::{self, LeftoverEntry, Outcome, ReconciledEntry, Report};
use crate::domain::verify;
use crate::io::delete;
use crate::io::exec::{self, Echo, Output};
use crate::io::helm::Helm;
use crate::io::journal::{self, Action, Attempt, Journal, Record, RollbackRecord, State};
use crate::io::kubectl::{self, Kubectl};
use crate::io::lease::Lease;
use crate::io::version_cache;

/// Exit codes beyond helm's own; the README's table documents them.
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_ATTEMPTED: i32 = 3;
pub const EXIT_CLEANUP_INCOMPLETE: i32 = 4;
pub const EXIT_REFUSED: i32 = 5;
pub const EXIT_BUSY: i32 = 6;
pub const EXIT_DRIFTED: i32 = 7;

pub struct Tools {
    pub(crate) helm: Helm,
    pub(crate) kubectl: Kubectl,
}

impl Tools {
    fn new(invocation: &Invocation, env: &dyn Fn(&str) -> Option<String>) -> Tools {
        Tools {
            helm: Helm {
                bin: invocation.own.helm.clone(),
                global_args: invocation.helm_global_args.clone(),
                version_cache: version_cache::default_dir(env),
            },
            kubectl: Kubectl::new(
                invocation.own.kubectl.clone(),
                invocation.kube.kubectl_args(),
            ),
        }
    }
}

pub fn run(invocation: &Invocation, env: &dyn Fn(&str) -> Option<String>) -> i32 {
    let started = Instant::now();
    exec::trace_children(invocation.kube.debug);
    if let Err(error) = exec::handle_signals() {
        eprintln!("Warning: cannot handle signals ({error:#}); ^C will stop this run at once");
    }
    let tools = Tools::new(invocation, env);
    let allowances = match allowances(invocation) {
        Ok(allowances) => allowances,
        Err(error) => {
            eprintln!("Error: {error}");
            return EXIT_USAGE;
        }
    };
    if let Some(missing) = missing_kubeconfig(&invocation.kube, env) {
        let error = anyhow::anyhow!("kubeconfig {missing}: no such file");
        let failure = CaptureError {
            step: "kubeconfig",
            error,
            helm: None,
        };
        return not_attempted(invocation, failure, started);
    }
    // The proxy starts now, on the main thread, and is listening by the time capture needs it.
    tools.kubectl.connect();
    if invocation.own.finish {
        return resume::finish_interrupted(invocation, env, &tools, started);
    }
    let (mut session, dry_run) = match Session::start(invocation, env, &tools, started) {
        Ok(started) => started,
        Err(exit_code) => return exit_code,
    };
    if let Some(exit_code) = session.preflight(&allowances, dry_run) {
        return exit_code;
    }
    session.roll_back()
}

/// One run on one release, from the journaled pre-state to the report. Holding the release lock
/// for as long as it lives.
struct Session<'a> {
    invocation: &'a Invocation,
    tools: &'a Tools,
    started: Instant,
    snapshot: Snapshot,
    journal: Journal,
    record: Record,
    report: Report,
    /// The revisions our newest completed run created, and its journal (see preflight's
    /// pending check).
    left_by_us: Option<(std::ops::RangeInclusive<u64>, String)>,
    /// `None` when Leases cannot be used here (a warning said so).
    lease: Option<Lease>,
    _lock: journal::ReleaseLock,
}

type DryRun = Option<anyhow::Result<kubectl::DryRun>>;

impl<'a> Session<'a> {
    /// Step 1: capture, take the release lock, and journal the pre-state before anything
    /// changes. `Err` carries the exit code of a run that ended here (it has reported).
    fn start(
        invocation: &'a Invocation,
        env: &dyn Fn(&str) -> Option<String>,
        tools: &'a Tools,
        started: Instant,
    ) -> Result<(Session<'a>, DryRun), i32> {
        let request = capture::Request {
            release: &invocation.release,
            namespace: invocation.kube.namespace.as_deref(),
            revision: invocation.revision,
            server_side: invocation.rollback.server_side.as_deref(),
            with_dry_run: !invocation.own.no_preflight,
        };
        let captured = capture::capture(&request, &tools.helm, &tools.kubectl)
            .map_err(|failure| not_attempted(invocation, failure, started))?;
        let snapshot = captured.snapshot;
        let journaling = Instant::now();
        let journal_failure = |error| CaptureError {
            step: "journal",
            error,
            helm: Some(snapshot.helm.clone()),
        };
        let (dir, lock) = match lock(invocation, env, &snapshot.release.namespace) {
            Ok(Locked::Held(dir, lock)) => (dir, lock),
            Ok(Locked::Busy(path)) => return Err(busy(invocation, &local_holder(&path))),
            Err(error) => return Err(not_attempted(invocation, journal_failure(error), started)),
        };
        let (lease, lease_warnings) =
            take_lease(invocation, env, tools, &snapshot.release.namespace)?;
        let interrupted =
            journal::unfinished(&dir, &snapshot.release.namespace, &snapshot.release.name)
                .unwrap_or_default();
        let left_by_us =
            journal::newest_completed(&dir, &snapshot.release.namespace, &snapshot.release.name)
                .map(|run| (run.created_revisions(), run.path.display().to_string()));
        let (journal, record) = open_journal(invocation, &snapshot, &dir)
            .map_err(|error| not_attempted(invocation, journal_failure(error), started))?;
        exec::trace_step("locking and journaling the pre-state", journaling);
        if invocation.kube.debug {
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
        report.warnings.extend(lease_warnings);
        for earlier in &interrupted {
            report.warnings.push(format!(
                "an earlier run (pid {}) did not finish: its journal is {}; run `{}` to reconcile what it left",
                earlier.pid,
                earlier.path.display(),
                finish_command(invocation, &snapshot.release.namespace)
            ));
        }
        let session = Session {
            invocation,
            tools,
            started,
            snapshot,
            journal,
            record,
            report,
            left_by_us,
            lease,
            _lock: lock,
        };
        Ok((session, captured.dry_run))
    }

    /// Step 2: decide whether helm runs at all. `Some(exit code)` when the run ends here.
    fn preflight(&mut self, allowances: &Allowances, dry_run: DryRun) -> Option<i32> {
        let invocation = self.invocation;
        if invocation.own.no_preflight {
            if !invocation.own.plan {
                return None;
            }
            self.report.plan = Some(preflight::forecast(&self.snapshot, &Findings::default()));
            self.report.outcome = Outcome::Planned;
            return Some(self.finish(0));
        }
        let removes_orphans = invocation.rollback.cleanup_on_fail && !invocation.own.no_reconcile;
        let deciding = Instant::now();
        let findings = preflight_findings(
            &self.snapshot,
            dry_run,
            removes_orphans,
            self.left_by_us.clone(),
        );
        self.record.preflight = Some(findings.clone());
        self.report.orphans = findings
            .orphans
            .iter()
            .map(|o| leftover_entry(o, &self.tools.kubectl))
            .collect();
        let refusal = preflight::verdict(&findings, allowances, &self.snapshot.release.namespace);
        exec::trace_step("preflight decisions", deciding);
        if let Some(refusal) = &refusal {
            self.report.refusal_reasons = refusal.reasons.clone();
        }
        if !allowances.strict {
            for reason in &findings.unchecked {
                self.report
                    .warnings
                    .push(format!("a preflight check could not run: {reason}"));
            }
        }
        if invocation.own.plan {
            self.report.plan = Some(preflight::forecast(&self.snapshot, &findings));
            self.report.outcome = Outcome::Planned;
            return Some(self.finish(if refusal.is_some() { EXIT_REFUSED } else { 0 }));
        }
        if refusal.is_some() {
            self.report.outcome = Outcome::Refused;
            return Some(self.finish(EXIT_REFUSED));
        }
        if let Some(pending) = &findings.pending {
            self.report.warnings.push(match &pending.left_by {
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
            });
        }
        if removes_orphans && !findings.orphans.is_empty() {
            return self.remove_orphans(&findings.orphans);
        }
        None
    }

    /// Removes earlier attempts' leftovers so helm can create them cleanly; from here on the
    /// pre-state is the cluster without them. Only if nobody else wrote the release since we
    /// captured it (`concurrency`).
    fn remove_orphans(&mut self, orphans: &[LiveObject]) -> Option<i32> {
        let mut plan = Plan {
            leftovers: orphans
                .iter()
                .map(|o| Leftover {
                    object: o.clone(),
                    decision: Decision::Delete,
                })
                .collect(),
            spared: Vec::new(),
        };
        concurrency::protect(
            &self.tools.helm,
            &self.snapshot,
            0,
            self.lease_lost(),
            &mut plan,
            &mut self.report,
        );
        let actions = apply(
            &plan,
            "delete-orphan",
            &self.tools.kubectl,
            &self.snapshot,
            delete::wait_bound(&self.invocation.rollback),
        );
        let failed = actions.len() < orphans.len() || actions.iter().any(|a| !a.result.complete());
        let removed: Vec<&str> = actions
            .iter()
            .filter(|a| a.result.complete())
            .map(|a| a.uid.as_str())
            .collect();
        self.snapshot
            .live
            .retain(|l| !removed.contains(&l.uid.as_str()));
        self.record.snapshot.live = self.snapshot.live.clone();
        self.report.reconciled.extend(reconciled_entries(&actions));
        self.report
            .orphans
            .retain(|o| !removed.contains(&o.uid.as_str()));
        self.record.actions.extend(actions);
        if failed {
            self.report.primary_errors.push(
                "could not remove the leftovers of an earlier attempt; helm was not run".into(),
            );
            self.report.outcome = Outcome::Failed;
            return Some(self.finish(EXIT_CLEANUP_INCOMPLETE));
        }
        self.write_journal();
        None
    }

    fn lease_lost(&self) -> bool {
        self.lease.as_ref().is_some_and(Lease::lost)
    }

    /// Steps 3–5: run the native rollback, classify, reconcile; again while the failure was
    /// transient and the cluster is back to its pre-state, if the user asked for retries.
    fn roll_back(mut self) -> i32 {
        let mut number = 0;
        loop {
            number += 1;
            if let Some(signal) = exec::interrupted() {
                return self.stop_before_helm(signal);
            }
            let (output, mut attempt_report) = match self.attempt(number) {
                Ok(attempt) => attempt,
                Err(exit_code) => return exit_code,
            };
            if output.success() {
                merge_attempt(&mut self.report, attempt_report);
                return self.verify_success();
            }
            let back_to_pre_state = self.reconcile_attempt(&mut attempt_report);
            let transient_only = !attempt_report.transient_errors.is_empty()
                && attempt_report.primary_errors.is_empty()
                && attempt_report.lock_errors.is_empty();
            let retry = transient_only
                && back_to_pre_state
                && number <= self.invocation.own.retries
                && output.forwarded_signals.is_empty();
            if !retry {
                let cleanup_failed = self
                    .record
                    .attempts
                    .last()
                    .is_some_and(|a| a.actions.iter().any(|a| !a.result.complete()));
                merge_attempt(&mut self.report, attempt_report);
                self.report.outcome = Outcome::Failed;
                let exit_code = if cleanup_failed {
                    EXIT_CLEANUP_INCOMPLETE
                } else {
                    helm_exit_code(&output)
                };
                return self.finish(exit_code);
            }
            let delay = backoff(number);
            self.report.warnings.push(format!(
                "attempt {number} failed on a transient error ({}); the cluster is back to its \
                 pre-state; retrying in {}s",
                attempt_report.transient_errors.join("; "),
                delay.as_secs()
            ));
            self.write_journal();
            std::thread::sleep(delay);
        }
    }

    /// A signal arrived before (another) helm run: stop without running it.
    fn stop_before_helm(&mut self, signal: i32) -> i32 {
        self.report.outcome = Outcome::Failed;
        self.report.primary_errors.push(format!(
            "interrupted by signal {signal} before helm rollback ran{}",
            if self.report.attempts == 0 {
                ": helm changed nothing"
            } else {
                " again"
            }
        ));
        self.finish(128 + signal)
    }

    /// Runs helm once and classifies what it printed; the attempt goes into the journal record.
    fn attempt(&mut self, number: u32) -> Result<(Output, Report), i32> {
        let echo = match self.invocation.own.output {
            OutputFormat::Text => Echo::Stdout,
            // stdout must carry our JSON document alone; helm's own output still reaches the user.
            OutputFormat::Json => Echo::Stderr,
        };
        let rollback_started = Instant::now();
        let output = self
            .tools
            .helm
            .rollback(
                &self.snapshot.release.name,
                self.snapshot.to_revision,
                &self.invocation.rollback_args,
                echo,
            )
            .map_err(|error| {
                let failure = CaptureError {
                    step: "helm rollback",
                    error,
                    helm: Some(self.snapshot.helm.clone()),
                };
                not_attempted(self.invocation, failure, self.started)
            })?;
        let findings = classify::classify(&output.stderr);
        self.record.attempts.push(Attempt {
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
        });
        self.report.attempts = number;
        let mut attempt_report = base_report(self.invocation, &self.snapshot);
        add_findings(&mut attempt_report, &findings, &output);
        Ok((output, attempt_report))
    }

    /// After a failed attempt: find what it left and remove what we may. Returns whether the
    /// cluster is back to its pre-state (the condition for a retry).
    fn reconcile_attempt(&mut self, attempt_report: &mut Report) -> bool {
        let snapshot = &self.snapshot;
        let after = match self
            .tools
            .kubectl
            .identities(&snapshot.target, &snapshot.release.namespace)
        {
            Ok(after) => after,
            Err(error) => {
                attempt_report.primary_errors.push(format!(
                    "could not read the cluster after the rollback, so leftovers are unknown: {error}"
                ));
                // The journal stays open (`captured`) so that --finish can do the reconcile
                // once the cluster answers again.
                self.report.finish_command =
                    Some(finish_command(self.invocation, &snapshot.release.namespace));
                return false;
            }
        };
        let mut plan = reconcile::plan(&reconcile::Inputs {
            release: &snapshot.release,
            target: &snapshot.target,
            before: &snapshot.live,
            after: &after,
            cleanup_requested: self.invocation.rollback.cleanup_on_fail
                && !self.invocation.own.no_reconcile,
        });
        let lease_lost = self.lease.as_ref().is_some_and(Lease::lost);
        concurrency::protect(
            &self.tools.helm,
            snapshot,
            self.record.attempts.len(),
            lease_lost,
            &mut plan,
            attempt_report,
        );
        let attempt = self.record.attempts.last_mut().expect("an attempt ran");
        attempt.actions = apply(
            &plan,
            "delete",
            &self.tools.kubectl,
            snapshot,
            delete::wait_bound(&self.invocation.rollback),
        );
        let cleanup_failed = attempt.actions.iter().any(|a| !a.result.complete());
        let back_to_pre_state = !cleanup_failed
            && plan
                .leftovers
                .iter()
                .all(|l| l.decision == Decision::Delete);
        attempt_report.leftovers = plan
            .leftovers
            .iter()
            .filter(|l| l.decision == Decision::Report)
            .map(|l| leftover_entry(&l.object, &self.tools.kubectl))
            .collect();
        self.report
            .reconciled
            .extend(reconciled_entries(&attempt.actions));
        attempt.live_after = Some(after);
        attempt.plan = Some(plan);
        back_to_pre_state
    }

    /// helm says it succeeded: check the live objects match the target revision.
    fn verify_success(&mut self) -> i32 {
        self.report.outcome = Outcome::Succeeded;
        if !should_verify(self.invocation) {
            self.report.verified = Some(false);
            self.report.verify_error = Some(if self.invocation.rollback.dry_run {
                "helm ran a dry run: nothing changed to verify".into()
            } else {
                "verification is off (--no-verify)".into()
            });
            return self.finish(0);
        }
        let verifying = Instant::now();
        let verdict = verify_live(&self.snapshot, &self.tools.kubectl);
        exec::trace_step("verifying the live objects", verifying);
        let mut exit_code = 0;
        match verdict {
            Ok((drifted, unchecked)) => {
                self.report.verified = Some(unchecked.is_empty());
                if !unchecked.is_empty() {
                    self.report.verify_error = Some(format!(
                        "the API server gave no verdict on {}",
                        unchecked.join("; ")
                    ));
                }
                if !drifted.is_empty() {
                    self.report.drifted = drifted;
                    self.report.outcome = Outcome::Drifted;
                    exit_code = EXIT_DRIFTED;
                }
            }
            Err(error) => {
                self.report.verified = Some(false);
                self.report.verify_error =
                    Some(format!("could not verify the live objects: {error:#}"));
            }
        }
        self.finish(exit_code)
    }

    fn write_journal(&mut self) {
        if let Err(error) = self.journal.write(&self.record) {
            self.report
                .warnings
                .push(format!("could not update the journal: {error:#}"));
        }
    }

    /// Completes the journal, prints the report, returns the exit code.
    fn finish(&mut self, exit_code: i32) -> i32 {
        let finishing = Instant::now();
        // Left open when the reconcile could not be done, for --finish.
        if self.report.finish_command.is_none() {
            self.record.state = State::Completed;
            self.record.finished_at = Some(jiff::Timestamp::now().to_string());
        }
        self.record.outcome = Some(self.report.outcome);
        if let Err(error) = self.journal.write(&self.record) {
            self.report
                .warnings
                .push(format!("could not complete the journal: {error:#}"));
        }
        self.report.exit_code = exit_code;
        exec::trace_step("completing the journal", finishing);
        self.report.duration_ms = self.started.elapsed().as_millis();
        if self.invocation.kube.debug {
            eprintln!(
                "safe-rollback: {} helm/kubectl processes started",
                exec::spawned_count()
            );
        }
        emit(self.invocation, &self.report);
        exit_code
    }
}

/// A kubeconfig named by `--kubeconfig` that does not exist: helm refuses it, but a plugin gets
/// the flag as `KUBECONFIG`, where kubectl and helm silently skip a missing file and go on to
/// `localhost:8080`. One file named, and missing, is a mistake either way.
fn missing_kubeconfig(
    kube: &crate::cli::KubeSettings,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let named = kube.kubeconfig.clone().or_else(|| env("KUBECONFIG"))?;
    let single = !named.is_empty() && !named.contains(':');
    (single && !Path::new(&named).exists()).then_some(named)
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
    report
        .concurrent_revisions
        .extend(attempt.concurrent_revisions);
}

/// A dry-run rollback changes nothing, so there is nothing to verify.
fn should_verify(invocation: &Invocation) -> bool {
    !invocation.own.no_verify && !invocation.rollback.dry_run
}

/// Compares the live objects with what writing the target revision onto them would produce
/// (a dry run of helm's own write, after the rollback): the drifted objects, and the objects
/// the server gave no verdict on.
fn verify_live(
    snapshot: &Snapshot,
    kubectl: &Kubectl,
) -> anyhow::Result<(Vec<verify::Drift>, Vec<String>)> {
    let namespace = &snapshot.release.namespace;
    let rendition = kubectl.dry_run(
        &snapshot.target_documents,
        &snapshot.current_documents,
        namespace,
        snapshot.write_method,
    )?;
    let live = kubectl.objects(&snapshot.target, namespace)?;
    let drifted = verify::drifted(&verify::Inputs {
        targets: &snapshot.target_documents,
        originals: &snapshot.current_documents,
        rendered: &rendition.objects,
        rejected: &rendition.rejections,
        live: &live,
        release_namespace: namespace,
    });
    Ok((drifted, rendition.unchecked))
}

fn allowances(invocation: &Invocation) -> anyhow::Result<Allowances> {
    let pending_max_age = crate::cli::helm_flags::go_duration(&invocation.own.pending_max_age)
        .map_err(|e| anyhow::anyhow!("--pending-max-age: {e}"))?;
    Ok(Allowances {
        strict: invocation.own.strict,
        takeover: invocation.own.allow_takeover,
        young_pending: invocation.own.allow_pending,
        pending_max_age,
    })
}

/// What preflight found. A dry run that could not be made at all is one check that did not run:
/// a warning, never a reason to stop what native helm would do.
fn preflight_findings(
    snapshot: &Snapshot,
    dry_run: DryRun,
    removes_orphans: bool,
    left_by_us: Option<(std::ops::RangeInclusive<u64>, String)>,
) -> Findings {
    let (invalid, unchecked) = match dry_run {
        None => (Vec::new(), Vec::new()),
        Some(Ok(dry_run)) => (
            dry_run.rejections.into_iter().map(|(_, m)| m).collect(),
            dry_run.unchecked,
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
        orphans,
        pending: preflight::pending(&snapshot.history, jiff::Timestamp::now(), left_by_us),
    }
}

/// The command that completes this run from its journal: the same release, namespace, cluster
/// (context and kubeconfig, never a credential) and journal directory.
fn finish_command(invocation: &Invocation, namespace: &str) -> String {
    let mut words = vec![
        "helm safe-rollback".to_string(),
        invocation.release.clone(),
        "--namespace".into(),
        namespace.into(),
    ];
    let kube = &invocation.kube;
    for (flag, value) in [
        ("--kube-context", &kube.kube_context),
        ("--kubeconfig", &kube.kubeconfig),
    ] {
        if let Some(value) = value {
            words.extend([flag.to_string(), shell_word(value)]);
        }
    }
    if let Some(dir) = &invocation.own.journal_dir {
        words.extend([
            "--journal-dir".into(),
            shell_word(&dir.display().to_string()),
        ]);
    }
    words.push("--finish".into());
    if invocation.rollback.cleanup_on_fail {
        words.push("--cleanup-on-fail".into());
    }
    words.join(" ")
}

/// A value as one shell word: as is when it is plainly safe, else single-quoted.
pub(crate) fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}

fn open_journal(
    invocation: &Invocation,
    snapshot: &Snapshot,
    dir: &Path,
) -> anyhow::Result<(Journal, Record)> {
    let journal = Journal::create(dir, &snapshot.release.namespace, &snapshot.release.name)?;
    let mut helm_args = invocation.helm_global_args.clone();
    helm_args.extend(invocation.rollback_args.iter().cloned());
    let record = Record::captured(
        std::process::id(),
        cli::redact(&helm_args),
        snapshot.clone(),
    );
    // Written before helm runs: this is the promise that the pre-state survives whatever follows.
    // From here on a signal no longer kills us: the journal must be completed.
    exec::survive_signals();
    journal.write(&record)?;
    Ok((journal, record))
}

/// Deletes what the plan says may be deleted (`action` names why, in the journal and report),
/// waiting up to `wait` for it to go.
pub(crate) fn apply(
    plan: &Plan,
    action: &str,
    kubectl: &Kubectl,
    snapshot: &Snapshot,
    wait: std::time::Duration,
) -> Vec<Action> {
    let to_delete: Vec<&LiveObject> = plan
        .leftovers
        .iter()
        .filter(|l| l.decision == Decision::Delete)
        .map(|l| &l.object)
        .collect();
    delete::delete_all(
        &to_delete,
        action,
        kubectl,
        &snapshot.release.namespace,
        wait,
    )
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

pub(crate) fn base_report(invocation: &Invocation, snapshot: &Snapshot) -> Report {
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

pub(crate) fn leftover_entry(object: &LiveObject, kubectl: &Kubectl) -> LeftoverEntry {
    LeftoverEntry {
        kind: object.kind.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        uid: object.uid.clone(),
        delete_command: reconcile::delete_command(object, &kubectl.connection_args),
    }
}

pub(crate) fn reconciled_entries(actions: &[Action]) -> Vec<ReconciledEntry> {
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
/// Capture (or starting helm) failed: nothing has changed. One clear line, exit 3.
pub(crate) fn not_attempted(
    invocation: &Invocation,
    failure: CaptureError,
    started: Instant,
) -> i32 {
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

pub(crate) fn empty_report(invocation: &Invocation) -> Report {
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
        verified: None,
        verify_error: None,
        concurrent_revisions: Vec::new(),
        finish_command: None,
        attempts: 0,
        journal: None,
        duration_ms: 0,
    }
}

pub(crate) fn emit(invocation: &Invocation, report: &Report) {
    match invocation.own.output {
        OutputFormat::Json => println!("{}", report::render_json(report)),
        OutputFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            colored::control::set_override(color);
            print!("{}", report::render_text(report, invocation.kube.debug));
        }
    }
}
