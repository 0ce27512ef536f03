//! The cluster, as kubectl reaches it: reading object identities, the preflight dry run,
//! verification reads, deleting leftovers.
//!
//! Reads and dry runs go to the API server through one `kubectl proxy` per run (see
//! `kube_api`): many requests at once, and nothing per object on our side but JSON (deletes too,
//! see `delete`). The `kubectl diff` fallback runs kubectl itself. Identities deserialise only metadata, so a
//! Secret's data is dropped by the parser and never held in our types.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::domain::dry_run::{self, takes_strategic_merge, Answer, WriteMethod};
use crate::domain::live::{flatten, KubeDocument};
use crate::domain::manifest::Document;
use crate::domain::model::{Cluster, LiveObject, ObjectRef};
use crate::io::exec::{self, Output};
use crate::io::kube_api::{Method, Proxy, Request};

/// What a server-side dry run said: the objects it rejected (the server's messages) and the
/// objects as it would have made them. Never serialised: the objects can hold Secret data.
#[derive(Debug, Default)]
pub struct DryRun {
    /// The objects the server objects to, with its message.
    pub rejections: Vec<(ObjectRef, String)>,
    /// Objects the server gave no verdict on, and why: checks that could not run.
    pub unchecked: Vec<String>,
    pub objects: Vec<serde_json::Value>,
}

/// Up to this many objects of one kind are read by name, more with a LIST of the kind (which also
/// brings the namespace's other objects of that kind, to be filtered out).
pub const BY_NAME_LIMIT: usize = 8;
/// Objects per LIST page, as kubectl pages them.
const PAGE_SIZE: usize = 500;

pub struct Kubectl {
    pub bin: PathBuf,
    /// Connection flags (context, kubeconfig, server, credentials), as kubectl spells them.
    pub connection_args: Vec<String>,
    /// Started on first use; an error is kept and reported by every request.
    /// Shared with the Lease's renewal thread (see `lease`).
    proxy: OnceLock<std::result::Result<Arc<Proxy>, String>>,
    /// apiVersion → the resources it serves (empty: not served).
    discovery: Mutex<HashMap<String, Vec<ApiResource>>>,
    /// Held while discovering, so that capture's two threads (identities and dry run), which
    /// start at once, ask once and not twice.
    discovering: Mutex<()>,
}

impl Kubectl {
    pub fn new(bin: PathBuf, connection_args: Vec<String>) -> Kubectl {
        Kubectl {
            bin,
            connection_args,
            proxy: OnceLock::new(),
            discovery: Mutex::new(HashMap::new()),
            discovering: Mutex::new(()),
        }
    }

    fn call(&self, what: &str, args: Vec<String>) -> Result<Output> {
        let mut all = args;
        all.extend(self.connection_args.iter().cloned());
        let output = exec::capture(&self.bin, &all)
            .map_err(|e| anyhow!("{e} (install kubectl, or point KUBECTL / --kubectl at it)"))?;
        if !output.success() {
            bail!("kubectl {what} failed: {}", output.error_line());
        }
        Ok(output)
    }

    /// The cluster and default namespace of the kubeconfig context in use, as helm would pick
    /// them, from kubectl's own reading of the kubeconfig (merged KUBECONFIG files, `--context`,
    /// `--kubeconfig`, `--server`). Only names and the server URL are read; kubectl redacts
    /// credentials from `config view` in any case.
    pub fn cluster_target(&self) -> Result<(Cluster, Option<String>)> {
        let output = self.call(
            "config view",
            vec![
                "config".into(),
                "view".into(),
                "--minify".into(),
                "--output=json".into(),
            ],
        )?;
        Ok(parse_config_view(&output.stdout, &self.connection_args))
    }

    /// Starts `kubectl proxy` now, from the calling thread (the main one: see
    /// [`exec::spawn_background`]), so that it is listening by the time capture needs it. A
    /// failure to start is reported by the first request.
    pub fn connect(&self) {
        let _ = self.proxy();
    }

    pub(crate) fn proxy(&self) -> Result<&Arc<Proxy>> {
        self.proxy
            .get_or_init(|| {
                Proxy::start(&self.bin, &self.connection_args)
                    .map(Arc::new)
                    .map_err(|e| format!("{e:#}"))
            })
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }

