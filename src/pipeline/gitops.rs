//! Part of step 2: whether a GitOps controller manages the release, and whether it is paused.
//! The owner object is read only when the release's objects carry a controller's mark, and
//! what cannot be read is judged by `domain::gitops` (as not paused).

use crate::domain::gitops::{self, Controller, GitOpsOwner, Managed, OwnerAnswer};
use crate::domain::model::ObjectRef;
use crate::pipeline::session::Session;

/// The HelmRelease API versions Flux serves, newest first: the first one served answers.
const FLUX_VERSIONS: [&str; 3] = [
    "helm.toolkit.fluxcd.io/v2",
    "helm.toolkit.fluxcd.io/v2beta2",
    "helm.toolkit.fluxcd.io/v2beta1",
];

impl Session<'_> {
    /// The controller that manages the release, with its state; `None` when no live object of
    /// the release carries a mark.
    pub(crate) fn gitops_owner(&self) -> Option<Managed> {
        let snapshot = self.snapshot();
        let (owner, objects) = gitops::owner(&snapshot.live, &snapshot.release)?;
        let answer = match owner.controller {
            Controller::Fleet => Ok(None),
            _ => self.read_owner(&owner, &snapshot.release.namespace),
        };
        Some(gitops::managed(owner, objects, answer))
    }

    fn read_owner(&self, owner: &GitOpsOwner, release_namespace: &str) -> OwnerAnswer {
        let (versions, kind, namespace): (&[&str], _, _) = match owner.controller {
            Controller::Flux => (&FLUX_VERSIONS, "HelmRelease", owner.namespace.as_deref()),
            _ => (
                &["argoproj.io/v1alpha1"],
                "Application",
                Some(owner.namespace.as_deref().unwrap_or(gitops::ARGO_NAMESPACE)),
            ),
        };
        let refs: Vec<ObjectRef> = versions
            .iter()
            .map(|api_version| ObjectRef {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                namespace: namespace.map(str::to_string),
                name: owner.name.clone(),
            })
            .collect();
        let bodies = self.tools.kubectl.objects(&refs, release_namespace);
        let bodies = bodies.map_err(|error| format!("reading {}: {error:#}", owner.object()))?;
        let newest = versions.iter().find_map(|version| {
            bodies
                .iter()
                .find(|body| body.get("apiVersion").and_then(|v| v.as_str()) == Some(version))
        });
        Ok(newest.or(bodies.first()).cloned())
    }
}
