//! Seeing the failure coming, end to end on the real bed for helm 3 and helm 4: an invalid target
//! object, a foreign object in the target, an earlier attempt's orphan, a pending release, and
//! `--plan`.

mod support;

use std::time::Duration;

use support::{strings, HelmMajor, Run, Scenario};

for_both_helms!(
    an_invalid_target_is_refused_before_anything_changes,
    a_foreign_object_is_refused_and_left_untouched,
    an_orphan_of_an_earlier_attempt_is_removed_with_cleanup_on_fail,
    a_pending_release_is_refused_while_young_and_superseded_when_old,
    a_pending_revision_left_by_our_own_finished_run_does_not_block_the_next,
    a_webhook_without_dry_run_support_is_a_warning_not_a_refusal,
    plan_changes_nothing,
    a_kept_object_helm3_cannot_roll_back_over_is_seen_coming,
);

fn an_invalid_target_is_refused_before_anything_changes(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "invalid");
    s.seed_release("seed", true);
    let before = s.resource_versions("configmaps,services,deployments,secrets");
    let history_before = s.helm(&["history", "seed", "-o", "json"]).ok().stdout;

    let run = s.safe_rollback(&["seed", "2", "--cleanup-on-fail", "--output", "json"]);
    assert_eq!(run.code, 5, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "refused");
    let reasons = strings(&report["refusal_reasons"]);
    assert!(
        reasons.iter().any(|r| r.contains("seed-web")
            && r.contains("configMapKeyRef.name: Invalid value: \"Bad_Name\"")),
        "{reasons:#?}"
    );
    assert!(
        !run.stderr.contains("Rollback"),
        "helm must not have run:\n{run}"
    );
    assert_eq!(
        s.resource_versions("configmaps,services,deployments,secrets"),
        before,
        "every resourceVersion unchanged"
    );
    assert_eq!(s.uid("service/seed-standby"), None);
    let history_after = s.helm(&["history", "seed", "-o", "json"]).ok().stdout;
    assert_eq!(history_before, history_after, "no new revision");
}

fn a_foreign_object_is_refused_and_left_untouched(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "takeover");
    s.foreign_object_in_target();
    let data = || {
        s.kubectl(&["get", "configmap/more-extra", "--output=jsonpath={.data}"])
            .stdout
    };
    let data_before = data();
    let before = s.resource_versions("configmaps,services,deployments,secrets");

    let run = s.safe_rollback(&["more", "1", "--output", "json"]);
    assert_eq!(run.code, 5, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "refused");
    let reasons = strings(&report["refusal_reasons"]);
    assert!(
        reasons.iter().any(|r| r.contains("ConfigMap/")
            && r.contains("/more-extra exists and belongs to no helm release")
            && r.contains("--allow-takeover")),
        "{reasons:#?}"
    );
    assert_eq!(data(), data_before);
    assert_eq!(
        s.resource_versions("configmaps,services,deployments,secrets"),
        before
    );

    // The explicit flag lets helm do what it does: helm 4 adopts it, helm 3 fails on it.
    let run = s.safe_rollback(&["more", "1", "--allow-takeover", "--output", "json"]);
    match helm {
        HelmMajor::V4 => assert_eq!(run.code, 0, "{run}"),
        HelmMajor::V3 => assert_eq!(run.code, 1, "{run}"),
    }
    assert!(s.uid("configmap/more-extra").is_some(), "never deleted");
}

