//! After a rollback whose `--wait` ran out of time: which target objects never became ready,
//! and why (`domain::readiness`). helm 3 names none of them and helm 4 only some, without the
//! cause. Read right after helm gave up and before the reconcile, so the state reported is the
//! one helm timed out on.

use std::time::{Duration, Instant};

use crate::domain::classify;
use crate::domain::readiness::{self, Options};
use crate::io::trace;
use crate::pipeline::session::Session;

/// All the lists together must answer within this: the report is about a failure that already
/// happened, and a slow or huge namespace must not hold it up.
const BUDGET: Duration = Duration::from_secs(5);

impl Session<'_> {
    /// Adds `not_ready` to the last attempt when the user asked helm to wait and helm's
    /// deadline passed; a list that cannot be read is a warning.
    pub(super) fn explain_wait(&mut self) {
        let flags = &self.invocation.rollback;
        let waited = flags.wait || flags.wait_for_jobs;
        let Some(attempt) = self.record.attempts.last() else {
            return;
        };
        if !waited || !classify::wait_deadline_passed(&attempt.rollback.findings) {
            return;
        }
        let options = Options {
            jobs_must_complete: flags.wait_for_jobs,
        };
        let snapshot = self.snapshot();
        let namespace = &snapshot.release.namespace;
        let reads = readiness::reads(&snapshot.target, namespace);
        let reading = Instant::now();
        let (observed, warnings) = self.tools.kubectl.observe_readiness(&reads, BUDGET);
        trace::step("reading why objects are not ready", reading);
        let not_ready = readiness::not_ready(&snapshot.target, namespace, &observed, options);
        let attempt = self.record.attempts.last_mut().expect("an attempt ran");
        attempt.not_ready = not_ready;
        attempt.warnings.extend(warnings);
    }
}
