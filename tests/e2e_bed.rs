//! Proves the test bed is the world the shared transcripts came from: the steps of
//! tests/fixtures/real-helm/{seed,more}/steps.sh, run with real helm 3 and helm 4 on our bed,
//! print what the committed transcripts say (same exit codes, same stderr once the namespace is
//! normalised) and classify the same way.

mod support;

use helm_safe_rollback::classify::{classify, Class};
use support::{HelmMajor, Run, Scenario};

for_both_helms!(
    seed_steps_reproduce_the_committed_transcripts,
    more_steps_reproduce_the_committed_transcripts
);

fn fixture_dir(scenario: &str, helm: HelmMajor) -> std::path::PathBuf {
    let version = match helm {
        HelmMajor::V3 => "helm-v3.17.3",
        HelmMajor::V4 => "helm-v4.3.1",
    };
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-helm")
        .join(scenario)
        .join(version)
}

/// Compares one step with its transcript: exit code, stderr, and the classes found in it.
fn compare(s: &Scenario, scenario: &str, step: &str, run: &Run) {
    let dir = fixture_dir(scenario, s.helm);
    let expected_rc: i32 = std::fs::read_to_string(dir.join(format!("{step}.rc")))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let expected =
        immutable_values(&std::fs::read_to_string(dir.join(format!("{step}.stderr"))).unwrap());
    let actual = immutable_values(
        &run.stderr
            .replace(&format!("{}/", s.namespace), "default/")
            .replace(&format!("namespace={}", s.namespace), "namespace=default"),
    );
    assert_eq!(run.code, expected_rc, "{scenario} {step}:\n{run}");
    assert_eq!(
        actual, expected,
        "{scenario} {step}: stderr differs from the transcript"
    );
    let classes =
        |text: &str| -> Vec<Class> { classify(text.as_bytes()).iter().map(|f| f.class).collect() };
    assert_eq!(classes(&actual), classes(&expected), "{scenario} {step}");
}

/// The transcripts were recorded on kube-apiserver 1.20, which prints the value of an immutable
/// field as a Go struct (`v1.LabelSelector{MatchLabels:…}`); later releases print it as JSON.
/// The value is the API server's rendering, not helm's words: both become `<value>`.
fn immutable_values(stderr: &str) -> String {
    let value = regex::Regex::new(r"Invalid value: .*?: field is immutable").unwrap();
    value
        .replace_all(stderr, "Invalid value: <value>: field is immutable")
        .into_owned()
}

fn seed_steps_reproduce_the_committed_transcripts(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "bed-seed");
    let chart = s.chart("seed");
    let r = format!("seed-{}", helm.tag());
    let steps: Vec<(&str, Vec<&str>)> = vec![
        ("01-install-good", vec!["install", &r, &chart]),
        (
            "02-upgrade-bad-withsvc",
            vec!["upgrade", &r, &chart, "--set", "cmRef=Bad_Name"],
        ),
        (
            "03-upgrade-good-nosvc",
            vec!["upgrade", &r, &chart, "--set", "withService=false"],
        ),
        (
            "04-rollback2-cleanup",
            vec!["rollback", &r, "2", "--cleanup-on-fail"],
        ),
        ("05-rollback2-nocleanup", vec!["rollback", &r, "2"]),
        (
            "06-rollback2-cleanup-leftover",
            vec!["rollback", &r, "2", "--cleanup-on-fail"],
        ),
        (
            "07-rollback3-good",
            vec!["rollback", &r, "3", "--cleanup-on-fail"],
        ),
        (
            "09-rollback-norelease",
            vec!["rollback", "nosuchrelease", "1"],
        ),
        ("10-rollback-norevision", vec!["rollback", &r, "99"]),
    ];
    for (step, args) in steps {
        let run = s.helm(&args);
        compare(&s, "seed", step, &run);
        match step {
            "04-rollback2-cleanup" => assert_eq!(s.uid(&format!("service/{r}-standby")), None),
            "05-rollback2-nocleanup" | "06-rollback2-cleanup-leftover" => {
                assert!(
                    s.uid(&format!("service/{r}-standby")).is_some(),
                    "{step}: left behind"
                )
            }
            "07-rollback3-good" => assert_eq!(s.uid(&format!("service/{r}-standby")), None),
            _ => {}
        }
    }
}

fn more_steps_reproduce_the_committed_transcripts(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "bed-more");
    let chart = s.chart("more");
    let r = format!("more-{}", helm.tag());
    let extra = format!("{r}-extra");
    s.helm(&["install", &r, &chart, "--set", "extra=true"]).ok();
    s.helm(&["upgrade", &r, &chart, "--set", "extra=false"])
        .ok();
    s.kubectl(&[
        "create",
        "configmap",
        &extra,
        "--from-literal=owner=someone-else",
    ]);
    let run = s.helm(&["rollback", &r, "1", "--cleanup-on-fail"]);
    compare(&s, "more", "03-rollback1-unmanaged-conflict", &run);
    let data = s
        .kubectl(&["get", &format!("cm/{extra}"), "-o", "jsonpath={.data}"])
        .stdout;
    match helm {
        // helm 3 refuses and leaves the foreign ConfigMap alone.
        HelmMajor::V3 => assert_eq!(data, r#"{"owner":"someone-else"}"#),
        // helm 4 takes it over and merges its data: the behaviour preflight must see coming.
        HelmMajor::V4 => assert_eq!(data, r#"{"k":"v","owner":"someone-else"}"#),
    }
    s.kubectl(&["delete", &format!("cm/{extra}")]);
    let run = s.helm(&[
        "upgrade",
        &r,
        &chart,
        "--set",
        "extra=false",
        "--set",
        "selector=b",
    ]);
    compare(&s, "more", "04-upgrade-selector-change", &run);
    let run = s.helm(&["rollback", &r, "1"]);
    compare(&s, "more", "05-rollback-immutable", &run);
}
