//! `--wait` that runs out of time names what never became ready, and why.
//! The bed has no nodes and no scheduler: pods are created and stay Pending, a claim without a
//! storage class is never bound, and nothing gives a LoadBalancer an address. So a rollback
//! with `--wait` is a real timeout, and helm 3 says only `context deadline exceeded` while
//! helm 4 names the Deployment without the cause. We must name all three, with Kubernetes'
//! reasons, after helm's own error; and without `--wait` read nothing.

mod support;

use support::{strings, HelmMajor, Run, Scenario};

for_both_helms!(
    a_wait_timeout_names_every_object_not_ready_in_json,
    a_wait_timeout_names_every_object_not_ready_in_text,
    without_wait_nothing_is_read_or_reported,
    pods_the_user_may_not_list_are_a_warning_not_a_crash,
    with_wait_for_jobs_a_job_that_never_ran_is_named
);

/// A Deployment (one replica), a claim, a LoadBalancer Service, a Job (the same in every
/// revision: its template cannot change) and a ConfigMap (which has no readiness); `tag` changes
/// the Deployment's image between revisions.
const CHART: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Release.Name }}-web}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}-web}
    spec:
      containers:
      - name: web
        image: "nginx:{{ .Values.tag | default "1.25" }}"
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Release.Name }}-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests: {storage: 1Gi}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-lb
spec:
  type: LoadBalancer
  selector: {app: {{ .Release.Name }}-web}
  ports:
  - port: 80
    protocol: TCP
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: migrate
        image: busybox:1.36
        command: ["true"]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  tag: "{{ .Values.tag | default "1.25" }}"
"#;

/// Revision 1 installed without waiting, revision 2 with another image: rolling back to 1
/// changes the Deployment's pod template, and its new pods never start.
fn two_revisions(s: &Scenario, release: &str) {
    let chart = s.write_chart("waited", CHART);
    s.helm(&["install", release, &chart]).ok();
    s.helm(&["upgrade", release, &chart, "--set", "tag=1.26"])
        .ok();
}

fn a_wait_timeout_names_every_object_not_ready_in_json(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "wait-json");
    two_revisions(&s, "w");
    let run = s.safe_rollback(&["w", "1", "--wait", "--timeout", "10s", "--output", "json"]);
    assert_eq!(run.code, 1, "helm's own exit code:\n{run}");
    let report = run.json();
    let primary = report["primary_errors"][0].as_str().unwrap_or_default();
    assert!(
        primary.contains("context deadline exceeded"),
        "helm's error stays first:\n{run}"
    );
    let not_ready = report["not_ready"].as_array().unwrap();
    let entry = |kind: &str| {
        not_ready
            .iter()
            .find(|n| n["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in not_ready:\n{run}"))
    };
    let web = entry("Deployment");
    assert_eq!(web["name"], "w-web");
    assert_eq!(web["namespace"], s.namespace.as_str());
    assert_eq!(web["reason"], "NotScheduled", "{run}");
    let detail = web["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1 of 1 not ready; pod w-web-")
            && detail.contains("never scheduled: no node or scheduler has placed the pod"),
        "{run}"
    );
    assert_eq!(entry("PersistentVolumeClaim")["name"], "w-data");
    assert_eq!(entry("PersistentVolumeClaim")["reason"], "Pending");
    assert_eq!(entry("Service")["name"], "w-lb");
    assert_eq!(entry("Service")["reason"], "LoadBalancerPending");
    // The ConfigMap has no readiness, and without --wait-for-jobs a Job that has not failed is
    // not helm's business: nothing else is named.
    assert_eq!(not_ready.len(), 3, "{run}");
}

