//! A rollback whose target is itself a failure.
//!
//! `helm rollback REL` goes to the revision before the newest, whatever it was: after a failed
//! upgrade followed by a good one, that is the failed revision, and rolling back to it puts the
//! broken manifest back. Helm keeps no "failed" flag once a later rollback supersedes a revision,
//! so a failure is read from the status (`failed`) or, for a `superseded` revision, from helm's
//! own description (`Upgrade "x" failed: …`, `Rollback "x" failed: …`) — both helms write it so
//! (see the seed fixtures). Pure decisions; the command to print is built by the caller from
//! the cluster-target type.

use serde::Serialize;

use crate::domain::model::Revision;

/// The revision a rollback goes to, when helm recorded its deploy as failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedTarget {
    pub revision: u64,
    pub status: String,
    pub description: String,
    /// Asked for by number: helm's semantics are kept (a warning, never a refusal).
    pub explicit: bool,
    /// The newest revision before the one rolled back from whose deploy succeeded.
    pub last_good: Option<u64>,
    /// The command that rolls back to `last_good` instead (same release and cluster target).
    pub command: Option<String>,
}

/// Whether helm completed this revision's deploy: `deployed`, or `superseded` without helm's
/// failure description (a failed rollback that a later one replaced is `superseded` too).
pub fn succeeded(revision: &Revision) -> bool {
    match revision.status.as_str() {
        "deployed" => true,
        "superseded" => !failure_description(&revision.description),
        _ => false,
    }
}

/// Whether helm recorded this revision's deploy as a failure.
pub fn failed(revision: &Revision) -> bool {
    revision.status == "failed"
        || (revision.status == "superseded" && failure_description(&revision.description))
}

/// helm's `<Action> "<release>" failed: <cause>` (pkg/action: upgrade, rollback, install).
fn failure_description(description: &str) -> bool {
    description.contains(" failed: ")
}

/// The newest successful revision older than `from` (the one being rolled back from).
pub fn last_good_before(history: &[Revision], from: u64) -> Option<u64> {
    history
        .iter()
        .filter(|r| r.revision < from && succeeded(r))
        .map(|r| r.revision)
        .max()
}

/// The target, when its deploy failed. `command_to` renders the rollback to another revision.
pub fn failed_target(
    history: &[Revision],
    from: u64,
    to: u64,
    explicit: bool,
    command_to: impl Fn(u64) -> String,
) -> Option<FailedTarget> {
    let target = history.iter().find(|r| r.revision == to)?;
    if !failed(target) {
        return None;
    }
    let last_good = last_good_before(history, from);
    Some(FailedTarget {
        revision: to,
        status: target.status.clone(),
        description: target.description.clone(),
        explicit,
        last_good,
        command: last_good.map(command_to),
    })
}

impl FailedTarget {
    /// What the user reads: the failure, then where a good state is and how to get there.
    pub fn message(&self) -> String {
        let what = match self.explicit {
            true => format!("revision {}", self.revision),
            false => format!("the previous revision, {},", self.revision),
        };
        let mut text = format!(
            "{what} is a failed deploy ({}: {})",
            self.status, self.description
        );
        match (self.last_good, &self.command) {
            (Some(good), Some(command)) => text.push_str(&format!(
                "; the last revision that deployed successfully is {good}: `{command}`"
            )),
            _ => text.push_str("; no earlier revision deployed successfully"),
        }
        text
    }

    /// Why a bare rollback is refused (exit 5).
    pub fn refusal(&self) -> String {
        format!(
            "{} (pass --allow-failed-target to roll back to revision {} anyway)",
            self.message(),
            self.revision
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::release::{parse_history, resolve_revisions};

    fn history(version: &str) -> Vec<Revision> {
        let path = format!("tests/fixtures/real-helm/seed/helm-{version}/08-history.stdout");
        parse_history(&std::fs::read(path).unwrap()).unwrap()
    }

    fn command(n: u64) -> String {
        format!("helm safe-rollback seed {n}")
    }

    #[test]
    fn a_failed_upgrade_and_superseded_failed_rollbacks_are_failures() {
        for version in ["v3.17.3", "v4.3.1"] {
            let h = history(version);
            // 2: the failed upgrade; 4 and 5: failed rollbacks superseded by later ones; 6 failed.
            let failures: Vec<u64> = h.iter().filter(|r| failed(r)).map(|r| r.revision).collect();
            assert_eq!(failures, [2, 4, 5, 6], "{version}");
            let good: Vec<u64> = h
                .iter()
                .filter(|r| succeeded(r))
                .map(|r| r.revision)
                .collect();
            assert_eq!(good, [1, 3, 7], "{version}");
        }
    }

    #[test]
    fn a_bare_rollback_onto_a_failure_names_the_last_good_revision() {
        for version in ["v3.17.3", "v4.3.1"] {
            let mut h = history(version);
            // As the seed stood after step 6: the previous revision (5) is a failed rollback.
            h.truncate(6);
            let (from, to) = resolve_revisions(&h, None).unwrap();
            let found = failed_target(&h, from, to, false, command).unwrap();
            assert_eq!((found.revision, found.last_good), (5, Some(3)), "{version}");
            assert_eq!(found.status, "superseded");
            let refusal = found.refusal();
            assert!(refusal.contains("`helm safe-rollback seed 3`"), "{refusal}");
            assert!(refusal.contains("--allow-failed-target"), "{refusal}");
        }
    }

    #[test]
    fn a_good_target_is_not_a_failure() {
        for version in ["v3.17.3", "v4.3.1"] {
            let h = history(version);
            let (from, to) = resolve_revisions(&h, None).unwrap();
            // After step 7 the previous revision is 6, the last failed rollback.
            let bare = failed_target(&h, from, to, false, command).unwrap();
            assert_eq!((bare.revision, bare.last_good), (6, Some(3)), "{version}");
            assert_eq!(failed_target(&h, from, 3, true, command), None);
            assert_eq!(failed_target(&h, from, 1, true, command), None);
            let explicit = failed_target(&h, from, 2, true, command).unwrap();
            assert!(explicit
                .message()
                .starts_with("revision 2 is a failed deploy (failed: "));
            assert_eq!(explicit.last_good, Some(3));
        }
    }

    /// Recorded on the bed: install (1), upgrade (2), an upgrade the API server rejects (3), a
    /// good upgrade (4); then the native bare rollback to 3, which fails (5).
    #[test]
    fn the_failed_upgrade_between_two_good_ones_as_both_helms_record_it() {
        for version in ["v3.17.3", "v4.3.1"] {
            let dir = format!("tests/fixtures/real-helm/failed-target/helm-{version}");
            let read = |name: &str| {
                parse_history(&std::fs::read(format!("{dir}/{name}")).unwrap()).unwrap()
            };
            let h = read("history-1-4.json");
            let (from, to) = resolve_revisions(&h, None).unwrap();
            let found = failed_target(&h, from, to, false, command).unwrap();
            assert_eq!((found.revision, found.last_good), (3, Some(2)), "{version}");
            assert_eq!(found.command.as_deref(), Some("helm safe-rollback seed 2"));
            assert!(found.description.starts_with("Upgrade \"ft-h"), "{version}");
            // After helm's own rollback to 3 failed, 4 is superseded and is the last good one.
            let after = read("history-after-rollback.json");
            assert!(failed(&after[4]) && succeeded(&after[3]), "{version}");
            assert_eq!(last_good_before(&after, 5), Some(4), "{version}");
        }
    }
}
