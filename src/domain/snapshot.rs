//! The pre-state: what the release and its objects were before anything changed.
//!
//! It is what makes every later decision provable: an object is only ever called "created by
//! this rollback" because its uid is *not* in here. Captured by `pipeline::capture`, kept in the
//! journal, read by every decision.

use serde::{Deserialize, Serialize};

use crate::domain::dry_run::WriteMethod;
use crate::domain::manifest::Document;
use crate::domain::model::{Cluster, HelmVersion, LiveObject, ObjectRef, ReleaseId, Revision};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub release: ReleaseId,
    /// The cluster the run talked to (journals before it was recorded have none).
    #[serde(default)]
    pub cluster: Cluster,
    pub helm: HelmVersion,
    /// How helm writes objects in this rollback (client-side patches or server-side apply).
    #[serde(default = "client_side")]
    pub write_method: WriteMethod,
    pub history: Vec<Revision>,
    pub from_revision: u64,
    pub to_revision: u64,
    /// Objects of the newest revision (what helm rolls back *from*).
    pub current: Vec<ObjectRef>,
    /// Objects of the revision helm rolls back *to*.
    pub target: Vec<ObjectRef>,
    /// Identities of every object of `current` ∪ `target` that existed when we looked.
    pub live: Vec<LiveObject>,
    pub taken_at: String,
    /// The newest revision helm completed successfully, and its objects (see preflight).
    pub last_successful_revision: Option<u64>,
    pub last_successful: Vec<ObjectRef>,
    /// The target manifest's objects in full, for the preflight dry run and verification. Never
    /// serialised: they can hold Secret data.
    #[serde(skip)]
    pub target_documents: Vec<Document>,
    /// The same for the manifest helm rolls back from (its patches are computed against it).
    #[serde(skip)]
    pub current_documents: Vec<Document>,
}

fn client_side() -> WriteMethod {
    WriteMethod::ClientSide
}
