//! Every JSON document our runs print is checked against its published schema
//! (docs/schema/KIND.schema.json, picked by the document's `kind`) as the tests read it, so
//! the whole e2e suite proves the contract, not one sample.

use std::sync::OnceLock;

use jsonschema::{Registry, Validator};
use serde_json::Value;

const KINDS: [&str; 3] = ["rollback", "diagnosis", "incident"];

fn schema(kind: &str) -> Value {
    let path = format!(
        "{}/docs/schema/{kind}.schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn validators() -> &'static Vec<(&'static str, Validator)> {
    static VALIDATORS: OnceLock<Vec<(&'static str, Validator)>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let schemas: Vec<(String, Value)> = KINDS
            .iter()
            .map(|kind| {
                let schema = schema(kind);
                (
                    schema["$id"]
                        .as_str()
                        .expect("every schema has an $id")
                        .to_string(),
                    schema,
                )
            })
            .collect();
        let registry = Registry::new()
            .extend(
                schemas
                    .iter()
                    .map(|(id, schema)| (id.as_str(), schema.clone())),
            )
            .and_then(|builder| builder.prepare())
            .expect("the schemas register");
        KINDS
            .iter()
            .zip(&schemas)
            .map(|(kind, (_, schema))| {
                let validator = jsonschema::options()
                    .with_registry(&registry)
                    .build(schema)
                    .unwrap_or_else(|e| panic!("docs/schema/{kind}.schema.json: {e}"));
                (*kind, validator)
            })
            .collect()
    })
}

/// The schema errors of one of our documents, by its `kind`; `None` for JSON that is not ours
/// (helm's, kubectl's).
pub fn violations(document: &Value) -> Option<Vec<String>> {
    let kind = document.get("kind")?.as_str()?;
    let (_, validator) = validators().iter().find(|(k, _)| *k == kind)?;
    let errors = validator.iter_errors(document);
    Some(
        errors
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect(),
    )
}
