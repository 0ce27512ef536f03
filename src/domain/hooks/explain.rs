//! The words of the primary error for a failed hook: which hook and event, then what the
//! cluster says — the Job's `Failed` condition, and the pod's container that exited or could
//! not start — because that, not helm's `BackoffLimitExceeded`, is what the user acts on.

use serde_json::Value;

use super::FailedHook;

/// The primary error that explains the failure: the hook, the event, and the reason the
/// cluster gives. `live` is the hook object as the API server returns it (a Job or a Pod; `None`
/// when it is gone or not read), `pods` a Job's pods.
pub fn explain(
    failed: &FailedHook,
    release_namespace: &str,
    live: Option<&Value>,
    pods: &[Value],
) -> String {
    let who = format!(
        "{} hook {}",
        failed.event,
        failed.hook.describe(release_namespace)
    );
    if failed.clue.refused {
        let source = failed.hook.source.as_deref().unwrap_or("?");
        return format!(
            "{who} ({source}) was refused by the API server: {}",
            failed.clue.reason
        );
    }
    let mut text = match live.and_then(job_failure) {
        Some(reason) => format!("{who} failed: {reason}"),
        None if live.is_none() => format!(
            "{who} failed: {}; it is gone (hook-delete-policy {})",
            failed.clue.reason,
            failed.hook.delete_policies.join(",")
        ),
        None => format!("{who} did not complete: {}", failed.clue.reason),
    };
    let pod_pool: Vec<&Value> = match live {
        Some(object) if object["kind"] == "Pod" => vec![object],
        _ => pods.iter().collect(),
    };
    if let Some(detail) = pod_detail(&pod_pool) {
        text.push_str("; ");
        text.push_str(&detail);
    }
    text
}

/// A Job's `Failed` condition: its reason (`BackoffLimitExceeded`, `DeadlineExceeded`).
fn job_failure(job: &Value) -> Option<String> {
    job["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Failed" && c["status"] == "True")
        .map(|c| c["reason"].as_str().unwrap_or("Failed").to_string())
}

/// What the most telling pod says: a failed one before others, the newest first.
fn pod_detail(pods: &[&Value]) -> Option<String> {
    fn created(pod: &Value) -> &str {
        pod["metadata"]["creationTimestamp"].as_str().unwrap_or("")
    }
    let mut sorted: Vec<&Value> = pods.to_vec();
    sorted.sort_by_key(|p| std::cmp::Reverse(created(p)));
    let pod = sorted
        .iter()
        .find(|p| p["status"]["phase"] == "Failed")
        .or(sorted.first())?;
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    let statuses = pod["status"]["containerStatuses"].as_array();
    for status in statuses.into_iter().flatten() {
        let container = status["name"].as_str().unwrap_or("?");
        let state = &status["state"];
        let last = &status["lastState"]["terminated"];
        let terminated = [&state["terminated"], last]
            .into_iter()
            .find(|t| t["exitCode"].as_i64().is_some_and(|c| c != 0));
        if let Some(t) = terminated {
            return Some(format!(
                "pod {name} container {container} exited {} ({}){}",
                t["exitCode"],
                t["reason"].as_str().unwrap_or("no reason"),
                message(&t["message"])
            ));
        }
        if let Some(reason) = state["waiting"]["reason"].as_str() {
            return Some(format!(
                "pod {name} container {container} waiting: {reason}{}",
                message(&state["waiting"]["message"])
            ));
        }
    }
    let phase = pod["status"]["phase"].as_str().unwrap_or("Unknown");
    let unscheduled = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled" && c["status"] == "False");
    Some(match unscheduled {
        Some(c) => format!(
            "pod {name} {phase}: {}{}",
            c["reason"].as_str().unwrap_or("not scheduled"),
            message(&c["message"])
        ),
        None if phase == "Pending" => format!("pod {name} Pending: no node has started it"),
        None => format!("pod {name} {phase}"),
    })
}

/// `: the message`, shortened: a termination message can be 4 KiB of a program's output.
fn message(value: &Value) -> String {
    const LIMIT: usize = 300;
    let Some(text) = value.as_str().map(str::trim).filter(|t| !t.is_empty()) else {
        return String::new();
    };
    let short: String = text.chars().take(LIMIT).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!(": {}{ellipsis}", short.replace('\n', " "))
}
