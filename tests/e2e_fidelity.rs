//! Judged and predicted exactly as helm applies: the verdicts of verification and the preflight
//! follow from what helm really writes, and a twin release rolled back by native `helm
//! rollback` is the reference for each. The project's own chart `tests/fixtures/charts/fidelity`
//! has the shapes of popular charts that matter here: common annotations and labels rendered
//! only when set, pod annotations, an optional component, a resource quantity from values.
//! helm 4 runs both of its apply methods: server-side (its default for new installs) and
//! client-side.

mod support;

use serde_json::Value;
use support::{strings, HelmMajor, Scenario};

for_both_helms!(
    a_rollback_to_a_revision_without_annotations_is_no_drift,
    a_target_the_server_cannot_take_is_refused_with_nothing_changed,
    a_strategy_and_a_volume_source_restored_by_the_rollback_are_no_refusal,
    an_env_item_and_a_container_the_rollback_removes_are_no_drift,
    a_field_a_hand_edit_took_is_refused_where_helm_4_would_fail_on_it
);

/// The apply methods this helm has, as `helm install`/`upgrade` flags: `(tag, flags)`.
fn apply_methods(helm: HelmMajor) -> Vec<(&'static str, &'static [&'static str])> {
    match helm {
        HelmMajor::V3 => vec![("csa", &[])],
        HelmMajor::V4 => vec![("ssa", &[]), ("csa", &["--server-side=false"])],
    }
}

fn fidelity_chart(s: &Scenario) -> String {
    let from =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charts/fidelity");
    let to = s.home.path().join("chart-fidelity");
    support::copy_dir(&from, &to);
    to.display().to_string()
}

/// Each upgrade (its arguments) of an installed release, with the method's flags; the upgrades'
/// own success is the caller's business (some are meant to fail).
fn release_with(s: &Scenario, release: &str, chart: &str, method: &[&str], upgrades: &[&[&str]]) {
    for args in upgrades {
        let mut upgrade = vec!["upgrade", release, chart];
        upgrade.extend(method);
        upgrade.extend(*args);
        s.helm(&upgrade);
    }
}

/// Releases `ours-TAG` and `twin-TAG` made alike (installed with `install`, then `upgrades`),
/// ours rolled back to 1 by `helm safe-rollback` (with `extra` flags), which must succeed,
/// verified, and the twin by native `helm rollback`. Returns the two names and our run.
fn ours_and_twin_rolled_back(
    s: &Scenario,
    chart: &str,
    (tag, method): (&str, &[&str]),
    install: &[&str],
    upgrades: &[&[&str]],
    extra: &[&str],
) -> (String, String, support::Run) {
    let (ours, twin) = (format!("ours-{tag}"), format!("twin-{tag}"));
    for release in [&ours, &twin] {
        installed(s, release, chart, method, install);
        release_with(s, release, chart, method, upgrades);
    }
    let mut args = vec![ours.as_str(), "1", "--output", "json"];
    args.extend(extra);
    let run = s.safe_rollback(&args);
    assert_eq!(run.code, 0, "{tag}: {run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{tag}: {run}");
    assert_eq!(report["verified"], true, "{tag}: {run}");
    assert_eq!(report["drifted"], serde_json::json!([]), "{tag}: {run}");
    assert_eq!(
        report["primary_errors"],
        serde_json::json!([]),
        "{tag}: {run}"
    );
    s.helm(&["rollback", &twin, "1"]).ok();
    (ours, twin, run)
}

/// `helm install` of the chart with `args` and the method's flags.
fn installed(s: &Scenario, release: &str, chart: &str, method: &[&str], args: &[&str]) {
    let mut install = vec!["install", release, chart];
    install.extend(args);
    install.extend(method);
    s.helm(&install).ok();
}

/// Popular chart families render `metadata.annotations` only when a value sets some. Rolled
/// back to the revision without them, helm removes the chart's annotations and keeps its own
/// ownership metadata: a clean rollback, which ours must call one, leaving the same live
/// metadata as the twin rolled back by native helm.
fn a_rollback_to_a_revision_without_annotations_is_no_drift(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "no-annotations");
    let chart = fidelity_chart(&s);
    let annotated: &[&str] = &[
        "--set",
        "commonAnnotations.team=payments",
        "--set",
        "commonLabels.tier=web",
        "--set",
        "podAnnotations.checksum=abc",
    ];
    for variant in apply_methods(helm) {
        let tag = variant.0;
        let (ours, twin, run) =
            ours_and_twin_rolled_back(&s, &chart, variant, &[], &[annotated], &["--debug"]);
        assert!(
            run.stderr.contains(
                "verifying 2 object(s) against the preflight's prediction, 0 by a dry run now"
            ),
            "{tag}: verification reuses the preflight's dry run: {run}"
        );
        let live = live_metadata(&s, &ours);
        assert_eq!(
            live,
            live_metadata(&s, &twin),
            "{tag}: ours and the twin differ"
        );
        let config = &live[0];
        assert_eq!(config.0, "ConfigMap/REL-config");
        assert_eq!(
            config.1["annotations"],
            serde_json::json!({"meta.helm.sh/release-name": "REL",
                               "meta.helm.sh/release-namespace": s.namespace}),
            "{tag}: the chart's annotation is gone, helm's own stay"
        );
        assert_eq!(config.1["labels"]["app.kubernetes.io/managed-by"], "Helm");
        assert!(config.1["labels"].get("tier").is_none(), "{tag}: {live:?}");
    }
}

