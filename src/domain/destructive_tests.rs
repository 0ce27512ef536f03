use super::*;
use crate::domain::model::ReleaseOwner;

fn live(api_version: &str, kind: &str, name: &str, policy: Option<&str>) -> LiveObject {
    LiveObject {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: (kind == "PersistentVolumeClaim").then(|| "prod".to_string()),
        name: name.into(),
        uid: format!("uid-{name}"),
        resource_version: "1".into(),
        owner: ReleaseOwner {
            release_name: None,
            release_namespace: None,
        },
        resource_policy: policy.map(str::to_string),
        managed_by: None,
    }
}

#[test]
fn only_custom_resource_definitions_volumes_and_namespaces_destroy_data() {
    let crd = live(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "widgets.example.com",
        None,
    );
    assert_eq!(destroys(&crd), Some(Destroys::CustomResources));
    let pvc = live("v1", "PersistentVolumeClaim", "data", None);
    assert_eq!(destroys(&pvc), Some(Destroys::Volume));
    assert_eq!(
        destroys(&live("v1", "Namespace", "scratch", None)),
        Some(Destroys::Namespace)
    );
    assert_eq!(destroys(&live("v1", "ConfigMap", "config", None)), None);
    // A kind of the same name in another group is not the one that takes data with it.
    let lookalike = live("example.com/v1", "Namespace", "x", None);
    assert_eq!(destroys(&lookalike), None);
}

#[test]
fn a_custom_resource_definition_names_its_kind_and_count() {
    // The chart of tests/e2e_destructive.rs, as the API server returns it (abridged to spec).
    let body = serde_json::json!({"spec": {
        "group": "team.example.com",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {"name": "v1beta1", "served": true, "storage": false},
            {"name": "v1", "served": true, "storage": true}
        ]
    }});
    let served = served_resource(&body).unwrap();
    assert_eq!(
        served,
        (
            "team.example.com".into(),
            "v1".into(),
            "widgets".into(),
            "Widget".into()
        )
    );
    let crd = live(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "widgets.team.example.com",
        None,
    );
    let delete = describe(&crd, Some(&body), Some(2)).unwrap();
    assert_eq!(
        delete.loss,
        "2 custom resources of kind Widget, in every namespace"
    );
    assert_eq!(
        delete.object(),
        "CustomResourceDefinition/widgets.team.example.com"
    );
    let uncounted = describe(&crd, Some(&body), None).unwrap();
    assert!(
        uncounted.loss.contains("could not be counted"),
        "{uncounted:?}"
    );
    assert!(delete.refusal().contains("--allow-destructive"));
}

#[test]
fn a_volume_claim_names_its_size_and_volume() {
    let pvc = live("v1", "PersistentVolumeClaim", "data", None);
    let bound = serde_json::json!({
        "spec": {"resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv-1"},
        "status": {"capacity": {"storage": "10Gi"}}
    });
    let delete = describe(&pvc, Some(&bound), None).unwrap();
    assert_eq!(delete.loss, "its data: 10Gi, bound to volume pv-1");
    assert_eq!(delete.object(), "PersistentVolumeClaim/prod/data");
    let pending = serde_json::json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}});
    let delete = describe(&pvc, Some(&pending), None).unwrap();
    assert_eq!(delete.loss, "its data: 1Gi, not bound to a volume");
}
