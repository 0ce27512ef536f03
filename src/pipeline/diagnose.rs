//! `--diagnose`: a read-only look at a release. It re-enters the rollback's own steps — capture
//! (with the newest revision as its "target", so its dry run is verification's), preflight's
//! orphan rule, verification's comparison, the journals' reading — and hands what they found to
//! `domain::diagnosis`. It writes nothing: no helm mutation, no Lease, no lock, no journal.

use std::time::{Duration, Instant};

use crate::cli::commands;
use crate::cli::Invocation;
use crate::domain::diagnosis::{self, Commands, Diagnosis, NotReady, UnfinishedRun};
use crate::domain::dry_run::WriteMethod;
use crate::domain::exit::Exit;
use crate::domain::manifest;
use crate::domain::model::{ObjectRef, Revision};
use crate::domain::preflight;
use crate::domain::readiness;
use crate::domain::report::LeftoverEntry;
use crate::domain::snapshot::Snapshot;
use crate::domain::strays::{self, Stray};
use crate::domain::verify::Drift;
use crate::io::journal;
use crate::io::trace;
use crate::pipeline::capture::{self, CaptureError, Captured, Step};
use crate::pipeline::ending::Ending;
use crate::pipeline::tools::Tools;
use crate::pipeline::verify;

/// What the cluster told us: everything, or (the live objects unreadable) the release alone.
struct Seen {
    namespace: String,
    helm_version: String,
    history: Vec<Revision>,
    orphans: Option<Vec<LeftoverEntry>>,
    strays: Option<Vec<Stray>>,
    drifted: Option<Vec<Drift>>,
    not_ready: NotReady,
    not_checked: Vec<String>,
    /// helm 4 will apply server-side (see `diagnosis::needs_force_conflicts`).
    server_side_apply: bool,
}

pub fn diagnose(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    tools: &Tools,
    started: Instant,
) -> Ending {
    diagnose_listed(invocation, env, tools, started, false)
}

/// `--diagnose` of a release; `listed_deployed` when `helm list` just showed its newest
/// revision deployed (the incident view), which spares the `helm history` process while the
/// newest revision still says so (see `capture::Request::newest_deployed`).
pub fn diagnose_listed(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    tools: &Tools,
    started: Instant,
    listed_deployed: bool,
) -> Ending {
    let request = capture::Request {
        release: &invocation.release,
        namespace: invocation.kube.namespace.as_deref(),
        revision: None,
        server_side: invocation.rollback.server_side,
        // Every field that drifted, also those another manager took: the fix then says
        // `--force-conflicts` (see `diagnosis::needs_force_conflicts`).
        force_conflicts: true,
        // The drift check is the costly part (a dry run of every object): --no-verify skips it.
        with_dry_run: !invocation.own.no_verify,
        current_only: true,
        newest_deployed: listed_deployed,
    };
    let seen = match capture::capture(&request, &tools.helm, &tools.kubectl) {
        Ok(captured) => seen_in_full(captured, tools),
        // The release is readable but its objects are not (RBAC): say what was not checked.
        Err(failure) if failure.step == Step::LiveObjects => {
            match release_only(invocation, tools, failure) {
                Ok(seen) => seen,
                Err(failure) => return Ending::not_attempted(invocation, failure, started),
            }
        }
        Err(failure) => return Ending::not_attempted(invocation, failure, started),
    };
    let deciding = Instant::now();
    let mut diagnosis = decide(invocation, env, tools, seen);
    trace::step("diagnosis decisions", deciding);
    let exit = if diagnosis.healthy {
        Exit::Success
    } else {
        Exit::Findings
    };
    diagnosis.exit_code = exit.code();
    diagnosis.duration_ms = started.elapsed().as_millis();
    Ending::diagnosed(exit, diagnosis)
}

