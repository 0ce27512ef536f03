//! Shared by the end-to-end tests: the real test bed, and one namespace per test.
//!
//! The bed (kube-apiserver + etcd + controller-manager on loopback, real helm 3 and 4, real
//! kubectl) is started by `./scripts/test`, which exports its coordinates. Without them the tests
//! fail loudly; `HSR_SKIP_E2E=1` is the only way to skip, and it says so.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod fault_proxy;
pub mod file_server;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The line helm itself (3 and 4) prints on stderr after a plugin exits non-zero. A user running
/// `helm safe-rollback` always sees it below our own output; we cannot suppress it.
pub const HELM_PLUGIN_ERROR: &str = "Error: plugin \"safe-rollback\" exited with error";

pub struct Bed {
    pub kubeconfig: PathBuf,
    pub server: String,
    pub token: String,
    pub ca: Option<PathBuf>,
    pub helm3: PathBuf,
    pub helm4: PathBuf,
    pub kubectl: PathBuf,
}

/// The bed from the environment; `None` only when the user explicitly opted out.
pub fn bed() -> Option<Bed> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match var("HSR_TESTBED_KUBECONFIG") {
        Some(kubeconfig) => Some(Bed {
            kubeconfig: kubeconfig.into(),
            server: var("HSR_TESTBED_SERVER").expect("HSR_TESTBED_SERVER"),
            token: var("HSR_TESTBED_TOKEN").expect("HSR_TESTBED_TOKEN"),
            ca: var("HSR_TESTBED_CA").map(PathBuf::from),
            helm3: var("HSR_HELM3").expect("HSR_HELM3").into(),
            helm4: var("HSR_HELM4").expect("HSR_HELM4").into(),
            kubectl: var("HSR_KUBECTL").expect("HSR_KUBECTL").into(),
        }),
        None if var("HSR_SKIP_E2E").as_deref() == Some("1") => {
            eprintln!("e2e skipped: HSR_SKIP_E2E=1");
            None
        }
        None => panic!(
            "test bed not running: run ./scripts/test, or set HSR_SKIP_E2E=1 to skip e2e tests explicitly"
        ),
    }
}

/// Gets the bed or returns from the test (only when skipping was explicitly asked for).
#[macro_export]
macro_rules! bed_or_skip {
    () => {
        match $crate::support::bed() {
            Some(bed) => bed,
            None => return,
        }
    };
}

