//! The release as helm prints it: its version and history, and which revisions a rollback goes
//! from and to — read exactly as helm itself decides, tested on real helm output.

use anyhow::{anyhow, bail, Context, Result};

use crate::domain::model::{HelmVersion, Revision};

/// `v3.17.3+ge4da497` → major 3.
pub fn parse_version(text: &str) -> Result<HelmVersion> {
    let version = text.trim().split('+').next().unwrap_or("").to_string();
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u64>().ok())
        .ok_or_else(|| anyhow!("cannot read helm's version from {:?}", text.trim()))?;
    Ok(HelmVersion { version, major })
}

/// The helm releases the tests run against, by major and minor (testbed/helm-matrix.tsv; a
/// unit test holds the two together).
pub const TESTED: [(u64, std::ops::RangeInclusive<u64>); 2] = [(3, 9..=19), (4, 1..=3)];

/// Whether this helm is one the tests run against: `Ok` with the words for `--version`,
/// `Err` with why not.
pub fn tested(version: &HelmVersion) -> std::result::Result<String, String> {
    let minor = version
        .version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse::<u64>().ok());
    let ranges = TESTED
        .iter()
        .map(|(major, minors)| format!("{major}.{} to {major}.{}", minors.start(), minors.end()))
        .collect::<Vec<_>>()
        .join(" and ");
    let covered = TESTED.iter().any(|(major, minors)| {
        *major == version.major && minor.is_some_and(|m| minors.contains(&m))
    });
    match (covered, supported(version.clone())) {
        (true, _) => Ok(format!("supported (helm {ranges} are tested)")),
        (false, Ok(_)) => Err(format!(
            "not tested: helm {ranges} are; helm 3 and 4 are expected to work"
        )),
        (false, Err(error)) => Err(error.to_string()),
    }
}

/// Helm 3 and helm 4 are what the classifier and the preflight checks know.
pub fn supported(version: HelmVersion) -> Result<HelmVersion> {
    if !(3..=4).contains(&version.major) {
        bail!(
            "unsupported helm version {}: helm-safe-rollback supports helm 3 and helm 4",
            version.version
        );
    }
    Ok(version)
}

pub fn parse_history(json: &[u8]) -> Result<Vec<Revision>> {
    let mut revisions: Vec<Revision> = serde_json::from_slice(json)
        .context("helm history printed something that is not its JSON")?;
    revisions.sort_by_key(|r| r.revision);
    Ok(revisions)
}

/// What capture needs of one stored revision: its manifest, and how helm 4 applied it.
#[derive(Debug)]
pub struct StoredRevision {
    /// The rendered manifest, as `helm get manifest` prints it.
    pub manifest: String,
    /// How helm 4 applied it (`ssa` / `csa`); helm 3 records nothing.
    pub apply_method: Option<String>,
}

/// The `helm get all --template` (helm 4) that prints a revision's apply method on the first
/// line and its manifest after it.
pub const REVISION_TEMPLATE: &str = "{{.Release.ApplyMethod}}\n{{.Release.Manifest}}";

/// Reads what [`REVISION_TEMPLATE`] printed.
pub fn parse_templated_revision(printed: &[u8]) -> StoredRevision {
    let printed = String::from_utf8_lossy(printed);
    let (method, manifest) = printed.split_once('\n').unwrap_or((&printed, ""));
    StoredRevision {
        manifest: manifest.to_string(),
        apply_method: Some(method.trim().to_string()).filter(|m| !m.is_empty()),
    }
}

/// A release as `helm list --output json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ListedRelease {
    pub name: String,
    pub namespace: String,
    /// `NAME-VERSION` and the newest revision's status, as `helm list` shows them.
    #[serde(default)]
    pub chart: String,
    #[serde(default)]
    pub status: String,
}

pub fn parse_list(json: &[u8]) -> Result<Vec<ListedRelease>> {
    serde_json::from_slice(json).context("helm list printed something that is not its JSON")
}

/// The newest revision: what helm calls the release's current one.
pub fn newest(history: &[Revision]) -> Result<u64> {
    history
        .iter()
        .map(|r| r.revision)
        .max()
        .ok_or_else(|| anyhow!("release has no revisions"))
}

