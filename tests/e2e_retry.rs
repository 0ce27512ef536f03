//! A rollback cut by a transient fault, made deterministic with the fault proxy: a rollback
//! creates a Service, then the network fails it — and helm's own cleanup of that Service fails
//! too. We reconcile (delete the Service helm left), see the failure was transient, retry, and
//! the retry succeeds; the journal records both attempts. Helm 3 and helm 4.

mod support;

use std::time::{Duration, Instant};
use support::fault_proxy::{Fault, Rule};

use support::{HelmMajor, Scenario};

for_both_helms!(
    a_503_is_reconciled_and_retried,
    a_connection_reset_is_reconciled_and_retried,
    a_signal_after_the_first_helm_run_still_stops_the_run
);

/// A signal after the first helm run must not be swallowed (as it would be by a handler left
/// installed with nobody listening) and let a run with retries go on to the end: a SIGTERM after
/// the first attempt stops the run at the next safe point, journal completed.
fn a_signal_after_the_first_helm_run_still_stops_the_run(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let mut s = Scenario::new(bed, helm, "retrysig");
    s.seed_without_service();
    let proxy = s.through_fault_proxy();
    let ns = s.namespace.clone();
    // Every Deployment update fails: each attempt is a transient failure worth retrying.
    proxy.add_rule(
        Rule::new(
            Some("PATCH"),
            &format!("^/apis/apps/v1/namespaces/{ns}/deployments/seed-web"),
            Fault::ServiceUnavailable,
        )
        .unwrap(),
    );
    let args = [
        "seed",
        "1",
        "--cleanup-on-fail",
        "--retries",
        "5",
        "--no-preflight",
        "--output",
        "json",
    ];
    let child = s
        .safe_rollback_command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.faulted_requests().is_empty() {
        assert!(Instant::now() < deadline, "the first attempt never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Past the first helm run: reconciling, or waiting to retry.
    std::thread::sleep(Duration::from_millis(300));
    let ours = s.our_pid().expect("our process is running");
    let signalled = Instant::now();
    unsafe { libc::kill(ours, libc::SIGTERM) };
    let run = support::Run::from(child.wait_with_output().unwrap());
    assert!(
        signalled.elapsed() < Duration::from_secs(20),
        "the run went on after the signal ({:?}):\n{run}",
        signalled.elapsed()
    );
    let report = run.json();
    assert_eq!(report["outcome"], "failed", "{run}");
    assert!(report["attempts"].as_u64().unwrap() < 6, "{run}");
    let mentions_signal = report.to_string().contains("signal 15");
    assert!(mentions_signal, "the report says why it stopped:\n{run}");
    let journal: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report["journal"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(journal["state"], "completed", "{run}");
}

fn a_503_is_reconciled_and_retried(helm: HelmMajor) {
    transient_failure_is_reconciled_and_retried(helm, Fault::ServiceUnavailable);
}

fn a_connection_reset_is_reconciled_and_retried(helm: HelmMajor) {
    transient_failure_is_reconciled_and_retried(helm, Fault::Reset);
}

fn transient_failure_is_reconciled_and_retried(helm: HelmMajor, fault: Fault) {
    let bed = bed_or_skip!();
    let mut s = Scenario::new(bed, helm, "retry");
    // Rolling back to 1 creates the Service and then patches the Deployment.
    s.seed_without_service();
    assert_eq!(s.uid("service/seed-standby"), None);

    let proxy = s.through_fault_proxy();
    let ns = s.namespace.clone();
    // The Deployment update fails once (helm 3 PATCHes it, helm 4 server-side-applies it: both
    // PATCH), and so does helm's DELETE of the Service it created.
    proxy.add_rule(
        Rule::new(
            Some("PATCH"),
            &format!("^/apis/apps/v1/namespaces/{ns}/deployments/seed-web"),
            fault,
        )
        .unwrap()
        .times(1),
    );
    proxy.add_rule(
        Rule::new(
            Some("DELETE"),
            &format!("^/api/v1/namespaces/{ns}/services/seed-standby"),
            fault,
        )
        .unwrap()
        .times(1),
    );

    let run = s.safe_rollback(&[
        "seed",
        "1",
        "--cleanup-on-fail",
        "--retries",
        "2",
        "--no-preflight",
        "--output",
        "json",
    ]);
    let faulted = proxy.faulted_requests();
    assert_eq!(faulted.len(), 2, "both faults fired: {faulted:#?}\n{run}");
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    assert_eq!(report["attempts"], 2, "{run}");
    let reconciled = report["reconciled"].as_array().unwrap();
    assert_eq!(reconciled.len(), 1, "{run}");
    assert_eq!(reconciled[0]["kind"], "Service");
    assert_eq!(reconciled[0]["result"], "deleted");
    assert!(
        report["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .contains("attempt 1 failed on a transient error")),
        "{run}"
    );
    assert!(
        s.uid("service/seed-standby").is_some(),
        "the retry created it"
    );

    let journal: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report["journal"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let attempts = journal["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_ne!(attempts[0]["rollback"]["exit_code"], 0);
    assert_eq!(attempts[0]["actions"][0]["action"], "delete");
    assert_eq!(attempts[1]["rollback"]["exit_code"], 0);
}