    /// The URL path of one object, or `None` when the server does not serve its kind (so it
    /// cannot exist).
    pub(crate) fn object_path(
        &self,
        object: &ObjectRef,
        release_namespace: &str,
    ) -> Result<Option<String>> {
        self.discover(std::iter::once(object.api_version.as_str()))?;
        let Some(resource) = self.resource(&object.api_version, &object.kind) else {
            return Ok(None);
        };
        let namespace = resource
            .namespaced
            .then(|| object.namespace_or(release_namespace));
        let collection = collection_path(&object.api_version, &resource, namespace)?;
        Ok(Some(format!("{collection}/{}", segment(&object.name)?)))
    }

    /// The live identity of every object that exists; absent objects are simply not returned.
    /// Only metadata is deserialised, so a Secret's data is dropped by the parser.
    pub fn identities(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<Vec<LiveObject>> {
        let documents: Vec<KubeDocument> = self.read(objects, release_namespace)?;
        let mut live = Vec::new();
        for document in documents {
            flatten(document, &mut live);
        }
        Ok(live)
    }

    /// The objects themselves, as the API server returns them, read like
    /// [`Kubectl::identities`]. Held in memory for comparison only: they can hold Secret data.
    pub fn objects(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<Vec<serde_json::Value>> {
        self.read(objects, release_namespace)
    }

    /// Reads the objects that exist, all kinds at once: by name when a kind has few objects, else
    /// one LIST (paged) of the kind, filtered here.
    pub(crate) fn read<T: Item>(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<Vec<T>> {
        let proxy = self.proxy()?;
        self.discover(objects.iter().map(|o| o.api_version.as_str()))?;
        let mut groups: BTreeMap<(String, String, Option<String>), Vec<&ObjectRef>> =
            BTreeMap::new();
        let mut resources = HashMap::new();
        for object in objects {
            // A kind the server does not serve has no objects.
            let Some(resource) = self.resource(&object.api_version, &object.kind) else {
                continue;
            };
            let namespace = resource
                .namespaced
                .then(|| object.namespace_or(release_namespace).to_string());
            let key = (object.api_version.clone(), object.kind.clone(), namespace);
            resources.insert(key.clone(), resource);
            groups.entry(key).or_default().push(object);
        }
        let mut pending: Vec<(Read, Request)> = Vec::new();
        for (key, members) in &groups {
            let resource = &resources[key];
            let (api_version, _, namespace) = key;
            let collection = collection_path(api_version, resource, namespace.as_deref())?;
            if members.len() <= BY_NAME_LIMIT {
                for object in members {
                    let path = format!("{collection}/{}", segment(&object.name)?);
                    pending.push((Read::Named(key.clone()), Request::get(path)));
                }
            } else {
                let path = format!("{collection}?limit={PAGE_SIZE}");
                pending.push((Read::Listed(key.clone(), collection), Request::get(path)));
            }
        }
        let mut found = Vec::new();
        while !pending.is_empty() {
            let (reads, requests): (Vec<Read>, Vec<Request>) = pending.drain(..).unzip();
            let paths: Vec<String> = requests.iter().map(|r| r.path.clone()).collect();
            let responses = proxy.send_all(requests)?;
            for ((read, path), response) in reads.into_iter().zip(paths).zip(responses) {
                let response = response?;
                let ((api_version, kind, _), listed) = match &read {
                    Read::Named(key) => (key, None),
                    Read::Listed(key, collection) => (key, Some(collection)),
                };
                if response.status == 404 && listed.is_none() {
                    continue;
                }
                if !response.ok() {
                    bail!(
                        "reading {path} failed: HTTP {}: {}",
                        response.status,
                        response.message()
                    );
                }
                let Some(collection) = listed else {
                    let mut item: T = serde_json::from_slice(&response.body)
                        .with_context(|| format!("{path} answered something that is not JSON"))?;
                    item.fill(api_version, kind);
                    found.push(item);
                    continue;
                };
                let page: Page<T> = serde_json::from_slice(&response.body)
                    .with_context(|| format!("{path} answered something that is not a list"))?;
                let members = &groups[read.key()];
                for mut item in page.items {
                    if members.iter().any(|o| item.name() == o.name) {
                        item.fill(api_version, kind);
                        found.push(item);
                    }
                }
                if let Some(token) = page.metadata.and_then(|m| m.next).filter(|t| !t.is_empty()) {
                    let path = format!("{collection}?limit={PAGE_SIZE}&continue={}", query(&token));
                    pending.push((read, Request::get(path)));
                }
            }
        }
        Ok(found)
    }

    /// Learns which resources serve these apiVersions (once per run), all at once.
    fn discover<'b>(&self, api_versions: impl Iterator<Item = &'b str>) -> Result<()> {
        let _one_at_a_time = self.discovering.lock().expect("discovering lock");
        let mut wanted: Vec<String> = Vec::new();
        {
            let known = self.discovery.lock().expect("discovery lock");
            for api_version in api_versions {
                if !known.contains_key(api_version) && !wanted.iter().any(|w| w == api_version) {
                    wanted.push(api_version.to_string());
                }
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let requests = wanted
            .iter()
            .map(|v| Ok(Request::get(discovery_path(v)?)))
            .collect::<Result<Vec<_>>>()?;
        let responses = self.proxy()?.send_all(requests)?;
        let mut known = self.discovery.lock().expect("discovery lock");
        for (api_version, response) in wanted.into_iter().zip(responses) {
            let response = response?;
            let resources = match response.status {
                // Not served: a CRD that is not installed, a removed API version.
                404 => Vec::new(),
                _ if response.ok() => parse_resource_list(&response.body)?,
                status => bail!(
                    "discovering {api_version} failed: HTTP {status}: {}",
                    response.message()
                ),
            };
            known.insert(api_version, resources);
        }
        Ok(())
    }

    fn resource(&self, api_version: &str, kind: &str) -> Option<ApiResource> {
        let known = self.discovery.lock().expect("discovery lock");
        known
            .get(api_version)?
            .iter()
            .find(|r| r.kind == kind)
            .cloned()
    }

    /// Asks the API server what the rollback would make of every target object, changing
    /// nothing: each object written the way this helm will write it (see `dry_run`), with
    /// `dryRun=All`, many at once. `originals` is the manifest helm rolls back from. `Err` only
    /// when the server could not be asked at all, which is no verdict.
    pub fn dry_run(
        &self,
        targets: &[Document],
        originals: &[Document],
        release_namespace: &str,
        method: WriteMethod,
    ) -> Result<DryRun> {
        let proxy = self.proxy()?;
        self.discover(targets.iter().map(|d| d.object.api_version.as_str()))?;
        let mut result = DryRun::default();
        let mut pending = Vec::new();
        for target in targets {
            let object = &target.object;
            let Some(resource) = self.resource(&object.api_version, &object.kind) else {
                let unserved = format!(
                    "{} \"{}\": no matches for kind \"{}\" in version \"{}\"",
                    object.kind, object.name, object.kind, object.api_version
                );
                if defines_kind(targets, object) {
                    result.unchecked.push(format!(
                        "{unserved} (its CustomResourceDefinition is part of this rollback)"
                    ));
                } else {
                    result.rejections.push((object.clone(), unserved));
                }
                continue;
            };
            let namespace = resource
                .namespaced
                .then(|| object.namespace_or(release_namespace).to_string());
            let collection = collection_path(&object.api_version, &resource, namespace.as_deref())?;
            let original = originals.iter().find(|o| {
                o.object.kind == object.kind
                    && o.object.group() == object.group()
                    && o.object.name == object.name
                    && o.object.namespace_or(release_namespace)
                        == object.namespace_or(release_namespace)
            });
            let write = DryRunWrite {
                target,
                collection,
                original: original.map(|o| &o.body),
            };
            let step = match method {
                WriteMethod::ServerSideApply => Method::Apply,
                WriteMethod::ClientSide if takes_strategic_merge(&object.api_version) => {
                    Method::StrategicMergePatch
                }
                WriteMethod::ClientSide => Method::MergePatch,
            };
            pending.push((write.request(step)?, write, step));
        }
        while !pending.is_empty() {
            let (requests, writes): (Vec<Request>, Vec<(DryRunWrite, Method)>) =
                pending.drain(..).map(|(r, w, m)| (r, (w, m))).unzip();
            for (response, (write, step)) in proxy.send_all(requests)?.into_iter().zip(writes) {
                let response = response?;
                let next = match dry_run::answer(
                    response.status,
                    response.reason().as_deref(),
                    &response.message(),
                    step == Method::Post,
                ) {
                    Answer::Accepted => {
                        result
                            .objects
                            .push(serde_json::from_slice(&response.body).with_context(|| {
                                format!("{} answered something that is not JSON", write.collection)
                            })?);
                        None
                    }
                    Answer::Rejected(message) => {
                        result
                            .rejections
                            .push((write.target.object.clone(), message));
                        None
                    }
                    Answer::Unchecked(reason) => {
                        result
                            .unchecked
                            .push(format!("{}: {reason}", write.describe()));
                        None
                    }
                    Answer::Absent => Some(Method::Post),
                    Answer::NoStrategicMerge if step == Method::StrategicMergePatch => {
                        Some(Method::MergePatch)
                    }
                    Answer::NoStrategicMerge => {
                        result.unchecked.push(format!(
                            "{}: the server takes no patch of this kind",
                            write.describe()
                        ));
                        None
                    }
                };
                if let Some(step) = next {
                    pending.push((write.request(step)?, write, step));
                }
            }
        }
        Ok(result)
    }
}

/// The context, server and namespace from `kubectl config view --minify -o json`. `--server`
/// among our connection flags wins, as it does for kubectl. A kubeconfig kubectl cannot minify
/// (none at all, in a pod) yields nothing known.
fn parse_config_view(stdout: &[u8], connection_args: &[String]) -> (Cluster, Option<String>) {
    let view: serde_json::Value = serde_json::from_slice(stdout).unwrap_or_default();
    let text =
        |value: &serde_json::Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let flag_server = connection_args
        .iter()
        .find_map(|a| a.strip_prefix("--server=").map(str::to_string));
    let cluster = Cluster {
        server: flag_server.or_else(|| text(&view["clusters"][0]["cluster"]["server"])),
        context: text(&view["current-context"]),
    };
    (cluster, text(&view["contexts"][0]["context"]["namespace"]))
}

/// One target object's dry-run write, in whichever form the server takes it.
struct DryRunWrite<'d> {
    target: &'d Document,
    collection: String,
    original: Option<&'d serde_json::Value>,
}

impl DryRunWrite<'_> {
    fn request(&self, method: Method) -> Result<Request> {
        let name = segment(&self.target.object.name)?;
        let manager = dry_run::HELM_FIELD_MANAGER;
        let (path, body) = match method {
            Method::Post => (
                format!("{}?dryRun=All&fieldManager={manager}", self.collection),
                &self.target.body,
            ),
            Method::Apply => (
                format!(
                    "{}/{name}?dryRun=All&fieldManager={manager}&force=true",
                    self.collection
                ),
                &self.target.body,
            ),
            _ => {
                let patch = dry_run::client_side_patch(&self.target.body, self.original);
                let path = format!(
                    "{}/{name}?dryRun=All&fieldManager={manager}",
                    self.collection
                );
                return Ok(Request {
                    method,
                    path,
                    body: serde_json::to_vec(&patch).expect("JSON object"),
                });
            }
        };
        Ok(Request {
            method,
            path,
            body: serde_json::to_vec(body).expect("JSON object"),
        })
    }

    fn describe(&self) -> String {
        let object = &self.target.object;
        format!("{} \"{}\"", object.kind, object.name)
    }
}

/// Whether the manifest itself defines `object`'s kind (a CRD and its custom resource in one
/// release): the kind is not served until helm creates the CRD, so the object cannot be
/// dry-run, which says nothing against it.
fn defines_kind(documents: &[Document], object: &ObjectRef) -> bool {
    documents.iter().any(|d| {
        d.object.kind == "CustomResourceDefinition"
            && d.body.pointer("/spec/group").and_then(|g| g.as_str()) == Some(object.group())
            && d.body.pointer("/spec/names/kind").and_then(|k| k.as_str())
                == Some(object.kind.as_str())
    })
}

/// Which read a response answers: one object by name, or a page of a kind's LIST.
enum Read {
    Named(GroupKey),
    Listed(GroupKey, String),
}

type GroupKey = (String, String, Option<String>);

impl Read {
    fn key(&self) -> &GroupKey {
        match self {
            Read::Named(key) | Read::Listed(key, _) => key,
        }
    }
}

/// What we deserialise an object into: its identity alone, or all of it.
pub(crate) trait Item: DeserializeOwned {
    fn name(&self) -> &str;
    /// A LIST's items carry no apiVersion or kind; the request says what they are.
    fn fill(&mut self, api_version: &str, kind: &str);
}

impl Item for KubeDocument {
    fn name(&self) -> &str {
        self.metadata.as_ref().map_or("", |m| m.name.as_str())
    }
    fn fill(&mut self, api_version: &str, kind: &str) {
        self.api_version = api_version.to_string();
        self.kind = kind.to_string();
    }
}

impl Item for serde_json::Value {
    fn name(&self) -> &str {
        self.pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or_default()
    }
    fn fill(&mut self, api_version: &str, kind: &str) {
        if let Some(object) = self.as_object_mut() {
            object.insert("apiVersion".into(), api_version.into());
            object.insert("kind".into(), kind.into());
        }
    }
}

#[derive(Deserialize)]
struct Page<T> {
    metadata: Option<PageMetadata>,
    #[serde(default = "Vec::new")]
    items: Vec<T>,
}

#[derive(Deserialize)]
struct PageMetadata {
    #[serde(rename = "continue")]
    next: Option<String>,
}

/// One resource of an API discovery document (`/api/v1`, `/apis/apps/v1`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ApiResource {
    /// The plural in the URL, e.g. `configmaps`.
    pub name: String,
    pub kind: String,
    pub namespaced: bool,
}

/// The resources of a discovery document, without subresources (`deployments/scale`).
pub fn parse_resource_list(json: &[u8]) -> Result<Vec<ApiResource>> {
    #[derive(Deserialize)]
    struct ResourceList {
        resources: Vec<ApiResource>,
    }
    let list: ResourceList =
        serde_json::from_slice(json).context("the API discovery document is not JSON")?;
    Ok(list
        .resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .collect())
}

/// Where an apiVersion's discovery document is: `/api/v1` for the core group, else `/apis/…`.
pub fn discovery_path(api_version: &str) -> Result<String> {
    match api_version.split_once('/') {
        None => Ok(format!("/api/{}", segment(api_version)?)),
        Some((group, version)) => Ok(format!("/apis/{}/{}", segment(group)?, segment(version)?)),
    }
}

/// The URL path of a resource's collection, in a namespace when it is namespaced.
pub fn collection_path(
    api_version: &str,
    resource: &ApiResource,
    namespace: Option<&str>,
) -> Result<String> {
    let mut path = discovery_path(api_version)?;
    if let Some(namespace) = namespace {
        path.push_str(&format!("/namespaces/{}", segment(namespace)?));
    }
    path.push('/');
    path.push_str(segment(&resource.name)?);
    Ok(path)
}

/// A name as one path segment. Kubernetes names never need escaping; one that would (from a
/// malformed manifest) must not be able to address some other object, so it is refused.
fn segment(name: &str) -> Result<&str> {
    let fits = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:@".contains(&b));
    if !fits {
        bail!("{name:?} is not a valid Kubernetes name");
    }
    Ok(name)
}

/// Percent-encodes a query value (a LIST's continue token).
fn query(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::kube_api::Response;

    /// Real `kubectl config view --minify -o json --context=prod` of a two-context kubeconfig.
    #[test]
    fn the_cluster_is_read_from_kubectls_view_of_the_kubeconfig() {
        let view = std::fs::read("tests/fixtures/api/config-view-minify.json").unwrap();
        let (cluster, namespace) = parse_config_view(&view, &[]);
        assert_eq!(cluster.server.as_deref(), Some("https://prod.example:6443"));
        assert_eq!(cluster.context.as_deref(), Some("prod"));
        assert_eq!(namespace.as_deref(), Some("payments"));
        let flags = ["--server=https://other:6443".to_string()];
        let (cluster, _) = parse_config_view(&view, &flags);
        assert_eq!(cluster.server.as_deref(), Some("https://other:6443"));
        assert_eq!(parse_config_view(b"", &[]).0, Cluster::default());
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/api/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Real discovery documents of the bed's kube-apiserver 1.20.
    #[test]
    fn discovery_gives_plurals_and_scope_without_subresources() {
        let core = parse_resource_list(&fixture("discovery-v1.json")).unwrap();
        let configmaps = core.iter().find(|r| r.kind == "ConfigMap").unwrap();
        assert_eq!(configmaps.name, "configmaps");
        assert!(configmaps.namespaced);
        let namespaces = core.iter().find(|r| r.kind == "Namespace").unwrap();
        assert!(!namespaces.namespaced);
        assert!(core.iter().all(|r| !r.name.contains('/')));
        let apps = parse_resource_list(&fixture("discovery-apps-v1.json")).unwrap();
        let deployments: Vec<_> = apps.iter().filter(|r| r.kind == "Deployment").collect();
        assert_eq!(deployments.len(), 1, "not deployments/status");
        assert_eq!(
            collection_path("apps/v1", deployments[0], Some("web")).unwrap(),
            "/apis/apps/v1/namespaces/web/deployments"
        );
        assert_eq!(
            collection_path("v1", namespaces, None).unwrap(),
            "/api/v1/namespaces"
        );
    }

    #[test]
    fn a_name_cannot_address_another_object() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../secrets",
            "a?b",
            "a b",
            "a%2Fb",
            "a#b",
        ] {
            assert!(segment(bad).is_err(), "{bad:?}");
        }
        for good in ["web", "web-1.example", "system:auth-delegator"] {
            assert_eq!(segment(good).unwrap(), good);
        }
        assert_eq!(query("eyJ2Ijo+/="), "eyJ2Ijo%2B%2F%3D");
    }

