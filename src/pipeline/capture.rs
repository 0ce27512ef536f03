//! Step 1: record the pre-state before anything changes.
//!
//! The snapshot is what makes every later decision provable: an object is only ever called
//! "created by this rollback" because its uid is *not* in here.

use anyhow::Context;

use crate::domain::dry_run::{self, WriteMethod};
use crate::domain::manifest::{self, objects_of, Document};
use crate::domain::model::{HelmVersion, ObjectRef, ReleaseId};
use crate::domain::preflight;
use crate::domain::release;
use crate::domain::snapshot::Snapshot;
use crate::io::helm::Helm;
use crate::io::kubectl::{self, Kubectl};

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
    /// helm 4's `--server-side`, as given: with the target revision's own method, how helm
    /// will write objects (see `dry_run`).
    pub server_side: Option<&'a str>,
    /// Whether to dry-run the target revision (the preflight's validation).
    pub with_dry_run: bool,
}

/// The snapshot, and — when asked for — the API server's verdict on the target revision (a
/// server-side dry run, see preflight), fetched while the live identities are being read: both
/// need only the manifests, so asking at once saves a round trip on every run.
pub struct Captured {
    pub snapshot: Snapshot,
    pub dry_run: DryRun,
}

/// The API server's verdict on the target revision: `None` when not asked for, `Err` when it
/// could not be asked (no verdict either way).
pub type DryRun = Option<anyhow::Result<kubectl::DryRun>>;

type Manifest = anyhow::Result<Vec<Document>>;

pub fn capture(
    request: &Request,
    helm: &Helm,
    kubectl: &Kubectl,
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
        let early_target = request.revision.map(|r| scope.spawn(move || read(Some(r))));
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
        let version = version.join().expect("helm version thread");
        let version = version.map_err(fail("helm version", None))?;
        // helm 4 follows the target revision's recorded method: with the revision given, ask
        // now, beside the other reads, rather than hold up the dry run for it later.
        let early_method = request
            .revision
            .filter(|_| reads_apply_method(&version, request))
            .map(|r| {
                let version = version.clone();
                scope.spawn(move || write_method(helm, &version, request, r))
            });
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
        let (from_revision, to_revision) = release::resolve_revisions(&history, request.revision)
            .map_err(fail("revision", Some(&version)))?;
        let current_documents = current.join().expect("manifest thread");
        let current_documents =
            current_documents.map_err(fail("helm get manifest", Some(&version)))?;
        let target = match early_target {
            Some(thread) => thread.join().expect("manifest thread"),
            None => read(Some(to_revision)),
        };
        let target_documents = target.map_err(fail("helm get manifest", Some(&version)))?;
        let current = objects_of(&current_documents);
        let target = objects_of(&target_documents);

        // Stage 2: what needs the manifests, at once.
        let last_successful_revision = preflight::last_successful_revision(&history);
        let extra_revision =
            last_successful_revision.filter(|r| *r != from_revision && *r != to_revision);
        let mut involved: Vec<ObjectRef> = current.iter().chain(target.iter()).cloned().collect();
        involved.sort();
        involved.dedup();
        let (live, write_method, dry_run, extra) = std::thread::scope(|stage2| {
            let extra = stage2.spawn(|| extra_revision.map(|r| read(Some(r))).transpose());
            let checked = stage2.spawn(|| {
                let method = match early_method {
                    Some(thread) => thread.join().expect("helm get metadata thread"),
                    None => write_method(helm, &version, request, to_revision),
                };
                let dry_run = request.with_dry_run.then(|| {
                    kubectl.dry_run(&target_documents, &current_documents, &namespace, method)
                });
                (method, dry_run)
            });
            let live = kubectl.identities(&involved, &namespace);
            let (method, dry_run) = checked.join().expect("dry-run thread");
            (
                live,
                method,
                dry_run,
                extra.join().expect("manifest thread"),
            )
        });
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
                write_method,
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
                current_documents,
            },
            dry_run,
        })
    })
}

/// Whether the write method depends on the target revision's record (helm 4, `--server-side`
/// given as `auto` or not at all).
fn reads_apply_method(version: &HelmVersion, request: &Request) -> bool {
    version.major >= 4 && request.server_side.is_none_or(|s| s == "auto")
}

/// How this helm will write the target revision's objects. helm 4 on `--server-side=auto`
/// follows the target revision's recorded method, which costs one `helm get metadata`; when
/// that cannot be read, helm's own default for a release without one (client-side) is assumed.
fn write_method(
    helm: &Helm,
    version: &HelmVersion,
    request: &Request,
    to_revision: u64,
) -> WriteMethod {
    let recorded = reads_apply_method(version, request)
        .then(|| {
            helm.apply_method(request.release, to_revision)
                .ok()
                .flatten()
        })
        .flatten();
    dry_run::write_method(version.major, request.server_side, recorded.as_deref())
}
