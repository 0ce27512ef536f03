//! `--output yaml`: the JSON document, as YAML. Keys come out sorted, as helm's own `-o yaml`
//! prints them (it converts through JSON); strings a YAML 1.1 reader would take for another
//! type (`yes`, `on`, `1e3`) are quoted by the emitter.

use serde::Serialize;
use serde_json::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

pub fn render_yaml(document: &impl Serialize) -> String {
    let value = serde_json::to_value(document).expect("a report serialises");
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    emitter.dump(&to_yaml(value)).expect("writing to a String");
    // The emitter opens a document (`---`); helm's `-o yaml` does not.
    let body = out
        .strip_prefix("---")
        .unwrap_or(&out)
        .trim_start_matches('\n');
    format!("{body}\n")
}

fn to_yaml(value: Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s),
        Value::Array(items) => Yaml::Array(items.into_iter().map(to_yaml).collect()),
        Value::Object(map) => {
            let mut hash = Hash::new();
            for (key, value) in map {
                hash.insert(Yaml::String(key), to_yaml(value));
            }
            Yaml::Hash(hash)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::yaml11;

    /// A real report (docs/json.md's example is one) reads back as the same document, by a
    /// YAML 1.1 reader too.
    #[test]
    fn the_yaml_is_the_json_document() {
        let docs = std::fs::read_to_string("docs/json.md").unwrap();
        let start = docs.find("```json\n").unwrap() + "```json\n".len();
        let end = start + docs[start..].find("```").unwrap();
        let json: Value = serde_json::from_str(&docs[start..end]).unwrap();
        let mut tricky = json.clone();
        tricky["warnings"] =
            serde_json::json!(["yes", "on", "1e3", "0x1F", "a: b", "two\nlines", ""]);
        for document in [json, tricky] {
            let yaml = render_yaml(&document);
            assert!(!yaml.starts_with("---"), "{yaml}");
            let back = yaml11::documents(&yaml).unwrap();
            assert_eq!(back, [document], "{yaml}");
        }
    }
}
