//! The success path of a corpus chart with one helm, then its failing rollback (failing.rs):
//!
//! install (1) → upgrade by one value (2) → `helm safe-rollback REL 1 --plan` → native
//! `helm rollback REL 1` (3, the twin, timed) → native `helm rollback REL 2` (4, the upgraded
//! state again) → `helm safe-rollback REL 1` (5, timed): exit 0, `succeeded`, nothing refused or
//! drifted, revision 1's manifest deployed with every object live, and the live objects the same
//! as after the native rollback (snapshot.rs). The plan, made before the native rollback, must
//! name exactly what it created and deleted, and among its updates every object it changed; and
//! each object it predicts (`--plan`'s `predicted`: the preflight's dry run of helm's own write)
//! must be the object the native rollback left, normalised alike.
//!
//! What revisions 1 and 2 are, and what happens between the upgrade and each rollback, is a
//! [`Pair`]: the corpus suite's is the chart's one changed value; the differential suite's
//! (differential.rs) are generated from the chart's values.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::cluster::{cluster_kinds, last_line, live, manifest, objects_of};
use super::failing;
use super::snapshot::{self, plan_keys};
use super::Line;
use crate::support::{HelmMajor, Scenario};

/// The two revisions a run rolls back between, and what happens between them.
pub struct Pair {
    /// `helm install` arguments beyond the chart's corpus values: revision 1.
    pub install: Vec<String>,
    /// `helm upgrade` arguments beyond them: revision 2.
    pub upgrade: Vec<String>,
    /// helm 4's install and upgrade flags (its apply method).
    pub helm4_flags: Vec<String>,
    /// A scale and an annotation by hand after the upgrade and after the rollback to 2.
    pub hand_edit: bool,
    /// The failing rollback (failing.rs) follows.
    pub failing_path: bool,
}

