//! Live state of a release, to compare a rollback by ours with a native one and to see what a
//! rollback created, changed and deleted.
//!
//! A snapshot holds every object of every listable kind in the release's namespace, and the
//! cluster-scoped objects of the given kinds that belong to the release (helm's ownership
//! annotations), each normalised to what a rollback decides: without uid, resourceVersion,
//! timestamps, generation, managedFields, status, and the annotations and labels that count
//! operations or carry generated ids (helm's `meta.helm.sh/*`, the Deployment controller's
//! revision, a Job's `controller-uid`). Objects made by controllers (with ownerReferences:
//! ReplicaSets, Pods, ControllerRevisions, EndpointSlices) and service-account token Secrets (a
//! random name per ServiceAccount) are left out: they follow from the rest, on their own time.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::support::{Run, Scenario};

/// `Kind/namespace/name` (namespace empty when cluster-scoped) → the normalised object.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub objects: BTreeMap<String, Value>,
    /// Keys of the objects helm's ownership annotations give to the release (normalising
    /// removes those annotations).
    owned: BTreeSet<String>,
    release: String,
    namespace: String,
}

/// What changed between two snapshots, among the release's own objects.
#[derive(Debug, Default)]
pub struct Changes {
    pub created: BTreeSet<String>,
    pub deleted: BTreeSet<String>,
    pub updated: BTreeSet<String>,
}

/// Resources the API server lists, as `plural.group` (`plural` for the core group), one per
/// plural (kubectl lists `ingresses` under two groups; they are the same objects), each with
/// its kind.
fn resources(s: &Scenario, namespaced: bool) -> Vec<(String, String)> {
    let mut command = Command::new(&s.bed.kubectl);
    s.env(&mut command);
    command.args([
        "api-resources",
        "--verbs=list",
        &format!("--namespaced={namespaced}"),
        "--no-headers",
    ]);
    // Not checked: while an aggregated API has no backend (metrics-server) kubectl lists every
    // other resource and exits 1.
    let run = Run::from(command.output().expect("run kubectl api-resources"));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for line in run.stdout.lines() {
        // NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [plural, .., api_version, _, kind] = fields[..] else {
            continue;
        };
        let name = match api_version.split_once('/') {
            Some((group, _)) => format!("{plural}.{group}"),
            None => plural.to_string(),
        };
        // Events come and go with controllers; metrics have no backend on the bed.
        if kind == "Event" || name.ends_with("metrics.k8s.io") || !seen.insert(plural) {
            continue;
        }
        out.push((name, kind.to_string()));
    }
    out
}

/// Resources served by a CustomResourceDefinition, as `plural.group`.
fn custom_resources(s: &Scenario) -> BTreeSet<String> {
    let run = s.kubectl(&[
        "get",
        "customresourcedefinitions",
        "--output=jsonpath={range .items[*]}{.spec.names.plural}.{.spec.group}{\"\\n\"}{end}",
    ]);
    run.stdout.lines().map(str::to_string).collect()
}

/// Every namespaced resource the release's objects can be: the built-in ones and the custom
/// ones of its own kinds. Other charts tested at the same time install and remove their CRDs;
/// listing theirs would make a snapshot fail whenever one is removed, and their objects
/// cannot be in this test's namespace anyway.
fn namespaced_resources(s: &Scenario, chart_kinds: &BTreeSet<String>) -> Vec<String> {
    let custom = custom_resources(s);
    resources(s, true)
        .into_iter()
        .filter(|(resource, kind)| !custom.contains(resource) || chart_kinds.contains(kind))
        .map(|(resource, _)| resource)
        .collect()
}

/// What to list for a release's snapshots, found once (kubectl api-resources is slow): every
/// namespaced resource its objects can be, and the cluster-scoped ones of the kinds its
/// manifests use.
pub struct Lister {
    namespaced: Vec<String>,
    cluster: Vec<String>,
    cluster_kinds: BTreeSet<String>,
    chart_kinds: BTreeSet<String>,
}

impl Lister {
    /// `chart_kinds`: every kind in the release's manifests; `cluster_kinds`: those that are
    /// cluster-scoped.
    pub fn new(
        s: &Scenario,
        cluster_kinds: &BTreeSet<String>,
        chart_kinds: &BTreeSet<String>,
    ) -> Lister {
        Lister {
            namespaced: namespaced_resources(s, chart_kinds),
            cluster: resources(s, false)
                .into_iter()
                .filter(|(_, kind)| cluster_kinds.contains(kind))
                .map(|(r, _)| r)
                .collect(),
            cluster_kinds: cluster_kinds.clone(),
            chart_kinds: chart_kinds.clone(),
        }
    }
}

