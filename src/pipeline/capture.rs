//! Step 1: read the pre-state (`domain::snapshot`) before anything changes, in two stages of
//! reads made at once.
//!
//! The snapshot is what makes every later decision provable: an object is only ever called
//! "created by this rollback" because its uid is *not* in here.

use std::thread::{Scope, ScopedJoinHandle};

use anyhow::Context;

use crate::domain::dry_run::{self, WriteMethod};
use crate::domain::live::StoredData;
use crate::domain::manifest::{self, objects_of, Document};
use crate::domain::model::{Cluster, HelmVersion, LiveObject, ObjectRef, ReleaseId, Revision};
use crate::domain::preflight;
use crate::domain::release;
use crate::domain::snapshot::Snapshot;
use crate::io::helm::Helm;
use crate::io::kubectl::{self, Kubectl};

/// Where capture failed; before the rollback nothing has changed, whatever the step.
pub struct CaptureError {
    pub step: Step,
    pub error: anyhow::Error,
    /// Whatever was learnt before the failure, for the report.
    pub helm: Option<HelmVersion>,
}

/// A step that reads before anything changes, as the one-line error names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Kubeconfig,
    HelmVersion,
    HelmHistory,
    HelmList,
    Namespace,
    Revision,
    HelmGet,
    LiveObjects,
    Journal,
    CheckingTheCluster,
    /// Starting `helm rollback` itself (it never ran).
    HelmRollback,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Kubeconfig => "kubeconfig",
            Step::HelmVersion => "helm version",
            Step::HelmHistory => "helm history",
            Step::HelmList => "helm list",
            Step::Namespace => "namespace",
            Step::Revision => "revision",
            Step::HelmGet => "helm get",
            Step::LiveObjects => "reading the live objects",
            Step::Journal => "journal",
            Step::CheckingTheCluster => "checking the cluster",
            Step::HelmRollback => "helm rollback",
        })
    }
}

pub struct Request<'a> {
    pub release: &'a str,
    /// Known from flags or HELM_NAMESPACE; otherwise read from the kubeconfig.
    pub namespace: Option<&'a str>,
    pub revision: Option<u64>,
    /// helm 4's `--server-side`, as given: with the target revision's own method, how helm
    /// will write objects (see `dry_run`).
    pub server_side: Option<bool>,
    /// Whether to dry-run the target revision (the preflight's validation).
    pub with_dry_run: bool,
    /// A server-side apply dry run takes fields other managers own (helm 4's
    /// `--force-conflicts`; `--diagnose` always, to see each field that drifted).
    pub force_conflicts: bool,
    /// `--diagnose`: the "target" is the newest revision itself, so the dry run is
    /// verification's (the current revision written onto the live objects).
    pub current_only: bool,
    /// The incident view, for a release `helm list` showed as deployed: the newest revision's
    /// row, read with its manifest in one process, stands for the history while it says
    /// deployed (`domain::newest`); otherwise `helm history` is read after all.
    pub newest_deployed: bool,
}

/// The snapshot, and — when asked for — the API server's verdict on the target revision (a
/// server-side dry run, see preflight), fetched while the live identities are being read: both
/// need only the manifests, so asking at once saves a round trip on every run.
pub struct Captured {
    pub snapshot: Snapshot,
    pub dry_run: DryRun,
    /// `--diagnose` only: the live objects in full, read once with their identities. They can
    /// hold Secret data: compared, never journaled or printed.
    pub objects: Option<Vec<serde_json::Value>>,
    /// What the live ConfigMaps and Secrets store (see `frozen`), read with their identities.
    /// Compared, never journaled or printed.
    pub stored: Vec<StoredData>,
}

/// The API server's verdict on the target revision: `None` when not asked for, `Err` when it
/// could not be asked (no verdict either way).
pub type DryRun = Option<anyhow::Result<kubectl::DryRun>>;

/// A stored revision's objects and, from helm 4, how it was applied.
struct StoredDocuments {
    documents: Vec<Document>,
    apply_method: Option<String>,
}

pub fn capture(
    request: &Request,
    helm: &Helm,
    kubectl: &Kubectl,
) -> Result<Captured, CaptureError> {
    let capturer = Capturer {
        request,
        helm,
        kubectl,
    };
    std::thread::scope(|scope| {
        let release = capturer.read_release(scope)?;
        capturer.read_live(release)
    })
}

struct Capturer<'a> {
    request: &'a Request<'a>,
    helm: &'a Helm,
    kubectl: &'a Kubectl,
}

/// What stage 1 learnt: the release, its revisions and manifests; not yet the cluster's objects.
struct Release {
    version: HelmVersion,
    history: Vec<Revision>,
    namespace: String,
    cluster: Cluster,
    from_revision: u64,
    to_revision: u64,
    current_documents: Vec<Document>,
    target_documents: Vec<Document>,
    /// How helm 4 applied the target revision: it writes the rollback the same way.
    target_apply_method: Option<String>,
}

