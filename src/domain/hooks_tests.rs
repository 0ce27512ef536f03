//! Failed hooks explained from real helm 3.17.3 / 4.3.1 transcripts and real Job and pod JSON
//! (tests/fixtures/hooks, recorded on the bed).

use super::*;
use crate::domain::classify::{classify, Class};
use crate::domain::live::identity_of;
use crate::domain::plan::{self, Inputs};
use crate::domain::report::errors_of;

const VERSIONS: [&str; 2] = ["helm-v3.17.3", "helm-v4.3.1"];
/// Before every fixture's rollback began.
const RUN_STARTED: &str = "2026-11-30T10:00:00Z";

fn fixture(version: &str, file: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/hooks/{version}/{file}")).unwrap()
}

fn primary(version: &str, case: &str) -> Vec<String> {
    errors_of(
        &classify(&fixture(version, &format!("{case}.stderr"))),
        Class::Primary,
    )
}

fn items(version: &str, file: &str) -> Vec<Value> {
    let list: Value = serde_json::from_slice(&fixture(version, file)).unwrap();
    list["items"].as_array().unwrap().clone()
}

/// The hooks of the revision the fixture's failed rollback left (`helm status -o json`).
fn hooks_of(version: &str, case: &str) -> Vec<Hook> {
    let status = parse_status(&fixture(version, &format!("{case}.status.json"))).unwrap();
    assert_eq!(status.revision, 3, "{version} {case}");
    status.hooks
}

/// The fixtures' namespace, as helm 4 printed it and the JSON holds it.
fn namespace_of(version: &str, case: &str) -> String {
    items(version, &format!("{case}.jobs.json"))[0]["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn hooks_are_read_with_event_source_and_delete_policy() {
    for version in VERSIONS {
        let hooks = hooks_of(version, "pre-fail");
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].object.kind, "Job");
        assert_eq!(hooks[0].object.name, "r-migrate");
        assert_eq!(hooks[0].events, ["pre-rollback"]);
        assert_eq!(hooks[0].delete_policies, ["before-hook-creation"]);
        assert_eq!(
            hooks[0].source.as_deref(),
            Some("hooked/templates/all.yaml")
        );
        assert_eq!(hooks[0].last_phase.as_deref(), Some("Running"));
        let hooks = hooks_of(version, "pre-fail-policy");
        assert_eq!(hooks[0].delete_policies, ["hook-failed"]);
    }
}

#[test]
fn a_failed_job_names_event_job_reason_and_the_pods_exit() {
    for version in VERSIONS {
        let hooks = hooks_of(version, "pre-fail");
        let failed = failed_hook(&primary(version, "pre-fail"), &hooks, RUN_STARTED)
            .unwrap_or_else(|| panic!("{version}: not recognised"));
        assert_eq!(failed.event, "pre-rollback");
        assert!(!failed.clue.refused);
        let namespace = namespace_of(version, "pre-fail");
        let job = &items(version, "pre-fail.jobs.json")[0];
        let pods = items(version, "pre-fail.pods.json");
        let pod = pods[0]["metadata"]["name"].as_str().unwrap();
        assert_eq!(
            explain(&failed, &namespace, Some(job), &pods),
            format!(
                "pre-rollback hook Job/{namespace}/r-migrate failed: BackoffLimitExceeded; pod \
                 {pod} container main exited 3 (Error): migration 42 failed: relation users \
                 already exists"
            )
        );
        let live = vec![identity_of(job).unwrap()];
        let left = leftovers(&failed, &live, &namespace);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].object.name, "r-migrate");
        assert_eq!(left[0].delete_policy, "before-hook-creation");
    }
}

#[test]
fn helm_words_alone_name_the_hook_when_it_is_gone() {
    for version in VERSIONS {
        let hooks = hooks_of(version, "pre-fail-policy");
        let failed =
            failed_hook(&primary(version, "pre-fail-policy"), &hooks, RUN_STARTED).unwrap();
        let text = explain(&failed, "ns", None, &[]);
        let helm_says = match version {
            "helm-v3.17.3" => "BackoffLimitExceeded",
            _ => "Job Failed. failed: 1/1",
        };
        assert_eq!(
            text,
            format!(
                "pre-rollback hook Job/ns/r-migrate failed: {helm_says}; it is gone \
                 (hook-delete-policy hook-failed)"
            ),
            "{version}"
        );
        assert!(leftovers(&failed, &[], "ns").is_empty());
    }
}

#[test]
fn a_post_rollback_hook_is_told_apart_by_its_events() {
    for version in VERSIONS {
        let hooks = hooks_of(version, "post-fail");
        let failed = failed_hook(&primary(version, "post-fail"), &hooks, RUN_STARTED).unwrap();
        assert_eq!(failed.event, "post-rollback", "{version}");
    }
}

#[test]
fn a_refused_hook_names_the_template_and_the_servers_reason_and_leaves_nothing() {
    for version in VERSIONS {
        let hooks = hooks_of(version, "reject");
        let failed = failed_hook(&primary(version, "reject"), &hooks, RUN_STARTED).unwrap();
        assert!(failed.clue.refused);
        assert_eq!(failed.hook.object.name, "r-hookcm");
        let text = explain(&failed, "ns", None, &[]);
        assert!(
            text.starts_with(
                "pre-rollback hook ConfigMap/ns/r-hookcm (hooked/templates/all.yaml) was refused \
                 by the API server: "
            ) && text.contains(
                "ConfigMap \"r-hookcm\" is invalid: metadata.labels: Invalid value: \"bad value!\""
            ),
            "{version}: {text}"
        );
        assert!(!text.contains("1 error occurred"), "{text}");
        // Something of that name is not this failure's: the server made nothing.
        let someone_elses = LiveObject {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "r-hookcm".into(),
            uid: "u".into(),
            resource_version: "1".into(),
            owner: crate::domain::model::ReleaseOwner {
                release_name: None,
                release_namespace: None,
            },
            resource_policy: None,
            managed_by: None,
        };
        assert!(leftovers(&failed, &[someone_elses], "ns").is_empty());
    }
}

