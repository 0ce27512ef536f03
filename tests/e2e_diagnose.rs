//! `--diagnose`, end to end on the bed through the plugin, helm 3 and helm 4:
//! a healthy release is exit 0 with no findings; a release whose newest revision is a failed
//! rollback that left an orphan, with a hand-edited object, is exit 8 with each finding and the
//! command that fixes it (and the printed commands do fix them); a namespace-scoped user gets
//! "not checked" entries, not a crash; and diagnosing changes nothing at all.

mod support;

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use support::{strings, HelmMajor, Scenario, HEALTHY_TEMPLATE};

for_both_helms!(
    a_healthy_release_has_no_findings,
    a_broken_release_gets_each_finding_and_its_fix,
    a_namespace_scoped_user_gets_not_checked_entries,
    a_killed_run_is_an_unfinished_run_and_its_revision_pending,
    objects_claiming_the_release_outside_its_newest_revision_are_strays,
);

/// Everything diagnosing must leave alone: the release's history, every object's
/// resourceVersion (the release's Secrets included) and Leases, and the journal directory.
fn state(s: &Scenario, release: &str) -> (String, String, bool) {
    let history = s.helm(&["history", release, "-o", "json"]).ok().stdout;
    let objects = s.resource_versions("configmaps,services,deployments,secrets,leases");
    (history, objects, s.journal_dir().exists())
}

fn a_healthy_release_has_no_findings(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "diag-healthy");
    let chart = s.healthy_chart();
    s.helm(&["install", "seed", &chart, "--set", "k=1"]).ok();
    s.helm(&["upgrade", "seed", &chart, "--set", "k=2"]).ok();
    let before = state(&s, "seed");

    let run = s.safe_rollback(&["seed", "--diagnose", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let d = run.json();
    assert_eq!(d["healthy"], true, "{run}");
    assert_eq!(d["revision"], 2);
    assert_eq!(d["status"], "deployed");
    assert!(d["findings"].as_array().unwrap().is_empty(), "{run}");
    assert_eq!(d["orphans"], serde_json::json!([]), "{run}");
    assert_eq!(d["strays"], serde_json::json!([]), "{run}");
    assert_eq!(d["drifted"], serde_json::json!([]), "{run}");
    assert!(strings(&d["not_checked"]).is_empty(), "{run}");
    assert_eq!(d["not_ready"]["checked"], true, "{run}");
    assert_eq!(d["not_ready"]["objects"], serde_json::json!([]), "{run}");
    assert_eq!(state(&s, "seed"), before, "diagnose changed something");

    let text = s.safe_rollback(&["seed", "--diagnose"]);
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains("healthy: release seed in "), "{text}");
}

