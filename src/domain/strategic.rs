//! The directives of helm's strategic three-way patch that a plain strategic merge of the target
//! object lacks: `$retainKeys` where a field's patch strategy asks for it, and `$patch: delete`
//! for the items of merged lists that the rollback removes. Without them the dry run predicts a
//! merge that helm does not make: an invalid object where helm writes a valid one (a refusal
//! native helm would not make), or an item kept that helm deletes (a false drift).

use serde_json::Value;

use crate::domain::dry_run::client_side_patch;

/// Adds the directives helm's strategic three-way patch carries and a plain merge of the target
/// lacks (see [`add_retain_keys`] and [`add_list_deletions`]).
pub fn add_strategic_directives(patch: &mut Value, original: Option<&Value>, kind: &str) {
    add_retain_keys(patch, kind);
    if let Some(original) = original {
        add_list_deletions(patch, original, kind);
    }
}

/// Adds the `$retainKeys` directives helm's strategic three-way patch carries for the fields
/// whose patch strategy is `retainKeys` (a Deployment's `spec.strategy`, each of a pod spec's
/// `volumes` and `resourceClaims`): the server then drops every key of the live map the target
/// does not set. Without them, a rollback from the default rolling update to `Recreate` keeps
/// the live `rollingUpdate` beside it (which the server rejects), and a volume whose source
/// changes keeps both sources.
fn add_retain_keys(patch: &mut Value, kind: &str) {
    if kind == "Deployment" {
        if let Some(strategy) = patch.pointer_mut("/spec/strategy") {
            retain_keys(strategy);
        }
    }
    let Some(pod_spec) = pod_spec_pointer(kind) else {
        return;
    };
    for list in ["volumes", "resourceClaims"] {
        let pointer = format!("{pod_spec}/{list}");
        if let Some(Value::Array(items)) = patch.pointer_mut(&pointer) {
            items.iter_mut().for_each(retain_keys);
        }
    }
}

/// The lists a strategic merge patch merges item by item, by their merge key, under a pod spec.
const POD_SPEC_LISTS: [(&str, &str); 9] = [
    ("containers", "name"),
    ("initContainers", "name"),
    ("ephemeralContainers", "name"),
    ("volumes", "name"),
    ("imagePullSecrets", "name"),
    ("hostAliases", "ip"),
    ("topologySpreadConstraints", "topologyKey"),
    ("resourceClaims", "name"),
    ("schedulingGates", "name"),
];

/// The same, under each container.
const CONTAINER_LISTS: [(&str, &str); 4] = [
    ("env", "name"),
    ("ports", "containerPort"),
    ("volumeMounts", "mountPath"),
    ("volumeDevices", "devicePath"),
];

/// Makes the target's merged lists say what helm's three-way patch says of them: an item the
/// manifest helm rolls back from has and the target does not is deleted (`$patch: delete`, by
/// its merge key), and a field an item had and the target's same item drops is removed (`null`),
/// in the item's own merged lists too (a container's env, ports, mounts). A plain merge of the
/// target's lists into the live ones would keep an env variable, a port, a sidecar or a
/// container's field that the rollback removes.
fn add_list_deletions(patch: &mut Value, original: &Value, kind: &str) {
    if kind == "Service" {
        merge_list(patch, original, "/spec/ports", "port", &[]);
    }
    let Some(pod_spec) = pod_spec_pointer(kind) else {
        return;
    };
    for (list, key) in POD_SPEC_LISTS {
        let nested: &[(&str, &str)] = match list {
            "containers" | "initContainers" | "ephemeralContainers" => &CONTAINER_LISTS,
            _ => &[],
        };
        merge_list(patch, original, &format!("{pod_spec}/{list}"), key, nested);
    }
}

/// The list at `pointer`, merged by `key`: matched items patched three ways against their
/// original (their own lists in `nested` likewise), the original's unmatched items deleted.
fn merge_list(
    patch: &mut Value,
    original: &Value,
    pointer: &str,
    key: &str,
    nested: &[(&str, &str)],
) {
    let (Some(Value::Array(items)), Some(Value::Array(befores))) =
        (patch.pointer_mut(pointer), original.pointer(pointer))
    else {
        return;
    };
    for item in items.iter_mut() {
        let Some(id) = item.get(key).cloned() else {
            continue;
        };
        let Some(before) = befores.iter().find(|b| b.get(key) == Some(&id)) else {
            continue;
        };
        *item = client_side_patch(item, Some(before));
        for (list, list_key) in nested {
            merge_list(item, before, &format!("/{list}"), list_key, &[]);
        }
    }
    let gone: Vec<Value> = befores
        .iter()
        .filter_map(|before| before.get(key))
        .filter(|value| !items.iter().any(|item| item.get(key) == Some(value)))
        .map(|value| serde_json::json!({key: value, "$patch": "delete"}))
        .collect();
    items.extend(gone);
}

