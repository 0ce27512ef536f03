//! How to ask the API server what *this* helm's rollback would do to each object, changing
//! nothing, and how to read its answer. Pure: the requests are sent by the kubectl adapter.
//!
//! The dry run must be faithful to the helm that will run, or the preflight blocks what helm
//! would do (a server-side apply that this API server cannot process, where helm patches) or
//! passes what helm would fail. So:
//! - helm 3, and helm 4 when the release is not server-side applied, update client-side: a
//!   missing object is created, an existing one is patched with a strategic merge patch
//!   (built-in kinds) or a JSON merge patch (custom resources), computed three ways from the
//!   manifest helm rolls back from; we send the target object with `null` wherever the old
//!   manifest set a field the target drops (helm's patch removes those);
//! - helm 4 with `--server-side=true`, or `auto` on a release installed server-side, applies
//!   server-side as the field manager `helm`.
//!
//! And only the server's objection to an object itself refuses a rollback; a dry run that could
//! not be done (a webhook without dry-run support, a 5xx, RBAC) is no verdict and is reported as
//! a check that did not run.

use serde_json::{Map, Value};

use crate::domain::model::{RELEASE_NAMESPACE_ANNOTATION, RELEASE_NAME_ANNOTATION};

/// How the rollback will write objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WriteMethod {
    ServerSideApply,
    ClientSide,
}

/// The field manager helm 4 applies as (helm 3 names itself after its binary; it never applies).
pub const HELM_FIELD_MANAGER: &str = "helm";

/// Which method a helm of `major` version uses: `server_side` is helm 4's `--server-side` when
/// it names one (`None`: not given, or `auto`), `release_method` the target revision's recorded
/// `applyMethod` (`ssa` / `csa`).
pub fn write_method(
    major: u64,
    server_side: Option<bool>,
    release_method: Option<&str>,
) -> WriteMethod {
    if major < 4 {
        return WriteMethod::ClientSide;
    }
    let server_side = server_side.unwrap_or(release_method == Some("ssa"));
    if server_side {
        WriteMethod::ServerSideApply
    } else {
        WriteMethod::ClientSide
    }
}

/// Whether helm patches this group's objects with a strategic merge patch: the groups whose
/// types are compiled into helm. Anything else is a custom resource, patched with a JSON merge
/// patch; a CRD group that looks built-in is caught by the server's 415 and retried.
pub fn takes_strategic_merge(api_version: &str) -> bool {
    match api_version.rsplit_once('/') {
        None => true,
        Some((group, _)) => {
            matches!(
                group,
                "apps" | "batch" | "autoscaling" | "policy" | "extensions"
            ) || group.ends_with(".k8s.io")
        }
    }
}

