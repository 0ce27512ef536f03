//! The `helm-safe-rollback` binary: parse the command line, run the pipeline, exit with its code.

use std::process::ExitCode;

use helm_safe_rollback::{cli, pipeline as app};
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
