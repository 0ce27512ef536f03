//! Objects that claim a release but that its newest revision does not have.
//!
//! helm marks every object it applies with the release's ownership annotations. An object that
//! carries them while the release's newest manifest has no such object was left by a revision
//! that is gone (an upgrade that kept it, `helm.sh/resource-policy: keep`, a failed operation,
//! a revision pruned by `--history-max`) or made by hand. The next rollback that brings such an
//! object back trips over it: helm 3 refuses to update what its current manifest does not list,
//! and either helm adopts it silently. Pure: the pipeline lists the objects (every kind, by
//! helm's label) and reads the older manifests; this module decides.

use serde::Serialize;

use crate::domain::model::{LiveObject, ManifestIndex, ObjectRef, ReleaseId};
use crate::domain::plan;

/// One object that claims the release and is not in its newest revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stray {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    /// The newest revision whose manifest has it; `null` when none of the revisions helm
    /// still keeps does.
    pub last_revision: Option<u64>,
    /// How to remove it by hand (`--diagnose` never deletes anything).
    pub delete_command: String,
}

/// The objects of `claimed` that carry this release's ownership and that `newest` (the newest
/// revision's manifest) does not have.
pub fn strays<'a>(
    claimed: &'a [LiveObject],
    release: &ReleaseId,
    newest: &[ObjectRef],
) -> Vec<&'a LiveObject> {
    let newest = ManifestIndex::new(newest, &release.namespace);
    claimed
        .iter()
        .filter(|o| o.owner.is(release))
        .filter(|o| !newest.contains(o))
        .collect()
}

/// Each stray with the newest of `older` (revision, manifest; any order) that has it, and its
/// delete command on the cluster `connection` names.
pub fn describe(
    strays: &[&LiveObject],
    older: &[(u64, Vec<ObjectRef>)],
    release: &ReleaseId,
    connection: &[String],
) -> Vec<Stray> {
    strays
        .iter()
        .map(|object| {
            let last_revision = older
                .iter()
                .filter(|(_, manifest)| {
                    ManifestIndex::new(manifest, &release.namespace).contains(object)
                })
                .map(|(revision, _)| *revision)
                .max();
            Stray {
                api_version: object.api_version.clone(),
                kind: object.kind.clone(),
                namespace: object.namespace.clone(),
                name: object.name.clone(),
                uid: object.uid.clone(),
                last_revision,
                delete_command: plan::delete_command(object, connection),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::ReleaseOwner;

    fn release() -> ReleaseId {
        ReleaseId {
            name: "web".into(),
            namespace: "prod".into(),
        }
    }

    fn live(kind: &str, name: &str, owner: Option<(&str, &str)>) -> LiveObject {
        LiveObject {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("prod".into()),
            name: name.into(),
            uid: format!("uid-{name}"),
            resource_version: "1".into(),
            owner: ReleaseOwner {
                release_name: owner.map(|o| o.0.to_string()),
                release_namespace: owner.map(|o| o.1.to_string()),
            },
            resource_policy: None,
            managed_by: None,
        }
    }

    fn object(kind: &str, name: &str) -> ObjectRef {
        serde_json::from_value(serde_json::json!({
            "api_version": "v1", "kind": kind, "name": name, "namespace": null
        }))
        .unwrap()
    }

    #[test]
    fn an_object_claiming_the_release_outside_its_newest_manifest_is_a_stray() {
        let claimed = [
            live("ConfigMap", "web-config", Some(("web", "prod"))),
            live("ServiceAccount", "web-old", Some(("web", "prod"))),
            live("ServiceAccount", "api", Some(("api", "prod"))),
            live("ServiceAccount", "web-elsewhere", Some(("web", "staging"))),
            live("ServiceAccount", "nobodys", None),
        ];
        let found = strays(&claimed, &release(), &[object("ConfigMap", "web-config")]);
        let names: Vec<&str> = found.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            ["web-old"],
            "another release's, or nobody's, is not ours to name"
        );
    }

    #[test]
    fn a_stray_names_the_newest_revision_that_had_it_or_none() {
        let claimed = [
            live("ServiceAccount", "web-old", Some(("web", "prod"))),
            live("ServiceAccount", "web-handmade", Some(("web", "prod"))),
        ];
        let found = strays(&claimed, &release(), &[]);
        let older = [
            (2, vec![object("ServiceAccount", "web-old")]),
            (4, vec![object("ServiceAccount", "web-old")]),
            (3, vec![]),
        ];
        let connection = ["--context=prod".to_string()];
        let described = describe(&found, &older, &release(), &connection);
        assert_eq!(described[0].last_revision, Some(4));
        assert_eq!(described[1].last_revision, None);
        assert_eq!(
            described[1].delete_command,
            "kubectl delete serviceaccount/web-handmade --namespace prod --context=prod"
        );
    }
}