/// Returns every problem found with ours; panics when the bed itself fails us.
pub fn run(s: &Scenario, corpus: &Path, name: &str, pair: &Pair, result: &mut Line) -> Vec<String> {
    let chart = corpus.join("charts").join(name);
    let chart_arg = chart.to_str().unwrap();
    let values = corpus.join("values").join(format!("{name}.yaml"));
    let values_arg = values.to_str().unwrap();
    // Every install and upgrade: helm 4's apply method, and the chart's values as its users
    // set them on this API server (see `unbent`).
    let mut flags: Vec<String> = match s.helm {
        HelmMajor::V3 => vec![],
        HelmMajor::V4 => pair.helm4_flags.clone(),
    };
    flags.extend(super::unbent(name));
    let flag_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let step = |label: &'static str, args: &[&str], result: &mut Line| {
        let started = Instant::now();
        let run = s.helm(args);
        result.steps.push((label, started.elapsed().as_secs_f64()));
        run
    };
    // As tools/test-chart.sh does it: never --wait (no nodes), hooks bounded by --timeout.
    let mut install = vec![
        "install",
        name,
        chart_arg,
        "-f",
        values_arg,
        "--timeout",
        "3m",
    ];
    install.extend(pair.install.iter().map(String::as_str));
    install.extend(&flag_args);
    step("install", &install, result).ok();
    let revision1 = manifest(s, name, Some(1));
    let all_kinds = cluster_kinds(s);
    let objects = objects_of(&revision1, &s.namespace, &all_kinds);
    result.objects = objects.len();

    let mut upgrade = vec![
        "upgrade",
        name,
        chart_arg,
        "-f",
        values_arg,
        "--timeout",
        "3m",
    ];
    upgrade.extend(pair.upgrade.iter().map(String::as_str));
    upgrade.extend(&flag_args);
    step("upgrade", &upgrade, result).ok();
    let revision2 = manifest(s, name, None);
    assert_ne!(
        revision2, revision1,
        "the upgrade step changes the manifest"
    );
    // The cluster-scoped kinds of the release, for snapshots (the failing revision's extra
    // object is a ConfigMap: no new kind).
    let kinds: BTreeSet<String> = objects_of(&revision1, &s.namespace, &all_kinds)
        .into_iter()
        .chain(objects_of(&revision2, &s.namespace, &all_kinds))
        .filter(|o| o.namespace.is_empty())
        .map(|o| o.kind)
        .collect();
    // Every kind of the release (the failing revision's extra object is a ConfigMap).
    let chart_kinds: BTreeSet<String> = objects_of(&revision1, &s.namespace, &all_kinds)
        .into_iter()
        .chain(objects_of(&revision2, &s.namespace, &all_kinds))
        .map(|o| o.kind)
        .chain(["ConfigMap".to_string()])
        .collect();
    let lister = snapshot::Lister::new(s, &kinds, &chart_kinds);
    let snap = || snapshot::take(s, name, &lister);
    let hand_edit = || {
        if pair.hand_edit {
            hand_edit(s, &objects_of(&revision2, &s.namespace, &all_kinds));
        }
    };
    hand_edit();

    // The plan and the native twin, on a cluster ours has not changed.
    let plan = s.safe_rollback(&[name, "1", "--plan", "--output", "json"]);
    let before_native = snap();
    let native = step(
        "native rollback",
        &["rollback", name, "1", "--timeout", "3m"],
        result,
    );
    result.native_s = result.steps.last().map(|(_, t)| *t);
    let after_native = snap();
    // A native rollback that fails (helm 4 applying server-side onto a field a hand edit
    // took: `conflict with "kubectl" with subresource "scale"`) is the reference too: ours
    // must not succeed either, and must say why (`as_native_failed`). The corpus suite's
    // pairs are plain upgrades: there native helm must succeed.
    let native_failed = (native.code != 0).then(|| native_cause(&native));
    if pair.failing_path {
        native.ok();
    }
    let back_to_2 = step(
        "native rollback to 2",
        &["rollback", name, "2", "--timeout", "3m"],
        result,
    );
    if native_failed.is_none() {
        back_to_2.ok();
    }
    hand_edit();

    let mut problems = Vec::new();
    // A delete that destroys data (a PVC, a CRD, a Namespace) is refused by default: then the
    // refusal is checked, and the twin compared with the run that allows it, as native helm
    // deletes without asking.
    let destructive = serde_json::from_str::<Value>(&plan.stdout)
        .ok()
        .and_then(|report| report["plan"]["destructive"].as_array().map(Vec::len))
        .unwrap_or(0);
    let mut ours_args = vec![name, "1", "--output", "json", "--timeout", "3m"];
    if destructive > 0 {
        let refused = s.safe_rollback(&ours_args);
        if refused.code != 5 {
            problems.push(format!(
                "{destructive} destructive delete(s) planned, but not refused: exit {}",
                refused.code
            ));
        }
        ours_args.push("--allow-destructive");
    }
    if let Some(cause) = &native_failed {
        result.twin = "failed".to_string();
        let run = s.safe_rollback(&ours_args);
        result.exit = Some(run.code);
        problems.extend(as_native_failed(&run, cause, result));
        return problems;
    }
    problems.extend(check_plan(
        &plan,
        &before_native.changes(&after_native),
        &kinds,
    ));
    result.plan = if problems.is_empty() { "ok" } else { "wrong" }.to_string();
    let predicted = serde_json::from_str::<Value>(&plan.stdout)
        .map(|report| report["plan"]["predicted"].clone())
        .unwrap_or_default();
    let mispredicted = snapshot::prediction_differences(&predicted, &after_native);
    result.prediction = if mispredicted.is_empty() {
        "same"
    } else {
        "differs"
    }
    .to_string();
    problems.extend(mispredicted);

    let started = Instant::now();
    let run = s.safe_rollback(&ours_args);
    result.ours_s = Some(started.elapsed().as_secs_f64());
    result.exit = Some(run.code);
    let after_ours = snap();
    match serde_json::from_str::<Value>(&run.stdout) {
        Ok(report) => {
            result.outcome = report["outcome"].as_str().unwrap_or("?").to_string();
            let first = |key: &str| -> Option<String> {
                report[key]
                    .as_array()
                    .and_then(|a| a.first())
                    .map(|v| v.as_str().map_or(v.to_string(), String::from))
            };
            if run.code != 0 || report["outcome"] != "succeeded" {
                let why = first("refusal_reasons")
                    .or_else(|| first("primary_errors"))
                    .or_else(|| first("drifted").map(|d| format!("drifted: {d}")))
                    .unwrap_or_else(|| last_line(&run.stderr));
                problems.push(format!(
                    "exit {}, outcome {}: {why}\n{run}",
                    run.code, result.outcome
                ));
            }
            for key in ["refusal_reasons", "drifted"] {
                if report[key].as_array().is_none_or(|a| !a.is_empty()) {
                    problems.push(format!("{key}: {}\n{run}", report[key]));
                }
            }
        }
        Err(e) => {
            result.outcome = "no-report".to_string();
            problems.push(format!(
                "exit {}, stdout is not a JSON report ({e}): {}\n{run}",
                run.code,
                last_line(&run.stderr)
            ));
        }
    }

    // The state a native rollback leaves: revision 1's manifest, deployed, every object live,
    // and the same objects with the same spec as the twin.
    if manifest(s, name, None) != revision1 {
        problems.push("the release's manifest is not revision 1's".to_string());
    }
    let status = s.helm(&["status", name, "-o", "json"]).ok().stdout;
    let status: Value = serde_json::from_str(&status).expect("helm status JSON");
    if status["info"]["status"] != "deployed" {
        problems.push(format!("release status {}", status["info"]["status"]));
    }
    let missing: Vec<_> = objects.difference(&live(s, &objects)).cloned().collect();
    if !missing.is_empty() {
        problems.push(format!("objects of revision 1 missing: {missing:?}"));
    }
    let differences = after_native.differences(&after_ours);
    result.twin = if differences.is_empty() {
        "same"
    } else {
        "differs"
    }
    .to_string();
    if !differences.is_empty() {
        problems.push(format!(
            "live objects after ours differ from the native twin's (first: native, second: \
             ours):\n{}",
            differences.join("\n")
        ));
    }

    if !pair.failing_path {
        return problems;
    }
    let failing = failing::Chart {
        s,
        name,
        chart: &chart,
        values: &values,
        flags: flags.clone(),
        cluster_kinds: kinds,
        lister: &lister,
    };
    let started = Instant::now();
    problems.extend(failing::run(&failing, &mut result.failing));
    result
        .steps
        .push(("failing path", started.elapsed().as_secs_f64()));
    problems
}

