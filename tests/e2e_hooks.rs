//! A failing `pre-rollback` / `post-rollback` hook, end to end on the real bed for helm 3 and
//! helm 4: the primary error names the hook, its event and the cluster's
//! reason (the Job's failed condition and its pod's exit); a hook object helm kept is listed
//! with the command that removes it, and is never deleted by us.
//!
//! The bed has no nodes, so a hook Job's pod never runs: a thread here plays the kubelet and
//! marks the pod Failed (container `main` exit 3) through the status subresource; the real job
//! controller then fails the Job (`backoffLimit: 0`), exactly as on a cluster with nodes.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::{strings, HelmMajor, Run, Scenario};

for_both_helms!(
    a_failed_pre_rollback_job_is_explained_and_listed_not_deleted,
    a_failed_post_rollback_job_is_explained_in_the_text_report,
    a_hook_deleted_by_its_hook_failed_policy_is_no_leftover,
    a_hook_the_api_server_refuses_is_named_with_the_servers_reason,
    a_hook_job_that_never_completes_is_named_with_its_pending_pod,
);

/// A ConfigMap `r-config`, plus a Job hook `r-migrate` (`hook=job`) on `event` with
/// `policy` as its delete policy, or a ConfigMap hook the API server refuses (`hook=invalid`).
const CHART: &str = include_str!("fixtures/hooks/chart/templates/all.yaml");
const EXIT_MESSAGE: &str = "migration 42 failed: relation users already exists";

/// Release `r`: revision 1 with the hook, revision 2 without; rolling back to 1 runs it.
fn hooked_release(s: &Scenario, hook: &str, event: &str, policy: &str) {
    let chart = s.write_chart("hooked", CHART);
    s.helm(&[
        "install",
        "r",
        &chart,
        "--set",
        &format!("hook={hook}"),
        "--set",
        &format!("event={event}"),
        "--set",
        &format!("policy={policy}"),
    ])
    .ok();
    s.helm(&["upgrade", "r", &chart, "--set", "hook=none", "--set", "v=2"])
        .ok();
}

/// Runs `rollback` while playing the kubelet for the hook Job `r-migrate`: once its pod
/// appears, the pod fails as a container exiting 3 would make it.
fn with_failing_hook_pod(s: &Scenario, rollback: impl FnOnce() -> Run) -> Run {
    std::thread::scope(|scope| {
        let kubelet = scope.spawn(|| fail_pod_of(s, "r-migrate"));
        let run = rollback();
        kubelet.join().expect("the kubelet thread");
        run
    })
}