/// The release's live state.
pub fn take(s: &Scenario, release: &str, lister: &Lister) -> Snapshot {
    let mut snapshot = Snapshot {
        release: release.to_string(),
        namespace: s.namespace.clone(),
        ..Snapshot::default()
    };
    let cluster_kinds = &lister.cluster_kinds;
    let (namespaced, cluster) = (lister.namespaced.clone(), lister.cluster.clone());
    for (list, in_namespace) in [(namespaced, true), (cluster, false)] {
        if list.is_empty() {
            continue;
        }
        let items = list_all(s, list, in_namespace, lister);
        for item in items["items"].as_array().cloned().unwrap_or_default() {
            let kind = item["kind"].as_str().unwrap_or("").to_string();
            if !in_namespace && (!cluster_kinds.contains(&kind) || !snapshot.owned(&item)) {
                continue;
            }
            if item["metadata"]["ownerReferences"].is_array()
                || item["type"] == "kubernetes.io/service-account-token"
                // helm's own records of the revisions: never the same twice.
                || item["type"] == "helm.sh/release.v1"
            {
                continue;
            }
            let namespace = if in_namespace { &s.namespace[..] } else { "" };
            let name = item["metadata"]["name"].as_str().unwrap_or("");
            let key = format!("{kind}/{namespace}/{name}");
            if snapshot.owned(&item) {
                snapshot.owned.insert(key.clone());
            }
            snapshot.objects.insert(key, normalise(item));
        }
    }
    snapshot
}

/// One `kubectl get` of every resource in `list`. A resource listed a moment ago can be gone
/// (a CRD removed), and kubectl then fails the whole get: a get that fails is retried with the
/// resources the API server serves now.
fn list_all(s: &Scenario, mut list: Vec<String>, in_namespace: bool, lister: &Lister) -> Value {
    for attempt in 1.. {
        let mut command = Command::new(&s.bed.kubectl);
        s.env(&mut command);
        command
            .arg("get")
            .arg(list.join(","))
            .args(["--output", "json"]);
        if in_namespace {
            command.args(["--namespace", &s.namespace]);
        }
        let run = Run::from(command.output().expect("run kubectl get"));
        match serde_json::from_str(&run.stdout) {
            Ok(items) => return items,
            Err(e) if attempt >= 3 => panic!("kubectl get: no JSON ({e}):\n{run}"),
            Err(_) => {}
        }
        list = match in_namespace {
            true => namespaced_resources(s, &lister.chart_kinds),
            false => resources(s, false)
                .into_iter()
                .filter(|(_, kind)| lister.cluster_kinds.contains(kind))
                .map(|(resource, _)| resource)
                .collect(),
        };
    }
    unreachable!("the loop returns or panics")
}

impl Snapshot {
    /// Whether helm's ownership annotations name this release.
    fn owned(&self, object: &Value) -> bool {
        let annotations = &object["metadata"]["annotations"];
        annotations["meta.helm.sh/release-name"] == self.release.as_str()
            && annotations["meta.helm.sh/release-namespace"] == self.namespace.as_str()
    }

    /// The release's objects (those with helm's ownership annotations), by key.
    pub fn owned_keys(&self) -> BTreeSet<String> {
        self.owned.clone()
    }

    /// What a rollback did to the release's objects between `self` and `after`.
    pub fn changes(&self, after: &Snapshot) -> Changes {
        let before_keys = self.owned_keys();
        let after_keys = after.owned_keys();
        Changes {
            created: after_keys.difference(&before_keys).cloned().collect(),
            deleted: before_keys.difference(&after_keys).cloned().collect(),
            updated: after_keys
                .intersection(&before_keys)
                .filter(|k| self.objects[*k] != after.objects[*k])
                .cloned()
                .collect(),
        }
    }

    /// Every object present in only one of the two, and the first differing field of each
    /// object they share; empty when they hold the same objects with the same spec.
    pub fn differences(&self, other: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for key in self.objects.keys() {
            match other.objects.get(key) {
                None => out.push(format!("{key}: only in the first")),
                Some(theirs) => {
                    if let Some(path) = first_difference(&self.objects[key], theirs, "") {
                        out.push(format!("{key}: differs at {path}"));
                    }
                }
            }
        }
        for key in other.objects.keys() {
            if !self.objects.contains_key(key) {
                out.push(format!("{key}: only in the second"));
            }
        }
        out
    }
}

