//! The incident view, end to end on the bed through the plugin, helm 3 and helm 4:
//! `--diagnose --all` over a namespace with a healthy, a failed, a pending and a drifted release
//! gives one line each, worst first, with the command that fixes each, and exit 8, changing
//! nothing; `-A` for a user who may read one namespace only says what it could not list and
//! judges what it can.

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(
    a_namespace_of_releases_is_judged_worst_first,
    all_namespaces_for_a_namespace_scoped_user_judges_what_it_can_read,
);

/// Every release's history and every object's resourceVersion (the releases' Secrets
/// included): equal before and after means the view wrote nothing.
fn state(s: &Scenario) -> (String, String, bool) {
    let histories: Vec<String> = ["calm", "edited", "more", "seed"]
        .iter()
        .map(|r| s.helm(&["history", r, "-o", "json"]).stdout)
        .collect();
    let objects = s.resource_versions("configmaps,services,deployments,secrets,leases");
    (histories.join("\n"), objects, s.journal_dir().exists())
}

fn a_namespace_of_releases_is_judged_worst_first(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "incident");
    let healthy = s.healthy_chart();
    s.helm(&["install", "calm", &healthy]).ok();
    s.helm(&["install", "edited", &healthy]).ok();
    s.kubectl(&[
        "patch",
        "configmap",
        "edited-config",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"by hand"}}"#,
    ]);
    // 1 good, 2 failed, 3 good; then helm's own rollback to 2 fails: revision 4 failed.
    s.seed_release("seed", true);
    assert_ne!(s.helm(&["rollback", "seed", "2"]).code, 0);
    // A rollback killed while helm waited leaves `more` pending-rollback.
    let mut waiting = s.pending_release();
    waiting.kill().unwrap();
    waiting.wait().unwrap();
    let before = state(&s);

    let run = s.safe_rollback(&["--diagnose", "--all", "--output", "json"]);
    assert_eq!(run.code, 8, "{run}");
    let view = run.json();
    assert_eq!(view["kind"], "incident", "{run}");
    assert_eq!(view["namespace"], s.namespace.as_str(), "{run}");
    let releases = view["releases"].as_array().unwrap();
    let names: Vec<&str> = releases
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect();
    // Errors first (pending, failed; by name), then the drifted one's warning, then healthy.
    assert_eq!(names, ["more", "seed", "edited", "calm"], "{run}");
    let first_fix = |i: usize| releases[i]["findings"][0]["fix_command"].as_str().unwrap();
    let ns = format!("--namespace {}", s.namespace);
    assert_eq!(releases[0]["findings"][0]["kind"], "pending", "{run}");
    assert!(
        first_fix(0).starts_with(&format!("helm safe-rollback more 2 {ns}"))
            && first_fix(0).ends_with("--allow-pending"),
        "{run}"
    );
    assert_eq!(releases[1]["status"], "failed", "{run}");
    assert!(
        first_fix(1).starts_with(&format!("helm safe-rollback seed 3 {ns}")),
        "{run}"
    );
    assert_eq!(releases[2]["findings"][0]["kind"], "drift", "{run}");
    assert!(
        first_fix(2).starts_with(&format!("helm safe-rollback edited 1 {ns}")),
        "{run}"
    );
    assert_eq!(releases[3]["healthy"], true, "{run}");
    assert_eq!(
        view["summary"],
        serde_json::json!({"releases": 4, "with_errors": 2, "with_warnings": 1,
                           "healthy": 1, "unreadable": 0}),
        "{run}"
    );
    assert_eq!(state(&s), before, "the incident view changed something");
    // Each entry is what `--diagnose RELEASE` says, though a deployed release's newest
    // revision is read without `helm history` (the pending one's age moves on: not compared).
    for (i, release) in [(1, "seed"), (2, "edited"), (3, "calm")] {
        let alone = s.safe_rollback(&[release, "--diagnose", "--output", "json"]);
        let timeless = |mut diagnosis: serde_json::Value| {
            diagnosis["duration_ms"] = serde_json::Value::Null;
            diagnosis
        };
        assert_eq!(
            timeless(releases[i].clone()),
            timeless(alone.json()),
            "{release}: {run}\n{alone}"
        );
    }

    let text = s.safe_rollback(&["--diagnose", "--all"]);
    assert_eq!(text.code, 8, "{text}");
    let lines: Vec<&str> = text
        .stdout
        .lines()
        .filter(|l| !l.starts_with("    "))
        .collect();
    let ns_of = |release: &str| format!("{}/{release}  ", s.namespace);
    assert!(
        lines[0].starts_with(&format!("✘ {}", ns_of("more"))),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("✘ {}", ns_of("seed"))),
        "{text}"
    );
    assert!(
        lines[2].starts_with(&format!("! {}", ns_of("edited"))),
        "{text}"
    );
    assert!(
        lines[3].starts_with(&format!("✔ {}", ns_of("calm"))) && lines[3].ends_with("healthy"),
        "{text}"
    );
    assert!(
        text.stdout.contains(&format!("    fix: {}", first_fix(1))),
        "{text}"
    );
    assert_eq!(
        lines[4],
        format!(
            "4 releases in {}: 2 with errors, 1 with warnings, 0 unreadable, 1 healthy",
            s.namespace
        ),
        "{text}"
    );
    assert!(
        !text.stderr.contains("diagnosing"),
        "no progress line when piped: {text}"
    );

    let misuse = s.safe_rollback(&["seed", "--diagnose", "--all"]);
    assert_eq!(misuse.code, 2, "{misuse}");
    let misuse = s.safe_rollback(&["--all"]);
    assert_eq!(misuse.code, 2, "{misuse}");
    assert_eq!(state(&s), before);
}

fn all_namespaces_for_a_namespace_scoped_user_judges_what_it_can_read(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "incident-a");
    let healthy = s.healthy_chart();
    s.helm(&["install", "calm", &healthy]).ok();
    // May read releases (helm keeps them in Secrets) and their objects, here only.
    s.kubectl(&[
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=secrets,configmaps,deployments,replicasets,pods,services",
    ]);
    s.kubectl(&[
        "create",
        "rolebinding",
        "reader",
        "--role=reader",
        "--user=incident-viewer",
    ]);
    let before = s.resource_versions("configmaps,deployments,secrets");
    let run = s.safe_rollback(&[
        "--diagnose",
        "-A",
        "--kube-as-user",
        "incident-viewer",
        "--output",
        "json",
    ]);
    let view = run.json();
    let not_checked = strings(&view["not_checked"]);
    assert!(
        not_checked
            .iter()
            .any(|n| n.starts_with("all namespaces: ") && n.contains("forbidden")),
        "{run}"
    );
    let names: Vec<&str> = view["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["calm"], "{run}");
    assert_eq!(view["namespace"], s.namespace.as_str(), "{run}");
    assert_eq!(view["releases"][0]["status"], "deployed", "{run}");
    // What it could not list is not a finding, and the release it could read is judged.
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(
        s.resource_versions("configmaps,deployments,secrets"),
        before
    );
}
