//! The kubectl adapter: reading object identities and deleting leftovers.
//!
//! Reads are batched: one `kubectl get` per namespace names every object at once, whatever the
//! size of the release. Only metadata is deserialised, so a Secret's data is dropped by the
//! parser and never held in our types.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::exec::{self, Output};
use crate::manifest::Document;
use crate::model::{
    LiveObject, ObjectRef, ReleaseOwner, RELEASE_NAMESPACE_ANNOTATION, RELEASE_NAME_ANNOTATION,
    RESOURCE_POLICY_ANNOTATION,
};

/// What a server-side dry run said: the objects it rejected (the server's messages) and the
/// objects as it would have made them. Never serialised: the objects can hold Secret data.
#[derive(Debug, Default)]
pub struct DryRun {
    pub rejections: Vec<String>,
    pub objects: Vec<serde_json::Value>,
}

enum DryRunItem {
    Rejected(String),
    Accepted(serde_json::Value),
}

/// Up to this many objects per namespace are read by name (within kubectl's request burst).
pub const BY_NAME_LIMIT: usize = 8;

pub struct Kubectl {
    pub bin: PathBuf,
    /// Connection flags (context, kubeconfig, server, credentials), as kubectl spells them.
    pub connection_args: Vec<String>,
}

impl Kubectl {
    fn call(&self, what: &str, args: Vec<String>) -> Result<Output> {
        let mut all = args;
        all.extend(self.connection_args.iter().cloned());
        let output = exec::capture(&self.bin, &all)
            .map_err(|e| anyhow!("{e} (install kubectl, or point KUBECTL / --kubectl at it)"))?;
        if !output.success() {
            bail!("kubectl {what} failed: {}", output.error_line());
        }
        Ok(output)
    }

    /// The namespace of the current kubeconfig context, as helm would default to it.
    pub fn context_namespace(&self) -> Result<Option<String>> {
        let output = self.call(
            "config view",
            vec![
                "config".into(),
                "view".into(),
                "--minify".into(),
                "--output=jsonpath={.contexts[0].context.namespace}".into(),
            ],
        )?;
        let ns = String::from_utf8_lossy(&output.stdout).trim().to_string();
        Ok((!ns.is_empty()).then_some(ns))
    }

    /// The live identity of every object that exists; absent objects are simply not returned.
    /// One kubectl call per namespace, run concurrently. A few objects are read by name; more
    /// than [`BY_NAME_LIMIT`] are read with one LIST per kind and filtered here, because kubectl
    /// GETs named objects one request at a time under client-side rate limiting (5 requests a
    /// second after a burst of 10): 100 objects by name took 14 s on the bed, by kind 0.1 s.
    pub fn identities(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<Vec<LiveObject>> {
        per_namespace(
            objects,
            |o| o.namespace_or(release_namespace).to_string(),
            |namespace, objects| {
                let output = self.call("get", get_args(objects, namespace))?;
                let mut live = parse_identities(&output.stdout)?;
                // A LIST brings the namespace's other objects of those kinds too.
                live.retain(|l| objects.iter().any(|o| l.is(o, namespace)));
                Ok(live)
            },
        )
    }

    /// The objects themselves, as the API server returns them, read like
    /// [`Kubectl::identities`]. Held in memory for comparison only: they can hold Secret data.
    pub fn objects(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<Vec<serde_json::Value>> {
        per_namespace(
            objects,
            |o| o.namespace_or(release_namespace).to_string(),
            |namespace, objects| {
                let output = self.call("get", get_args(objects, namespace))?;
                let mut found = parse_objects(&output.stdout)?;
                found.retain(|value| {
                    identity_of(value).is_some_and(|l| objects.iter().any(|o| l.is(o, namespace)))
                });
                Ok(found)
            },
        )
    }

    /// Asks the API server whether it would accept every object, changing nothing: a
    /// server-side apply dry run, one call per namespace. Returns the server's rejections, and
    /// the objects as the server would make them (what verification later compares against).
    pub fn dry_run(&self, documents: &[Document], release_namespace: &str) -> Result<DryRun> {
        let by_namespace = |d: &Document| d.object.namespace_or(release_namespace).to_string();
        let items = per_namespace(documents, by_namespace, |namespace, documents| {
            let output = self.with_manifest(
                &[
                    "apply",
                    "--server-side",
                    "--dry-run=server",
                    "--force-conflicts",
                    "--field-manager=helm-safe-rollback-preflight",
                    "--output=json",
                ],
                namespace,
                documents,
            )?;
            let rejections = parse_rejections(&output.stderr);
            if !output.success() && rejections.is_empty() {
                bail!(
                    "kubectl apply --dry-run=server failed: {}",
                    output.error_line()
                );
            }
            let objects = parse_objects(&output.stdout).unwrap_or_default();
            Ok(rejections
                .into_iter()
                .map(DryRunItem::Rejected)
                .chain(objects.into_iter().map(DryRunItem::Accepted))
                .collect())
        })?;
        let mut dry_run = DryRun::default();
        for item in items {
            match item {
                DryRunItem::Rejected(message) => dry_run.rejections.push(message),
                DryRunItem::Accepted(object) => dry_run.objects.push(object),
            }
        }
        Ok(dry_run)
    }

    /// Objects whose live state differs from the manifest, as the API server computes it: a
    /// server-side apply dry run of each object compared with the live one (`kubectl diff`).
    /// Only names come back; the diff itself (which could show Secret data) is discarded.
    pub fn drifted(&self, documents: &[Document], release_namespace: &str) -> Result<Vec<String>> {
        let by_namespace = |d: &Document| d.object.namespace_or(release_namespace).to_string();
        per_namespace(documents, by_namespace, |namespace, documents| {
            let output = self.with_manifest(
                &[
                    "diff",
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager=helm-safe-rollback-verify",
                ],
                namespace,
                documents,
            )?;
            // kubectl diff: 0 no differences, 1 differences, anything else failed.
            match output.code {
                Some(0) => Ok(Vec::new()),
                Some(1) => Ok(diffed_objects(&output.stdout, documents, namespace)),
                _ => bail!("kubectl diff failed: {}", output.error_line()),
            }
        })
    }

    /// Runs kubectl with the documents as one JSON List on stdin: manifests never touch disk.
    fn with_manifest(
        &self,
        verb_and_flags: &[&str],
        namespace: &str,
        documents: &[&Document],
    ) -> Result<Output> {
        let list = serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": documents.iter().map(|d| &d.body).collect::<Vec<_>>(),
        });
        let mut args: Vec<String> = verb_and_flags.iter().map(|a| a.to_string()).collect();
        args.push(format!("--namespace={namespace}"));
        args.push("--filename=-".into());
        args.extend(self.connection_args.iter().cloned());
        let input = serde_json::to_vec(&list).expect("JSON list");
        exec::capture_with_input(&self.bin, &args, Some(&input))
            .map_err(|e| anyhow!("{e} (install kubectl, or point KUBECTL / --kubectl at it)"))
    }