/// What stage 2 read at once.
struct Live {
    live: anyhow::Result<Vec<LiveObject>>,
    objects: Option<Vec<serde_json::Value>>,
    stored: Vec<StoredData>,
    write_method: WriteMethod,
    dry_run: DryRun,
    extra: anyhow::Result<Option<Vec<Document>>>,
}

/// The namespace given, or the kubeconfig context's; and the cluster, when it could be read:
/// knowing it is for --finish's check, never a reason to stop a rollback.
fn namespace_and_cluster(
    given: Option<&str>,
    kubeconfig: Option<anyhow::Result<(Cluster, Option<String>)>>,
) -> (anyhow::Result<String>, Cluster) {
    match (given, kubeconfig) {
        (Some(namespace), Some(Ok((cluster, _)))) => (Ok(namespace.to_string()), cluster),
        (Some(namespace), _) => (Ok(namespace.to_string()), Cluster::default()),
        (None, Some(Ok((cluster, namespace)))) => {
            (Ok(namespace.unwrap_or_else(|| "default".into())), cluster)
        }
        (None, Some(Err(error))) => (Err(error), Cluster::default()),
        (None, None) => (
            Err(anyhow::anyhow!(
                "no namespace given and the kubeconfig not read"
            )),
            Cluster::default(),
        ),
    }
}

fn join<T>(thread: ScopedJoinHandle<'_, T>) -> T {
    thread.join().expect("a capture thread panicked")
}

/// Where capture failed, with what was learnt before (the helm version, for the report).
fn failed(step: Step, version: Option<&HelmVersion>) -> impl FnOnce(anyhow::Error) -> CaptureError {
    let helm = version.cloned();
    move |error| CaptureError { step, error, helm }
}

