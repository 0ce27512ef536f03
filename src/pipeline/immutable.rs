//! Part of step 2: the dry run's rejections that are fields the rollback cannot change in place
//! (judged by `domain::immutable`), and, with `--replace-immutable`, the orphaning deletes that
//! let helm create those workloads again. The live objects are read only when a rejection
//! names such a field.

use crate::cli::commands;
use crate::domain::immutable::{self, ImmutableChange};
use crate::domain::live;
use crate::domain::model::LiveObject;
use crate::domain::plan;
use crate::domain::preflight::{self, Findings};
use crate::domain::record::ActionKind;
use crate::domain::verdict::Halt;
use crate::io::delete;
use crate::pipeline::ending::Ending;
use crate::pipeline::session::Session;

impl Session<'_> {
    /// Moves the rejections of unchangeable fields from `findings.invalid` to
    /// `findings.immutable`, each with its live and target values and the way past it.
    pub(crate) fn immutable_changes(&self, findings: &mut Findings) {
        let Some(prediction) = &self.prediction else {
            return;
        };
        let rejected: Vec<_> = prediction
            .rejections
            .iter()
            .filter(|(_, message)| !immutable::immutable_fields(message).is_empty())
            .collect();
        if rejected.is_empty() {
            return;
        }
        let snapshot = self.snapshot();
        let namespace = &snapshot.release.namespace;
        let refs: Vec<_> = rejected.iter().map(|(object, _)| object.clone()).collect();
        let bodies = self.tools.kubectl.objects(&refs, namespace);
        if let Err(error) = &bodies {
            let why = format!("the live values of fields that cannot change: {error:#}");
            findings.unchecked.push(why);
        }
        let bodies = bodies.unwrap_or_default();
        let connection = self.tools.printable_connection();
        let rollback = commands::rollback_command(self.invocation, namespace, snapshot.to_revision);
        for (object, message) in rejected {
            let live = snapshot.live.iter().find(|l| l.is(object, namespace));
            let body = live.and_then(|live| live::with_uid(&bodies, &live.uid));
            let target = snapshot
                .target_documents
                .iter()
                .find(|d| d.object == *object)
                .map(|d| &d.body);
            let Some(changes) = immutable::changes(object, message, body, target) else {
                continue;
            };
            findings.invalid.retain(|m| m != message);
            for change in changes {
                let delete = live.map(|l| plan::delete_command(l, &connection));
                findings.immutable.push(match delete {
                    Some(delete) => change.with_commands(delete, &rollback),
                    None => ImmutableChange {
                        replaceable: false,
                        ..change
                    },
                });
            }
        }
    }

    /// `--replace-immutable`: deletes each workload with its pods orphaned (its uid as the
    /// precondition, the intent journaled first) and waits for it to be gone, so helm creates it
    /// again. It stays in the pre-state: what helm creates in its place is never ours to remove.
    pub(crate) fn replace_immutable(&mut self, changes: &[ImmutableChange]) -> Option<Ending> {
        let snapshot = self.snapshot();
        let mut objects: Vec<LiveObject> = Vec::new();
        for change in changes.iter().filter(|c| c.replaceable) {
            let live = snapshot
                .live
                .iter()
                .find(|l| Some(&l.uid) == change.uid.as_ref());
            if let Some(live) = live.filter(|l| !objects.contains(l)) {
                objects.push(live.clone());
            }
        }
        let namespace = self.snapshot().release.namespace.clone();
        for object in &objects {
            let fields: Vec<&str> = changes
                .iter()
                .filter(|c| c.uid.as_ref() == Some(&object.uid))
                .map(|c| c.field.as_str())
                .collect();
            self.record.warnings.push(format!(
                "{} is deleted with its pods orphaned, so the rollback creates it again with the \
                 {} it cannot change in place (--replace-immutable)",
                preflight::describe(object, &namespace),
                fields.join(", ")
            ));
        }
        self.write_journal();
        let refs: Vec<&LiveObject> = objects.iter().collect();
        let wait = self.invocation.rollback.delete_wait();
        let kubectl = &self.tools.kubectl;
        let actions = delete::delete_all(
            &refs,
            ActionKind::ReplaceImmutable,
            kubectl,
            &namespace,
            wait,
        );
        let failed = actions.iter().any(|a| !a.result.complete());
        self.record.actions.extend(actions);
        if failed {
            self.record.errors.push(
                "could not delete the workloads whose fields cannot change in place; helm was \
                 not run"
                    .into(),
            );
            self.record.halt = Some(Halt::LeftoversRemain);
            return Some(self.finish());
        }
        self.write_journal();
        None
    }
}