fn a_wait_timeout_names_every_object_not_ready_in_text(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "wait-text");
    two_revisions(&s, "w");
    let run = s.safe_rollback(&["w", "1", "--wait", "--timeout", "10s"]);
    assert_eq!(run.code, 1, "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting {prefix:?}:\n{run}"))
    };
    let error = at("  error: ");
    let ns = &s.namespace;
    let web = at(&format!(
        "  not ready: Deployment/{ns}/w-web NotScheduled: 1 of 1 not ready; pod w-web-"
    ));
    let claim = at(&format!(
        "  not ready: PersistentVolumeClaim/{ns}/w-data Pending: phase Pending"
    ));
    let lb = at(&format!(
        "  not ready: Service/{ns}/w-lb LoadBalancerPending: type LoadBalancer without an address"
    ));
    assert!(
        error < web && error < claim && error < lb,
        "the cause first:\n{run}"
    );
    let objects = lines
        .iter()
        .filter(|l| l.starts_with("  not ready: "))
        .count();
    assert_eq!(objects, 3, "one line per object:\n{run}");
}

/// The same pods never start, but no one asked helm to wait: the rollback succeeds, and
/// nothing is read for readiness (the `--debug` trace names every step taken).
fn without_wait_nothing_is_read_or_reported(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "wait-none");
    two_revisions(&s, "w");
    let run = s.safe_rollback(&["w", "1", "--debug", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["not_ready"], serde_json::json!([]), "{run}");
    assert!(
        run.stderr.contains("safe-rollback: ["),
        "the trace is on:\n{run}"
    );
    assert!(
        !run.stderr.contains("reading why objects are not ready")
            && !run.stderr.contains("/persistentvolumeclaims"),
        "nothing read for readiness:\n{run}"
    );
}

/// A user who may do all that helm needs but not list pods: the pods' list is refused (403),
/// which is a warning naming it; the rest is still judged, and helm's exit code stands.
fn pods_the_user_may_not_list_are_a_warning_not_a_crash(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "wait-rbac");
    two_revisions(&s, "w");
    s.kubectl(&[
        "create",
        "role",
        "deployer",
        "--verb=*",
        "--resource=secrets,configmaps,services,persistentvolumeclaims,deployments.apps,\
         replicasets.apps,jobs.batch,leases.coordination.k8s.io",
    ]);
    s.kubectl(&[
        "create",
        "rolebinding",
        "deployer",
        "--role=deployer",
        "--user=team-deployer",
    ]);
    let args = ["w", "1", "--wait", "--timeout", "10s", "--output", "json"];
    let mut command = s.safe_rollback_command(&args);
    command.env("KUBECONFIG", s.kubeconfig_as("team-deployer"));
    let run = Run::from(command.output().unwrap());
    assert_eq!(run.code, 1, "helm's own exit code:\n{run}");
    let report = run.json();
    let warnings = strings(&report["warnings"]);
    let refused: Vec<&String> = warnings
        .iter()
        .filter(|w| w.starts_with("readiness not checked for Pods in namespace"))
        .collect();
    assert_eq!(refused.len(), 1, "{run}");
    assert!(
        refused[0].contains("HTTP 403") && refused[0].contains("forbidden"),
        "{run}"
    );
    let not_ready = report["not_ready"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> = not_ready
        .iter()
        .map(|n| (n["kind"].as_str().unwrap(), n["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("PersistentVolumeClaim", "Pending"),
            ("Service", "LoadBalancerPending"),
            ("Deployment", "NotReady"),
        ],
        "{run}"
    );
    assert_eq!(
        not_ready[2]["detail"], "1 of 1 not ready; its pods could not be read",
        "{run}"
    );
}

/// With `--wait-for-jobs` helm also waits for the Job to complete; its pod never runs.
fn with_wait_for_jobs_a_job_that_never_ran_is_named(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "wait-jobs");
    two_revisions(&s, "w");
    let args = [
        "w",
        "1",
        "--wait",
        "--wait-for-jobs",
        "--timeout",
        "10s",
        "--output",
        "json",
    ];
    let run = s.safe_rollback(&args);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    let job = report["not_ready"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "Job")
        .unwrap_or_else(|| panic!("no Job in not_ready:\n{run}"));
    assert_eq!(job["name"], "w-migrate");
    assert_eq!(job["reason"], "NotScheduled", "{run}");
    let detail = job["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("0 of 1 completions; pod w-migrate-")
            && detail.contains("never scheduled"),
        "{run}"
    );
}
