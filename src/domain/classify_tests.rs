//! The classifier on real helm 3 and helm 4 transcripts.

use super::*;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/real-helm/{path}")).unwrap()
}

use super::texts_of as of;

const SEED_CAUSE_V3: &str = "cannot patch \"seed-h3-web\" with kind Deployment: Deployment.apps \"seed-h3-web\" is invalid: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\"";
const SEED_CAUSE_V4: &str = "server-side apply failed for object default/seed-h4-web apps/v1, Kind=Deployment: Deployment.apps \"seed-h4-web\" is invalid: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\"";

/// Every step of the seed scenario, for both helm versions: the Deployment's validation error
/// is the one primary error, including Helm 4 step 06 where only the WARN line carries it.
#[test]
fn seed_rollbacks_lead_with_the_validation_error() {
    for (dir, cause) in [
        ("seed/helm-v3.17.3", SEED_CAUSE_V3),
        ("seed/helm-v4.3.1", SEED_CAUSE_V4),
    ] {
        for step in [
            "04-rollback2-cleanup",
            "05-rollback2-nocleanup",
            "06-rollback2-cleanup-leftover",
        ] {
            let findings = classify(&fixture(&format!("{dir}/{step}.stderr")));
            let mut primary = of(&findings, Class::Primary);
            primary.dedup();
            assert_eq!(primary.len(), 1, "{dir}/{step}: {findings:#?}");
            assert!(
                primary[0].starts_with(cause),
                "{dir}/{step}: {}",
                primary[0]
            );
            assert!(primary[0].ends_with("*[a-z0-9])?)*')"), "{}", primary[0]);
            let noise = of(&findings, Class::CleanupNoise);
            if step.starts_with("06") {
                assert_eq!(noise.len(), 1, "{dir}/{step}: {findings:#?}");
                assert!(noise[0].contains("object not found, skipping delete"));
            } else {
                assert!(noise.is_empty(), "{dir}/{step}: {findings:#?}");
            }
        }
    }
}

#[test]
fn helm4_warn_line_is_unescaped_exactly_like_the_error_line() {
    let findings = classify(&fixture("seed/helm-v4.3.1/05-rollback2-nocleanup.stderr"));
    let primary = of(&findings, Class::Primary);
    assert_eq!(primary.len(), 2);
    assert_eq!(primary[0], primary[1], "WARN and Error lines must dedupe");
}

#[test]
fn helm3_foreign_object_error_is_primary_and_its_cleanup_is_noise() {
    let findings = classify(&fixture(
        "more/helm-v3.17.3/03-rollback1-unmanaged-conflict.stderr",
    ));
    assert_eq!(
        of(&findings, Class::Primary),
        ["no ConfigMap with the name \"more-h3-extra\" found"]
    );
    assert_eq!(of(&findings, Class::CleanupNoise).len(), 1);
}

#[test]
fn helm4_takeover_is_a_warning_naming_the_object() {
    let findings = classify(&fixture(
        "more/helm-v4.3.1/03-rollback1-unmanaged-conflict.stderr",
    ));
    let warnings = of(&findings, Class::Warning);
    assert_eq!(warnings.len(), 1, "{findings:#?}");
    assert!(warnings[0].contains("resource exists on cluster but not in original release"));
    assert!(warnings[0].contains("name=more-h4-extra kind=ConfigMap"));
    assert!(of(&findings, Class::Primary).is_empty());
}

#[test]
fn helm4_multi_line_timeout_stays_one_primary_error() {
    let findings = classify(&fixture("more/helm-v4.3.1/07-rollback-wait-timeout.stderr"));
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].class, Class::Primary);
    assert!(findings[0]
        .text
        .ends_with("Available: 0/1\ncontext deadline exceeded"));
    let v3 = classify(&fixture(
        "more/helm-v3.17.3/07-rollback-wait-timeout.stderr",
    ));
    assert_eq!(
        of(&v3, Class::Primary),
        ["release more-h3 failed: context deadline exceeded"]
    );
}

#[test]
fn a_passed_wait_deadline_is_recognised_on_both_versions_and_nothing_else_is() {
    for dir in ["more/helm-v3.17.3", "more/helm-v4.3.1"] {
        let timed_out = classify(&fixture(&format!("{dir}/07-rollback-wait-timeout.stderr")));
        assert!(wait_deadline_passed(&timed_out), "{dir}");
        for other in ["08-unreachable.stderr", "05-rollback-immutable.stderr"] {
            let findings = classify(&fixture(&format!("{dir}/{other}")));
            assert!(!wait_deadline_passed(&findings), "{dir}/{other}");
        }
    }
    for dir in ["seed/helm-v3.17.3", "seed/helm-v4.3.1"] {
        let findings = classify(&fixture(&format!(
            "{dir}/06-rollback2-cleanup-leftover.stderr"
        )));
        assert!(!wait_deadline_passed(&findings), "{dir}");
    }
}

#[test]
fn unreachable_cluster_is_transient_on_both_versions() {
    for dir in ["more/helm-v3.17.3", "more/helm-v4.3.1"] {
        let findings = classify(&fixture(&format!("{dir}/08-unreachable.stderr")));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].class, Class::Transient, "{dir}");
    }
}

#[test]
fn unknown_release_and_revision_are_primary() {
    for dir in ["seed/helm-v3.17.3", "seed/helm-v4.3.1"] {
        for (step, text) in [
            ("09-rollback-norelease", "release: not found"),
            ("10-rollback-norevision", "release has no 99 version"),
        ] {
            let findings = classify(&fixture(&format!("{dir}/{step}.stderr")));
            assert_eq!(of(&findings, Class::Primary), [text], "{dir}/{step}");
        }
    }
}

