//! After helm reports success: do the live objects match the target revision?
//!
//! The reference is the API server's own answer to "what would writing the target revision onto
//! the live objects produce?" — a dry run of the very write helm makes (see `dry_run`), done
//! after the rollback. The server normalises both sides the same way (defaults, quantities
//! like `1000m` and `1`, int-or-string ports, `null`s and empty maps it drops), so what differs
//! is real: a field the rollback did not set, an object it did not create, or a target the
//! server rejects outright (then the live state cannot be the target's, whatever helm printed).
//! Only the paths the write sets are compared: status, server-managed metadata and fields other
//! managers own are not the revision's business.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::domain::live::identity_of;
use crate::domain::manifest::Document;
use crate::domain::model::{LiveObject, ObjectRef};

/// One object unlike the target revision, and how.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Drift {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// Each differing field (empty when the object is missing or rejected).
    pub fields: Vec<FieldDiff>,
    /// Why there is nothing to compare: the object is missing, or the server rejects the target.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct FieldDiff {
    /// e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    pub expected: Value,
    pub live: Value,
}

impl Drift {
    /// `Kind/namespace/name`.
    pub fn object(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// What verification compares, per target object.
pub struct Inputs<'a> {
    pub targets: &'a [Document],
    /// The manifest helm rolled back from: fields it set that the target drops must be gone.
    pub originals: &'a [Document],
    /// The server's dry-run rendition of the target written onto the live objects.
    pub rendered: &'a [Value],
    /// The server's rejections of target objects, by object.
    pub rejected: &'a [(ObjectRef, String)],
    pub live: &'a [Value],
    pub release_namespace: &'a str,
}

/// Every target object unlike its rendition. Objects the server gave no verdict on (neither
/// rendered nor rejected) are not judged: the caller reports verification as incomplete.
pub fn drifted(inputs: &Inputs) -> Vec<Drift> {
    let namespace = inputs.release_namespace;
    let rendered = Identified::new(inputs.rendered);
    let live = Identified::new(inputs.live);
    let mut drifts = Vec::new();
    for target in inputs.targets {
        let object = &target.object;
        let mut drift = Drift {
            kind: object.kind.clone(),
            namespace: object.namespace_or(namespace).to_string(),
            name: object.name.clone(),
            fields: Vec::new(),
            reason: None,
        };
        if let Some((_, message)) = inputs.rejected.iter().find(|(r, _)| r == object) {
            drift.reason = Some(format!("the API server rejects the target: {message}"));
            drifts.push(drift);
            continue;
        }
        let Some(expected) = rendered.find(object, namespace) else {
            continue;
        };
        let Some(live) = live.find(object, namespace) else {
            drift.reason = Some("the object does not exist".into());
            drifts.push(drift);
            continue;
        };
        let original = inputs.originals.iter().find(|o| o.object == *object);
        let shape =
            crate::domain::dry_run::client_side_patch(&target.body, original.map(|o| &o.body));
        let secret = object.kind == "Secret" && object.group().is_empty();
        compare(
            &shape,
            expected,
            live,
            &mut Path::root(secret),
            &mut drift.fields,
        );
        if !drift.fields.is_empty() {
            drifts.push(drift);
        }
    }
    drifts
}

/// Where in an object we are, and whether values there are a Secret's (never shown).
struct Path {
    segments: Vec<String>,
    secret: bool,
}

impl Path {
    fn root(secret: bool) -> Path {
        Path {
            segments: Vec::new(),
            secret,
        }
    }

    fn text(&self) -> String {
        let mut text = String::new();
        for segment in &self.segments {
            if !segment.starts_with('[') && !text.is_empty() {
                text.push('.');
            }
            text.push_str(segment);
        }
        text
    }

    fn shown(&self, value: &Value) -> Value {
        let secret_data = self.secret
            && matches!(
                self.segments.first().map(String::as_str),
                Some("data" | "stringData")
            );
        if secret_data && !value.is_null() {
            Value::String("<redacted>".into())
        } else {
            value.clone()
        }
    }
}

/// Walks the paths `shape` sets; where the rendition and the live object differ, descends as
/// far as both go, so each difference is named by its own path.
fn compare(
    shape: &Value,
    expected: &Value,
    live: &Value,
    path: &mut Path,
    out: &mut Vec<FieldDiff>,
) {
    if let Value::Object(fields) = shape {
        for (key, sub_shape) in fields {
            path.segments.push(key.clone());
            let none = Value::Null;
            let expected = expected.get(key).unwrap_or(&none);
            let live = live.get(key).unwrap_or(&none);
            compare(sub_shape, expected, live, path, out);
            path.segments.pop();
        }
        return;
    }
    differences(expected, live, path, out);
}

/// Every leaf where two server-rendered values differ.
fn differences(expected: &Value, live: &Value, path: &mut Path, out: &mut Vec<FieldDiff>) {
    if expected == live {
        return;
    }
    match (expected, live) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let none = Value::Null;
            for key in keys {
                path.segments.push(key.clone());
                differences(
                    a.get(key).unwrap_or(&none),
                    b.get(key).unwrap_or(&none),
                    path,
                    out,
                );
                path.segments.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (a, b)) in a.iter().zip(b).enumerate() {
                path.segments.push(format!("[{index}]"));
                differences(a, b, path, out);
                path.segments.pop();
            }
        }
        _ => out.push(FieldDiff {
            path: path.text(),
            expected: path.shown(expected),
            live: path.shown(live),
        }),
    }
}

