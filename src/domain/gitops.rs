//! Another owner will undo it: a release a GitOps controller manages is upgraded again to what
//! git says minutes after a rollback by hand, unless that controller is paused first.
//!
//! The controllers say so on every object they deploy: Flux's helm-controller labels each with
//! its HelmRelease (`helm.toolkit.fluxcd.io/name`, `…/namespace`); Argo CD with its
//! Application (the `argocd.argoproj.io/instance` label, or the `argocd.argoproj.io/tracking-id`
//! annotation `APP:GROUP/KIND:NAMESPACE/NAME`); Rancher Fleet's agent annotates each with its
//! object set (`objectset.rio.cattle.io/id`) and labels it with the set's hash. Where the owner
//! object can be read and is paused (a HelmRelease with `spec.suspend: true`, an Application
//! without automated sync), a rollback by hand is the documented way, and it proceeds with a
//! note. Pure: the pipeline reads the owner object.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::domain::model::{LiveObject, ReleaseId};

const FLUX_NAME: &str = "helm.toolkit.fluxcd.io/name";
const FLUX_NAMESPACE: &str = "helm.toolkit.fluxcd.io/namespace";
const ARGO_INSTANCE: &str = "argocd.argoproj.io/instance";
const ARGO_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
const FLEET_SET_ID: &str = "objectset.rio.cattle.io/id";
/// Where Argo CD keeps its Applications unless the instance label says otherwise.
pub const ARGO_NAMESPACE: &str = "argocd";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Controller {
    Flux,
    ArgoCd,
    Fleet,
}

/// The GitOps object that deploys an object, as the object's labels and annotations name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitOpsOwner {
    pub controller: Controller,
    pub name: String,
    /// `None` when the mark does not say (Argo CD's own namespace; Fleet's manager cluster).
    pub namespace: Option<String>,
}

/// The owner named by an object's labels and annotations, if a GitOps controller deployed it.
pub fn owner_of(
    labels: &HashMap<String, String>,
    annotations: &HashMap<String, String>,
) -> Option<GitOpsOwner> {
    let owner = |controller, name: &str, namespace: Option<&str>| GitOpsOwner {
        controller,
        name: name.to_string(),
        namespace: namespace.map(str::to_string),
    };
    if let Some(name) = labels.get(FLUX_NAME) {
        let namespace = labels.get(FLUX_NAMESPACE).map(String::as_str);
        return Some(owner(Controller::Flux, name, namespace));
    }
    let tracked = annotations
        .get(ARGO_TRACKING_ID)
        .and_then(|id| id.split_once(':').map(|(app, _)| app));
    if let Some(app) = labels.get(ARGO_INSTANCE).map(String::as_str).or(tracked) {
        // Applications outside Argo CD's own namespace are named `NAMESPACE_NAME`.
        return Some(match app.split_once('_') {
            Some((namespace, name)) => owner(Controller::ArgoCd, name, Some(namespace)),
            None => owner(Controller::ArgoCd, app, None),
        });
    }
    let set = annotations.get(FLEET_SET_ID)?;
    Some(owner(Controller::Fleet, set, None))
}

/// Whether the owner will write the release again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum OwnerState {
    /// Read, and paused: it will not undo the rollback until it is resumed.
    Paused,
    /// Read, and it reconciles on its own.
    Active,
    /// It could not be read, with why: taken as active.
    Unknown(String),
}

/// A release a GitOps controller manages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Managed {
    pub owner: GitOpsOwner,
    /// How many of the release's live objects carry its mark.
    pub objects: usize,
    #[serde(flatten)]
    pub state: OwnerState,
    /// What pauses it.
    pub pause_command: String,
}

/// The owner of the release's live objects, the first one found, with how many carry it.
pub fn owner(live: &[LiveObject], release: &ReleaseId) -> Option<(GitOpsOwner, usize)> {
    let marked = live.iter().filter(|o| o.owner.is(release));
    let mut marked = marked.filter_map(|o| o.managed_by.as_ref());
    let first = marked.next()?.clone();
    let count = 1 + marked.filter(|o| **o == first).count();
    Some((first, count))
}

