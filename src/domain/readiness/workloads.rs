//! Workloads (Deployments, StatefulSets, DaemonSets, Jobs): what is ready of what is wanted,
//! explained by their pods — for a Deployment, the pods of its newest ReplicaSet, which are the
//! ones the rollout waits for — and by the conditions their controllers set.

use serde_json::Value;

use super::pods::pods_problem;
use super::{condition, str_at, u64_at, Listed, Observed, Options, Problem, Severity};

pub(super) fn deployment(live: &Value, namespace: &str, observed: &Observed) -> Option<Problem> {
    let wanted = u64_at(live, "/spec/replicas").unwrap_or(1);
    let ready = u64_at(live, "/status/readyReplicas").unwrap_or(0);
    let updated = u64_at(live, "/status/updatedReplicas").unwrap_or(0);
    if ready >= wanted && updated >= wanted {
        return None;
    }
    let mut parts = vec![format!(
        "{} of {wanted} not ready",
        wanted - ready.min(wanted)
    )];
    if updated < wanted {
        parts.push(format!(
            "{updated} of {wanted} updated to the newest template"
        ));
    }
    let uid = str_at(live, "/metadata/uid").unwrap_or_default();
    let sets = observed.owned_by(Listed::ReplicaSet, namespace, uid);
    if sets.is_none() {
        parts.push("its ReplicaSets could not be read".into());
    }
    let newest = sets.and_then(|sets| sets.into_iter().max_by_key(|rs| revision_of(rs)));
    let mut worst: Option<Problem> = None;
    if let Some(set) = newest {
        let set_uid = str_at(set, "/metadata/uid").unwrap_or_default();
        let pods = observed.owned_by(Listed::Pod, namespace, set_uid);
        worst = explain_pods(observed, namespace, pods, wanted, &mut parts);
        if let Some(failure) = condition(set, "ReplicaFailure", "True") {
            note_condition(&mut worst, &mut parts, failure, Severity::Failed);
        }
    }
    if let Some(failure) = condition(live, "ReplicaFailure", "True") {
        note_condition(&mut worst, &mut parts, failure, Severity::Failed);
    }
    if let Some(stalled) = condition(live, "Progressing", "False") {
        note_condition(&mut worst, &mut parts, stalled, Severity::Failed);
    }
    Some(finish(worst, parts))
}

/// A StatefulSet or DaemonSet: ready against wanted, explained by the pods it controls.
pub(super) fn workload(
    live: &Value,
    namespace: &str,
    observed: &Observed,
    wanted: u64,
    ready: u64,
) -> Option<Problem> {
    if ready >= wanted {
        return None;
    }
    let mut parts = vec![format!("{} of {wanted} not ready", wanted - ready)];
    let uid = str_at(live, "/metadata/uid").unwrap_or_default();
    let pods = observed.owned_by(Listed::Pod, namespace, uid);
    let worst = explain_pods(observed, namespace, pods, wanted, &mut parts);
    Some(finish(worst, parts))
}

pub(super) fn job(
    live: &Value,
    namespace: &str,
    observed: &Observed,
    options: Options,
) -> Option<Problem> {
    if condition(live, "Complete", "True").is_some() {
        return None;
    }
    let failed_count = u64_at(live, "/status/failed").unwrap_or(0);
    let failed = condition(live, "Failed", "True");
    if failed.is_none() && failed_count == 0 && !options.jobs_must_complete {
        return None;
    }
    let mut parts = Vec::new();
    if failed_count > 0 {
        parts.push(format!("{failed_count} pod(s) failed"));
    } else {
        let wanted = u64_at(live, "/spec/completions").unwrap_or(1);
        let done = u64_at(live, "/status/succeeded").unwrap_or(0);
        parts.push(format!("{done} of {wanted} completions"));
    }
    let uid = str_at(live, "/metadata/uid").unwrap_or_default();
    let pods = observed.owned_by(Listed::Pod, namespace, uid);
    let mut worst = explain_pods(observed, namespace, pods, 0, &mut parts);
    if let Some(failed) = failed {
        note_condition(&mut worst, &mut parts, failed, Severity::Failed);
        // The Job's own verdict (`BackoffLimitExceeded`) names it better than a pod's exit.
        if let (Some(problem), Some(reason)) = (worst.as_mut(), str_at(failed, "/reason")) {
            problem.reason = reason.to_string();
        }
    } else if failed_count > 0 && worst.as_ref().is_none_or(|w| w.severity > Severity::Failed) {
        worst = Some(Problem::new(Severity::Failed, "PodFailed", String::new()));
    }
    Some(finish(worst, parts))
}

/// Adds what the pods say to `parts`; the worst pod problem, or none when every pod is fine.
fn explain_pods(
    observed: &Observed,
    namespace: &str,
    pods: Option<Vec<&Value>>,
    wanted: u64,
    parts: &mut Vec<String>,
) -> Option<Problem> {
    let Some(pods) = pods else {
        parts.push("its pods could not be read".into());
        return None;
    };
    if pods.is_empty() && wanted > 0 {
        parts.push("none of its pods exist".into());
        return None;
    }
    let (problem, text) = pods_problem(&pods, |uid| observed.last_warning(namespace, uid))?;
    parts.push(text);
    Some(problem)
}

/// A condition that explains the object: it makes the problem at least `severity`, and its
/// reason becomes the object's when no pod gave a more specific one.
fn note_condition(
    worst: &mut Option<Problem>,
    parts: &mut Vec<String>,
    condition: &Value,
    severity: Severity,
) {
    let reason = str_at(condition, "/reason").unwrap_or("");
    let message = str_at(condition, "/message").unwrap_or("");
    parts.push(format!("{reason}: {message}"));
    match worst {
        Some(problem) => problem.severity = problem.severity.min(severity),
        None => *worst = Some(Problem::new(severity, reason, String::new())),
    }
}

fn finish(worst: Option<Problem>, parts: Vec<String>) -> Problem {
    let (severity, reason) = match worst {
        Some(problem) => (problem.severity, problem.reason),
        None => (Severity::Progressing, "NotReady".to_string()),
    };
    Problem {
        severity,
        reason,
        detail: parts.join("; "),
    }
}

fn revision_of(set: &Value) -> u64 {
    str_at(
        set,
        "/metadata/annotations/deployment.kubernetes.io~1revision",
    )
    .and_then(|r| r.parse().ok())
    .unwrap_or(0)
}
