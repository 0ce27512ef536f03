//! Fields that cannot change in place, end to end on the bed through the plugin, helm 3 and
//! helm 4: revision 2 of a release was made after its Deployment and StatefulSet were deleted
//! with their pods orphaned, with a new selector and a larger volumeClaimTemplate; the rollback
//! to revision 1 changes both back, which the API server refuses in place. Preflight refuses
//! it, exit 5, nothing changed, naming each field with its live and target values and the
//! commands past it; `--plan` lists them; `--replace-immutable` orphan-deletes exactly those
//! two workloads (their ReplicaSet and PersistentVolumeClaims stay) and helm creates them again.

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(fields_that_cannot_change_are_refused_or_replaced);

/// `.Values.tier` goes into the Deployment's selector, `.Values.size` into the StatefulSet's
/// volumeClaimTemplate. No node runs the pods: the objects are what matters.
const CHART: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ .Release.Name }}-web
      {{- with .Values.tier }}
      tier: {{ . }}
      {{- end }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}-web
        {{- with .Values.tier }}
        tier: {{ . }}
        {{- end }}
    spec:
      containers: [{name: web, image: registry.invalid/web:1}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-db
spec:
  serviceName: {{ .Release.Name }}-db
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}-db}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}-db}}
    spec:
      containers: [{name: db, image: registry.invalid/db:1}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: {{ .Values.size | default "1Gi" }}}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  tier: {{ .Values.tier | default "none" | quote }}
"#;

fn fields_that_cannot_change_are_refused_or_replaced(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "immutable");
    let ns = s.namespace.clone();
    let chart = s.write_chart("immutable", CHART);
    // Each release made as a user makes it: the upgrade gets past the same fields by orphaning.
    let release = |name: &str| {
        s.helm(&["install", name, &chart]).ok();
        let (web, db) = (
            format!("deployment/{name}-web"),
            format!("statefulset/{name}-db"),
        );
        s.kubectl(&["delete", &web, &db, "--cascade=orphan", "--wait=true"])
            .ok();
        let values = ["--set", "tier=front", "--set", "size=2Gi"];
        s.helm(&[&["upgrade", name, &chart][..], &values[..]].concat())
            .ok();
    };
    release("seed");
    // The twin, rolled back by native helm: the reference for the refusal below.
    release("twin");
    let native = s.helm(&["rollback", "twin", "1"]);
    assert_ne!(
        native.code, 0,
        "native helm must fail on the same fields:\n{native}"
    );
    assert!(native.stderr.contains("field is immutable"), "{native}");
    let history = || s.helm(&["history", "seed", "-o", "json"]).ok().stdout;
    let before = history();
    let uids = || {
        [
            "deployment/seed-web",
            "statefulset/seed-db",
            "configmap/seed-settings",
        ]
        .map(|object| s.uid(object).unwrap_or_default())
    };
    let uids_before = uids();

    let plan = s.safe_rollback(&["seed", "1", "--plan", "--output", "json"]);
    assert_eq!(plan.code, 5, "the plan's verdict is a refusal:\n{plan}");
    let immutable = plan.json()["plan"]["immutable"].clone();
    let fields: Vec<String> = immutable
        .as_array()
        .unwrap_or_else(|| panic!("no immutable fields in the plan:\n{plan}"))
        .iter()
        .map(|c| {
            format!(
                "{}/{}",
                c["kind"].as_str().unwrap(),
                c["field"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            "Deployment/spec.selector",
            "StatefulSet/spec.volumeClaimTemplates"
        ],
        "{plan}"
    );

    let refused = s.safe_rollback(&["seed", "1", "--output", "json"]);
    assert_eq!(refused.code, 5, "{refused}");
    let report = refused.json();
    let reasons = strings(&report["refusal_reasons"]);
    let selector = reasons
        .iter()
        .find(|r| r.contains("spec.selector"))
        .unwrap_or_else(|| panic!("no selector refusal:\n{refused}"));
    for words in [
        &format!("Deployment/{ns}/seed-web") as &str,
        r#"live {"matchLabels":{"app":"seed-web","tier":"front"}}, target {"matchLabels":{"app":"seed-web"}}"#,
        &format!("kubectl delete deployment.v1.apps/seed-web --namespace {ns}"),
        "--cascade=orphan`, then `helm safe-rollback seed 1",
        "--replace-immutable",
        "--force-replace",
    ] {
        assert!(selector.contains(words), "{words:?} not in {selector}");
    }
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("spec.volumeClaimTemplates")
                && r.contains(&format!("StatefulSet/{ns}/seed-db"))),
        "{refused}"
    );
    assert_eq!(
        report["immutable"].as_array().map(Vec::len),
        Some(2),
        "{refused}"
    );
    assert_eq!(history(), before, "a refused rollback ran helm");
    assert_eq!(uids(), uids_before, "a refused rollback changed an object");

    let text = s.safe_rollback(&["seed", "1"]);
    assert_eq!(text.code, 5, "{text}");
    assert!(
        format!("{}{}", text.stdout, text.stderr).contains("--cascade=orphan"),
        "{text}"
    );

    let replica_sets = || {
        let run = s.kubectl(&[
            "get",
            "replicasets",
            "-o",
            "jsonpath={.items[*].metadata.uid}",
        ]);
        run.ok().stdout
    };
    let claims = || s.kubectl(&["get", "pvc", "-o", "name"]).ok().stdout;
    let (replica_sets_before, claims_before) = (replica_sets(), claims());
    assert!(!replica_sets_before.is_empty());
    let replaced = s.safe_rollback(&["seed", "1", "--replace-immutable", "--output", "json"]);
    assert_eq!(replaced.code, 0, "{replaced}");
    let report = replaced.json();
    let actions: Vec<String> = report["reconciled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{} {} {}", a["action"], a["name"], a["result"]))
        .collect();
    assert_eq!(
        actions,
        [
            r#""replace-immutable" "seed-web" "deleted""#,
            r#""replace-immutable" "seed-db" "deleted""#
        ],
        "{replaced}"
    );
    let [web, db, settings] = uids();
    assert!(
        !web.is_empty() && web != uids_before[0],
        "helm created the Deployment again"
    );
    assert!(
        !db.is_empty() && db != uids_before[1],
        "helm created the StatefulSet again"
    );
    assert_eq!(settings, uids_before[2], "nothing else was replaced");
    let selector = s.kubectl(&[
        "get",
        "deployment/seed-web",
        "-o",
        "jsonpath={.spec.selector.matchLabels}",
    ]);
    assert_eq!(selector.ok().stdout, r#"{"app":"seed-web"}"#);
    for uid in replica_sets_before.split_whitespace() {
        assert!(
            replica_sets().contains(uid),
            "the orphaned ReplicaSet {uid} was deleted"
        );
    }
    assert_eq!(claims(), claims_before, "no claim was touched");
    assert_eq!(report["outcome"], "succeeded", "{replaced}");
}
