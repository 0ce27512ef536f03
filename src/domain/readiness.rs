//! Why objects never became ready: when helm's `--wait` runs out of time, helm 3 says only
//! `context deadline exceeded` and helm 4 names some objects without the cause. This module
//! reads the target objects' live state (one LIST per kind and namespace, read by `io`) and
//! says, for each object that is not ready, what Kubernetes itself reports as the reason.
//!
//! It is independent of the rollback: given target identities and the lists, it answers; a
//! `--diagnose` command can call it on any release.
//!
//! Worst first ([`Severity`]): something has **failed** and will not recover by waiting (a
//! crash loop, an image that cannot be pulled, a failed Job, a Deployment past its progress
//! deadline); something is **stuck** waiting on the cluster (a pod no node was found for, a
//! claim no volume is bound to, a load balancer never provisioned); something is still
//! **progressing** (containers starting, readiness probes not yet passing). Within a severity
//! the manifest's order is kept.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::domain::model::ObjectRef;

mod events;
mod pods;
mod workloads;

use self::pods::pod_problem;
use self::workloads::{deployment, job, workload};

/// The kinds read: those judged, and those they are explained with (ReplicaSets and Pods).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Listed {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
    PersistentVolumeClaim,
    Service,
    ReplicaSet,
    /// Warning events only.
    Event,
}

impl Listed {
    /// The group/version and the plural resource name. These are built-in kinds served at fixed
    /// paths on every supported cluster, so no discovery is needed.
    pub fn resource(self) -> (&'static str, &'static str) {
        match self {
            Listed::Deployment => ("apps/v1", "deployments"),
            Listed::StatefulSet => ("apps/v1", "statefulsets"),
            Listed::DaemonSet => ("apps/v1", "daemonsets"),
            Listed::ReplicaSet => ("apps/v1", "replicasets"),
            Listed::Job => ("batch/v1", "jobs"),
            Listed::Pod => ("v1", "pods"),
            Listed::PersistentVolumeClaim => ("v1", "persistentvolumeclaims"),
            Listed::Service => ("v1", "services"),
            Listed::Event => ("v1", "events"),
        }
    }

    /// The kind a target object has to be, in its API group, to be judged.
    fn of(object: &ObjectRef) -> Option<Listed> {
        let listed = match (object.group(), object.kind.as_str()) {
            ("apps", "Deployment") => Listed::Deployment,
            ("apps", "StatefulSet") => Listed::StatefulSet,
            ("apps", "DaemonSet") => Listed::DaemonSet,
            ("batch", "Job") => Listed::Job,
            ("", "Pod") => Listed::Pod,
            ("", "PersistentVolumeClaim") => Listed::PersistentVolumeClaim,
            ("", "Service") => Listed::Service,
            _ => return None,
        };
        Some(listed)
    }

    /// The other kinds needed to say why an object of this kind is not ready.
    fn explained_by(self) -> &'static [Listed] {
        match self {
            Listed::Deployment => &[Listed::ReplicaSet, Listed::Pod, Listed::Event],
            Listed::StatefulSet | Listed::DaemonSet | Listed::Job => &[Listed::Pod, Listed::Event],
            _ => &[Listed::Event],
        }
    }
}

/// The lists read from the cluster, by kind and namespace. A list that could not be read is
/// absent, and objects that need it are not judged (the reader warns about it).
#[derive(Debug, Default)]
pub struct Observed {
    lists: HashMap<(Listed, String), Vec<Value>>,
}

impl Observed {
    /// Keeps the `items` of a LIST answer.
    pub fn insert(&mut self, kind: Listed, namespace: &str, mut list: Value) {
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        self.lists.insert((kind, namespace.to_string()), items);
    }

    fn items(&self, kind: Listed, namespace: &str) -> Option<&[Value]> {
        self.lists
            .get(&(kind, namespace.to_string()))
            .map(Vec::as_slice)
    }

