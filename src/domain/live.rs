//! What the API server says an object is, reduced to its identity (`LiveObject`), and what a
//! ConfigMap or Secret stores (`StoredData`).
//!
//! Only metadata is kept in `LiveObject`, so a Secret's data never reaches the journal. The
//! data of ConfigMaps and Secrets is kept apart, in memory, to compare with the target
//! revision's. Pure: `io::kubectl` reads the JSON, verification compares with it.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::domain::model::{
    LiveObject, ReleaseOwner, RELEASE_NAMESPACE_ANNOTATION, RELEASE_NAME_ANNOTATION,
    RESOURCE_POLICY_ANNOTATION,
};
use crate::domain::{gitops, yaml11};

/// Of objects as the API server returned them, the one with this uid (this very object, not
/// another of the same name).
pub fn with_uid<'v>(bodies: &'v [serde_json::Value], uid: &str) -> Option<&'v serde_json::Value> {
    bodies
        .iter()
        .find(|b| b.pointer("/metadata/uid").and_then(|u| u.as_str()) == Some(uid))
}

/// The identity of one object as kubectl printed it.
pub fn identity_of(value: &serde_json::Value) -> Option<LiveObject> {
    let document = KubeDocument::deserialize(value).ok()?;
    let mut out = Vec::new();
    flatten(document, &mut out);
    out.pop()
}

#[derive(Deserialize)]
pub struct KubeDocument {
    #[serde(rename = "apiVersion", default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    pub metadata: Option<Metadata>,
    items: Option<Vec<KubeDocument>>,
    /// A ConfigMap's or Secret's; any shape for other kinds, which are not read for it.
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(rename = "binaryData", default)]
    binary_data: Option<serde_json::Value>,
}

/// The values a live ConfigMap or Secret stores, each as bytes (a Secret's and a `binaryData`
/// value decoded from base64). Held in memory for comparison; its `Debug` shows keys only.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredData {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub values: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for StoredData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredData")
            .field("kind", &self.kind)
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("keys", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StoredData {
    /// The data of a ConfigMap or Secret (core group) as the API server returned it.
    pub fn of(document: &KubeDocument) -> Option<StoredData> {
        let metadata = document.metadata.as_ref()?;
        let values = values(
            &document.api_version,
            &document.kind,
            document.data.as_ref(),
            document.binary_data.as_ref(),
            None,
        )?;
        Some(StoredData {
            kind: document.kind.clone(),
            namespace: metadata.namespace.clone(),
            name: metadata.name.clone(),
            values,
        })
    }
}

/// What a ConfigMap or Secret stores, key by key, from its `data`, `binaryData` and (a
/// manifest's Secret only) `stringData`, which the API server merges over `data`. `None` for
/// other kinds, or when a value is not what the API server would take.
pub fn values(
    api_version: &str,
    kind: &str,
    data: Option<&serde_json::Value>,
    binary_data: Option<&serde_json::Value>,
    string_data: Option<&serde_json::Value>,
) -> Option<BTreeMap<String, Vec<u8>>> {
    fn entries(field: Option<&serde_json::Value>) -> impl Iterator<Item = (&String, Option<&str>)> {
        let map = field.and_then(|f| f.as_object());
        map.into_iter()
            .flatten()
            .map(|(key, value)| (key, value.as_str()))
    }
    let decoded = |text: Option<&str>| text.and_then(|t| yaml11::decode_base64(t).ok());
    let mut out = BTreeMap::new();
    match (api_version, kind) {
        ("v1", "ConfigMap") => {
            for (key, value) in entries(data) {
                out.insert(key.clone(), value?.as_bytes().to_vec());
            }
            for (key, value) in entries(binary_data) {
                out.insert(key.clone(), decoded(value)?);
            }
        }
        ("v1", "Secret") => {
            for (key, value) in entries(data) {
                out.insert(key.clone(), decoded(value)?);
            }
            for (key, value) in entries(string_data) {
                out.insert(key.clone(), value?.as_bytes().to_vec());
            }
        }
        _ => return None,
    }
    Some(out)
}

// A List's own metadata has none of these, hence the defaults.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    namespace: Option<String>,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    resource_version: String,
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    labels: HashMap<String, String>,
}

pub fn flatten(document: KubeDocument, out: &mut Vec<LiveObject>) {
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
            managed_by: gitops::owner_of(&meta.labels, &meta.annotations),
        });
    }
}

/// Drops `metadata.managedFields`: who wrote which field and when, often as large as the rest
/// of the object, and read by no decision here. Objects held for comparison (the dry run's
/// predictions, live bodies) are kept without it, which bounds memory on large releases.
pub fn drop_managed_fields(object: &mut serde_json::Value) {
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("managedFields");
    }
}

/// An object as the API server returned it, fit to print: a Secret's values (`data`,
/// `stringData`, and kubectl's last-applied copy of them) replaced by `<redacted>`, and the
/// managed fields, which say who wrote what and when, left out.
pub fn without_secret_values(mut object: serde_json::Value) -> serde_json::Value {
    let redacted = || serde_json::Value::String("<redacted>".into());
    let secret = object["kind"] == "Secret" && object["apiVersion"] == "v1";
    if secret {
        for field in ["data", "stringData"] {
            if let Some(values) = object.get_mut(field).and_then(|v| v.as_object_mut()) {
                values.values_mut().for_each(|v| *v = redacted());
            }
        }
    }
    drop_managed_fields(&mut object);
    if let Some(metadata) = object["metadata"].as_object_mut() {
        let annotations = metadata.get_mut("annotations");
        if let Some(annotations) = annotations.and_then(|a| a.as_object_mut()) {
            if let Some(copy) = annotations
                .get_mut(LAST_APPLIED_ANNOTATION)
                .filter(|_| secret)
            {
                *copy = redacted();
            }
        }
    }
    object
}

/// Where `kubectl apply` keeps the whole object it last wrote, values included.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_printed_secret_keeps_its_keys_and_loses_its_values() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "managedFields": [{"manager": "helm"}],
                "annotations": {LAST_APPLIED_ANNOTATION: "{\"data\":{\"password\":\"czNjcmV0\"}}"}},
            "data": {"password": "czNjcmV0"}, "stringData": {"user": "admin"}, "type": "Opaque"
        });
        let printed = without_secret_values(secret).to_string();
        assert!(
            !printed.contains("czNjcmV0") && !printed.contains("admin"),
            "{printed}"
        );
        assert!(
            printed.contains("\"password\":\"<redacted>\"") && !printed.contains("managedFields")
        );
    }

    #[test]
    fn other_objects_keep_their_values() {
        let map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"mode": "fast"}});
        assert_eq!(without_secret_values(map.clone()), map);
    }
}
