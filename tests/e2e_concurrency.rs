//! Concurrent writers on one release, on the real bed, helm 3 and helm 4: a native
//! rollback while ours waits, two of ours from two "machines" (state directories), a Lease left
//! by a killed run, and a user whose RBAC has no Leases.

mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{strings, HelmMajor, Run, Scenario};

for_both_helms!(
    a_native_rollback_during_our_wait_stops_every_delete,
    a_second_run_from_another_machine_backs_off_naming_the_first,
    a_lease_left_by_a_killed_run_is_taken_over_at_once_on_its_machine,
    a_lease_left_on_another_machine_is_taken_over_once_it_expires,
    a_user_without_lease_rights_still_rolls_back,
);

/// A ServiceAccount in revisions 1 and 2, not in 3, and a Deployment that never becomes ready
/// (the bed has no nodes), so that a rollback with `--wait` creates the ServiceAccount and then
/// waits until its timeout.
const CHART: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-app
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}, annotations: {rev: {{ .Values.rev | quote }}}}
    spec:
      containers: [{name: c, image: busybox}]
{{- if .Values.sa }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-sa
{{- end }}
"#;

fn release_with_service_account_in_1_and_2(s: &Scenario) {
    let chart = s.write_chart("sa", CHART);
    s.helm(&["install", "web", &chart, "--set", "sa=true,rev=1"])
        .ok();
    s.helm(&["upgrade", "web", &chart, "--set", "sa=true,rev=2"])
        .ok();
    s.helm(&["upgrade", "web", &chart, "--set", "sa=false,rev=3"])
        .ok();
    assert_eq!(s.uid("serviceaccount/web-sa"), None);
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start(mut command: Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start helm safe-rollback")
}

fn signal_group(child: &Child, signal: i32) {
    // SAFETY: kill(2) on the process group of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), signal) }, 0);
}

fn history(s: &Scenario, release: &str) -> String {
    s.helm(&["history", release, "-o", "json"]).ok().stdout
}

fn a_native_rollback_during_our_wait_stops_every_delete(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "concurrent-native");
    release_with_service_account_in_1_and_2(&s);
    let ours = start(s.safe_rollback_command(&[
        "web",
        "2",
        "--wait",
        "--timeout",
        "25s",
        "--cleanup-on-fail",
        "--output",
        "json",
    ]));
    // Ours has created the ServiceAccount and is waiting for the Deployment.
    s.wait_for_status("web", "pending-rollback");
    wait_until("our rollback created the ServiceAccount", || {
        s.uid("serviceaccount/web-sa").is_some()
    });
    let account = s.uid("serviceaccount/web-sa").unwrap();
    // Meanwhile, someone on another machine: revision 5, which needs that ServiceAccount.
    s.helm(&["rollback", "web", "1"]).ok();
    let run = Run::from(ours.wait_with_output().unwrap());
    assert_eq!(
        run.code, 1,
        "helm's own failure, not a failed cleanup:\n{run}"
    );
    let report = run.json();
    assert_eq!(report["outcome"], "failed", "{run}");
    let concurrent = report["concurrent_revisions"].as_array().unwrap();
    assert_eq!(concurrent.len(), 1, "{run}");
    assert_eq!(concurrent[0]["revision"], 5, "{run}");
    assert_eq!(concurrent[0]["status"], "deployed", "{run}");
    assert_eq!(concurrent[0]["description"], "Rollback to 1", "{run}");
    assert!(
        strings(&report["warnings"])
            .iter()
            .any(|w| w.contains("revision 5") && w.contains("nothing was deleted")),
        "{run}"
    );
    assert_eq!(report["reconciled"], serde_json::json!([]), "{run}");
    // Revision 5 needs it: not even suggested for deletion.
    assert_eq!(report["leftovers"], serde_json::json!([]), "{run}");
    assert_eq!(s.uid("serviceaccount/web-sa"), Some(account), "it survives");
}

/// The same command with another state directory: another machine, as far as the local lock
/// can tell.
fn from_another_machine(command: Command, journal_dir: &Path) -> Command {
    let mut other = Command::new(command.get_program());
    let mut replace_next = false;
    for arg in command.get_args() {
        if replace_next {
            other.arg(journal_dir);
        } else {
            other.arg(arg);
        }
        replace_next = arg == "--journal-dir";
    }
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => other.env(key, value),
            None => other.env_remove(key),
        };
    }
    other.env("HELM_SAFE_ROLLBACK_JOURNAL_DIR", journal_dir);
    other
}

fn lease_holder(s: &Scenario, release: &str) -> Option<String> {
    let run = s.kubectl(&[
        "get",
        "lease",
        &format!("helm-safe-rollback.{release}"),
        "--ignore-not-found",
        "--output=jsonpath={.spec.holderIdentity}",
    ]);
    let holder = run.stdout.trim().to_string();
    (!holder.is_empty()).then_some(holder)
}

