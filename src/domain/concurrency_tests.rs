//! Unit tests of `concurrency`, on the real history of seed/steps.sh (helm 3.17.3 and 4.3.1):
//! revisions 1–7, where 4–6 are failed rollbacks to 2 and 7 a good rollback to 3.

use super::*;
use crate::domain::model::LiveObject;
use crate::domain::plan::Leftover;
use crate::domain::release::parse_history;

fn history(version: &str) -> Vec<Revision> {
    let path = format!("tests/fixtures/real-helm/seed/helm-{version}/08-history.stdout");
    parse_history(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_run_alone_sees_only_its_own_revision() {
    for version in ["v3.17.3", "v4.3.1"] {
        let now = history(version);
        // Step 7: captured at revision 6, our rollback made revision 7 (deployed).
        let assessment = assess(&now[..6], &now, 1);
        assert_eq!(assessment.concurrent, Vec::new(), "{version}");
        assert_eq!(assessment.deployed_now, Some(7));
        // Step 6 failed: revision 6 is ours, nothing is deployed, nobody else wrote.
        let assessment = assess(&now[..5], &now[..6], 1);
        assert_eq!(assessment, Assessment::default(), "{version}");
    }
}

#[test]
fn a_revision_we_did_not_make_is_another_writer() {
    for version in ["v3.17.3", "v4.3.1"] {
        let now = history(version);
        // Captured at revision 5; we ran one rollback (revision 6) and revision 7 appeared.
        let assessment = assess(&now[..5], &now, 1);
        let numbers: Vec<u64> = assessment.concurrent.iter().map(|r| r.revision).collect();
        assert_eq!(numbers, [7], "{version}");
        assert_eq!(assessment.concurrent[0].status, "deployed");
        assert_eq!(assessment.concurrent[0].description, "Rollback to 3");
        assert_eq!(assessment.concurrent[0].created, now[6].updated);
        // Before helm ran (orphan removal), every new revision is someone else's.
        assert_eq!(assess(&now[..5], &now, 0).concurrent.len(), 2);
    }
}

#[test]
fn the_deployed_revision_must_be_the_one_we_started_from_or_ours() {
    // A rollback that failed in its wait (helm records the revision it started from again,
    // still deployed): captured at 7, our revision 8 failed, 7 is still deployed. Alone.
    let mut now = history("v3.17.3");
    let captured = now.clone();
    now.push(Revision {
        revision: 8,
        status: "failed".into(),
        ..now[5].clone()
    });
    assert_eq!(
        assess(&captured, &now, 1),
        Assessment {
            concurrent: Vec::new(),
            deployed_now: Some(7),
        }
    );
    // Revision 3 deployed again, although nothing new appeared: someone else's doing.
    now[2].status = "deployed".into();
    now[6].status = "superseded".into();
    let assessment = assess(&captured, &now, 1);
    assert_eq!(assessment.deployed_now, Some(3));
    assert_eq!(assessment.concurrent[0].revision, 3);
}

fn leftover(kind: &str, name: &str) -> Leftover {
    Leftover {
        object: LiveObject {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: Some("ns".into()),
            name: name.into(),
            uid: format!("uid-{name}"),
            resource_version: "1".into(),
            owner: crate::domain::model::ReleaseOwner {
                release_name: Some("rel".into()),
                release_namespace: Some("ns".into()),
            },
            resource_policy: None,
            managed_by: None,
        },
        decision: Decision::Delete,
    }
}

#[test]
fn what_the_deployed_revision_needs_is_never_deleted() {
    let deployed = [ObjectRef {
        api_version: "v1".into(),
        kind: "ServiceAccount".into(),
        namespace: None,
        name: "rel-sa".into(),
    }];
    let mut plan = Plan {
        leftovers: vec![
            leftover("ServiceAccount", "rel-sa"),
            leftover("ConfigMap", "rel-cm"),
        ],
        spared: Vec::new(),
    };
    guard(&mut plan, &Assessment::default(), &deployed, "ns");
    assert_eq!(plan.leftovers.len(), 1);
    assert_eq!(plan.leftovers[0].object.name, "rel-cm");
    assert_eq!(
        plan.leftovers[0].decision,
        Decision::Delete,
        "alone: deleted"
    );
    assert_eq!(plan.spared[0].object.name, "rel-sa");
    let now = history("v4.3.1");
    let assessment = assess(&now[..5], &now, 1);
    guard(&mut plan, &assessment, &[], "ns");
    assert_eq!(
        plan.leftovers[0].decision,
        Decision::Report,
        "another writer: reported"
    );
    let text = warning(&assessment.concurrent);
    assert!(
        text.contains("revision 7 (deployed: Rollback to 3)"),
        "{text}"
    );
    assert!(text.contains("nothing was deleted"), "{text}");
}
