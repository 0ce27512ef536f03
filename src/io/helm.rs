//! The helm adapter: which helm commands we run, and what their output means.
//!
//! Everything that is parsing (version strings, history JSON) is a pure function below the
//! adapter so it can be tested on real output.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use crate::domain::model::{HelmVersion, Revision};
use crate::io::exec::{self, Echo, Output};
use crate::io::version_cache;

pub struct Helm {
    pub bin: PathBuf,
    /// Global flags (namespace, context, credentials) given to every call.
    pub global_args: Vec<String>,
    /// Where `helm version`'s answer is remembered per binary (see `version_cache`).
    pub version_cache: Option<PathBuf>,
}

impl Helm {
    fn call(&self, what: &str, args: &[&str]) -> Result<Output> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.global_args.iter().cloned());
        let output = exec::capture(&self.bin, &all)
            .map_err(|e| anyhow!("{e} (install helm, or point HELM_BIN / --helm at it)"))?;
        if !output.success() {
            bail!("helm {what} failed: {}", output.error_line());
        }
        Ok(output)
    }

    pub fn version(&self) -> Result<HelmVersion> {
        let cache = self
            .version_cache
            .as_deref()
            .and_then(|dir| Some((dir, version_cache::key(&self.bin)?)));
        let remembered = cache.as_ref().and_then(|(dir, key)| {
            let version = parse_version(&version_cache::load(dir, key)?).ok()?;
            exec::trace_note(&format!("helm version {} (remembered)", version.version));
            Some(version)
        });
        if let Some(version) = remembered {
            return supported(version);
        }
        // `helm version` takes no cluster flags; global flags would only be noise here.
        let output = exec::capture(&self.bin, &["version".into(), "--short".into()])
            .map_err(|e| anyhow!("{e} (install helm, or point HELM_BIN / --helm at it)"))?;
        if !output.success() {
            bail!("helm version failed: {}", output.error_line());
        }
        let printed = String::from_utf8_lossy(&output.stdout);
        let version = supported(parse_version(&printed)?)?;
        if let Some((dir, key)) = cache {
            version_cache::store(dir, &key, &printed);
        }
        Ok(version)
    }

    pub fn history(&self, release: &str) -> Result<Vec<Revision>> {
        let output = self.call("history", &["history", release, "--output", "json"])?;
        parse_history(&output.stdout)
    }

    /// The manifest of a revision; `None` is the newest one.
    pub fn manifest(&self, release: &str, revision: Option<u64>) -> Result<Vec<u8>> {
        let output = match revision {
            Some(revision) => self.call(
                "get manifest",
                &[
                    "get",
                    "manifest",
                    release,
                    "--revision",
                    &revision.to_string(),
                ],
            )?,
            None => self.call("get manifest", &["get", "manifest", release])?,
        };
        Ok(output.stdout)
    }

    /// How a revision was applied (`ssa` / `csa`), as helm 4 records it; `None` when the
    /// release predates the record.
    pub fn apply_method(&self, release: &str, revision: u64) -> Result<Option<String>> {
        let revision = revision.to_string();
        let output = self.call(
            "get metadata",
            &[
                "get",
                "metadata",
                release,
                "--revision",
                &revision,
                "--output",
                "json",
            ],
        )?;
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("helm get metadata printed no JSON")?;
        Ok(metadata["applyMethod"]
            .as_str()
            .filter(|m| !m.is_empty())
            .map(str::to_string))
    }

    /// The native rollback, streamed live. Its failure is data, not an error: only a helm that
    /// cannot be started is.
    pub fn rollback(
        &self,
        release: &str,
        revision: u64,
        rollback_args: &[String],
        stdout_echo: Echo,
    ) -> Result<Output> {
        let mut args = vec![
            "rollback".to_string(),
            release.to_string(),
            revision.to_string(),
        ];
        args.extend(rollback_args.iter().cloned());
        args.extend(self.global_args.iter().cloned());
        exec::stream(&self.bin, &args, stdout_echo)
    }
}

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

/// Which revision helm will roll back from and to, exactly as `helm rollback` decides it:
/// from the newest revision, to the one asked for or the one before the newest.
pub fn resolve_revisions(history: &[Revision], requested: Option<u64>) -> Result<(u64, u64)> {
    let current = history
        .iter()
        .map(|r| r.revision)
        .max()
        .ok_or_else(|| anyhow!("release has no revisions"))?;
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
