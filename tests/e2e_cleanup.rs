//! Deleting leftovers on the real bed, helm 3 and helm 4: a leftover held by a finalizer is
//! reported `terminating` within the bound instead of hanging the run.

mod support;

use std::time::{Duration, Instant};

use support::{HelmMajor, Scenario};

for_both_helms!(a_leftover_held_by_a_finalizer_is_reported_terminating_in_time);

/// A ConfigMap held by a finalizer nobody removes, in revision 1 only, and a Deployment that
/// never becomes ready (the bed has no nodes): a rollback to 1 with `--wait` creates the
/// ConfigMap and then fails at its timeout.
const CHART: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-app
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}, annotations: {rev: {{ .Values.rev | quote }}}}
    spec:
      containers: [{name: c, image: busybox}]
{{- if .Values.held }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-held
  finalizers: [example.com/hold]
data: {k: v}
{{- end }}
"#;

fn a_leftover_held_by_a_finalizer_is_reported_terminating_in_time(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "finalizer");
    let chart = s.write_chart("held", CHART);
    s.helm(&["install", "web", &chart, "--set", "held=true,rev=1"])
        .ok();
    // Upgrading without it deletes it; the finalizer keeps it terminating: release it.
    s.helm(&["upgrade", "web", &chart, "--set", "held=false,rev=2"])
        .ok();
    s.kubectl(&[
        "patch",
        "configmap/web-held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let started = Instant::now();
    let run = s.safe_rollback(&[
        "web",
        "1",
        "--wait",
        "--timeout",
        "6s",
        "--cleanup-on-fail",
        "--output",
        "json",
    ]);
    // helm's 6 s wait, then at most our 6 s bound (and the run's own work).
    assert!(started.elapsed() < Duration::from_secs(40), "{run}");
    assert_eq!(run.code, 4, "cleanup incomplete:\n{run}");
    let report = run.json();
    let reconciled = report["reconciled"].as_array().unwrap();
    assert_eq!(reconciled.len(), 1, "{run}");
    assert_eq!(reconciled[0]["name"], "web-held", "{run}");
    assert_eq!(reconciled[0]["result"], "terminating", "{run}");
    assert_eq!(
        reconciled[0]["finalizers"],
        serde_json::json!(["example.com/hold"]),
        "{run}"
    );
    // Let the namespace go.
    s.kubectl(&[
        "patch",
        "configmap/web-held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
}
