//! The edge: the only code that starts processes (`exec`, through the `helm` and `kubectl`
//! adapters; `signals` and `trace` around it, `process` to ask whether one still runs), talks to the API server (`kube_api`, `delete`, `lease`) or writes files
//! (`journal`, `version_cache`).
//!
//! Adapters turn what they read into `domain` values and leave every decision to `domain`; the
//! pipeline sequences them.

pub mod delete;
pub mod exec;
pub mod helm;
pub mod journal;
pub mod kube_api;
pub mod kubectl;
pub mod lease;
pub mod process;
pub mod progress;
pub mod signals;
pub mod trace;
pub mod version_cache;
