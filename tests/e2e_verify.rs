//! "Success" that is not: helm reports a successful rollback while a live object does not match
//! the target revision. A real case: for custom resources helm's client-side update computes a
//! two-way patch between the release's old and new manifests and ignores the live object, so a
//! drift made by someone else survives a rollback to a revision with the same manifest. Helm 3
//! does this by default, helm 4 with `--server-side=false`. We must report `drifted` (exit 7),
//! naming the object; a clean rollback must not be.

mod support;

use support::{HelmMajor, Scenario};

for_both_helms!(
    a_successful_rollback_that_left_drift_is_reported,
    drift_is_also_found_without_preflight,
    a_target_the_server_rejects_is_drift_whatever_helm_says
);

/// helm can say "Rollback was a success!" for a target the API server now rejects: its update
/// of a custom resource patches the old manifest against the new one and never sends what the
/// two share. Here the Widget CRD was made stricter after the release was installed. The
/// live state cannot be the target's, so the outcome is `drifted` with the server's reason —
/// never a clean success.
fn a_target_the_server_rejects_is_drift_whatever_helm_says(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "hollow");
    let group = format!("{}.example.com", s.namespace);
    install_widget_crd(&s, &group, serde_json::json!({"type": "integer"}));
    let chart = write_chart(&s, &group);
    s.helm(&["install", "w", &chart]).ok();
    s.helm(&["upgrade", "w", &chart, "--set", "note=second"])
        .ok();
    // From now on the server accepts no Widget of size 1 (the target's); the live one was
    // changed by hand to one it accepts. helm's update of a custom resource only patches the
    // old manifest against the new one (here: its own labels), so it succeeds.
    install_widget_crd(
        &s,
        &group,
        serde_json::json!({"type": "integer", "maximum": 0}),
    );
    s.kubectl(&[
        "patch",
        &format!("widgets.{group}"),
        "w-widget",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":0}}"#,
    ]);

    let mut args = vec!["w", "1", "--no-preflight", "--output", "json"];
    if helm == HelmMajor::V4 {
        args.push("--server-side=false");
    }
    let run = s.safe_rollback(&args);
    assert!(
        run.stderr.contains("Rollback was a success"),
        "helm says success:\n{run}"
    );
    assert_eq!(run.code, 7, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "drifted", "{run}");
    let drifted = report["drifted"].as_array().unwrap();
    assert_eq!(drifted.len(), 1, "{run}");
    assert_eq!(drifted[0]["name"], "w-widget");
    let reason = drifted[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the API server rejects the target") && reason.contains("spec.size"),
        "{run}"
    );
}

/// Verification does not depend on the preflight: without it, the verdict is the same.
fn drift_is_also_found_without_preflight(helm: HelmMajor) {
    drift_scenario(helm, "drift-nopre", &["--no-preflight"]);
}

fn a_successful_rollback_that_left_drift_is_reported(helm: HelmMajor) {
    drift_scenario(helm, "drift", &[]);
}

/// The Widget CRD of `group`, its `spec.size` validated by `size_schema`; applied again, it
/// replaces the schema.
fn install_widget_crd(s: &Scenario, group: &str, size_schema: serde_json::Value) {
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "properties": {"size": size_schema}}}
                }}
            }]
        }
    })
    .to_string();
    let crd_file = s.home.path().join("crd.json");
    std::fs::write(&crd_file, crd).unwrap();
    s.kubectl(&["apply", "-f", crd_file.to_str().unwrap()]);
    s.kubectl(&[
        "wait",
        "--for=condition=established",
        &format!("crd/widgets.{group}"),
        "--timeout=60s",
    ]);
}

fn write_chart(s: &Scenario, group: &str) -> String {
    s.write_chart(
        "widget",
        &format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: {{{{ .Release.Name }}}}-widget\n\
             spec:\n  size: {{{{ .Values.size | default 1 }}}}\n---\napiVersion: v1\nkind: ConfigMap\n\
             metadata:\n  name: {{{{ .Release.Name }}}}-note\ndata:\n  note: {{{{ .Values.note | default \"first\" | quote }}}}\n"
        ),
    )
}

fn drift_scenario(helm: HelmMajor, name: &str, extra: &[&str]) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, name);
    let group = format!("{}.example.com", s.namespace);
    install_widget_crd(&s, &group, serde_json::json!({"type": "integer"}));
    let widgets = format!("widgets.{group}");
    let chart = write_chart(&s, &group);
    s.helm(&["install", "w", &chart]).ok();
    s.helm(&["upgrade", "w", &chart, "--set", "note=second"])
        .ok();

    // A hand edit of the Widget's size, as someone else would make it.
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
    let client_side: &[&str] = match helm {
        HelmMajor::V3 => &[],
        HelmMajor::V4 => &["--server-side=false"],
    };
    let roll_back_to = |revision: &str| {
        let mut args = vec!["w", revision, "--output", "json"];
        args.extend_from_slice(client_side);
        args.extend_from_slice(extra);
        s.safe_rollback(&args)
    };

    set_size(5);
    // Revision 1 has the same Widget manifest as revision 2: helm patches nothing on it.
    let run = roll_back_to("1");
    assert!(
        run.stderr.contains("Rollback was a success"),
        "helm says success:\n{run}"
    );
    assert_eq!(run.code, 7, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "drifted");
    let primary = support::strings(&report["primary_errors"]);
    assert!(
        primary[0]
            .starts_with("helm reported success, but 1 object(s) do not match revision 1: Widget/")
            && primary[0].contains("w-widget"),
        "the drift is the reason the run did not succeed: {run}"
    );
    let drifted = report["drifted"].as_array().unwrap();
    assert_eq!(drifted.len(), 1, "{run}");
    assert_eq!(drifted[0]["kind"], "Widget");
    assert_eq!(drifted[0]["namespace"], s.namespace.as_str());
    assert_eq!(drifted[0]["name"], "w-widget");
    assert_eq!(
        drifted[0]["fields"],
        serde_json::json!([{"path": "spec.size", "expected": 1, "live": 5}]),
        "{run}"
    );
    assert_eq!(report["verified"], true, "{run}");
    let size = s.kubectl(&["get", &widgets, "w-widget", "-o", "jsonpath={.spec.size}"]);
    assert_eq!(size.stdout.trim(), "5", "the drift is real");

    // Put it right by hand; a clean rollback is not drifted.
    set_size(1);
    let run = roll_back_to("2");
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["outcome"], "succeeded");
    assert_eq!(run.json()["drifted"], serde_json::json!([]));
    assert_eq!(run.json()["verified"], true);
}