fn fail_pod_of(s: &Scenario, job: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let pod = loop {
        let found = s.kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("job-name={job}"),
            "-o",
            "name",
        ]);
        if let Some(pod) = found.stdout.lines().next() {
            break pod.to_string();
        }
        assert!(Instant::now() < deadline, "the hook's pod never appeared");
        std::thread::sleep(Duration::from_millis(200));
    };
    let now = "2026-11-30T00:00:00Z";
    let status = serde_json::json!({"status": {
        "phase": "Failed",
        "startTime": now,
        "containerStatuses": [{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {
                "exitCode": 3, "reason": "Error", "message": EXIT_MESSAGE,
                "startedAt": now, "finishedAt": now
            }}
        }]
    }});
    s.kubectl(&[
        "patch",
        &pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

fn a_failed_pre_rollback_job_is_explained_and_listed_not_deleted(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "hook-pre");
    hooked_release(&s, "job", "pre-rollback", "");
    let run = with_failing_hook_pod(&s, || s.safe_rollback(&["r", "1", "--output", "json"]));
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    let primary = strings(&report["primary_errors"]);
    let job = format!("Job/{}/r-migrate", s.namespace);
    let first = &primary[0];
    assert!(
        first.starts_with(&format!(
            "pre-rollback hook {job} failed: BackoffLimitExceeded; pod r-migrate-"
        )) && first.ends_with(&format!("container main exited 3 (Error): {EXIT_MESSAGE}")),
        "{run}"
    );
    assert!(
        primary.len() >= 2,
        "helm's own line is kept after it:\n{run}"
    );
    let left = report["hook_leftovers"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{run}");
    assert_eq!(left[0]["kind"], "Job");
    assert_eq!(left[0]["namespace"], s.namespace.as_str());
    assert_eq!(left[0]["name"], "r-migrate");
    assert_eq!(left[0]["delete_policy"], "before-hook-creation");
    assert_eq!(report["leftovers"], serde_json::json!([]), "{run}");
    let uid = s
        .uid("job/r-migrate")
        .expect("we did not delete the hook Job");
    assert_eq!(left[0]["uid"], uid.as_str());

    // The printed command, run as the user would, removes it.
    let command = left[0]["delete_command"].as_str().unwrap();
    let mut sh = Command::new("sh");
    s.user_env(&mut sh);
    let removed = Run::from(sh.args(["-c", command]).output().unwrap());
    assert_eq!(removed.code, 0, "{command}:\n{removed}");
    assert_eq!(s.uid("job/r-migrate"), None, "{command} removed it");
}

fn a_failed_post_rollback_job_is_explained_in_the_text_report(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "hook-post");
    hooked_release(&s, "job", "post-rollback", "hook-succeeded");
    let run = with_failing_hook_pod(&s, || s.safe_rollback(&["r", "1"]));
    assert_eq!(run.code, 1, "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let job = format!("Job/{}/r-migrate", s.namespace);
    let error = lines
        .iter()
        .position(|l| l.trim_start().starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line:\n{run}"));
    assert!(
        lines[error].contains(&format!(
            "error: post-rollback hook {job} failed: BackoffLimitExceeded; pod r-migrate-"
        )) && lines[error].contains("exited 3 (Error)"),
        "the hook comes first:\n{run}"
    );
    let leftover = lines
        .iter()
        .find(|l| l.contains("hook leftover:"))
        .unwrap_or_else(|| panic!("no hook leftover line:\n{run}"));
    assert!(
        leftover.contains(&format!("{job} (uid "))
            && leftover.contains("hook-delete-policy hook-succeeded")
            && leftover.contains(&format!(
                "kubectl delete job.v1.batch/r-migrate --namespace {}",
                s.namespace
            )),
        "{run}"
    );
    assert!(s.uid("job/r-migrate").is_some(), "we did not delete it");
    // The rollback itself got as far as the resources: post-rollback runs after them.
    let v = s.kubectl(&["get", "configmap", "r-config", "-o", "jsonpath={.data.v}"]);
    assert_eq!(v.stdout, "1");
}

fn a_hook_deleted_by_its_hook_failed_policy_is_no_leftover(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "hook-failed");
    hooked_release(&s, "job", "pre-rollback", "hook-failed");
    let run = with_failing_hook_pod(&s, || s.safe_rollback(&["r", "1", "--output", "json"]));
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    let primary = strings(&report["primary_errors"]);
    assert!(
        primary[0].starts_with(&format!(
            "pre-rollback hook Job/{}/r-migrate failed: ",
            s.namespace
        )) && primary[0].ends_with("it is gone (hook-delete-policy hook-failed)"),
        "{run}"
    );
    assert_eq!(report["hook_leftovers"], serde_json::json!([]), "{run}");
    assert_eq!(s.uid("job/r-migrate"), None, "helm deleted it");
}

fn a_hook_the_api_server_refuses_is_named_with_the_servers_reason(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "hook-refused");
    hooked_release(&s, "invalid", "pre-rollback", "");
    let run = s.safe_rollback(&["r", "1", "--output", "json"]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    let primary = strings(&report["primary_errors"]);
    assert!(
        primary[0].starts_with(&format!(
            "pre-rollback hook ConfigMap/{}/r-hookcm (hooked/templates/all.yaml) was refused by \
             the API server: ",
            s.namespace
        )) && primary[0].contains("metadata.labels: Invalid value: \"bad value!\""),
        "{run}"
    );
    assert_eq!(report["hook_leftovers"], serde_json::json!([]), "{run}");
    assert_eq!(s.uid("configmap/r-hookcm"), None);
}

/// Nothing runs the pod (no kubelet here): helm gives up after `--timeout`. helm 3 then says
/// only `timed out waiting for the condition`; the hook is still named, from the revision
/// helm left.
fn a_hook_job_that_never_completes_is_named_with_its_pending_pod(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "hook-timeout");
    hooked_release(&s, "job", "pre-rollback", "");
    let run = s.safe_rollback(&["r", "1", "--timeout", "10s", "--output", "json"]);
    assert_eq!(run.code, 1, "{run}");
    let report = run.json();
    let primary = strings(&report["primary_errors"]);
    assert!(
        primary[0].starts_with(&format!(
            "pre-rollback hook Job/{}/r-migrate did not complete: ",
            s.namespace
        )) && primary[0].contains("; pod r-migrate-")
            && primary[0].ends_with(" Pending: no node has started it"),
        "{run}"
    );
    let left = report["hook_leftovers"].as_array().unwrap();
    assert_eq!(left.len(), 1, "{run}");
    assert_eq!(left[0]["name"], "r-migrate");
    assert!(s.uid("job/r-migrate").is_some(), "we did not delete it");
}
