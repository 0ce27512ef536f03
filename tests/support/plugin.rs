//! Our binary run the ways users run it: through the plugin installed in the scenario's helm
//! homes with `helm` and `kubectl` found on PATH, directly, or given its tools explicitly.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Run, Scenario};

/// The name users call helm by, and so what helm puts in HELM_BIN for its plugins.
pub const USER_HELM: &str = "helm";

impl Scenario {
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
            for file in ["plugin.yaml", "install.sh", "plugin.complete"] {
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
}
