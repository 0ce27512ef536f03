//! Deleting leftovers so that the delete itself is safe, and bounded.
//!
//! Each delete goes through our `kubectl proxy` with the uid we proved ours as a precondition:
//! if the object was replaced between our read and the delete (same name, new uid), the API
//! server refuses (409) and the new object is left alone. The deletes are sent at once, then we
//! poll until they are gone, for a bounded time: an object held by a finalizer is reported
//! `terminating` with its finalizers instead of hanging the run.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::domain::model::LiveObject;
use crate::domain::record::{Action, ActionKind, ActionResult};
use crate::io::kube_api::{Method, Request, Response};
use crate::io::kubectl::{Item, Kubectl};
use crate::io::trace;

const POLL: Duration = Duration::from_millis(250);

/// Deletes the objects (uid preconditions, all at once), waits up to `wait` for them to be
/// gone, and says what became of each.
pub fn delete_all(
    objects: &[&LiveObject],
    action: ActionKind,
    kubectl: &Kubectl,
    release_namespace: &str,
    wait: Duration,
) -> Vec<Action> {
    if objects.is_empty() {
        return Vec::new();
    }
    let started = Instant::now();
    let mut results = send_deletes(objects, action, kubectl, release_namespace);
    let pending: Vec<usize> = (0..objects.len())
        .filter(|i| results[*i].is_none())
        .collect();
    let waited = wait_until_gone(objects, &pending, kubectl, release_namespace, wait);
    for (index, result) in pending.into_iter().zip(waited) {
        results[index] = Some(result);
    }
    trace::step("deleting leftovers and waiting for them to go", started);
    objects
        .iter()
        .zip(results)
        .map(|(object, result)| Action {
            kind: object.kind.clone(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            uid: object.uid.clone(),
            action,
            result: result.expect("every object has a result"),
        })
        .collect()
}

/// Sends one DELETE per object; `None` for those the server accepted (to be waited on).
fn send_deletes(
    objects: &[&LiveObject],
    action: ActionKind,
    kubectl: &Kubectl,
    release_namespace: &str,
) -> Vec<Option<ActionResult>> {
    let failed = |error: String| Some(ActionResult::Failed { error });
    let proxy = match kubectl.proxy() {
        Ok(proxy) => proxy,
        Err(error) => {
            return objects
                .iter()
                .map(|_| failed(format!("{error:#}")))
                .collect()
        }
    };
    let mut results: Vec<Option<ActionResult>> = vec![None; objects.len()];
    let mut requests = Vec::new();
    let mut sent = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        match kubectl.object_path(&object.as_ref(), release_namespace) {
            Ok(Some(path)) => {
                let options = options(&object.uid, action);
                requests.push(Request::json(Method::Delete, path, &options));
                sent.push(index);
            }
            // The server no longer serves its kind: it cannot exist.
            Ok(None) => results[index] = Some(ActionResult::Gone),
            Err(error) => results[index] = failed(format!("{error:#}")),
        }
    }
    match proxy.send_all(requests) {
        Ok(responses) => {
            for (index, response) in sent.into_iter().zip(responses) {
                results[index] = match response {
                    Ok(response) => answer(&response),
                    Err(error) => failed(format!("{error:#}")),
                };
            }
        }
        Err(error) => {
            for index in sent {
                results[index] = failed(format!("{error:#}"));
            }
        }
    }
    results
}

/// The body of a delete: only the object with this uid, its dependents deleted after it, or
/// left running when the object is only replaced.
pub fn options(uid: &str, action: ActionKind) -> serde_json::Value {
    let propagation = match action {
        ActionKind::ReplaceImmutable => "Orphan",
        ActionKind::Delete | ActionKind::DeleteOrphan => "Background",
    };
    serde_json::json!({
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "preconditions": {"uid": uid},
        "propagationPolicy": propagation,
    })
}

/// What the API server's answer to a delete means; `None` when accepted (wait for it).
fn answer(response: &Response) -> Option<ActionResult> {
    match response.status {
        200..=299 => None,
        404 => Some(ActionResult::Gone),
        // The uid precondition failed: the object was replaced.
        409 => Some(ActionResult::Replaced),
        status => Some(ActionResult::Failed {
            error: format!("HTTP {status}: {}", response.message()),
        }),
    }
}

