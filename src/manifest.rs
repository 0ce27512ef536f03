//! Reads a rendered helm manifest (`helm get manifest`): the identity of every object, and on
//! request the objects themselves for a server-side dry run.
//!
//! Object bodies (a Secret's data among them) only ever live in memory on their way to kubectl;
//! identities are what the rest of the program, and the journal, keep.

use anyhow::{bail, Context, Result};
use yaml_rust2::{Yaml, YamlLoader};

use crate::model::ObjectRef;

/// Who the objects are, in manifest order.
pub fn objects_of(documents: &[Document]) -> Vec<ObjectRef> {
    documents.iter().map(|d| d.object.clone()).collect()
}

/// One object of a manifest: who it is, and its full body as JSON (for kubectl).
#[derive(Clone)]
pub struct Document {
    pub object: ObjectRef,
    pub body: serde_json::Value,
}

/// Only the identity: the body can be a Secret's data.
impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("object", &self.object)
            .finish_non_exhaustive()
    }
}

/// Every object a manifest declares, in manifest order, with its body. Empty documents (helm
/// emits them for templates that render nothing) are skipped; a document that is not an object
/// is an error, because a manifest we cannot read is a manifest we cannot reason about.
pub fn parse_documents(manifest: &[u8]) -> Result<Vec<Document>> {
    let text = std::str::from_utf8(manifest).map_err(|e| {
        anyhow::anyhow!(
            "manifest is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let documents = YamlLoader::load_from_str(text).context("manifest is not valid YAML")?;
    let mut objects = Vec::new();
    for (index, document) in documents.iter().enumerate() {
        collect(document, index, &mut objects)?;
    }
    Ok(objects)
}

fn collect(document: &Yaml, index: usize, out: &mut Vec<Document>) -> Result<()> {
    if document.is_null() || document.is_badvalue() {
        return Ok(());
    }
    if document.as_hash().is_none() {
        bail!("manifest document {} is not an object", index + 1);
    }
    let kind = field(document, "kind")
        .with_context(|| format!("manifest document {} has no kind", index + 1))?;
    if kind.ends_with("List") {
        if let Some(items) = document["items"].as_vec() {
            for item in items {
                collect(item, index, out)?;
            }
            return Ok(());
        }
    }
    let api_version = field(document, "apiVersion")
        .with_context(|| format!("manifest document {} ({kind}) has no apiVersion", index + 1))?;
    let metadata = &document["metadata"];
    let name = field(metadata, "name").with_context(|| {
        format!(
            "manifest document {} ({kind}) has no metadata.name",
            index + 1
        )
    })?;
    out.push(Document {
        object: ObjectRef {
            api_version,
            kind,
            namespace: field(metadata, "namespace").filter(|ns| !ns.is_empty()),
            name,
        },
        body: to_json(document),
    });
    Ok(())
}

fn to_json(node: &Yaml) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(r.clone()), Value::Number),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => scalar_text(other),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null | Yaml::BadValue | Yaml::Alias(_) => Value::Null,
    }
}

fn scalar_text(node: &Yaml) -> String {
    match node {
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn field(node: &Yaml, key: &str) -> Option<String> {
    match &node[key] {
        Yaml::String(s) => Some(s.clone()),
        // `name: 123` is legal YAML; kubernetes reads it as the string "123".
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `helm get manifest` prints for the seed chart at revision 1 (same shape, real chart).
    fn seed_manifest() -> String {
        let template =
            std::fs::read_to_string("tests/fixtures/real-helm/seed/chart/templates/all.yaml")
                .unwrap();
        // Render the two template expressions the way helm would for release "seed".
        let rendered = template
            .replace("{{ .Release.Name }}", "seed")
            .replace("{{- if .Values.withService }}", "")
            .replace("{{- end }}", "")
            .replace("{{ .Values.image }}", "nginx")
            .replace(
                "\"{{ .Values.cmRef | default (printf \"%s-config\" .Release.Name) }}\"",
                "seed-config",
            );
        format!("---\n# Source: demo/templates/all.yaml\n{rendered}")
    }

    fn parse_objects(manifest: &[u8]) -> Result<Vec<ObjectRef>> {
        Ok(objects_of(&parse_documents(manifest)?))
    }

    #[test]
    fn parses_every_object_of_the_seed_chart() {
        let objects = parse_objects(seed_manifest().as_bytes()).unwrap();
        let names: Vec<_> = objects
            .iter()
            .map(|o| format!("{} {} {}", o.api_version, o.kind, o.name))
            .collect();
        assert_eq!(
            names,
            [
                "v1 ConfigMap seed-config",
                "v1 Service seed-standby",
                "apps/v1 Deployment seed-web"
            ]
        );
    }

    #[test]
    fn keeps_explicit_namespaces_and_skips_empty_documents() {
        let manifest = "---\n# Source: x\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: other\ndata:\n  password: aHVudGVyMg==\n";
        let objects = parse_objects(manifest.as_bytes()).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].namespace.as_deref(), Some("other"));
        assert!(!format!("{objects:?}").contains("aHVudGVyMg"));
    }

    #[test]
    fn rejects_what_it_cannot_read_with_a_clear_message() {
        let err = parse_objects(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \xff}\n")
            .unwrap_err();
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        let err = parse_objects(b"apiVersion: v1\nkind: [\n").unwrap_err();
        assert!(err.to_string().contains("not valid YAML"), "{err}");
        let err = parse_objects(b"apiVersion: v1\nkind: ConfigMap\n").unwrap_err();
        assert!(err.to_string().contains("metadata.name"), "{err}");
        let err = parse_objects(b"- a\n- b\n").unwrap_err();
        assert!(err.to_string().contains("not an object"), "{err}");
    }

    #[test]
    fn bodies_are_kept_as_json_for_kubectl() {
        let docs = parse_documents(seed_manifest().as_bytes()).unwrap();
        assert_eq!(docs[2].body["spec"]["replicas"], 1);
        assert_eq!(docs[1].body["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(docs[0].body["data"]["k"], "v");
    }

    #[test]
    fn an_empty_manifest_has_no_objects() {
        assert!(parse_objects(b"").unwrap().is_empty());
    }
}