impl Capturer<'_> {
    /// The newest revision, and with `with_row` its history row read in the same process.
    fn newest(
        &self,
        major: u64,
        with_row: bool,
    ) -> anyhow::Result<(StoredDocuments, Option<Revision>)> {
        if !with_row {
            return Ok((self.revision(None, major)?, None));
        }
        let (row, stored) = self.helm.newest(self.request.release, major)?;
        Ok((self.documents(stored, None)?, Some(row)))
    }

    /// A revision's manifest, parsed once and in full (the target's bodies serve the dry run
    /// and verification), with its apply method. `None` reads the newest revision: what
    /// `helm rollback` rolls back from.
    fn revision(&self, revision: Option<u64>, major: u64) -> anyhow::Result<StoredDocuments> {
        let stored = self.helm.revision(self.request.release, revision, major)?;
        self.documents(stored, revision)
    }

    fn documents(
        &self,
        stored: release::StoredRevision,
        revision: Option<u64>,
    ) -> anyhow::Result<StoredDocuments> {
        let documents = manifest::parse_documents(stored.manifest.as_bytes()).with_context(
            || match revision {
                Some(r) => format!("manifest of revision {r}"),
                None => "manifest of the newest revision".to_string(),
            },
        )?;
        Ok(StoredDocuments {
            documents,
            apply_method: stored.apply_method,
        })
    }

    /// Stage 1: everything that needs only the release name, asked at once, so capture costs
    /// the slowest of these rather than their sum.
    fn read_release<'scope, 'env>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
    ) -> Result<Release, CaptureError> {
        let (helm, request) = (self.helm, self.request);
        let history =
            (!request.newest_deployed).then(|| scope.spawn(move || helm.history(request.release)));
        // Which cluster this is matters to a journal (--finish's check); `--diagnose` writes
        // none, and with the namespace known it spares the kubectl process.
        let skip_cluster = request.current_only && request.namespace.is_some();
        let cluster_thread =
            (!skip_cluster).then(|| scope.spawn(move || self.kubectl.cluster_target()));
        // How a revision is read depends on the major; remembered per binary, so this is
        // rarely a process of its own, and the reads above do not wait for it.
        let version = helm.version().map_err(failed(Step::HelmVersion, None))?;
        let major = version.major;
        let newest_deployed = request.newest_deployed;
        let current = scope.spawn(move || self.newest(major, newest_deployed));
        let early_target = request
            .revision
            .map(|r| scope.spawn(move || self.revision(Some(r), major)));
        let known = Some(&version);
        let mut current = Some(current);
        let mut current_read = None;
        let history = match history {
            Some(thread) => join(thread).map_err(failed(Step::HelmHistory, known))?,
            None => {
                let reading = current.take().expect("spawned");
                let (documents, row) = join(reading).map_err(failed(Step::HelmGet, known))?;
                current_read = Some(documents);
                match row.filter(|r| r.status == "deployed") {
                    Some(row) => vec![row],
                    None => helm
                        .history(request.release)
                        .map_err(failed(Step::HelmHistory, known))?,
                }
            }
        };
        let (namespace, cluster) =
            namespace_and_cluster(request.namespace, cluster_thread.map(join));
        let namespace = namespace.map_err(failed(Step::Namespace, known))?;
        let (from_revision, to_revision) = match request.current_only {
            true => release::newest(&history).map(|n| (n, n)),
            false => release::resolve_revisions(&history, request.revision),
        }
        .map_err(failed(Step::Revision, known))?;
        let current = match (current_read, current) {
            (Some(documents), _) => documents,
            (None, thread) => {
                join(thread.expect("spawned"))
                    .map_err(failed(Step::HelmGet, known))?
                    .0
            }
        };
        let target = match early_target {
            Some(thread) => join(thread),
            None if request.current_only => Ok(StoredDocuments {
                documents: current.documents.clone(),
                apply_method: current.apply_method.clone(),
            }),
            None => self.revision(Some(to_revision), major),
        }
        .map_err(failed(Step::HelmGet, known))?;
        Ok(Release {
            version,
            history,
            namespace,
            cluster,
            from_revision,
            to_revision,
            current_documents: current.documents,
            target_documents: target.documents,
            target_apply_method: target.apply_method,
        })
    }

    /// Stage 2: what needs the manifests — the live objects, the write method and dry run, the
    /// last successful revision's manifest — then the snapshot.
    fn read_live(&self, mut release: Release) -> Result<Captured, CaptureError> {
        // What helm writes is the target with its ownership metadata merged in: the dry run and
        // verification model that write, not the manifest as stored.
        for document in &mut release.target_documents {
            dry_run::stamp_ownership(&mut document.body, self.request.release, &release.namespace);
        }
        let current = objects_of(&release.current_documents);
        let target = objects_of(&release.target_documents);
        let last_successful_revision = preflight::last_successful_revision(&release.history);
        let extra_revision = last_successful_revision
            .filter(|r| *r != release.from_revision && *r != release.to_revision);
        let mut involved: Vec<ObjectRef> = current.iter().chain(target.iter()).cloned().collect();
        involved.sort();
        involved.dedup();
        let read = self.read_at_once(&release, &involved, extra_revision);
        let known = Some(&release.version);
        let live = read.live.map_err(failed(Step::LiveObjects, known))?;
        let extra = read.extra.map_err(failed(Step::HelmGet, known))?;
        let last_successful = match (last_successful_revision, extra) {
            (_, Some(documents)) => objects_of(&documents),
            (Some(r), None) if r == release.from_revision => current.clone(),
            (Some(r), None) if r == release.to_revision => target.clone(),
            _ => Vec::new(),
        };
        let snapshot = Snapshot {
            release: ReleaseId {
                name: self.request.release.to_string(),
                namespace: release.namespace,
            },
            cluster: release.cluster,
            helm: release.version,
            write_method: read.write_method,
            history: release.history,
            from_revision: release.from_revision,
            to_revision: release.to_revision,
            current,
            target,
            live,
            taken_at: jiff::Timestamp::now().to_string(),
            last_successful_revision,
            last_successful,
            target_documents: release.target_documents,
            current_documents: release.current_documents,
        };
        Ok(Captured {
            snapshot,
            dry_run: read.dry_run,
            objects: read.objects,
            stored: read.stored,
        })
    }

    /// The live identities, the write method and the dry run, and an extra manifest, at once.
    fn read_at_once(
        &self,
        release: &Release,
        involved: &[ObjectRef],
        extra_revision: Option<u64>,
    ) -> Live {
        let (kubectl, request) = (self.kubectl, self.request);
        let namespace = &release.namespace;
        std::thread::scope(|stage2| {
            let extra = stage2.spawn(|| {
                let extra = extra_revision.map(|r| self.revision(Some(r), release.version.major));
                extra.transpose().map(|e| e.map(|stored| stored.documents))
            });
            let checked = stage2.spawn(|| {
                // helm 4 on `--server-side=auto` writes as the target revision was written.
                let method = dry_run::write_method(
                    release.version.major,
                    request.server_side,
                    release.target_apply_method.as_deref(),
                );
                let dry_run = request.with_dry_run.then(|| {
                    let (targets, originals) =
                        (&release.target_documents, &release.current_documents);
                    let force = request.force_conflicts;
                    kubectl.dry_run(targets, originals, namespace, method, force)
                });
                (method, dry_run)
            });
            let (live, objects, stored) = match request.current_only {
                true => match kubectl.objects_with_identities(involved, namespace) {
                    Ok((objects, live)) => (Ok(live), Some(objects), Vec::new()),
                    Err(error) => (Err(error), None, Vec::new()),
                },
                false => match kubectl.identities_and_data(involved, namespace) {
                    Ok((live, stored)) => (Ok(live), None, stored),
                    Err(error) => (Err(error), None, Vec::new()),
                },
            };
            let (write_method, dry_run) = join(checked);
            Live {
                live,
                objects,
                stored,
                write_method,
                dry_run,
                extra: join(extra),
            }
        })
    }
}
