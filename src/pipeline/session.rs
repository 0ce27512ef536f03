//! One run on one release, from the journaled pre-state to its ending: step 1 (capture, lock,
//! journal) and the journal's completion. The steps between are `preflight`, `rollback` and
//! `verify`, each adding to the same [`Record`].

use std::path::Path;
use std::time::Instant;

use crate::cli::commands::finish_command;
use crate::cli::{self, Invocation};
use crate::domain::live::StoredData;
use crate::domain::record::{Record, State};
use crate::domain::report::Report;
use crate::domain::snapshot::Snapshot;
use crate::domain::verdict;
use crate::io::journal::{self, Journal};
use crate::io::kubectl;
use crate::io::lease::Lease;
use crate::io::{signals, trace};
use crate::pipeline::capture::{self, CaptureError, DryRun, Step};
use crate::pipeline::ending::Ending;
use crate::pipeline::exclusion::{local_holder, lock, take_lease, Locked};
use crate::pipeline::reconcile::Reconciler;
use crate::pipeline::tools::Tools;

/// Holding the release lock (and Lease) for as long as it lives.
pub(crate) struct Session<'a> {
    pub invocation: &'a Invocation,
    pub tools: &'a Tools,
    pub started: Instant,
    pub journal: Journal,
    /// The run so far; the journal on disk and the report at the end are both this.
    pub record: Record,
    /// The revisions our newest completed run created, and its journal (see preflight's
    /// pending check).
    pub left_by_us: Option<(std::ops::RangeInclusive<u64>, String)>,
    /// `None` when Leases cannot be used here (a warning said so).
    pub lease: Option<Lease>,
    /// What completes this run from its journal, should the reconcile not be possible.
    pub finish_command: String,
    /// The preflight's dry run of the target onto the live objects: what helm's write will
    /// make of each, which verification compares the live objects with. Never journaled: the
    /// objects can hold Secret data.
    pub prediction: Option<kubectl::DryRun>,
    /// What the live ConfigMaps and Secrets store, for the frozen-render check. Never
    /// journaled.
    pub stored: Vec<StoredData>,
    _lock: journal::ReleaseLock,
}

impl<'a> Session<'a> {
    /// Step 1: capture, take the release lock, and journal the pre-state before anything
    /// changes. `Err` is a run that ended here.
    pub fn start(
        invocation: &'a Invocation,
        env: &dyn Fn(&str) -> Option<String>,
        tools: &'a Tools,
        started: Instant,
    ) -> Result<(Session<'a>, DryRun), Ending> {
        let captured = capture::capture(&capture_request(invocation), &tools.helm, &tools.kubectl)
            .map_err(|failure| Ending::not_attempted(invocation, failure, started))?;
        let snapshot = captured.snapshot;
        let journaling = Instant::now();
        let namespace = snapshot.release.namespace.clone();
        let failed = |error| {
            let failure = CaptureError {
                step: Step::Journal,
                error,
                helm: Some(snapshot.helm.clone()),
            };
            Ending::not_attempted(invocation, failure, started)
        };
        let (dir, lock) = match lock(invocation, env, &namespace) {
            Ok(Locked::Held(dir, lock)) => (dir, lock),
            Ok(Locked::Busy(path)) => return Err(Ending::busy(invocation, &local_holder(&path))),
            Err(error) => return Err(failed(error)),
        };
        let (lease, lease_warnings) = take_lease(invocation, env, tools, &namespace)?;
        let release = &snapshot.release.name;
        let interrupted = journal::unfinished(&dir, &namespace, release).unwrap_or_default();
        let left_by_us = journal::newest_completed(&dir, &namespace, release)
            .map(|run| (run.created_revisions(), run.path.display().to_string()));
        let (journal, record) = open_journal(invocation, tools, &snapshot, &dir).map_err(failed)?;
        trace::step("locking and journaling the pre-state", journaling);
        trace::note(&format!(
            "captured {} current and {} target objects ({} live); journal {}",
            snapshot.current.len(),
            snapshot.target.len(),
            snapshot.live.len(),
            journal.path.display()
        ));
        let mut session = Session {
            invocation,
            tools,
            started,
            journal,
            record,
            left_by_us,
            lease,
            finish_command: finish_command(invocation, &namespace),
            prediction: None,
            stored: captured.stored,
            _lock: lock,
        };
        session.record.warnings.extend(lease_warnings);
        let unfinished = interrupted.iter().map(|earlier| {
            format!(
                "an earlier run (pid {}) did not finish: its journal is {}; run `{}` to reconcile \
                 what it left",
                earlier.pid,
                earlier.path.display(),
                session.finish_command
            )
        });
        session
            .record
            .warnings
            .extend(unfinished.collect::<Vec<_>>());
        Ok((session, captured.dry_run))
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.record.snapshot
    }

    /// The reconcile step as this run takes it.
    pub fn reconciler(&self) -> Reconciler<'_> {
        Reconciler {
            tools: self.tools,
            snapshot: &self.record.snapshot,
            wait: self.invocation.rollback.delete_wait(),
            lease_lost: self.lease.as_ref().is_some_and(Lease::lost),
        }
    }

    pub fn write_journal(&mut self) {
        if let Err(error) = self.journal.write(&self.record) {
            self.record
                .warnings
                .push(format!("could not update the journal: {error:#}"));
        }
    }

    /// Completes the journal and ends the run with its report.
    /// Ends the run: its outcome and exit from the record (`verdict::conclude`), the journal
    /// completed, the report built.
    pub fn finish(&mut self) -> Ending {
        let finishing = Instant::now();
        // Left open when the reconcile could not be done, for --finish.
        if self.record.finish_command.is_none() {
            self.record.state = State::Completed;
            self.record.finished_at = Some(jiff::Timestamp::now().to_string());
        }
        let (outcome, exit) = verdict::conclude(&self.record);
        self.record.outcome = Some(outcome);
        self.record.exit_code = Some(exit.code());
        if let Err(error) = self.journal.write(&self.record) {
            self.record
                .warnings
                .push(format!("could not complete the journal: {error:#}"));
        }
        trace::step("completing the journal", finishing);
        trace::note(&format!(
            "{} helm/kubectl processes started",
            trace::spawned_count()
        ));
        let mut report = Report::from(&self.record);
        report.journal = Some(self.journal.path.display().to_string());
        report.duration_ms = self.started.elapsed().as_millis();
        Ending::reported(exit, report)
    }
}

fn capture_request(invocation: &Invocation) -> capture::Request<'_> {
    capture::Request {
        release: &invocation.release,
        namespace: invocation.kube.namespace.as_deref(),
        revision: invocation.revision,
        server_side: invocation.rollback.server_side,
        force_conflicts: invocation.rollback.force_conflicts,
        with_dry_run: !invocation.own.no_preflight,
        current_only: false,
        newest_deployed: false,
    }
}

fn open_journal(
    invocation: &Invocation,
    tools: &Tools,
    snapshot: &Snapshot,
    dir: &Path,
) -> anyhow::Result<(Journal, Record)> {
    let journal = Journal::create(dir, &snapshot.release.namespace, &snapshot.release.name)?;
    let mut helm_args = invocation.helm_global_args.clone();
    helm_args.extend(invocation.rollback_args.iter().cloned());
    let mut record = Record::captured(
        std::process::id(),
        cli::redact(&helm_args),
        snapshot.clone(),
    );
    record.kubectl_connection = tools.printable_connection();
    // Written before helm runs: this is the promise that the pre-state survives whatever follows.
    // From here on a signal no longer kills us: the journal must be completed.
    signals::survive_signals();
    journal.write(&record)?;
    Ok((journal, record))
}
