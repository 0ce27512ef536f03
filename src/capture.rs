//! Step 1: record the pre-state before anything changes.
//!
//! The snapshot is what makes every later decision provable: an object is only ever called
//! "created by this rollback" because its uid is *not* in here.

use std::sync::mpsc;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::helm::{self, Helm};
use crate::kubectl::{DryRun, Kubectl};
use crate::manifest::{self, objects_of, Document};
use crate::model::{Cluster, HelmVersion, LiveObject, ObjectRef, ReleaseId, Revision};
use crate::preflight;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub release: ReleaseId,
    /// The cluster the run talked to (journals before it was recorded have none).
    #[serde(default)]
    pub cluster: Cluster,
    pub helm: HelmVersion,
    pub history: Vec<Revision>,
    pub from_revision: u64,
    pub to_revision: u64,
    /// Objects of the newest revision (what helm rolls back *from*).
    pub current: Vec<ObjectRef>,
    /// Objects of the revision helm rolls back *to*.
    pub target: Vec<ObjectRef>,
    /// Identities of every object of `current` ∪ `target` that existed when we looked.
    pub live: Vec<LiveObject>,
    pub taken_at: String,
    /// The newest revision helm completed successfully, and its objects (see preflight).
    pub last_successful_revision: Option<u64>,
    pub last_successful: Vec<ObjectRef>,
    /// The target manifest's objects in full, for the preflight dry run and verification. Never
    /// serialised: they can hold Secret data.
    #[serde(skip)]
    pub target_documents: Vec<Document>,
}

/// Where capture failed; before the rollback nothing has changed, whatever the step.
pub struct CaptureError {
    pub step: &'static str,
    pub error: anyhow::Error,
    /// Whatever was learnt before the failure, for the report.
    pub helm: Option<HelmVersion>,
}

pub struct Request<'a> {
    pub release: &'a str,
    /// Known from flags or HELM_NAMESPACE; otherwise read from the kubeconfig.
    pub namespace: Option<&'a str>,
    pub revision: Option<u64>,
}

/// The snapshot, and — when asked for — the API server's verdict on the target revision (a
/// server-side dry run, see preflight), fetched while the live identities are being read: both
/// need only the manifests, so asking at once saves a kubectl round trip on every run.
pub struct Captured {
    pub snapshot: Snapshot,
    pub dry_run: Option<anyhow::Result<DryRun>>,
}

type Manifest = anyhow::Result<Vec<Document>>;

