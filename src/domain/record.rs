//! The record of one run: what was captured, decided and done, step by step. The journal writes
//! it to disk (`io::journal`) and the report is built from it at the end
//! (`Report::from(&Record)`), so the two can never tell different stories.
//!
//! Fields serialised here are the journal's format: only identities, never object data (the
//! drift found by verification, which quotes values, stays in memory). Fields added after the
//! first release are skipped when empty, so journals of runs that had nothing to say are as
//! before.

use serde::{Deserialize, Serialize};

use crate::domain::classify::Finding;
use crate::domain::concurrency::ConcurrentRevision;
use crate::domain::hooks::HookLeftover;
use crate::domain::model::LiveObject;
use crate::domain::plan::Plan;
use crate::domain::preflight::Findings;
use crate::domain::readiness::NotReady;
use crate::domain::snapshot::Snapshot;
use crate::domain::verdict::Halt;
use crate::domain::verify::Drift;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Preflight found a reason not to run helm; nothing was changed.
    Refused,
    /// `--plan`: nothing was meant to change.
    Planned,
    /// helm said it succeeded, but live objects do not match the target revision.
    Drifted,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The pre-state is recorded; the rollback may or may not have started.
    Captured,
    /// Rollback, reconcile and report are done.
    Completed,
}

/// Which step of the tool wrote the record's last word, as the report's `stage` says it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stage {
    #[default]
    Rollback,
    /// `--finish` completed a run that died.
    Finish,
}

#[derive(Debug, Serialize)]
pub struct RollbackRecord {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u128,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Serialize)]
pub struct Attempt {
    /// 1-based; 0 for the reconcile done by `--finish` for a run that died.
    pub number: u32,
    pub rollback: RollbackRecord,
    pub live_after: Option<Vec<LiveObject>>,
    pub plan: Option<Plan>,
    pub actions: Vec<Action>,
    /// What went wrong beyond helm's own words (killed by a signal, the cluster unreadable after).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Revisions another writer made, found right before this attempt's deletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrent_revisions: Vec<ConcurrentRevision>,
    /// helm's `--wait` ran out of time: the target objects that were not ready, and why
    /// (identities and Kubernetes' reasons only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ready: Vec<NotReady>,
    /// A retry followed it (a transient failure, the cluster back to its pre-state): its words
    /// are not the run's last.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retried: bool,
    /// A rollback hook failed: which one, and why (the report's first primary error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_failure: Option<String>,
    /// Hook objects that failure left; helm's delete policy keeps them, we never delete them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hook_leftovers: Vec<HookLeftover>,
}

impl Attempt {
    /// An attempt whose helm ran and whose reconcile is still to come.
    pub fn ran(number: u32, rollback: RollbackRecord) -> Attempt {
        Attempt {
            number,
            rollback,
            live_after: None,
            plan: None,
            actions: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            concurrent_revisions: Vec::new(),
            not_ready: Vec::new(),
            retried: false,
            hook_failure: None,
            hook_leftovers: Vec::new(),
        }
    }

    /// Whether a delete it set out to do left something behind (exit 4).
    pub fn cleanup_incomplete(&self) -> bool {
        self.actions.iter().any(|a| !a.result.complete())
    }
}

/// Why we deleted an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionKind {
    /// A leftover of this run's failed rollback.
    Delete,
    /// A leftover of an earlier failed attempt, removed before helm ran.
    DeleteOrphan,
    /// A workload deleted with its pods orphaned (`--replace-immutable`), before helm ran, so
    /// the rollback creates it again with the fields it cannot change in place.
    ReplaceImmutable,
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ActionKind::Delete => "delete",
            ActionKind::DeleteOrphan => "delete-orphan",
            ActionKind::ReplaceImmutable => "replace-immutable",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
    pub action: ActionKind,
    /// `"result": "deleted"`, or another outcome with its details beside it.
    #[serde(flatten)]
    pub result: ActionResult,
}

/// What became of one object we set out to delete. Serialised flat into its action: `"result":
/// "terminating", "finalizers": [...]`, `"result": "failed", "error": "..."`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ActionResult {
    /// We deleted it and it is gone.
    Deleted,
    /// It was already gone when we came to delete it.
    Gone,
    /// Deleted, but finalizers still hold it after the wait.
    Terminating {
        finalizers: Vec<String>,
    },
    /// Someone replaced it (same name, another uid) since we proved it ours: not deleted.
    Replaced,
    Failed {
        error: String,
    },
}

impl ActionResult {
    /// Whether nothing of it is left: anything else makes the cleanup incomplete (exit 4).
    pub fn complete(&self) -> bool {
        matches!(self, ActionResult::Deleted | ActionResult::Gone)
    }
}

