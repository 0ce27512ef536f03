//! `helm safe-rollback`: a drop-in `helm rollback` that records the pre-state, runs the native
//! rollback, explains its failure and removes only what the failed attempt provably created.
//!
//! The tree follows the data: `cli` reads the command line once; `pipeline` runs the steps
//! (capture → preflight → run → classify → reconcile → report → verify, and `--finish`
//! re-entering the same steps); every decision is a pure function in `domain`; the only code
//! that starts processes, talks to the API server or writes files is in `io`.

pub mod cli;
pub mod domain;
pub mod io;
pub mod pipeline;

// The paths the tests and benchmarks have always used.
pub use domain::plan as reconcile;
pub use domain::{classify, manifest, model, yaml11};
