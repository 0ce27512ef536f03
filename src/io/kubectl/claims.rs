//! Every object that carries helm's ownership label, of every kind the API server lists: what
//! finds objects no manifest of the release names (`domain::strays`).
//!
//! Discovery of every group's preferred version, then one LIST per resource (per namespace for
//! namespaced ones) by label selector, all at once and within one time budget. Only identities
//! are kept. A group or list the server will not answer (RBAC, an aggregated API without a
//! backend) is "not checked" with its reason, never an error.
//!
//! helm's label selects every release's objects, so what one namespace's lists found serves
//! every release diagnosed in the same run: the incident view lists each namespace, and the
//! cluster-scoped kinds, once (`ClaimsMemo`), not once per release.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use serde::Deserialize;

use super::api_paths::query;
use super::{collection_path, discovery_path, parse_resource_list, ApiResource, Item, Kubectl};
use super::{Page, PAGE_SIZE};
use crate::domain::live::{flatten, KubeDocument};
use crate::domain::model::LiveObject;
use crate::io::kube_api::{Request, Response};

/// The label helm puts on every object it applies.
const HELM_MANAGED: &str = "app.kubernetes.io/managed-by=Helm";
/// How often one list is asked while the server answers "not now" (429, 503), and how long
/// apart.
const LIST_ATTEMPTS: u32 = 4;
const RETRY_PAUSE: Duration = Duration::from_millis(750);

/// What the lists found.
#[derive(Debug, Default)]
pub struct Claims {
    /// Every object with helm's label (any release's), each once.
    pub objects: Vec<LiveObject>,
    /// What could not be listed, and why.
    pub not_checked: Vec<String>,
}

/// What this run's lists found, by scope (a namespace, or `None` for the cluster-scoped kinds),
/// with discovery's answer: kept for the run, so a scope is listed once however many releases
/// ask for it.
#[derive(Default)]
pub(super) struct ClaimsMemo {
    discovered: Option<Listable>,
    scopes: HashMap<Option<String>, Claims>,
}

/// The listable resources of each API version, and what discovery could not answer.
struct Listable {
    resources: Vec<(String, Vec<ApiResource>)>,
    not_checked: Vec<String>,
}

impl Kubectl {
    /// Lists every listable kind with helm's label: namespaced kinds in each of `namespaces`,
    /// cluster-scoped kinds once. Everything is due within `budget`; `Err` only when the API
    /// server cannot be asked at all. A scope an earlier call of this run listed is not listed
    /// again.
    pub fn claims(&self, namespaces: &[String], budget: Duration) -> Result<Claims> {
        // Held for the whole listing: a second caller waits for the first one's lists and
        // then reuses them, instead of asking the same lists beside it.
        let mut memo = self.claims_memo.lock().expect("claims memo");
        let started = std::time::Instant::now();
        let left = || budget.saturating_sub(started.elapsed());
        if memo.discovered.is_none() {
            memo.discovered = Some(self.discover_listable(left())?);
        }
        let scopes: Vec<Option<String>> = namespaces
            .iter()
            .map(|n| Some(n.clone()))
            .chain([None])
            .collect();
        let missing: Vec<Option<String>> = scopes
            .iter()
            .filter(|scope| !memo.scopes.contains_key(*scope))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let discovered = memo.discovered.as_ref().expect("discovered above");
            let mut lists = Vec::new();
            for (version, resources) in &discovered.resources {
                for resource in resources {
                    lists.extend(list_paths(version, resource, &missing)?);
                }
            }
            let mut found: HashMap<Option<String>, Claims> = missing
                .into_iter()
                .map(|s| (s, Claims::default()))
                .collect();
            self.list_all(lists, left(), &mut found)?;
            memo.scopes.extend(found);
        }
        let mut claims = Claims {
            objects: Vec::new(),
            not_checked: memo
                .discovered
                .as_ref()
                .expect("discovered above")
                .not_checked
                .clone(),
        };
        for scope in &scopes {
            let listed = &memo.scopes[scope];
            claims.objects.extend(listed.objects.iter().cloned());
            claims
                .not_checked
                .extend(listed.not_checked.iter().cloned());
        }
        claims.objects.sort_by(|a, b| a.uid.cmp(&b.uid));
        claims.objects.dedup_by(|a, b| a.uid == b.uid);
        Ok(claims)
    }

    /// Each API version's listable resources (the core one and every group's preferred one),
    /// and what discovery could not answer.
    fn discover_listable(&self, budget: Duration) -> Result<Listable> {
        let proxy = self.proxy()?;
        let started = std::time::Instant::now();
        let mut not_checked = Vec::new();
        let mut versions = vec!["v1".to_string()];
        let groups = proxy.send_all_within(vec![Request::get("/apis".into())], budget)?;
        match groups.into_iter().next() {
            Some(Ok(response)) if response.ok() => versions.extend(preferred_versions(&response)),
            other => not_checked.push(format!(
                "objects of API groups other than the core one: {}",
                failure(other)
            )),
        }
        let requests = versions
            .iter()
            .map(|v| Ok(Request::get(discovery_path(v)?)))
            .collect::<Result<Vec<_>>>()?;
        let answers = proxy.send_all_within(requests, budget.saturating_sub(started.elapsed()))?;
        let mut discovered = Vec::new();
        for (version, answer) in versions.into_iter().zip(answers) {
            match answer {
                Ok(response) if response.ok() => {
                    let resources = parse_resource_list(&response.body)?;
                    discovered.push((
                        version,
                        resources.into_iter().filter(|r| r.lists()).collect(),
                    ));
                }
                other => {
                    not_checked.push(format!("objects of {version}: {}", failure(Some(other))))
                }
            }
        }
        Ok(Listable {
            resources: discovered,
            not_checked,
        })
    }

    /// Every page of every list, within `budget`, into the claims of the list's scope.
    fn list_all(
        &self,
        mut pending: Vec<List>,
        budget: Duration,
        found: &mut HashMap<Option<String>, Claims>,
    ) -> Result<()> {
        let proxy = self.proxy()?;
        let started = std::time::Instant::now();
        while !pending.is_empty() {
            let requests = pending
                .iter()
                .map(|l| Request::get(l.page_path()))
                .collect();
            let answers =
                proxy.send_all_within(requests, budget.saturating_sub(started.elapsed()))?;
            let mut next = Vec::new();
            let mut again = false;
            for (mut list, answer) in pending.into_iter().zip(answers) {
                let claims = found.entry(list.namespace.clone()).or_default();
                let response = match answer {
                    Ok(response) if response.ok() => response,
                    // Gone since discovery (a CRD removed), or not listable after all.
                    Ok(response) if matches!(response.status, 404 | 405) => continue,
                    // A custom resource's storage (re)initialising after its CRD changed, an
                    // API server shedding load: asked again, while the budget lasts.
                    Ok(response)
                        if matches!(response.status, 429 | 503)
                            && list.attempts < LIST_ATTEMPTS
                            && started.elapsed() + RETRY_PAUSE < budget =>
                    {
                        list.attempts += 1;
                        again = true;
                        next.push(list);
                        continue;
                    }
                    other => {
                        claims.not_checked.push(format!(
                            "{}: {}",
                            list.what(),
                            failure(Some(other))
                        ));
                        continue;
                    }
                };
                let Ok(page) = serde_json::from_slice::<Page<KubeDocument>>(&response.body) else {
                    claims
                        .not_checked
                        .push(format!("{}: the answer is not a list", list.what()));
                    continue;
                };
                for mut document in page.items {
                    document.fill(&list.api_version, &list.kind);
                    flatten(document, &mut claims.objects);
                }
                if let Some(token) = page.metadata.and_then(|m| m.next).filter(|t| !t.is_empty()) {
                    list.next = Some(token);
                    next.push(list);
                }
            }
            if again {
                std::thread::sleep(RETRY_PAUSE);
            }
            pending = next;
        }
        Ok(())
    }
}