/// What native helm's failure says: its `Error:` line (helm 4 also gives the cause in a WARN
/// line), without the `Error: ` prefix.
fn native_cause(native: &crate::support::Run) -> String {
    let error = native
        .stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Error: "))
        .map(str::to_string);
    error.unwrap_or_else(|| last_line(&native.stderr))
}

/// Where the native twin failed, ours must not succeed: refused before helm ran (nothing
/// changed), or failed as helm did; either way its first primary error names helm's cause.
fn as_native_failed(run: &crate::support::Run, cause: &str, result: &mut Line) -> Vec<String> {
    let Ok(report) = serde_json::from_str::<Value>(&run.stdout) else {
        result.outcome = "no-report".to_string();
        return vec![format!(
            "exit {}, stdout is not a JSON report\n{run}",
            run.code
        )];
    };
    result.outcome = report["outcome"].as_str().unwrap_or("?").to_string();
    let first = report["primary_errors"][0].as_str().unwrap_or_default();
    // helm's words end with what conflicted (`... using apps/v1: .spec.replicas`); ours may
    // quote the API server's answer to the same write, which ends the same way.
    let key = cause.rsplit(": ").next().unwrap_or(cause).trim();
    let mut problems = Vec::new();
    if run.code == 0 || !matches!(result.outcome.as_str(), "refused" | "failed") {
        problems.push(format!(
            "native helm failed ({cause}), ours: exit {}, outcome {}\n{run}",
            run.code, result.outcome
        ));
    } else if !first.contains(key) {
        problems.push(format!(
            "native helm failed on {key:?}; ours leads with {first:?}\n{run}"
        ));
    }
    problems
}

/// What someone does by hand between an upgrade and a rollback: scale the release's first
/// Deployment and annotate it. The same edits precede the native rollback and ours.
fn hand_edit(s: &Scenario, objects: &BTreeSet<super::cluster::Identity>) {
    let Some(deployment) = objects.iter().find(|o| o.kind == "Deployment") else {
        return;
    };
    let target = deployment.arg();
    let namespace = &deployment.namespace;
    s.kubectl(&["scale", &target, "--replicas=3", "--namespace", namespace]);
    s.kubectl(&[
        "annotate",
        &target,
        "hsr.example.com/hand-edit=yes",
        "--overwrite",
        "--namespace",
        namespace,
    ]);
}

/// `--plan`'s forecast against what the native rollback did to the release's objects.
fn check_plan(
    plan: &crate::support::Run,
    native: &snapshot::Changes,
    kinds: &BTreeSet<String>,
) -> Vec<String> {
    let Ok(report) = serde_json::from_str::<Value>(&plan.stdout) else {
        return vec![format!("--plan: no JSON report\n{plan}")];
    };
    let mut problems = Vec::new();
    if plan.code != 0 || report["outcome"] != "planned" {
        problems.push(format!(
            "--plan: exit {}, {}\n{plan}",
            plan.code, report["outcome"]
        ));
    }
    let plan = &report["plan"];
    let (create, update, delete, take_over) = (
        plan_keys(&plan["create"], kinds),
        plan_keys(&plan["update"], kinds),
        plan_keys(&plan["delete"], kinds),
        plan_keys(&plan["take_over"], kinds),
    );
    if create != native.created {
        problems.push(format!(
            "--plan create {create:?}, native created {:?}",
            native.created
        ));
    }
    if delete != native.deleted {
        problems.push(format!(
            "--plan delete {delete:?}, native deleted {:?}",
            native.deleted
        ));
    }
    if !update.is_superset(&native.updated) {
        problems.push(format!(
            "--plan update {update:?} misses objects native changed: {:?}",
            native.updated.difference(&update).collect::<Vec<_>>()
        ));
    }
    if !take_over.is_empty() {
        problems.push(format!(
            "--plan take over {take_over:?}: nothing is foreign"
        ));
    }
    problems
}