    /// Deletes one object. The caller has just re-read its uid; see `reconcile` for why this
    /// check-then-delete is the contract.
    pub fn delete(&self, object: &LiveObject) -> Result<()> {
        let mut args = vec!["delete".to_string(), object.as_ref().kubectl_arg()];
        if let Some(ns) = &object.namespace {
            args.push(format!("--namespace={ns}"));
        }
        args.push("--wait=true".into());
        self.call("delete", args)?;
        Ok(())
    }
}

/// `kubectl get` arguments for these objects of one namespace: by name when they are few, else
/// one LIST per kind (see [`Kubectl::identities`]).
fn get_args(objects: &[&ObjectRef], namespace: &str) -> Vec<String> {
    let mut args = vec!["get".to_string()];
    let by_name = objects.len() <= BY_NAME_LIMIT;
    let mut kinds: Vec<String> = Vec::new();
    for object in objects {
        let arg = object.kubectl_arg();
        if by_name {
            if !args.contains(&arg) {
                args.push(arg);
            }
        } else {
            let kind = arg.split('/').next().unwrap_or_default().to_string();
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    if !by_name {
        args.push(kinds.join(","));
    }
    args.extend([
        format!("--namespace={namespace}"),
        "--ignore-not-found".into(),
        "--output=json".into(),
    ]);
    args
}

/// Groups items by namespace and runs `call` once per namespace, concurrently: a release is
/// almost always one namespace, so this is almost always one kubectl process.
fn per_namespace<T, K, R, F>(items: &[T], namespace_of: K, call: F) -> Result<Vec<R>>
where
    T: Sync,
    K: Fn(&T) -> String,
    R: Send,
    F: Fn(&str, &[&T]) -> Result<Vec<R>> + Sync,
{
    let mut groups: BTreeMap<String, Vec<&T>> = BTreeMap::new();
    for item in items {
        groups.entry(namespace_of(item)).or_default().push(item);
    }
    std::thread::scope(|scope| {
        let call = &call;
        let calls: Vec<_> = groups
            .iter()
            .map(|(namespace, group)| scope.spawn(move || call(namespace, group)))
            .collect();
        let mut out = Vec::new();
        for handle in calls {
            out.extend(handle.join().expect("kubectl thread")?);
        }
        Ok(out)
    })
}

/// `kubectl diff` names each differing object in a header line
/// `diff -u -N /tmp/LIVE-…/<group.>version.Kind.namespace.name /tmp/MERGED-…/…`.
fn diffed_objects(stdout: &[u8], documents: &[&Document], namespace: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(stdout);
    let mut names = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("diff ")) {
        let Some(live_path) = line.split_whitespace().find(|w| w.contains("/LIVE-")) else {
            continue;
        };
        let file = live_path.rsplit('/').next().unwrap_or(live_path);
        let matched = documents.iter().find(|d| {
            let o = &d.object;
            file.ends_with(&format!(
                ".{}.{}.{}",
                o.kind,
                o.namespace_or(namespace),
                o.name
            )) || file.ends_with(&format!(".{}.{}", o.kind, o.name))
        });
        names.push(match matched {
            Some(d) => format!(
                "{}/{}/{}",
                d.object.kind,
                d.object.namespace_or(namespace),
                d.object.name
            ),
            None => file.to_string(),
        });
    }
    names
}

/// The identity of one object as kubectl printed it.
pub fn identity_of(value: &serde_json::Value) -> Option<LiveObject> {
    let document = KubeDocument::deserialize(value).ok()?;
    let mut out = Vec::new();
    flatten(document, &mut out);
    out.pop()
}

/// `kubectl … -o json` output as objects: a List's items, one object, or nothing.
fn parse_objects(json: &[u8]) -> Result<Vec<serde_json::Value>> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: serde_json::Value =
        serde_json::from_slice(json).context("kubectl printed something that is not JSON")?;
    Ok(match value.get("items") {
        Some(serde_json::Value::Array(items)) => items.clone(),
        _ => vec![value],
    })
}

