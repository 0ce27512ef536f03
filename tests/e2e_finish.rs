//! `--finish` as a user at 3 a.m. runs it, through the installed plugin: a run killed outright
//! (SIGKILL to its process group, as a CI runner's hard kill) left its journal open. The journal
//! names the cluster it was written against, so `--finish` refuses to act on another one; the
//! command we print to finish it carries the kubeconfig context; and the killed run's own
//! `--cleanup-on-fail=false` is read as false (not as true, by its prefix).

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(a_journal_is_only_finished_on_its_own_cluster_and_as_it_was_asked);

fn a_journal_is_only_finished_on_its_own_cluster_and_as_it_was_asked(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let mut s = Scenario::new(bed, helm, "finish");
    s.kubeconfig = with_a_second_cluster(&s);
    // Revision 1 has `more-extra`, revision 2 not: rolling back to 1 creates it, then waits
    // for a Deployment that never becomes ready (the bed has no nodes).
    let chart = s.chart("more");
    let values = ["--set", "replicas=1"];
    s.helm(
        &[
            &["install", "more", &chart, "--set", "extra=true"][..],
            &values[..],
        ]
        .concat(),
    )
    .ok();
    s.helm(
        &[
            &["upgrade", "more", &chart, "--set", "extra=false"][..],
            &values[..],
        ]
        .concat(),
    )
    .ok();
    s.kill_once_more_extra_exists(&mut s.safe_rollback_command(&[
        "more",
        "1",
        "--wait",
        "--timeout",
        "5m",
        "--cleanup-on-fail=false",
        "--kube-context",
        "testbed",
    ]));
    let extra = s
        .uid("configmap/more-extra")
        .expect("the killed run created it");

    // Another cluster: refused in one line, nothing done.
    let run = s.safe_rollback(&["more", "--finish", "--kube-context", "elsewhere"]);
    assert_eq!(run.code, 3, "{run}");
    assert_eq!(run.plugin_stderr_lines().len(), 1, "{run}");
    assert!(
        run.stderr.contains("was written against https://127.0.0.1")
            && run
                .stderr
                .contains("https://127.0.0.1:1 (context elsewhere)"),
        "{run}"
    );
    assert!(s.journals()[0].1.contains("\"state\": \"captured\""));

    // The next run points at the journal with a command that names the killed run's context.
    let run = s.safe_rollback(&["more", "--plan", "--kube-context", "testbed", "-o", "json"]);
    let warnings = strings(&run.json()["warnings"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("--finish") && w.contains("--kube-context testbed")),
        "{run}"
    );

    // The right cluster: finished; `--cleanup-on-fail=false` then means no deletes.
    let run = s.safe_rollback(&[
        "more",
        "--finish",
        "--kube-context",
        "testbed",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["reconciled"], serde_json::json!([]), "{run}");
    let leftovers = report["leftovers"].as_array().unwrap();
    assert!(leftovers.iter().any(|l| l["name"] == "more-extra"), "{run}");
    assert_eq!(s.uid("configmap/more-extra"), Some(extra), "not deleted");
    assert!(s
        .journals()
        .iter()
        .all(|(_, text)| text.contains("\"state\": \"completed\"")));
}

/// The scenario's kubeconfig plus a context `elsewhere` for a cluster at another address.
fn with_a_second_cluster(s: &Scenario) -> std::path::PathBuf {
    let path = s.home.path().join("two-clusters");
    std::fs::copy(&s.kubeconfig, &path).unwrap();
    let config = |args: &[&str]| {
        let run = support::Run::from(
            std::process::Command::new(&s.bed.kubectl)
                .args(["config", "--kubeconfig"])
                .arg(&path)
                .args(args)
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, 0, "{run}");
    };
    config(&["set-cluster", "elsewhere", "--server=https://127.0.0.1:1"]);
    config(&[
        "set-context",
        "elsewhere",
        "--cluster=elsewhere",
        "--user=admin",
    ]);
    path
}
