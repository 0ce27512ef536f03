//! Tools named explicitly, one test per area: every other e2e test finds
//! `helm` and `kubectl` on PATH as a user's shell does; these give `HELM_BIN=/abs/helm` and
//! `--kubectl /abs/kubectl` with a PATH that has neither, so a lookup on PATH anywhere in the
//! run (a delete, the verification's dry run, `--finish`, the plugin) fails the test.

mod support;

use support::{HelmMajor, Run, Scenario};

for_both_helms!(
    delete_an_orphan_with_explicit_tools,
    verify_with_explicit_tools,
    finish_a_killed_run_with_explicit_tools,
    the_plugin_with_an_absolute_helm_and_explicit_kubectl
);

fn explicit(s: &Scenario, args: &[&str]) -> Run {
    Run::from(
        s.safe_rollback_explicit_command(args)
            .output()
            .expect("run helm-safe-rollback"),
    )
}

/// Delete/reconcile: an orphan of a failed upgrade is deleted with `--cleanup-on-fail`, by uid,
/// through the kubectl proxy started from `--kubectl`.
fn delete_an_orphan_with_explicit_tools(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "explicit-delete");
    let orphan = s.orphan_of_a_failed_upgrade();

    let run = explicit(&s, &["more", "1", "--cleanup-on-fail", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    let reconciled = report["reconciled"].as_array().unwrap();
    assert_eq!(reconciled.len(), 1, "{run}");
    assert_eq!(reconciled[0]["uid"], orphan.as_str(), "{run}");
    assert_eq!(reconciled[0]["result"], "deleted", "{run}");
    let recreated = s.uid("configmap/more-extra").expect("recreated by helm");
    assert_ne!(recreated, orphan);
}

/// Verification (without preflight, so it is the only dry run) goes through the kubectl proxy
/// started from the kubectl given, not one on PATH: a clean rollback is verified, not skipped.
fn verify_with_explicit_tools(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "explicit-verify");
    s.seed_without_service();
    let run = explicit(&s, &["seed", "1", "--no-preflight", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert_eq!(report["verified"], true, "verification ran:\n{run}");
    assert_eq!(report["drifted"], serde_json::json!([]), "{run}");
}

/// `--finish` of a run killed outright while helm waited: the journal is completed and what
/// the killed run created is reported, with the tools given explicitly.
fn finish_a_killed_run_with_explicit_tools(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "explicit-finish");
    let chart = s.chart("more");
    s.helm(&["install", "more", &chart, "--set", "extra=true,replicas=1"])
        .ok();
    s.helm(&["upgrade", "more", &chart, "--set", "extra=false,replicas=1"])
        .ok();
    s.kill_once_more_extra_exists(&mut s.safe_rollback_explicit_command(&[
        "more",
        "1",
        "--wait",
        "--timeout",
        "5m",
    ]));

    let run = explicit(&s, &["more", "--finish", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let leftovers = run.json()["leftovers"].as_array().unwrap().clone();
    assert!(leftovers.iter().any(|l| l["name"] == "more-extra"), "{run}");
    assert!(
        s.journals()
            .iter()
            .all(|(_, text)| text.contains("\"state\": \"completed\"")),
        "the journal is completed"
    );
}

/// The plugin run by helm's absolute path (helm puts that path in HELM_BIN) with `--kubectl`
/// absolute, and no helm or kubectl on PATH.
fn the_plugin_with_an_absolute_helm_and_explicit_kubectl(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "explicit-plugin");
    s.install_plugin();
    s.seed_release("seed", false);
    let mut command = std::process::Command::new(s.helm_bin());
    s.explicit_tools_env(&mut command);
    command
        .args([
            "safe-rollback",
            "seed",
            "1",
            "--output",
            "json",
            "--kubectl",
        ])
        .arg(&s.bed.kubectl)
        .args(["--namespace", &s.namespace, "--journal-dir"])
        .arg(s.journal_dir());
    let run = Run::from(command.output().unwrap());
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert_eq!(report["verified"], true, "{run}");
    assert!(s.uid("service/seed-standby").is_some(), "rolled back to 1");
}
