//! The plugin as users install it: `helm plugin install <this checkout>` with real helm 3 and
//! helm 4 (each with its own HELM_DATA_HOME/HELM_CONFIG_HOME/HELM_CACHE_HOME), then
//! `helm safe-rollback --help`, and a real rollback through helm, so that the flags helm takes
//! for itself (`-n`) reach us through its environment.

mod support;

use support::{HelmMajor, Run, Scenario};

for_both_helms!(helm_plugin_install_then_safe_rollback_runs);

fn helm_plugin_install_then_safe_rollback_runs(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "plugin");
    let repo = env!("CARGO_MANIFEST_DIR");
    // The install hook would otherwise build a release binary; the test's own build is the same
    // code (install.sh documents HSR_PREBUILT_BINARY).
    let install = Run::from(
        s.helm_command(&["plugin", "install", repo])
            .env(
                "HSR_PREBUILT_BINARY",
                env!("CARGO_BIN_EXE_helm-safe-rollback"),
            )
            .output()
            .unwrap(),
    );
    assert_eq!(install.code, 0, "{install}");
    assert!(
        install.stdout.contains("Installed plugin: safe-rollback"),
        "{install}"
    );

    let list = s.helm(&["plugin", "list"]).ok();
    assert!(list.stdout.contains("safe-rollback"), "{list}");

    let help = s.helm(&["safe-rollback", "--help"]).ok();
    assert!(
        help.stdout
            .contains("helm safe-rollback RELEASE [REVISION]"),
        "{help}"
    );

    // A real rollback through helm: `-n` is helm's, passed to us as HELM_NAMESPACE; HELM_BIN
    // tells us which helm we run under.
    s.seed_release("seed", false);
    let journal_dir = s.journal_dir();
    let mut command = std::process::Command::new(s.helm_bin());
    s.env(&mut command);
    command.args([
        "-n",
        &s.namespace,
        "safe-rollback",
        "seed",
        "1",
        "--output",
        "json",
    ]);
    let run = Run::from(
        command
            .env("KUBECTL", &s.bed.kubectl)
            .env("HELM_SAFE_ROLLBACK_JOURNAL_DIR", &journal_dir)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["namespace"], s.namespace.as_str());
    let expected_version = match helm {
        HelmMajor::V3 => "v3.17.3",
        HelmMajor::V4 => "v4.3.1",
    };
    assert_eq!(report["helm_version"], expected_version);
    assert!(
        s.uid("service/seed-standby").is_some(),
        "rolled back to revision 1"
    );
}
