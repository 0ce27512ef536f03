//! The differential suite: native helm is the oracle of every verdict. For each chart of the
//! corpus, revision pairs generated from the chart's own values (corpus/differential.rs: common
//! and pod annotations and labels added and removed, an env item removed, replicas restored to
//! their default, an optional component switched on and off, a hand edit and a scale between
//! upgrade and rollback), each with helm 3 and helm 4 (both of its apply methods where the bed's
//! API server can run server-side apply), through the success path of corpus/success.rs: a twin
//! rolled back by native `helm rollback` is the reference for our outcome (`succeeded`, nothing
//! drifted or refused), the live objects after ours, `--plan`, and the preflight's prediction
//! of every object (`--plan`'s `predicted` against the twin's live objects).
//!
//! Every combination runs with `HSR_DIFFERENTIAL=all`, every variant of one case with
//! `HSR_DIFFERENTIAL_CASE=NAME`; otherwise one per chart, turning with each commit
//! (`HSR_DIFFERENTIAL_ROTATION` picks another turn), so that consecutive runs cover the set. Each combination prints one line on stderr, uncaptured, and appends it to
//! `HSR_DIFFERENTIAL_REPORT` when set; `bench/differential-table.py` makes the chart × case
//! table of bench/RESULTS.md from them. The corpus is found as tests/e2e_corpus.rs finds it.

mod support;

#[path = "corpus/mod.rs"]
mod corpus;

use corpus::differential::{self, Case};
use corpus::success::Pair;
use corpus::{settings, Line, Variant, CHARTS};

one_test_per_chart!();

fn chart(name: &str) {
    let Some((corpus, _turn)) = corpus::begin(name) else {
        return;
    };
    let settings = settings(&corpus, name);
    let bed = support::bed().expect("the bed");
    let chart = corpus.join("charts").join(name);
    let values = corpus.join("values").join(format!("{name}.yaml"));
    let minor = corpus::server_minor();
    let kube_version = format!("1.{minor}.0");
    let renders_change = |install: &[String], upgrade: &[String]| {
        differential::template_differs(&bed.helm3, &chart, &values, &kube_version, install, upgrade)
    };
    let found = differential::cases(&chart, &settings, minor, &renders_change);
    let mut combinations: Vec<(Variant, Case)> = Vec::new();
    for (case_name, case) in &found {
        match case {
            Ok(case) => {
                for variant in corpus::variants(&settings) {
                    combinations.push((variant, case.clone()));
                }
            }
            Err(why) => corpus::append_report(
                "HSR_DIFFERENTIAL_REPORT",
                &format!("differential {name:<16} - {case_name} n/a: {why}\n"),
            ),
        }
    }
    let index = CHARTS.iter().position(|c| *c == name).unwrap_or(0);
    let chosen = differential::chosen(index, combinations.len());
    let mut failures = Vec::new();
    let only = std::env::var("HSR_DIFFERENTIAL_CASE").ok();
    for (n, (variant, case)) in combinations.iter().enumerate() {
        let picked = match &only {
            Some(only) => case.name == only.as_str(),
            None => chosen.is_none_or(|c| c == n),
        };
        if !picked {
            continue;
        }
        let pair = Pair {
            install: case.install.clone(),
            upgrade: case.upgrade.clone(),
            helm4_flags: variant.helm4_flags.clone(),
            hand_edit: case.hand_edit,
            failing_path: false,
        };
        let result = corpus::run_chart(&corpus, name, &settings, variant, &pair);
        report_line(&result, case);
        for error in &result.errors {
            failures.push(format!("{} {}: {error}", variant.label, case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: ours differs from native helm:\n{}",
        failures.join("\n")
    );
}

fn report_line(r: &Line, case: &Case) {
    let verdict = if r.errors.is_empty() { "ok" } else { "FAIL" };
    let line = format!(
        "differential {:<16} {} {} {verdict} path={} outcome={} exit={} twin={} plan={} predicted={}{}\n",
        r.chart,
        r.helm_label,
        case.name,
        case.path,
        r.outcome,
        r.exit.map_or("-".to_string(), |c| c.to_string()),
        r.twin,
        r.plan,
        r.prediction,
        r.errors
            .first()
            .map(|e| format!(" error: {}", e.lines().next().unwrap_or("")))
            .unwrap_or_default(),
    );
    corpus::append_report("HSR_DIFFERENTIAL_REPORT", &line);
}