/// What the API server said of the owner object: the object, `None` when it does not exist or
/// its kind is not served, or the error that kept it from being read.
pub type OwnerAnswer = Result<Option<serde_json::Value>, String>;

pub fn managed(owner: GitOpsOwner, objects: usize, answer: OwnerAnswer) -> Managed {
    let state = match (owner.controller, answer) {
        (Controller::Fleet, _) => {
            OwnerState::Unknown("Fleet's bundles live on its manager cluster, not here".into())
        }
        (_, Err(error)) => OwnerState::Unknown(error),
        (_, Ok(None)) => OwnerState::Unknown(format!("{} was not found", owner.object())),
        (Controller::Flux, Ok(Some(body))) => {
            match body.pointer("/spec/suspend").and_then(|s| s.as_bool()) {
                Some(true) => OwnerState::Paused,
                _ => OwnerState::Active,
            }
        }
        (Controller::ArgoCd, Ok(Some(body))) => {
            let automated = body.pointer("/spec/syncPolicy/automated");
            // Argo CD 3 can keep the block and turn it off with `enabled: false`.
            let enabled = automated
                .and_then(|a| a.get("enabled"))
                .and_then(|e| e.as_bool());
            match automated {
                Some(a) if !a.is_null() && enabled != Some(false) => OwnerState::Active,
                _ => OwnerState::Paused,
            }
        }
    };
    Managed {
        pause_command: owner.pause_command(),
        owner,
        objects,
        state,
    }
}

impl GitOpsOwner {
    /// `Kind namespace/name` of the owner object, in words.
    pub fn object(&self) -> String {
        let at = |default: &str| match self.namespace.as_deref().unwrap_or(default) {
            "" => self.name.clone(),
            namespace => format!("{namespace}/{}", self.name),
        };
        match self.controller {
            Controller::Flux => format!("Flux HelmRelease {}", at("")),
            Controller::ArgoCd => format!("Argo CD Application {}", at(ARGO_NAMESPACE)),
            Controller::Fleet => format!("Rancher Fleet object set {}", self.name),
        }
    }

    fn pause_command(&self) -> String {
        let namespace = self.namespace.as_deref();
        match self.controller {
            Controller::Flux => match namespace {
                Some(namespace) => format!("flux suspend helmrelease {} -n {namespace}", self.name),
                None => format!("flux suspend helmrelease {}", self.name),
            },
            Controller::ArgoCd => {
                let namespace = namespace.unwrap_or(ARGO_NAMESPACE);
                format!(
                    "kubectl patch application {} -n {namespace} --type merge -p \
                     '{{\"spec\":{{\"syncPolicy\":{{\"automated\":null}}}}}}'",
                    self.name
                )
            }
            Controller::Fleet => "kubectl patch gitrepo GITREPO -n WORKSPACE --type merge -p \
                                  '{\"spec\":{\"paused\":true}}' (on the Fleet manager cluster)"
                .to_string(),
        }
    }
}

impl Managed {
    /// Why preflight refuses: the owner, how we know, and the way on.
    pub fn refusal(&self) -> String {
        let why = match &self.state {
            OwnerState::Unknown(reason) => {
                format!(" (whether it is paused is not known: {reason})")
            }
            _ => String::new(),
        };
        format!(
            "{} manages this release ({} of its objects carry its mark) and will upgrade it again \
             to what git says{why}: pause it first (`{}`), or pass --allow-gitops to roll back \
             anyway",
            self.owner.object(),
            self.objects,
            self.pause_command
        )
    }

    /// What the run says when it proceeds.
    pub fn note(&self) -> String {
        match self.state {
            OwnerState::Paused => format!(
                "{} manages this release and is paused: it will not undo this rollback; resume it \
                 once git holds the version you want, or it upgrades the release again",
                self.owner.object()
            ),
            _ => format!(
                "{} manages this release and is not known to be paused (--allow-gitops): expect it \
                 to upgrade the release again to what git says",
                self.owner.object()
            ),
        }
    }

    pub fn paused(&self) -> bool {
        self.state == OwnerState::Paused
    }
}

#[cfg(test)]
#[path = "gitops_tests.rs"]
mod tests;
