//! Frozen renders, end to end on the bed through the plugin, helm 3 and helm 4: a rollback
//! gives a Secret generated with `randAlphaNum` back the values its target revision rendered.
//! The plan and the report warn about it, naming the keys and never a value; a ConfigMap whose
//! data does not change is not named; the rollback itself runs as helm runs it.

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(generated_secrets_that_come_back_are_named_by_key);

/// Every install and upgrade renders new random values; the ConfigMap is the same each time.
const CHART: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-credentials
data:
  password: {{ randAlphaNum 24 | b64enc | quote }}
stringData:
  token: {{ randAlphaNum 24 | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  level: info
"#;

fn generated_secrets_that_come_back_are_named_by_key(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "frozen");
    let chart = s.write_chart("frozen", CHART);
    s.helm(&["install", "seed", &chart]).ok();
    // Each value as the API server stores it (base64) and as the chart rendered it.
    let secret_values = || {
        let template = "{{range .data}}{{.}} {{base64decode .}} {{end}}";
        let format = format!("go-template={template}");
        let run = s
            .kubectl(&["get", "secret/seed-credentials", "-o", &format])
            .ok();
        let values: Vec<String> = run.stdout.split_whitespace().map(str::to_string).collect();
        assert_eq!(values.len(), 4, "{run}");
        values
    };
    let first = secret_values();
    s.helm(&["upgrade", "seed", &chart]).ok();
    let second = secret_values();
    assert_ne!(first, second, "the chart renders new values each time");

    let plan = s.safe_rollback(&["seed", "1", "--plan", "--output", "json"]);
    assert_eq!(plan.code, 0, "{plan}");
    let frozen = plan.json()["plan"]["frozen_renders"].clone();
    let entries = frozen
        .as_array()
        .unwrap_or_else(|| panic!("no frozen renders in the plan:\n{plan}"));
    assert_eq!(entries.len(), 1, "only the Secret changes:\n{plan}");
    assert_eq!(entries[0]["kind"], "Secret", "{plan}");
    assert_eq!(entries[0]["name"], "seed-credentials", "{plan}");
    assert_eq!(entries[0]["revision"], 1, "{plan}");
    assert_eq!(
        strings(&entries[0]["keys"]),
        ["password", "token"],
        "{plan}"
    );

    let rollback = s.safe_rollback(&["seed", "1", "--output", "json"]);
    assert_eq!(rollback.code, 0, "{rollback}");
    let report = rollback.json();
    assert_eq!(report["frozen_renders"], frozen, "{rollback}");
    let warnings = strings(&report["warnings"]);
    assert!(
        warnings.iter().any(|w| w.contains("Secret/")
            && w.contains("seed-credentials")
            && w.contains("revision 1")
            && w.contains("password, token")),
        "{rollback}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("seed-settings")),
        "{rollback}"
    );
    assert_eq!(
        secret_values(),
        first,
        "helm gave the Secret its revision 1 values"
    );

    let text = s.safe_rollback(&["seed", "2"]);
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains("password, token"), "{text}");
    let journals = std::fs::read_dir(s.journal_dir()).unwrap();
    let journaled: String = journals
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default())
        .collect();
    let outputs = [&plan, &rollback, &text].map(|run| format!("{}{}", run.stdout, run.stderr));
    for value in first.iter().chain(second.iter()) {
        for output in &outputs {
            assert!(
                !output.contains(value),
                "a Secret value was printed:\n{output}"
            );
        }
        assert!(!journaled.contains(value), "a Secret value was journaled");
    }
}