fn a_broken_release_gets_each_finding_and_its_fix(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "diag-broken");
    // 1 good with the Service, 2 failed, 3 good without it; then helm's own rollback to 2
    // fails (4) after creating the Service: an orphan. And someone edits the ConfigMap by hand.
    s.seed_release("seed", true);
    let native = s.helm(&["rollback", "seed", "2"]);
    assert_ne!(native.code, 0, "{native}");
    let orphan_uid = s
        .uid("service/seed-standby")
        .expect("helm left the Service");
    s.kubectl(&[
        "patch",
        "configmap",
        "seed-config",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"edited"}}"#,
    ]);
    let before = state(&s, "seed");

    let run = s.safe_rollback(&["seed", "--diagnose", "--output", "json"]);
    assert_eq!(run.code, 8, "{run}");
    let d = run.json();
    assert_eq!(d["healthy"], false);
    assert_eq!(
        (d["revision"].as_u64(), d["status"].as_str()),
        (Some(4), Some("failed"))
    );
    assert_eq!(d["last_good_revision"], 3);
    let cause = d["failures"][0]["causes"][0].as_str().unwrap();
    assert!(cause.contains("Invalid value: \"Bad_Name\""), "{run}");
    assert!(
        !cause.starts_with("Rollback \"seed\" failed"),
        "helm's prefix is gone: {cause}"
    );
    let findings = d["findings"].as_array().unwrap();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        findings.iter().filter(|f| f["kind"] == kind).collect()
    };
    let back = format!("helm safe-rollback seed 3 --namespace {}", s.namespace);
    let failed = of("failed-revision");
    assert_eq!(failed.len(), 1, "{run}");
    assert!(
        failed[0]["fix_command"]
            .as_str()
            .unwrap()
            .starts_with(&back),
        "{run}"
    );
    let orphans = of("orphan");
    assert_eq!(orphans.len(), 1, "{run}");
    assert!(orphans[0]["summary"]
        .as_str()
        .unwrap()
        .contains(&orphan_uid));
    let delete = orphans[0]["fix_command"].as_str().unwrap();
    assert!(
        delete.starts_with("kubectl delete service/seed-standby"),
        "{delete}"
    );
    let drift = of("drift");
    assert_eq!(
        drift.len(),
        1,
        "only the hand edit (the rejected Deployment is the failure): {run}"
    );
    assert!(
        drift[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("ConfigMap/"),
        "{run}"
    );
    assert!(
        drift[0]["detail"].as_str().unwrap().contains("data.k"),
        "{run}"
    );
    // The bed has no nodes: the Deployment's pod is never scheduled, and diagnose says so,
    // with the command that shows Kubernetes' account of it.
    let not_ready = of("not-ready");
    assert_eq!(not_ready.len(), 1, "{run}");
    assert!(
        not_ready[0]["summary"]
            .as_str()
            .unwrap()
            .ends_with("/seed-web is not ready: NotScheduled"),
        "{run}"
    );
    let describe = format!(
        "kubectl describe deployment/seed-web --namespace {}",
        s.namespace
    );
    assert!(
        not_ready[0]["fix_command"]
            .as_str()
            .unwrap()
            .starts_with(&describe),
        "{run}"
    );
    assert_eq!(state(&s, "seed"), before, "diagnose changed something");

    // Without the drift check (the costly one): everything else, and drift "not checked".
    let quick = s.safe_rollback(&["seed", "--diagnose", "--no-verify", "--output", "json"]);
    assert_eq!(quick.code, 8, "{quick}");
    let q = quick.json();
    assert_eq!(q["drifted"], serde_json::Value::Null, "{quick}");
    assert_eq!(
        strings(&q["not_checked"]),
        ["drift: skipped (--no-verify)"],
        "{quick}"
    );
    assert_eq!(q["findings"].as_array().unwrap().len(), 3, "{quick}");

    // The printed commands fix what they name: the orphan goes, then back to revision 3.
    let words: Vec<&str> = delete.split(' ').skip(1).collect();
    s.kubectl(&words);
    assert_eq!(s.uid("service/seed-standby"), None);
    let fix = failed[0]["fix_command"].as_str().unwrap();
    // helm 4 applies server-side: taking the hand-edited field back needs --force-conflicts.
    let journal = format!("--journal-dir {}", s.journal_dir().display());
    match helm {
        HelmMajor::V3 => assert!(fix.ends_with(&journal), "{fix}"),
        HelmMajor::V4 => assert!(
            fix.ends_with(&format!("{journal} --force-conflicts")),
            "{fix}"
        ),
    }
    // The scenario passes its own --journal-dir (the same one): the rest is the fix as printed.
    let mut words: Vec<&str> = fix
        .split(' ')
        .skip(2)
        .take_while(|w| *w != "--journal-dir")
        .collect();
    if helm == HelmMajor::V4 {
        words.push("--force-conflicts");
    }
    let fixed = s.safe_rollback(&words);
    assert_eq!(fixed.code, 0, "{fixed}");
    let after = s.safe_rollback(&["seed", "--diagnose", "--output", "json"]);
    let d = after.json();
    let kinds: Vec<&str> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // All three are gone: the orphan deleted, the revision deployed, the hand edit undone. The
    // Deployment still has no node to run on.
    assert_eq!(kinds, ["not-ready"], "{after}");
    assert_eq!(after.code, 8, "{after}");
}