/// Polls until every pending object is gone or `wait` has passed; one result per pending index.
fn wait_until_gone(
    objects: &[&LiveObject],
    pending: &[usize],
    kubectl: &Kubectl,
    release_namespace: &str,
    wait: Duration,
) -> Vec<ActionResult> {
    let refs: Vec<_> = pending.iter().map(|i| objects[*i].as_ref()).collect();
    let deadline = Instant::now() + wait;
    let mut last: anyhow::Result<Vec<Deletion>> = Ok(Vec::new());
    while !refs.is_empty() {
        last = kubectl.read::<Deletion>(&refs, release_namespace);
        let remaining = match &last {
            Ok(found) => pending
                .iter()
                .filter(|i| found.iter().any(|d| d.metadata.uid == objects[**i].uid))
                .count(),
            Err(_) => pending.len(),
        };
        if remaining == 0 || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL);
    }
    pending
        .iter()
        .map(|i| still_there(objects[*i], &last))
        .collect()
}

fn still_there(object: &LiveObject, last: &anyhow::Result<Vec<Deletion>>) -> ActionResult {
    let found = match last {
        Ok(found) => found,
        Err(error) => {
            return ActionResult::Failed {
                error: format!("deleted, but could not check that it is gone: {error:#}"),
            }
        }
    };
    // Another object of the same name (another uid) is not ours: ours is gone.
    match found.iter().find(|d| d.metadata.uid == object.uid) {
        None => ActionResult::Deleted,
        Some(d) if d.metadata.deletion_timestamp.is_some() => ActionResult::Terminating {
            finalizers: d.metadata.finalizers.clone(),
        },
        Some(_) => ActionResult::Failed {
            error: "still present after delete".into(),
        },
    }
}

/// What we read of an object being deleted: never its data.
#[derive(Deserialize)]
pub(crate) struct Deletion {
    metadata: DeletionMetadata,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletionMetadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
    deletion_timestamp: Option<String>,
    #[serde(default)]
    finalizers: Vec<String>,
}

impl Item for Deletion {
    fn name(&self) -> &str {
        &self.metadata.name
    }
    fn fill(&mut self, _api_version: &str, _kind: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real answers of the bed's API server (v1.20) to deletes with a uid precondition.
    #[test]
    fn the_servers_answer_says_what_became_of_the_object() {
        let conflict = Response {
            status: 409,
            body: br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on ConfigMap \"x\": the UID in the precondition (0f4b) does not match the UID in record (104a1a2a-61c7-42ea-86f9-f6c2c353e765). The object might have been deleted and then recreated","reason":"Conflict","details":{"name":"x","kind":"ConfigMap"},"code":409}"#.to_vec(),
        };
        assert_eq!(answer(&conflict), Some(ActionResult::Replaced));
        let missing = Response {
            status: 404,
            body: br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"configmaps \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"configmaps"},"code":404}"#.to_vec(),
        };
        assert_eq!(answer(&missing), Some(ActionResult::Gone));
        assert_eq!(
            answer(&Response {
                status: 200,
                body: Vec::new()
            }),
            None
        );
        // Made up in the server's format: the bed's admin may do anything.
        let forbidden = Response {
            status: 403,
            body: br#"{"kind":"Status","message":"configmaps \"x\" is forbidden: User \"u\" cannot delete resource","code":403}"#.to_vec(),
        };
        assert!(
            matches!(answer(&forbidden), Some(ActionResult::Failed { error }) if error.contains("cannot delete"))
        );
    }

    #[test]
    fn a_held_object_is_terminating_and_a_successor_is_not_ours() {
        let object = LiveObject {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("ns".into()),
            name: "x".into(),
            uid: "ours".into(),
            resource_version: "1".into(),
            owner: crate::domain::model::ReleaseOwner {
                release_name: None,
                release_namespace: None,
            },
            resource_policy: None,
            managed_by: None,
        };
        let read = |json: &str| -> anyhow::Result<Vec<Deletion>> {
            Ok(vec![serde_json::from_str(json).unwrap()])
        };
        let held = read(
            r#"{"metadata":{"name":"x","uid":"ours","deletionTimestamp":"2026-11-30T08:00:00Z","finalizers":["example.com/hold"]}}"#,
        );
        assert_eq!(
            still_there(&object, &held),
            ActionResult::Terminating {
                finalizers: vec!["example.com/hold".into()]
            }
        );
        let successor = read(r#"{"metadata":{"name":"x","uid":"theirs"}}"#);
        assert_eq!(still_there(&object, &successor), ActionResult::Deleted);
        let unread = Err(anyhow::anyhow!("connection refused"));
        assert!(matches!(
            still_there(&object, &unread),
            ActionResult::Failed { .. }
        ));
    }
}
