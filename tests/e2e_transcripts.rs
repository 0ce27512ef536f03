//! Real helm output the seed/more fixtures do not cover — `--debug` stack traces, a release lock,
//! network faults half-way through a rollback — produced live on the bed and classified on the
//! spot, for helm 3 and helm 4. With `HSR_RECORD_TRANSCRIPTS=DIR` each transcript is also saved
//! (DIR/helm-vX.Y.Z/NAME.stderr), which is how tests/fixtures/real-helm/e2e was made.

mod support;

use helm_safe_rollback::classify::{classify, Class};
use support::fault_proxy::{Fault, Rule};
use support::{HelmMajor, Run, Scenario};

for_both_helms!(
    debug_output_keeps_the_cause_primary_and_hides_stack_frames,
    a_pending_release_blocks_upgrade_with_a_lock_error,
    network_faults_during_a_rollback_are_transient,
);

fn record(s: &Scenario, name: &str, run: &Run) {
    let Ok(dir) = std::env::var("HSR_RECORD_TRANSCRIPTS") else {
        return;
    };
    let version = s.helm(&["version", "--short"]).stdout;
    let version = version.trim().split('+').next().unwrap().to_string();
    let dir = std::path::Path::new(&dir).join(format!("helm-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    // Namespaces and ports differ per run; keep the transcript stable and readable.
    let stable = run.stderr.replace(&s.namespace, "NAMESPACE");
    let stable = regex::Regex::new(r"127\.0\.0\.1:\d+")
        .unwrap()
        .replace_all(&stable, "127.0.0.1:PORT");
    std::fs::write(dir.join(format!("{name}.stderr")), stable.as_bytes()).unwrap();
    std::fs::write(dir.join(format!("{name}.rc")), format!("{}\n", run.code)).unwrap();
}

use helm_safe_rollback::classify::texts_of as of;

fn debug_output_keeps_the_cause_primary_and_hides_stack_frames(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "debug");
    s.seed_release("seed", true);
    let run = s.helm(&["rollback", "seed", "2", "--cleanup-on-fail", "--debug"]);
    assert_eq!(run.code, 1, "{run}");
    record(&s, "rollback-debug", &run);
    let findings = classify(run.stderr.as_bytes());
    let mut primary = of(&findings, Class::Primary);
    primary.dedup();
    assert!(!primary.is_empty(), "{findings:#?}");
    for error in &primary {
        assert!(
            error.contains("configMapKeyRef.name: Invalid value: \"Bad_Name\""),
            "only the cause is primary, not debug chatter: {error:?}\n{findings:#?}"
        );
    }
}

fn a_pending_release_blocks_upgrade_with_a_lock_error(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "lock");
    let mut rollback = s.pending_release();
    let chart = s.chart("more");
    let run = s.helm(&["upgrade", "more", &chart, "--set", "replicas=0"]);
    rollback.kill().unwrap();
    rollback.wait().unwrap();
    assert_ne!(run.code, 0, "{run}");
    record(&s, "upgrade-while-pending", &run);
    let findings = classify(run.stderr.as_bytes());
    assert_eq!(of(&findings, Class::Lock).len(), 1, "{findings:#?}");
    assert!(of(&findings, Class::Primary).is_empty(), "{findings:#?}");
}

fn network_faults_during_a_rollback_are_transient(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let mut s = Scenario::new(bed, helm, "netfault");
    s.seed_without_service();
    let proxy = s.through_fault_proxy();
    let ns = s.namespace.clone();
    for (name, method, fault) in [
        ("rollback-reset-on-create", "POST", Fault::Reset),
        ("rollback-503-on-create", "POST", Fault::ServiceUnavailable),
    ] {
        // helm 3 creates with POST; helm 4 server-side-applies with PATCH.
        let method = match helm {
            HelmMajor::V3 => method,
            HelmMajor::V4 => "PATCH",
        };
        proxy.clear_rules();
        proxy.add_rule(
            Rule::new(
                Some(method),
                &format!("^/api/v1/namespaces/{ns}/services"),
                fault,
            )
            .unwrap(),
        );
        let run = s.helm(&["rollback", "seed", "1"]);
        assert_ne!(run.code, 0, "{name}: {run}");
        record(&s, name, &run);
        let findings = classify(run.stderr.as_bytes());
        assert!(
            !of(&findings, Class::Transient).is_empty(),
            "{name}: {findings:#?}"
        );
        assert!(
            of(&findings, Class::Primary).is_empty(),
            "{name}: {findings:#?}"
        );
    }
}