/// A target revision the API server will not take (a memory request of `lots`): with helm 4's
/// server-side apply the server answers the very apply helm makes with an HTTP 500 about the
/// object's conversion, with client-side patches a 4xx. Either is the verdict: refused, exit 5,
/// nothing changed, the server's reason first in `primary_errors` as in `refusal_reasons`. The
/// twin shows what native helm does instead: it fails on the same reason after creating the
/// optional component, which it leaves behind, and records a failed revision.
fn a_target_the_server_cannot_take_is_refused_with_nothing_changed(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "cannot-take");
    let chart = fidelity_chart(&s);
    // helm's cleanup removes what the failed upgrade created: no orphan before the rollback.
    let invalid: &[&str] = &[
        "--set",
        "memory=lots",
        "--set",
        "extra.enabled=true",
        "--cleanup-on-fail",
    ];
    for (tag, method) in apply_methods(helm) {
        let (ours, twin) = (format!("ours-{tag}"), format!("twin-{tag}"));
        for release in [&ours, &twin] {
            installed(&s, release, &chart, method, &[]);
            release_with(&s, release, &chart, method, &[invalid, &[]]);
        }
        // A Deployment's status is the controller's to write at any time: its generation says
        // whether its spec was written.
        let before = (s.resource_versions("configmaps"), generation(&s, &ours));

        let run = s.safe_rollback(&[&ours, "2", "--output", "json"]);
        assert_eq!(run.code, 5, "{tag}: {run}");
        let report = run.json();
        assert_eq!(report["outcome"], "refused", "{tag}: {run}");
        let reasons = strings(&report["refusal_reasons"]);
        let primary = strings(&report["primary_errors"]);
        assert!(
            reasons[0].contains("quantities must match"),
            "{tag}: the server's reason: {run}"
        );
        assert_eq!(primary.first(), reasons.first(), "{tag}: {run}");
        let after = (s.resource_versions("configmaps"), generation(&s, &ours));
        assert_eq!(after, before, "{tag}: nothing was written");
        assert_eq!(s.uid(&format!("configmap/{ours}-extra")), None, "{tag}");
        assert_eq!(revisions(&s, &ours), 3, "{tag}: no new revision");

        let native = s.helm(&["rollback", &twin, "2"]);
        assert_ne!(native.code, 0, "{tag}: native helm fails: {native}");
        assert!(
            native.stderr.contains("quantities must match"),
            "{tag}: {native}"
        );
        assert!(s.uid(&format!("configmap/{twin}-extra")).is_some(), "{tag}");
        assert_eq!(revisions(&s, &twin), 4, "{tag}: a failed revision");
    }
}

