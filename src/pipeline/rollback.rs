//! Steps 3–5: run the native rollback, classify what helm printed, reconcile what a failure
//! left; again while the failure was transient and the cluster is back to its pre-state, if the
//! user asked for retries.

use std::time::{Duration, Instant};

use crate::domain::classify::{self, Class, Finding};
use crate::domain::record::{Attempt, RollbackRecord};
use crate::domain::report::errors_of;
use crate::domain::verdict::Halt;
use crate::io::exec::{self, Echo, Output};
use crate::io::signals;
use crate::pipeline::capture::{CaptureError, Step};
use crate::pipeline::ending::Ending;
use crate::pipeline::session::Session;

impl Session<'_> {
    pub fn roll_back(mut self) -> Ending {
        let mut number = 0;
        loop {
            number += 1;
            if let Some(signal) = signals::interrupted() {
                return self.stop_before_helm(signal);
            }
            let output = match self.attempt(number) {
                Ok(output) => output,
                Err(ending) => return ending,
            };
            if output.success() {
                return self.verify_success();
            }
            self.explain_wait();
            let back_to_pre_state = self.reconcile_attempt();
            let retry = back_to_pre_state
                && self.transient_only()
                && number <= self.invocation.own.retries
                && output.forwarded_signals.is_empty();
            if !retry {
                return self.end_failed();
            }
            self.wait_to_retry(number);
        }
    }

    /// Runs helm once and classifies what it printed; the attempt goes into the record.
    fn attempt(&mut self, number: u32) -> Result<Output, Ending> {
        // stdout must carry our document alone; helm's own output still reaches the user.
        let echo = match self.invocation.own.output.is_document() {
            false => Echo::Stdout,
            true => Echo::Stderr,
        };
        let started = Instant::now();
        let snapshot = self.snapshot();
        let output = self
            .tools
            .helm
            .rollback(
                &snapshot.release.name,
                snapshot.to_revision,
                &self.invocation.rollback_args,
                echo,
            )
            .map_err(|error| {
                let failure = CaptureError {
                    step: Step::HelmRollback,
                    error,
                    helm: Some(snapshot.helm.clone()),
                };
                Ending::not_attempted(self.invocation, failure, self.started)
            })?;
        let findings = classify::classify(&output.stderr);
        let mut attempt = Attempt::ran(
            number,
            RollbackRecord {
                exit_code: output.code,
                signal: output.signal,
                duration_ms: started.elapsed().as_millis(),
                findings: Vec::new(),
            },
        );
        attempt.errors = helm_errors(&findings, &output);
        attempt.warnings = output
            .forwarded_signals
            .iter()
            .map(|signal| {
                format!(
                    "received signal {signal} while helm ran; passed it on to helm and finished \
                     the journal"
                )
            })
            .collect();
        attempt.rollback.findings = findings;
        self.record.attempts.push(attempt);
        Ok(output)
    }

    /// After a failed attempt: find what it left and remove what we may. Returns whether the
    /// cluster is back to its pre-state (the condition for a retry).
    fn reconcile_attempt(&mut self) -> bool {
        let cleanup = self.invocation.deletes_leftovers(false);
        let our_revisions = self.record.attempts.len();
        let reconciled = self.reconciler().after_failure(cleanup, our_revisions);
        let attempt = self.record.attempts.last_mut().expect("an attempt ran");
        match reconciled {
            Ok(settled) => {
                let back = settled.back_to_pre_state();
                settled.record_into(attempt);
                back
            }
            Err(error) => {
                attempt.errors.push(format!(
                    "could not read the cluster after the rollback, so leftovers are unknown: \
                     {error}"
                ));
                // The journal stays open (`captured`) so that --finish can do the reconcile
                // once the cluster answers again.
                self.record.finish_command = Some(self.finish_command.clone());
                false
            }
        }
    }

    /// Whether the last attempt failed on transient faults alone.
    fn transient_only(&self) -> bool {
        let Some(attempt) = self.record.attempts.last() else {
            return false;
        };
        let findings = &attempt.rollback.findings;
        !errors_of(findings, Class::Transient).is_empty()
            && errors_of(findings, Class::Primary).is_empty()
            && attempt.errors.is_empty()
            && errors_of(findings, Class::Lock).is_empty()
    }

    fn wait_to_retry(&mut self, number: u32) {
        let delay = backoff(number);
        let attempt = self.record.attempts.last_mut().expect("an attempt ran");
        attempt.retried = true;
        let transient = errors_of(&attempt.rollback.findings, Class::Transient);
        self.record.warnings.push(format!(
            "attempt {number} failed on a transient error ({}); the cluster is back to its \
             pre-state; retrying in {}s",
            transient.join("; "),
            delay.as_secs()
        ));
        self.write_journal();
        std::thread::sleep(delay);
    }

    /// helm failed for good: the run ends on its attempt (`verdict::conclude`).
    fn end_failed(&mut self) -> Ending {
        self.explain_hook_failure();
        self.finish()
    }

    /// A signal arrived before (another) helm run: stop without running it.
    fn stop_before_helm(&mut self, signal: i32) -> Ending {
        self.record.halt = Some(Halt::Signal(signal));
        let again = if self.record.rollbacks() == 0 {
            ": helm changed nothing"
        } else {
            " again"
        };
        self.record.errors.push(format!(
            "interrupted by signal {signal} before helm rollback ran{again}"
        ));
        self.finish()
    }
}

/// 1s, 2s, 4s … capped at 30s: long enough for an API server to come back, short enough for CI.
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << (attempt - 1).min(5)).min(30))
}

/// What went wrong with helm beyond its own words: no words at all, a signal, a flood.
fn helm_errors(findings: &[Finding], output: &Output) -> Vec<String> {
    let mut errors = Vec::new();
    if !output.success() && findings.is_empty() {
        errors.push(format!(
            "helm rollback {} and printed no error",
            exec_status(output)
        ));
    }
    if let Some(signal) = output.signal {
        errors.push(format!("helm was killed by signal {signal}"));
    }
    if output.stderr_dropped > 0 {
        errors.push(format!(
            "helm printed more than {} MiB on stderr; only the first {} MiB were classified",
            exec::CAPTURE_LIMIT >> 20,
            exec::CAPTURE_LIMIT >> 20
        ));
    }
    errors
}

fn exec_status(output: &Output) -> String {
    match (output.code, output.signal) {
        (_, Some(signal)) => format!("was killed by signal {signal}"),
        (Some(code), _) => format!("exited with code {code}"),
        _ => "ended without an exit code".into(),
    }
}
