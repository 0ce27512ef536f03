//! The preflight's (and verification's) dry run: every target object written the way this helm
//! will write it (see `domain::dry_run`), with `dryRun=All`, many at once.

use anyhow::{Context, Result};

use super::api_paths::{collection_path, segment};
use super::Kubectl;
use crate::domain::dry_run::{self, takes_strategic_merge, Answer, WriteMethod};
use crate::domain::live;
use crate::domain::manifest::Document;
use crate::domain::model::ObjectRef;
use crate::domain::strategic;
use crate::io::kube_api::{Method, Request, Response};

/// What a server-side dry run said: the objects it rejected (the server's messages) and the
/// objects as it would have made them. Never serialised: the objects can hold Secret data.
#[derive(Debug, Default)]
pub struct DryRun {
    /// The objects the server objects to, with its message.
    pub rejections: Vec<(ObjectRef, String)>,
    /// Objects the server gave no verdict on, and why: checks that could not run.
    pub unchecked: Vec<String>,
    pub objects: Vec<serde_json::Value>,
    /// The objects of `objects` written onto an object that existed (patched or applied), not
    /// created: what the same write onto the same object will make, after the rollback too.
    pub written_onto_live: Vec<ObjectRef>,
}

impl Kubectl {
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
        force_conflicts: bool,
    ) -> Result<DryRun> {
        let proxy = self.proxy()?;
        self.discover(targets.iter().map(|d| d.object.api_version.as_str()))?;
        let mut result = DryRun::default();
        let mut pending = Vec::new();
        for target in targets {
            let object = &target.object;
            let Some(resource) = self.resource(&object.api_version, &object.kind) else {
                unserved(targets, object, &mut result);
                continue;
            };
            let namespace = resource
                .namespaced
                .then(|| object.namespace_or(release_namespace).to_string());
            let collection = collection_path(&object.api_version, &resource, namespace.as_deref())?;
            let write = DryRunWrite {
                target,
                collection,
                original: original_of(originals, object, release_namespace).map(|o| &o.body),
                force_conflicts,
            };
            let step = first_step(method, &object.api_version);
            pending.push((write.request(step)?, write, step));
        }
        while !pending.is_empty() {
            let (requests, writes): (Vec<Request>, Vec<(DryRunWrite, Method)>) =
                pending.drain(..).map(|(r, w, m)| (r, (w, m))).unzip();
            for (response, (write, step)) in proxy.send_all(requests)?.into_iter().zip(writes) {
                if let Some(step) = write.read_answer(&response?, step, &mut result)? {
                    pending.push((write.request(step)?, write, step));
                }
            }
        }
        Ok(result)
    }
}

/// An object whose kind the server does not serve: rejected, unless the rollback itself brings
/// the kind's CustomResourceDefinition (then it cannot be checked yet).
fn unserved(targets: &[Document], object: &ObjectRef, result: &mut DryRun) {
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
}

/// The same object in the manifest helm rolls back from: client-side patches are computed
/// against it.
fn original_of<'d>(
    originals: &'d [Document],
    object: &ObjectRef,
    release_namespace: &str,
) -> Option<&'d Document> {
    originals.iter().find(|o| {
        o.object.kind == object.kind
            && o.object.group() == object.group()
            && o.object.name == object.name
            && o.object.namespace_or(release_namespace) == object.namespace_or(release_namespace)
    })
}

/// How helm writes an object first: server-side apply, or a patch of the kind the type takes.
fn first_step(method: WriteMethod, api_version: &str) -> Method {
    match method {
        WriteMethod::ServerSideApply => Method::Apply,
        WriteMethod::ClientSide if takes_strategic_merge(api_version) => {
            Method::StrategicMergePatch
        }
        WriteMethod::ClientSide => Method::MergePatch,
    }
}

/// One target object's dry-run write, in whichever form the server takes it.
struct DryRunWrite<'d> {
    target: &'d Document,
    collection: String,
    original: Option<&'d serde_json::Value>,
    /// helm applies with `force` only when told (`--force-conflicts`): without it, a field
    /// another manager owns is a conflict, for helm and for this dry run alike.
    force_conflicts: bool,
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
                    "{}/{name}?dryRun=All&fieldManager={manager}&force={}",
                    self.collection, self.force_conflicts
                ),
                &self.target.body,
            ),
            _ => {
                let mut patch = dry_run::client_side_patch(&self.target.body, self.original);
                if method == Method::StrategicMergePatch {
                    let kind = &self.target.object.kind;
                    strategic::add_strategic_directives(&mut patch, self.original, kind);
                }
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

    /// Records what the server's answer to `step` means; `Some(next step)` when the write must
    /// be made another way (create what is absent; merge-patch what takes no strategic merge).
    fn read_answer(
        &self,
        response: &Response,
        step: Method,
        result: &mut DryRun,
    ) -> Result<Option<Method>> {
        let creating = step == Method::Post;
        // A create or a server-side apply of the target is helm's write itself; a patch is our
        // model of helm's three-way patch.
        let helms_own_write = matches!(step, Method::Post | Method::Apply);
        let answer = dry_run::answer(
            response.status,
            response.reason().as_deref(),
            &response.message(),
            creating,
            helms_own_write,
        );
        match answer {
            Answer::Accepted => {
                let mut object = serde_json::from_slice(&response.body).with_context(|| {
                    format!("{} answered something that is not JSON", self.collection)
                })?;
                live::drop_managed_fields(&mut object);
                result.objects.push(object);
                // 201: a server-side apply creates what is not there, as a POST does.
                if !creating && response.status == 200 {
                    result.written_onto_live.push(self.target.object.clone());
                }
            }
            Answer::Rejected(message) => {
                result
                    .rejections
                    .push((self.target.object.clone(), message));
            }
            Answer::Unchecked(reason) => {
                result
                    .unchecked
                    .push(format!("{}: {reason}", self.describe()));
            }
            Answer::Absent => return Ok(Some(Method::Post)),
            Answer::NoStrategicMerge if step == Method::StrategicMergePatch => {
                return Ok(Some(Method::MergePatch))
            }
            Answer::NoStrategicMerge => result.unchecked.push(format!(
                "{}: the server takes no patch of this kind",
                self.describe()
            )),
        }
        Ok(None)
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
