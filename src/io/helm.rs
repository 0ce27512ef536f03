//! The helm adapter: which helm commands we run, and what their output means.
//!
//! Everything that is parsing (version strings, history JSON) is a pure function below the
//! adapter so it can be tested on real output.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

use crate::domain::model::{HelmVersion, Revision};
use crate::domain::newest;
use crate::domain::release::{
    parse_history, parse_list, parse_templated_revision, parse_version, supported, ListedRelease,
    StoredRevision, REVISION_TEMPLATE,
};
use crate::io::exec::{self, Echo, Output};
use crate::io::trace;
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
            trace::note(&format!("helm version {} (remembered)", version.version));
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

    /// A stored revision, `None` the newest one: its manifest and, from helm 4, how it was
    /// applied. helm 3 records no method: `helm get manifest`. helm 4: one `helm get all` with
    /// a template that prints both, in one process (`helm status` would also read every
    /// object of the release from the cluster).
    pub fn revision(
        &self,
        release: &str,
        revision: Option<u64>,
        major: u64,
    ) -> Result<StoredRevision> {
        let revision = revision.map(|r| r.to_string());
        let mut args = match major {
            ..=3 => vec!["get", "manifest", release],
            _ => vec!["get", "all", release, "--template", REVISION_TEMPLATE],
        };
        if let Some(revision) = &revision {
            args.extend(["--revision", revision.as_str()]);
        }
        let output = self.call(&args[..2].join(" "), &args)?;
        Ok(match major {
            ..=3 => StoredRevision {
                manifest: String::from_utf8_lossy(&output.stdout).into_owned(),
                apply_method: None,
            },
            _ => parse_templated_revision(&output.stdout),
        })
    }

    /// The newest revision's history row, manifest and (helm 4) apply method, in one process
    /// (`domain::newest`).
    pub fn newest(&self, release: &str, major: u64) -> Result<(Revision, StoredRevision)> {
        let template = newest::template(major);
        let output = self.call("get all", &["get", "all", release, "--template", &template])?;
        newest::parse(&output.stdout, major)
    }

    /// Every release in helm's namespace, or in every namespace: all statuses (helm 3 wants
    /// `--all` for that, helm 4 lists them all and has no such flag), no page limit (`--max 0`).
    pub fn list(&self, all_namespaces: bool, major: u64) -> Result<Vec<ListedRelease>> {
        let mut args = vec!["list", "--max", "0", "--output", "json"];
        if major < 4 {
            args.push("--all");
        }
        if all_namespaces {
            args.push("--all-namespaces");
        }
        parse_list(&self.call("list", &args)?.stdout)
    }

    /// `helm status RELEASE -o json`: the newest revision, with its hooks and their last run.
    /// It holds manifests and values too: the caller keeps only what it needs.
    pub fn status_json(&self, release: &str) -> Result<Vec<u8>> {
        let output = self.call("status", &["status", release, "--output", "json"])?;
        Ok(output.stdout)
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
