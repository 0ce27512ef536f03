//! The API server dies while helm runs. We must say so clearly, keep the journal open, and once
//! the server is back, `--finish` must complete the reconcile from the journal. Each test starts a
//! private bed (testbed/up.sh) because it kills that bed's API server.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::{Bed, HelmMajor, Run, Scenario};

for_both_helms!(an_api_server_lost_mid_rollback_is_finished_from_the_journal);

struct PrivateBed {
    rundir: tempfile::TempDir,
}

impl PrivateBed {
    fn start() -> (PrivateBed, Bed) {
        let rundir = tempfile::tempdir().unwrap();
        let status = Command::new(testbed("up.sh"))
            .arg(rundir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "testbed/up.sh failed (see its stderr above)"
        );
        let env = std::fs::read_to_string(rundir.path().join("env")).unwrap();
        let var = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} missing from the bed's env"))
                .to_string()
        };
        let bed = Bed {
            kubeconfig: var("HSR_TESTBED_KUBECONFIG").into(),
            server: var("HSR_TESTBED_SERVER"),
            token: var("HSR_TESTBED_TOKEN"),
            ca: None,
            helm3: var("HSR_HELM3").into(),
            helm4: var("HSR_HELM4").into(),
            kubectl: var("HSR_KUBECTL").into(),
        };
        (PrivateBed { rundir }, bed)
    }

    fn apiserver(&self, action: &str) {
        let status = Command::new(testbed("apiserver.sh"))
            .arg(self.rundir.path())
            .arg(action)
            .status()
            .unwrap();
        assert!(status.success(), "testbed/apiserver.sh {action} failed");
    }
}

impl Drop for PrivateBed {
    fn drop(&mut self) {
        let _ = Command::new(testbed("down.sh"))
            .arg(self.rundir.path())
            .status();
    }
}

fn testbed(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testbed")
        .join(script)
}

fn an_api_server_lost_mid_rollback_is_finished_from_the_journal(helm: HelmMajor) {
    // The shared bed's presence is what says e2e tests are on; this test brings its own.
    let _ = bed_or_skip!();
    let (private, bed) = PrivateBed::start();
    let s = Scenario::new(bed, helm, "apidown");
    s.hanging_release();
    // Rolling back to 1 removes the extra ConfigMap and waits for a Deployment that can never
    // become ready (no kubelet): helm is busy when the API server goes.
    let child = s
        .safe_rollback_command(&[
            "more",
            "1",
            "--wait",
            "--timeout",
            "15s",
            "--cleanup-on-fail",
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    s.wait_until_helm_waits();
    private.apiserver("stop");
    let run = Run::from(child.wait_with_output().unwrap());
    assert_ne!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "failed", "{run}");
    let errors = format!(
        "{} {}",
        report["primary_errors"], report["transient_errors"]
    );
    assert!(
        errors.contains("could not read the cluster after the rollback"),
        "we say we could not check: {run}"
    );
    let finish = report["finish_command"].as_str().expect("a finish command");
    assert!(finish.contains("--finish"), "{run}");
    assert!(
        s.journals()[0].1.contains("\"state\": \"captured\""),
        "the journal stays open"
    );

    private.apiserver("start");
    let run = s.safe_rollback(&["more", "--finish", "--cleanup-on-fail", "--output", "json"]);
    assert_eq!(run.code, 0, "{run}");
    assert_eq!(run.json()["stage"], "finish");
    assert!(
        s.journals()
            .iter()
            .all(|(_, text)| text.contains("\"state\": \"completed\"")),
        "every journal completed"
    );
}
