//! The core promise, end to end on the real bed, for helm 3 and helm 4: the seed scenario of
//! tests/fixtures/real-helm/seed (the rollback that fails on an invalid Deployment after creating
//! a Service), a foreign object that must never be deleted, success, and bad input.
//!
//! Preflight (tests/e2e_preflight.rs) would stop these rollbacks before helm runs; here it is
//! switched off so that helm really fails and the classify/reconcile steps are exercised.

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(
    seed_scenario_leads_with_the_cause_and_handles_the_leftover,
    a_foreign_object_in_the_target_is_never_deleted,
    unknown_release_and_revision_change_nothing,
    text_report_collapses_cleanup_noise,
    a_large_release_is_read_one_list_per_kind,
    helm_is_asked_its_version_once_per_binary,
);

/// Steps 1–3 of seed/steps.sh: revision 2 is a failed upgrade whose manifest has the Service and
/// an invalid Deployment; revision 3 is deployed without the Service.
fn seed(bed: support::Bed, helm: HelmMajor, name: &str) -> (Scenario, String) {
    let scenario = Scenario::new(bed, helm, name);
    let release = "seed".to_string();
    scenario.seed_release(&release, true);
    assert_eq!(scenario.uid("service/seed-standby"), None);
    (scenario, release)
}

fn assert_validation_error_first(report: &serde_json::Value, context: &str) {
    let primary = strings(&report["primary_errors"]);
    assert!(
        !primary.is_empty()
            && primary[0].contains("seed-web")
            && primary[0].contains("configMapKeyRef.name: Invalid value: \"Bad_Name\""),
        "{context}: the Deployment's validation error must come first: {primary:#?}"
    );
}

