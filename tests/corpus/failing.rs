//! The failing rollback of a corpus chart: a revision made invalid by one `--set` of a value the
//! chart passes into a field the API server validates, rolled back to with `--no-preflight`.
//!
//! So that the failed rollback has something to create (and so to leave behind), the invalid
//! revision is made from a copy of the chart with one more template, a ConfigMap the other
//! revisions do not have: the chart's own objects are untouched, and the invalid value is the
//! chart's own. Steps: the invalid upgrade fails (with `--cleanup-on-fail`, so helm removes what it
//! created), then `helm safe-rollback REL <failed> --no-preflight --cleanup-on-fail`: it fails with the API
//! server's reason first and leaves nothing; then `--plan` and the same rollback without
//! cleanup: the reason first, leftovers exactly what it created (live state before and after),
//! each named by the plan, and each leftover's printed `delete_command` removes it.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::cluster::{last_line, revisions};
use super::snapshot::{self, plan_keys};
use crate::support::{copy_dir, Run, Scenario};

/// Per chart: the `--set` that makes a revision invalid, and the text of the API server's reason
/// that must come first in `primary_errors`. An annotation key with two `/` is not a qualified
/// name (ValidateObjectMeta); a negative replica count fails ValidateNonnegativeField. Every
/// chart passes the value into a workload object (pod template or object metadata).
pub const INVALID: &[(&str, &str, &str)] = &[
    ("argo-cd", "server.podAnnotations.corpus/bad/key=v", BAD_KEY),
    (
        "argo-workflows",
        "controller.podAnnotations.corpus/bad/key=v",
        BAD_KEY,
    ),
    ("cert-manager", "replicaCount=-1", NEGATIVE),
    ("filebeat", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    ("fluent-bit", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    (
        "fluent-operator",
        "operator.annotations.corpus/bad/key=v",
        BAD_KEY,
    ),
    ("fluentd", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    ("gatekeeper", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    ("harbor", "core.podAnnotations.corpus/bad/key=v", BAD_KEY),
    (
        "ingress-nginx",
        "controller.podAnnotations.corpus/bad/key=v",
        BAD_KEY,
    ),
    (
        "jenkins",
        "controller.podAnnotations.corpus/bad/key=v",
        BAD_KEY,
    ),
    ("kibana", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    (
        "loki-distributed",
        "querier.podAnnotations.corpus/bad/key=v",
        BAD_KEY,
    ),
    ("metrics-server", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    ("redis-ha", "redis.podAnnotations.corpus/bad/key=v", BAD_KEY),
    ("sealed-secrets", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    ("vault", "server.annotations.corpus/bad/key=v", BAD_KEY),
    ("velero", "podAnnotations.corpus/bad/key=v", BAD_KEY),
    (
        "vpa",
        "recommender.podAnnotations.corpus/bad/key=v",
        BAD_KEY,
    ),
];

const BAD_KEY: &str = "Invalid value: \"corpus/bad/key\"";
const NEGATIVE: &str = "must be greater than or equal to 0";

/// What the failing rollback did, for the report line.
#[derive(Default)]
pub struct Outcome {
    /// `outcome` of the run without and with `--cleanup-on-fail`.
    pub outcomes: (String, String),
    /// Objects the first failed rollback created (all reported as leftovers when it is right).
    pub created: usize,
    /// Objects left after the run with `--cleanup-on-fail`.
    pub left_after_cleanup: usize,
    pub ours_s: Option<f64>,
}

/// Everything the steps need from the chart's test.
pub struct Chart<'a> {
    pub s: &'a Scenario,
    pub name: &'a str,
    pub chart: &'a Path,
    pub values: &'a Path,
    /// The flags of every install and upgrade (helm 4's apply method, the unbent values).
    pub flags: Vec<String>,
    pub cluster_kinds: BTreeSet<String>,
    pub lister: &'a snapshot::Lister,
}

impl Chart<'_> {
    fn upgrade(&self, chart: &Path, set: &[String]) -> Run {
        let mut args = vec![
            "upgrade".to_string(),
            self.name.to_string(),
            chart.display().to_string(),
            "-f".to_string(),
            self.values.display().to_string(),
            "--timeout".to_string(),
            "3m".to_string(),
        ];
        args.extend(set.iter().cloned());
        args.extend(self.flags.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.s.helm(&args)
    }

    fn snapshot(&self) -> snapshot::Snapshot {
        snapshot::take(self.s, self.name, self.lister)
    }
}

/// The failing rollback and its checks; returns every problem found with ours.
pub fn run(c: &Chart, outcome: &mut Outcome) -> Vec<String> {
    let (set, reason) = INVALID
        .iter()
        .find(|(chart, _, _)| *chart == c.name)
        .map(|(_, set, reason)| (*set, *reason))
        .unwrap_or_else(|| panic!("{}: no invalid value in INVALID", c.name));
    let mut problems = Vec::new();

    // The chart with one more object, only in the invalid revision.
    let bad_chart = c.s.home.path().join(format!("chart-{}-invalid", c.name));
    copy_dir(c.chart, &bad_chart);
    std::fs::write(
        bad_chart.join("templates/zz-corpus-extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-corpus-extra\n\
         data:\n  why: only the invalid revision has this object\n",
    )
    .unwrap();

    // `--cleanup-on-fail`: helm removes what the failed upgrade created (the extra object), so
    // the rollback to the failed revision creates it again. No good upgrade is needed after it:
    // helm rolls back from the last revision (the failed one) and creates what is not live.
    let mut bad_set = vec!["--set".to_string(), set.to_string()];
    bad_set.push("--cleanup-on-fail".to_string());
    let bad = c.upgrade(&bad_chart, &bad_set);
    assert_ne!(bad.code, 0, "{set}: the invalid upgrade must fail:\n{bad}");
    assert!(
        bad.stderr.contains(reason),
        "{set}: the upgrade fails for another reason than the API server's ({reason}):\n{bad}"
    );
    let failed = revisions(c.s, c.name)
        .last()
        .expect("a history")
        .to_string();

    // The rollback asked to clean up after itself: nothing it created stays.
    let before = c.snapshot();
    let run = c.s.safe_rollback(&[
        c.name,
        &failed,
        "--no-preflight",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--timeout",
        "3m",
    ]);
    let after = c.snapshot();
    let report = report_of(&run, reason, &mut problems);
    outcome.outcomes.1 = report["outcome"]
        .as_str()
        .unwrap_or("no-report")
        .to_string();
    let changes = before.changes(&after);
    outcome.left_after_cleanup = changes.created.len();
    if !changes.created.is_empty() || !changes.deleted.is_empty() {
        problems.push(format!(
            "--cleanup-on-fail left {:?} and deleted {:?}\n{run}",
            changes.created, changes.deleted
        ));
    }
    if report["leftovers"].as_array().is_none_or(|l| !l.is_empty()) {
        problems.push(format!(
            "--cleanup-on-fail reports leftovers {}",
            report["leftovers"]
        ));
    }
    // The same rollback without cleanup, now from the failed rollback's revision (helm
    // compares with that revision's manifest, which has the extra object, but creates what is
    // not live). What --plan forecasts, then what the rollback does.
    let plan =
        c.s.safe_rollback(&[c.name, &failed, "--plan", "--output", "json"]);
    // `--plan` changed nothing: the state after the cleanup run is this run's before.
    let before = after;
    let started = std::time::Instant::now();
    let run = c.s.safe_rollback(&[
        c.name,
        &failed,
        "--no-preflight",
        "--output",
        "json",
        "--timeout",
        "3m",
    ]);
    outcome.ours_s = Some(started.elapsed().as_secs_f64());
    let after = c.snapshot();
    let changes = before.changes(&after);
    outcome.created = changes.created.len();
    let report = report_of(&run, reason, &mut problems);
    outcome.outcomes.0 = report["outcome"]
        .as_str()
        .unwrap_or("no-report")
        .to_string();
    match plan.json()["plan"]["create"].clone() {
        Value::Null => problems.push(format!("--plan: no plan.create\n{plan}")),
        create => {
            let create = plan_keys(&create, &c.cluster_kinds);
            if !create.is_superset(&changes.created) {
                problems.push(format!(
                    "--plan create {create:?} does not name all the rollback created: {:?}",
                    changes.created
                ));
            }
        }
    }
    if !changes.deleted.is_empty() {
        problems.push(format!("a failed rollback deleted {:?}", changes.deleted));
    }
    let leftovers: BTreeSet<String> = report["leftovers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let kind = l["kind"].as_str().unwrap_or("");
            let namespace = if c.cluster_kinds.contains(kind) {
                ""
            } else {
                l["namespace"].as_str().unwrap_or("")
            };
            format!("{kind}/{namespace}/{}", l["name"].as_str().unwrap_or(""))
        })
        .collect();
    if leftovers != changes.created {
        problems.push(format!(
            "leftovers {leftovers:?} are not what the failed rollback created {:?}\n{run}",
            changes.created
        ));
    }
    // Each printed delete command, run as a user would from a shell, removes its object.
    for leftover in report["leftovers"].as_array().cloned().unwrap_or_default() {
        let command_line = leftover["delete_command"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut shell = Command::new("sh");
        c.s.user_env(&mut shell);
        let deleted = Run::from(shell.args(["-c", &command_line]).output().unwrap());
        if deleted.code != 0 {
            problems.push(format!("`{command_line}` failed:\n{deleted}"));
        }
    }
    let cleared = c.snapshot();
    let still = before.changes(&cleared).created;
    if !still.is_empty() {
        problems.push(format!("still there after the delete commands: {still:?}"));
    }

    problems
}

/// The JSON report of a failed rollback, checked: helm's exit code 1, `failed`, the API server's
/// reason as the first primary error.
fn report_of(run: &Run, reason: &str, problems: &mut Vec<String>) -> Value {
    let Ok(report) = serde_json::from_str::<Value>(&run.stdout) else {
        problems.push(format!("no JSON report: {}\n{run}", last_line(&run.stderr)));
        return Value::Null;
    };
    let first = report["primary_errors"][0].as_str().unwrap_or("");
    if run.code != 1 || report["outcome"] != "failed" || !first.contains(reason) {
        problems.push(format!(
            "expected exit 1, failed, the API server's reason ({reason}) first; got exit {}, \
             {}, first primary error: {first:?}\n{run}",
            run.code, report["outcome"]
        ));
    }
    report
}
