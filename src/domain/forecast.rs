//! What helm will do to each object, for `--plan`: a pure function over the snapshot and what
//! preflight found.

use serde::Serialize;

use crate::domain::destructive::DestructiveDelete;
use crate::domain::frozen::FrozenRender;
use crate::domain::gitops::Managed;
use crate::domain::immutable::ImmutableChange;
use crate::domain::model::{LiveObject, ObjectRef};
use crate::domain::preflight::Findings;
use crate::domain::snapshot::Snapshot;

/// What helm will do to each object, as `Kind/namespace/name`, for `--plan`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Forecast {
    pub create: Vec<String>,
    pub update: Vec<String>,
    pub delete: Vec<String>,
    pub take_over: Vec<String>,
    pub orphans: Vec<String>,
    /// The deletes of `delete` that destroy data, with what goes with each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destructive: Vec<DestructiveDelete>,
    /// The ConfigMaps and Secrets whose live data goes back to the target's rendering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frozen_renders: Vec<FrozenRender>,
    /// The fields it cannot change in place.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub immutable: Vec<ImmutableChange>,
    /// The GitOps controller that manages the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<Managed>,
    /// Each object the rollback writes, as the API server's dry run of helm's own write says
    /// it will be (Secret values redacted, managed fields left out); empty when no dry run ran.
    pub predicted: Vec<serde_json::Value>,
}

pub fn forecast(snapshot: &Snapshot, findings: &Findings) -> Forecast {
    let namespace = snapshot.release.namespace.as_str();
    let name = |o: &ObjectRef| format!("{}/{}/{}", o.kind, o.namespace_or(namespace), o.name);
    let live = |o: &ObjectRef| snapshot.live.iter().any(|l| l.is(o, namespace));
    let listed = |objects: &[LiveObject], o: &ObjectRef| objects.iter().any(|l| l.is(o, namespace));
    let mut forecast = Forecast::default();
    for object in &snapshot.target {
        if !live(object) {
            forecast.create.push(name(object));
        } else if listed(&findings.foreign, object) {
            forecast.take_over.push(name(object));
        } else {
            forecast.update.push(name(object));
        }
        if listed(&findings.orphans, object) {
            forecast.orphans.push(name(object));
        }
    }
    for object in &snapshot.current {
        let in_target = snapshot.target.iter().any(|t| {
            t.group() == object.group()
                && t.kind == object.kind
                && t.name == object.name
                && t.namespace_or(namespace) == object.namespace_or(namespace)
        });
        if !in_target && live(object) {
            forecast.delete.push(name(object));
        }
    }
    forecast.destructive = findings.destructive.clone();
    forecast.frozen_renders = findings.frozen_renders.clone();
    forecast.gitops = findings.gitops.clone();
    forecast.immutable = findings.immutable.clone();
    forecast
}
