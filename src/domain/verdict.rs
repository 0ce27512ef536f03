//! How a run ends — its outcome and its exit code — decided once, from its record.
//!
//! The pipeline's steps only record what happened (a refusal's reasons, each helm run's exit,
//! what a cleanup left, what verification found, where the run stopped early); this function
//! reads the record and nothing else, so the report, the journal and the process's exit code
//! cannot disagree, and every ending is unit-tested over plain records.

use crate::domain::exit::Exit;
use crate::domain::record::{Attempt, Outcome, Record, Stage};

/// Why a run stopped before running helm (again), when it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Halt {
    /// `--plan`: nothing was meant to change (refusal reasons, if any, are the plan's verdict).
    Planned,
    /// Preflight refused; its reasons are the record's `refusal_reasons`.
    Refused,
    /// An earlier attempt's leftovers could not all be removed, so helm was not run.
    LeftoversRemain,
    /// A signal arrived before helm (ran again).
    Signal(i32),
}

/// The outcome and exit of the run `record` tells.
pub fn conclude(record: &Record) -> (Outcome, Exit) {
    if record.stage == Stage::Finish {
        return finished(record);
    }
    match record.halt {
        Some(Halt::Planned) if record.refusal_reasons.is_empty() => {
            (Outcome::Planned, Exit::Success)
        }
        Some(Halt::Planned) => (Outcome::Planned, Exit::Refused),
        Some(Halt::Refused) => (Outcome::Refused, Exit::Refused),
        Some(Halt::LeftoversRemain) => (Outcome::Failed, Exit::CleanupIncomplete),
        Some(Halt::Signal(signal)) => (Outcome::Failed, Exit::Signal(signal)),
        None => match record.attempts.last() {
            Some(attempt) => after_helm(record, attempt),
            // Nothing ran and nothing said why: never a success.
            None => (Outcome::Failed, Exit::NotAttempted),
        },
    }
}

/// helm ran: its success stands unless the live objects are not the target's; its failure is
/// its own exit code, unless our cleanup of what it left did not complete.
fn after_helm(record: &Record, attempt: &Attempt) -> (Outcome, Exit) {
    let rollback = &attempt.rollback;
    if rollback.exit_code == Some(0) {
        let drifted = record
            .verification
            .as_ref()
            .is_some_and(|v| !v.drifted.is_empty());
        return match drifted {
            true => (Outcome::Drifted, Exit::Drifted),
            false => (Outcome::Succeeded, Exit::Success),
        };
    }
    if attempt.cleanup_incomplete() {
        return (Outcome::Failed, Exit::CleanupIncomplete);
    }
    (
        Outcome::Failed,
        Exit::of_helm(rollback.exit_code, rollback.signal),
    )
}