/// Generates one test per helm major version from `fn name(helm: HelmMajor)`.
#[macro_export]
macro_rules! for_both_helms {
    ($($name:ident),* $(,)?) => {
        mod helm3 {
            $( #[test] fn $name() { super::$name($crate::support::HelmMajor::V3) } )*
        }
        mod helm4 {
            $( #[test] fn $name() { super::$name($crate::support::HelmMajor::V4) } )*
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelmMajor {
    V3,
    V4,
}

impl HelmMajor {
    pub fn tag(self) -> &'static str {
        match self {
            HelmMajor::V3 => "h3",
            HelmMajor::V4 => "h4",
        }
    }
}

/// A JSON array of strings from a report, e.g. `primary_errors`.
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// What a process did, with its output as text for assertions and failure messages.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{self}"))
    }

    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }

    /// Our own stderr lines from a run through the plugin: when we exited non-zero, helm adds
    /// [`HELM_PLUGIN_ERROR`] as the last line; it must be there, and it is not ours.
    pub fn plugin_stderr_lines(&self) -> Vec<&str> {
        let mut lines: Vec<&str> = self.stderr.lines().collect();
        if self.code != 0 {
            assert_eq!(
                lines.pop(),
                Some(HELM_PLUGIN_ERROR),
                "helm's own last line after a failed plugin:\n{self}"
            );
        }
        lines
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One test's world: its own namespace, helm home, journal dir and kubeconfig.
pub struct Scenario {
    pub bed: Bed,
    pub helm: HelmMajor,
    /// A helm of the version matrix (its binary), instead of the bed's helm 3 or 4.
    helm_override: Option<PathBuf>,
    pub namespace: String,
    pub home: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    /// Set once the plugin is installed in this scenario's helm homes (the first run of it).
    plugin: OnceLock<()>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The name users call helm by, and so what helm puts in HELM_BIN for its plugins.
pub const USER_HELM: &str = "helm";

impl Scenario {
    /// `name` becomes part of the namespace so a failing test's leftovers are easy to find.
    pub fn new(bed: Bed, helm: HelmMajor, name: &str) -> Scenario {
        Scenario::create(bed, helm, None, helm.tag(), name)
    }

    /// A scenario run with any helm binary (one of the version matrix, tests/e2e_matrix.rs):
    /// `version` (`v3.9.4`) picks the major version the tests' expectations follow and goes
    /// into the namespace, so scenarios of different versions never share objects.
    pub fn with_helm(bed: Bed, binary: &Path, version: &str, name: &str) -> Scenario {
        let helm = if version.starts_with("v3.") {
            HelmMajor::V3
        } else if version.starts_with("v4.") {
            HelmMajor::V4
        } else {
            panic!("helm {version}: only helm 3 and 4 are known to the tests")
        };
        let tag = version.replace('.', "-");
        Scenario::create(bed, helm, Some(binary.to_path_buf()), &tag, name)
    }

    fn create(
        bed: Bed,
        helm: HelmMajor,
        helm_override: Option<PathBuf>,
        tag: &str,
        name: &str,
    ) -> Scenario {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let namespace = format!("{name}-{tag}-{}-{n}", std::process::id())
            .replace('_', "-")
            .to_lowercase();
        let home = tempfile::tempdir().unwrap();
        let kubeconfig = bed.kubeconfig.clone();
        let scenario = Scenario {
            bed,
            helm,
            helm_override,
            namespace,
            home,
            kubeconfig,
            plugin: OnceLock::new(),
        };
        scenario.kubectl(&["create", "namespace", &scenario.namespace.clone()]);
        scenario
    }

    pub fn helm_bin(&self) -> &Path {
        if let Some(binary) = &self.helm_override {
            return binary;
        }
        match self.helm {
            HelmMajor::V3 => &self.bed.helm3,
            HelmMajor::V4 => &self.bed.helm4,
        }
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.home.path().join("journal")
    }

    /// The scenario's environment (kubeconfig, helm homes) on a command.
    pub fn env(&self, command: &mut Command) {
        let home = self.home.path();
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env_remove("HELM_NAMESPACE")
            .env_remove("HELM_DEBUG")
            .env_remove("NO_COLOR");
    }

    /// Real helm of this scenario's version, in its namespace.
    pub fn helm(&self, args: &[&str]) -> Run {
        Run::from(self.helm_command(args).output().expect("run helm"))
    }

    /// The command [`Scenario::helm`] runs, for helm started in the background.
    pub fn helm_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.helm_bin());
        self.env(&mut command);
        command.args(args).args(["--namespace", &self.namespace]);
        command
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
        self.wait_for_status("more", "pending-rollback");
        // Revision 1 has no `more-extra`: once helm has deleted it, helm is past its updates and
        // waiting, so killing it now always leaves the same cluster behind.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while self.uid("configmap/more-extra").is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "helm never got to its wait"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        child
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

    /// `Kind/name=resourceVersion …` of every object of `resources` (kubectl's comma list) in
    /// this scenario's namespace: equal before and after means nothing was written.
    pub fn resource_versions(&self, resources: &str) -> String {
        self.kubectl(&[
            "get",
            resources,
            "--output=jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}",
        ])
        .stdout
    }

    /// A kubeconfig for the bed's admin impersonating `user` (kubectl and helm both honour
    /// `as`): a user with only the rights given to `user` by a test's Role.
    pub fn kubeconfig_as(&self, user: &str) -> PathBuf {
        let admin = std::fs::read_to_string(&self.bed.kubeconfig).expect("the bed's kubeconfig");
        let token_line = admin
            .lines()
            .find(|l| l.trim_start().starts_with("token:"))
            .expect("a token in the bed's kubeconfig");
        let indent = &token_line[..token_line.len() - token_line.trim_start().len()];
        let limited = admin.replace(token_line, &format!("{token_line}\n{indent}as: {user}"));
        let path = self.home.path().join(format!("kubeconfig-{user}"));
        std::fs::write(&path, limited).expect("write the impersonating kubeconfig");
        path
    }

    /// Routes every later helm, kubectl and helm-safe-rollback call of this scenario through a
    /// new fault proxy; keep the proxy alive for as long as the scenario uses it.
    pub fn through_fault_proxy(&mut self) -> fault_proxy::FaultProxy {
        let proxy = fault_proxy::FaultProxy::start(&self.bed.server, self.bed.ca.as_deref())
            .expect("start the fault proxy");
        let kubeconfig = self.home.path().join("proxy-kubeconfig");
        proxy
            .write_kubeconfig(&kubeconfig, &self.bed.token)
            .expect("write the proxy's kubeconfig");
        self.kubeconfig = kubeconfig;
        proxy
    }

    /// Real kubectl, in this scenario's namespace.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let mut command = Command::new(&self.bed.kubectl);
        self.env(&mut command);
        command.args(args).args(["--namespace", &self.namespace]);
        let run = Run::from(command.output().expect("run kubectl"));
        assert_eq!(run.code, 0, "kubectl {args:?} failed:\n{run}");
        run
    }

    /// The uid of an object, or `None` when it does not exist.
    pub fn uid(&self, object: &str) -> Option<String> {
        let run = self.kubectl(&[
            "get",
            object,
            "--ignore-not-found",
            "--output=jsonpath={.metadata.uid}",
        ]);
        let uid = run.stdout.trim().to_string();
        (!uid.is_empty()).then_some(uid)
    }

    /// `helm safe-rollback ARGS… --namespace NS --journal-dir DIR`, as a user runs it: the
    /// installed plugin, helm and kubectl found on PATH.
    pub fn safe_rollback(&self, args: &[&str]) -> Run {
        Run::from(
            self.safe_rollback_command(args)
                .output()
                .expect("run helm safe-rollback"),
        )
    }

    /// The command [`Scenario::safe_rollback`] runs, for tests that must start it in the
    /// background (concurrency). The namespace and journal dir come after ARGS, as users type
    /// flags: helm takes `--namespace` for itself and hands it to us as HELM_NAMESPACE.
    pub fn safe_rollback_command(&self, args: &[&str]) -> Command {
        let mut command = self.plugin_command(args);
        command
            .args(["--namespace", &self.namespace])
            .arg("--journal-dir")
            .arg(self.journal_dir());
        command
    }

    /// `helm safe-rollback ARGS…` and nothing else (no namespace, no journal dir), through the
    /// plugin installed in this scenario's helm homes, with `helm` and `kubectl` found on PATH
    /// and neither KUBECTL nor HELM_BIN set by us: helm sets HELM_BIN itself, as it does for
    /// every user.
    pub fn plugin_command(&self, args: &[&str]) -> Command {
        self.install_plugin();
        // A bare name: found through the PATH set below, as a shell would.
        let mut command = Command::new("helm");
        self.user_env(&mut command);
        command.arg("safe-rollback").args(args);
        command
    }

    /// Our binary run directly, not through helm, for the tests that must signal our own
    /// process (helm would otherwise be the pid they hold). Tools still come from PATH, as
    /// helm's plugin environment gives them: `HELM_BIN=helm`, no KUBECTL.
    pub fn safe_rollback_direct_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_helm-safe-rollback"));
        self.user_env(&mut command);
        command
            .env("HELM_BIN", USER_HELM)
            .args(args)
            .args(["--namespace", &self.namespace])
            .arg("--journal-dir")
            .arg(self.journal_dir());
        command
    }

    /// Our binary given its tools explicitly, as a user who names them does: `HELM_BIN` the
    /// absolute path of this scenario's helm, `--kubectl` the absolute path of kubectl, and a
    /// PATH that holds neither (only `sh`), so that a lookup on PATH would fail.
    pub fn safe_rollback_explicit_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_helm-safe-rollback"));
        self.explicit_tools_env(&mut command);
        command
            .env("HELM_BIN", self.helm_bin())
            .args(args)
            .arg("--kubectl")
            .arg(&self.bed.kubectl)
            .args(["--namespace", &self.namespace])
            .arg("--journal-dir")
            .arg(self.journal_dir());
        command
    }

    /// [`Scenario::user_env`] with a PATH that has no helm and no kubectl: a directory holding
    /// only `sh` (the system's PATH has a kubectl of its own).
    pub fn explicit_tools_env(&self, command: &mut Command) {
        let dir = self.home.path().join("no-tools");
        if std::fs::symlink_metadata(dir.join("sh")).is_err() {
            std::fs::create_dir_all(&dir).expect("create the no-tools dir");
            std::os::unix::fs::symlink("/bin/sh", dir.join("sh")).expect("link sh");
        }
        self.user_env(command);
        command.env("PATH", dir);
    }

    /// The environment users run us in: the scenario's (kubeconfig, helm homes), PATH with this
    /// scenario's `helm` and `kubectl` first, and no tool paths of ours. Our kubectl proxy's
    /// private socket directory goes to TMPDIR, where tests can see it.
    pub fn user_env(&self, command: &mut Command) {
        self.env(command);
        command
            .env("PATH", self.user_path())
            .env_remove("KUBECTL")
            .env_remove("HELM_BIN")
            .env("TMPDIR", self.temp_dir());
    }

    /// PATH as users have it: a directory holding `helm` (this scenario's helm 3 or 4) and
    /// `kubectl` (the bed's), then the test's own PATH.
    pub fn user_path(&self) -> OsString {
        let bin = self.tools_dir();
        let mut paths = vec![bin];
        if let Some(path) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(paths).expect("PATH")
    }

    /// The scenario's directory of `helm` and `kubectl` symlinks (made on first use).
    pub fn tools_dir(&self) -> PathBuf {
        let bin = self.home.path().join("bin");
        for (name, target) in [(USER_HELM, self.helm_bin()), ("kubectl", &self.bed.kubectl)] {
            let link = bin.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::fs::create_dir_all(&bin).expect("create the scenario's bin dir");
                std::os::unix::fs::symlink(target, &link).expect("link a tool into bin");
            }
        }
        bin
    }

    /// Installs the plugin into this scenario's helm homes, once: `helm plugin install` of a
    /// copy of the repo's plugin.yaml and install.sh (helm links a local plugin dir and the
    /// install hook writes `bin/` in it, so the repo's own dir would race between tests),
    /// with the test's binary as the prebuilt one (install.sh documents HSR_PREBUILT_BINARY).
    pub fn install_plugin(&self) {
        self.plugin.get_or_init(|| {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
            let source = self.home.path().join("plugin-src");
            std::fs::create_dir_all(&source).expect("create the plugin dir");
            for file in ["plugin.yaml", "install.sh"] {
                std::fs::copy(repo.join(file), source.join(file)).expect("copy the plugin");
            }
            let mut command = Command::new(USER_HELM);
            self.user_env(&mut command);
            command.args(["plugin", "install"]).arg(&source).env(
                "HSR_PREBUILT_BINARY",
                env!("CARGO_BIN_EXE_helm-safe-rollback"),
            );
            let install = Run::from(command.output().expect("run helm plugin install"));
            assert_eq!(install.code, 0, "helm plugin install:\n{install}");
            assert!(
                install.stdout.contains("Installed plugin: safe-rollback"),
                "{install}"
            );
        });
    }

    /// The TMPDIR our binary runs with in this scenario.
    pub fn temp_dir(&self) -> PathBuf {
        let dir = self.home.path().join("tmp");
        std::fs::create_dir_all(&dir).expect("create the scenario's TMPDIR");
        dir
    }

    /// Processes still running whose command line names this scenario's TMPDIR: a `kubectl
    /// proxy` of ours that outlived its run. Waits up to 5 s for them to go (the kernel's
    /// parent-death signal is asynchronous).
    pub fn surviving_proxies(&self) -> Vec<String> {
        let marker = self.temp_dir().display().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut found = Vec::new();
            for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
                let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                    continue;
                };
                let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                if cmdline.contains(&marker) {
                    found.push(format!(
                        "{}: {cmdline}",
                        entry.file_name().to_string_lossy()
                    ));
                }
            }
            if found.is_empty() || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// The pid of our binary running in this scenario (found by its TMPDIR, as
    /// [`Scenario::surviving_proxies`] finds the proxy): the process a signal is meant for,
    /// however it was started (directly, or by helm as a plugin).
    pub fn our_pid(&self) -> Option<i32> {
        let marker = self.temp_dir().display().to_string();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let ours = String::from_utf8_lossy(&cmdline)
                .split('\0')
                .next()
                .is_some_and(|program| program.ends_with("helm-safe-rollback"));
            if ours && String::from_utf8_lossy(&environ).contains(&marker) {
                return Some(pid);
            }
        }
        None
    }

    /// Waits until the release's history mentions `status`.
    pub fn wait_for_status(&self, release: &str, status: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let history = self.helm(&["history", release, "-o", "json"]).stdout;
            if history.contains(&format!("\"status\":\"{status}\"")) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{release} never reached {status}:\n{history}"
            );
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// Every journal file of this scenario, as text.
    pub fn journals(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let mut stack = vec![self.journal_dir()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    out.push((path, text));
                }
            }
        }
        out
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

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping namespace {} for inspection", self.namespace);
            return;
        }
        let mut command = Command::new(&self.bed.kubectl);
        self.env(&mut command);
        let _ = command
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .output();
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

