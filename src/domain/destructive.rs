//! Deletes a rollback makes that take data with them.
//!
//! helm deletes every object of the revision it rolls back from that the target lacks, unless
//! the live object says `helm.sh/resource-policy: keep` (helm reads the annotation from the live
//! object just before deleting). Most such deletes are what the user wants. Three are not
//! undone by rolling forward again: a CustomResourceDefinition (the API server deletes every
//! custom resource of its kind, in every namespace), a PersistentVolumeClaim (its volume, when
//! the reclaim policy is `Delete`) and a Namespace (everything in it). Pure: the pipeline reads
//! the objects and counts the custom resources.

use serde::Serialize;

use crate::domain::model::{LiveObject, ManifestIndex};
use crate::domain::snapshot::Snapshot;

/// One delete that destroys data, with what goes with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DestructiveDelete {
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    /// What goes with it, in words: "3 custom resources of kind Widget", "10Gi, volume pv-1".
    pub loss: String,
    /// A CustomResourceDefinition's custom resources, in every namespace; `None` when they
    /// could not be counted, or for other kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_resources: Option<u64>,
}

impl DestructiveDelete {
    /// Why preflight refuses it, and the ways on.
    pub fn refusal(&self) -> String {
        format!(
            "the rollback would delete {} and with it {}: helm does not ask (pass \
             --allow-destructive to delete it, or annotate it helm.sh/resource-policy=keep to keep \
             it)",
            self.object(),
            self.loss
        )
    }

    /// `Kind/namespace/name`, or `Kind/name` when cluster-scoped.
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{}/{namespace}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }
}

/// Which of the kinds whose delete destroys data `object` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destroys {
    CustomResources,
    Volume,
    Namespace,
}

pub fn destroys(object: &LiveObject) -> Option<Destroys> {
    let group = object.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    match (group, object.kind.as_str()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Some(Destroys::CustomResources),
        ("", "PersistentVolumeClaim") => Some(Destroys::Volume),
        ("", "Namespace") => Some(Destroys::Namespace),
        _ => None,
    }
}

/// The live objects helm will delete that destroy data: in the revision rolled back from, not in
/// the target, live, and without `helm.sh/resource-policy: keep` on the live object.
pub fn candidates(snapshot: &Snapshot) -> Vec<LiveObject> {
    let namespace = &snapshot.release.namespace;
    let current = ManifestIndex::new(&snapshot.current, namespace);
    let target = ManifestIndex::new(&snapshot.target, namespace);
    snapshot
        .live
        .iter()
        .filter(|o| destroys(o).is_some())
        .filter(|o| current.contains(o) && !target.contains(o))
        .filter(|o| !o.keep())
        .cloned()
        .collect()
}

/// The custom resources a CustomResourceDefinition serves, as the API server lists them:
/// `(group, version, plural, kind)` from its spec, the storage version first.
pub fn served_resource(crd: &serde_json::Value) -> Option<(String, String, String, String)> {
    let spec = crd.get("spec")?;
    let group = spec.get("group")?.as_str()?;
    let names = spec.get("names")?;
    let plural = names.get("plural")?.as_str()?;
    let kind = names.get("kind")?.as_str()?;
    let versions = spec.get("versions")?.as_array()?;
    let served = |v: &&serde_json::Value| v.get("served").and_then(|s| s.as_bool()) == Some(true);
    let storage = |v: &&serde_json::Value| v.get("storage").and_then(|s| s.as_bool()) == Some(true);
    let version = versions
        .iter()
        .filter(served)
        .find(storage)
        .or_else(|| versions.iter().find(served))?
        .get("name")?
        .as_str()?;
    Some((group.into(), version.into(), plural.into(), kind.into()))
}

/// What goes with `object`: `body` is the live object, `custom_resources` the count of a
/// CustomResourceDefinition's custom resources (`None`: could not be counted).
pub fn describe(
    object: &LiveObject,
    body: Option<&serde_json::Value>,
    custom_resources: Option<u64>,
) -> Option<DestructiveDelete> {
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let loss = match destroys(object)? {
        Destroys::CustomResources => {
            let kind = body.and_then(served_resource).map_or_else(
                || "its kind".to_string(),
                |(.., kind)| format!("kind {kind}"),
            );
            match custom_resources {
                Some(1) => format!("1 custom resource of {kind}, in every namespace"),
                Some(n) => format!("{n} custom resources of {kind}, in every namespace"),
                None => format!("every custom resource of {kind} (they could not be counted)"),
            }
        }
        Destroys::Volume => {
            let size = text(body.and_then(|b| b.pointer("/status/capacity/storage")))
                .or_else(|| text(body.and_then(|b| b.pointer("/spec/resources/requests/storage"))))
                .unwrap_or_else(|| "size unknown".into());
            match text(body.and_then(|b| b.pointer("/spec/volumeName"))) {
                Some(volume) => format!("its data: {size}, bound to volume {volume}"),
                None => format!("its data: {size}, not bound to a volume"),
            }
        }
        Destroys::Namespace => "every object in it".into(),
    };
    Some(DestructiveDelete {
        kind: object.kind.clone(),
        namespace: object.namespace.clone(),
        name: object.name.clone(),
        loss,
        custom_resources,
    })
}

#[cfg(test)]
#[path = "destructive_tests.rs"]
mod tests;