fn a_second_run_from_another_machine_backs_off_naming_the_first(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "concurrent-ours");
    s.hanging_release();
    let first = start(s.safe_rollback_command(&[
        "more",
        "1",
        "--wait",
        "--timeout",
        "5m",
        "--output",
        "json",
    ]));
    s.wait_for_status("more", "pending-rollback");
    wait_until("the first run holds the lease", || {
        lease_holder(&s, "more").is_some()
    });
    let holder = lease_holder(&s, "more").unwrap();
    let before = (
        s.resource_versions("configmaps,deployments,secrets"),
        history(&s, "more"),
    );
    let elsewhere = s.home.path().join("other-machine");
    let command = s.safe_rollback_command(&["more", "1", "--cleanup-on-fail"]);
    let second = Run::from(from_another_machine(command, &elsewhere).output().unwrap());
    assert_eq!(second.code, 6, "{second}");
    assert!(
        second.stderr.contains(&holder),
        "names the first run:\n{second}"
    );
    assert!(second.stderr.contains("nothing was changed"), "{second}");
    assert_eq!(
        (
            s.resource_versions("configmaps,deployments,secrets"),
            history(&s, "more")
        ),
        before
    );
    signal_group(&first, libc::SIGTERM);
    let first = Run::from(first.wait_with_output().unwrap());
    assert_ne!(first.code, 6, "{first}");
    assert_eq!(
        lease_holder(&s, "more"),
        None,
        "released at the end:\n{first}"
    );
}

fn a_lease_left_by_a_killed_run_is_taken_over_at_once_on_its_machine(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "lease-killed");
    s.hanging_release();
    let killed = start(s.safe_rollback_command(&[
        "more",
        "1",
        "--wait",
        "--timeout",
        "5m",
        "--output",
        "json",
    ]));
    s.wait_for_status("more", "pending-rollback");
    wait_until("the run holds the lease", || {
        lease_holder(&s, "more").is_some()
    });
    let holder = lease_holder(&s, "more").unwrap();
    signal_group(&killed, libc::SIGKILL);
    let _ = killed.wait_with_output();
    // On this machine, a holder that is no longer running is known gone: taken over at once.
    // (The revision its helm left pending is young, and helm itself may outlive a SIGKILL of
    // ours: the preflight rightly refuses it without --allow-pending.)
    let run = s.safe_rollback(&["more", "1", "--allow-pending", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        strings(&run.json()["warnings"])
            .iter()
            .any(|w| w.starts_with("took over the lease")
                && w.contains(&holder)
                && w.contains("no longer running on this machine")),
        "{run}"
    );
    assert_eq!(lease_holder(&s, "more"), None, "released at the end");
}

/// A run killed on another machine leaves the Lease as it last renewed it: it holds until it
/// expires (8 s here), then is taken over.
fn a_lease_left_on_another_machine_is_taken_over_once_it_expires(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "lease-expiry");
    s.hanging_release();
    let renewed = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string();
    let lease = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": "helm-safe-rollback.more",
            "annotations": {"helm-safe-rollback/process": "another-boot/4026531836/4242"},
        },
        "spec": {
            "holderIdentity": "ci@runner-elsewhere (pid 4242)",
            "leaseDurationSeconds": 8,
            "acquireTime": renewed,
            "renewTime": renewed,
        },
    });
    let file = s.home.path().join("lease.json");
    std::fs::write(&file, lease.to_string()).unwrap();
    s.kubectl(&["create", "-f", &file.display().to_string()]);
    let written = Instant::now();
    let early = s.safe_rollback(&["more", "1", "--output", "json"]);
    assert!(
        written.elapsed() < Duration::from_secs(6),
        "too slow to test"
    );
    assert_eq!(early.code, 6, "{early}");
    assert!(
        early.stderr.contains("ci@runner-elsewhere (pid 4242)"),
        "{early}"
    );
    std::thread::sleep(Duration::from_secs(9).saturating_sub(written.elapsed()));
    let run = s.safe_rollback(&["more", "1", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert!(
        strings(&run.json()["warnings"])
            .iter()
            .any(|w| w.starts_with("took over the lease")
                && w.contains("ci@runner-elsewhere (pid 4242), which stopped renewing it")),
        "{run}"
    );
    assert_eq!(lease_holder(&s, "more"), None, "released at the end");
}

fn a_user_without_lease_rights_still_rolls_back(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "no-lease-rights");
    s.seed_without_service();
    // Everything helm and we need in the namespace, in the core and apps groups; no Leases.
    s.kubectl(&[
        "create",
        "role",
        "deployer",
        "--verb=*",
        "--resource=secrets,configmaps,services,deployments.apps",
    ]);
    s.kubectl(&[
        "create",
        "rolebinding",
        "deployer",
        "--role=deployer",
        "--user=team-deployer",
    ]);
    let mut command = s.safe_rollback_command(&["seed", "1", "--output", "json"]);
    command.env("KUBECONFIG", s.kubeconfig_as("team-deployer"));
    let run = Run::from(command.output().unwrap());
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded", "{run}");
    let lease_warnings: Vec<String> = strings(&report["warnings"])
        .into_iter()
        .filter(|w| w.contains("Lease"))
        .collect();
    assert_eq!(lease_warnings.len(), 1, "{run}");
    assert!(lease_warnings[0].contains("forbidden"), "{run}");
    assert!(
        s.uid("service/seed-standby").is_some(),
        "rolled back:\n{run}"
    );
}
