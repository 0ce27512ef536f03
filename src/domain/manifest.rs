//! Reads a rendered helm manifest (`helm get manifest`): the identity of every object, and on
//! request the objects themselves for a server-side dry run.
//!
//! Object bodies (a Secret's data among them) only ever live in memory on their way to kubectl;
//! identities are what the rest of the program, and the journal, keep.

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::domain::model::ObjectRef;
use crate::domain::yaml11;

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
///
/// The YAML is read as helm reads it (YAML 1.1, see `yaml11`), so that `defaultMode: 0644`
/// is 420 here as it is for helm and the API server.
pub fn parse_documents(manifest: &[u8]) -> Result<Vec<Document>> {
    let text = std::str::from_utf8(manifest).map_err(|e| {
        anyhow::anyhow!(
            "manifest is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )
    })?;
    let documents = yaml11::documents(text).context("manifest is not valid YAML")?;
    let mut objects = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        collect(document, index, &mut objects)?;
    }
    Ok(objects)
}

fn collect(mut document: Value, index: usize, out: &mut Vec<Document>) -> Result<()> {
    if document.is_null() {
        return Ok(());
    }
    if !document.is_object() {
        bail!("manifest document {} is not an object", index + 1);
    }
    let kind = field(&document, "kind")
        .with_context(|| format!("manifest document {} has no kind", index + 1))?;
    if kind.ends_with("List") {
        if let Some(Value::Array(items)) = document.get_mut("items") {
            for item in std::mem::take(items) {
                collect(item, index, out)?;
            }
            return Ok(());
        }
    }
    let api_version = field(&document, "apiVersion")
        .with_context(|| format!("manifest document {} ({kind}) has no apiVersion", index + 1))?;
    let metadata = &document["metadata"];
    let name = field(metadata, "name").with_context(|| {
        format!(
            "manifest document {} ({kind}) has no metadata.name",
            index + 1
        )
    })?;
    let namespace = field(metadata, "namespace").filter(|ns| !ns.is_empty());
    out.push(Document {
        object: ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        },
        body: document,
    });
    Ok(())
}

fn field(node: &Value, key: &str) -> Option<String> {
    match &node[key] {
        Value::String(s) => Some(s.clone()),
        // `name: 123` is legal YAML; it is read here as the text "123".
        scalar @ (Value::Number(_) | Value::Bool(_)) => Some(scalar.to_string()),
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

    /// Every `defaultMode` a rendered manifest writes, decoded as octal the way helm does.
    fn octal_modes_in(text: &str) -> Vec<u64> {
        let pattern = regex::Regex::new(r"(?m)^\s*defaultMode: (0[0-7]+)\s*$").unwrap();
        let mut modes: Vec<u64> = pattern
            .captures_iter(text)
            .map(|c| u64::from_str_radix(&c[1], 8).unwrap())
            .collect();
        modes.sort_unstable();
        modes
    }

    fn modes_in(value: &Value, out: &mut Vec<u64>) {
        match value {
            Value::Object(map) => {
                for (key, field) in map {
                    match field.as_u64() {
                        Some(mode) if key == "defaultMode" => out.push(mode),
                        _ => modes_in(field, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| modes_in(item, out)),
            _ => {}
        }
    }

    /// Real charts rendered by real helm (tests/fixtures/manifests/README.md): every object
    /// parses, and every file mode is the number helm sends (0755 is 493, not 755).
    #[test]
    fn real_manifests_read_octal_modes_as_helm_does() {
        for (chart, expected_modes) in [
            ("fluentd", vec![0o777, 0o777]),
            ("redis-ha", vec![0o755]),
            ("filebeat", vec![0o600]),
            ("kibana", vec![0o755, 0o755]),
        ] {
            let path = format!("tests/fixtures/manifests/{chart}.yaml");
            let text = std::fs::read_to_string(&path).unwrap();
            let documents = parse_documents(text.as_bytes()).unwrap();
            assert_eq!(documents.len(), text.matches("\nkind: ").count(), "{chart}");
            assert_eq!(octal_modes_in(&text), expected_modes, "{chart}");
            let mut modes = Vec::new();
            documents.iter().for_each(|d| modes_in(&d.body, &mut modes));
            modes.sort_unstable();
            assert_eq!(modes, expected_modes, "{chart}");
        }
    }

    #[test]
    fn reads_yaml_1_1_as_helm_does() {
        let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yes\ndata:\n  a: on\n  b: '0644'\n  c: 1.0\n";
        let docs = parse_documents(manifest.as_bytes()).unwrap();
        assert_eq!(docs[0].object.name, "true");
        assert_eq!(docs[0].body["data"]["a"], true);
        assert_eq!(docs[0].body["data"]["b"], "0644");
        assert_eq!(docs[0].body["data"]["c"], 1);
    }
}
