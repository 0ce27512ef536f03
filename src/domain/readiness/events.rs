//! Warning events: where Kubernetes says what a status cannot hold — why a readiness probe
//! fails (`Readiness probe failed: HTTP probe failed with statuscode: 503`), why an image pull
//! failed, why a volume could not be provisioned or mounted. The list read holds the
//! namespace's Warning events only (see `io::kubectl::readiness`).

use serde_json::Value;

use super::{str_at, Listed, Observed};

impl Observed {
    /// The newest Warning event about the object with `uid`, as `Reason: message`, leaving out
    /// the kubelet's restatements of a waiting state the pod's status already names (`BackOff`,
    /// `Error: ImagePullBackOff`): the event before them says more.
    pub(super) fn last_warning(&self, namespace: &str, uid: &str) -> Option<String> {
        let events = self.items(Listed::Event, namespace)?;
        let telling = events.iter().filter(|event| {
            str_at(event, "/involvedObject/uid") == Some(uid)
                && str_at(event, "/reason") != Some("BackOff")
                && !str_at(event, "/message")
                    .unwrap_or("")
                    .starts_with("Error: ")
        });
        let newest = telling.max_by_key(|event| when(event))?;
        let reason = str_at(newest, "/reason").unwrap_or("");
        let message = str_at(newest, "/message").unwrap_or("").trim();
        Some(format!("{reason}: {message}"))
    }
}

/// When the event last happened: its series' last time, else when it was recorded. RFC 3339
/// timestamps in UTC sort as text.
fn when(event: &Value) -> &str {
    [
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|pointer| str_at(event, pointer))
    .unwrap_or("")
}
