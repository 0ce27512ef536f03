//! The plugin as users install it: `helm plugin install <dir>` with real helm 3 and helm 4
//! (each with its own HELM_DATA_HOME/HELM_CONFIG_HOME/HELM_CACHE_HOME), then
//! `helm safe-rollback --help`, and a real rollback through helm with helm's own flags placed
//! before the plugin's name (`helm -n NS safe-rollback …`), so that they reach us only through
//! helm's environment. Every other e2e test runs the installed plugin too (tests/support), with
//! the flags after the plugin's name.

mod support;

use support::{HelmMajor, Run, Scenario};

for_both_helms!(helm_plugin_install_then_safe_rollback_runs);

fn helm_plugin_install_then_safe_rollback_runs(helm: HelmMajor) {
    let bed = bed_or_skip!();
    let s = Scenario::new(bed, helm, "plugin");
    // Installs a copy of plugin.yaml and install.sh, and asserts helm said it installed it.
    s.install_plugin();

    let list = s.helm(&["plugin", "list"]).ok();
    assert!(list.stdout.contains("safe-rollback"), "{list}");

    let help = Run::from(s.plugin_command(&["--help"]).output().unwrap()).ok();
    assert!(
        help.stdout
            .contains("helm safe-rollback RELEASE [REVISION]"),
        "{help}"
    );

    // `--version`: ours, and the helm that runs us (helm sets HELM_BIN for its plugins).
    let expected_version = match helm {
        HelmMajor::V3 => "v3.17.3",
        HelmMajor::V4 => "v4.3.1",
    };
    let version = Run::from(s.plugin_command(&["--version"]).output().unwrap()).ok();
    let lines: Vec<&str> = version.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(concat!("helm-safe-rollback v", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with(&format!("helm {expected_version} "))
                && l.ends_with("are tested)")),
        "{version}"
    );

    // `-n` before the plugin's name is helm's alone: it reaches us as HELM_NAMESPACE; helm
    // found on PATH tells us which helm we run under through HELM_BIN.
    s.seed_release("seed", false);
    let mut command = std::process::Command::new(support::USER_HELM);
    s.user_env(&mut command);
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
            .env("HELM_SAFE_ROLLBACK_JOURNAL_DIR", s.journal_dir())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run}");
    let report = run.json();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["namespace"], s.namespace.as_str());
    assert_eq!(report["helm_version"], expected_version);
    assert!(
        s.uid("service/seed-standby").is_some(),
        "rolled back to revision 1"
    );
    assert_eq!(s.journals().len(), 1, "the journal went where the env said");
}
