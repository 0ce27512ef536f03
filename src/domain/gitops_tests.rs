//! On the marks the controllers write (tests/fixtures/gitops/marked-objects.json).

use serde::Deserialize;
use serde_json::json;

use super::*;
use crate::domain::live::{flatten, KubeDocument};

fn live() -> Vec<LiveObject> {
    let text = std::fs::read("tests/fixtures/gitops/marked-objects.json").unwrap();
    let document =
        KubeDocument::deserialize(serde_json::from_slice::<serde_json::Value>(&text).unwrap());
    let mut out = Vec::new();
    flatten(document.unwrap(), &mut out);
    out
}

fn release(name: &str) -> ReleaseId {
    ReleaseId {
        name: name.into(),
        namespace: "apps".into(),
    }
}

fn owner_of_release(name: &str) -> Option<(GitOpsOwner, usize)> {
    owner(&live(), &release(name))
}

fn flux() -> GitOpsOwner {
    owner_of_release("podinfo").unwrap().0
}

fn argo() -> GitOpsOwner {
    owner_of_release("guestbook").unwrap().0
}

#[test]
fn each_controller_is_named_from_its_own_marks() {
    let (flux, count) = owner_of_release("podinfo").unwrap();
    assert_eq!(count, 1);
    assert_eq!(flux.controller, Controller::Flux);
    assert_eq!(
        (flux.name.as_str(), flux.namespace.as_deref()),
        ("podinfo", Some("flux-system"))
    );
    assert_eq!(flux.object(), "Flux HelmRelease flux-system/podinfo");

    let argo = argo();
    assert_eq!(
        (argo.controller, argo.namespace.as_deref()),
        (Controller::ArgoCd, None)
    );
    assert_eq!(argo.object(), "Argo CD Application argocd/guestbook");

    let tracked = owner_of_release("team-guestbook").unwrap().0;
    assert_eq!(tracked.controller, Controller::ArgoCd);
    assert_eq!(
        (tracked.name.as_str(), tracked.namespace.as_deref()),
        ("guestbook", Some("team"))
    );

    let fleet = owner_of_release("fleet-app").unwrap().0;
    assert_eq!(
        (fleet.controller, fleet.name.as_str()),
        (Controller::Fleet, "default-fleet-app")
    );

    assert_eq!(
        owner_of_release("plain"),
        None,
        "helm's own labels are no GitOps mark"
    );
}

#[test]
fn a_flux_release_is_paused_only_when_its_helmrelease_says_suspend() {
    let suspended = json!({"kind": "HelmRelease", "spec": {"suspend": true, "interval": "5m"}});
    assert!(managed(flux(), 1, Ok(Some(suspended))).paused());
    let running = json!({"kind": "HelmRelease", "spec": {"interval": "5m"}});
    let active = managed(flux(), 1, Ok(Some(running)));
    assert_eq!(active.state, OwnerState::Active);
    assert_eq!(
        active.pause_command,
        "flux suspend helmrelease podinfo -n flux-system"
    );
    let refusal = active.refusal();
    assert!(
        refusal.contains("Flux HelmRelease flux-system/podinfo"),
        "{refusal}"
    );
    assert!(
        refusal.contains("`flux suspend helmrelease podinfo -n flux-system`"),
        "{refusal}"
    );
    assert!(refusal.contains("--allow-gitops"), "{refusal}");
}

#[test]
fn an_argo_application_is_paused_without_automated_sync() {
    let automated = json!({"spec": {"syncPolicy": {"automated": {"prune": true}}}});
    assert_eq!(
        managed(argo(), 2, Ok(Some(automated))).state,
        OwnerState::Active
    );
    let switched_off = json!({"spec": {"syncPolicy": {"automated": {"enabled": false}}}});
    assert!(managed(argo(), 2, Ok(Some(switched_off))).paused());
    let manual = json!({"spec": {"syncPolicy": {"syncOptions": ["CreateNamespace=true"]}}});
    assert!(managed(argo(), 2, Ok(Some(manual))).paused());
    let command = managed(argo(), 2, Ok(None)).pause_command;
    assert!(
        command.starts_with("kubectl patch application guestbook -n argocd"),
        "{command}"
    );
    assert!(
        command.contains(r#"{"spec":{"syncPolicy":{"automated":null}}}"#),
        "{command}"
    );
}

#[test]
fn an_owner_that_cannot_be_read_is_taken_as_active_with_why() {
    let missing = managed(flux(), 1, Ok(None));
    assert!(!missing.paused());
    assert!(missing
        .refusal()
        .contains("not known: Flux HelmRelease flux-system/podinfo was not found"));
    let forbidden = managed(argo(), 1, Err("forbidden: cannot get applications".into()));
    assert_eq!(
        forbidden.state,
        OwnerState::Unknown("forbidden: cannot get applications".into())
    );
    assert!(forbidden
        .note()
        .contains("not known to be paused (--allow-gitops)"));
    let fleet = owner_of_release("fleet-app").unwrap().0;
    assert!(
        !managed(fleet, 1, Ok(None)).paused(),
        "Fleet is never read here"
    );
}

#[test]
fn only_the_releases_own_objects_count() {
    let mut objects = live();
    // The Argo CD-marked object, as another release's: it says nothing of `guestbook`.
    objects[1].owner.release_name = Some("other".into());
    assert_eq!(owner(&objects, &release("guestbook")), None);
}

#[test]
fn the_json_names_the_owner_its_state_and_the_way_to_pause_it() {
    let unknown = managed(flux(), 3, Ok(None));
    let value = serde_json::to_value(&unknown).unwrap();
    assert_eq!(value["owner"]["controller"], "flux");
    assert_eq!(value["owner"]["namespace"], "flux-system");
    assert_eq!(value["objects"], 3);
    assert_eq!(value["state"], "unknown");
    assert_eq!(
        value["detail"],
        "Flux HelmRelease flux-system/podinfo was not found"
    );
    assert_eq!(
        value["pause_command"],
        "flux suspend helmrelease podinfo -n flux-system"
    );
    let back: Managed = serde_json::from_value(value).unwrap();
    assert_eq!(back, unknown, "the journal reads back what it wrote");
    let paused = serde_json::to_value(managed(argo(), 1, Ok(Some(json!({"spec": {}}))))).unwrap();
    assert_eq!(
        (paused["state"].as_str(), paused.get("detail")),
        (Some("paused"), None)
    );
}
