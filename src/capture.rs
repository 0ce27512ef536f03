//! Step 1: record the pre-state before anything changes.
//!
//! The snapshot is what makes every later decision provable: an object is only ever called
//! "created by this rollback" because its uid is *not* in here.

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::helm::{self, Helm};
use crate::kubectl::Kubectl;
use crate::manifest;
use crate::model::{HelmVersion, LiveObject, ObjectRef, ReleaseId, Revision};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub release: ReleaseId,
    pub helm: HelmVersion,
    pub history: Vec<Revision>,
    pub from_revision: u64,
    pub to_revision: u64,
    /// Objects of the newest revision (what helm rolls back *from*).
    pub current: Vec<ObjectRef>,
    /// Objects of the revision helm rolls back *to*.
    pub target: Vec<ObjectRef>,
    /// Identities of every object of `current` ∪ `target` that existed when we looked.
    pub live: Vec<LiveObject>,
    pub taken_at: String,
}

/// Where capture failed; before the rollback nothing has changed, whatever the step.
pub struct CaptureError {
    pub step: &'static str,
    pub error: anyhow::Error,
    /// Whatever was learnt before the failure, for the report.
    pub helm: Option<HelmVersion>,
}

pub struct Request<'a> {
    pub release: &'a str,
    /// Known from flags or HELM_NAMESPACE; otherwise read from the kubeconfig.
    pub namespace: Option<&'a str>,
    pub revision: Option<u64>,
}

pub fn capture(
    request: &Request,
    helm: &Helm,
    kubectl: &Kubectl,
) -> std::result::Result<Snapshot, CaptureError> {
    let fail = |step, helm_version: Option<&HelmVersion>| {
        let helm_version = helm_version.cloned();
        move |error| CaptureError {
            step,
            error,
            helm: helm_version,
        }
    };
    // Three independent questions; asking them at once keeps capture to the latency of the
    // slowest, not the sum.
    let (version, history, namespace) = std::thread::scope(|scope| {
        let version = scope.spawn(|| helm.version());
        let history = scope.spawn(|| helm.history(request.release));
        let namespace = match request.namespace {
            Some(ns) => Ok(ns.to_string()),
            None => kubectl
                .context_namespace()
                .map(|ns| ns.unwrap_or_else(|| "default".to_string())),
        };
        (
            version.join().expect("helm version thread"),
            history.join().expect("helm history thread"),
            namespace,
        )
    });
    let version = version.map_err(fail("helm version", None))?;
    let history = history.map_err(fail("helm history", Some(&version)))?;
    let namespace = namespace.map_err(fail("namespace", Some(&version)))?;
    let (from_revision, to_revision) = helm::resolve_revisions(&history, request.revision)
        .map_err(fail("revision", Some(&version)))?;

    let (current, target) = std::thread::scope(|scope| {
        let read = |revision| {
            helm.manifest(request.release, revision).and_then(|m| {
                manifest::parse_objects(&m)
                    .with_context(|| format!("manifest of revision {revision}"))
            })
        };
        let current = scope.spawn(move || read(from_revision));
        let target = read(to_revision);
        (current.join().expect("manifest thread"), target)
    });
    let current = current.map_err(fail("helm get manifest", Some(&version)))?;
    let target = target.map_err(fail("helm get manifest", Some(&version)))?;

    let mut involved: Vec<ObjectRef> = current.iter().chain(target.iter()).cloned().collect();
    involved.sort();
    involved.dedup();
    let live = kubectl
        .identities(&involved, &namespace)
        .map_err(fail("kubectl get", Some(&version)))?;

    Ok(Snapshot {
        release: ReleaseId {
            name: request.release.to_string(),
            namespace,
        },
        helm: version,
        history,
        from_revision,
        to_revision,
        current,
        target,
        live,
        taken_at: jiff::Timestamp::now().to_string(),
    })
}
