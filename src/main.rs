//! `helm safe-rollback`: a drop-in `helm rollback` that records the pre-state, runs the native
//! rollback, explains its failure and removes only what the failed attempt provably created.
//!
//! The pipeline is `capture → run → classify → reconcile → report` (see `app`). Decisions are pure
//! functions over plain data (`classify`, `reconcile`, `report`); processes are only started by
//! `exec`, through the `helm` and `kubectl` adapters.

mod app;
mod capture;
mod classify;
mod cli;
mod exec;
mod helm;
mod journal;
mod kubectl;
mod manifest;
mod model;
mod reconcile;
mod report;

use std::process::ExitCode;

fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let code = match cli::parse(std::env::args_os().skip(1).collect(), &env) {
        Ok(cli::Parsed::Help(text)) => {
            println!("{text}");
            0
        }
        Ok(cli::Parsed::Run(invocation)) => app::run(&invocation, &env),
        Err(error) => {
            eprintln!("Error: {error}");
            app::EXIT_USAGE
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