/// Revision 1 has `strategy: Recreate` and a configMap volume; revision 2 renders no strategy
/// (the server defaults a rolling update, with its `rollingUpdate` settings) and an emptyDir.
/// helm's strategic patch back to 1 keeps only revision 1's keys in both places (their patch
/// strategy is `retainKeys`); a model of it that merged them would keep `rollingUpdate` beside
/// `Recreate`, which the server rejects, and refuse a rollback native helm does.
fn a_strategy_and_a_volume_source_restored_by_the_rollback_are_no_refusal(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "retain-keys");
    let chart = fidelity_chart(&s);
    let install = [
        "--set",
        "strategy.type=Recreate",
        "--set",
        "scratch=configMap",
    ];
    for variant in apply_methods(helm) {
        let tag = variant.0;
        let (ours, twin, _) = ours_and_twin_rolled_back(&s, &chart, variant, &install, &[&[]], &[]);
        let spec = |release: &str| {
            let object = format!("deployment/{release}-web");
            let run = s.kubectl(&["get", &object, "--output=json"]);
            let deployment: Value = serde_json::from_str(&run.stdout).unwrap();
            let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
            (
                deployment["spec"]["strategy"].clone(),
                volumes.replace(release, "REL"),
            )
        };
        let live = spec(&ours);
        assert_eq!(live, spec(&twin), "{tag}: ours and the twin differ");
        assert_eq!(live.0, serde_json::json!({"type": "Recreate"}), "{tag}");
    }
}

/// Revision 2 adds an env item and a sidecar container; the rollback to 1 removes both (helm's
/// three-way patch deletes the list items revision 2 had by their merge key). A model that
/// merged revision 1's lists into the live ones would expect both to stay: a false drift.
fn an_env_item_and_a_container_the_rollback_removes_are_no_drift(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "list-items");
    let chart = fidelity_chart(&s);
    let more: &[&str] = &[
        "--set",
        "extraEnv[0].name=EXTRA",
        "--set",
        "extraEnv[0].value=x",
        "--set",
        "sidecar=true",
    ];
    for variant in apply_methods(helm) {
        let tag = variant.0;
        let (ours, twin, _) = ours_and_twin_rolled_back(&s, &chart, variant, &[], &[more], &[]);
        let containers = |release: &str| {
            let object = format!("deployment/{release}-web");
            let path = "--output=jsonpath={.spec.template.spec.containers[*].name} {.spec.template.spec.containers[0].env[*].name}";
            s.kubectl(&["get", &object, path]).stdout
        };
        assert_eq!(containers(&ours), "web MODE", "{tag}");
        assert_eq!(containers(&twin), "web MODE", "{tag}: the twin");
    }
}

fn generation(s: &Scenario, release: &str) -> String {
    let object = format!("deployment/{release}-web");
    s.kubectl(&["get", &object, "--output=jsonpath={.metadata.generation}"])
        .stdout
}

fn revisions(s: &Scenario, release: &str) -> usize {
    let history = s.helm(&["history", release, "--output", "json"]).ok();
    serde_json::from_str::<Vec<Value>>(&history.stdout)
        .expect("helm history JSON")
        .len()
}

