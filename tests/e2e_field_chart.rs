//! The project's own field chart (tests/fixtures/charts/field): in one small chart, what real
//! charts do and a synthetic one does not — octal `defaultMode`s, YAML 1.1 booleans where the
//! API takes booleans, an anchor with an alias and a merge key, empty maps and nulls,
//! `initialDelaySeconds: 0`, `1000m` quantities, cluster-scoped RBAC, a `pre-rollback` hook,
//! a CRD in `crds/` and a custom resource of it. Installed, upgraded by one value and rolled back
//! to revision 1 through the installed plugin (helm 3 and helm 4, their default settings), ours
//! must do what native `helm rollback` does: succeed, refuse nothing, see no drift.

mod support;

use support::{HelmMajor, Scenario};

for_both_helms!(the_field_chart_rolls_back_cleanly);

fn the_field_chart_rolls_back_cleanly(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "field");
    let chart = Guard::new(&s);
    let chart = chart.path.as_str();
    s.helm(&["install", "field", chart]).ok();
    let revision1 = s.helm(&["get", "manifest", "field"]).ok().stdout;
    s.helm(&["upgrade", "field", chart, "--set", "message=bye"])
        .ok();

    let run = s.safe_rollback(&["field", "1", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert_eq!(report["refusal_reasons"], serde_json::json!([]), "{run}");
    assert_eq!(report["drifted"], serde_json::json!([]), "{run}");

    // What a native rollback leaves: revision 1's manifest, its data live, its hook run.
    let now = s.helm(&["get", "manifest", "field"]).ok().stdout;
    assert_eq!(now, revision1, "the release's manifest is revision 1's");
    let message = s.kubectl(&[
        "get",
        "configmap/field-field",
        "--output=jsonpath={.data.message}",
    ]);
    assert_eq!(message.stdout, "hello");
    let hook = s.kubectl(&[
        "get",
        "configmap/field-field-pre-rollback",
        "--output=jsonpath={.data.message}",
    ]);
    assert_eq!(hook.stdout, "hello", "helm ran the pre-rollback hook");
    let widget = s.kubectl(&[
        "get",
        "widgets.field.hsr.example.com/field-field",
        "--output=jsonpath={.spec.enabled}",
    ]);
    assert_eq!(widget.stdout, "true", "YAML 1.1 `yes` is a boolean");
}

/// The chart copied into the scenario's home; on drop, the release's cluster-scoped objects
/// (named after the namespace, so no other test's) are removed with the release. The CRD stays:
/// every release of the chart shares it, as helm intends for `crds/`.
struct Guard<'a> {
    s: &'a Scenario,
    path: String,
}

impl<'a> Guard<'a> {
    fn new(s: &'a Scenario) -> Guard<'a> {
        let from =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/charts/field");
        let to = s.home.path().join("chart-field");
        support::copy_dir(&from, &to);
        Guard {
            s,
            path: to.display().to_string(),
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // kept for inspection, as the scenario keeps its namespace
        }
        let _ = self.s.helm(&["uninstall", "field"]);
    }
}