/// Orphans, drift and readiness from a full capture.
fn seen_in_full(captured: Captured, tools: &Tools) -> Seen {
    let snapshot = captured.snapshot;
    let connection = tools.printable_connection();
    let orphans = preflight::orphans(&snapshot, &snapshot.last_successful)
        .iter()
        .map(|o| LeftoverEntry::new(o, &connection))
        .collect();
    let mut not_checked = Vec::new();
    let drifted = match drift(&snapshot, captured.dry_run, captured.objects, tools) {
        Ok((drifted, unchecked)) => {
            not_checked.extend(unchecked.into_iter().map(|u| format!("drift of {u}")));
            Some(drifted)
        }
        Err(error) => {
            not_checked.push(format!("drift: {error:#}"));
            None
        }
    };
    let (not_ready, unread) = not_ready_of_current_revision(&snapshot, tools);
    not_checked.extend(unread);
    let strays = match strays_of(&snapshot, tools) {
        Ok((strays, unlisted)) => {
            not_checked.extend(unlisted.into_iter().map(|u| format!("strays: {u}")));
            Some(strays)
        }
        Err(error) => {
            not_checked.push(format!("strays: {error:#}"));
            None
        }
    };
    Seen {
        strays,
        not_ready,
        server_side_apply: snapshot.write_method == WriteMethod::ServerSideApply,
        namespace: snapshot.release.namespace.clone(),
        helm_version: snapshot.helm.version.clone(),
        history: snapshot.history,
        orphans: Some(orphans),
        drifted,
        not_checked,
    }
}

/// How long the lists of every kind may take, all at once.
const CLAIMS_BUDGET: Duration = Duration::from_secs(10);

/// The objects of any kind that claim the release outside its newest revision, each with the
/// newest older revision that had it (read only when there are any), and what could not be
/// listed. Namespaced kinds are listed in every namespace the newest revision touches.
fn strays_of(snapshot: &Snapshot, tools: &Tools) -> anyhow::Result<(Vec<Stray>, Vec<String>)> {
    let release = &snapshot.release;
    let mut namespaces: Vec<String> = snapshot
        .current
        .iter()
        .map(|o| o.namespace_or(&release.namespace).to_string())
        .chain([release.namespace.clone()])
        .collect();
    namespaces.sort();
    namespaces.dedup();
    let listing = Instant::now();
    let claims = tools.kubectl.claims(&namespaces, CLAIMS_BUDGET)?;
    trace::step(
        "listing every kind for objects that claim the release",
        listing,
    );
    let found = strays::strays(&claims.objects, release, &snapshot.current);
    let older: Vec<(u64, Vec<ObjectRef>)> = match found.is_empty() {
        true => Vec::new(),
        false => older_manifests(snapshot, tools),
    };
    let connection = tools.printable_connection();
    let strays = strays::describe(&found, &older, release, &connection);
    Ok((strays, claims.not_checked))
}

/// Every revision's manifest but the newest's, read at once; one that cannot be read is left
/// out (its strays then name an older revision, or none).
fn older_manifests(snapshot: &Snapshot, tools: &Tools) -> Vec<(u64, Vec<ObjectRef>)> {
    let (release, major) = (snapshot.release.name.as_str(), snapshot.helm.major);
    // A history of the newest revision alone, past revision 1, is the incident view's row
    // (`capture::Request::newest_deployed`): the older revisions are asked for now.
    let history = match snapshot.history.len() == 1 && snapshot.from_revision > 1 {
        true => tools
            .helm
            .history(release)
            .unwrap_or_else(|_| snapshot.history.clone()),
        false => snapshot.history.clone(),
    };
    let older: Vec<u64> = history
        .iter()
        .map(|r| r.revision)
        .filter(|r| *r != snapshot.from_revision)
        .collect();
    std::thread::scope(|scope| {
        let reads: Vec<_> = older
            .iter()
            .map(|&revision| {
                scope.spawn(move || {
                    let stored = tools.helm.revision(release, Some(revision), major).ok()?;
                    let documents = manifest::parse_documents(stored.manifest.as_bytes()).ok()?;
                    Some((revision, documents.into_iter().map(|d| d.object).collect()))
                })
            })
            .collect();
        reads
            .into_iter()
            .filter_map(|read| read.join().ok().flatten())
            .collect()
    })
}

/// Verification's comparison of the newest revision with the live objects, from capture's
/// dry run of it.
fn drift(
    snapshot: &Snapshot,
    dry_run: capture::DryRun,
    objects: Option<Vec<serde_json::Value>>,
    tools: &Tools,
) -> anyhow::Result<(Vec<Drift>, Vec<String>)> {
    let rendition = dry_run.unwrap_or_else(|| Err(anyhow::anyhow!("skipped (--no-verify)")))?;
    let live = match objects {
        Some(objects) => objects,
        None => tools
            .kubectl
            .objects(&snapshot.target, &snapshot.release.namespace)?,
    };
    Ok(verify::compare(snapshot, rendition, &live))
}