fn seed_scenario_leads_with_the_cause_and_handles_the_leftover(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let (s, release) = seed(bed, helm, "seed");

    // Step 4: --cleanup-on-fail; helm itself removes the Service it created.
    let run = s.safe_rollback(&[
        &release,
        "2",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--no-preflight",
    ]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "failed");
    assert_eq!(report["from_revision"], 3);
    assert_eq!(report["to_revision"], 2);
    assert_validation_error_first(&report, "step 4");
    assert_eq!(report["leftovers"], serde_json::json!([]), "{run}");
    assert_eq!(s.uid("service/seed-standby"), None, "helm cleaned up");
    assert!(
        run.stderr.contains("Error:"),
        "helm's own output is streamed to stderr:\n{run}"
    );

    // Step 5: no cleanup; the Service is left behind and reported, with its real uid.
    let run = s.safe_rollback(&[&release, "2", "--output=json", "--no-preflight"]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_validation_error_first(&report, "step 5");
    let service_uid = s
        .uid("service/seed-standby")
        .expect("helm left the Service behind");
    let leftovers = report["leftovers"].as_array().unwrap();
    assert_eq!(leftovers.len(), 1, "{run}");
    assert_eq!(leftovers[0]["kind"], "Service");
    assert_eq!(leftovers[0]["name"], "seed-standby");
    assert_eq!(leftovers[0]["namespace"], s.namespace.as_str());
    assert_eq!(leftovers[0]["uid"], service_uid.as_str());
    assert!(leftovers[0]["delete_command"]
        .as_str()
        .unwrap()
        .starts_with("kubectl delete service/seed-standby"));

    // Step 6: --cleanup-on-fail with the leftover present. Helm 4's Error line loses the cause;
    // we still lead with it. The Service existed before this attempt: it must survive.
    let run = s.safe_rollback(&[
        &release,
        "2",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--no-preflight",
    ]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    assert_validation_error_first(&report, "step 6");
    let noise = strings(&report["cleanup_noise"]);
    assert!(
        noise
            .iter()
            .any(|n| n.contains("object not found, skipping delete")),
        "{noise:#?}"
    );
    assert!(strings(&report["primary_errors"])
        .iter()
        .all(|e| !e.contains("skipping delete")));
    assert_eq!(report["reconciled"], serde_json::json!([]));
    assert_eq!(
        s.uid("service/seed-standby"),
        Some(service_uid),
        "must not be deleted"
    );

    // The journal recorded the pre-state, identities only.
    let journal = std::path::PathBuf::from(report["journal"].as_str().unwrap());
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(record["state"], "completed");
    assert!(record["snapshot"]["live"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["kind"] == "Service" && o["name"] == "seed-standby"));

    // Step 7: a valid rollback succeeds, exit 0, and helm's success is shown.
    let run = s.safe_rollback(&[&release, "3", "--cleanup-on-fail", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded");
    assert!(
        run.stderr
            .contains("Rollback was a success! Happy Helming!"),
        "{run}"
    );
    assert_eq!(report["primary_errors"], serde_json::json!([]));
}

fn text_report_collapses_cleanup_noise(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let (s, release) = seed(bed, helm, "text");
    s.safe_rollback(&[&release, "2", "--no-preflight"]);
    let run = s.safe_rollback(&[&release, "2", "--cleanup-on-fail", "--no-preflight"]);
    assert_eq!(run.code, 1, "{run}");
    let summary: Vec<&str> = run
        .stdout
        .lines()
        .skip_while(|l| !l.contains("rollback of seed"))
        .collect();
    assert!(summary[0].contains("failed (helm exit code 1)"), "{run}");
    assert!(summary[1].starts_with("  error: "), "{run}");
    assert!(summary[1].contains("Bad_Name"), "{run}");
    assert!(run.stdout.contains("cleanup-noise line"), "{run}");
    assert!(!run.stdout.contains("skipping delete"), "{run}");
    assert!(
        !run.stdout.contains('\u{1b}'),
        "no colour when stdout is not a TTY:\n{run}"
    );
}

/// more/steps.sh step 03: the target revision contains `<release>-extra`, which someone else
/// created by hand. Whatever helm does, we never delete it.
fn a_foreign_object_in_the_target_is_never_deleted(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "foreign");
    s.foreign_object_in_target();
    let foreign_uid = s.uid("configmap/more-extra").unwrap();

    let run = s.safe_rollback(&[
        "more",
        "1",
        "--cleanup-on-fail",
        "--output",
        "json",
        "--no-preflight",
    ]);
    let report = run.json();
    match helm {
        // helm 3 refuses with an obscure error, wrapped in cleanup noise.
        HelmMajor::V3 => {
            assert_eq!(run.code, 1, "{run}");
            assert!(strings(&report["primary_errors"])[0]
                .contains("no ConfigMap with the name \"more-extra\" found"));
        }
        // helm 4 takes it over and says so only in a WARN line, which we surface.
        HelmMajor::V4 => {
            assert_eq!(run.code, 0, "{run}");
            assert!(strings(&report["warnings"])
                .iter()
                .any(|w| w.contains("resource exists on cluster but not in original release")));
        }
    }
    assert_eq!(s.uid("configmap/more-extra"), Some(foreign_uid));
    assert_eq!(report["reconciled"], serde_json::json!([]));
    assert_eq!(report["leftovers"], serde_json::json!([]));
}

fn unknown_release_and_revision_change_nothing(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let (s, release) = seed(bed, helm, "unknown");
    let history_before = s.helm(&["history", &release, "-o", "json"]).ok().stdout;

    let run = s.safe_rollback(&["nosuchrelease", "1"]);
    assert_eq!(run.code, 3, "{run}");
    assert_eq!(run.plugin_stderr_lines().len(), 1, "one line:\n{run}");
    assert!(run.stderr.contains("release: not found"), "{run}");

    let run = s.safe_rollback(&[&release, "99", "--output", "json"]);
    assert_eq!(run.code, 3, "{run}");
    let report = run.json();
    assert_eq!(report["stage"], "capture");
    assert!(strings(&report["primary_errors"])[0].contains("release has no 99 version"));

    let history_after = s.helm(&["history", &release, "-o", "json"]).ok().stdout;
    assert_eq!(history_before, history_after, "no rollback ran");
}

/// More than a handful of objects are read with one LIST per kind (kubectl's GET-by-name is rate
/// limited); what the LIST brings beyond the release's objects must not reach the journal.
fn a_large_release_is_read_one_list_per_kind(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "large");
    let chart = s.write_chart(
        "large",
        "{{- range until 20 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ $.Release.Name }}-cm{{ . }}\n\
         data: {v: {{ $.Values.v | quote }}}\n{{- end }}\n",
    );
    let chart = chart.as_str();
    for other in ["unrelated-a", "unrelated-b"] {
        s.kubectl(&["create", "configmap", other, "--from-literal=k=v"]);
    }
    s.helm(&["install", "big", chart, "--set", "v=1"]).ok();
    s.helm(&["upgrade", "big", chart, "--set", "v=2"]).ok();

    let run = s.safe_rollback(&["big", "1", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let journal: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.json()["journal"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let mut live: Vec<String> = journal["snapshot"]["live"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect();
    live.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("big-cm{i}")).collect();
    expected.sort();
    assert_eq!(live, expected, "exactly the release's objects");
    let value = s.kubectl(&["get", "configmap/big-cm7", "-o", "jsonpath={.data.v}"]);
    assert_eq!(value.stdout, "1");
}

/// `helm version` runs on the first run with a helm binary only; later runs read the answer
/// from helm's cache home, and say so under `--debug`. (The second run also covers the
/// rollback without a revision.)
fn helm_is_asked_its_version_once_per_binary(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "versioncache");
    s.seed_release("vc", false);
    // Through the plugin, helm names itself in HELM_BIN as the user called it.
    let binary = support::USER_HELM;
    let processes = |run: &support::Run| -> usize {
        let line = run
            .stderr
            .lines()
            .find(|l| l.ends_with("helm/kubectl processes started"))
            .unwrap_or_else(|| panic!("no process count under --debug:\n{run}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };

    let first = s.safe_rollback(&["vc", "1", "--debug"]);
    assert_eq!(first.code, 0, "{first}");
    assert!(
        first.stderr.contains(&format!("{binary} version took")),
        "{first}"
    );
    let cache = s.home.path().join("cache/safe-rollback/helm-version");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1, "one entry");

    // No revision this time: helm's default, the previous one (2). The dry run then waits for
    // the history to name the target, and must still happen.
    let second = s.safe_rollback(&["vc", "--debug"]);
    assert_eq!(second.code, 0, "{second}");
    assert!(
        second.stderr.contains("API request(s) (PATCH"),
        "dry run: {second}"
    );
    assert_eq!(
        s.uid("service/vc-standby"),
        None,
        "rolled back to 2: {second}"
    );
    assert!(
        !second.stderr.contains(&format!("{binary} version took")),
        "{second}"
    );
    let expected = match helm {
        HelmMajor::V3 => "helm version v3.",
        HelmMajor::V4 => "helm version v4.",
    };
    assert!(second.stderr.contains(expected), "{second}");
    assert_eq!(processes(&second), processes(&first) - 1);
}