    /// A real LIST page: items without kind or apiVersion, and a continue token.
    #[test]
    fn a_list_page_gives_identities_and_the_next_page() {
        let page: Page<KubeDocument> =
            serde_json::from_slice(&fixture("list-configmaps-page.json")).unwrap();
        assert!(page.metadata.unwrap().next.is_some_and(|t| !t.is_empty()));
        let mut live = Vec::new();
        for mut item in page.items {
            item.fill("v1", "ConfigMap");
            flatten(item, &mut live);
        }
        assert_eq!(live.len(), 2);
        assert_eq!(live[0].kind, "ConfigMap");
        assert_eq!(live[0].name, "a-cm0");
        assert_eq!(live[0].owner.release_name.as_deref(), Some("a"));
        assert!(!live[0].uid.is_empty() && !live[0].resource_version.is_empty());
    }

    /// The real answer of the bed's API server to a dry run of an invalid Deployment.
    #[test]
    fn a_rejection_is_the_servers_message_and_a_dead_server_is_no_verdict() {
        let read =
            |r: &Response| dry_run::answer(r.status, r.reason().as_deref(), &r.message(), false);
        let invalid = Response {
            status: 422,
            body: fixture("dry-run-invalid-deployment.json"),
        };
        assert_eq!(invalid.reason().as_deref(), Some("Invalid"));
        let Answer::Rejected(message) = read(&invalid) else {
            panic!("{:?}", read(&invalid))
        };
        assert!(message.starts_with(
            "Deployment.apps \"b-d0\" is invalid: spec.template.spec.containers[0].env[1].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\""
        ));
        let overloaded = Response {
            status: 429,
            ..invalid.clone()
        };
        assert!(matches!(read(&overloaded), Answer::Unchecked(_)));
        let proxy_error = Response {
            status: 502,
            body: b"Error while proxying request: connection refused".to_vec(),
        };
        assert!(matches!(read(&proxy_error), Answer::Unchecked(_)));
    }

    /// Real answers of the bed's API server (v1.20) that are no verdict on the object: a
    /// validating webhook with `sideEffects: Unknown` refuses every dry run, and the server's
    /// server-side apply cannot handle a Service port without `protocol` (argo-cd, harbor…).
    #[test]
    fn a_check_the_server_cannot_make_is_no_verdict() {
        let read = |status, file| {
            let r = Response {
                status,
                body: fixture(file),
            };
            dry_run::answer(r.status, r.reason().as_deref(), &r.message(), false)
        };
        let webhook = read(400, "dry-run-webhook-without-dry-run.json");
        assert_eq!(
            webhook,
            Answer::Unchecked(
                "admission webhook \"no-dry-run.hsr.example.com\" does not support dry run".into()
            )
        );
        let Answer::Unchecked(reason) =
            read(500, "dry-run-apply-service-without-protocol-500.json")
        else {
            panic!("a 500 is no verdict")
        };
        assert!(
            reason.starts_with("HTTP 500: failed to create typed patch object"),
            "{reason}"
        );
    }
}
