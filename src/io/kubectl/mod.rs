//! The cluster, as kubectl reaches it: reading object identities, the preflight dry run,
//! verification reads, deleting leftovers.
//!
//! Reads and dry runs go to the API server through one `kubectl proxy` per run (see
//! `kube_api`): many requests at once, and nothing per object on our side but JSON (deletes too,
//! see `delete`). Identities deserialise only metadata (`domain::live`), so a Secret's data is
//! dropped by the parser and never held in our types.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;

mod api_paths;
mod claims;
mod count;
mod dry_run;
mod readiness;

pub use self::api_paths::{collection_path, discovery_path, parse_resource_list, ApiResource};
pub use self::claims::Claims;
pub use self::dry_run::DryRun;

use self::api_paths::{query, segment};
use crate::domain::live::{self, flatten, KubeDocument, StoredData};
use crate::domain::model::{Cluster, LiveObject, ObjectRef};
use crate::io::exec::{self, Output};
use crate::io::kube_api::{Proxy, Request};

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
    /// What the listing of every kind found so far in this run (see `claims`).
    claims_memo: Mutex<claims::ClaimsMemo>,
}

impl Kubectl {
    pub fn new(bin: PathBuf, connection_args: Vec<String>) -> Kubectl {
        Kubectl {
            bin,
            connection_args,
            proxy: OnceLock::new(),
            discovery: Mutex::new(HashMap::new()),
            discovering: Mutex::new(()),
            claims_memo: Mutex::new(claims::ClaimsMemo::default()),
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
        Ok(self.identities_and_data(objects, release_namespace)?.0)
    }

    /// [`Kubectl::identities`], and what the ConfigMaps and Secrets among them store, from the
    /// same read. The data is held in memory for comparison only.
    pub fn identities_and_data(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<(Vec<LiveObject>, Vec<StoredData>)> {
        let documents: Vec<KubeDocument> = self.read(objects, release_namespace)?;
        let data = documents.iter().filter_map(StoredData::of).collect();
        let mut live = Vec::new();
        for document in documents {
            flatten(document, &mut live);
        }
        Ok((live, data))
    }

    /// The objects themselves, as the API server returns them, read like
    /// [`Kubectl::identities`]. Held in memory for comparison only: they can hold Secret data.
    pub fn objects(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<Vec<serde_json::Value>> {
        let mut values: Vec<serde_json::Value> = self.read(objects, release_namespace)?;
        values.iter_mut().for_each(live::drop_managed_fields);
        Ok(values)
    }

    /// The pods of a Job, by the `job-name` label its controller gives them. As the API server
    /// returns them; they are read for their status.
    pub fn job_pods(&self, namespace: &str, job: &str) -> Result<Vec<serde_json::Value>> {
        let path = format!(
            "/api/v1/namespaces/{}/pods?labelSelector={}",
            segment(namespace)?,
            query(&format!("job-name={job}"))
        );
        let response = self
            .proxy()?
            .send_all(vec![Request::get(path.clone())])?
            .pop()
            .context("no answer")??;
        if !response.ok() {
            bail!(
                "reading {path} failed: HTTP {}: {}",
                response.status,
                response.message()
            );
        }
        let page: Page<serde_json::Value> = serde_json::from_slice(&response.body)
            .with_context(|| format!("{path} answered something that is not a list"))?;
        Ok(page.items)
    }

    /// The objects and their identities from one read (`--diagnose` needs both).
    pub fn objects_with_identities(
        &self,
        objects: &[ObjectRef],
        release_namespace: &str,
    ) -> Result<(Vec<serde_json::Value>, Vec<LiveObject>)> {
        let values = self.objects(objects, release_namespace)?;
        let mut live = Vec::new();
        for value in &values {
            let document =
                KubeDocument::deserialize(value).context("an object without metadata")?;
            flatten(document, &mut live);
        }
        Ok((values, live))
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
        let groups = self.group_by_kind(objects, release_namespace);
        let mut pending = first_reads(&groups)?;
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
                let members = &groups[read.key()].1;
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

    /// The objects by kind and namespace, each kind with the resource that serves it; a kind the
    /// server does not serve has no objects.
    fn group_by_kind<'o>(&self, objects: &'o [ObjectRef], release_namespace: &str) -> Groups<'o> {
        let mut groups: Groups = BTreeMap::new();
        for object in objects {
            let Some(resource) = self.resource(&object.api_version, &object.kind) else {
                continue;
            };
            let namespace = resource
                .namespaced
                .then(|| object.namespace_or(release_namespace).to_string());
            let key = (object.api_version.clone(), object.kind.clone(), namespace);
            groups
                .entry(key)
                .or_insert_with(|| (resource, Vec::new()))
                .1
                .push(object);
        }
        groups
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

type Groups<'o> = BTreeMap<GroupKey, (ApiResource, Vec<&'o ObjectRef>)>;

/// The first request for each kind: by name when it has few objects, else a LIST page.
fn first_reads(groups: &Groups) -> Result<Vec<(Read, Request)>> {
    let mut pending = Vec::new();
    for (key, (resource, members)) in groups {
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
    Ok(pending)
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

#[cfg(test)]
mod tests;
