//! On lists a real API server returned (`tests/fixtures/readiness/`, see its README): pods
//! placed, failed, crash-looping and refused by hand the way a kubelet and a scheduler would
//! write their status, the rest as the bed's controllers left them.

use super::*;

const NAMESPACE: &str = "readiness-fx";

fn observed() -> Observed {
    let mut observed = Observed::default();
    for kind in [
        Listed::Deployment,
        Listed::StatefulSet,
        Listed::DaemonSet,
        Listed::ReplicaSet,
        Listed::Job,
        Listed::Pod,
        Listed::PersistentVolumeClaim,
        Listed::Service,
        Listed::Event,
    ] {
        let path = format!("tests/fixtures/readiness/{}.json", kind.resource().1);
        let list = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        observed.insert(kind, NAMESPACE, list);
    }
    observed
}

fn target(api_version: &str, kind: &str, name: &str) -> ObjectRef {
    ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: None,
        name: name.into(),
    }
}

fn targets() -> Vec<ObjectRef> {
    let mut targets = vec![target("v1", "ConfigMap", "settings")];
    for name in ["pending", "crash", "pull", "unsched", "probe", "ready"] {
        targets.push(target("apps/v1", "Deployment", name));
    }
    targets.extend([
        target("apps/v1", "StatefulSet", "db"),
        target("apps/v1", "DaemonSet", "agent"),
        target("batch/v1", "Job", "migrate"),
        target("batch/v1", "Job", "waiting"),
        target("v1", "PersistentVolumeClaim", "data"),
        target("v1", "Service", "lb"),
        target("v1", "Service", "plain"),
    ]);
    targets
}

fn judged(options: Options) -> Vec<NotReady> {
    not_ready(&targets(), NAMESPACE, &observed(), options)
}

fn find<'a>(found: &'a [NotReady], name: &str) -> &'a NotReady {
    found
        .iter()
        .find(|n| n.name == name)
        .unwrap_or_else(|| panic!("{name} not reported: {found:#?}"))
}

#[test]
fn every_not_ready_object_is_named_worst_first_and_ready_ones_are_not() {
    let found = judged(Options::default());
    let names: Vec<(&str, Severity)> = found
        .iter()
        .map(|n| (n.name.as_str(), n.severity))
        .collect();
    assert_eq!(
        names,
        [
            ("pending", Severity::Failed),
            ("crash", Severity::Failed),
            ("pull", Severity::Failed),
            ("migrate", Severity::Failed),
            ("unsched", Severity::Stuck),
            ("db", Severity::Stuck),
            ("data", Severity::Stuck),
            ("lb", Severity::Stuck),
            ("probe", Severity::Progressing),
        ]
    );
}

#[test]
fn pods_never_scheduled_and_a_passed_progress_deadline() {
    let found = judged(Options::default());
    let pending = find(&found, "pending");
    assert_eq!(pending.reason, "NotScheduled");
    assert!(
        pending.detail.starts_with("2 of 2 not ready; pod pending-"),
        "{pending:?}"
    );
    assert!(pending
        .detail
        .contains("no node or scheduler has placed the pod"));
    assert!(pending.detail.contains("(and 1 more pod(s) alike)"));
    assert!(pending
        .detail
        .contains("ProgressDeadlineExceeded: ReplicaSet \"pending-6c449f6c94\" has timed out"));
    let db = find(&found, "db");
    assert_eq!(
        (db.kind.as_str(), db.reason.as_str()),
        ("StatefulSet", "NotScheduled")
    );
    assert!(
        db.detail
            .starts_with("1 of 1 not ready; pod db-0: never scheduled"),
        "{db:?}"
    );
}

#[test]
fn container_failures_carry_the_kubelets_words() {
    let found = judged(Options::default());
    let crash = find(&found, "crash");
    assert_eq!(crash.reason, "CrashLoopBackOff");
    assert!(
        crash.detail.ends_with(
            "container app: CrashLoopBackOff, last exit code 3 Error, restarted 4 time(s)"
        ),
        "{crash:?}"
    );
    let pull = find(&found, "pull");
    assert_eq!(pull.reason, "ImagePullBackOff");
    assert!(pull
        .detail
        .contains("Back-off pulling image \"registry.invalid/nope:1\""));
    assert!(
        pull.detail.ends_with(
            "; event Failed: Failed to pull image \"registry.invalid/nope:1\": rpc error: code = \
             Unknown desc = failed to resolve reference \"registry.invalid/nope:1\": dial tcp: \
             lookup registry.invalid: no such host"
        ),
        "the pull's own event, not the kubelet's restatement after it: {pull:?}"
    );
    let probe = find(&found, "probe");
    assert!(
        probe.detail.ends_with(
            "; event Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 503"
        ),
        "{probe:?}"
    );
    assert_eq!(probe.reason, "ReadinessProbeFailing");
    assert!(probe
        .detail
        .contains("container app is running but its readiness probe"));
}

