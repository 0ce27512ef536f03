//! The reads behind `domain::readiness`: one LIST per kind and namespace, all sent at once and
//! all due within a short budget. They only add to a report about a failure that has already
//! happened, so a list that is refused (RBAC) or late is a warning and its objects go
//! unjudged; nothing here can fail the run.

use std::time::Duration;

use anyhow::Result;

use super::api_paths::segment;
use super::Kubectl;
use crate::domain::readiness::{Listed, Observed};
use crate::io::kube_api::Request;

impl Kubectl {
    /// Reads the lists; the warnings name each one that could not be read, and why.
    pub fn observe_readiness(
        &self,
        reads: &[(Listed, String)],
        budget: Duration,
    ) -> (Observed, Vec<String>) {
        let mut observed = Observed::default();
        let mut warnings = Vec::new();
        let not_checked = |(kind, namespace): &(Listed, String), why: &str| {
            format!("readiness not checked for {kind:?}s in namespace {namespace}: {why}")
        };
        let requests: Result<Vec<Request>> = reads
            .iter()
            .map(|(kind, namespace)| Ok(Request::get(list_path(*kind, namespace)?)))
            .collect();
        let answers = requests.and_then(|requests| {
            let proxy = self.proxy()?;
            proxy.send_all_within(requests, budget)
        });
        let answers = match answers {
            Ok(answers) => answers,
            Err(error) => {
                let why = format!("{error:#}");
                return (
                    observed,
                    reads.iter().map(|r| not_checked(r, &why)).collect(),
                );
            }
        };
        for (read, answer) in reads.iter().zip(answers) {
            let list = answer.and_then(|response| {
                if !response.ok() {
                    anyhow::bail!("HTTP {}: {}", response.status, response.message());
                }
                Ok(serde_json::from_slice::<serde_json::Value>(&response.body)?)
            });
            match list {
                Ok(list) => observed.insert(read.0, &read.1, list),
                Err(error) => warnings.push(not_checked(read, &format!("{error:#}"))),
            }
        }
        (observed, warnings)
    }
}

/// `/apis/apps/v1/namespaces/web/deployments`, `/api/v1/namespaces/web/pods`.
fn list_path(kind: Listed, namespace: &str) -> Result<String> {
    let (group_version, plural) = kind.resource();
    let root = if group_version.contains('/') {
        "apis"
    } else {
        "api"
    };
    // Events: only warnings, the ones that explain; a namespace's Normal events can be many.
    let only = match kind {
        Listed::Event => "?fieldSelector=type%3DWarning",
        _ => "",
    };
    Ok(format!(
        "/{root}/{group_version}/namespaces/{}/{plural}{only}",
        segment(namespace)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_read_where_the_api_server_serves_them() {
        assert_eq!(
            list_path(Listed::Deployment, "web").unwrap(),
            "/apis/apps/v1/namespaces/web/deployments"
        );
        assert_eq!(
            list_path(Listed::PersistentVolumeClaim, "web").unwrap(),
            "/api/v1/namespaces/web/persistentvolumeclaims"
        );
        assert_eq!(
            list_path(Listed::Event, "web").unwrap(),
            "/api/v1/namespaces/web/events?fieldSelector=type%3DWarning"
        );
        assert!(list_path(Listed::Pod, "../x").is_err());
    }
}
