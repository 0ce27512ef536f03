//! Before anything changes: will this rollback fail, take over someone else's object, trip over
//! an earlier attempt's leftovers, or race another helm that is still working?
//!
//! Every check here is a pure function over the snapshot (and, for validation, the API server's
//! own verdict from a server-side dry run, fetched by the kubectl adapter). The verdict decides
//! whether helm runs at all.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::domain::destructive::DestructiveDelete;
pub use crate::domain::forecast::{forecast, Forecast};
use crate::domain::frozen::FrozenRender;
use crate::domain::gitops::Managed;
use crate::domain::immutable::ImmutableChange;
use crate::domain::model::{LiveObject, ManifestIndex, ObjectRef, Revision};
use crate::domain::snapshot::Snapshot;
use crate::domain::target::{self, FailedTarget};

/// A release whose newest revision is still pending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub revision: u64,
    pub status: String,
    pub updated: String,
    pub age_seconds: i64,
    /// The journal of our own completed run whose helm created this revision and has exited:
    /// nobody is working on it, whatever its age.
    pub left_by: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Findings {
    /// The API server rejected these target objects in a dry run.
    pub invalid: Vec<String>,
    /// Checks that could not be made, and why: no verdict either way. Warnings, unless the user
    /// asked for `--strict`.
    #[serde(default)]
    pub unchecked: Vec<String>,
    /// Target objects that exist and belong to another release, or to nobody.
    pub foreign: Vec<LiveObject>,
    /// Target objects that exist, are owned by this release, but no successful revision has them:
    /// leftovers of an earlier failed rollback or upgrade.
    pub orphans: Vec<LiveObject>,
    /// The newest revision is pending.
    pub pending: Option<Pending>,
    /// Helm 3 only: target objects of this release that exist but are not in the manifest helm
    /// rolls back from. Helm 3's update fails on each (`no <Kind> with the name "…" found`)
    /// after it has already created and patched others.
    pub helm3_unlisted: Vec<LiveObject>,
    /// The target revision's deploy failed (see `target`).
    #[serde(default)]
    pub failed_target: Option<FailedTarget>,
    /// Deletes that destroy data (see `destructive`).
    #[serde(default)]
    pub destructive: Vec<DestructiveDelete>,
    /// ConfigMaps and Secrets whose live data the rollback changes back (see `frozen`):
    /// warnings, never a refusal.
    #[serde(default)]
    pub frozen_renders: Vec<FrozenRender>,
    /// Fields the rollback cannot change in place (see `immutable`); their rejections are not
    /// in `invalid`.
    #[serde(default)]
    pub immutable: Vec<ImmutableChange>,
    /// The GitOps controller that manages the release (see `gitops`).
    #[serde(default)]
    pub gitops: Option<Managed>,
}

/// What the user allowed beyond the safe default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allowances {
    /// `--strict`: a check that could not run refuses, instead of warning.
    pub strict: bool,
    pub takeover: bool,
    pub young_pending: bool,
    pub pending_max_age: SignedDuration,
    /// `--allow-failed-target`: a bare rollback may go to a revision whose deploy failed.
    pub failed_target: bool,
    /// `--allow-destructive`: helm may delete what destroys data.
    pub destructive: bool,
    /// `--allow-gitops`: roll back a release a GitOps controller manages and has not paused.
    pub gitops: bool,
    /// `--replace-immutable`: orphan-delete the workloads whose fields cannot change in place.
    pub replace_immutable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub reasons: Vec<String>,
}

/// What the guards against changes helm makes without asking refuse: deletes that destroy
/// data, fields that cannot change in place, a GitOps owner that will undo the rollback.
fn guarded_changes(findings: &Findings, allow: &Allowances) -> Vec<String> {
    let mut reasons = Vec::new();
    if !allow.destructive {
        reasons.extend(findings.destructive.iter().map(DestructiveDelete::refusal));
    }
    for change in &findings.immutable {
        if !(allow.replace_immutable && change.replaceable) {
            reasons.push(change.refusal());
        }
    }
    if let Some(managed) = findings.gitops.as_ref() {
        if !managed.paused() && !allow.gitops {
            reasons.push(managed.refusal());
        }
    }
    reasons
}

