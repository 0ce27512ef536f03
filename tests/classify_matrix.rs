//! The classifier on the seed scenario as every helm of the version matrix printed it
//! (tests/fixtures/real-helm/seed/helm-<version>/, recorded by testbed/record-seed-matrix.sh on
//! the bed): the Deployment's validation error is the first and only primary error, helm's
//! cleanup complaint is collapsed into one noise finding, and what helm says when nothing failed
//! is never an error. Needs no bed: the transcripts are real output, kept in the repo.
//!
//! Where versions really differ, the test says so instead of averaging it away:
//! - helm ≤ 3.12 ends the cleanup error without `: no objects visited`;
//! - helm 4.0–4.1 fail with the bare API error (no `server-side apply failed for object …`
//!   prefix, client-side apply), 4.2+ with the server-side apply error; all of helm 4 also logs
//!   the cause in a `level=WARN msg="Rollback … failed: …"` line, and in step 06 only there;
//! - helm ≤ 3.11 answer an unknown revision with `release: not found`, later ones with
//!   `release has no 99 version`.

use helm_safe_rollback::classify::{classify, texts_of as of, Class};
use std::path::{Path, PathBuf};

const CAUSE: &str = "configMapKeyRef.name: Invalid value: \"Bad_Name\"";

/// `v3.9.4` → (3, 9, 4).
fn parse_version(text: &str) -> (u32, u32, u32) {
    let mut parts = text.trim_start_matches('v').split('.').map(|p| {
        p.parse::<u32>()
            .unwrap_or_else(|_| panic!("version {text:?}"))
    });
    let mut next = || parts.next().unwrap_or_else(|| panic!("version {text:?}"));
    (next(), next(), next())
}