/// Where the preflight's prediction (`--plan`'s `predicted`, made before the native rollback)
/// is not what the native rollback left: every predicted object of the release must be live
/// after it, normalised the same, with a Secret's values compared as the plan shows them.
pub fn prediction_differences(predicted: &Value, after_native: &Snapshot) -> Vec<String> {
    let Some(predicted) = predicted.as_array() else {
        return vec![format!("--plan: `predicted` is not a list: {predicted}")];
    };
    let mut out = Vec::new();
    let mut unpredicted = after_native.owned_keys();
    for object in predicted {
        let (kind, name) = (
            object["kind"].as_str().unwrap_or(""),
            object["metadata"]["name"].as_str().unwrap_or(""),
        );
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("");
        let key = format!("{kind}/{namespace}/{name}");
        unpredicted.remove(&key);
        // A snapshot holds the release namespace and cluster-scoped objects (the twin is
        // compared on the same ground); an object a chart puts elsewhere is not in it.
        let elsewhere = !namespace.is_empty() && namespace != after_native.namespace;
        if object["metadata"]["ownerReferences"].is_array() || elsewhere {
            continue;
        }
        let Some(live) = after_native.objects.get(&key) else {
            out.push(format!(
                "{key}: predicted, not live after the native rollback"
            ));
            continue;
        };
        let (predicted, live) = (redacted(normalise(object.clone())), redacted(live.clone()));
        if let Some(path) = first_difference(&predicted, &live, "") {
            out.push(format!(
                "{key}: the prediction differs from the twin at {path} (first: predicted, \
                 second: live)"
            ));
        }
    }
    out.extend(
        unpredicted
            .into_iter()
            .map(|key| format!("{key}: live after the native rollback, not predicted")),
    );
    out
}

/// A Secret's values as `--plan` prints them.
fn redacted(mut object: Value) -> Value {
    if object["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(values) = object.get_mut(field).and_then(Value::as_object_mut) {
                values
                    .values_mut()
                    .for_each(|v| *v = Value::String("<redacted>".into()));
            }
        }
    }
    object
}

/// The object without what differs between two equal rollbacks (see the module doc).
fn normalise(mut object: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if map.get("kind").and_then(Value::as_str) == Some("ServiceAccount") {
            // Names of its token Secrets, random per creation.
            map.remove("secrets");
        }
    }
    // A Service's cluster IP is allocated by the API server when the chart leaves it out: an
    // object both rollbacks recreated gets a new one each time. A headless `None` stays.
    if object["kind"] == "Service" {
        if let Some(spec) = object["spec"].as_object_mut() {
            if spec.get("clusterIP").and_then(Value::as_str) != Some("None") {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        }
    }
    if let Some(meta) = object["metadata"].as_object_mut() {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(field);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.retain(|k, _| {
                !k.starts_with("meta.helm.sh/")
                    && k != "deployment.kubernetes.io/revision"
                    && k != "deprecated.daemonset.template.generation"
                    && k != "kubectl.kubernetes.io/last-applied-configuration"
                    // The HPA controller's status, shown as annotations by autoscaling/v1:
                    // written whenever it last looked, not by helm.
                    && !k.starts_with("autoscaling.alpha.kubernetes.io/")
                    // When the endpoints controller last reacted: the time of the recreation.
                    && k != "endpoints.kubernetes.io/last-change-trigger-time"
            });
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    strip_generated_ids(&mut object);
    object
}

/// `controller-uid` labels and selectors (set by the Job controller) anywhere in the object.
fn strip_generated_ids(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("controller-uid");
            map.values_mut().for_each(strip_generated_ids);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_generated_ids),
        _ => {}
    }
}

/// The JSON path of the first difference between `a` and `b`, with both values.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{path}.{k}")),
                (p, q) => Some(format!("{path}.{k}: {p:?} vs {q:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {} vs {}", short(a), short(b))),
    }
}

/// `--plan`'s `Kind/namespace/name` in a snapshot's key form: a cluster-scoped object has no
/// namespace there (the plan may name the release's).
pub fn plan_keys(plan: &Value, cluster_kinds: &BTreeSet<String>) -> BTreeSet<String> {
    plan.as_array()
        .unwrap_or_else(|| panic!("a plan list is not an array: {plan}"))
        .iter()
        .map(|v| {
            let text = v.as_str().unwrap_or("");
            let mut parts = text.splitn(3, '/');
            let (kind, namespace, name) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let namespace = if cluster_kinds.contains(kind) {
                ""
            } else {
                namespace
            };
            format!("{kind}/{namespace}/{name}")
        })
        .collect()
}

/// A value for a message, cut to 200 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}
