//! Plain data shared by every step of the pipeline.
//!
//! Nothing here talks to a process or the disk: these are the values the decisions (classify,
//! reconcile, report) are computed from, and what the journal stores. Keeping them plain is what
//! lets every safety rule be unit-tested without a cluster.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::gitops::GitOpsOwner;

/// The annotations helm 3.2+ and helm 4 put on every object a release owns.
pub const RELEASE_NAME_ANNOTATION: &str = "meta.helm.sh/release-name";
pub const RELEASE_NAMESPACE_ANNOTATION: &str = "meta.helm.sh/release-namespace";
/// `helm.sh/resource-policy: keep` asks helm never to delete an object; neither do we.
pub const RESOURCE_POLICY_ANNOTATION: &str = "helm.sh/resource-policy";

/// Identity of an object as a manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` when the manifest does not say; the object then lives in the release namespace, or
    /// is cluster-scoped (which only the API server knows).
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// The API group, without the version: `apps/v1` → `apps`, `v1` → `` (core).
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((group, _version)) => group,
            None => "",
        }
    }

    /// The namespace the object lands in when the manifest does not name one.
    pub fn namespace_or<'a>(&'a self, release_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(release_namespace)
    }

    /// The argument kubectl needs to address this object without ambiguity, e.g.
    /// `deployment.v1.apps/web` or `configmap/web-config`.
    pub fn kubectl_arg(&self) -> String {
        let kind = self.kind.to_ascii_lowercase();
        match self.api_version.rsplit_once('/') {
            Some((group, version)) => format!("{kind}.{version}.{group}/{}", self.name),
            None => format!("{kind}/{}", self.name),
        }
    }
}

/// Which release an object says it belongs to, from its helm ownership annotations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseOwner {
    pub release_name: Option<String>,
    pub release_namespace: Option<String>,
}

/// Which cluster a run talked to, as the kubeconfig (or `--kube-apiserver`) names it: what
/// `--finish` checks before it acts on a journal. Never a credential.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// The API server's URL.
    pub server: Option<String>,
    /// The kubeconfig context's name.
    pub context: Option<String>,
}

impl Cluster {
    /// Whether `other` is known to be another cluster. Servers decide when both are known
    /// (one cluster can have different context names on two machines); unknown is not a
    /// difference.
    pub fn differs_from(&self, other: &Cluster) -> bool {
        match (&self.server, &other.server) {
            (Some(a), Some(b)) => a.trim_end_matches('/') != b.trim_end_matches('/'),
            _ => matches!((&self.context, &other.context), (Some(a), Some(b)) if a != b),
        }
    }

    pub fn describe(&self) -> String {
        match (&self.server, &self.context) {
            (Some(server), Some(context)) => format!("{server} (context {context})"),
            (Some(server), None) => server.clone(),
            (None, Some(context)) => format!("context {context}"),
            (None, None) => "an unknown cluster".into(),
        }
    }
}

/// The release this run is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseId {
    pub name: String,
    pub namespace: String,
}

impl ReleaseOwner {
    pub fn is(&self, release: &ReleaseId) -> bool {
        self.release_name.as_deref() == Some(release.name.as_str())
            && self.release_namespace.as_deref() == Some(release.namespace.as_str())
    }
}

/// What the API server said about an object: its identity, never its contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveObject {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub owner: ReleaseOwner,
    /// The `helm.sh/resource-policy` annotation, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
    /// The GitOps controller's object that deploys it, when its labels say so (see `gitops`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<GitOpsOwner>,
}

impl LiveObject {
    /// The object as a manifest would name it.
    pub fn reference(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// Whether helm has been told to keep this object whatever happens.
    pub fn keep(&self) -> bool {
        self.resource_policy.as_deref() == Some("keep")
    }

    /// Whether this live object is the one `object` names. Versions are ignored (the API server
    /// serves the same object under several), the group is not.
    pub fn is(&self, object: &ObjectRef, release_namespace: &str) -> bool {
        let group = self.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        group == object.group()
            && self.kind == object.kind
            && self.name == object.name
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| ns == object.namespace_or(release_namespace))
    }

    pub fn as_ref(&self) -> ObjectRef {
        ObjectRef {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

/// A manifest's objects, looked up by identity in constant time: the pairwise
/// [`LiveObject::is`] is quadratic, 60 ms of decisions on a release of 500 objects.
pub struct ManifestIndex<'a> {
    namespaces: HashMap<(&'a str, &'a str, &'a str), Vec<&'a str>>,
}

impl<'a> ManifestIndex<'a> {
    pub fn new(objects: &'a [ObjectRef], release_namespace: &'a str) -> ManifestIndex<'a> {
        let mut namespaces: HashMap<_, Vec<&str>> = HashMap::new();
        for object in objects {
            namespaces
                .entry((object.group(), object.kind.as_str(), object.name.as_str()))
                .or_default()
                .push(object.namespace_or(release_namespace));
        }
        ManifestIndex { namespaces }
    }

    /// Whether `live.is(o)` for some object `o` of the manifest.
    pub fn contains(&self, live: &LiveObject) -> bool {
        let group = live.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        self.namespaces
            .get(&(group, live.kind.as_str(), live.name.as_str()))
            .is_some_and(|namespaces| match &live.namespace {
                None => true,
                Some(ns) => namespaces.contains(&ns.as_str()),
            })
    }
}

/// One entry of `helm history -o json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: u64,
    #[serde(default)]
    pub updated: String,
    pub status: String,
    #[serde(default)]
    pub chart: String,
    #[serde(default)]
    pub description: String,
}

/// Helm's major version decides flag sets and error formats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelmVersion {
    /// As helm printed it, e.g. `v3.17.3`.
    pub version: String,
    pub major: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn kubectl_arg_is_fully_qualified_outside_the_core_group() {
        assert_eq!(
            obj("apps/v1", "Deployment", None, "web").kubectl_arg(),
            "deployment.v1.apps/web"
        );
        assert_eq!(
            obj("v1", "ConfigMap", None, "c").kubectl_arg(),
            "configmap/c"
        );
    }

    #[test]
    fn live_object_matches_across_versions_but_not_groups_or_namespaces() {
        let live = LiveObject {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("team".into()),
            name: "web".into(),
            uid: "u".into(),
            resource_version: "1".into(),
            owner: ReleaseOwner {
                release_name: None,
                release_namespace: None,
            },
            resource_policy: None,
            managed_by: None,
        };
        assert!(live.is(&obj("apps/v1beta2", "Deployment", None, "web"), "team"));
        assert!(!live.is(
            &obj("extensions/v1beta1", "Deployment", None, "web"),
            "team"
        ));
        assert!(!live.is(&obj("apps/v1", "Deployment", None, "web"), "other"));
        assert!(live.is(&obj("apps/v1", "Deployment", Some("team"), "web"), "x"));
    }
}
