//! `helm safe-rollback`: a drop-in `helm rollback` that records the pre-state, runs the native
//! rollback, explains its failure and removes only what the failed attempt provably created.
//!
//! The pipeline is `capture → run → classify → reconcile → report` (see `app`). Decisions are pure
//! functions over plain data (`classify`, `reconcile`, `report`); processes are only started by
//! `exec`, through the `helm` and `kubectl` adapters.

pub mod app;
pub mod capture;
pub mod classify;
pub mod cli;
pub mod concurrency;
pub mod delete;
pub mod dry_run;
pub mod exclusion;
pub mod exec;
pub mod helm;
pub mod helm_flags;
pub mod journal;
pub mod kube_api;
pub mod kubectl;
pub mod lease;
pub mod manifest;
pub mod model;
pub mod preflight;
pub mod reconcile;
pub mod report;
pub mod resume;
pub mod verify;
pub mod version_cache;
pub mod yaml11;