/// Whether the rollback may run, from what preflight found.
pub fn verdict(
    findings: &Findings,
    allow: &Allowances,
    release_namespace: &str,
) -> Option<Refusal> {
    let mut reasons = Vec::new();
    for message in &findings.invalid {
        // helm 4's server-side apply meets the same conflict; its own flag takes the fields.
        let way_out = match message.starts_with("Apply failed with") {
            true => " (helm fails on the same conflict; --force-conflicts takes those fields)",
            false => "",
        };
        reasons.push(format!(
            "the API server rejects the target revision: {message}{way_out}"
        ));
    }
    if allow.strict {
        for reason in &findings.unchecked {
            reasons.push(format!("a check could not run (--strict): {reason}"));
        }
    }
    if !allow.takeover {
        for object in &findings.foreign {
            let owner = match (&object.owner.release_name, &object.owner.release_namespace) {
                (Some(name), Some(ns)) => format!("release {ns}/{name}"),
                (Some(name), None) => format!("release {name}"),
                _ => "no helm release (created outside helm)".to_string(),
            };
            reasons.push(format!(
                "{} exists and belongs to {owner}; helm 4 would silently take it over and helm 3 \
                 would fail on it (pass --allow-takeover to let helm adopt it)",
                describe(object, release_namespace)
            ));
        }
    }
    if !allow.takeover {
        for object in &findings.helm3_unlisted {
            reasons.push(format!(
                "{} exists but the manifest helm 3 rolls back from does not list it: helm 3 \
                 would fail with `no {} with the name \"{}\" found` after changing other objects \
                 (remove it, or pass --allow-takeover to let helm try)",
                describe(object, release_namespace),
                object.kind,
                object.name
            ));
        }
    }
    reasons.extend(guarded_changes(findings, allow));
    if let Some(failed) = findings.failed_target.as_ref() {
        if !failed.explicit && !allow.failed_target {
            reasons.push(failed.refusal());
        }
    }
    if let Some(pending) = &findings.pending {
        let abandoned = pending.left_by.is_some()
            || allow.young_pending
            || pending.age_seconds >= allow.pending_max_age.as_secs();
        if !abandoned {
            reasons.push(format!(
                "revision {} is {} since {} ({}s ago): another helm operation may still be running \
                 (wait, or pass --allow-pending to roll back anyway; older than {}s it is treated \
                 as abandoned)",
                pending.revision,
                pending.status,
                pending.updated,
                pending.age_seconds,
                allow.pending_max_age.as_secs()
            ));
        }
    }
    (!reasons.is_empty()).then_some(Refusal { reasons })
}

pub fn describe(object: &LiveObject, release_namespace: &str) -> String {
    format!(
        "{}/{}/{}",
        object.kind,
        object.namespace.as_deref().unwrap_or(release_namespace),
        object.name
    )
}

/// Target objects that exist and are not this release's, excluding ones the current revision
/// already manages (helm owns those whatever their annotations say).
pub fn foreign_objects(snapshot: &Snapshot) -> Vec<LiveObject> {
    let namespace = &snapshot.release.namespace;
    let target = ManifestIndex::new(&snapshot.target, namespace);
    let current = ManifestIndex::new(&snapshot.current, namespace);
    snapshot
        .live
        .iter()
        .filter(|o| target.contains(o))
        .filter(|o| !current.contains(o))
        .filter(|o| !o.owner.is(&snapshot.release))
        .cloned()
        .collect()
}

/// Helm 3's update looks every existing target object up in the current manifest and fails on
/// those it cannot find; `removed` are objects that will be gone before helm runs (orphans we
/// delete first).
pub fn helm3_unlisted(snapshot: &Snapshot, removed: &[LiveObject]) -> Vec<LiveObject> {
    if snapshot.helm.major != 3 {
        return Vec::new();
    }
    let namespace = &snapshot.release.namespace;
    let target = ManifestIndex::new(&snapshot.target, namespace);
    let current = ManifestIndex::new(&snapshot.current, namespace);
    snapshot
        .live
        .iter()
        .filter(|o| target.contains(o))
        .filter(|o| !current.contains(o))
        .filter(|o| o.owner.is(&snapshot.release))
        .filter(|o| !removed.iter().any(|r| r.uid == o.uid))
        .cloned()
        .collect()
}

