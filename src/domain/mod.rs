//! Plain data and pure decisions: no process is started, no file or API server is touched here.
//!
//! Everything the tool decides — what helm's stderr means, which objects a failed rollback
//! provably created, whether preflight lets helm run, whether the live objects match the target,
//! what the report says and which exit code it ends with — is a function over these values, so
//! each rule is unit-tested without a cluster. A module here never imports `io` or `pipeline`.

pub mod classify;
pub mod concurrency;
pub mod destructive;
pub mod diagnosis;
pub mod dry_run;
pub mod exit;
pub mod forecast;
pub mod frozen;
pub mod gitops;
pub mod hooks;
pub mod immutable;
pub mod incident;
pub mod lease_state;
pub mod live;
pub mod manifest;
pub mod model;
pub mod newest;
pub mod plan;
pub mod preflight;
pub mod readiness;
pub mod record;
pub mod release;
pub mod render;
pub mod render_yaml;
pub mod report;
pub mod snapshot;
pub mod strategic;
pub mod strays;
pub mod target;
pub mod verdict;
pub mod verify;
pub mod yaml11;
