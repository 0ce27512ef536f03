//! The kubectl adapter on real API answers: discovery, paths, LIST pages, dry-run verdicts.

use super::*;
use crate::domain::dry_run::{self, Answer};
use crate::io::kube_api::Response;

/// Real `kubectl config view --minify -o json --context=prod` of a two-context kubeconfig.
#[test]
fn the_cluster_is_read_from_kubectls_view_of_the_kubeconfig() {
    let view = std::fs::read("tests/fixtures/api/config-view-minify.json").unwrap();
    let (cluster, namespace) = parse_config_view(&view, &[]);
    assert_eq!(cluster.server.as_deref(), Some("https://prod.example:6443"));
    assert_eq!(cluster.context.as_deref(), Some("prod"));
    assert_eq!(namespace.as_deref(), Some("payments"));
    let flags = ["--server=https://other:6443".to_string()];
    let (cluster, _) = parse_config_view(&view, &flags);
    assert_eq!(cluster.server.as_deref(), Some("https://other:6443"));
    assert_eq!(parse_config_view(b"", &[]).0, Cluster::default());
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/api/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Real discovery documents of the bed's kube-apiserver 1.20.
#[test]
fn discovery_gives_plurals_and_scope_without_subresources() {
    let core = parse_resource_list(&fixture("discovery-v1.json")).unwrap();
    let configmaps = core.iter().find(|r| r.kind == "ConfigMap").unwrap();
    assert_eq!(configmaps.name, "configmaps");
    assert!(configmaps.namespaced);
    let namespaces = core.iter().find(|r| r.kind == "Namespace").unwrap();
    assert!(!namespaces.namespaced);
    assert!(core.iter().all(|r| !r.name.contains('/')));
    let apps = parse_resource_list(&fixture("discovery-apps-v1.json")).unwrap();
    let deployments: Vec<_> = apps.iter().filter(|r| r.kind == "Deployment").collect();
    assert_eq!(deployments.len(), 1, "not deployments/status");
    assert_eq!(
        collection_path("apps/v1", deployments[0], Some("web")).unwrap(),
        "/apis/apps/v1/namespaces/web/deployments"
    );
    assert_eq!(
        collection_path("v1", namespaces, None).unwrap(),
        "/api/v1/namespaces"
    );
}

#[test]
fn a_name_cannot_address_another_object() {
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "../secrets",
        "a?b",
        "a b",
        "a%2Fb",
        "a#b",
    ] {
        assert!(segment(bad).is_err(), "{bad:?}");
    }
    for good in ["web", "web-1.example", "system:auth-delegator"] {
        assert_eq!(segment(good).unwrap(), good);
    }
    assert_eq!(query("eyJ2Ijo+/="), "eyJ2Ijo%2B%2F%3D");
}

/// A real LIST page: items without kind or apiVersion, and a continue token.
#[test]
fn a_list_page_gives_identities_and_the_next_page() {
    let page: Page<KubeDocument> =
        serde_json::from_slice(&fixture("list-configmaps-page.json")).unwrap();
    assert!(page.metadata.unwrap().next.is_some_and(|t| !t.is_empty()));
    let mut live = Vec::new();
    for mut item in page.items {
        item.fill("v1", "ConfigMap");
        flatten(item, &mut live);
    }
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].kind, "ConfigMap");
    assert_eq!(live[0].name, "a-cm0");
    assert_eq!(live[0].owner.release_name.as_deref(), Some("a"));
    assert!(!live[0].uid.is_empty() && !live[0].resource_version.is_empty());
}

/// The real answer of the bed's API server to a dry run of an invalid Deployment.
#[test]
fn a_rejection_is_the_servers_message_and_a_dead_server_is_no_verdict() {
    let read =
        |r: &Response| dry_run::answer(r.status, r.reason().as_deref(), &r.message(), false, false);
    let invalid = Response {
        status: 422,
        body: fixture("dry-run-invalid-deployment.json"),
    };
    assert_eq!(invalid.reason().as_deref(), Some("Invalid"));
    let Answer::Rejected(message) = read(&invalid) else {
        panic!("{:?}", read(&invalid))
    };
    assert!(message.starts_with(
        "Deployment.apps \"b-d0\" is invalid: spec.template.spec.containers[0].env[1].valueFrom.configMapKeyRef.name: Invalid value: \"Bad_Name\""
    ));
    let overloaded = Response {
        status: 429,
        ..invalid.clone()
    };
    assert!(matches!(read(&overloaded), Answer::Unchecked(_)));
    let proxy_error = Response {
        status: 502,
        body: b"Error while proxying request: connection refused".to_vec(),
    };
    assert!(matches!(read(&proxy_error), Answer::Unchecked(_)));
}

/// Real answers of the bed's API server (v1.20) that are no verdict on the object: a
/// validating webhook with `sideEffects: Unknown` refuses every dry run, and a server error
/// from a write that is only our model of helm's (a patch).
#[test]
fn a_check_the_server_cannot_make_is_no_verdict() {
    let webhook = read(400, "dry-run-webhook-without-dry-run.json", true);
    assert_eq!(
        webhook,
        Answer::Unchecked(
            "admission webhook \"no-dry-run.hsr.example.com\" does not support dry run".into()
        )
    );
    let Answer::Unchecked(reason) = read(
        500,
        "dry-run-apply-service-without-protocol-500.json",
        false,
    ) else {
        panic!("a 500 to a model of helm's write is no verdict")
    };
    assert!(
        reason.starts_with("HTTP 500: failed to create typed patch object"),
        "{reason}"
    );
}

/// Real answers of the bed's API server (v1.20) to a server-side apply, the very write helm 4
/// makes: a 500 about the object's own content is what helm meets too.
#[test]
fn a_server_error_about_the_object_in_helms_own_write_is_a_rejection() {
    for file in [
        "dry-run-apply-service-without-protocol-500.json",
        "dry-run-apply-invalid-quantity-500.json",
    ] {
        assert!(
            matches!(read(500, file, true), Answer::Rejected(_)),
            "{file}: {:?}",
            read(500, file, true)
        );
    }
    let Answer::Rejected(message) = read(500, "dry-run-apply-invalid-quantity-500.json", true)
    else {
        unreachable!()
    };
    assert!(message.contains("quantities must match"), "{message}");
}

/// The real answer of a v1.37 API server to helm 4's apply (`force=false`, as helm applies
/// without `--force-conflicts`) onto a Deployment whose replicas `kubectl scale` took: helm's
/// rollback fails on exactly this conflict, so the preflight refuses it.
#[test]
fn a_conflict_with_another_manager_in_helms_own_apply_is_a_rejection() {
    let Answer::Rejected(message) = read(409, "dry-run-apply-conflict-409.json", true) else {
        panic!("helm's own apply conflicts as helm's will")
    };
    assert_eq!(
        message,
        "Apply failed with 1 conflict: conflict with \"kubectl\" with subresource \"scale\" \
         using apps/v1: .spec.replicas"
    );
    assert!(matches!(
        read(409, "dry-run-apply-conflict-409.json", false),
        Answer::Unchecked(_)
    ));
}

fn read(status: u16, file: &str, helms_own_write: bool) -> Answer {
    let r = Response {
        status,
        body: fixture(file),
    };
    dry_run::answer(
        r.status,
        r.reason().as_deref(),
        &r.message(),
        false,
        helms_own_write,
    )
}
