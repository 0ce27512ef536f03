//! Fields that cannot change in place: the preflight's dry run of helm's own write is rejected
//! because the target changes a field the API server keeps from creation (a workload's
//! selector, a StatefulSet's `volumeClaimTemplates`, a Job's template, a Service's
//! `clusterIP`). helm fails on the same write, after it has written the objects before it.
//!
//! helm's own way past it does not help: helm 3's `--force` and helm 4's `--force-replace`
//! replace the object with a PUT (`helper.Replace` in helm's kube client), which the API server
//! rejects for the same field; helm 4 refuses `--force-replace` together with server-side
//! apply. What works for a workload is deleting it with `--cascade=orphan` (its pods keep
//! running) and letting the rollback create it again, which adopts them where the selector
//! matches. Pure: the pipeline reads the live objects and does the deletes.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::model::ObjectRef;

/// What the API server says of a field it keeps from creation.
const IMMUTABLE: [&str; 4] = [
    "field is immutable",
    "may not change once set",
    "updates to statefulset spec for fields other than",
    "spec is immutable after creation",
];

/// The StatefulSet spec fields an update may change (the API server's validation names them
/// in its message); every other one is what the message forbids.
const STATEFULSET_MUTABLE: [&str; 7] = [
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
    "revisionHistoryLimit",
];

/// One field of one object the rollback cannot change in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImmutableChange {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub field: String,
    /// Compact JSON of the live and the target value; `None` for a ConfigMap's or Secret's
    /// data, which is never printed, or where the object has no such field.
    pub live: Option<String>,
    pub target: Option<String>,
    /// A workload whose controller's pods survive an orphaning delete: `--replace-immutable`
    /// deletes it that way and the rollback creates it again.
    pub replaceable: bool,
    /// The uid of the live object, the precondition of that delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// What gets past it by hand, in order.
    pub commands: Vec<String>,
}

/// The fields a rejection message names as unchangeable (`spec.selector`), in order; empty
/// when the rejection is about something else.
pub fn immutable_fields(message: &str) -> Vec<String> {
    let start = Regex::new(
        r"(?:is invalid: \[?|, )([A-Za-z][\w.\[\]/-]*): (?:Invalid value|Forbidden|Unsupported value|Required value)",
    )
    .expect("a valid regex");
    let starts: Vec<(usize, String)> = start
        .captures_iter(message)
        .map(|c| (c.get(0).unwrap().start(), c[1].to_string()))
        .collect();
    let mut fields = Vec::new();
    for (i, (at, field)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(message.len(), |(next, _)| *next);
        let error = &message[*at..end];
        if IMMUTABLE.iter().any(|words| error.contains(words)) && !fields.contains(field) {
            fields.push(field.clone());
        }
    }
    fields
}

