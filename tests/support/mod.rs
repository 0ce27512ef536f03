//! Shared by the end-to-end tests: the real test bed, and one namespace per test.
//!
//! The bed (kube-apiserver + etcd + controller-manager on loopback, real helm 3 and 4, real
//! kubectl) is started by `./scripts/test`, which exports its coordinates. Without them the tests
//! fail loudly; `HSR_SKIP_E2E=1` is the only way to skip, and it says so.
//!
//! Every test binary compiles all of this as its own `mod support;` and uses a different part of
//! it, so in each binary some items are unused: dead code here is expected, not a defect.
#![allow(dead_code)]

mod bed;
pub mod fault_proxy;
pub mod file_server;
mod matrix;
mod observe;
mod plugin;
mod releases;
mod run;
mod scenario;
pub mod schema;

// Tests name these as `support::Scenario`, `support::bed()`, …; a binary that names only some of
// them would warn about the rest, for the reason dead code is allowed above.
#[allow(unused_imports)]
pub use self::{
    bed::{bed, Bed, HelmMajor},
    matrix::{helm_matrix, MatrixHelm},
    plugin::USER_HELM,
    releases::{copy_dir, HEALTHY_TEMPLATE},
    run::{strings, Run, HELM_PLUGIN_ERROR},
    scenario::Scenario,
};