/// `--finish` of a run that died: helm succeeded when no reconcile was due (the release got
/// past the revision the run started from); the exit says whether a cleanup is still left.
fn finished(record: &Record) -> (Outcome, Exit) {
    let outcome = match record.attempts.is_empty() {
        true => Outcome::Succeeded,
        false => Outcome::Failed,
    };
    let incomplete = record.attempts.iter().any(Attempt::cleanup_incomplete);
    let exit = match incomplete {
        true => Exit::CleanupIncomplete,
        false => Exit::Success,
    };
    (outcome, exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::record::{Action, ActionKind, ActionResult, RollbackRecord, Verification};
    use crate::domain::snapshot::Snapshot;
    use crate::domain::verify::Drift;

    fn record() -> Record {
        let snapshot: Snapshot = serde_json::from_value(serde_json::json!({
            "release": {"name": "web", "namespace": "prod"},
            "helm": {"version": "v4.3.1", "major": 4},
            "history": [], "from_revision": 3, "to_revision": 1,
            "current": [], "target": [], "live": [], "taken_at": "",
            "last_successful_revision": null, "last_successful": [],
        }))
        .unwrap();
        Record::captured(1, Vec::new(), snapshot)
    }

    fn helm_ran(record: &mut Record, exit_code: Option<i32>, signal: Option<i32>) {
        let rollback = RollbackRecord {
            exit_code,
            signal,
            duration_ms: 1,
            findings: Vec::new(),
        };
        let number = record.attempts.len() as u32 + 1;
        record.attempts.push(Attempt::ran(number, rollback));
    }

    fn delete(result: ActionResult) -> Action {
        Action {
            kind: "Service".into(),
            namespace: Some("prod".into()),
            name: "web-standby".into(),
            uid: "u-1".into(),
            action: ActionKind::Delete,
            result,
        }
    }

    #[test]
    fn a_plan_proceeds_or_says_it_would_be_refused() {
        let mut plan = record();
        plan.halt = Some(Halt::Planned);
        assert_eq!(conclude(&plan), (Outcome::Planned, Exit::Success));
        plan.refusal_reasons = vec!["target objects exist and belong to another release".into()];
        assert_eq!(conclude(&plan), (Outcome::Planned, Exit::Refused));
    }

    #[test]
    fn runs_stopped_before_helm_say_why_in_their_exit() {
        for (halt, expected) in [
            (Halt::Refused, (Outcome::Refused, Exit::Refused)),
            (
                Halt::LeftoversRemain,
                (Outcome::Failed, Exit::CleanupIncomplete),
            ),
            (Halt::Signal(15), (Outcome::Failed, Exit::Signal(15))),
        ] {
            let mut stopped = record();
            stopped.halt = Some(halt);
            assert_eq!(conclude(&stopped), expected, "{halt:?}");
        }
    }

    #[test]
    fn a_signal_before_a_retry_ends_the_run_whatever_the_first_helm_did() {
        let mut run = record();
        helm_ran(&mut run, Some(1), None);
        run.halt = Some(Halt::Signal(2));
        assert_eq!(conclude(&run), (Outcome::Failed, Exit::Signal(2)));
    }

    #[test]
    fn helms_success_stands_unless_the_live_objects_drifted() {
        let mut run = record();
        helm_ran(&mut run, Some(0), None);
        assert_eq!(conclude(&run), (Outcome::Succeeded, Exit::Success));
        run.verification = Some(Verification {
            verified: false,
            error: Some("verification is off (--no-verify)".into()),
            drifted: Vec::new(),
        });
        assert_eq!(conclude(&run), (Outcome::Succeeded, Exit::Success));
        run.verification.as_mut().unwrap().drifted = vec![Drift {
            kind: "Deployment".into(),
            namespace: "prod".into(),
            name: "web".into(),
            fields: Vec::new(),
            reason: Some("the object does not exist".into()),
        }];
        assert_eq!(conclude(&run), (Outcome::Drifted, Exit::Drifted));
    }

    #[test]
    fn helms_failure_is_its_own_exit_unless_the_cleanup_did_not_complete() {
        let mut run = record();
        helm_ran(&mut run, Some(1), None);
        assert_eq!(conclude(&run), (Outcome::Failed, Exit::HelmFailed(1)));
        run.attempts[0].actions.push(delete(ActionResult::Deleted));
        assert_eq!(conclude(&run), (Outcome::Failed, Exit::HelmFailed(1)));
        run.attempts[0]
            .actions
            .push(delete(ActionResult::Terminating {
                finalizers: vec!["example.com/hold".into()],
            }));
        assert_eq!(conclude(&run), (Outcome::Failed, Exit::CleanupIncomplete));
    }

    #[test]
    fn a_helm_killed_by_a_signal_ends_as_that_signal() {
        let mut run = record();
        helm_ran(&mut run, None, Some(9));
        assert_eq!(conclude(&run), (Outcome::Failed, Exit::Signal(9)));
    }

    #[test]
    fn the_last_attempt_decides_after_retries() {
        let mut run = record();
        helm_ran(&mut run, Some(1), None);
        run.attempts[0].retried = true;
        helm_ran(&mut run, Some(0), None);
        assert_eq!(conclude(&run), (Outcome::Succeeded, Exit::Success));
    }

    #[test]
    fn a_record_with_nothing_run_is_never_a_success() {
        assert_eq!(conclude(&record()), (Outcome::Failed, Exit::NotAttempted));
    }

    #[test]
    fn finishing_a_dead_run_exits_on_what_its_cleanup_left() {
        let mut finished = record();
        finished.stage = Stage::Finish;
        assert_eq!(conclude(&finished), (Outcome::Succeeded, Exit::Success));
        helm_ran(&mut finished, None, None);
        finished.attempts[0].number = 0;
        assert_eq!(conclude(&finished), (Outcome::Failed, Exit::Success));
        finished.attempts[0]
            .actions
            .push(delete(ActionResult::Failed {
                error: "HTTP 500".into(),
            }));
        assert_eq!(
            conclude(&finished),
            (Outcome::Failed, Exit::CleanupIncomplete)
        );
    }
}