/// The objects of the current revision that are not ready, read as after a `--wait` timeout
/// (`pipeline::wait`): one bounded LIST per kind; a list that cannot be read is not checked.
fn not_ready_of_current_revision(snapshot: &Snapshot, tools: &Tools) -> (NotReady, Vec<String>) {
    let namespace = &snapshot.release.namespace;
    // `current_only` capture: the target is the newest revision's manifest.
    let reads = readiness::reads(&snapshot.target, namespace);
    let reading = Instant::now();
    let (observed, unread) = tools.kubectl.observe_readiness(&reads, READINESS_BUDGET);
    trace::step("reading which objects are not ready", reading);
    // A Job that has not failed is still running, not a problem: as helm without --wait-for-jobs.
    let options = readiness::Options::default();
    let objects = readiness::not_ready(&snapshot.target, namespace, &observed, options);
    let reason = (!unread.is_empty()).then(|| unread.join("; "));
    let not_ready = NotReady {
        checked: unread.is_empty(),
        objects,
        reason,
    };
    (not_ready, unread)
}

/// All readiness lists together must answer within this, as after a `--wait` timeout.
const READINESS_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Readiness when the live objects could not be read at all.
fn readiness_not_checked(reason: &str) -> NotReady {
    NotReady {
        checked: false,
        objects: Vec::new(),
        reason: Some(reason.to_string()),
    }
}

/// The release alone (history, version), when its live objects could not be read.
fn release_only(
    invocation: &Invocation,
    tools: &Tools,
    failure: CaptureError,
) -> Result<Seen, CaptureError> {
    let failed = |step: Step| {
        move |error| CaptureError {
            step,
            error,
            helm: None,
        }
    };
    let history = tools
        .helm
        .history(&invocation.release)
        .map_err(failed(Step::HelmHistory))?;
    let namespace = match &invocation.kube.namespace {
        Some(namespace) => namespace.clone(),
        None => tools
            .kubectl
            .cluster_target()
            .map_err(failed(Step::Namespace))?
            .1
            .unwrap_or_else(|| "default".into()),
    };
    let reason = format!("{:#}", failure.error);
    Ok(Seen {
        namespace,
        helm_version: failure.helm.map(|h| h.version).unwrap_or_default(),
        history,
        orphans: None,
        strays: None,
        drifted: None,
        not_ready: readiness_not_checked(&reason),
        server_side_apply: false,
        not_checked: vec![
            format!("orphans: {reason}"),
            format!("strays: {reason}"),
            format!("drift: {reason}"),
            format!("readiness: {reason}"),
        ],
    })
}

/// The journals here, then the findings.
fn decide(
    invocation: &Invocation,
    env: &dyn Fn(&str) -> Option<String>,
    tools: &Tools,
    seen: Seen,
) -> Diagnosis {
    let namespace = seen.namespace.as_str();
    let release = invocation.release.as_str();
    let dir = match &invocation.own.journal_dir {
        Some(dir) => Some(dir.clone()),
        None => journal::default_dir(env).ok(),
    };
    let dir = dir.filter(|d| journal::has_journals(d, namespace, release));
    let mut not_checked = seen.not_checked;
    let unfinished = match &dir {
        Some(dir) => match journal::unfinished(dir, namespace, release) {
            Ok(runs) => runs
                .iter()
                .map(|run| UnfinishedRun {
                    journal: run.path.display().to_string(),
                    pid: run.pid,
                    in_progress: journal::writer_running(run),
                })
                .collect(),
            Err(error) => {
                not_checked.push(format!("unfinished runs: {error:#}"));
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let left_by_us = dir
        .as_ref()
        .and_then(|d| journal::newest_completed(d, namespace, release))
        .map(|run| (run.created_revisions(), run.path.display().to_string()));
    let pending = preflight::pending(&seen.history, jiff::Timestamp::now(), left_by_us);
    let max_age = invocation.pending_max_age.as_secs();
    let connection = tools.printable_connection();
    let drifted = seen.drifted.as_deref().unwrap_or_default();
    let force = diagnosis::needs_force_conflicts(seen.server_side_apply, drifted);
    let rollback_to = |n| {
        let command = commands::rollback_command(invocation, namespace, n);
        match force {
            true => format!("{command} --force-conflicts"),
            false => command,
        }
    };
    diagnosis::diagnose(diagnosis::Inputs {
        release,
        namespace,
        helm_version: &seen.helm_version,
        history: &seen.history,
        pending,
        pending_max_age_seconds: max_age,
        orphans: seen.orphans,
        strays: seen.strays,
        unfinished,
        drifted: seen.drifted,
        not_ready: seen.not_ready,
        not_checked,
        commands: Commands {
            rollback_to: &rollback_to,
            finish: commands::finish_command(invocation, namespace),
            describe: &|object| object.describe_command(&connection),
        },
    })
}