fn an_orphan_of_an_earlier_attempt_is_removed_with_cleanup_on_fail(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "orphan");
    let orphan_uid = s.orphan_of_a_failed_upgrade();

    // Without cleanup: reported, not touched (the rollback itself goes ahead).
    let run = s.safe_rollback(&["more", "1", "--output", "json", "--plan"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    let orphans = report["orphans"].as_array().unwrap();
    assert_eq!(orphans.len(), 1, "{run}");
    assert_eq!(orphans[0]["name"], "more-extra");
    assert_eq!(orphans[0]["uid"], orphan_uid.as_str());
    assert_eq!(s.uid("configmap/more-extra"), Some(orphan_uid.clone()));

    // With --cleanup-on-fail: removed first, then the rollback recreates it cleanly.
    let run = s.safe_rollback(&["more", "1", "--cleanup-on-fail", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded");
    let reconciled = report["reconciled"].as_array().unwrap();
    assert_eq!(reconciled.len(), 1, "{run}");
    assert_eq!(reconciled[0]["action"], "delete-orphan");
    assert_eq!(reconciled[0]["uid"], orphan_uid.as_str());
    assert_eq!(reconciled[0]["result"], "deleted");
    let new_uid = s
        .uid("configmap/more-extra")
        .expect("recreated by the rollback");
    assert_ne!(new_uid, orphan_uid);
}

fn a_pending_release_is_refused_while_young_and_superseded_when_old(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "pending");
    // A native `helm rollback --wait` killed half-way leaves the release pending-rollback.
    let mut rollback = s.pending_release();
    rollback.kill().unwrap();
    rollback.wait().unwrap();
    let history = || s.helm(&["history", "more", "-o", "json"]).ok().stdout;
    let before = history();

    let run = s.safe_rollback(&["more", "2", "--output", "json"]);
    assert_eq!(run.code, 5, "{run}");
    let reasons = strings(&run.json()["refusal_reasons"]);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("revision 3 is pending-rollback")
                && r.contains("another helm operation may still be running")),
        "{reasons:#?}"
    );
    assert_eq!(history(), before, "nothing changed");

    // The explicit override goes ahead at once (revision 4 brings more-extra back).
    let run = s.safe_rollback(&["more", "2", "--allow-pending", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(history().contains("\"status\":\"deployed\""));

    // Pending again (revision 5); older than the (lowered) limit it is treated as abandoned and
    // the rollback unsticks it, saying so.
    let mut rollback = s.begin_pending_rollback();
    rollback.kill().unwrap();
    rollback.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let run = s.safe_rollback(&["more", "2", "--pending-max-age", "1s", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert!(
        strings(&report["warnings"])
            .iter()
            .any(|w| w.contains("revision 5 was pending-rollback") && w.contains("supersedes")),
        "{run}"
    );
    assert!(history().contains("\"status\":\"deployed\""));
}

/// A pre-rollback hook the API server rejects makes helm give up with the new revision left
/// `pending-rollback`. The journal of that (finished) run accounts for the revision: the next
/// run, seconds later, must not be refused as if another helm were still at work.
fn a_pending_revision_left_by_our_own_finished_run_does_not_block_the_next(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "ownpending");
    // The hook's data key is invalid: creating it fails, so the pre-rollback hook fails.
    let chart = s.write_chart(
        "hooked",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n\
         data: {v: {{ .Values.v | default \"1\" | quote }}}\n\
         {{- if .Values.badHook }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n\
         \x20 name: {{ .Release.Name }}-hook\n  annotations: {\"helm.sh/hook\": pre-rollback}\n\
         data: {\"not a valid key!\": x}\n{{- end }}\n",
    );
    s.helm(&["install", "h", &chart, "--set", "badHook=true"])
        .ok();
    s.helm(&["upgrade", "h", &chart, "--set", "v=2"]).ok();
    let run = s.safe_rollback(&["h", "1", "--output", "json"]);
    assert_ne!(run.code, 0, "the hook must fail the rollback:\n{run}");
    s.wait_for_status("h", "pending-rollback");

    let run = s.safe_rollback(&["h", "2", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert!(
        strings(&report["warnings"])
            .iter()
            .any(|w| w
                .contains("revision 3 is pending-rollback, left by an earlier helm safe-rollback")),
        "{run}"
    );
    let history = s.helm(&["history", "h", "-o", "json"]).ok().stdout;
    assert!(
        history.contains("\"revision\":4,") && history.contains("\"status\":\"deployed\""),
        "{history}"
    );
}

/// A cluster with a validating webhook that has side effects (`sideEffects: Unknown`): the API
/// server refuses every dry run it would see, whatever the object, while the real write goes
/// through (`failurePolicy: Ignore`, no backend). Native helm rolls back fine, so must we: the
/// check that could not run is a warning (and `verified: false` after), and only `--strict`
/// turns it into a refusal.
fn a_webhook_without_dry_run_support_is_a_warning_not_a_refusal(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "webhook");
    let chart = s.chart("more");
    s.helm(&["install", "more", &chart, "--set", "extra=true"])
        .ok();
    s.helm(&["upgrade", "more", &chart, "--set", "extra=false"])
        .ok();
    // From Kubernetes 1.22 on a webhook must declare itself free of side effects on dry runs
    // (admissionregistration v1): no API server says this any more, but the clusters that
    // still serve v1beta1 do. There, the real webhook; elsewhere, that server's real answer
    // (tests/fixtures/api), replayed for our dry runs of the ConfigMap by the fault proxy.
    let mut s = s;
    let (_webhook, _proxy) = if serves_v1beta1_webhooks(&s) {
        (Some(NoDryRunWebhook::install(&s)), None)
    } else {
        let proxy = s.through_fault_proxy();
        proxy.add_rule(
            support::fault_proxy::Rule::new(
                None,
                r"/api/v1/namespaces/[^/]+/configmaps.*dryRun=All",
                support::fault_proxy::Fault::Replay {
                    status: 400,
                    body: include_str!("fixtures/api/dry-run-webhook-without-dry-run.json"),
                },
            )
            .unwrap(),
        );
        (None, Some(proxy))
    };
    let s = &s;
    let history = || s.helm(&["history", "more", "-o", "json"]).ok().stdout;
    let before = history();

    let run = s.safe_rollback(&["more", "1", "--strict", "--output", "json"]);
    assert_eq!(run.code, 5, "{run}");
    let reasons = strings(&run.json()["refusal_reasons"]);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("does not support dry run")),
        "{run}"
    );
    assert_eq!(history(), before, "--strict changed nothing");

    let run = s.safe_rollback(&["more", "1", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert!(
        strings(&report["warnings"])
            .iter()
            .any(|w| w.contains("a preflight check could not run")
                && w.contains("does not support dry run")),
        "{run}"
    );
    assert_eq!(report["verified"], false, "{run}");
    assert!(
        report["verify_error"]
            .as_str()
            .unwrap()
            .contains("does not support dry run"),
        "{run}"
    );
    assert!(s.uid("configmap/more-extra").is_some(), "rolled back");
}

/// Whether the API server still serves admissionregistration.k8s.io/v1beta1 (Kubernetes 1.21
/// and older), the only API whose webhooks may have side effects on dry runs.
fn serves_v1beta1_webhooks(s: &Scenario) -> bool {
    let run = s.kubectl(&["api-versions"]);
    run.stdout
        .lines()
        .any(|l| l == "admissionregistration.k8s.io/v1beta1")
}

/// A cluster-scoped webhook configuration for one test namespace, removed when dropped.
struct NoDryRunWebhook<'a> {
    scenario: &'a Scenario,
    name: String,
}

impl<'a> NoDryRunWebhook<'a> {
    fn install(s: &'a Scenario) -> NoDryRunWebhook<'a> {
        let name = format!("hsr-no-dry-run-{}", s.namespace);
        s.kubectl(&[
            "label",
            "namespace",
            &s.namespace,
            &format!("hsr-webhook={}", s.namespace),
        ]);
        let webhook = serde_json::json!({
            "apiVersion": "admissionregistration.k8s.io/v1beta1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "no-dry-run.hsr.example.com",
                "clientConfig": {"url": "https://127.0.0.1:1/validate"},
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
                           "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}],
                "failurePolicy": "Ignore",
                "sideEffects": "Unknown",
                "admissionReviewVersions": ["v1beta1"],
                "namespaceSelector": {"matchLabels": {"hsr-webhook": s.namespace}}
            }]
        });
        let file = s.home.path().join("webhook.json");
        std::fs::write(&file, webhook.to_string()).unwrap();
        s.kubectl(&["apply", "-f", file.to_str().unwrap()]);
        NoDryRunWebhook { scenario: s, name }
    }
}

impl Drop for NoDryRunWebhook<'_> {
    fn drop(&mut self) {
        let mut command = std::process::Command::new(&self.scenario.bed.kubectl);
        self.scenario.env(&mut command);
        let _ = command
            .args(["delete", "validatingwebhookconfiguration", &self.name])
            .output();
    }
}

fn plan_changes_nothing(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "plan");
    let chart = s.chart("seed");
    s.helm(&["install", "seed", &chart, "--set", "withService=false"])
        .ok();
    // helm 3 reuses the previous values when none are given: say it explicitly.
    s.helm(&["upgrade", "seed", &chart, "--set", "withService=true"])
        .ok();
    s.helm(&["upgrade", "seed", &chart, "--set", "withService=false"])
        .ok();
    let before = s.resource_versions("configmaps,services,deployments,secrets");
    // Revision 2 has the Service: the plan must say it would be created.
    let run: Run = s.safe_rollback(&["seed", "2", "--plan", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "planned");
    let plan = &report["plan"];
    assert!(strings(&plan["create"])
        .iter()
        .any(|o| o.starts_with("Service/") && o.ends_with("/seed-standby")));
    assert!(strings(&plan["update"])
        .iter()
        .any(|o| o.ends_with("/seed-web")));
    assert_eq!(
        s.resource_versions("configmaps,services,deployments,secrets"),
        before
    );
    let run = s.safe_rollback(&["seed", "1", "--plan"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("preflight: the rollback would proceed"),
        "{run}"
    );
}

/// `helm.sh/resource-policy: keep` leaves an object behind when a revision drops it; rolling back
/// to a revision that has it again fails on helm 3 (`no ConfigMap with the name … found`) and is
/// adopted by helm 4. We refuse on helm 3 before anything changes, and never delete it.
fn a_kept_object_helm3_cannot_roll_back_over_is_seen_coming(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "kept");
    let chart = s.write_chart(
        "keep",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-main\ndata: {k: v}\n\
         {{- if .Values.kept }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-kept\n\
         \x20 annotations:\n    helm.sh/resource-policy: keep\ndata: {k: v}\n{{- end }}\n",
    );
    let chart = chart.as_str();
    s.helm(&["install", "k", chart, "--set", "kept=true"]).ok();
    s.helm(&["upgrade", "k", chart, "--set", "kept=false"]).ok();
    let kept = s.uid("configmap/k-kept").expect("helm kept it");
    let before = s.resource_versions("configmaps,services,deployments,secrets");

    let run = s.safe_rollback(&["k", "1", "--cleanup-on-fail", "--output", "json"]);
    match helm {
        HelmMajor::V3 => {
            assert_eq!(run.code, 5, "{run}");
            let reasons = strings(&run.json()["refusal_reasons"]);
            assert!(
                reasons
                    .iter()
                    .any(|r| r.contains(
                        "/k-kept exists but the manifest helm 3 rolls back from does not list it"
                    ) && r.contains("no ConfigMap with the name \"k-kept\" found")),
                "{reasons:#?}"
            );
            assert_eq!(
                s.resource_versions("configmaps,services,deployments,secrets"),
                before,
                "nothing changed"
            );
            // Let helm try anyway: it fails as predicted, and the kept object survives.
            let run = s.safe_rollback(&["k", "1", "--allow-takeover", "--output", "json"]);
            assert_eq!(run.code, 1, "{run}");
            assert!(strings(&run.json()["primary_errors"])[0]
                .contains("no ConfigMap with the name \"k-kept\" found"));
        }
        HelmMajor::V4 => {
            assert_eq!(run.code, 0, "{run}");
            assert!(strings(&run.json()["warnings"])
                .iter()
                .any(|w| w.contains("resource exists on cluster but not in original release")));
        }
    }
    assert_eq!(s.uid("configmap/k-kept"), Some(kept), "never deleted");
}
