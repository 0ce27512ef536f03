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
use crate::model::{
    LiveObject, ObjectRef, ReleaseOwner, RELEASE_NAMESPACE_ANNOTATION, RELEASE_NAME_ANNOTATION,
};

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
    /// One kubectl call per namespace, run concurrently.
    pub fn identities(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<Vec<LiveObject>> {
        let mut by_namespace: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for object in objects {
            let args = by_namespace
                .entry(object.namespace_or(release_namespace))
                .or_default();
            let arg = object.kubectl_arg();
            if !args.contains(&arg) {
                args.push(arg);
            }
        }
        std::thread::scope(|scope| {
            let calls: Vec<_> = by_namespace
                .into_iter()
                .map(|(namespace, names)| {
                    scope.spawn(move || {
                        let mut args = vec!["get".to_string()];
                        args.extend(names);
                        args.extend([
                            format!("--namespace={namespace}"),
                            "--ignore-not-found".into(),
                            "--output=json".into(),
                        ]);
                        let output = self.call("get", args)?;
                        parse_identities(&output.stdout)
                    })
                })
                .collect();
            let mut live = Vec::new();
            for call in calls {
                live.extend(call.join().expect("kubectl get thread")?);
            }
            Ok(live)
        })
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

#[derive(Deserialize)]
struct Document {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    metadata: Option<Metadata>,
    items: Option<Vec<Document>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    name: String,
    namespace: Option<String>,
    uid: String,
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
    let document: Document =
        serde_json::from_slice(json).context("kubectl get printed something that is not JSON")?;
    let mut out = Vec::new();
    flatten(document, &mut out);
    Ok(out)
}

fn flatten(document: Document, out: &mut Vec<LiveObject>) {
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
        });
    }
}
