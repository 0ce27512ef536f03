//! On real data (tests/fixtures/frozen, recorded on the bed): a Secret whose `randAlphaNum`
//! values each revision rendered anew, and a ConfigMap that stays the same.

use serde::Deserialize;

use super::*;
use crate::domain::live::KubeDocument;
use crate::domain::manifest::{objects_of, parse_documents};
use crate::domain::model::{Cluster, HelmVersion, ReleaseId};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/frozen/{name}")).unwrap()
}

fn json(name: &str) -> serde_json::Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// What the API server stores now, after the upgrade to revision 2.
fn live_data() -> Vec<StoredData> {
    ["live-secret.json", "live-configmap.json"]
        .iter()
        .map(|name| StoredData::of(&KubeDocument::deserialize(json(name)).unwrap()).unwrap())
        .collect()
}

/// A rollback from revision 2 to `to`.
fn rollback_to(to: u64) -> Snapshot {
    let documents = |r: u64| parse_documents(&fixture(&format!("revision-{r}.yaml"))).unwrap();
    let (current_documents, target_documents) = (documents(2), documents(to));
    Snapshot {
        release: ReleaseId {
            name: "seed".into(),
            namespace: "fz".into(),
        },
        cluster: Cluster::default(),
        write_method: crate::domain::dry_run::WriteMethod::ServerSideApply,
        helm: HelmVersion {
            version: "v4.3.1".into(),
            major: 4,
        },
        history: Vec::new(),
        from_revision: 2,
        to_revision: to,
        current: objects_of(&current_documents),
        target: objects_of(&target_documents),
        live: Vec::new(),
        taken_at: String::new(),
        last_successful_revision: Some(2),
        last_successful: objects_of(&current_documents),
        target_documents,
        current_documents,
    }
}

fn named(renders: &[FrozenRender]) -> Vec<(String, Vec<String>)> {
    let names = renders
        .iter()
        .map(|r| (format!("{}/{}", r.kind, r.name), r.keys.clone()));
    names.collect()
}

#[test]
fn generated_values_that_come_back_are_named_by_key() {
    let keys = vec!["password".to_string(), "token".to_string()];
    let expected = vec![("Secret/seed-credentials".to_string(), keys)];
    let from_manifest = frozen_renders(&rollback_to(1), &live_data(), &[]);
    assert_eq!(named(&from_manifest), expected);
    assert_eq!(from_manifest[0].namespace, "fz");
    assert_eq!(from_manifest[0].revision, 1);
    // The API server's own answer to the write says the same.
    let predicted = [json("dry-run-apply-secret.json")];
    let from_dry_run = frozen_renders(&rollback_to(1), &live_data(), &predicted);
    assert_eq!(from_dry_run, from_manifest);
}

#[test]
fn data_that_stays_is_no_warning() {
    assert_eq!(frozen_renders(&rollback_to(2), &live_data(), &[]), []);
}

#[test]
fn keys_another_writer_added_stay_unless_helm_wrote_them() {
    let mut live = live_data();
    live[0].values.insert("added-by-hand".into(), b"x".to_vec());
    // helm's patch leaves keys no revision of it wrote.
    let renders = frozen_renders(&rollback_to(2), &live, &[]);
    assert_eq!(renders, []);
    // A key the target writes and the live object lost comes back.
    live[0].values.remove("token");
    let renders = frozen_renders(&rollback_to(2), &live, &[]);
    assert_eq!(named(&renders)[0].1, ["token"]);
}

#[test]
fn the_warning_names_keys_never_values() {
    let live = live_data();
    let renders = frozen_renders(&rollback_to(1), &live, &[]);
    let warning = renders[0].warning();
    assert!(
        warning.starts_with("Secret/fz/seed-credentials: "),
        "{warning}"
    );
    assert!(warning.contains("revision 1 rendered for keys password, token"));
    let debug = format!("{:?}", live[0]);
    for document in parse_documents(&fixture("revision-1.yaml")).unwrap() {
        let secret_values = document
            .body
            .get("data")
            .into_iter()
            .chain(document.body.get("stringData"));
        for value in secret_values.flat_map(|v| v.as_object().unwrap().values()) {
            let value = value.as_str().unwrap();
            assert!(!warning.contains(value) && !debug.contains(value));
        }
    }
    let stored = &live[0].values["password"];
    let stored = String::from_utf8(stored.clone()).unwrap();
    assert!(!debug.contains(&stored), "{debug}");
}