/// The helm versions of the matrix file, as scripts/test and the provisioning read it.
fn matrix_versions() -> Vec<String> {
    let path = std::env::var_os("HSR_HELM_MATRIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("testbed/helm-matrix.tsv"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the helm matrix {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

fn seed_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-helm/seed")
        .join(format!("helm-{version}"))
}

fn read(dir: &Path, step: &str, ext: &str) -> String {
    let path = dir.join(format!("{step}.{ext}"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every version the matrix lists has its transcripts: none is dropped without a word.
#[test]
fn every_matrix_version_has_seed_transcripts() {
    let missing: Vec<String> = matrix_versions()
        .into_iter()
        .filter(|v| {
            !seed_dir(v)
                .join("06-rollback2-cleanup-leftover.stderr")
                .is_file()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "no seed transcripts for {missing:?}: run testbed/record-seed-matrix.sh on the bed"
    );
}

/// Steps 04–06 (the failed rollbacks): the validation error first and alone among the
/// primary errors; step 06's cleanup complaint is exactly one noise finding, never primary.
#[test]
fn failed_rollbacks_lead_with_the_cause_on_every_version() {
    let mut failures = Vec::new();
    for version in matrix_versions() {
        let (major, minor, _) = parse_version(&version);
        let dir = seed_dir(&version);
        for step in [
            "04-rollback2-cleanup",
            "05-rollback2-nocleanup",
            "06-rollback2-cleanup-leftover",
        ] {
            let stderr = read(&dir, step, "stderr");
            assert_eq!(read(&dir, step, "rc").trim(), "1", "{version} {step}");
            let findings = classify(stderr.as_bytes());
            let mut primary = of(&findings, Class::Primary);
            primary.dedup();
            let noise = of(&findings, Class::CleanupNoise);
            let mut problems = Vec::new();
            if primary.len() != 1 || !primary[0].contains(CAUSE) {
                problems.push(format!("primary errors {primary:#?}"));
            }
            if primary.iter().any(|p| p.contains("skipping delete")) {
                problems.push("cleanup noise shown as primary".to_string());
            }
            // 4.2+ apply server-side, and say so; earlier versions do not.
            let server_side = major == 4 && minor >= 2;
            if primary.first().is_some_and(|p| {
                p.starts_with("server-side apply failed for object") != server_side
            }) {
                problems.push(format!(
                    "server-side apply wording (expected {server_side})"
                ));
            }
            let expected_noise = usize::from(step.starts_with("06"));
            if noise.len() != expected_noise
                || noise
                    .iter()
                    .any(|n| !n.contains("object not found, skipping delete"))
            {
                problems.push(format!("cleanup noise {noise:#?}"));
            }
            if step.starts_with("06") {
                // The transcript itself, so a re-recording that changes it is noticed.
                let visited = stderr.contains(": no objects visited");
                let expected = (major, minor) >= (3, 13);
                if visited != expected {
                    problems.push(format!("`: no objects visited` present: {visited}"));
                }
                // Helm 4's Error line has lost the cause; only the WARN line carries it.
                if major == 4
                    && !stderr
                        .lines()
                        .any(|l| l.starts_with("level=WARN") && l.contains("Bad_Name"))
                {
                    problems.push("no WARN line with the cause".to_string());
                }
            }
            if !problems.is_empty() {
                failures.push(format!(
                    "{version} {step}: {}\n--- stderr\n{stderr}",
                    problems.join("; ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Whatever a step returned: a failed step yields something to show (primary, transient or
/// lock), a successful one nothing; and the unknown release/revision answers are primary.
#[test]
fn every_step_of_every_version_is_shown_or_quiet_as_its_exit_code_says() {
    let mut failures = Vec::new();
    for version in matrix_versions() {
        let (major, minor, _) = parse_version(&version);
        let dir = seed_dir(&version);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rc") {
                continue;
            }
            let step = path.file_stem().unwrap().to_string_lossy().into_owned();
            let failed = read(&dir, &step, "rc").trim() != "0";
            let findings = classify(read(&dir, &step, "stderr").as_bytes());
            let shown = findings
                .iter()
                .any(|f| matches!(f.class, Class::Primary | Class::Transient | Class::Lock));
            if failed != shown {
                failures.push(format!(
                    "{version} {step}: rc says failed={failed}: {findings:#?}"
                ));
            }
            let primary = of(&findings, Class::Primary);
            let expected = match step.as_str() {
                "09-rollback-norelease" => Some("release: not found"),
                "10-rollback-norevision" if (major, minor) <= (3, 11) => Some("release: not found"),
                "10-rollback-norevision" => Some("release has no 99 version"),
                "02-upgrade-bad-withsvc" => Some(CAUSE),
                _ => None,
            };
            if let Some(expected) = expected {
                if primary.first().is_none_or(|p| !p.contains(expected)) {
                    failures.push(format!(
                        "{version} {step}: expected {expected:?} first: {primary:#?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Step 05 (no cleanup) leaves the Service behind on every version; steps.log, the recording
/// script's own output, shows it live after 05 and after 06. The e2e matrix (tests/e2e_matrix.rs)
/// proves the plugin finds it; this pins that the transcripts are of that situation.
#[test]
fn the_recordings_left_the_service_behind_after_step_05() {
    for version in matrix_versions() {
        let dir = seed_dir(&version);
        let Ok(log) = std::fs::read_to_string(dir.join("steps.log")) else {
            // 3.17.3 and 4.3.1 were recorded before steps.log was kept.
            continue;
        };
        let live_after = |step: &str| {
            log.split("--- ")
                .find(|s| s.starts_with(step))
                .and_then(|s| s.lines().find(|l| l.trim_start().starts_with("live:")))
                .unwrap_or_else(|| panic!("{version}: no live line after {step}:\n{log}"))
                .to_string()
        };
        for step in ["05-rollback2-nocleanup", "06-rollback2-cleanup-leftover"] {
            let line = live_after(step);
            assert!(
                line.contains("-standby") && line.contains("ClusterIP"),
                "{version} {step}: {line}"
            );
        }
        assert!(
            live_after("04-rollback2-cleanup").contains("NotFound"),
            "{version}"
        );
    }
}