#[test]
fn the_schedulers_refusal_is_quoted() {
    let found = judged(Options::default());
    let unsched = find(&found, "unsched");
    assert_eq!(unsched.reason, "Unschedulable");
    assert!(
        unsched
            .detail
            .ends_with("not scheduled: 0/1 nodes are available: 1 Insufficient cpu."),
        "{unsched:?}"
    );
}

#[test]
fn a_failed_job_names_its_verdict_and_the_exit_code() {
    let found = judged(Options::default());
    let migrate = find(&found, "migrate");
    assert_eq!(migrate.reason, "BackoffLimitExceeded");
    assert!(
        migrate.detail.starts_with("1 pod(s) failed; pod migrate-"),
        "{migrate:?}"
    );
    assert!(migrate
        .detail
        .contains("container migrate exited with code 2 (Error)"));
    assert!(migrate
        .detail
        .ends_with("Job has reached the specified backoff limit"));
}

#[test]
fn a_running_job_counts_only_when_jobs_must_complete() {
    assert!(judged(Options::default())
        .iter()
        .all(|n| n.name != "waiting"));
    let found = judged(Options {
        jobs_must_complete: true,
    });
    let waiting = find(&found, "waiting");
    assert_eq!(waiting.reason, "NotScheduled");
    assert!(waiting
        .detail
        .starts_with("0 of 1 completions; pod waiting-"));
}

#[test]
fn claims_and_load_balancers_waiting_on_the_cluster() {
    let found = judged(Options::default());
    let data = find(&found, "data");
    assert_eq!(data.reason, "Pending");
    assert!(data
        .detail
        .contains("no PersistentVolume is bound to it (no storage class"));
    let lb = find(&found, "lb");
    assert_eq!(lb.reason, "LoadBalancerPending");
    assert!(lb.detail.contains("status.loadBalancer.ingress is empty"));
}

#[test]
fn a_missing_object_is_reported_and_an_unread_list_judges_nothing() {
    let targets = vec![
        target("apps/v1", "Deployment", "gone"),
        target("v1", "PersistentVolumeClaim", "data"),
    ];
    let mut observed = observed();
    observed
        .lists
        .remove(&(Listed::PersistentVolumeClaim, NAMESPACE.to_string()));
    let found = not_ready(&targets, NAMESPACE, &observed, Options::default());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].name.as_str(), found[0].reason.as_str()),
        ("gone", "NotFound")
    );
}

#[test]
fn one_read_per_kind_and_namespace_with_what_explains_it() {
    let mut targets = targets();
    targets.push(ObjectRef {
        namespace: Some("other".into()),
        ..target("apps/v1", "Deployment", "elsewhere")
    });
    let reads = reads(&targets, NAMESPACE);
    let other: Vec<Listed> = reads
        .iter()
        .filter(|(_, ns)| ns == "other")
        .map(|(kind, _)| *kind)
        .collect();
    assert_eq!(
        other,
        [
            Listed::Deployment,
            Listed::Pod,
            Listed::ReplicaSet,
            Listed::Event
        ]
    );
    assert_eq!(reads.iter().filter(|(_, ns)| ns == NAMESPACE).count(), 9);
    assert!(
        crate::domain::readiness::reads(&[target("v1", "ConfigMap", "c")], NAMESPACE).is_empty()
    );
}

#[test]
fn json_has_the_documented_fields_only() {
    let found = judged(Options::default());
    let value = serde_json::to_value(&found[0]).unwrap();
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["detail", "kind", "name", "namespace", "reason"]);
}

#[test]
fn a_workload_whose_pods_could_not_be_read_says_so() {
    let mut observed = observed();
    observed.lists.remove(&(Listed::Pod, NAMESPACE.to_string()));
    observed
        .lists
        .remove(&(Listed::ReplicaSet, NAMESPACE.to_string()));
    let targets = [
        target("apps/v1", "Deployment", "crash"),
        target("apps/v1", "StatefulSet", "db"),
    ];
    let found = not_ready(&targets, NAMESPACE, &observed, Options::default());
    let details: Vec<(&str, &str)> = found
        .iter()
        .map(|n| (n.reason.as_str(), n.detail.as_str()))
        .collect();
    assert_eq!(
        details,
        [
            (
                "NotReady",
                "1 of 1 not ready; its ReplicaSets could not be read"
            ),
            ("NotReady", "1 of 1 not ready; its pods could not be read"),
        ]
    );
}
