//! The reconcile planner's safety rules, over generated pre- and post-states: whatever the
//! cluster looks like, it never selects an object whose uid existed before, one that is not owned
//! by this release, one outside the target manifest, or one a user asked helm to keep; and it
//! only deletes when cleanup was asked for.

use helm_safe_rollback::model::{LiveObject, ObjectRef, ReleaseId, ReleaseOwner};
use helm_safe_rollback::reconcile::{plan, Decision, Inputs};
use proptest::prelude::*;

const KINDS: &[(&str, &str)] = &[
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("v1", "Secret"),
];
const NAMES: &[&str] = &["a", "b", "c", "web"];
const NAMESPACES: &[&str] = &["team", "other"];

fn release() -> ReleaseId {
    ReleaseId {
        name: "rel".into(),
        namespace: "team".into(),
    }
}

fn owner() -> impl Strategy<Value = ReleaseOwner> {
    let name = prop_oneof![Just(None), Just(Some("rel")), Just(Some("another"))];
    let namespace = prop_oneof![Just(None), Just(Some("team")), Just(Some("other"))];
    (name, namespace).prop_map(|(n, ns)| ReleaseOwner {
        release_name: n.map(Into::into),
        release_namespace: ns.map(Into::into),
    })
}

fn live_object() -> impl Strategy<Value = LiveObject> {
    (
        0..KINDS.len(),
        0..NAMES.len(),
        0..NAMESPACES.len(),
        0u8..12,
        owner(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(k, n, ns, uid, owner, keep)| LiveObject {
            api_version: KINDS[k].0.into(),
            kind: KINDS[k].1.into(),
            namespace: Some(NAMESPACES[ns].into()),
            name: NAMES[n].into(),
            // A small uid space makes "same uid before and after" common.
            uid: format!("uid-{uid}"),
            resource_version: "1".into(),
            owner,
            resource_policy: keep.then(|| "keep".to_string()),
            managed_by: None,
        })
}

fn target_object() -> impl Strategy<Value = ObjectRef> {
    (
        0..KINDS.len(),
        0..NAMES.len(),
        prop::option::of(0..NAMESPACES.len()),
    )
        .prop_map(|(k, n, ns)| ObjectRef {
            api_version: KINDS[k].0.into(),
            kind: KINDS[k].1.into(),
            namespace: ns.map(|i| NAMESPACES[i].into()),
            name: NAMES[n].into(),
        })
}

fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn the_planner_only_ever_selects_what_this_attempt_provably_created(
        target in prop::collection::vec(target_object(), 0..8),
        before in prop::collection::vec(live_object(), 0..10),
        after in prop::collection::vec(live_object(), 0..10),
        cleanup in any::<bool>(),
    ) {
        let release = release();
        let plan = plan(&Inputs {
            release: &release,
            target: &target,
            before: &before,
            after: &after,
            cleanup_requested: cleanup,
        });
        for leftover in &plan.leftovers {
            let o = &leftover.object;
            prop_assert!(!before.iter().any(|b| b.uid == o.uid), "uid existed before: {o:?}");
            prop_assert!(
                !before.iter().any(|b| group(&b.api_version) == group(&o.api_version)
                    && b.kind == o.kind && b.namespace == o.namespace && b.name == o.name),
                "an object of that name existed before: {o:?}"
            );
            prop_assert_eq!(o.owner.release_name.as_deref(), Some("rel"));
            prop_assert_eq!(o.owner.release_namespace.as_deref(), Some("team"));
            prop_assert!(!o.keep(), "helm.sh/resource-policy: keep");
            prop_assert!(target.iter().any(|t| o.is(t, "team")), "not in the target: {o:?}");
            prop_assert!(after.contains(o), "not in the post-state: {o:?}");
            if leftover.decision == Decision::Delete {
                prop_assert!(cleanup, "deletes only when cleanup was asked for");
            }
        }
    }
}
