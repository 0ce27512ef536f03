//! The field corpus: 19 real public charts (`/work/shared/corpus`, see its CORPUS.md), each run
//! with helm 3 and then helm 4, the way users run it: the installed plugin, `helm` and `kubectl`
//! found on PATH, every check on unless a step says otherwise.
//!
//! 1. Success (corpus/success.rs): install → upgrade by one value → `--plan` → native
//!    `helm rollback REL 1` (the twin) → native rollback to 2 → `helm safe-rollback REL 1`: exit 0,
//!    `succeeded`, nothing refused or drifted, and the live objects the same as the native
//!    rollback left them (same object set, same normalised spec); the plan names what the native
//!    rollback created, updated and deleted.
//! 2. Failure (corpus/failing.rs): an upgrade made invalid by one value the API server rejects
//!    (`--cleanup-on-fail`), then `helm safe-rollback REL <failed> --no-preflight`: the API server's
//!    reason first, leftovers exactly what it created; with `--cleanup-on-fail`, nothing left.
//!
//! Why the twin is the same release at another time and not a second release: cluster-scoped
//! names and CRDs of most charts collide between two releases, and a second install per chart
//! and helm would double the suite's time. The native rollback runs first, from the upgraded
//! state, on a cluster ours has not touched; a native rollback to 2 restores the upgraded state;
//! ours then rolls back to 1 and must leave what native left (see corpus/snapshot.rs for what is
//! compared).
//!
//! The corpus dir is `HSR_CORPUS_DIR`, else `../shared/corpus` next to this checkout; without it
//! the suite does not run and says so, except under `CI=true`, where its absence fails the run
//! (`HSR_SKIP_E2E=1` skips it too). One test per chart, so charts run in
//! parallel and a failure names its chart; within a chart helm 3 and helm 4 run one after the
//! other, with helm's leftovers removed in between, because their cluster-scoped objects and
//! CRDs have the same names. Each run prints one line (objects, native vs ours in seconds,
//! outcomes, step times) on stderr, uncaptured, and appends it to `HSR_CORPUS_REPORT` when that
//! is set (bench/RESULTS.md's corpus table is made from it).

mod support;

#[path = "corpus/mod.rs"]
mod corpus;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Instant;

use corpus::cluster::{remove_release, JobCompleter};
use corpus::{settings, Line, Settings};
use support::{HelmMajor, Scenario};

/// Every chart of the corpus; `the_corpus_is_exactly_these_charts` keeps this list honest.
const CHARTS: &[&str] = &[
    "argo-cd",
    "argo-workflows",
    "cert-manager",
    "filebeat",
    "fluent-bit",
    "fluent-operator",
    "fluentd",
    "gatekeeper",
    "harbor",
    "ingress-nginx",
    "jenkins",
    "kibana",
    "loki-distributed",
    "metrics-server",
    "redis-ha",
    "sealed-secrets",
    "vault",
    "velero",
    "vpa",
];

macro_rules! corpus_tests {
    ($($test:ident => $chart:literal),* $(,)?) => {
        $( #[test] fn $test() { chart($chart) } )*
    };
}

corpus_tests!(
    argo_cd => "argo-cd",
    argo_workflows => "argo-workflows",
    cert_manager => "cert-manager",
    filebeat => "filebeat",
    fluent_bit => "fluent-bit",
    fluent_operator => "fluent-operator",
    fluentd => "fluentd",
    gatekeeper => "gatekeeper",
    harbor => "harbor",
    ingress_nginx => "ingress-nginx",
    jenkins => "jenkins",
    kibana => "kibana",
    loki_distributed => "loki-distributed",
    metrics_server => "metrics-server",
    redis_ha => "redis-ha",
    sealed_secrets => "sealed-secrets",
    vault => "vault",
    velero => "velero",
    vpa => "vpa",
);

/// The corpus dir, or `None` when the corpus suite does not run: e2e tests explicitly skipped,
/// or the corpus absent outside CI (a clone of the repository alone has none: it is test data
/// the repository cannot carry). Absent under CI (`CI=true`), it fails the test.
fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HSR_CORPUS_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    if dir.join("tools/settings.tsv").is_file() {
        return Some(dir);
    }
    if std::env::var("HSR_SKIP_E2E").as_deref() == Ok("1") {
        eprintln!("corpus skipped: HSR_SKIP_E2E=1");
        return None;
    }
    let missing = format!(
        "chart corpus not found at {} (set HSR_CORPUS_DIR to a copy of it)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{missing}: under CI the corpus suite must run");
    }
    // Uncaptured, so that a passing run still says it: this suite did not run.
    let _ = writeln!(std::io::stderr(), "corpus NOT RUN: {missing}");
    None
}

