//! One test's world on the bed: its own namespace, helm homes, journal dir and kubeconfig, real
//! helm and kubectl run in it, and the namespace removed when the test passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use super::{fault_proxy, Bed, HelmMajor, Run};

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
    pub(super) plugin: OnceLock<()>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Helm's variables that override the kubeconfig: set in the shell that runs the tests, they
/// would point a scenario's helm (and ours, which reads them as helm's plugin environment) at
/// another cluster, or past a fault proxy.
const HELM_KUBE_VARS: [&str; 8] = [
    "HELM_KUBECONTEXT",
    "HELM_KUBETOKEN",
    "HELM_KUBEAPISERVER",
    "HELM_KUBEASUSER",
    "HELM_KUBEASGROUPS",
    "HELM_KUBECAFILE",
    "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
    "HELM_KUBETLS_SERVER_NAME",
];

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

    /// The TMPDIR our binary runs with in this scenario.
    pub fn temp_dir(&self) -> PathBuf {
        let dir = self.home.path().join("tmp");
        std::fs::create_dir_all(&dir).expect("create the scenario's TMPDIR");
        dir
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
        for var in HELM_KUBE_VARS {
            command.env_remove(var);
        }
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

    /// Real kubectl, in this scenario's namespace; it must succeed.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let run = Run::from(self.kubectl_command(args).output().expect("run kubectl"));
        assert_eq!(run.code, 0, "kubectl {args:?} failed:\n{run}");
        run
    }

    /// The command [`Scenario::kubectl`] runs, for kubectl started in the background or whose
    /// failure is the test's to judge.
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bed.kubectl);
        self.env(&mut command);
        command.args(args).args(["--namespace", &self.namespace]);
        command
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
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping namespace {} for inspection", self.namespace);
            return;
        }
        let mut command = Command::new(&self.bed.kubectl);
        self.env(&mut command);
        // The bed's own kubeconfig, not the scenario's: that one may lead through a fault proxy
        // already dropped (a test makes it after the scenario) or to a cluster of a test's
        // making, and the namespace would stay behind.
        command.env("KUBECONFIG", &self.bed.kubeconfig);
        let _ = command
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .output();
    }
}