/// One helm of the version matrix (testbed/helm-matrix.tsv, or `HSR_HELM_MATRIX`).
pub struct MatrixHelm {
    /// `v3.9.4`
    pub version: String,
    /// The PyPI wheel that ships it, `name==version`.
    pub wheel: String,
    /// Where testbed/provision-matrix.sh put it: `$HSR_HELM_MATRIX_DIR/helm-<version>`.
    pub binary: PathBuf,
    /// The matrix's optional third column: why this helm cannot run on the bed. Such a
    /// version is listed with its reason in the test's table, not run and not dropped.
    pub cannot_run: Option<String>,
}

/// The helm version matrix. The file must exist (the repo carries it); the binaries are
/// looked for in `HSR_HELM_MATRIX_DIR`, which testbed/up.sh writes into the bed's env.
pub fn helm_matrix() -> Vec<MatrixHelm> {
    let path = std::env::var_os("HSR_HELM_MATRIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/helm-matrix.tsv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the helm version matrix {} cannot be read ({e}); HSR_HELM_MATRIX names another",
            path.display()
        )
    });
    let dir = std::env::var_os("HSR_HELM_MATRIX_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .expect("HSR_HELM_MATRIX_DIR is not set: start the bed with testbed/up.sh (it provisions the matrix) and source RUNDIR/env");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|line| {
            let mut fields = line.split('\t');
            let version = fields.next().unwrap().trim().to_string();
            let wheel = fields.next().unwrap_or("").trim().to_string();
            let cannot_run = fields
                .next()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_string);
            MatrixHelm {
                binary: dir.join(format!("helm-{version}")),
                version,
                wheel,
                cannot_run,
            }
        })
        .collect()
}
