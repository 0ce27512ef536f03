//! The charts and releases tests start from: fixture charts copied into the scenario, releases
//! seeded into the states tests/fixtures/real-helm/*/steps.sh describe, and rollbacks left
//! hanging or killed half-way.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::Scenario;

/// A chart template that can be healthy on a bed without nodes: its Deployment wants no pods.
/// `k` (default "1") is the ConfigMap's one value, so upgrades can differ.
pub const HEALTHY_TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data: {k: {{ .Values.k | default "1" | quote }}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80, protocol: TCP}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 0
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers: [{name: web, image: busybox}]
"#;

impl Scenario {
    /// [`HEALTHY_TEMPLATE`] written as the scenario's chart `healthy`; returns its path.
    pub fn healthy_chart(&self) -> String {
        self.write_chart("healthy", HEALTHY_TEMPLATE)
    }

    /// Release `more` at revision 2, whose rollback to 1 with `--wait` never ends: the bed has
    /// no kubelet, so its Deployment (one replica) never becomes ready.
    pub fn hanging_release(&self) {
        let chart = self.chart("more");
        self.helm(&["install", "more", &chart, "--set", "replicas=1"])
            .ok();
        self.helm(&[
            "upgrade",
            "more",
            &chart,
            "--set",
            "replicas=1",
            "--set",
            "extra=true",
        ])
        .ok();
    }

    /// [`Scenario::hanging_release`], with a native `helm rollback --wait` running on it: the
    /// release is `pending-rollback` when this returns. The caller kills the child.
    pub fn pending_release(&self) -> std::process::Child {
        self.hanging_release();
        self.begin_pending_rollback()
    }

    /// Starts a native `helm rollback more 1 --wait` that never finishes; returns once the
    /// release is `pending-rollback` and helm is waiting. Needs `more` at a revision with
    /// `more-extra` (revision 1 has none). The caller kills the child.
    pub fn begin_pending_rollback(&self) -> std::process::Child {
        let child = self
            .helm_command(&["rollback", "more", "1", "--wait", "--timeout", "5m"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start helm rollback");
        self.wait_until_helm_waits();
        child
    }

    /// Returns once a rollback of `more` to revision 1 is `pending-rollback` and past its
    /// updates: revision 1 has no `more-extra`, so once helm has deleted it helm is waiting, and
    /// killing it then always leaves the same cluster behind.
    pub fn wait_until_helm_waits(&self) {
        self.wait_for_status("more", "pending-rollback");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.uid("configmap/more-extra").is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "helm never got to its wait"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Starts `command` (a rollback of release `more` that waits), kills its whole process
    /// group with SIGKILL as soon as helm has created `more-extra`, and reaps it: a run that
    /// died mid-rollback, its journal left open.
    pub fn kill_once_more_extra_exists(&self, command: &mut Command) {
        let mut killed = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the run to kill");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.uid("configmap/more-extra").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "helm never created more-extra"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // SAFETY: kill(2) on the process group this test started and has not reaped.
        assert_eq!(
            unsafe { libc::kill(-(killed.id() as i32), libc::SIGKILL) },
            0
        );
        killed.wait().expect("reap the killed run");
    }

    /// more/steps.sh steps 1–2 plus the hand-made ConfigMap: revision 1 of release `more` has
    /// `more-extra`, which now exists and belongs to nobody. Returns the chart path.
    pub fn foreign_object_in_target(&self) -> String {
        let chart = self.chart("more");
        self.helm(&["install", "more", &chart, "--set", "extra=true"])
            .ok();
        self.helm(&["upgrade", "more", &chart, "--set", "extra=false"])
            .ok();
        self.kubectl(&[
            "create",
            "configmap",
            "more-extra",
            "--from-literal=owner=someone-else",
        ]);
        chart
    }

    /// more/steps.sh's orphan: release `more` at revision 2 (`more-extra` only in revision 1),
    /// then an upgrade that creates `more-extra` and fails on the Deployment's immutable
    /// selector. The ConfigMap stays, owned by the release, in no successful revision. Returns
    /// the orphan's uid.
    pub fn orphan_of_a_failed_upgrade(&self) -> String {
        let chart = self.chart("more");
        self.helm(&["install", "more", &chart, "--set", "extra=true"])
            .ok();
        self.helm(&["upgrade", "more", &chart, "--set", "extra=false"])
            .ok();
        let failed = self.helm(&[
            "upgrade",
            "more",
            &chart,
            "--set",
            "extra=true",
            "--set",
            "selector=b",
        ]);
        assert_ne!(failed.code, 0, "the selector change must fail:\n{failed}");
        self.uid("configmap/more-extra")
            .expect("the failed upgrade left the ConfigMap behind")
    }

    /// The seed chart installed (revision 1, with its Service), then upgraded without the Service
    /// and with another image (revision 2): rolling back to 1 creates the Service and patches the
    /// Deployment. Returns the chart path.
    pub fn seed_without_service(&self) -> String {
        let chart = self.chart("seed");
        self.helm(&["install", "seed", &chart]).ok();
        self.helm(&[
            "upgrade",
            "seed",
            &chart,
            "--set",
            "withService=false",
            "--set",
            "image=busybox",
        ])
        .ok();
        chart
    }

    /// Release `release` of the seed chart (tests/fixtures/real-helm/seed) with two good
    /// revisions, the first with the `<release>-standby` Service and the newest without it; with
    /// `failed_between`, steps 1–3 of seed/steps.sh: a failed upgrade (an invalid Deployment,
    /// and the Service) comes between them. Returns the chart's path.
    pub fn seed_release(&self, release: &str, failed_between: bool) -> String {
        let chart = self.chart("seed");
        self.helm(&["install", release, &chart]).ok();
        if failed_between {
            let bad = self.helm(&["upgrade", release, &chart, "--set", "cmRef=Bad_Name"]);
            assert_ne!(bad.code, 0, "the bad upgrade must fail:\n{bad}");
        }
        self.helm(&["upgrade", release, &chart, "--set", "withService=false"])
            .ok();
        chart
    }

    /// Writes a one-template chart into this scenario's home and returns its path.
    pub fn write_chart(&self, name: &str, template: &str) -> String {
        let dir = self.home.path().join(format!("chart-{name}"));
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n"),
        )
        .unwrap();
        std::fs::write(dir.join("templates/all.yaml"), template).unwrap();
        dir.display().to_string()
    }

    /// Copies a chart from tests/fixtures/real-helm into this scenario's home.
    pub fn chart(&self, scenario: &str) -> String {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/real-helm")
            .join(scenario)
            .join("chart");
        let to = self.home.path().join(format!("chart-{scenario}"));
        copy_dir(&from, &to);
        to.display().to_string()
    }
}

/// Copies a directory tree (charts into a scenario's home).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
