//! Why a pod is not ready, in the words its kubelet and scheduler wrote into its status: a
//! container's waiting or terminated state, the PodScheduled and Ready conditions. A pod nobody
//! has written anything into (no node, no PodScheduled condition) was never looked at by a
//! scheduler, which is said as such rather than guessed at.

use serde_json::Value;

use super::{condition, str_at, u64_at, Problem, Severity};

/// Waiting reasons that do not resolve by waiting: the kubelet retries, and fails again.
const FAILED_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// The worst problem among `pods`, and the text that names its pod (and how many share it).
/// `event_of` gives the newest telling Warning event of a pod by uid, added to the text.
pub(super) fn pods_problem(
    pods: &[&Value],
    event_of: impl Fn(&str) -> Option<String>,
) -> Option<(Problem, String)> {
    let problems: Vec<(&Value, Problem)> = pods
        .iter()
        .filter_map(|pod| pod_problem(pod).map(|p| (*pod, p)))
        .collect();
    let (pod, worst) = problems.iter().min_by_key(|(_, p)| p.severity)?;
    let alike = problems
        .iter()
        .filter(|(_, p)| p.reason == worst.reason)
        .count();
    let name = str_at(pod, "/metadata/name").unwrap_or("?");
    let mut text = format!("pod {name}: {}", worst.detail);
    if let Some(event) = str_at(pod, "/metadata/uid").and_then(event_of) {
        text.push_str(&format!("; event {event}"));
    }
    if alike > 1 {
        text.push_str(&format!(" (and {} more pod(s) alike)", alike - 1));
    }
    Some((worst.clone(), text))
}

/// What keeps one pod from being ready, or `None` when it is ready (or done).
pub(super) fn pod_problem(pod: &Value) -> Option<Problem> {
    if let Some(problem) = container_failure(pod) {
        return Some(problem);
    }
    match str_at(pod, "/status/phase") {
        Some("Succeeded") => return None,
        Some("Failed") => {
            let reason = str_at(pod, "/status/reason").unwrap_or("PodFailed");
            let message = str_at(pod, "/status/message").unwrap_or("the pod failed");
            return Some(Problem::new(Severity::Failed, reason, message.into()));
        }
        _ => {}
    }
    if let Some(problem) = not_scheduled(pod) {
        return Some(problem);
    }
    if condition(pod, "Ready", "True").is_some() {
        return None;
    }
    Some(not_ready_yet(pod))
}

/// A container in a state the kubelet will not get out of by itself, or one that exited with
/// an error: init containers first, as they run first.
fn container_failure(pod: &Value) -> Option<Problem> {
    for status in container_statuses(pod) {
        let name = str_at(status, "/name").unwrap_or("?");
        if let Some(reason) = str_at(status, "/state/waiting/reason") {
            if !FAILED_WAITING.contains(&reason) {
                continue;
            }
            let mut detail = format!("container {name}: {reason}");
            if let Some(exit) = u64_at(status, "/lastState/terminated/exitCode") {
                let why = str_at(status, "/lastState/terminated/reason").unwrap_or("");
                detail.push_str(&format!(", last exit code {exit} {why}"));
                let restarts = u64_at(status, "/restartCount").unwrap_or(0);
                detail.push_str(&format!(", restarted {restarts} time(s)"));
            } else if let Some(message) = str_at(status, "/state/waiting/message") {
                detail.push_str(&format!(": {message}"));
            }
            return Some(Problem::new(Severity::Failed, reason, detail));
        }
        let exit = u64_at(status, "/state/terminated/exitCode").unwrap_or(0);
        if exit != 0 {
            let reason = str_at(status, "/state/terminated/reason").unwrap_or("Error");
            let detail = format!("container {name} exited with code {exit} ({reason})");
            return Some(Problem::new(Severity::Failed, reason, detail));
        }
    }
    None
}

/// A pod no node was found for (the scheduler said why), or that no scheduler looked at.
fn not_scheduled(pod: &Value) -> Option<Problem> {
    if let Some(refused) = condition(pod, "PodScheduled", "False") {
        let reason = str_at(refused, "/reason").unwrap_or("Unschedulable");
        let message = str_at(refused, "/message").unwrap_or("");
        let detail = format!("not scheduled: {message}");
        return Some(Problem::new(Severity::Stuck, reason, detail));
    }
    let placed = str_at(pod, "/spec/nodeName").is_some_and(|n| !n.is_empty());
    if !placed && condition_of(pod, "PodScheduled").is_none() {
        return Some(Problem::new(
            Severity::Stuck,
            "NotScheduled",
            "never scheduled: no node or scheduler has placed the pod (it has no PodScheduled \
             condition)"
                .into(),
        ));
    }
    if placed && container_statuses(pod).next().is_none() {
        let node = str_at(pod, "/spec/nodeName").unwrap_or("?");
        let detail = format!(
            "placed on node {node}, whose kubelet has reported nothing about it (no container \
             status)"
        );
        return Some(Problem::new(Severity::Stuck, "NotStarted", detail));
    }
    None
}

/// A scheduled pod on its way: containers being created, or running and not yet ready.
fn not_ready_yet(pod: &Value) -> Problem {
    for status in container_statuses(pod) {
        let name = str_at(status, "/name").unwrap_or("?");
        if let Some(reason) = str_at(status, "/state/waiting/reason") {
            let detail = format!("container {name}: {reason}");
            return Problem::new(Severity::Progressing, reason, detail);
        }
        let running = status.pointer("/state/running").is_some();
        let ready = status.get("ready").and_then(Value::as_bool) == Some(true);
        if running && !ready {
            let (reason, why) = if has_readiness_probe(pod, name) {
                (
                    "ReadinessProbeFailing",
                    "its readiness probe has not passed",
                )
            } else {
                ("NotReady", "it is not ready")
            };
            let detail = format!("container {name} is running but {why}");
            return Problem::new(Severity::Progressing, reason, detail);
        }
    }
    let message = condition_of(pod, "Ready")
        .and_then(|c| str_at(c, "/message"))
        .unwrap_or("the pod is not ready");
    Problem::new(Severity::Progressing, "NotReady", message.to_string())
}

fn container_statuses(pod: &Value) -> impl Iterator<Item = &Value> {
    ["/status/initContainerStatuses", "/status/containerStatuses"]
        .into_iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
}

fn has_readiness_probe(pod: &Value, container: &str) -> bool {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_some_and(|containers| {
            containers
                .iter()
                .any(|c| str_at(c, "/name") == Some(container) && c.get("readinessProbe").is_some())
        })
}

fn condition_of<'v>(pod: &'v Value, kind: &str) -> Option<&'v Value> {
    pod.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| str_at(c, "/type") == Some(kind))
}
