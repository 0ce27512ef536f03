//! On real answers of the API server (tests/fixtures/immutable, recorded on the bed).

use serde_json::Value;

use super::*;
use crate::domain::manifest::parse_documents;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("tests/fixtures/immutable/{name}")).unwrap()
}

/// `kind`, or `v1.20-kind` for the answer of Kubernetes 1.20.
fn message(kind: &str) -> String {
    let name = match kind.strip_prefix("v1.20-") {
        Some(kind) => format!("v1.20-dry-run-apply-{kind}.json"),
        None => format!("dry-run-apply-{kind}.json"),
    };
    let status: Value = serde_json::from_slice(&fixture(&name)).unwrap();
    status["message"].as_str().unwrap().to_string()
}

fn live(kind: &str) -> Value {
    serde_json::from_slice(&fixture(&format!("live-{kind}.json"))).unwrap()
}

/// v2's object of `kind`, as the rollback writes it.
fn target(kind: &str) -> (ObjectRef, Value) {
    let documents = parse_documents(&fixture("v2.yaml")).unwrap();
    let document = documents
        .into_iter()
        .find(|d| d.object.kind.eq_ignore_ascii_case(kind))
        .unwrap();
    (document.object, document.body)
}

fn changes_of(kind: &str) -> Vec<ImmutableChange> {
    let (object, body) = target(kind);
    changes(&object, &message(kind), Some(&live(kind)), Some(&body)).unwrap()
}

#[test]
fn each_rejection_names_the_field_it_keeps() {
    assert_eq!(immutable_fields(&message("deployment")), ["spec.selector"]);
    assert_eq!(
        immutable_fields(&message("statefulset")),
        ["spec.volumeClaimTemplates"]
    );
    assert_eq!(immutable_fields(&message("job")), ["spec.template"]);
    assert_eq!(
        immutable_fields(&message("service")),
        ["spec.clusterIPs[0]"]
    );
}

#[test]
fn other_rejections_are_not_immutable_fields() {
    let invalid =
        std::fs::read_to_string("tests/fixtures/api/dry-run-invalid-deployment.json").unwrap();
    let status: Value = serde_json::from_str(&invalid).unwrap();
    assert_eq!(
        immutable_fields(status["message"].as_str().unwrap()),
        Vec::<String>::new()
    );
    let (object, body) = target("deployment");
    assert_eq!(
        changes(
            &object,
            status["message"].as_str().unwrap(),
            None,
            Some(&body)
        ),
        None
    );
}

#[test]
fn a_selector_change_shows_both_values_and_the_way_past_it() {
    let [change] = &changes_of("deployment")[..] else {
        panic!("{:?}", changes_of("deployment"))
    };
    assert_eq!(change.object(), "Deployment/imm/web");
    assert_eq!(
        change.live.as_deref(),
        Some(r#"{"matchLabels":{"app":"web"}}"#)
    );
    assert_eq!(
        change.target.as_deref(),
        Some(r#"{"matchLabels":{"app":"web","tier":"front"}}"#)
    );
    assert!(change.replaceable);
    assert_eq!(
        change.uid.as_deref(),
        live("deployment")["metadata"]["uid"].as_str()
    );
    let change = change.clone().with_commands(
        "kubectl delete deployment.v1.apps/web --namespace imm".into(),
        "helm safe-rollback web 1 --namespace imm",
    );
    let refusal = change.refusal();
    for words in [
        "spec.selector of Deployment/imm/web",
        r#"live {"matchLabels":{"app":"web"}}"#,
        "`kubectl delete deployment.v1.apps/web --namespace imm --cascade=orphan`, then `helm safe-rollback web 1 --namespace imm`",
        "--replace-immutable",
        "helm 3's --force and helm 4's --force-replace replace the object with a PUT",
    ] {
        assert!(refusal.contains(words), "{words:?} not in {refusal}");
    }
}

#[test]
fn a_service_address_is_never_replaced() {
    let [change] = &changes_of("service")[..] else {
        panic!()
    };
    assert_eq!(
        (change.live.as_deref(), change.target.as_deref()),
        (Some(r#""10.96.0.77""#), Some(r#""10.96.0.78""#))
    );
    assert!(!change.replaceable);
    let change = change.clone().with_commands(
        "kubectl delete service/api".into(),
        "helm safe-rollback api",
    );
    assert!(change.commands.is_empty());
    assert!(change
        .refusal()
        .contains("delete and re-create Service/imm/api by hand"));
}

#[test]
fn a_statefulset_names_the_templates_that_change_and_not_the_defaults() {
    let [change] = &changes_of("statefulset")[..] else {
        panic!()
    };
    assert_eq!(change.field, "spec.volumeClaimTemplates");
    assert!(change.replaceable);
    // Kubernetes 1.20 forbids the whole spec: the fields the target changes are found by
    // comparison, the server's defaults in the live object not counted.
    let older = message("v1.20-statefulset");
    let older_live: Value =
        serde_json::from_slice(&fixture("v1.20-live-statefulset.json")).unwrap();
    let (object, body) = target("statefulset");
    let found = changes(&object, &older, Some(&older_live), Some(&body)).unwrap();
    let fields: Vec<&str> = found.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["spec.volumeClaimTemplates"]);
    let (_, unchanged) = {
        let documents = parse_documents(&fixture("v1.yaml")).unwrap();
        let d = documents
            .into_iter()
            .find(|d| d.object.kind == "StatefulSet")
            .unwrap();
        (d.object, d.body)
    };
    let same = changes(&object, &older, Some(&older_live), Some(&unchanged)).unwrap();
    assert_eq!(
        same[0].field, "spec",
        "nothing forbidden differs: the message's own field"
    );
}

#[test]
fn a_job_template_is_replaceable_and_long_values_are_cut() {
    let [change] = &changes_of("job")[..] else {
        panic!()
    };
    assert!(change.replaceable);
    assert!(change.live.as_ref().unwrap().chars().count() <= 201);
}
