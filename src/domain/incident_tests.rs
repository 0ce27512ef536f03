use super::*;
use crate::domain::diagnosis::{diagnose, Commands, Inputs, NotReady};
use crate::domain::model::Revision;
use crate::domain::readiness;
use crate::domain::release::parse_history;
use crate::domain::verify::Drift;

/// The real history of `seed` (tests/fixtures/real-helm/seed), cut to `revisions`: 8 ends
/// deployed, 6 ends failed.
fn history(revisions: usize) -> Vec<Revision> {
    let path = "tests/fixtures/real-helm/seed/helm-v3.17.3/08-history.stdout";
    let mut history = parse_history(&std::fs::read(path).unwrap()).unwrap();
    history.truncate(revisions);
    history
}

fn rollback_to(n: u64) -> String {
    format!("helm safe-rollback seed {n}")
}

fn describe(object: &readiness::NotReady) -> String {
    format!("kubectl describe {}", object.object())
}

/// `name`'s diagnosis over `history`, drifted in `drifted` objects.
fn diagnosed(name: &str, history: &[Revision], drifted: Vec<Drift>) -> Entry {
    let diagnosis = diagnose(Inputs {
        release: name,
        namespace: "apps",
        helm_version: "v3.17.3",
        history,
        pending: None,
        pending_max_age_seconds: 300,
        orphans: Some(Vec::new()),
        strays: Some(Vec::new()),
        unfinished: Vec::new(),
        drifted: Some(drifted),
        not_ready: NotReady::default(),
        not_checked: Vec::new(),
        commands: Commands {
            rollback_to: &rollback_to,
            finish: format!("helm safe-rollback {name} --finish"),
            describe: &describe,
        },
    });
    Entry::Diagnosed(Box::new(diagnosis))
}

fn edited_config() -> Drift {
    Drift {
        kind: "ConfigMap".into(),
        namespace: "apps".into(),
        name: "seed-config".into(),
        fields: Vec::new(),
        reason: Some("missing".into()),
    }
}

fn names(view: &Incident) -> Vec<&str> {
    view.releases.iter().map(|e| name_of(e).1).collect()
}

#[test]
fn releases_come_worst_first_then_by_name() {
    let (deployed, failed) = (history(8), history(6));
    let entries = vec![
        diagnosed("b-calm", &deployed, Vec::new()),
        diagnosed("a-calm", &deployed, Vec::new()),
        diagnosed("edited", &deployed, vec![edited_config()]),
        Entry::Unreadable {
            release: "gone".into(),
            namespace: "apps".into(),
            unreadable: "release: not found".into(),
        },
        diagnosed("broken", &failed, Vec::new()),
    ];
    let view = assemble(entries, Some("apps".into()), Vec::new());
    assert_eq!(
        names(&view),
        ["broken", "gone", "edited", "a-calm", "b-calm"]
    );
    let expected = Summary {
        releases: 5,
        with_errors: 1,
        with_warnings: 1,
        healthy: 2,
        unreadable: 1,
    };
    assert_eq!(view.summary, expected);
    assert!(!view.healthy);
}

#[test]
fn a_view_is_healthy_only_when_every_release_is() {
    let deployed = history(8);
    let calm = vec![diagnosed("calm", &deployed, Vec::new())];
    assert!(assemble(calm, None, Vec::new()).healthy);
    let unreadable = vec![Entry::Unreadable {
        release: "gone".into(),
        namespace: "apps".into(),
        unreadable: "release: not found".into(),
    }];
    assert!(!assemble(unreadable, None, Vec::new()).healthy);
    // Nothing to look at is healthy: an empty namespace has no broken release.
    assert!(assemble(Vec::new(), None, Vec::new()).healthy);
}
