//! How many objects a collection holds, in every namespace: what a CustomResourceDefinition's
//! delete takes with it (`domain::destructive`).

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::api_paths::{query, segment};
use super::Kubectl;
use crate::io::kube_api::Request;

/// Pages of names only would still carry every object: the server's own count is asked for
/// with a page of one, and paged through only when it gives none.
#[derive(Deserialize)]
struct CountedPage {
    #[serde(default)]
    metadata: CountedMetadata,
    #[serde(default)]
    items: Vec<serde::de::IgnoredAny>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CountedMetadata {
    #[serde(rename = "continue")]
    next: Option<String>,
    remaining_item_count: Option<u64>,
}

impl Kubectl {
    /// The number of `plural` objects of `group`/`version`, in every namespace.
    pub fn count_all(&self, group: &str, version: &str, plural: &str) -> Result<u64> {
        let proxy = self.proxy()?;
        let collection = format!(
            "/apis/{}/{}/{}",
            segment(group)?,
            segment(version)?,
            segment(plural)?
        );
        let (mut counted, mut next, mut limit) = (0, None::<String>, 1);
        loop {
            let path = match &next {
                Some(token) => format!("{collection}?limit={limit}&continue={}", query(token)),
                None => format!("{collection}?limit={limit}"),
            };
            let response = proxy
                .send_all(vec![Request::get(path.clone())])?
                .pop()
                .context("no answer")??;
            if !response.ok() {
                bail!(
                    "listing {collection} failed: HTTP {}: {}",
                    response.status,
                    response.message()
                );
            }
            let page: CountedPage = serde_json::from_slice(&response.body)
                .with_context(|| format!("{path} answered something that is not a list"))?;
            counted += page.items.len() as u64;
            if let Some(remaining) = page.metadata.remaining_item_count {
                return Ok(counted + remaining);
            }
            match page.metadata.next.filter(|n| !n.is_empty()) {
                Some(token) => (next, limit) = (Some(token), 500),
                None => return Ok(counted),
            }
        }
    }
}
