//! How a run ends: its [`Exit`], the report to print (built from the record, or for runs that
//! never got one, from what stopped them), and the one error line a run that stopped early
//! prints on stderr. `main` does the printing; nothing in the pipeline does.

use std::time::Instant;

use crate::cli::Invocation;
use crate::domain::diagnosis::Diagnosis;
use crate::domain::exit::Exit;
use crate::domain::incident::Incident;
use crate::domain::report::Report;
use crate::pipeline::capture::{CaptureError, Step};

pub struct Ending {
    pub exit: Exit,
    /// `None` only for `--diagnose`, which prints its diagnosis instead. Boxed: an ending is
    /// passed back through every step.
    pub report: Option<Box<Report>>,
    /// Printed as `Error: …` on stderr; the text report is then left out (the JSON one is not).
    pub error_line: Option<String>,
    /// `--diagnose`'s document, printed instead of a report.
    pub diagnosis: Option<Box<Diagnosis>>,
    /// `--diagnose --all` / `-A`: every release's diagnosis, printed instead of a report.
    pub incident: Option<Box<Incident>>,
}

impl Ending {
    pub(crate) fn reported(exit: Exit, mut report: Report) -> Ending {
        report.exit_code = exit.code();
        Ending {
            exit,
            report: Some(Box::new(report)),
            error_line: None,
            diagnosis: None,
            incident: None,
        }
    }

    pub(crate) fn diagnosed(exit: Exit, diagnosis: Diagnosis) -> Ending {
        Ending {
            exit,
            report: None,
            error_line: None,
            diagnosis: Some(Box::new(diagnosis)),
            incident: None,
        }
    }

    pub(crate) fn incident(exit: Exit, incident: Incident) -> Ending {
        Ending {
            exit,
            report: None,
            error_line: None,
            diagnosis: None,
            incident: Some(Box::new(incident)),
        }
    }

    /// Capture (or starting helm) failed: nothing has changed. One clear line, exit 3.
    pub(crate) fn not_attempted(
        invocation: &Invocation,
        failure: CaptureError,
        started: Instant,
    ) -> Ending {
        let message = format!("{:#}", failure.error);
        let mut report = Report::not_attempted(
            &invocation.release,
            invocation.kube.namespace.clone(),
            failure.helm.map(|h| h.version),
            message.clone(),
        );
        report.duration_ms = started.elapsed().as_millis();
        let line = format!(
            "{} (at {}; nothing was changed)",
            message.replace('\n', " "),
            failure.step
        );
        Ending {
            error_line: Some(line),
            ..Ending::reported(Exit::NotAttempted, report)
        }
    }

    /// [`Ending::not_attempted`] for a failure at `step` before helm's version was known.
    pub(crate) fn failed_at(
        invocation: &Invocation,
        step: Step,
        error: anyhow::Error,
        started: Instant,
    ) -> Ending {
        let failure = CaptureError {
            step,
            error,
            helm: None,
        };
        Ending::not_attempted(invocation, failure, started)
    }

    /// A command line this helm does not take, found once helm's version is known: exit 2 and
    /// one line, as for any usage error; nothing was read or written.
    pub(crate) fn usage(message: String) -> Ending {
        Ending {
            exit: Exit::Usage,
            report: None,
            error_line: Some(message),
            diagnosis: None,
            incident: None,
        }
    }

    /// Another run holds the release: exit 6, naming the holder.
    pub(crate) fn busy(invocation: &Invocation, holder: &str) -> Ending {
        let message = format!(
            "another helm safe-rollback is working on release {} right now ({holder}); nothing \
             was changed",
            invocation.release,
        );
        let report = Report::busy(
            &invocation.release,
            invocation.kube.namespace.clone(),
            message.clone(),
        );
        Ending {
            error_line: Some(message),
            ..Ending::reported(Exit::Busy, report)
        }
    }
}