/// What a rejected object changes that it cannot: `None` when its rejection is about anything
/// else. `live` is the object as the API server returns it, `target` as the rollback writes it.
pub fn changes(
    object: &ObjectRef,
    message: &str,
    live: Option<&Value>,
    target: Option<&Value>,
) -> Option<Vec<ImmutableChange>> {
    let mut fields = immutable_fields(message);
    if fields.is_empty() {
        return None;
    }
    if object.kind == "StatefulSet" && fields == ["spec"] {
        let forbidden = forbidden_statefulset_fields(live, target);
        if !forbidden.is_empty() {
            fields = forbidden;
        }
    }
    let data = matches!(object.kind.as_str(), "Secret" | "ConfigMap");
    let shown = |body: Option<&Value>, field: &str| match data {
        true => None,
        // `spec.clusterIPs[0]` is what a manifest usually writes as `spec.clusterIP`.
        false => body
            .and_then(|b| at_path(b, field).or_else(|| at_path(b, field.strip_suffix("s[0]")?)))
            .map(compact),
    };
    let uid = live
        .and_then(|l| l.pointer("/metadata/uid"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let changes = fields
        .iter()
        .map(|field| ImmutableChange {
            kind: object.kind.clone(),
            namespace: live
                .and_then(|l| l.pointer("/metadata/namespace"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or(object.namespace.clone()),
            name: object.name.clone(),
            field: field.clone(),
            live: shown(live, field),
            target: shown(target, field),
            replaceable: replaceable(object) && uid.is_some(),
            uid: uid.clone(),
            commands: Vec::new(),
        })
        .collect();
    Some(changes)
}

/// Workloads whose pods outlive an orphaning delete of their controller object. Never a
/// PersistentVolumeClaim (its volume can go with it) and never a Service (its address would).
fn replaceable(object: &ObjectRef) -> bool {
    matches!(
        (object.api_version.as_str(), object.kind.as_str()),
        (
            "apps/v1",
            "Deployment" | "DaemonSet" | "StatefulSet" | "ReplicaSet"
        ) | ("batch/v1", "Job")
    )
}

/// The StatefulSet spec fields the target sets to something the live object does not have.
/// The live object carries the server's defaults; a target value contained in the live one
/// is no change.
fn forbidden_statefulset_fields(live: Option<&Value>, target: Option<&Value>) -> Vec<String> {
    let (Some(live), Some(target)) = (live, target) else {
        return Vec::new();
    };
    let live_spec = live.get("spec");
    let Some(target_spec) = target.get("spec").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut fields: Vec<String> = target_spec
        .iter()
        .filter(|(key, _)| !STATEFULSET_MUTABLE.contains(&key.as_str()))
        .filter(|(key, value)| !contained(value, live_spec.and_then(|s| s.get(key.as_str()))))
        .map(|(key, _)| format!("spec.{key}"))
        .collect();
    fields.sort();
    fields
}

/// Whether everything `wanted` says is in `have` (maps by key, lists item by item).
fn contained(wanted: &Value, have: Option<&Value>) -> bool {
    match (wanted, have) {
        (Value::Null, None) => true,
        (_, None) => false,
        (Value::Object(wanted), Some(Value::Object(have))) => wanted
            .iter()
            .all(|(key, value)| contained(value, have.get(key))),
        (Value::Array(wanted), Some(Value::Array(have))) => {
            wanted.len() == have.len()
                && wanted.iter().zip(have).all(|(w, h)| contained(w, Some(h)))
        }
        (wanted, Some(have)) => wanted == have,
    }
}

/// The value at a field path as the API server writes it: `spec.selector`, `spec.clusterIPs[0]`.
fn at_path<'v>(body: &'v Value, path: &str) -> Option<&'v Value> {
    let mut value = body;
    for step in path.split('.') {
        let (name, index) = match step.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (step, None),
        };
        value = value.get(name)?;
        if let Some(index) = index {
            value = value.get(index)?;
        }
    }
    Some(value)
}

/// A value on one line, cut short when long.
fn compact(value: &Value) -> String {
    const MAX: usize = 200;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

impl ImmutableChange {
    /// `Kind/namespace/name`.
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{}/{namespace}/{}", self.kind, self.name),
            None => format!("{}/{}", self.kind, self.name),
        }
    }

    /// The commands that get past it by hand, for a workload: orphan it, then roll back again.
    pub fn with_commands(mut self, delete_command: String, rollback_command: &str) -> Self {
        if self.replaceable {
            self.commands = vec![
                format!("{delete_command} --cascade=orphan"),
                rollback_command.to_string(),
            ];
        }
        self
    }

    /// Why preflight refuses, with the way out.
    pub fn refusal(&self) -> String {
        let values = match (&self.live, &self.target) {
            (Some(live), Some(target)) => format!(" (live {live}, target {target})"),
            (Some(live), None) => format!(" (live {live}, the target leaves it unset)"),
            (None, Some(target)) => format!(" (target {target})"),
            (None, None) => String::new(),
        };
        let way_out = match self.commands.as_slice() {
            [] => format!(
                "delete and re-create {} by hand to change it",
                self.object()
            ),
            commands => format!(
                "without downtime, its pods kept running: `{}`, or pass --replace-immutable to \
                 do both",
                commands.join("`, then `")
            ),
        };
        format!(
            "the API server does not let the rollback change {} of {} in place{values}: helm \
             would fail on it, after writing the objects before it; {way_out}. helm 3's --force \
             and helm 4's --force-replace replace the object with a PUT, which the API server \
             rejects the same way (and helm 4 refuses --force-replace with server-side apply)",
            self.field,
            self.object()
        )
    }
}

#[cfg(test)]
#[path = "immutable_tests.rs"]
mod tests;
