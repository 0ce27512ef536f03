//! After helm's success: do the live objects match the target revision? The comparison is
//! `domain::verify`'s; this step reads the live objects and a dry run of the target onto them.

use std::time::Instant;

use crate::domain::live::identity_of;
use crate::domain::manifest::Document;
use crate::domain::record::Verification;
use crate::domain::snapshot::Snapshot;
use crate::domain::verify::{self, Drift};
use crate::io::kubectl::{DryRun, Kubectl};
use crate::io::trace;
use crate::pipeline::ending::Ending;
use crate::pipeline::session::Session;

impl Session<'_> {
    pub fn verify_success(&mut self) -> Ending {
        let rollback = &self.invocation.rollback;
        // A dry-run rollback changes nothing, so there is nothing to verify.
        if self.invocation.own.no_verify || rollback.dry_run {
            let reason = if rollback.dry_run {
                "helm ran a dry run: nothing changed to verify"
            } else {
                "verification is off (--no-verify)"
            };
            self.record.verification = Some(Verification {
                verified: false,
                error: Some(reason.into()),
                drifted: Vec::new(),
            });
            return self.finish();
        }
        let verifying = Instant::now();
        // helm's --force / --force-replace may recreate any object: no prediction holds then.
        let prediction = self.prediction.take().filter(|_| !rollback.replaces);
        let force = rollback.force_conflicts;
        let verdict = verify_live(self.snapshot(), &self.tools.kubectl, prediction, force);
        trace::step("verifying the live objects", verifying);
        let verification = match verdict {
            Ok((drifted, unchecked)) => Verification {
                verified: unchecked.is_empty(),
                error: (!unchecked.is_empty())
                    .then(|| format!("the API server gave no verdict on {}", unchecked.join("; "))),
                drifted,
            },
            Err(error) => Verification {
                verified: false,
                error: Some(format!("could not verify the live objects: {error:#}")),
                drifted: Vec::new(),
            },
        };
        self.record.verification = Some(verification);
        self.finish()
    }
}

/// Compares the live objects with what helm's write of the target revision makes of them: the
/// preflight's prediction for each object it wrote onto an existing object (the same write onto
/// the same object), and a dry run now, onto the objects the rollback left, for the rest (the
/// objects it created, whose server-allocated fields only the live object has, and any without
/// a prediction). With `--force`/`--force-replace` helm may have recreated any object: every
/// object is dry-run now. The drifted objects, and the objects the server gave no verdict on.
fn verify_live(
    snapshot: &Snapshot,
    kubectl: &Kubectl,
    prediction: Option<DryRun>,
    force_conflicts: bool,
) -> anyhow::Result<(Vec<Drift>, Vec<String>)> {
    let namespace = &snapshot.release.namespace;
    let mut rendition = prediction
        .map(|p| predicted_only(p, namespace))
        .unwrap_or_default();
    let remaining: Vec<Document> = snapshot
        .target_documents
        .iter()
        .filter(|d| !rendition.written_onto_live.contains(&d.object))
        .cloned()
        .collect();
    trace::note(&format!(
        "verifying {} object(s) against the preflight's prediction, {} by a dry run now",
        rendition.written_onto_live.len(),
        remaining.len()
    ));
    if !remaining.is_empty() {
        let now = kubectl.dry_run(
            &remaining,
            &snapshot.current_documents,
            namespace,
            snapshot.write_method,
            force_conflicts,
        )?;
        rendition.objects.extend(now.objects);
        rendition.rejections.extend(now.rejections);
        rendition.unchecked.extend(now.unchecked);
    }
    let live = kubectl.objects(&snapshot.target, namespace)?;
    Ok(compare(snapshot, rendition, &live))
}

/// Of a prediction, only what it made of existing objects.
fn predicted_only(prediction: DryRun, release_namespace: &str) -> DryRun {
    let written = &prediction.written_onto_live;
    let onto_live = |object: &serde_json::Value| {
        identity_of(object).is_some_and(|i| written.iter().any(|w| i.is(w, release_namespace)))
    };
    let objects = prediction.objects.into_iter().filter(onto_live).collect();
    DryRun {
        objects,
        written_onto_live: prediction.written_onto_live,
        ..DryRun::default()
    }
}

/// The comparison itself, given the server's rendition of the target and the live objects
/// (`--diagnose` has the rendition from capture's dry run).
pub(crate) fn compare(
    snapshot: &Snapshot,
    rendition: DryRun,
    live: &[serde_json::Value],
) -> (Vec<Drift>, Vec<String>) {
    let drifted = verify::drifted(&verify::Inputs {
        targets: &snapshot.target_documents,
        originals: &snapshot.current_documents,
        rendered: &rendition.objects,
        rejected: &rendition.rejections,
        live,
        release_namespace: &snapshot.release.namespace,
    });
    (drifted, rendition.unchecked)
}
