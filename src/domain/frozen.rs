//! Frozen renders: the ConfigMaps and Secrets a rollback gives back the data they had when the
//! target revision was rendered.
//!
//! helm stores each revision's manifest as rendered then and replays it; it never renders the
//! chart again. Values a template produced at that time — `lookup` of a live object, `rand*`,
//! `genCA`/`genSignedCert`, `now` — come back as they were, whatever the live objects hold
//! today. Each such object is a warning naming its keys; values are never shown. Pure: the
//! pipeline reads the live data with the identities and passes the dry run's prediction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::live::{self, StoredData};
use crate::domain::model::ObjectRef;
use crate::domain::snapshot::Snapshot;

/// One ConfigMap or Secret whose live data the rollback changes back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenRender {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// The revision whose rendering comes back.
    pub revision: u64,
    /// The keys whose value the rollback changes, adds or removes, sorted.
    pub keys: Vec<String>,
}

impl FrozenRender {
    pub fn warning(&self) -> String {
        let keys = self.keys.join(", ");
        format!(
            "{}/{}/{}: the rollback gives back what revision {} rendered for {} {keys} (the live \
             values differ; values generated then — lookup, rand*, certificates, keys — come \
             back as they were)",
            self.kind,
            self.namespace,
            self.name,
            self.revision,
            if self.keys.len() == 1 { "key" } else { "keys" },
        )
    }
}

/// The target's ConfigMaps and Secrets that exist and whose data the rollback changes.
///
/// What an object's data becomes is the API server's own answer where the dry run of helm's
/// write gave one (`predicted`: it merges as helm's write merges); otherwise the target
/// manifest's data, where the keys the revision rolled back from had and the target lacks are
/// removed (helm's patch removes what it wrote; other writers' keys stay).
pub fn frozen_renders(
    snapshot: &Snapshot,
    live: &[StoredData],
    predicted: &[serde_json::Value],
) -> Vec<FrozenRender> {
    let namespace = snapshot.release.namespace.as_str();
    let mut out = Vec::new();
    for target in &snapshot.target_documents {
        let object = &target.object;
        let Some(now) = live.iter().find(|l| same(l, object, namespace)) else {
            continue;
        };
        let prediction = predicted.iter().find(|p| predicts(p, object, namespace));
        let keys = match prediction.and_then(values_of) {
            Some(after) => changed(&now.values, &after, |_| true),
            None => {
                let Some(after) = values_of(&target.body) else {
                    continue;
                };
                let current = snapshot
                    .current_documents
                    .iter()
                    .find(|c| identical(&c.object, object, namespace))
                    .and_then(|c| values_of(&c.body))
                    .unwrap_or_default();
                changed(&now.values, &after, |key| current.contains_key(key))
            }
        };
        if !keys.is_empty() {
            out.push(FrozenRender {
                kind: object.kind.clone(),
                namespace: object.namespace_or(namespace).to_string(),
                name: object.name.clone(),
                revision: snapshot.to_revision,
                keys,
            });
        }
    }
    out
}

/// The keys whose value differs between `now` and `after`; a key only `now` has counts when
/// `removed` says the write takes it away.
fn changed(
    now: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
    removed: impl Fn(&str) -> bool,
) -> Vec<String> {
    let differs = after
        .iter()
        .filter(|(key, value)| now.get(*key) != Some(*value));
    let gone = now
        .keys()
        .filter(|key| !after.contains_key(*key) && removed(key));
    let mut keys: Vec<String> = differs.map(|(k, _)| k).chain(gone).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}

fn values_of(body: &serde_json::Value) -> Option<BTreeMap<String, Vec<u8>>> {
    live::values(
        body.get("apiVersion")?.as_str()?,
        body.get("kind")?.as_str()?,
        body.get("data"),
        body.get("binaryData"),
        body.get("stringData"),
    )
}

fn same(live: &StoredData, object: &ObjectRef, namespace: &str) -> bool {
    live.kind == object.kind
        && object.group().is_empty()
        && live.name == object.name
        && live.namespace.as_deref() == Some(object.namespace_or(namespace))
}

fn identical(a: &ObjectRef, b: &ObjectRef, namespace: &str) -> bool {
    a.group() == b.group()
        && a.kind == b.kind
        && a.name == b.name
        && a.namespace_or(namespace) == b.namespace_or(namespace)
}

/// Whether the dry run's answer `predicted` is the object `object` becomes.
fn predicts(predicted: &serde_json::Value, object: &ObjectRef, namespace: &str) -> bool {
    let text = |pointer: &str| predicted.pointer(pointer).and_then(|v| v.as_str());
    text("/kind") == Some(object.kind.as_str())
        && text("/apiVersion") == Some(object.api_version.as_str())
        && text("/metadata/name") == Some(object.name.as_str())
        && text("/metadata/namespace") == Some(object.namespace_or(namespace))
}

#[cfg(test)]
#[path = "frozen_tests.rs"]
mod tests;
