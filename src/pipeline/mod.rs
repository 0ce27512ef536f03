//! The pipeline, in order: capture → preflight → run → classify → reconcile → report → verify.
//! `--finish` re-enters the same reconcile and report for a run that died (`finish`);
//! `--diagnose` the same capture, orphan, verify and journal reading, changing nothing
//! (`diagnose`).
//!
//! Each step is a module, and each only sequences calls into `domain` (the decisions) and `io`
//! (the edge), keeping the run's [`Record`](crate::domain::record::Record) — the journal — up to
//! date between them. A run ends in an [`Ending`]: the exit, and the report built from the record,
//! which `main` prints.

pub mod capture;
mod complete;
mod diagnose;
mod ending;
mod exclusion;
mod finish;
mod gitops;
mod hooks;
mod immutable;
mod incident;
mod preflight;
mod reconcile;
mod rollback;
mod session;
mod tools;
mod verify;
mod wait;

use std::path::Path;
use std::time::Instant;

pub use self::ending::Ending;

use self::capture::Step;
pub use self::complete::complete;
use self::session::Session;
use self::tools::Tools;
use crate::cli::{helm_flags, Invocation, KubeSettings};
use crate::io::trace;

/// `--version`: ours, then the helm `helm_bin` is (or why it cannot be asked) and whether the
/// tests run against it.
pub fn version_text(helm_bin: &Path, env: &dyn Fn(&str) -> Option<String>) -> String {
    let helm = crate::io::helm::Helm {
        bin: helm_bin.to_path_buf(),
        global_args: Vec::new(),
        version_cache: crate::io::version_cache::default_dir(env),
    };
    let ours = format!("helm-safe-rollback v{}", env!("CARGO_PKG_VERSION"));
    let theirs = match helm.version() {
        Ok(version) => {
            let verdict = crate::domain::release::tested(&version).unwrap_or_else(|why| why);
            format!(
                "helm {} ({}): {verdict}",
                version.version,
                helm_bin.display()
            )
        }
        Err(error) => format!("helm ({}): {error:#}", helm_bin.display()),
    };
    format!("{ours}\n{theirs}\n")
}

/// `env` is Sync: the incident view reads it from several threads.
pub fn run(invocation: &Invocation, env: &(dyn Fn(&str) -> Option<String> + Sync)) -> Ending {
    let started = Instant::now();
    trace::enable(invocation.kube.debug);
    let tools = Tools::new(invocation, env);
    let allowances = preflight::allowances(invocation);
    if let Some(missing) = missing_kubeconfig(&invocation.kube, env) {
        let error = anyhow::anyhow!("kubeconfig {missing}: no such file");
        return Ending::failed_at(invocation, Step::Kubeconfig, error, started);
    }
    // helm stops on a flag its `helm rollback` does not know, but only after our capture and
    // preflight: said first. The version is remembered, so capture does not ask again.
    if let Ok(version) = tools.helm.version() {
        let unknown =
            helm_flags::unknown_rollback_flag(&invocation.rollback_args, &version.version);
        if let Some(message) = unknown {
            return Ending::usage(message);
        }
    }
    // The proxy starts now, on the main thread, and is listening by the time capture needs it.
    tools.kubectl.connect();
    if invocation.looks_at_many() {
        return incident::diagnose_many(invocation, env, &tools, started);
    }
    if invocation.own.diagnose {
        return diagnose::diagnose(invocation, env, &tools, started);
    }
    if invocation.own.finish {
        return finish::finish_interrupted(invocation, env, &tools, started);
    }
    let (mut session, dry_run) = match Session::start(invocation, env, &tools, started) {
        Ok(started) => started,
        Err(ending) => return ending,
    };
    if let Some(ending) = session.preflight(&allowances, dry_run) {
        return ending;
    }
    session.roll_back()
}

/// A kubeconfig named by `--kubeconfig` that does not exist: helm refuses it, but a plugin gets
/// the flag as `KUBECONFIG`, where kubectl and helm silently skip a missing file and go on to
/// `localhost:8080`. One file named, and missing, is a mistake either way.
fn missing_kubeconfig(kube: &KubeSettings, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let named = kube.kubeconfig.clone().or_else(|| env("KUBECONFIG"))?;
    let single = !named.is_empty() && !named.contains(':');
    (single && !Path::new(&named).exists()).then_some(named)
}