    fn named(&self, kind: Listed, namespace: &str, name: &str) -> Option<Option<&Value>> {
        let items = self.items(kind, namespace)?;
        Some(
            items
                .iter()
                .find(|i| str_at(i, "/metadata/name") == Some(name)),
        )
    }

    /// The objects of `kind` in `namespace` whose controller is the object with `uid`.
    fn owned_by(&self, kind: Listed, namespace: &str, uid: &str) -> Option<Vec<&Value>> {
        let items = self.items(kind, namespace)?;
        Some(items.iter().filter(|i| controlled_by(i, uid)).collect())
    }
}

/// Which lists to read for these targets: one per kind and namespace, explaining kinds included.
pub fn reads(targets: &[ObjectRef], release_namespace: &str) -> Vec<(Listed, String)> {
    let mut reads: Vec<(Listed, String)> = Vec::new();
    for target in targets {
        let Some(kind) = Listed::of(target) else {
            continue;
        };
        let namespace = target.namespace_or(release_namespace);
        for kind in std::iter::once(&kind).chain(kind.explained_by()) {
            reads.push((*kind, namespace.to_string()));
        }
    }
    reads.sort();
    reads.dedup();
    reads
}

/// How bad, worst first (the order of the report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Will not get better by waiting longer.
    Failed,
    /// Waits on something the cluster has not provided (a node, a volume, a load balancer).
    Stuck,
    /// On its way; it needed more time than it had.
    Progressing,
}

/// One target object that is not ready, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotReady {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// A short word, Kubernetes' own where it has one (`CrashLoopBackOff`, `Unschedulable`,
    /// `BackoffLimitExceeded`), else ours (`NotScheduled`, `LoadBalancerPending`).
    pub reason: String,
    /// What is ready of what is wanted, and what the worst pod or condition says.
    pub detail: String,
    #[serde(skip)]
    pub severity: Severity,
}

impl NotReady {
    /// `Kind/namespace/name`.
    pub fn object(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// The kubectl command that shows Kubernetes' own account of the object (its conditions
    /// and events), with the user's connection flags and never a credential.
    pub fn describe_command(&self, kubectl_globals: &[String]) -> String {
        let mut words = vec![
            "kubectl".to_string(),
            "describe".to_string(),
            format!("{}/{}", self.kind.to_lowercase(), self.name),
            "--namespace".to_string(),
            self.namespace.clone(),
        ];
        words.extend(crate::domain::plan::without_credentials(kubectl_globals));
        words.join(" ")
    }
}

/// What is not ready and why, in a judgement; the object's identity is added by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Problem {
    severity: Severity,
    reason: String,
    detail: String,
}

