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
