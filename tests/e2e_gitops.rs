//! GitOps owners, end to end on the bed through the plugin, helm 3 and helm 4: releases whose
//! objects carry the marks Flux and Argo CD write (no controller runs; the marks are what the
//! guard reads). An owner that is active or cannot be found is a refusal, exit 5, naming it and
//! the command that pauses it, with nothing changed; a suspended Flux HelmRelease (of a minimal
//! HelmRelease CRD) lets the rollback run with a note; `--allow-gitops` runs it with a warning.

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(
    a_flux_release_rolls_back_only_once_suspended,
    an_argo_release_needs_allow_gitops_when_its_application_is_not_read
);

/// Two ConfigMaps marked as `.Values.owner` says: `flux` as helm-controller labels what it
/// deploys, `argo` as Argo CD's label tracking does.
const CHART: &str = r#"{{- range tuple "config" "settings" }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $.Release.Name }}-{{ . }}
  labels:
    {{- if eq $.Values.owner "flux" }}
    helm.toolkit.fluxcd.io/name: {{ $.Release.Name }}
    helm.toolkit.fluxcd.io/namespace: {{ $.Release.Namespace }}
    {{- else if eq $.Values.owner "argo" }}
    argocd.argoproj.io/instance: {{ $.Release.Name }}
    {{- end }}
data:
  revision: {{ $.Release.Revision | quote }}
{{- end }}
"#;

/// Enough of Flux's HelmRelease API for the guard to read `spec.suspend`: the group, kind and
/// version helm-controller serves. Cluster-scoped and shared by both helms' runs.
const HELMRELEASE_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: helmreleases.helm.toolkit.fluxcd.io
spec:
  group: helm.toolkit.fluxcd.io
  scope: Namespaced
  names: {plural: helmreleases, singular: helmrelease, kind: HelmRelease, shortNames: [hr]}
  versions:
    - name: v2
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

fn apply(s: &Scenario, name: &str, yaml: &str) -> support::Run {
    let file = s.temp_dir().join(name);
    std::fs::write(&file, yaml).unwrap();
    s.kubectl(&["apply", "-f", &file.display().to_string()])
}

/// Installed, then upgraded: revision 2 of `release`, marked for `owner`.
fn marked_release<'a>(s: &'a Scenario, release: &str, owner: &str) -> impl Fn() -> String + 'a {
    let chart = s.write_chart("gitops", CHART);
    let owner = format!("owner={owner}");
    s.helm(&["install", release, &chart, "--set", &owner]).ok();
    s.helm(&["upgrade", release, &chart, "--set", &owner]).ok();
    let release = release.to_string();
    move || s.helm(&["history", &release, "-o", "json"]).ok().stdout
}

fn a_flux_release_rolls_back_only_once_suspended(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "gitops-flux");
    let ns = s.namespace.clone();
    // Both helms' runs create it; the second apply finds it there.
    if apply(&s, "crd.yaml", HELMRELEASE_CRD).code != 0 {
        apply(&s, "crd.yaml", HELMRELEASE_CRD).ok();
    }
    s.kubectl(&[
        "wait",
        "--for=condition=established",
        "crd/helmreleases.helm.toolkit.fluxcd.io",
        "--timeout=60s",
    ])
    .ok();
    let history = marked_release(&s, "web", "flux");
    let before = history();
    let pause = format!("flux suspend helmrelease web -n {ns}");

    let missing = s.safe_rollback(&["web", "1", "--output", "json"]);
    assert_eq!(missing.code, 5, "{missing}");
    let gitops = missing.json()["gitops"].clone();
    assert_eq!(gitops["owner"]["controller"], "flux", "{missing}");
    assert_eq!(gitops["owner"]["name"], "web", "{missing}");
    assert_eq!(gitops["objects"], 2, "{missing}");
    assert_eq!(gitops["state"], "unknown", "{missing}");
    assert_eq!(gitops["pause_command"], pause.as_str(), "{missing}");
    assert_eq!(history(), before, "a refused rollback ran helm");

    let helm_release = |suspend: bool| {
        format!(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {{name: web}}\n\
             spec:\n  interval: 10m\n  suspend: {suspend}\n  chart:\n    spec: {{chart: web}}\n"
        )
    };
    apply(&s, "helmrelease.yaml", &helm_release(false)).ok();
    let active = s.safe_rollback(&["web", "1"]);
    assert_eq!(active.code, 5, "{active}");
    let said = format!("{}{}", active.stdout, active.stderr);
    assert!(
        said.contains(&format!("Flux HelmRelease {ns}/web")),
        "{active}"
    );
    assert!(said.contains(&format!("`{pause}`")), "{active}");
    assert!(said.contains("--allow-gitops"), "{active}");
    let plan = s.safe_rollback(&["web", "1", "--plan", "--output", "json"]);
    assert_eq!(plan.json()["plan"]["gitops"]["state"], "active", "{plan}");
    assert_eq!(history(), before, "a refused rollback ran helm");

    apply(&s, "helmrelease.yaml", &helm_release(true)).ok();
    let suspended = s.safe_rollback(&["web", "1", "--output", "json"]);
    assert_eq!(suspended.code, 0, "{suspended}");
    let report = suspended.json();
    assert_eq!(report["gitops"]["state"], "paused", "{suspended}");
    let warnings = strings(&report["warnings"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("Flux HelmRelease {ns}/web")) && w.contains("is paused")),
        "{suspended}"
    );
    let revision = s.kubectl(&[
        "get",
        "configmap/web-config",
        "-o",
        "jsonpath={.data.revision}",
    ]);
    assert_eq!(revision.ok().stdout, "1", "helm rolled back to revision 1");
}

fn an_argo_release_needs_allow_gitops_when_its_application_is_not_read(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "gitops-argo");
    let history = marked_release(&s, "guestbook", "argo");
    let before = history();

    let refused = s.safe_rollback(&["guestbook", "1", "--output", "json"]);
    assert_eq!(refused.code, 5, "{refused}");
    let report = refused.json();
    assert_eq!(
        report["gitops"]["owner"]["controller"], "argo_cd",
        "{refused}"
    );
    assert_eq!(report["gitops"]["state"], "unknown", "{refused}");
    let reasons = strings(&report["refusal_reasons"]);
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("Argo CD Application argocd/guestbook")
                && r.contains("kubectl patch application guestbook -n argocd")
                && r.contains("--allow-gitops")),
        "{refused}"
    );
    assert_eq!(history(), before, "a refused rollback ran helm");

    let allowed = s.safe_rollback(&["guestbook", "1", "--allow-gitops", "--output", "json"]);
    assert_eq!(allowed.code, 0, "{allowed}");
    let warnings = strings(&allowed.json()["warnings"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("Argo CD Application argocd/guestbook")
                && w.contains("expect it to upgrade the release again")),
        "{allowed}"
    );
    let revision = s.kubectl(&[
        "get",
        "configmap/guestbook-settings",
        "-o",
        "jsonpath={.data.revision}",
    ]);
    assert_eq!(revision.ok().stdout, "1", "helm rolled back to revision 1");
}