/// Which revision helm will roll back from and to, exactly as `helm rollback` decides it:
/// from the newest revision, to the one asked for or the one before the newest.
pub fn resolve_revisions(history: &[Revision], requested: Option<u64>) -> Result<(u64, u64)> {
    let current = newest(history)?;
    let target = requested.unwrap_or(current.saturating_sub(1));
    if target == 0 || !history.iter().any(|r| r.revision == target) {
        match requested {
            Some(n) => bail!("release has no {n} version"),
            None => {
                bail!("release has no previous revision to roll back to (current is {current})")
            }
        }
    }
    Ok((current, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every release of testbed/helm-matrix.tsv is in [`TESTED`], and each range's ends are
    /// releases the matrix has.
    /// Real `helm get all --template` output of helm 4.1.0 and 4.3.1
    /// (tests/fixtures/real-helm/revision/steps.sh), for a release applied each way.
    #[test]
    fn a_stored_revision_is_read_from_helm_4s_template() {
        let fixtures = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/real-helm/revision"
        );
        for helm in ["helm-v4.1.0", "helm-v4.3.1"] {
            for method in ["ssa", "csa"] {
                let printed = std::fs::read(format!("{fixtures}/{helm}/{method}.get-all")).unwrap();
                let stored = parse_templated_revision(&printed);
                assert_eq!(stored.apply_method.as_deref(), Some(method), "{helm}");
                assert!(
                    stored
                        .manifest
                        .starts_with("---\n# Source: demo/templates/all.yaml\n"),
                    "{helm}: {}",
                    stored.manifest
                );
            }
        }
        let unrecorded = parse_templated_revision(b"\n---\nkind: ConfigMap\n");
        assert_eq!(unrecorded.apply_method, None);
        assert_eq!(unrecorded.manifest, "---\nkind: ConfigMap\n");
    }

    #[test]
    fn the_tested_ranges_are_the_matrix() {
        let matrix = include_str!("../../testbed/helm-matrix.tsv");
        let versions: Vec<HelmVersion> = matrix
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| parse_version(l.split('\t').next().unwrap()).unwrap())
            .collect();
        assert!(versions.len() > 10);
        for version in &versions {
            assert!(
                tested(version).is_ok(),
                "{} is in the matrix",
                version.version
            );
        }
        for (major, minors) in TESTED {
            for end in [minors.start(), minors.end()] {
                let prefix = format!("v{major}.{end}.");
                assert!(
                    versions.iter().any(|v| v.version.starts_with(&prefix)),
                    "{prefix}x is not in the matrix"
                );
            }
        }
        let old = parse_version("v3.8.2").unwrap();
        assert!(tested(&old).unwrap_err().starts_with("not tested"));
        let helm2 = parse_version("v2.17.0").unwrap();
        assert!(tested(&helm2)
            .unwrap_err()
            .starts_with("unsupported helm version"));
    }

    fn seed_history(version: &str) -> Vec<Revision> {
        let json = std::fs::read(format!(
            "tests/fixtures/real-helm/seed/helm-{version}/08-history.stdout"
        ))
        .unwrap();
        parse_history(&json).unwrap()
    }

    #[test]
    fn reads_real_history_from_both_helm_versions() {
        for version in ["v3.17.3", "v4.3.1"] {
            let history = seed_history(version);
            assert_eq!(history.len(), 7);
            assert_eq!(history[1].status, "failed");
            assert_eq!(history[6].status, "deployed");
        }
    }

    #[test]
    fn resolves_like_helm_rollback() {
        let history = seed_history("v3.17.3");
        assert_eq!(resolve_revisions(&history, None).unwrap(), (7, 6));
        assert_eq!(resolve_revisions(&history, Some(2)).unwrap(), (7, 2));
        // helm's own wording (seed step 10): `Error: release has no 99 version`.
        assert_eq!(
            resolve_revisions(&history, Some(99))
                .unwrap_err()
                .to_string(),
            "release has no 99 version"
        );
        let first_only = &history[..1];
        assert!(resolve_revisions(first_only, None).is_err());
    }

    #[test]
    fn only_helm_3_and_4_are_supported() {
        // What `helm version --short` prints for helm 2 and a future helm 5.
        for text in ["v2.17.0+ga690bad", "v5.0.0+g0000000"] {
            let err = supported(parse_version(text).unwrap()).unwrap_err();
            assert!(
                err.to_string().starts_with("unsupported helm version"),
                "{err}"
            );
        }
        assert!(supported(parse_version("v3.17.3+ge4da497").unwrap()).is_ok());
    }

    #[test]
    fn reads_versions() {
        assert_eq!(parse_version("v3.17.3+ge4da497\n").unwrap().major, 3);
        assert_eq!(parse_version("v4.3.1+g0fbf9c0").unwrap().version, "v4.3.1");
        assert!(parse_version("garbage").is_err());
    }
}