fn a_namespace_scoped_user_gets_not_checked_entries(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "diag-rbac");
    s.seed_without_service();
    // A user who may read the release (helm keeps it in Secrets) and nothing else here.
    s.kubectl(&[
        "create",
        "role",
        "release-reader",
        "--verb=get,list",
        "--resource=secrets",
    ]);
    s.kubectl(&[
        "create",
        "rolebinding",
        "release-reader",
        "--role=release-reader",
        "--user=diag-viewer",
    ]);
    let before = state(&s, "seed");

    let args = ["seed", "--diagnose", "--kube-as-user", "diag-viewer"];
    let run = s.safe_rollback(&[&args[..], &["--output", "json"]].concat());
    assert_eq!(run.code, 0, "what it could read is healthy:\n{run}");
    let d = run.json();
    assert_eq!(d["status"], "deployed", "{run}");
    assert_eq!(d["orphans"], serde_json::Value::Null, "{run}");
    assert_eq!(d["strays"], serde_json::Value::Null, "{run}");
    assert_eq!(d["drifted"], serde_json::Value::Null, "{run}");
    let not_checked = strings(&d["not_checked"]);
    assert!(
        not_checked
            .iter()
            .any(|n| n.starts_with("orphans: ") && n.contains("403")),
        "{not_checked:#?}"
    );
    assert!(
        not_checked.iter().any(|n| n.starts_with("drift: ")),
        "{not_checked:#?}"
    );
    assert!(
        not_checked.iter().any(|n| n.starts_with("strays: ")),
        "{not_checked:#?}"
    );
    assert!(
        not_checked.iter().any(|n| n.contains("readiness")),
        "{not_checked:#?}"
    );
    assert_eq!(d["not_ready"]["checked"], false, "{run}");
    let text = s.safe_rollback(&args);
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains("not checked: orphans: "), "{text}");
    assert_eq!(state(&s, "seed"), before, "diagnose changed something");
}

/// A run killed outright (SIGKILL to its process group, helm included) while helm waited: its
/// journal is left `captured` and the release `pending-rollback`. Diagnose names both, the
/// journal with the `--finish` that completes it; once that ran, only the pending revision is
/// left, with the rollback that supersedes it.
fn a_killed_run_is_an_unfinished_run_and_its_revision_pending(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "diag-killed");
    s.hanging_release();
    let mut killed = s
        .safe_rollback_command(&["more", "1", "--wait", "--timeout", "5m"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    s.wait_until_helm_waits();
    // SAFETY: kill(2) on the process group this test started and has not reaped.
    assert_eq!(
        unsafe { libc::kill(-(killed.id() as i32), libc::SIGKILL) },
        0
    );
    killed.wait().unwrap();
    let before = state(&s, "more");

    let run = s.safe_rollback(&["more", "--diagnose", "--output", "json"]);
    assert_eq!(run.code, 8, "{run}");
    let d = run.json();
    assert_eq!(d["status"], "pending-rollback", "{run}");
    assert_eq!(d["pending"]["revision"], 3, "{run}");
    assert!(d["pending"]["age_seconds"].as_i64().unwrap() < 300, "{run}");
    assert_eq!(d["pending"]["left_by"], serde_json::Value::Null, "{run}");
    let findings = d["findings"].as_array().unwrap();
    let kinds: Vec<&str> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    // And the Deployment helm waited for, which never had a node to run on.
    assert_eq!(kinds, ["pending", "unfinished-run", "not-ready"], "{run}");
    let pending = findings[0]["fix_command"].as_str().unwrap();
    assert!(
        pending.starts_with(&format!(
            "helm safe-rollback more 2 --namespace {}",
            s.namespace
        )) && pending.ends_with("--allow-pending"),
        "{pending}"
    );
    let finish = findings[1]["fix_command"].as_str().unwrap();
    assert!(finish.ends_with(" --finish"), "{finish}");
    assert_eq!(d["unfinished_runs"][0]["in_progress"], false, "{run}");
    assert_eq!(state(&s, "more"), before, "diagnose changed something");

    let words: Vec<&str> = finish
        .split(' ')
        .skip(2)
        .take_while(|w| *w != "--journal-dir")
        .collect();
    let finished = s.safe_rollback(&[&words[..], &["--finish"]].concat());
    assert_eq!(finished.code, 0, "{finished}");
    let after = s.safe_rollback(&["more", "--diagnose", "--output", "json"]);
    let kinds: Vec<String> = after.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["pending", "not-ready"], "{after}");
}

