//! Where things are on the API server: discovery documents, collection and object paths, built
//! only from names that cannot address anything else.

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// One resource of an API discovery document (`/api/v1`, `/apis/apps/v1`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ApiResource {
    /// The plural in the URL, e.g. `configmaps`.
    pub name: String,
    pub kind: String,
    pub namespaced: bool,
    /// What the resource allows (`list`, `get`, …).
    #[serde(default)]
    pub verbs: Vec<String>,
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
pub(crate) fn segment(name: &str) -> Result<&str> {
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
pub(crate) fn query(value: &str) -> String {
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