/// The patch helm's client-side update sends, approximately: the target object, plus `null`
/// for every map key the manifest helm rolls back from set and the target does not (helm's
/// three-way patch deletes those). A key the target leaves empty (`annotations:` with nothing
/// under it, common in real charts) is no instruction at all unless the old manifest had a
/// value there: helm's patch then deletes it, otherwise leaves the live value alone. Lists are
/// the target's own (their merge is the server's).
pub fn client_side_patch(target: &Value, original: Option<&Value>) -> Value {
    match (target, original) {
        (Value::Object(target), original) => {
            let original = original.and_then(Value::as_object);
            let mut patch = Map::new();
            for (key, value) in target {
                let before = original.and_then(|o| o.get(key));
                if value.is_null() && before.is_none_or(Value::is_null) {
                    continue;
                }
                patch.insert(key.clone(), client_side_patch(value, before));
            }
            for (key, value) in original.into_iter().flatten() {
                if !target.contains_key(key) && !value.is_null() {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => target.clone(),
    }
}

/// The label helm puts on every object it writes, beside the two ownership annotations.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The target object as helm writes it: before its update, helm's rollback (and install and
/// upgrade) merges its ownership metadata into every target object — the label
/// `app.kubernetes.io/managed-by: Helm` and the release name and namespace annotations, over
/// whatever the chart set there. A model of the write without them would remove helm's own
/// annotations wherever the chart renders none.
pub fn stamp_ownership(body: &mut Value, release: &str, release_namespace: &str) {
    let Some(object) = body.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    let metadata = metadata.as_object_mut().expect("just made an object");
    merge_strings(metadata, "labels", &[(MANAGED_BY_LABEL, "Helm")]);
    merge_strings(
        metadata,
        "annotations",
        &[
            (RELEASE_NAME_ANNOTATION, release),
            (RELEASE_NAMESPACE_ANNOTATION, release_namespace),
        ],
    );
}

/// Sets `pairs` in the string map `metadata[key]`, making it when the chart left it empty.
fn merge_strings(metadata: &mut Map<String, Value>, key: &str, pairs: &[(&str, &str)]) {
    let map = metadata
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !map.is_object() {
        *map = Value::Object(Map::new());
    }
    let map = map.as_object_mut().expect("just made an object");
    for (name, value) in pairs {
        map.insert(name.to_string(), Value::String(value.to_string()));
    }
}

/// What the server said about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    /// The server objects to the object itself: what helm will hit.
    Rejected(String),
    /// The object was not there to patch: create it instead (helm does).
    Absent,
    /// The kind takes no strategic merge patch (a custom resource in a built-in-looking group).
    NoStrategicMerge,
    /// No verdict: the check could not be made (the reason says why).
    Unchecked(String),
}

/// Reads an API server answer to a dry-run write. `message` is the server's own message;
/// `helms_own_write` says the request is exactly the write helm will make (a server-side apply
/// or a create of the target object), not a model of it (a client-side patch).
pub fn answer(
    status: u16,
    reason: Option<&str>,
    message: &str,
    creating: bool,
    helms_own_write: bool,
) -> Answer {
    let message = message.to_string();
    match status {
        200..=299 => Answer::Accepted,
        404 if !creating => Answer::Absent,
        415 => Answer::NoStrategicMerge,
        // An admission webhook that has side effects refuses every dry run, whatever the object.
        400 if message.contains("does not support dry run") => Answer::Unchecked(message),
        400 | 422 => Answer::Rejected(message),
        // A create into a namespace that does not exist: helm fails the same way.
        404 if reason == Some("NotFound") => Answer::Rejected(message),
        403 => Answer::Unchecked(format!("not allowed to dry-run: {message}")),
        // helm's own apply meeting fields another manager owns: helm fails on exactly this.
        409 if helms_own_write && reason == Some("Conflict") => Answer::Rejected(message),
        409 => Answer::Unchecked(format!("conflict: {message}")),
        500 if helms_own_write && objects_to_content(&message) => Answer::Rejected(message),
        _ => Answer::Unchecked(format!("HTTP {status}: {message}")),
    }
}

/// Whether a server error is about the written object's own content: the server could not
/// decode, convert or type it (an invalid quantity, a list item without its key). The same
/// write by helm meets the same answer; an error about anything else (storage, a webhook, the
/// server itself) says nothing about the object.
fn objects_to_content(message: &str) -> bool {
    const ABOUT_THE_OBJECT: [&str; 4] = [
        "failed to convert new object",
        "failed to create typed patch object",
        "failed to decode",
        "unable to decode",
    ];
    ABOUT_THE_OBJECT.iter().any(|words| message.contains(words))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_method_follows_helm() {
        assert_eq!(write_method(3, None, None), WriteMethod::ClientSide);
        assert_eq!(write_method(3, Some(true), None), WriteMethod::ClientSide);
        assert_eq!(
            write_method(4, None, Some("ssa")),
            WriteMethod::ServerSideApply
        );
        assert_eq!(write_method(4, None, Some("csa")), WriteMethod::ClientSide);
        assert_eq!(write_method(4, None, None), WriteMethod::ClientSide);
        assert_eq!(
            write_method(4, Some(false), Some("ssa")),
            WriteMethod::ClientSide
        );
        assert_eq!(
            write_method(4, Some(true), Some("csa")),
            WriteMethod::ServerSideApply
        );
    }

    #[test]
    fn strategic_merge_for_compiled_in_groups_only() {
        assert!(takes_strategic_merge("v1"));
        assert!(takes_strategic_merge("apps/v1"));
        assert!(takes_strategic_merge("rbac.authorization.k8s.io/v1"));
        assert!(!takes_strategic_merge("argoproj.io/v1alpha1"));
        assert!(!takes_strategic_merge("cert-manager.io/v1"));
    }

    #[test]
    fn the_patch_drops_what_the_target_no_longer_sets() {
        let original = json!({"metadata": {"name": "w", "annotations": {"a": "1", "b": "2"}},
                              "spec": {"replicas": 2, "paused": true, "list": [1, 2]}});
        let target = json!({"metadata": {"name": "w", "annotations": {"a": "1"}},
                            "spec": {"replicas": 1, "list": [1]}});
        assert_eq!(
            client_side_patch(&target, Some(&original)),
            json!({"metadata": {"name": "w", "annotations": {"a": "1", "b": null}},
                   "spec": {"replicas": 1, "paused": null, "list": [1]}})
        );
        assert_eq!(client_side_patch(&target, None), target);
    }

    /// gatekeeper 3.23.0 renders `annotations:` with nothing under it, in every revision: the
    /// live annotations (helm's own among them) are not the patch's business.
    #[test]
    fn an_empty_key_is_no_instruction_unless_it_had_a_value_before() {
        let manifest = crate::domain::manifest::parse_documents(
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: gatekeeper-audit\n  annotations:\n    \n  labels:\n    app: gatekeeper\n",
        )
        .unwrap();
        let body = &manifest[0].body;
        assert_eq!(body["metadata"]["annotations"], Value::Null);
        let patch = client_side_patch(body, Some(body));
        assert_eq!(
            patch,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "gatekeeper-audit", "labels": {"app": "gatekeeper"}}})
        );
        let before = json!({"metadata": {"annotations": {"a": "1"}}});
        let emptied = json!({"metadata": {"annotations": null}});
        assert_eq!(
            client_side_patch(&emptied, Some(&before)),
            json!({"metadata": {"annotations": null}})
        );
    }

    /// A target rendered without annotations (a chart whose common annotations are unset)
    /// still carries helm's ownership metadata, so the patch from a revision that had
    /// annotations removes the chart's and keeps helm's.
    #[test]
    fn the_target_carries_helms_ownership_as_helm_writes_it() {
        let manifest = crate::domain::manifest::parse_documents(
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels:\n  annotations:\n    team: a\n",
        )
        .unwrap();
        let mut target = manifest[0].body.clone();
        stamp_ownership(&mut target, "web", "prod");
        assert_eq!(
            target["metadata"],
            json!({"name": "c",
                   "labels": {"app.kubernetes.io/managed-by": "Helm"},
                   "annotations": {"team": "a", "meta.helm.sh/release-name": "web",
                                   "meta.helm.sh/release-namespace": "prod"}})
        );
        let mut bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        stamp_ownership(&mut bare, "web", "prod");
        let original = json!({"metadata": {"name": "c", "annotations": {"team": "a"}}});
        assert_eq!(
            client_side_patch(&bare, Some(&original))["metadata"]["annotations"],
            json!({"team": null, "meta.helm.sh/release-name": "web",
                   "meta.helm.sh/release-namespace": "prod"})
        );
    }

    /// The answers that are not real captures are the API server's documented shapes; real
    /// ones are tested on the kubectl adapter with tests/fixtures/api.
    #[test]
    fn only_an_objection_to_the_object_is_a_rejection() {
        assert!(matches!(
            answer(422, Some("Invalid"), "x", false, false),
            Answer::Rejected(_)
        ));
        assert_eq!(
            answer(404, Some("NotFound"), "gone", false, false),
            Answer::Absent
        );
        assert!(matches!(
            answer(
                404,
                Some("NotFound"),
                "namespaces \"x\" not found",
                true,
                true
            ),
            Answer::Rejected(_)
        ));
        for status in [403, 409, 500, 503, 504] {
            assert!(
                matches!(answer(status, None, "x", false, true), Answer::Unchecked(_)),
                "{status}"
            );
        }
        assert_eq!(
            answer(415, None, "", false, false),
            Answer::NoStrategicMerge
        );
    }
}
