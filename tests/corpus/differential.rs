//! The differential suite's cases: revision pairs generated from each chart's own values, each
//! rolled back by ours and by native helm (a twin) through the success path (success.rs).
//!
//! A case is found in the chart's `values.yaml` by the names popular charts give such values:
//! - `annotations`: an empty `commonAnnotations` / `podAnnotations` map, set by the upgrade and
//!   gone again after the rollback (helm's own metadata must stay, and nothing is drift);
//! - `labels`: an empty `commonLabels` / `podLabels` / `extraLabels` map, the same way;
//! - `env`: an empty `extraEnv` / `extraEnvVars` / `extraEnvs` / `env` list, an item added by the
//!   upgrade and removed by the rollback;
//! - `replicas`: a `replicaCount` / `replicas` number raised by the upgrade, restored to its
//!   default by the rollback;
//! - `toggle-on`, `toggle-off`: an optional component (`networkPolicy`, `ingress`,
//!   `podDisruptionBudget`, `pdb`) switched on by the upgrade (the rollback deletes its
//!   objects), or on in revision 1 and off in 2 (the rollback creates them);
//! - `hand-edit`: the corpus's own upgrade, and between it and each rollback the release's first
//!   Deployment scaled and annotated by hand.
//!
//! A case a chart's values have no candidate for, or whose candidates all render the same
//! manifest, is listed as not applicable with the reason: never dropped silently.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::Settings;
use crate::support::Run;

/// One revision pair of one chart.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    /// The value path the case changes (`-` for `hand-edit`).
    pub path: String,
    pub install: Vec<String>,
    pub upgrade: Vec<String>,
    pub hand_edit: bool,
}

/// Every case name, in table order.
pub const CASES: [&str; 7] = [
    "annotations",
    "labels",
    "env",
    "replicas",
    "toggle-on",
    "toggle-off",
    "hand-edit",
];

/// A case of this chart, or why there is none.
pub type Found = Result<Case, String>;

/// This chart's cases, one per case name, each the first candidate that changes the manifest
/// helm renders (`renders(install, upgrade)` says whether it does).
pub fn cases(
    chart: &Path,
    settings: &Settings,
    server_minor: u32,
    renders_change: &dyn Fn(&[String], &[String]) -> bool,
) -> Vec<(&'static str, Found)> {
    let values = chart_values(chart);
    let mut candidates = Vec::new();
    walk(&values, &mut Vec::new(), &mut candidates);
    CASES
        .iter()
        .map(|&name| {
            if name == "hand-edit" {
                let case = Case {
                    name,
                    path: "-".into(),
                    install: Vec::new(),
                    upgrade: settings.upgrade.clone(),
                    hand_edit: true,
                };
                return (name, Ok(case));
            }
            let mut tried = 0;
            for (kind, path, value) in &candidates {
                let Some(case) = case_for(name, kind, path, value, server_minor) else {
                    continue;
                };
                tried += 1;
                if renders_change(&case.install, &case.upgrade) {
                    return (name, Ok(case));
                }
            }
            let why = match tried {
                0 => "no such value in the chart's values.yaml".to_string(),
                n => format!("none of its {n} candidate value(s) changes what the chart renders"),
            };
            (name, Err(why))
        })
        .collect()
}

/// The case `name` made from one candidate value, if it is one of that case's.
fn case_for(
    name: &'static str,
    kind: &Candidate,
    path: &str,
    value: &Value,
    server_minor: u32,
) -> Option<Case> {
    let set = |assignments: &[String]| -> Vec<String> {
        assignments
            .iter()
            .flat_map(|a| ["--set".to_string(), a.clone()])
            .collect()
    };
    let case = |install: Vec<String>, upgrade: Vec<String>| Case {
        name,
        path: path.to_string(),
        install,
        upgrade,
        hand_edit: false,
    };
    match (name, kind) {
        ("annotations", Candidate::Annotations) | ("labels", Candidate::Labels) => Some(case(
            Vec::new(),
            set(&[format!("{path}.hsr-differential=v2")]),
        )),
        ("env", Candidate::Env) => Some(case(
            Vec::new(),
            set(&[
                format!("{path}[0].name=HSR_DIFFERENTIAL"),
                format!("{path}[0].value=v2"),
            ]),
        )),
        ("replicas", Candidate::Replicas) => {
            let raised = value.as_u64()? + 1;
            Some(case(Vec::new(), set(&[format!("{path}={raised}")])))
        }
        // policy/v1 PodDisruptionBudgets are served from 1.21 on; charts write them so.
        ("toggle-on" | "toggle-off", Candidate::Component(component))
            if server_minor >= 21 || !component.contains("isruption") && component != "pdb" =>
        {
            let (on, off) = (
                set(&[format!("{path}.enabled=true")]),
                set(&[format!("{path}.enabled=false")]),
            );
            Some(match name {
                "toggle-on" => case(Vec::new(), on),
                _ => case(on, off),
            })
        }
        _ => None,
    }
}