pub fn capture(
    request: &Request,
    helm: &Helm,
    kubectl: &Kubectl,
    with_dry_run: bool,
) -> std::result::Result<Captured, CaptureError> {
    let fail = |step, helm_version: Option<&HelmVersion>| {
        let helm_version = helm_version.cloned();
        move |error| CaptureError {
            step,
            error,
            helm: helm_version,
        }
    };
    // `None` reads the newest revision: what `helm rollback` rolls back from.
    // Parsed once, in full: the target's bodies serve the dry run and verification.
    let read = |revision: Option<u64>| -> Manifest {
        let bytes = helm.manifest(request.release, revision)?;
        manifest::parse_documents(&bytes).with_context(|| match revision {
            Some(r) => format!("manifest of revision {r}"),
            None => "manifest of the newest revision".to_string(),
        })
    };

    std::thread::scope(|scope| {
        // Stage 1: everything that needs only the release name, asked at once, so capture costs
        // the slowest of these rather than their sum.
        let version = scope.spawn(|| helm.version());
        let history = scope.spawn(|| helm.history(request.release));
        let current = scope.spawn(|| read(None));
        // When the revision is given, the dry run starts the moment the target manifest and the
        // namespace are known, while helm is still printing the history. Channels, not shared
        // cells: if this function returns early, the dropped sender ends the thread's wait.
        let (namespace_sender, namespace_receiver) = mpsc::channel::<String>();
        let (target_sender, target_receiver) = mpsc::channel::<Manifest>();
        let early_target = request.revision.map(|r| {
            scope.spawn(move || {
                let target = read(Some(r));
                let documents = target.as_ref().ok().filter(|_| with_dry_run).cloned();
                let _ = target_sender.send(target);
                let namespace = namespace_receiver.recv().ok()?;
                Some(kubectl.dry_run(&documents?, &namespace))
            })
        });
        let mut cluster_thread = Some(scope.spawn(|| kubectl.cluster_target()));
        let mut cluster = None;
        let namespace = match request.namespace {
            Some(ns) => Ok(ns.to_string()),
            None => {
                let thread = cluster_thread.take().expect("spawned");
                thread
                    .join()
                    .expect("kubectl config thread")
                    .map(|(known, ns)| {
                        cluster = Some(known);
                        ns.unwrap_or_else(|| "default".into())
                    })
            }
        };
        if let Ok(namespace) = &namespace {
            let _ = namespace_sender.send(namespace.clone());
        }
        let version = version.join().expect("helm version thread");
        let version = version.map_err(fail("helm version", None))?;
        let history = history.join().expect("helm history thread");
        let history = history.map_err(fail("helm history", Some(&version)))?;
        let namespace = namespace.map_err(fail("namespace", Some(&version)))?;
        // Knowing the cluster is for --finish's check, never a reason to stop a rollback.
        let cluster = match cluster_thread {
            Some(thread) => thread
                .join()
                .expect("kubectl config thread")
                .ok()
                .map(|c| c.0),
            None => cluster,
        }
        .unwrap_or_default();
        let (from_revision, to_revision) = helm::resolve_revisions(&history, request.revision)
            .map_err(fail("revision", Some(&version)))?;
        let current = current.join().expect("manifest thread");
        let current = objects_of(&current.map_err(fail("helm get manifest", Some(&version)))?);
        let target = match early_target {
            Some(_) => target_receiver.recv().expect("manifest thread"),
            None => read(Some(to_revision)),
        };
        let target_documents = target.map_err(fail("helm get manifest", Some(&version)))?;
        let target = objects_of(&target_documents);

        // Stage 2: what needs the manifests, at once.
        let last_successful_revision = preflight::last_successful_revision(&history);
        let extra_revision =
            last_successful_revision.filter(|r| *r != from_revision && *r != to_revision);
        let mut involved: Vec<ObjectRef> = current.iter().chain(target.iter()).cloned().collect();
        involved.sort();
        involved.dedup();
        let (live, late_dry_run, extra) = std::thread::scope(|stage2| {
            let extra = stage2.spawn(|| extra_revision.map(|r| read(Some(r))).transpose());
            let late_dry_run = (with_dry_run && early_target.is_none())
                .then(|| stage2.spawn(|| kubectl.dry_run(&target_documents, &namespace)));
            (
                kubectl.identities(&involved, &namespace),
                late_dry_run.map(|thread| thread.join().expect("dry-run thread")),
                extra.join().expect("manifest thread"),
            )
        });
        let dry_run = match early_target {
            Some(thread) => thread.join().expect("dry-run thread"),
            None => late_dry_run,
        };
        let live = live.map_err(fail("reading the live objects", Some(&version)))?;
        let extra = extra.map_err(fail("helm get manifest", Some(&version)))?;
        let last_successful = match (last_successful_revision, extra) {
            (_, Some(documents)) => objects_of(&documents),
            (Some(r), None) if r == from_revision => current.clone(),
            (Some(r), None) if r == to_revision => target.clone(),
            _ => Vec::new(),
        };

        Ok(Captured {
            snapshot: Snapshot {
                release: ReleaseId {
                    name: request.release.to_string(),
                    namespace,
                },
                cluster,
                helm: version,
                history,
                from_revision,
                to_revision,
                current,
                target,
                live,
                taken_at: jiff::Timestamp::now().to_string(),
                last_successful_revision,
                last_successful,
                target_documents,
            },
            dry_run,
        })
    })
}