#[test]
fn immutable_field_upgrade_failures_are_primary() {
    let v4 = classify(&fixture(
        "more/helm-v4.3.1/04-upgrade-selector-change.stderr",
    ));
    let primary = of(&v4, Class::Primary);
    assert_eq!(primary.len(), 2, "{v4:#?}");
    assert!(primary[0].ends_with("field is immutable"));
    assert!(primary[1].starts_with("UPGRADE FAILED: "));
}

#[test]
fn success_output_has_no_errors() {
    for dir in ["seed/helm-v3.17.3", "seed/helm-v4.3.1"] {
        let out = classify(&fixture(&format!("{dir}/07-rollback3-good.stdout")));
        assert!(out.iter().all(|f| f.class == Class::Info), "{out:#?}");
        assert!(classify(&fixture(&format!("{dir}/07-rollback3-good.stderr"))).is_empty());
    }
}

/// Every transcript we hold, stdout and stderr: nothing panics, and whatever a failed step
/// printed yields at least one error a human would be shown.
#[test]
fn every_failed_transcript_yields_an_error_to_show() {
    for scenario in ["seed", "more", "e2e"] {
        for version in ["helm-v3.17.3", "helm-v4.3.1"] {
            let dir = format!("tests/fixtures/real-helm/{scenario}/{version}");
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "rc") {
                    let rc = std::fs::read_to_string(&path).unwrap();
                    let stderr = std::fs::read(path.with_extension("stderr")).unwrap();
                    let findings = classify(&stderr);
                    let shown = findings.iter().any(|f| {
                        matches!(f.class, Class::Primary | Class::Transient | Class::Lock)
                    });
                    assert_eq!(rc.trim() != "0", shown, "{}: {findings:#?}", path.display());
                }
            }
        }
    }
}

#[test]
fn unknown_lines_are_primary_and_odd_bytes_are_survived() {
    let findings = classify(b"something new went wrong \xff\xfe\n\n");
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].class, Class::Primary);
    assert!(findings[0].text.contains('\u{fffd}'));
}

#[test]
fn a_pending_release_is_a_lock_on_both_versions() {
    for version in ["helm-v3.17.3", "helm-v4.3.1"] {
        let findings = classify(&fixture(&format!(
            "e2e/{version}/upgrade-while-pending.stderr"
        )));
        assert_eq!(findings.len(), 1, "{version}");
        assert_eq!(findings[0].class, Class::Lock, "{version}");
    }
}

#[test]
fn debug_output_leaves_only_the_cause_primary() {
    for version in ["helm-v3.17.3", "helm-v4.3.1"] {
        let findings = classify(&fixture(&format!("e2e/{version}/rollback-debug.stderr")));
        let mut primary = of(&findings, Class::Primary);
        primary.dedup();
        assert_eq!(primary.len(), 1, "{version}: {primary:#?}");
        assert!(
            primary[0].contains("Invalid value: \"Bad_Name\""),
            "{version}"
        );
        let frames = findings
            .iter()
            .filter(|f| f.text.contains("runtime.goexit") || f.text.contains("level=DEBUG"))
            .count();
        assert!(frames > 0, "{version}: the debug lines are there, as info");
    }
}

#[test]
fn faults_half_way_through_a_rollback_are_transient() {
    for version in ["helm-v3.17.3", "helm-v4.3.1"] {
        for fault in ["rollback-reset-on-create", "rollback-503-on-create"] {
            let findings = classify(&fixture(&format!("e2e/{version}/{fault}.stderr")));
            assert!(
                of(&findings, Class::Primary).is_empty(),
                "{version}/{fault}"
            );
            assert!(
                !of(&findings, Class::Transient).is_empty(),
                "{version}/{fault}"
            );
        }
    }
}

/// Every failing-hook transcript (tests/fixtures/hooks) is one primary error and nothing else:
/// helm 3's `warning: Hook …` refusal is an error, not a warning, and helm 4's timeout keeps its
/// `context deadline exceeded` line in the same finding.
#[test]
fn hook_failures_are_one_primary_error() {
    for version in ["helm-v3.17.3", "helm-v4.3.1"] {
        for case in [
            "pre-fail",
            "post-fail",
            "pre-fail-policy",
            "pre-succeeded-policy",
            "reject",
            "timeout",
            "pull",
        ] {
            let stderr =
                std::fs::read(format!("tests/fixtures/hooks/{version}/{case}.stderr")).unwrap();
            let findings = classify(&stderr);
            assert_eq!(findings.len(), 1, "{version}/{case}: {findings:#?}");
            assert_eq!(findings[0].class, Class::Primary, "{version}/{case}");
            assert!(
                crate::domain::hooks::clue(&findings[0].text).is_some()
                    || findings[0]
                        .text
                        .contains("timed out waiting for the condition"),
                "{version}/{case}: {findings:#?}"
            );
        }
    }
}

/// client-go's klog line (a watch that ended while helm 4 applied, seen in the corpus suite on
/// a loaded bed) comes before helm's own: it is informational, and the API server's reason in
/// the WARN and Error lines stays the primary error.
#[test]
fn client_go_log_lines_are_not_the_cause() {
    let findings = classify(&fixture("corpus/velero-helm-v4.3.1-klog-watch.stderr"));
    let info = of(&findings, Class::Info);
    assert!(
        info.iter()
            .any(|l| l.starts_with("I1204 18:43:03.240093") && l.contains("watch ended")),
        "{findings:#?}"
    );
    let primary = of(&findings, Class::Primary);
    assert!(!primary.is_empty(), "{findings:#?}");
    assert!(
        primary
            .iter()
            .all(|p| p.contains("Invalid value: \"corpus/bad/key\"")),
        "{primary:#?}"
    );
}