impl ApiResource {
    fn lists(&self) -> bool {
        self.verbs.iter().any(|v| v == "list")
    }
}

/// One resource's LIST by helm's label, in one namespace or cluster-wide, page by page.
struct List {
    api_version: String,
    kind: String,
    collection: String,
    namespace: Option<String>,
    next: Option<String>,
    attempts: u32,
}

impl List {
    fn page_path(&self) -> String {
        let mut path = format!(
            "{}?labelSelector={}&limit={PAGE_SIZE}",
            self.collection,
            query(HELM_MANAGED)
        );
        if let Some(token) = &self.next {
            path.push_str(&format!("&continue={}", query(token)));
        }
        path
    }

    fn what(&self) -> String {
        match &self.namespace {
            Some(namespace) => format!("{} objects in namespace {namespace}", self.kind),
            None => format!("{} objects", self.kind),
        }
    }
}

/// The lists of `resource` in those of `scopes` that are its kind of scope: each namespace for
/// a namespaced kind, the cluster (`None`) for a cluster-scoped one.
fn list_paths(
    version: &str,
    resource: &ApiResource,
    scopes: &[Option<String>],
) -> Result<Vec<List>> {
    let scopes: Vec<Option<&str>> = scopes
        .iter()
        .map(Option::as_deref)
        .filter(|scope| scope.is_some() == resource.namespaced)
        .collect();
    scopes
        .into_iter()
        .map(|namespace| {
            Ok(List {
                api_version: version.to_string(),
                kind: resource.kind.clone(),
                collection: collection_path(version, resource, namespace)?,
                namespace: namespace.map(str::to_string),
                next: None,
                attempts: 1,
            })
        })
        .collect()
}

/// Each group's preferred version (`apps/v1`) from `/apis`.
fn preferred_versions(response: &Response) -> Vec<String> {
    #[derive(Deserialize)]
    struct GroupList {
        groups: Vec<Group>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Group {
        preferred_version: Option<Version>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Version {
        group_version: String,
    }
    serde_json::from_slice::<GroupList>(&response.body)
        .map(|list| {
            list.groups
                .into_iter()
                .filter_map(|g| g.preferred_version.map(|v| v.group_version))
                .collect()
        })
        .unwrap_or_default()
}

/// Why an answer is no list: the server's status and message, or that none came.
fn failure(answer: Option<Result<Response>>) -> String {
    match answer {
        Some(Ok(response)) => format!("HTTP {}: {}", response.status, response.message()),
        Some(Err(error)) => format!("{error:#}"),
        None => "no answer".into(),
    }
}