/// Where a kind keeps its pod spec.
fn pod_spec_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("/spec"),
        "PodTemplate" => Some("/template/spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some("/spec/template/spec"),
        "CronJob" => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    }
}

/// `$retainKeys`: the map's keys that have a value, sorted (as helm's patch lists them).
fn retain_keys(map: &mut Value) {
    let Some(map) = map.as_object_mut() else {
        return;
    };
    let mut keys: Vec<Value> = map
        .iter()
        .filter(|(key, value)| !key.starts_with('$') && !value.is_null())
        .map(|(key, _)| Value::String(key.clone()))
        .collect();
    keys.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    if !keys.is_empty() {
        map.insert("$retainKeys".into(), Value::Array(keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A rollback from the default rolling update back to `Recreate`, and a volume whose source
    /// changes: helm's patch keeps only the target's keys there.
    #[test]
    fn retain_keys_fields_keep_only_the_targets_keys() {
        let target = json!({"kind": "Deployment", "spec": {
            "strategy": {"type": "Recreate"},
            "template": {"spec": {"volumes": [{"name": "scratch", "configMap": {"name": "c"}}]}}}});
        let original = json!({"kind": "Deployment", "spec": {
            "template": {"spec": {"volumes": [{"name": "scratch", "emptyDir": {}}]}}}});
        let mut patch = client_side_patch(&target, Some(&original));
        add_strategic_directives(&mut patch, Some(&original), "Deployment");
        assert_eq!(
            patch["spec"]["strategy"],
            json!({"type": "Recreate", "$retainKeys": ["type"]})
        );
        assert_eq!(
            patch["spec"]["template"]["spec"]["volumes"][0]["$retainKeys"],
            json!(["configMap", "name"])
        );
        let mut service = json!({"kind": "Service", "spec": {"strategy": {"type": "x"}}});
        add_strategic_directives(&mut service, None, "Service");
        assert!(service["spec"]["strategy"].get("$retainKeys").is_none());
    }

    /// cert-manager's `extraEnv`: revision 2 adds an env item, the rollback to 1 removes it;
    /// a port and a sidecar the same way.
    #[test]
    fn items_the_target_no_longer_has_are_deleted_by_their_merge_key() {
        let container =
            |env: Value, ports: Value| json!({"name": "web", "env": env, "ports": ports});
        let pod =
            |containers: Value| json!({"spec": {"template": {"spec": {"containers": containers}}}});
        let target = pod(json!([container(
            json!([{"name": "A", "value": "1"}]),
            json!([{"containerPort": 80}])
        )]));
        let original = pod(json!([
            container(json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]),
                      json!([{"containerPort": 80}, {"containerPort": 9090}])),
            {"name": "sidecar", "image": "x"}
        ]));
        let mut patch = client_side_patch(&target, Some(&original));
        add_strategic_directives(&mut patch, Some(&original), "Deployment");
        let containers = &patch["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "$patch": "delete"})
        );
        assert_eq!(
            containers[0]["env"][1],
            json!({"name": "B", "$patch": "delete"})
        );
        assert_eq!(
            containers[0]["ports"][1],
            json!({"containerPort": 9090, "$patch": "delete"})
        );
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);

        // fluent-bit's `env`: revision 2 gave the container an env, revision 1 has none.
        let bare = pod(json!([{"name": "web"}]));
        let mut patch = client_side_patch(&bare, Some(&original));
        add_strategic_directives(&mut patch, Some(&original), "Deployment");
        let web = &patch["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(web["env"], Value::Null);
        assert!(web.as_object().unwrap().contains_key("env"), "{web}");
        // An env item from valueFrom back to value: helm's patch removes valueFrom.
        let from =
            pod(json!([{"name": "web", "env": [{"name": "A", "valueFrom": {"fieldRef": {}}}]}]));
        let to = pod(json!([{"name": "web", "env": [{"name": "A", "value": "1"}]}]));
        let mut patch = client_side_patch(&to, Some(&from));
        add_strategic_directives(&mut patch, Some(&from), "Deployment");
        assert_eq!(
            patch["spec"]["template"]["spec"]["containers"][0]["env"][0],
            json!({"name": "A", "value": "1", "valueFrom": null})
        );
    }
}