/// What a value is a candidate for.
#[derive(Debug)]
enum Candidate {
    Annotations,
    Labels,
    Env,
    Replicas,
    /// An optional component, by its key.
    Component(String),
}

/// Candidates in document order, down to four levels (`a.b.c.podAnnotations`).
fn walk(value: &Value, path: &mut Vec<String>, out: &mut Vec<(Candidate, String, Value)>) {
    let Some(map) = value.as_object() else { return };
    if path.len() > 3 {
        return;
    }
    for (key, value) in map {
        // `--set` cannot address a key with a dot in it.
        if key.contains('.') {
            continue;
        }
        path.push(key.clone());
        let joined = path.join(".");
        let empty_map = value.as_object().is_some_and(|m| m.is_empty());
        let empty_list = value.as_array().is_some_and(|l| l.is_empty());
        let candidate = match key.as_str() {
            "commonAnnotations" | "podAnnotations" if empty_map => Some(Candidate::Annotations),
            "commonLabels" | "podLabels" | "extraLabels" if empty_map => Some(Candidate::Labels),
            "extraEnv" | "extraEnvVars" | "extraEnvs" | "env" if empty_list => Some(Candidate::Env),
            "replicaCount" | "replicas" if value.is_u64() => Some(Candidate::Replicas),
            "networkPolicy" | "ingress" | "podDisruptionBudget" | "pdb"
                if value.get("enabled") == Some(&Value::Bool(false)) =>
            {
                Some(Candidate::Component(key.clone()))
            }
            _ => None,
        };
        if let Some(candidate) = candidate {
            out.push((candidate, joined, value.clone()));
        }
        walk(value, path, out);
        path.pop();
    }
}

/// The chart's default values, read as helm reads them (YAML 1.1).
fn chart_values(chart: &Path) -> Value {
    let text = std::fs::read_to_string(chart.join("values.yaml")).unwrap_or_default();
    helm_safe_rollback::yaml11::documents(&text)
        .ok()
        .and_then(|docs| docs.into_iter().next())
        .unwrap_or(Value::Null)
}

/// Whether `helm template` renders another manifest (hooks aside) with `upgrade` than with
/// `install`, the chart's corpus values under both.
pub fn template_differs(
    helm: &Path,
    chart: &Path,
    values: &Path,
    kube_version: &str,
    install: &[String],
    upgrade: &[String],
) -> bool {
    let render = |extra: &[String]| {
        let mut command = Command::new(helm);
        command
            // Hooks are not in a release's manifest: a change to them alone is no revision
            // pair for a rollback.
            .args(["template", "differential", "--no-hooks"])
            .arg(chart)
            .arg("-f")
            .arg(values)
            .args(["--kube-version", kube_version])
            .args(extra);
        Run::from(command.output().expect("run helm template"))
    };
    let before = render(install);
    let mut both = install.to_vec();
    both.extend(upgrade.iter().cloned());
    let after = render(&both);
    before.code == 0 && after.code == 0 && before.stdout != after.stdout
}

/// Which cases run now: all of them with `HSR_DIFFERENTIAL=all`, else one `(variant, case)`
/// per chart, turning with `HSR_DIFFERENTIAL_ROTATION` (default: the number of commits of the
/// checkout), so that consecutive runs cover the whole set.
pub fn chosen(chart_index: usize, combinations: usize) -> Option<usize> {
    if std::env::var("HSR_DIFFERENTIAL").as_deref() == Ok("all") || combinations == 0 {
        return None;
    }
    let rotation = std::env::var("HSR_DIFFERENTIAL_ROTATION")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
        .unwrap_or_else(commit_count);
    // Combinations are case by case, each with every variant (2 or 3 of them): a stride of 4
    // gives neighbouring charts other variants and other cases in the same run.
    Some((rotation + chart_index * 4) % combinations)
}

fn commit_count() -> usize {
    let output = Command::new("git")
        .args(["rev-list", "--count", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    output
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}