/// `(Kind/name, {labels, annotations, template_annotations})` of a release's ConfigMaps and
/// Deployments, the release's name replaced by `REL`; what the controllers write on their own
/// (a Deployment's revision annotation) left out.
fn live_metadata(s: &Scenario, release: &str) -> Vec<(String, Value)> {
    let run = s.kubectl(&[
        "get",
        "configmaps,deployments",
        "--selector",
        &format!("app.kubernetes.io/instance={release}"),
        "--output",
        "json",
    ]);
    let text = run.stdout.replace(release, "REL");
    let list: Value = serde_json::from_str(&text).expect("kubectl JSON");
    let mut out: Vec<(String, Value)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let mut annotations = item["metadata"]["annotations"].clone();
            if let Some(map) = annotations.as_object_mut() {
                map.remove("deployment.kubernetes.io/revision");
            }
            let name = format!(
                "{}/{}",
                item["kind"].as_str().unwrap(),
                item["metadata"]["name"].as_str().unwrap()
            );
            let metadata = serde_json::json!({
                "labels": item["metadata"]["labels"],
                "annotations": annotations,
                "template_annotations": item["spec"]["template"]["metadata"]["annotations"],
            });
            (name, metadata)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A hand `kubectl scale` between the upgrade and the rollback: kubectl then owns the
/// Deployment's replicas. helm 4 applying server-side (without `--force-conflicts`) fails on
/// that field, as the twin shows, leaving a failed revision; the preflight makes the same apply
/// as a dry run, meets the same conflict and refuses (exit 5, nothing written), naming the
/// field and `--force-conflicts`, with which ours then succeeds. Client-side (helm 3, helm 4
/// `--server-side=false`), the three-way patch resets the replicas: a clean rollback. Where the
/// twin succeeds, ours must too.
fn a_field_a_hand_edit_took_is_refused_where_helm_4_would_fail_on_it(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "hand-scaled");
    let chart = fidelity_chart(&s);
    for (tag, method) in apply_methods(helm) {
        let (ours, twin) = (format!("ours-{tag}"), format!("twin-{tag}"));
        for release in [&ours, &twin] {
            installed(&s, release, &chart, method, &[]);
            release_with(&s, release, &chart, method, &[&["--set", "memory=96Mi"]]);
            let deployment = format!("deployment/{release}-web");
            s.kubectl(&["scale", &deployment, "--replicas=3"]).ok();
        }
        let native = s.helm(&["rollback", &twin, "1"]);
        let run = s.safe_rollback(&[&ours, "1", "--output", "json"]);
        // v1.20's beta server-side apply records no manager for a scale: nothing conflicts
        // there, and native helm succeeds; the v1.37 bed's does (asserted from v1.30 on).
        if tag == "ssa" && server_minor(&s) >= 30 {
            assert_ne!(native.code, 0, "{tag}: native helm fails: {native}");
        }
        if native.code == 0 {
            assert_eq!(run.code, 0, "{tag}: native helm succeeded: {run}");
            assert_eq!(run.json()["outcome"], "succeeded", "{tag}: {run}");
            continue;
        }
        assert!(native.stderr.contains(".spec.replicas"), "{tag}: {native}");
        assert_eq!(revisions(&s, &twin), 3, "{tag}: a failed revision");
        assert_eq!(run.code, 5, "{tag}: {run}");
        let report = run.json();
        assert_eq!(report["outcome"], "refused", "{tag}: {run}");
        let first = strings(&report["primary_errors"])[0].clone();
        assert!(
            first.contains("conflict with \"kubectl\"")
                && first.contains(".spec.replicas")
                && first.contains("--force-conflicts"),
            "{tag}: {run}"
        );
        assert_eq!(
            revisions(&s, &ours),
            2,
            "{tag}: nothing written, no revision"
        );

        let forced = s.safe_rollback(&[&ours, "1", "--force-conflicts", "--output", "json"]);
        assert_eq!(forced.code, 0, "{tag}: {forced}");
        assert_eq!(forced.json()["outcome"], "succeeded", "{tag}: {forced}");
        let replicas = s.kubectl(&[
            "get",
            &format!("deployment/{ours}-web"),
            "--output=jsonpath={.spec.replicas}",
        ]);
        assert_eq!(replicas.stdout, "1", "{tag}: the chart's replicas again");
    }
}

/// The bed's kube-apiserver minor version.
fn server_minor(s: &Scenario) -> u32 {
    let version = s.kubectl(&["version", "--output=json"]).ok();
    let version: Value = serde_json::from_str(&version.stdout).expect("kubectl version JSON");
    let minor = version["serverVersion"]["minor"].as_str().unwrap_or("0");
    minor
        .trim_end_matches('+')
        .parse()
        .expect("a minor version")
}