/// The server's rejections in kubectl's stderr: `Error from server (Reason): message` per object
/// when several fail, or `The Kind "name" is invalid: …` when one does. Anything else (`error:
/// …` about connections, kubeconfig) is not a verdict on the objects.
pub fn parse_rejections(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|line| {
            if let Some(rest) = line.strip_prefix("Error from server ") {
                Some(match rest.split_once("): ") {
                    Some((_, message)) => message.to_string(),
                    None => rest.to_string(),
                })
            } else if line.starts_with("The ") && line.contains("\" is invalid: ") {
                Some(line.trim_start_matches("The ").to_string())
            } else {
                None
            }
        })
        .collect()
}

#[derive(Deserialize)]
struct KubeDocument {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    metadata: Option<Metadata>,
    items: Option<Vec<KubeDocument>>,
}

// A List's own metadata has none of these, hence the defaults.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

/// Reads `kubectl get -o json` output: a List, a single object, or nothing at all (which is what
/// `--ignore-not-found` prints when no object exists).
pub fn parse_identities(json: &[u8]) -> Result<Vec<LiveObject>> {
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let document: KubeDocument =
        serde_json::from_slice(json).context("kubectl get printed something that is not JSON")?;
    let mut out = Vec::new();
    flatten(document, &mut out);
    Ok(out)
}

fn flatten(document: KubeDocument, out: &mut Vec<LiveObject>) {
    if let Some(items) = document.items {
        for item in items {
            flatten(item, out);
        }
        return;
    }
    if let Some(mut meta) = document.metadata {
        out.push(LiveObject {
            api_version: document.api_version,
            kind: document.kind,
            namespace: meta.namespace,
            name: meta.name,
            uid: meta.uid,
            resource_version: meta.resource_version,
            owner: ReleaseOwner {
                release_name: meta.annotations.remove(RELEASE_NAME_ANNOTATION),
                release_namespace: meta.annotations.remove(RELEASE_NAMESPACE_ANNOTATION),
            },
            resource_policy: meta.annotations.remove(RESOURCE_POLICY_ANNOTATION),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real stderr of kubectl 1.37.1 `apply --server-side --dry-run=server` against the bed.
    #[test]
    fn rejections_are_read_in_both_of_kubectls_formats() {
        let one = b"The Deployment \"seed-web\" is invalid: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain\n";
        assert_eq!(
            parse_rejections(one),
            ["Deployment \"seed-web\" is invalid: spec.template.spec.containers[0].env[0].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"]
        );
        let two = b"Error from server (Invalid): ConfigMap \"Bad_CM\" is invalid: metadata.name: Invalid value: \"Bad_CM\"\nError from server (Invalid): Deployment.apps \"d\" is invalid: spec.template.metadata.labels: Invalid value\n";
        assert_eq!(parse_rejections(two).len(), 2);
        let unreachable = b"error: error validating \"/tmp/two.yaml\": error validating data: Get \"https://127.0.0.1:1/openapi/v2?timeout=32s\": dial tcp 127.0.0.1:1: connect: connection refused\n";
        assert!(parse_rejections(unreachable).is_empty());
    }
}