/// The text report's words for it.
impl std::fmt::Display for ActionResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionResult::Deleted => write!(f, "deleted"),
            ActionResult::Gone => write!(f, "already gone"),
            ActionResult::Terminating { finalizers } => write!(
                f,
                "terminating: still held by finalizers {} (remove them, or wait)",
                finalizers.join(", ")
            ),
            ActionResult::Replaced => write!(
                f,
                "replaced by another object of the same name since we read it: not deleted"
            ),
            ActionResult::Failed { error } => write!(f, "failed: {error}"),
        }
    }
}

/// What verification after helm's success found.
#[derive(Debug, Default, Serialize)]
pub struct Verification {
    /// Whether every live object could be checked.
    pub verified: bool,
    /// Why not (fully).
    pub error: Option<String>,
    /// Objects unlike the target: in memory only, the fields quote live values.
    #[serde(skip)]
    pub drifted: Vec<Drift>,
}

#[derive(Debug, Serialize)]
pub struct Record {
    pub schema: u32,
    pub tool_version: String,
    pub state: State,
    pub pid: u32,
    /// helm's arguments with credentials redacted.
    pub helm_args: Vec<String>,
    pub snapshot: Snapshot,
    pub preflight: Option<Findings>,
    /// One per run of `helm rollback` (more than one with --retries).
    pub attempts: Vec<Attempt>,
    /// Actions taken before helm ran (removing an earlier attempt's orphans).
    pub actions: Vec<Action>,
    pub outcome: Option<Outcome>,
    pub finished_at: Option<String>,
    /// kubectl's connection flags with every credential replaced by a variable: what the
    /// printed delete commands carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubectl_connection: Vec<String>,
    /// Why preflight refused to run helm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refusal_reasons: Vec<String>,
    /// What went wrong outside any attempt (the orphans could not be removed, a signal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Warnings outside any attempt, in the order they arose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Revisions another writer made, found before the orphans were removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub concurrent_revisions: Vec<ConcurrentRevision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Set when the reconcile could not be done: the command that finishes it from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip)]
    pub stage: Stage,
    /// `--plan`: the objects as the preflight's dry run says the rollback writes them. In
    /// memory only: they quote object data.
    #[serde(skip)]
    pub predicted: Vec<serde_json::Value>,
    /// Where the run stopped before running helm (again), when it did.
    #[serde(skip)]
    pub halt: Option<Halt>,
}

impl Record {
    /// The record of an attempt whose pre-state is captured and nothing else is known yet.
    pub fn captured(pid: u32, helm_args: Vec<String>, snapshot: Snapshot) -> Record {
        Record {
            schema: 1,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            state: State::Captured,
            pid,
            helm_args,
            snapshot,
            preflight: None,
            attempts: Vec::new(),
            actions: Vec::new(),
            outcome: None,
            finished_at: None,
            kubectl_connection: Vec::new(),
            refusal_reasons: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            concurrent_revisions: Vec::new(),
            verification: None,
            finish_command: None,
            exit_code: None,
            stage: Stage::Rollback,
            predicted: Vec::new(),
            halt: None,
        }
    }

    /// How many times `helm rollback` ran (attempt 0, a `--finish` reconcile, is not one).
    pub fn rollbacks(&self) -> u32 {
        self.attempts.iter().filter(|a| a.number > 0).count() as u32
    }

    /// Every delete, in the order made: orphans first, then each attempt's.
    pub fn all_actions(&self) -> impl Iterator<Item = &Action> {
        self.actions
            .iter()
            .chain(self.attempts.iter().flat_map(|a| &a.actions))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_serialise_as_one_result_word_with_details_beside_it() {
        let json = |r: &ActionResult| serde_json::to_value(r).unwrap();
        assert_eq!(json(&ActionResult::Deleted)["result"], "deleted");
        assert_eq!(json(&ActionResult::Gone)["result"], "gone");
        assert_eq!(json(&ActionResult::Replaced)["result"], "replaced");
        let held = json(&ActionResult::Terminating {
            finalizers: vec!["example.com/hold".into()],
        });
        assert_eq!(held["result"], "terminating");
        assert_eq!(held["finalizers"][0], "example.com/hold");
        let failed = json(&ActionResult::Failed {
            error: "HTTP 500".into(),
        });
        assert_eq!(
            (failed["result"].as_str(), failed["error"].as_str()),
            (Some("failed"), Some("HTTP 500"))
        );
        assert!(ActionResult::Gone.complete() && !ActionResult::Replaced.complete());
    }

    #[test]
    fn action_kinds_keep_their_journal_words() {
        for (kind, word) in [
            (ActionKind::Delete, "delete"),
            (ActionKind::DeleteOrphan, "delete-orphan"),
            (ActionKind::ReplaceImmutable, "replace-immutable"),
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), word);
            assert_eq!(kind.to_string(), word);
        }
    }
}
