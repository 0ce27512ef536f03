//! Deletes that destroy data, end to end on the bed through the plugin, helm 3 and helm 4: a
//! rollback to a revision without a CustomResourceDefinition (with custom resources, one of
//! another release), a PersistentVolumeClaim and a Namespace is refused with what goes with each,
//! exit 5, nothing changed; `--plan` marks them; a `helm.sh/resource-policy: keep` object is no
//! delete; `--allow-destructive` lets helm delete them.

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(deletes_that_destroy_data_are_refused_unless_allowed);

/// Revision 1 is a ConfigMap; with `extra`, revision 2 adds the objects whose delete destroys
/// data, and a PVC helm is told to keep. Cluster-scoped names carry the namespace: the helm 3
/// and helm 4 runs share the cluster.
const CHART: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data: {k: v}
{{- if .Values.extra }}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{{ .Release.Namespace }}.example.com
spec:
  group: {{ .Release.Namespace }}.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Release.Name }}-data
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Release.Name }}-kept
  annotations: {"helm.sh/resource-policy": keep}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 2Gi}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {{ .Release.Namespace }}-scratch
{{- end }}
"#;

fn deletes_that_destroy_data_are_refused_unless_allowed(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "destructive");
    let chart = s.write_chart("destructive", CHART);
    s.helm(&["install", "seed", &chart]).ok();
    s.helm(&["upgrade", "seed", &chart, "--set", "extra=true"])
        .ok();
    let ns = s.namespace.clone();
    let crd = format!("widgets.{ns}.example.com");
    s.kubectl(&[
        "wait",
        "--for=condition=established",
        &format!("crd/{crd}"),
        "--timeout=60s",
    ])
    .ok();
    let widgets = format!(
        "apiVersion: {ns}.example.com/v1\nkind: Widget\nmetadata: {{name: mine}}\n---\n\
         apiVersion: {ns}.example.com/v1\nkind: Widget\nmetadata:\n  name: theirs\n  \
         annotations: {{meta.helm.sh/release-name: other, meta.helm.sh/release-namespace: {ns}}}\n"
    );
    let file = s.temp_dir().join("widgets.yaml");
    std::fs::write(&file, widgets).unwrap();
    s.kubectl(&["apply", "-f", &file.display().to_string()])
        .ok();
    let history = || s.helm(&["history", "seed", "-o", "json"]).ok().stdout;
    let before = history();

    let plan = s.safe_rollback(&["seed", "1", "--plan", "--output", "json"]);
    let destructive = plan.json()["plan"]["destructive"].clone();
    let objects: Vec<String> = destructive
        .as_array()
        .unwrap_or_else(|| panic!("no destructive deletes in the plan:\n{plan}"))
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        objects.len(),
        3,
        "the CRD, the PVC and the Namespace; the kept PVC is no delete:\n{plan}"
    );
    for object in [
        format!("CustomResourceDefinition/{crd}"),
        "PersistentVolumeClaim/seed-data".into(),
        format!("Namespace/{ns}-scratch"),
    ] {
        assert!(objects.contains(&object), "{object} missing:\n{plan}");
    }
    let crd_delete = destructive
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .unwrap();
    assert_eq!(crd_delete["custom_resources"], 2, "{plan}");
    let text = s.safe_rollback(&["seed", "1", "--plan"]);
    assert!(
        text.stdout
            .contains("2 custom resources of kind Widget, in every namespace"),
        "{text}"
    );

    let refused = s.safe_rollback(&["seed", "1", "--output", "json"]);
    assert_eq!(refused.code, 5, "{refused}");
    let reasons = strings(&refused.json()["refusal_reasons"]);
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.contains("--allow-destructive"))
            .count(),
        3,
        "{refused}"
    );
    assert_eq!(history(), before, "a refused rollback ran helm");
    assert!(s.uid(&format!("crd/{crd}")).is_some());
    assert!(s.uid(&format!("{crd}/theirs")).is_some(), "{refused}");

    let allowed = s.safe_rollback(&["seed", "1", "--allow-destructive"]);
    assert_eq!(allowed.code, 0, "{allowed}");
    // Gone, or going: the namespace and volume controllers finish what helm deleted.
    let gone = |object: &str| {
        let fields = "jsonpath={.metadata.uid} {.metadata.deletionTimestamp}";
        let run = s.kubectl(&["get", object, "--ignore-not-found", "-o", fields]);
        run.stdout.split_whitespace().count() != 1
    };
    assert!(gone(&format!("crd/{crd}")), "{allowed}");
    assert!(gone("pvc/seed-data"), "{allowed}");
    assert!(gone(&format!("namespace/{ns}-scratch")), "{allowed}");
    assert!(!gone("pvc/seed-kept"), "helm keeps what it is told to keep");
}
