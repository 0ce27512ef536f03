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

use corpus::success::Pair;
use corpus::{corpus_dir, settings, Line, CHARTS};

one_test_per_chart!();

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

fn chart(name: &str) {
    let Some((corpus, _turn)) = corpus::begin(name) else {
        return;
    };
    let settings = settings(&corpus, name);
    let mut failures = Vec::new();
    for variant in corpus::variants(&settings) {
        let pair = Pair {
            install: Vec::new(),
            upgrade: settings.upgrade.clone(),
            helm4_flags: variant.helm4_flags.clone(),
            hand_edit: false,
            failing_path: true,
        };
        let result = corpus::run_chart(&corpus, name, &settings, &variant, &pair);
        report_line(&result);
        for error in &result.errors {
            failures.push(format!("{}: {error}", variant.label));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: helm safe-rollback is not a drop-in helm rollback here:\n{}",
        failures.join("\n")
    );
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
         twin={} plan={} predicted={} failing={} failing_ours={} created={} cleanup={} left={} [{}]{}\n",
        r.chart,
        r.helm_label,
        r.objects,
        secs(r.native_s),
        secs(r.ours_s),
        ratio,
        r.outcome,
        r.exit.map_or("-".to_string(), |c| c.to_string()),
        r.twin,
        r.plan,
        r.prediction,
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
    corpus::append_report("HSR_CORPUS_REPORT", &line);
}
