use super::*;
use crate::domain::release::parse_history;

fn history(version: &str) -> Vec<Revision> {
    let path = format!("tests/fixtures/real-helm/seed/helm-{version}/08-history.stdout");
    parse_history(&std::fs::read(path).unwrap()).unwrap()
}

fn rollback_to(n: u64) -> String {
    format!("helm safe-rollback seed {n} --namespace default")
}

fn describe(object: &readiness::NotReady) -> String {
    format!("kubectl describe {}", object.object())
}

fn inputs(history: &[Revision]) -> Inputs<'_> {
    Inputs {
        release: "seed",
        namespace: "default",
        helm_version: "v3.17.3",
        history,
        pending: None,
        pending_max_age_seconds: 300,
        orphans: Some(Vec::new()),
        strays: Some(Vec::new()),
        unfinished: Vec::new(),
        drifted: Some(Vec::new()),
        not_ready: NotReady::default(),
        not_checked: Vec::new(),
        commands: Commands {
            rollback_to: &rollback_to,
            finish: "helm safe-rollback seed --namespace default --finish".into(),
            describe: &describe,
        },
    }
}

#[test]
fn a_deployed_release_with_nothing_left_is_healthy() {
    for version in ["v3.17.3", "v4.3.1"] {
        let h = history(version);
        let diagnosis = diagnose(inputs(&h));
        assert!(diagnosis.healthy, "{version}: {:#?}", diagnosis.findings);
        assert_eq!(diagnosis.status.as_deref(), Some("deployed"));
        assert_eq!(diagnosis.last_good_revision, Some(7));
        assert!(diagnosis.failures.is_empty());
    }
}

#[test]
fn a_failed_newest_revision_names_its_cause_and_the_way_back() {
    for (version, cause) in [
        (
            "v3.17.3",
            "cannot patch \"seed-h3-web\" with kind Deployment",
        ),
        (
            "v4.3.1",
            "server-side apply failed for object default/seed-h4-web",
        ),
    ] {
        let mut h = history(version);
        h.truncate(6);
        let diagnosis = diagnose(inputs(&h));
        assert!(!diagnosis.healthy);
        // Every failure since the last good revision (3), newest first, helm's prefix gone.
        let revisions: Vec<u64> = diagnosis.failures.iter().map(|f| f.revision).collect();
        assert_eq!(revisions, [6, 5, 4], "{version}");
        for failure in &diagnosis.failures {
            assert!(failure.causes[0].starts_with(cause), "{failure:?}");
            assert!(failure.cleanup_noise.is_empty(), "{failure:?}");
        }
        let finding = &diagnosis.findings[0];
        assert_eq!(finding.kind, FindingKind::FailedRevision);
        assert!(
            finding.summary.starts_with("revision 6 failed: "),
            "{finding:?}"
        );
        assert!(finding.summary.contains(cause), "{finding:?}");
        assert_eq!(
            finding.fix_command.as_deref(),
            Some(rollback_to(3).as_str())
        );
    }
}

#[test]
fn every_other_finding_carries_its_command() {
    let h = history("v4.3.1");
    let mut given = inputs(&h);
    given.orphans = Some(vec![LeftoverEntry {
        kind: "Service".into(),
        namespace: Some("default".into()),
        name: "seed-standby".into(),
        uid: "u-1".into(),
        delete_command: "kubectl delete service seed-standby".into(),
    }]);
    given.unfinished = vec![UnfinishedRun {
        journal: "/j/1.json".into(),
        pid: 7,
        in_progress: false,
    }];
    given.drifted = Some(vec![Drift {
        kind: "ConfigMap".into(),
        namespace: "default".into(),
        name: "seed-config".into(),
        fields: vec![crate::domain::verify::FieldDiff {
            path: "data.k".into(),
            expected: "v".into(),
            live: "edited".into(),
        }],
        reason: None,
    }]);
    let diagnosis = diagnose(given);
    let fixes: Vec<(FindingKind, Option<&str>)> = diagnosis
        .findings
        .iter()
        .map(|f| (f.kind, f.fix_command.as_deref()))
        .collect();
    assert_eq!(
        fixes,
        [
            (
                FindingKind::Orphan,
                Some("kubectl delete service seed-standby")
            ),
            (
                FindingKind::UnfinishedRun,
                Some("helm safe-rollback seed --namespace default --finish")
            ),
            // The current revision (7) deployed: re-applying it repairs the drift.
            (FindingKind::Drift, Some(rollback_to(7).as_str())),
        ]
    );
    assert!(diagnosis.findings[2]
        .detail
        .as_deref()
        .unwrap()
        .contains("data.k"));
}

#[test]
fn a_pending_revision_is_accounted_for() {
    let mut h = history("v3.17.3");
    h.push(Revision {
        revision: 8,
        updated: "2026-11-24T16:19:30Z".into(),
        status: "pending-rollback".into(),
        chart: "demo-0.1.0".into(),
        description: "Rollback to 3".into(),
    });
    let now = "2026-11-24T16:20:00Z".parse().unwrap();
    let ours = Some((8..=8, "/j/ours.json".to_string()));
    for (left_by, severity, fix) in [
        (
            None,
            Severity::Error,
            format!("{} --allow-pending", rollback_to(7)),
        ),
        (ours, Severity::Warning, rollback_to(7)),
    ] {
        let mut given = inputs(&h);
        given.pending = crate::domain::preflight::pending(&h, now, left_by);
        let diagnosis = diagnose(given);
        let finding = &diagnosis.findings[0];
        assert_eq!(finding.kind, FindingKind::Pending);
        assert_eq!(finding.severity, severity);
        assert_eq!(finding.fix_command.as_deref(), Some(fix.as_str()));
        assert_eq!(diagnosis.pending.as_ref().unwrap().age_seconds, 30);
    }
}

#[test]
fn drift_under_server_side_apply_needs_force_conflicts() {
    let edited = Drift {
        kind: "ConfigMap".into(),
        namespace: "default".into(),
        name: "seed-config".into(),
        fields: vec![crate::domain::verify::FieldDiff {
            path: "data.k".into(),
            expected: "v".into(),
            live: "edited".into(),
        }],
        reason: None,
    };
    let rejected = Drift {
        fields: Vec::new(),
        reason: Some("the API server rejects the target: …".into()),
        ..edited.clone()
    };
    assert!(needs_force_conflicts(true, std::slice::from_ref(&edited)));
    assert!(!needs_force_conflicts(false, std::slice::from_ref(&edited)));
    assert!(!needs_force_conflicts(true, &[rejected]));
}