/// Target objects owned by this release that the last *successful* revision did not have: no
/// successful helm operation created them, so an earlier failed one did and left them behind.
pub fn orphans(snapshot: &Snapshot, last_successful: &[ObjectRef]) -> Vec<LiveObject> {
    let namespace = &snapshot.release.namespace;
    let target = ManifestIndex::new(&snapshot.target, namespace);
    let last_successful = ManifestIndex::new(last_successful, namespace);
    snapshot
        .live
        .iter()
        .filter(|o| target.contains(o))
        .filter(|o| !last_successful.contains(o))
        .filter(|o| o.owner.is(&snapshot.release))
        .filter(|o| !o.keep())
        .cloned()
        .collect()
}

/// The newest revision that helm completed successfully: its manifest is what the cluster held
/// before any later failed operation.
pub fn last_successful_revision(history: &[Revision]) -> Option<u64> {
    history
        .iter()
        .filter(|r| target::succeeded(r))
        .map(|r| r.revision)
        .max()
}

/// The newest revision, when it is pending, with its age.
/// The newest revision when it is pending. `ours` is the range of revisions our newest
/// completed run created (its helm processes have all exited).
pub fn pending(
    history: &[Revision],
    now: Timestamp,
    ours: Option<(std::ops::RangeInclusive<u64>, String)>,
) -> Option<Pending> {
    let newest = history.iter().max_by_key(|r| r.revision)?;
    if !newest.status.starts_with("pending-") {
        return None;
    }
    let age_seconds = newest
        .updated
        .parse::<Timestamp>()
        .map(|t| now.duration_since(t).as_secs())
        // An unreadable time is treated as "just now": refusing is the safe side.
        .unwrap_or(0);
    let left_by = ours
        .filter(|(created, _)| created.contains(&newest.revision))
        .map(|(_, journal)| journal);
    Some(Pending {
        revision: newest.revision,
        status: newest.status.clone(),
        updated: newest.updated.clone(),
        age_seconds,
        left_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{HelmVersion, ReleaseId, ReleaseOwner};
    use crate::domain::release::parse_history;

    fn history(version: &str) -> Vec<Revision> {
        parse_history(
            &std::fs::read(format!(
                "tests/fixtures/real-helm/seed/helm-{version}/08-history.stdout"
            ))
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn last_successful_revision_skips_failed_and_superseded_failures() {
        for version in ["v3.17.3", "v4.3.1"] {
            let mut h = history(version);
            assert_eq!(last_successful_revision(&h), Some(7));
            // Before step 7: revisions 4-6 were failed rollbacks; 3 is the last good one.
            h.truncate(6);
            assert_eq!(last_successful_revision(&h), Some(3), "{version}");
        }
    }

    fn pending_history(status: &str, updated: &str) -> Vec<Revision> {
        let mut h = history("v3.17.3");
        h.push(Revision {
            revision: 8,
            updated: updated.into(),
            status: status.into(),
            chart: "demo-0.1.0".into(),
            description: "Rollback to 3".into(),
        });
        h
    }

    #[test]
    fn a_young_pending_revision_is_refused_and_an_old_one_is_not() {
        let now: Timestamp = "2026-11-24T16:20:00Z".parse().unwrap();
        let young = pending("pending-rollback", "2026-11-24T16:19:30.5Z", now);
        let old = pending("pending-rollback", "2026-11-24T16:00:00Z", now);
        let allow = Allowances {
            pending_max_age: SignedDuration::from_secs(300),
            ..Allowances::default()
        };
        let findings = |p| Findings {
            pending: p,
            ..Findings::default()
        };
        let refusal = verdict(&findings(young.clone()), &allow, "default").unwrap();
        assert!(refusal.reasons[0].contains("revision 8 is pending-rollback"));
        assert!(verdict(&findings(old), &allow, "default").is_none());
        let override_ = Allowances {
            young_pending: true,
            ..allow
        };
        assert!(verdict(&findings(young), &override_, "default").is_none());
        assert!(super::pending(&history("v4.3.1"), now, None).is_none());

        // Revision 8, created by our own run that captured at revision 7 and whose helm exited.
        let ours = |created| Some((created, "journal.json".to_string()));
        let history = pending_history("pending-rollback", "2026-11-24T16:19:30.5Z");
        let left_by_us = super::pending(&history, now, ours(8..=8)).unwrap();
        assert_eq!(left_by_us.left_by.as_deref(), Some("journal.json"));
        assert!(verdict(&findings(Some(left_by_us)), &allow, "default").is_none());
        // A revision our run did not create stays someone else's.
        let not_ours = super::pending(&history, now, ours(6..=7)).unwrap();
        assert!(verdict(&findings(Some(not_ours)), &allow, "default").is_some());

        fn pending(status: &str, updated: &str, now: Timestamp) -> Option<Pending> {
            super::pending(&pending_history(status, updated), now, None)
        }
    }

    fn live(kind: &str, name: &str, owner: Option<(&str, &str)>) -> LiveObject {
        LiveObject {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("default".into()),
            name: name.into(),
            uid: format!("uid-{name}"),
            resource_version: "1".into(),
            owner: ReleaseOwner {
                release_name: owner.map(|o| o.0.to_string()),
                release_namespace: owner.map(|o| o.1.to_string()),
            },
            resource_policy: None,
            managed_by: None,
        }
    }

    fn object(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    fn snapshot(live: Vec<LiveObject>) -> Snapshot {
        Snapshot {
            release: ReleaseId {
                name: "more".into(),
                namespace: "default".into(),
            },
            cluster: crate::domain::model::Cluster::default(),
            write_method: crate::domain::dry_run::WriteMethod::ClientSide,
            helm: HelmVersion {
                version: "v4.3.1".into(),
                major: 4,
            },
            history: Vec::new(),
            from_revision: 2,
            to_revision: 1,
            current: vec![object("ConfigMap", "app")],
            target: vec![
                object("ConfigMap", "app"),
                object("ConfigMap", "more-extra"),
            ],
            live,
            taken_at: String::new(),
            last_successful_revision: None,
            last_successful: Vec::new(),
            target_documents: Vec::new(),
            current_documents: Vec::new(),
        }
    }

    #[test]
    fn foreign_objects_are_those_not_owned_by_the_release() {
        let s = snapshot(vec![
            live("ConfigMap", "app", None),
            live("ConfigMap", "more-extra", None),
        ]);
        let foreign = foreign_objects(&s);
        assert_eq!(foreign.len(), 1, "`app` is managed by the current revision");
        assert_eq!(foreign[0].name, "more-extra");
        let refusal = verdict(
            &Findings {
                foreign,
                ..Findings::default()
            },
            &Allowances::default(),
            "default",
        )
        .unwrap();
        assert!(refusal.reasons[0]
            .contains("ConfigMap/default/more-extra exists and belongs to no helm release"));

        let s = snapshot(vec![live(
            "ConfigMap",
            "more-extra",
            Some(("other", "default")),
        )]);
        assert_eq!(foreign_objects(&s).len(), 1);
        let s = snapshot(vec![live(
            "ConfigMap",
            "more-extra",
            Some(("more", "default")),
        )]);
        assert!(foreign_objects(&s).is_empty());
    }

    #[test]
    fn helm3_fails_on_its_own_objects_missing_from_the_current_manifest() {
        let mut s = snapshot(vec![
            live("ConfigMap", "app", Some(("more", "default"))),
            live("ConfigMap", "more-extra", Some(("more", "default"))),
        ]);
        assert!(helm3_unlisted(&s, &[]).is_empty(), "helm 4 adopts them");
        s.helm.major = 3;
        let unlisted = helm3_unlisted(&s, &[]);
        assert_eq!(unlisted.len(), 1);
        assert_eq!(unlisted[0].name, "more-extra");
        assert!(
            helm3_unlisted(&s, &unlisted).is_empty(),
            "unless removed first"
        );
        let refusal = verdict(
            &Findings {
                helm3_unlisted: unlisted,
                ..Findings::default()
            },
            &Allowances::default(),
            "default",
        )
        .unwrap();
        assert!(refusal.reasons[0].contains("no ConfigMap with the name \"more-extra\" found"));
    }

    #[test]
    fn orphans_are_ours_but_unknown_to_the_last_successful_revision() {
        let s = snapshot(vec![
            live("ConfigMap", "app", Some(("more", "default"))),
            live("ConfigMap", "more-extra", Some(("more", "default"))),
        ]);
        let last_good = [object("ConfigMap", "app")];
        let orphans = orphans(&s, &last_good);
        assert_eq!(orphans.len(), 1);
        assert_eq!(orphans[0].name, "more-extra");
        let foreign_named_alike = snapshot(vec![live("ConfigMap", "more-extra", None)]);
        assert!(super::orphans(&foreign_named_alike, &last_good).is_empty());
    }
}
