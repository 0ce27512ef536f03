//! The published JSON Schemas (docs/schema/) against the documents the docs show, and against
//! what they must refuse. Every document the e2e suite reads is validated too (tests/support).

mod support;

use serde_json::Value;
use support::schema::violations;

/// The JSON documents of `file`'s code blocks that start with `{` after the line `prefix`.
fn examples(file: &str, fence: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for block in text.split(fence).skip(1) {
        let body = &block[..block.find("```").unwrap()];
        let Some(start) = body.find("\n{") else {
            continue;
        };
        let json = &body[start..];
        let end = json.rfind("\n}").map(|i| i + 2).unwrap_or(json.len());
        if let Ok(value) = serde_json::from_str::<Value>(&json[..end]) {
            out.push(value);
        }
    }
    out
}

#[test]
fn the_documented_examples_are_valid() {
    let mut checked = 0;
    for (file, fence) in [
        ("docs/json.md", "```json"),
        ("docs/failures.md", "```json"),
        ("docs/diagnose.md", "```\n$ helm safe-rollback"),
    ] {
        for example in examples(file, fence)
            .into_iter()
            .filter(|e| e.get("release").is_some())
        {
            if example.get("kind").is_none() {
                continue; // an excerpt
            }
            let errors = violations(&example).expect("one of our kinds");
            assert!(errors.is_empty(), "{file}: {errors:#?}");
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} examples found");
}

#[test]
fn the_schemas_refuse_a_missing_key_an_unknown_key_and_a_wrong_type() {
    let json = std::fs::read_to_string("docs/json.md").unwrap();
    let start = json.find("```json\n").unwrap() + 8;
    let example: Value =
        serde_json::from_str(&json[start..start + json[start..].find("```").unwrap()]).unwrap();
    let mut missing = example.clone();
    missing.as_object_mut().unwrap().remove("outcome");
    let mut unknown = example.clone();
    unknown["outcome_v2"] = "succeeded".into();
    let mut wrong = example.clone();
    wrong["exit_code"] = "0".into();
    let mut bad_entry = example.clone();
    bad_entry["leftovers"][0]
        .as_object_mut()
        .unwrap()
        .remove("uid");
    for (what, document) in [
        ("missing", missing),
        ("unknown", unknown),
        ("wrong", wrong),
        ("entry", bad_entry),
    ] {
        let errors = violations(&document).unwrap();
        assert!(!errors.is_empty(), "{what}: accepted");
    }
    let other = serde_json::json!({"kind": "Pod", "apiVersion": "v1"});
    assert_eq!(
        violations(&other),
        None,
        "JSON that is not ours is not judged"
    );
}
