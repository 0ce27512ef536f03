//! What the API server says an object is, reduced to its identity (`LiveObject`).
//!
//! Only metadata is deserialised, so a Secret's data is dropped by the parser and never held in
//! our types. Pure: `io::kubectl` reads the JSON, verification compares with it.

use std::collections::HashMap;

use serde::Deserialize;

use crate::domain::model::{
    LiveObject, ReleaseOwner, RELEASE_NAMESPACE_ANNOTATION, RELEASE_NAME_ANNOTATION,
    RESOURCE_POLICY_ANNOTATION,
};

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
        });
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
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("managedFields");
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
