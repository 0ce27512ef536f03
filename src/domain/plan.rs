//! Decides which objects a failed rollback left behind, and which of those we may delete.
//!
//! The safety rules live here and only here, as a pure function over the pre-state and the
//! post-state, so that they can be tested exhaustively without a cluster:
//! - an object whose uid was in the pre-state is never touched, whatever helm did to it;
//! - an object that does not carry this release's ownership annotations is never touched;
//! - only objects of the rollback's target manifest are considered at all.
//!
//! What survives those rules was provably created by this attempt. Whether it is deleted or only
//! reported is the user's choice, the same one they make for helm (`--cleanup-on-fail`).

use std::collections::HashSet;

use serde::Serialize;

use crate::domain::model::{LiveObject, ManifestIndex, ObjectRef, ReleaseId};

/// What to do about one object the attempt created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Created by this attempt and left behind: delete it (the user asked for cleanup).
    Delete,
    /// Created by this attempt and left behind: tell the user how to delete it.
    Report,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Leftover {
    pub object: LiveObject,
    pub decision: Decision,
}

/// An object we looked at and deliberately left alone, with the reason; shown with `--debug`
/// and kept in the journal so a reader can see why nothing happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Spared {
    pub object: LiveObject,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub leftovers: Vec<Leftover>,
    pub spared: Vec<Spared>,
}

pub struct Inputs<'a> {
    pub release: &'a ReleaseId,
    /// The target revision's objects: only these can have been created by the rollback.
    pub target: &'a [ObjectRef],
    pub before: &'a [LiveObject],
    pub after: &'a [LiveObject],
    pub cleanup_requested: bool,
}

pub fn plan(inputs: &Inputs) -> Plan {
    let uids_before: HashSet<&str> = inputs.before.iter().map(|o| o.uid.as_str()).collect();
    let namespace = inputs.release.namespace.as_str();
    let target = ManifestIndex::new(inputs.target, namespace);
    let mut plan = Plan::default();
    for object in inputs.after {
        if !target.contains(object) {
            continue;
        }
        let spared = |reason| Spared {
            object: object.clone(),
            reason,
        };
        if uids_before.contains(object.uid.as_str()) {
            plan.spared.push(spared("existed before the rollback"));
        } else if inputs.before.iter().any(|b| same_identity(b, object)) {
            // Same name, new uid: something deleted and recreated it while we ran. Not provably
            // ours to remove.
            plan.spared
                .push(spared("replaced by someone else during the rollback"));
        } else if !object.owner.is(inputs.release) {
            plan.spared.push(spared("not owned by this release"));
        } else if object.keep() {
            plan.spared
                .push(spared("annotated helm.sh/resource-policy: keep"));
        } else {
            plan.leftovers.push(Leftover {
                object: object.clone(),
                decision: if inputs.cleanup_requested {
                    Decision::Delete
                } else {
                    Decision::Report
                },
            });
        }
    }
    plan
}

fn same_identity(a: &LiveObject, b: &LiveObject) -> bool {
    a.kind == b.kind
        && a.name == b.name
        && a.namespace == b.namespace
        && a.api_version.rsplit_once('/').map(|(g, _)| g)
            == b.api_version.rsplit_once('/').map(|(g, _)| g)
}

/// The command a user can run to remove a leftover by hand, on the same cluster as we reached
/// (context, kubeconfig, server, impersonation, CA). It is printed, journaled and pasted into
/// tickets, so it never carries a credential: a token (`--kube-token`, `HELM_KUBETOKEN`) becomes
/// `--token=$HELM_KUBETOKEN`, the variable helm itself reads it from, for the user to supply.
pub fn delete_command(object: &LiveObject, kubectl_globals: &[String]) -> String {
    let mut words = vec!["kubectl".to_string(), "delete".to_string()];
    words.push(object.as_ref().kubectl_arg());
    if let Some(ns) = &object.namespace {
        words.push("--namespace".into());
        words.push(ns.clone());
    }
    words.extend(without_credentials(kubectl_globals));
    words.join(" ")
}

/// kubectl's credential flags; their values never leave this process.
const CREDENTIAL_FLAGS: &[&str] = &["--token", "--password", "--username"];