#[test]
fn the_corpus_is_exactly_these_charts() {
    let Some(dir) = corpus_dir() else { return };
    let mut found: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .expect("read the corpus's charts dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(
        found, CHARTS,
        "a chart without a test here, or a test without a chart"
    );
}

/// metrics-server's APIService has no backend on the bed: while it exists, discovery of
/// metrics.k8s.io fails for every client and namespaces never finish deleting (CORPUS.md, item
/// 4). It runs alone (write), every other chart beside the others (read).
static ALONE: RwLock<()> = RwLock::new(());

fn chart(name: &str) {
    if support::bed().is_none() {
        return;
    }
    let Some(corpus) = corpus_dir() else { return };
    let settings = settings(&corpus, name);
    let _turn = if name == "metrics-server" {
        Err(ALONE.write().unwrap_or_else(|e| e.into_inner()))
    } else {
        Ok(ALONE.read().unwrap_or_else(|e| e.into_inner()))
    };
    let mut failures = Vec::new();
    for helm in [HelmMajor::V3, HelmMajor::V4] {
        let result = run_chart(&corpus, name, &settings, helm);
        report_line(&result);
        for error in &result.errors {
            failures.push(format!("{}: {error}", helm_name(helm)));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: helm safe-rollback is not a drop-in helm rollback here:\n{}",
        failures.join("\n")
    );
}

pub fn helm_name(helm: HelmMajor) -> &'static str {
    match helm {
        HelmMajor::V3 => "helm3",
        HelmMajor::V4 => "helm4",
    }
}

fn report_line(r: &Line) {
    let secs = |s: Option<f64>| s.map_or("-".to_string(), |s| format!("{s:.2}s"));
    // A ratio only where ours did the rollback: a refusal or early stop costs no rollback.
    let ratio = match (r.native_s, r.ours_s) {
        (Some(n), Some(o)) if n > 0.0 && r.outcome == "succeeded" => format!("{:.2}x", o / n),
        _ => "-".to_string(),
    };
    let line = format!(
        "corpus {:<16} {} objects={:>3} native={:>6} ours={:>6} ({}) outcome={} exit={} \
         twin={} plan={} failing={} failing_ours={} created={} cleanup={} left={} [{}]{}\n",
        r.chart,
        helm_name(r.helm),
        r.objects,
        secs(r.native_s),
        secs(r.ours_s),
        ratio,
        r.outcome,
        r.exit.map_or("-".to_string(), |c| c.to_string()),
        r.twin,
        r.plan,
        r.failing.outcomes.0,
        secs(r.failing.ours_s),
        r.failing.created,
        r.failing.outcomes.1,
        r.failing.left_after_cleanup,
        r.steps
            .iter()
            .map(|(step, s)| format!("{step} {s:.1}s"))
            .collect::<Vec<_>>()
            .join(", "),
        r.errors
            .first()
            .map(|e| format!(" error: {}", e.lines().next().unwrap_or("")))
            .unwrap_or_default(),
    );
    // Straight to the process's stderr: the test harness captures only print!/eprint!, and
    // these lines are wanted from passing tests too.
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Some(path) = std::env::var_os("HSR_CORPUS_REPORT") {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

fn run_chart(corpus: &Path, name: &str, settings: &Settings, helm: HelmMajor) -> Line {
    let bed = support::bed().expect("the bed");
    let s = Scenario::new(bed, helm, &format!("corpus-{name}"));
    // A stand-in kubelet for hook Jobs, for this namespace only (tools/complete-hook-jobs.sh).
    let _completer = settings
        .needs_job_completer
        .then(|| JobCompleter::start(&s, corpus));
    let mut result = Line::new(name, helm);
    let steps = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        corpus::success::run(&s, corpus, name, settings, &mut result)
    }));
    match steps {
        Ok(problems) => result.errors.extend(problems),
        Err(panic) => result.errors.push(panic_message(panic)),
    }
    // helm's leftovers go whatever happened: the other helm, and other charts, need the names.
    let started = Instant::now();
    let cleanup = remove_release(&s, corpus, name);
    result
        .steps
        .push(("cleanup", started.elapsed().as_secs_f64()));
    // A failed cleanup breaks the next helm's install: it is said even after ours failed.
    if let Err(cleanup) = cleanup {
        result.errors.push(format!("cleanup: {cleanup}"));
    }
    result
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".to_string())
}
