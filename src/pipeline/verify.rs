//! After helm's success: do the live objects match the target revision? The comparison is
//! `domain::verify`'s; this step reads the live objects and a dry run of the target onto them.

use std::time::Instant;

use crate::domain::exit::Exit;
use crate::domain::record::{Outcome, Verification};
use crate::domain::snapshot::Snapshot;
use crate::domain::verify::{self, Drift};
use crate::io::exec;
use crate::io::kubectl::{DryRun, Kubectl};
use crate::pipeline::ending::Ending;
use crate::pipeline::session::Session;

impl Session<'_> {
    pub fn verify_success(&mut self) -> Ending {
        self.record.outcome = Some(Outcome::Succeeded);
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
            return self.finish(Exit::Success);
        }
        let verifying = Instant::now();
        let verdict = verify_live(self.snapshot(), &self.tools.kubectl);
        exec::trace_step("verifying the live objects", verifying);
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
        let drifted = !verification.drifted.is_empty();
        self.record.verification = Some(verification);
        if drifted {
            self.record.outcome = Some(Outcome::Drifted);
            return self.finish(Exit::Drifted);
        }
        self.finish(Exit::Success)
    }
}

/// Compares the live objects with what writing the target revision onto them would produce
/// (a dry run of helm's own write, after the rollback): the drifted objects, and the objects
/// the server gave no verdict on.
fn verify_live(
    snapshot: &Snapshot,
    kubectl: &Kubectl,
) -> anyhow::Result<(Vec<Drift>, Vec<String>)> {
    let namespace = &snapshot.release.namespace;
    let rendition = kubectl.dry_run(
        &snapshot.target_documents,
        &snapshot.current_documents,
        namespace,
        snapshot.write_method,
    )?;
    let live = kubectl.objects(&snapshot.target, namespace)?;
    Ok(compare(snapshot, rendition, &live))
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