/// helm 4 names the Job it timed out on; its pod was never started.
#[test]
fn a_helm4_timeout_names_the_job_and_its_pending_pod() {
    let version = "helm-v4.3.1";
    let hooks = hooks_of(version, "pre-fail");
    let failed = failed_hook(&primary(version, "timeout"), &hooks, RUN_STARTED).unwrap();
    let namespace = namespace_of(version, "timeout");
    let job = &items(version, "timeout.jobs.json")[0];
    let pods = items(version, "timeout.pods.json");
    let text = explain(&failed, &namespace, Some(job), &pods);
    assert!(
        text.starts_with(&format!(
            "pre-rollback hook Job/{namespace}/r-migrate did not complete: status: InProgress, \
             message: Job in progress; context deadline exceeded; pod r-migrate-"
        )) && text.ends_with("Pending: no node has started it"),
        "{text}"
    );
}

/// helm 3's timeout names nothing: the hook is the one helm stored as `Running` in the
/// revision the rollback created.
#[test]
fn a_helm3_timeout_is_the_hook_helm_was_running() {
    let version = "helm-v3.17.3";
    let hooks = hooks_of(version, "timeout");
    let failed = failed_hook(&primary(version, "timeout"), &hooks, RUN_STARTED).unwrap();
    let namespace = namespace_of(version, "timeout");
    let job = &items(version, "timeout.jobs.json")[0];
    let pods = items(version, "timeout.pods.json");
    let pod = pods[0]["metadata"]["name"].as_str().unwrap();
    assert_eq!(
        explain(&failed, &namespace, Some(job), &pods),
        format!(
            "pre-rollback hook Job/{namespace}/r-migrate did not complete: timed out waiting for \
             the condition; pod {pod} Pending: no node has started it"
        )
    );
    // A `Running` copied from an older revision (started before this run) is not in flight.
    let later = "2026-11-30T11:00:00Z";
    assert!(failed_hook(&primary(version, "timeout"), &hooks, later).is_none());
}

/// A pod that cannot start says why: its container's waiting reason.
#[test]
fn a_hook_whose_image_cannot_be_pulled_says_so() {
    for version in VERSIONS {
        let hooks = hooks_of(version, "pull");
        let failed = failed_hook(&primary(version, "pull"), &hooks, RUN_STARTED).unwrap();
        let job = &items(version, "pull.jobs.json")[0];
        let pods = items(version, "pull.pods.json");
        let pod = pods[0]["metadata"]["name"].as_str().unwrap();
        let text = explain(&failed, "ns", Some(job), &pods);
        assert!(
            text.starts_with("pre-rollback hook Job/ns/r-migrate did not complete: ")
                && text.ends_with(&format!(
                    "; pod {pod} container main waiting: ImagePullBackOff: Back-off pulling \
                     image \"busybox\""
                )),
            "{version}: {text}"
        );
    }
}

#[test]
fn other_failures_are_not_blamed_on_a_hook() {
    let mut hooks = hooks_of("helm-v3.17.3", "pre-fail");
    let seed =
        std::fs::read("tests/fixtures/real-helm/seed/helm-v3.17.3/05-rollback2-nocleanup.stderr")
            .unwrap();
    let seed_primary = errors_of(&classify(&seed), Class::Primary);
    assert!(seed_primary.iter().all(|p| clue(p).is_none()));
    // helm finished running every hook it started.
    hooks[0].last_phase = Some("Succeeded".into());
    assert!(failed_hook(&seed_primary, &hooks, RUN_STARTED).is_none());
    // A Job that is no rollback hook of the target is not blamed either.
    hooks[0].last_phase = Some("Running".into());
    hooks[0].events = vec!["pre-install".into()];
    assert!(failed_hook(&primary("helm-v3.17.3", "pre-fail"), &hooks, RUN_STARTED).is_none());
}

/// Hooks are not in the target manifest and carry no ownership annotations: the reconcile's
/// rules can never pick the failed hook Job up as a leftover to delete, with or without cleanup.
#[test]
fn reconcile_never_takes_a_hook_object_for_a_leftover() {
    for version in VERSIONS {
        let job = identity_of(&items(version, "pre-fail.jobs.json")[0]).unwrap();
        let namespace = job.namespace.clone().unwrap();
        let release = crate::domain::model::ReleaseId {
            name: "r".into(),
            namespace: namespace.clone(),
        };
        let target = vec![ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: None,
            name: "r-config".into(),
        }];
        for cleanup_requested in [false, true] {
            let planned = plan::plan(&Inputs {
                release: &release,
                target: &target,
                before: &[],
                after: std::slice::from_ref(&job),
                cleanup_requested,
            });
            assert!(planned.leftovers.is_empty(), "{version}: {planned:?}");
        }
        assert!(job.owner.release_name.is_none(), "hooks carry no owner");
    }
}
