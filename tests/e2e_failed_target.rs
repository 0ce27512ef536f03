//! A bare rollback whose target is a failed deploy, end to end on the bed for
//! helm 3 and helm 4: install (1), upgrade (2), an upgrade whose `--wait` times out (3: the bed
//! has no kubelet, so its Deployment never becomes ready; helm records it `failed`), a good
//! upgrade (4). `helm safe-rollback REL` would go to 3: refused before anything changes, naming
//! revision 2 and the command; `--allow-failed-target` runs helm; an explicit `REL 3` keeps
//! helm's semantics with a warning. (Revision 3's manifest is valid, so nothing else stops the
//! rollback: what is tested is the failed-target decision alone.)

mod support;

use support::{strings, HelmMajor, Scenario};

for_both_helms!(
    a_bare_rollback_onto_a_failed_revision_is_refused,
    allow_failed_target_runs_helm,
    an_explicit_failed_revision_is_a_warning,
);

/// The four revisions; returns the history as helm prints it.
fn failed_between_good(s: &Scenario) -> String {
    let chart = s.chart("seed");
    s.helm(&["install", "ft", &chart]).ok();
    s.helm(&["upgrade", "ft", &chart, "--set", "image=busybox"])
        .ok();
    let args = [
        "upgrade",
        "ft",
        &chart,
        "--set",
        "image=alpine",
        "--wait",
        "--timeout=2s",
    ];
    let bad = s.helm(&args);
    assert_ne!(bad.code, 0, "the upgrade must time out:\n{bad}");
    s.helm(&["upgrade", "ft", &chart, "--set", "image=debian"])
        .ok();
    history(s)
}

fn history(s: &Scenario) -> String {
    s.helm(&["history", "ft", "-o", "json"]).ok().stdout
}

fn a_bare_rollback_onto_a_failed_revision_is_refused(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "failed-target");
    let before = failed_between_good(&s);
    let objects = s.resource_versions("configmaps,services,deployments,secrets");

    let run = s.safe_rollback(&["ft", "--output", "json"]);
    assert_eq!(run.code, 5, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "refused", "{run}");
    let command = format!("helm safe-rollback ft 2 --namespace {}", s.namespace);
    let reasons = strings(&report["refusal_reasons"]);
    assert!(
        reasons.iter().any(
            |r| r.contains("the previous revision, 3, is a failed deploy")
                && r.contains("failed: Upgrade \"ft\" failed")
                && r.contains("deployed successfully is 2")
                && r.contains(&command)
        ),
        "{reasons:#?}"
    );
    let failed = &report["failed_target"];
    assert_eq!(failed["revision"], 3, "{run}");
    assert_eq!(failed["last_good"], 2, "{run}");
    assert_eq!(failed["explicit"], false, "{run}");
    assert!(
        failed["command"].as_str().unwrap().starts_with(&command),
        "{run}"
    );
    assert_eq!(history(&s), before, "no new revision");
    assert_eq!(
        s.resource_versions("configmaps,services,deployments,secrets"),
        objects,
        "no object changed"
    );

    // The text report says the same, and `--plan` refuses alike.
    let text = s.safe_rollback(&["ft"]);
    assert_eq!(text.code, 5, "{text}");
    assert!(text.stdout.contains(&command), "{text}");
    let plan = s.safe_rollback(&["ft", "--plan", "--output", "json"]);
    assert_eq!(plan.code, 5, "{plan}");
    assert_eq!(plan.json()["failed_target"]["revision"], 3, "{plan}");
    assert_eq!(history(&s), before, "still no new revision");

    // The printed command does what it says: back to 2, verified.
    let fix: Vec<&str> = command.split(' ').skip(2).collect();
    let fixed = s.safe_rollback(&fix);
    assert_eq!(fixed.code, 0, "{fixed}");
}

fn allow_failed_target_runs_helm(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "allow-failed");
    failed_between_good(&s);

    let run = s.safe_rollback(&["ft", "--allow-failed-target", "--output", "json"]);
    // helm's own result: without --wait, the rollback to 3 succeeds.
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert_eq!(report["to_revision"], 3, "{run}");
    assert!(report["refusal_reasons"].as_array().unwrap().is_empty());
    let warnings = strings(&report["warnings"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("the previous revision, 3, is a failed deploy")),
        "{warnings:#?}"
    );
    let history = history(&s);
    assert!(history.contains("\"revision\":5"), "helm ran: {history}");
}

fn an_explicit_failed_revision_is_a_warning(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "explicit-failed");
    failed_between_good(&s);

    let run = s.safe_rollback(&["ft", "3", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert_eq!(report["failed_target"]["explicit"], true, "{run}");
    let warnings = strings(&report["warnings"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("revision 3 is a failed deploy")
                && w.contains("helm safe-rollback ft 2")),
        "{warnings:#?}"
    );
}