/// Connection flags with every credential replaced by a shell variable to supply it from.
pub fn without_credentials(args: &[String]) -> Vec<String> {
    let placeholder = |flag: &str| match flag {
        "--token" => "--token=$HELM_KUBETOKEN".to_string(),
        other => format!("{other}=${}", other.trim_start_matches("--").to_uppercase()),
    };
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let flag = arg.split('=').next().unwrap_or_default();
        if !CREDENTIAL_FLAGS.contains(&flag) {
            out.push(arg.clone());
            continue;
        }
        if !arg.contains('=') {
            // `--token VALUE`: the value is the next word.
            iter.next();
        }
        out.push(placeholder(flag));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::ReleaseOwner;

    fn release() -> ReleaseId {
        ReleaseId {
            name: "seed".into(),
            namespace: "default".into(),
        }
    }

    fn live(kind: &str, name: &str, uid: &str, owner: Option<&str>) -> LiveObject {
        LiveObject {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("default".into()),
            name: name.into(),
            uid: uid.into(),
            resource_version: "1".into(),
            owner: ReleaseOwner {
                release_name: owner.map(Into::into),
                release_namespace: owner.map(|_| "default".into()),
            },
            resource_policy: None,
            managed_by: None,
        }
    }

    fn target(kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: None,
            name: name.into(),
        }
    }

    fn run(before: &[LiveObject], after: &[LiveObject], cleanup: bool) -> Plan {
        let release = release();
        let target = [
            target("Service", "seed-standby"),
            target("ConfigMap", "seed-config"),
        ];
        plan(&Inputs {
            release: &release,
            target: &target,
            before,
            after,
            cleanup_requested: cleanup,
        })
    }

    #[test]
    fn an_object_created_by_the_attempt_is_a_leftover() {
        let cm = live("ConfigMap", "seed-config", "u-cm", Some("seed"));
        let svc = live("Service", "seed-standby", "u-svc", Some("seed"));
        let plan = run(std::slice::from_ref(&cm), &[cm.clone(), svc.clone()], false);
        assert_eq!(plan.leftovers.len(), 1);
        assert_eq!(plan.leftovers[0].object, svc);
        assert_eq!(plan.leftovers[0].decision, Decision::Report);
        assert_eq!(plan.spared.len(), 1, "the pre-existing ConfigMap is spared");
        let plan = run(std::slice::from_ref(&cm), &[cm.clone(), svc], true);
        assert_eq!(plan.leftovers[0].decision, Decision::Delete);
    }

    #[test]
    fn an_object_that_existed_before_is_never_a_leftover() {
        let svc = live("Service", "seed-standby", "u-svc", Some("seed"));
        let plan = run(std::slice::from_ref(&svc), std::slice::from_ref(&svc), true);
        assert!(plan.leftovers.is_empty());
        assert_eq!(plan.spared[0].reason, "existed before the rollback");
    }

    #[test]
    fn an_object_owned_by_someone_else_is_never_a_leftover() {
        let foreign = live("Service", "seed-standby", "u-svc", None);
        let other = live("ConfigMap", "seed-config", "u-cm", Some("another-release"));
        let plan = run(&[], &[foreign, other], true);
        assert!(plan.leftovers.is_empty());
        assert!(plan
            .spared
            .iter()
            .all(|s| s.reason == "not owned by this release"));
    }

    #[test]
    fn a_recreated_object_is_not_provably_ours() {
        let old = live("Service", "seed-standby", "u-old", Some("seed"));
        let new = live("Service", "seed-standby", "u-new", Some("seed"));
        let plan = run(&[old], &[new], true);
        assert!(plan.leftovers.is_empty());
    }

    #[test]
    fn objects_outside_the_target_manifest_are_ignored() {
        let stray = live("Secret", "unrelated", "u-x", Some("seed"));
        let plan = run(&[], &[stray], true);
        assert_eq!(plan, Plan::default());
    }

    /// A `--kube-token` must never reach the printed command. The connection is what
    /// `KubeSettings::kubectl_args` makes of `--kube-context --kubeconfig --kube-token
    /// --kube-as-user` (held by a test there).
    #[test]
    fn the_delete_command_never_carries_a_credential() {
        let svc = live("Service", "seed-standby", "u", Some("seed"));
        let connection: Vec<String> = [
            "--context=prod",
            "--kubeconfig=/home/ci/kubeconfig",
            "--token=s3cr3t-t0ken",
            "--as=deployer",
        ]
        .map(String::from)
        .to_vec();
        let command = delete_command(&svc, &connection);
        assert_eq!(
            command,
            "kubectl delete service/seed-standby --namespace default --context=prod \
             --kubeconfig=/home/ci/kubeconfig --token=$HELM_KUBETOKEN --as=deployer"
        );
        let spaced = [
            "--token".to_string(),
            "s3cr3t-t0ken".into(),
            "--password=pw".into(),
        ];
        let command = delete_command(&svc, &spaced);
        assert!(
            !command.contains("s3cr3t") && !command.contains("pw "),
            "{command}"
        );
        assert!(command.ends_with("--token=$HELM_KUBETOKEN --password=$PASSWORD"));
    }

    #[test]
    fn the_delete_command_names_the_object_exactly() {
        let svc = live("Service", "seed-standby", "u", Some("seed"));
        assert_eq!(
            delete_command(&svc, &["--context".into(), "kind".into()]),
            "kubectl delete service/seed-standby --namespace default --context kind"
        );
    }
}