/// Two objects that claim the release and that its newest revision does not have: a ConfigMap
/// of revision 1 that helm kept (`helm.sh/resource-policy: keep`) when revision 2 dropped it,
/// and a ServiceAccount made by hand with the release's ownership metadata. Each is a finding
/// with its uid, the revision that had it last (or none) and the delete command, which removes
/// it; nothing else is touched. A ClusterRole made the same way is found too: cluster-scoped
/// kinds are listed as well as the release's namespaces.
fn objects_claiming_the_release_outside_its_newest_revision_are_strays(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "diag-stray");
    let template = format!(
        "{}{}",
        HEALTHY_TEMPLATE,
        r#"{{- if .Values.kept }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-kept
  annotations: {"helm.sh/resource-policy": keep}
data: {k: v}
{{- end }}
"#
    );
    let chart = s.write_chart("strays", &template);
    s.helm(&["install", "seed", &chart, "--set", "k=1,kept=true"])
        .ok();
    s.helm(&["upgrade", "seed", &chart, "--set", "k=1,kept=false"])
        .ok();
    s.kubectl(&["create", "serviceaccount", "seed-handmade"])
        .ok();
    s.kubectl(&[
        "label",
        "serviceaccount",
        "seed-handmade",
        "app.kubernetes.io/managed-by=Helm",
    ])
    .ok();
    s.kubectl(&[
        "annotate",
        "serviceaccount",
        "seed-handmade",
        "meta.helm.sh/release-name=seed",
        &format!("meta.helm.sh/release-namespace={}", s.namespace),
    ])
    .ok();
    // Cluster-scoped, named after the namespace: other tests' releases are also `seed`.
    let role = format!("{}-handmade", s.namespace);
    s.kubectl(&[
        "create",
        "clusterrole",
        &role,
        "--verb=get",
        "--resource=pods",
    ])
    .ok();
    s.kubectl(&[
        "label",
        "clusterrole",
        &role,
        "app.kubernetes.io/managed-by=Helm",
    ])
    .ok();
    s.kubectl(&[
        "annotate",
        "clusterrole",
        &role,
        "meta.helm.sh/release-name=seed",
        &format!("meta.helm.sh/release-namespace={}", s.namespace),
    ])
    .ok();
    let before = state(&s, "seed");

    let run = s.safe_rollback(&["seed", "--diagnose", "--output", "json"]);
    assert_eq!(run.code, 8, "{run}");
    let d = run.json();
    assert_eq!(state(&s, "seed"), before, "diagnose changed something");
    // The incident view judges it alike, though it reads a deployed release's newest revision
    // without `helm history`: the older revision that had a stray is read when one is found.
    let view = s.safe_rollback(&["--diagnose", "--all", "--output", "json"]);
    let entry = view.json()["releases"][0].clone();
    let timeless = |mut diagnosis: serde_json::Value| {
        diagnosis["duration_ms"] = serde_json::Value::Null;
        diagnosis
    };
    assert_eq!(timeless(entry), timeless(d.clone()), "{view}");
    let strays = d["strays"].as_array().cloned().unwrap_or_default();
    let find = |kind: &str| {
        strays
            .iter()
            .find(|o| o["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} among the strays:\n{run}"))
    };
    let (kept, handmade) = (find("ConfigMap"), find("ServiceAccount"));
    let cluster_role = find("ClusterRole");
    assert_eq!(strays.len(), 3, "{run}");
    assert_eq!(cluster_role["name"], role.as_str(), "{run}");
    assert_eq!(cluster_role["namespace"], serde_json::Value::Null, "{run}");
    assert_eq!(
        cluster_role["last_revision"],
        serde_json::Value::Null,
        "{run}"
    );
    assert_eq!(kept["name"], "seed-kept", "{run}");
    assert_eq!(kept["last_revision"], 1, "{run}");
    assert_eq!(handmade["last_revision"], serde_json::Value::Null, "{run}");
    assert_eq!(
        Some(handmade["uid"].as_str().unwrap().to_string()),
        s.uid("serviceaccount/seed-handmade")
    );
    let stray_findings: Vec<&serde_json::Value> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "stray")
        .collect();
    assert_eq!(stray_findings.len(), 3, "{run}");
    let text = s.safe_rollback(&["seed", "--diagnose"]);
    assert!(text.stdout.contains("seed-handmade"), "{text}");
    assert!(text.stdout.contains("revision 1 had it last"), "{text}");

    // The printed commands remove exactly those objects.
    for stray in [&kept, &handmade, &cluster_role] {
        let command = stray["delete_command"].as_str().unwrap();
        let words: Vec<&str> = command.split_whitespace().skip(1).collect();
        assert_eq!(s.kubectl(&words).code, 0, "{command}");
    }
    let after = s.safe_rollback(&["seed", "--diagnose", "--output", "json"]);
    assert_eq!(after.json()["strays"], serde_json::json!([]), "{after}");
    assert_eq!(after.code, 0, "{after}");
}