impl Problem {
    fn new(severity: Severity, reason: &str, detail: String) -> Problem {
        Problem {
            severity,
            reason: reason.to_string(),
            detail,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `--wait-for-jobs` (helm 3 and 4): a Job still running counts as not ready. Without it only a
    /// Job that failed is reported (a failure is worth knowing whatever helm waited for).
    pub jobs_must_complete: bool,
}

/// Every target object that is not ready, worst first. Objects of kinds that have no readiness
/// (ConfigMaps…) and objects whose lists could not be read are not judged.
pub fn not_ready(
    targets: &[ObjectRef],
    release_namespace: &str,
    observed: &Observed,
    options: Options,
) -> Vec<NotReady> {
    let mut found = Vec::new();
    for target in targets {
        let Some(kind) = Listed::of(target) else {
            continue;
        };
        let namespace = target.namespace_or(release_namespace);
        let Some(live) = observed.named(kind, namespace, &target.name) else {
            continue;
        };
        let problem = match live {
            None => Some(Problem::new(
                Severity::Stuck,
                "NotFound",
                "the object does not exist".into(),
            )),
            Some(live) => judge(kind, live, namespace, observed, options),
        };
        if let Some(mut problem) = problem {
            if let Some(event) = live.and_then(|live| object_event(live, namespace, observed)) {
                // A Job's `BackoffLimitExceeded` event only repeats its condition.
                if !problem.detail.contains(&event) {
                    problem.detail.push_str(&format!("; event {event}"));
                }
            }
            found.push(NotReady {
                kind: target.kind.clone(),
                namespace: namespace.to_string(),
                name: target.name.clone(),
                reason: problem.reason,
                detail: problem.detail,
                severity: problem.severity,
            });
        }
    }
    found.sort_by_key(|n| n.severity);
    found
}

/// The newest telling Warning event about the object itself (a claim's `ProvisioningFailed`, a
/// Service's `SyncLoadBalancerFailed`); its pods' events are added with the pod.
fn object_event(live: &Value, namespace: &str, observed: &Observed) -> Option<String> {
    let uid = str_at(live, "/metadata/uid")?;
    observed.last_warning(namespace, uid)
}

fn judge(
    kind: Listed,
    live: &Value,
    namespace: &str,
    observed: &Observed,
    options: Options,
) -> Option<Problem> {
    match kind {
        Listed::Deployment => deployment(live, namespace, observed),
        Listed::StatefulSet => {
            let wanted = u64_at(live, "/spec/replicas").unwrap_or(1);
            let ready = u64_at(live, "/status/readyReplicas").unwrap_or(0);
            workload(live, namespace, observed, wanted, ready)
        }
        Listed::DaemonSet => {
            // Wanted is how many nodes should run it: none on a cluster without nodes.
            let wanted = u64_at(live, "/status/desiredNumberScheduled").unwrap_or(0);
            let ready = u64_at(live, "/status/numberReady").unwrap_or(0);
            workload(live, namespace, observed, wanted, ready)
        }
        Listed::Job => job(live, namespace, observed, options),
        Listed::Pod => pod_problem(live),
        Listed::PersistentVolumeClaim => claim(live),
        Listed::Service => load_balancer(live),
        Listed::ReplicaSet | Listed::Event => None,
    }
}

fn claim(live: &Value) -> Option<Problem> {
    let phase = str_at(live, "/status/phase").unwrap_or("Pending");
    if phase == "Bound" {
        return None;
    }
    let class = str_at(live, "/spec/storageClassName")
        .map(|c| format!("storage class {c}"))
        .unwrap_or_else(|| {
            "no storage class, so nothing provisions one; a matching PersistentVolume must \
             exist"
                .into()
        });
    let severity = if phase == "Lost" {
        Severity::Failed
    } else {
        Severity::Stuck
    };
    let detail = format!("phase {phase}: no PersistentVolume is bound to it ({class})");
    Some(Problem::new(severity, phase, detail))
}

fn load_balancer(live: &Value) -> Option<Problem> {
    let is_lb = str_at(live, "/spec/type") == Some("LoadBalancer");
    let has = |pointer: &str| {
        live.pointer(pointer)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    // helm's own readiness check counts external IPs set by hand as an address.
    if !is_lb || has("/status/loadBalancer/ingress") || has("/spec/externalIPs") {
        return None;
    }
    Some(Problem::new(
        Severity::Stuck,
        "LoadBalancerPending",
        "type LoadBalancer without an address: status.loadBalancer.ingress is empty (no \
         load-balancer controller has provisioned one)"
            .into(),
    ))
}

/// The condition of `kind` with `status`, from `status.conditions`.
fn condition<'v>(object: &'v Value, kind: &str, status: &str) -> Option<&'v Value> {
    object
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| str_at(c, "/type") == Some(kind) && str_at(c, "/status") == Some(status))
}

fn controlled_by(object: &Value, uid: &str) -> bool {
    let owners = object.pointer("/metadata/ownerReferences");
    owners.and_then(Value::as_array).is_some_and(|owners| {
        owners.iter().any(|o| {
            str_at(o, "/uid") == Some(uid)
                && o.get("controller").and_then(Value::as_bool) == Some(true)
        })
    })
}

fn str_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn u64_at(value: &Value, pointer: &str) -> Option<u64> {
    value.pointer(pointer).and_then(Value::as_u64)
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;
