//! `--diagnose --all` / `-A`: the incident view. Lists the releases helm sees, diagnoses each
//! exactly as `--diagnose RELEASE` would (a bounded number at once, one kubectl proxy for all),
//! and hands the results to `domain::incident`. Read-only, as `--diagnose` is.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::cli::Invocation;
use crate::domain::exit::Exit;
use crate::domain::incident::{self, Entry};
use crate::domain::release::ListedRelease;
use crate::io::progress::Progress;
use crate::pipeline::capture::Step;
use crate::pipeline::diagnose;
use crate::pipeline::ending::Ending;
use crate::pipeline::tools::Tools;

pub fn diagnose_many(
    invocation: &Invocation,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    tools: &Tools,
    started: Instant,
) -> Ending {
    let all_namespaces = invocation.own.all_namespaces;
    let mut not_checked = Vec::new();
    let failed = |step, error| Ending::failed_at(invocation, step, error, started);
    let major = match tools.helm.version() {
        Ok(version) => version.major,
        Err(error) => return failed(Step::HelmVersion, error),
    };
    let listed = match tools.helm.list(all_namespaces, major) {
        Ok(listed) => Ok(listed),
        // A user who may read one namespace only: say so, and look at that one.
        Err(error) if all_namespaces => {
            not_checked.push(format!("all namespaces: {error:#}"));
            tools.helm.list(false, major)
        }
        Err(error) => Err(error),
    };
    let listed = match listed {
        Ok(listed) => listed,
        Err(error) => return failed(Step::HelmList, error),
    };
    let entries = diagnose_each(invocation, env, tools, &listed);
    let namespace = match all_namespaces && not_checked.is_empty() {
        true => None,
        false => invocation
            .kube
            .namespace
            .clone()
            .or_else(|| listed.first().map(|r| r.namespace.clone())),
    };
    let mut view = incident::assemble(entries, namespace, not_checked);
    let exit = match view.healthy {
        true => Exit::Success,
        false => Exit::Findings,
    };
    view.exit_code = exit.code();
    view.duration_ms = started.elapsed().as_millis();
    Ending::incident(exit, view)
}

/// Each release diagnosed, `--max-parallel` at a time.
fn diagnose_each(
    invocation: &Invocation,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    tools: &Tools,
    listed: &[ListedRelease],
) -> Vec<Entry> {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let entries = Mutex::new(Vec::with_capacity(listed.len()));
    let progress = Progress::new(listed.len(), !invocation.own.output.is_document());
    let workers = invocation.own.max_parallel.min(listed.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(release) = listed.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let entry = diagnose_one(invocation, env, tools, release);
                    entries
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(entry);
                    let done = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress.done(done, &release.name);
                }
            });
        }
    });
    progress.finish();
    entries.into_inner().unwrap_or_else(|e| e.into_inner())
}

fn diagnose_one(
    invocation: &Invocation,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    tools: &Tools,
    release: &ListedRelease,
) -> Entry {
    let one = invocation.for_release(&release.name, &release.namespace);
    let deployed = release.status == "deployed";
    let tools = tools.for_release(&one);
    let ending = diagnose::diagnose_listed(&one, env, &tools, Instant::now(), deployed);
    match (ending.diagnosis, ending.error_line) {
        (Some(diagnosis), _) => Entry::Diagnosed(diagnosis),
        (None, line) => Entry::Unreadable {
            release: release.name.clone(),
            namespace: release.namespace.clone(),
            unreadable: line.unwrap_or_else(|| "no diagnosis".to_string()),
        },
    }
}