/// Objects by (group, kind, name), their identities read once: looking each document up by
/// reading every object's identity again was quadratic, 130 ms at 500 objects.
struct Identified<'a> {
    by_name: HashMap<GroupKindName, Vec<(LiveObject, &'a Value)>>,
}

type GroupKindName = (String, String, String);

impl<'a> Identified<'a> {
    fn new(objects: &'a [Value]) -> Identified<'a> {
        let mut by_name: HashMap<_, Vec<_>> = HashMap::new();
        for object in objects {
            if let Some(identity) = identity_of(object) {
                let group = identity.api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let key = (
                    group.to_string(),
                    identity.kind.clone(),
                    identity.name.clone(),
                );
                by_name.entry(key).or_default().push((identity, object));
            }
        }
        Identified { by_name }
    }

    fn find(&self, object: &ObjectRef, release_namespace: &str) -> Option<&'a Value> {
        let key = (
            object.group().to_string(),
            object.kind.clone(),
            object.name.clone(),
        );
        self.by_name
            .get(&key)?
            .iter()
            .find(|(identity, _)| identity.is(object, release_namespace))
            .map(|(_, value)| *value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::manifest::parse_documents;
    use serde_json::json;

    fn widget(size: i64, extra: Value) -> Value {
        json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                         "annotations": {"meta.helm.sh/release-name": "r"}},
            "spec": {"size": size, "color": "blue", "parts": [{"name": "a", "n": 1}]},
            "status": extra,
        })
    }

    fn manifest() -> Vec<Document> {
        parse_documents(
            b"apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 1\n  parts:\n  - name: a\n",
        )
        .unwrap()
    }

    fn check(rendered: &[Value], live: &[Value], rejected: &[(ObjectRef, String)]) -> Vec<Drift> {
        let targets = manifest();
        drifted(&Inputs {
            targets: &targets,
            originals: &[],
            rendered,
            rejected,
            live,
            release_namespace: "ns",
        })
    }

    #[test]
    fn only_paths_the_manifest_sets_are_compared() {
        let rendered = [widget(1, json!({"ready": false}))];
        // Different status, resourceVersion and a field the manifest does not set: not drift.
        let mut live = widget(1, json!({"ready": true}));
        live["metadata"]["resourceVersion"] = json!("9");
        live["spec"]["color"] = json!("red");
        assert_eq!(check(&rendered, &[live], &[]), vec![]);
    }

    #[test]
    fn each_changed_field_is_named_with_both_values() {
        let rendered = [widget(1, json!({}))];
        let mut live = widget(5, json!({}));
        live["spec"]["parts"][0]["n"] = json!(2);
        let drifts = check(&rendered, &[live], &[]);
        assert_eq!(drifts.len(), 1);
        assert_eq!(drifts[0].object(), "Widget/ns/w");
        assert_eq!(
            drifts[0].fields,
            vec![
                FieldDiff {
                    path: "spec.parts[0].n".into(),
                    expected: json!(1),
                    live: json!(2)
                },
                FieldDiff {
                    path: "spec.size".into(),
                    expected: json!(1),
                    live: json!(5)
                },
            ]
        );
    }

    #[test]
    fn a_missing_or_rejected_object_is_drift_and_one_without_verdict_is_not_judged() {
        let missing = check(&[widget(1, json!({}))], &[], &[]);
        assert_eq!(
            missing[0].reason.as_deref(),
            Some("the object does not exist")
        );
        assert_eq!(check(&[], &[widget(1, json!({}))], &[]), vec![]);
        let object = manifest()[0].object.clone();
        let rejected = check(&[], &[widget(1, json!({}))], &[(object, "invalid".into())]);
        assert_eq!(
            rejected[0].reason.as_deref(),
            Some("the API server rejects the target: invalid")
        );
    }

    #[test]
    fn a_secrets_values_are_never_shown() {
        let targets = parse_documents(
            b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: YQ==\n",
        )
        .unwrap();
        let secret = |value: &str| {
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "s", "namespace": "ns"}, "data": {"password": value}})
        };
        let drifts = drifted(&Inputs {
            targets: &targets,
            originals: &[],
            rendered: &[secret("YQ==")],
            rejected: &[],
            live: &[secret("Yg==")],
            release_namespace: "ns",
        });
        let shown = serde_json::to_string(&drifts).unwrap();
        assert!(shown.contains("data.password"), "{shown}");
        assert!(
            !shown.contains("YQ==") && !shown.contains("Yg=="),
            "{shown}"
        );
    }
}
