//! The `helm-safe-rollback` binary: parse the command line, run the pipeline, print how it
//! ended, exit with its code. The only place that prints a report.

use std::io::IsTerminal;
use std::process::ExitCode;

use helm_safe_rollback::cli::{self, Invocation, OutputFormat};
use helm_safe_rollback::domain::exit::Exit;
use helm_safe_rollback::domain::render::{
    render_diagnosis, render_incident, render_json, render_text,
};
use helm_safe_rollback::domain::render_yaml::render_yaml;
use helm_safe_rollback::io::signals;
use helm_safe_rollback::pipeline::{self, Ending};

fn main() -> ExitCode {
    let env = |key: &str| std::env::var(key).ok();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // helm's plugin completion (plugin.complete): never a run.
    if args.first().is_some_and(|a| a == "__complete") {
        let words: Vec<String> = args[1..]
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        to_stdout(&pipeline::complete(&words, &env));
        return ExitCode::SUCCESS;
    }
    let exit = match cli::parse(args, &env) {
        Ok(cli::Parsed::Help(text)) => {
            to_stdout(&format!("{text}\n"));
            Exit::Success
        }
        Ok(cli::Parsed::Version(helm)) => {
            to_stdout(&pipeline::version_text(&helm, &env));
            Exit::Success
        }
        Ok(cli::Parsed::Run(invocation)) => {
            // Once for the whole process: signals go to helm while it runs, and are remembered.
            if let Err(error) = signals::handle_signals() {
                eprintln!(
                    "Warning: cannot handle signals ({error:#}); ^C will stop this run at once"
                );
            }
            let ending = pipeline::run(&invocation, &env);
            print(&invocation, &ending);
            ending.exit
        }
        Err(error) => {
            to_stderr(&format!("Error: {error}\n"));
            Exit::Usage
        }
    };
    ExitCode::from(exit.process_code())
}

/// `--output json` / `yaml`: the document, as stdout's whole content; `None` for the table.
fn document(format: OutputFormat, value: &impl serde::Serialize) -> Option<String> {
    match format {
        OutputFormat::Json => Some(format!("{}\n", render_json(value))),
        OutputFormat::Yaml => Some(render_yaml(value)),
        OutputFormat::Text => None,
    }
}

/// The report on stdout (JSON, or text unless the run ended in one error line), then that line
/// on stderr.
fn print(invocation: &Invocation, ending: &Ending) {
    let format = invocation.own.output;
    if let Some(incident) = &ending.incident {
        match document(format, incident.as_ref()) {
            Some(text) => to_stdout(&text),
            None => {
                set_color();
                to_stdout(&render_incident(incident));
            }
        }
    }
    if let Some(diagnosis) = &ending.diagnosis {
        match document(format, diagnosis.as_ref()) {
            Some(text) => to_stdout(&text),
            None => {
                set_color();
                to_stdout(&render_diagnosis(diagnosis));
            }
        }
    }
    if let Some(report) = &ending.report {
        match document(format, report.as_ref()) {
            Some(text) => to_stdout(&text),
            None if ending.error_line.is_none() => {
                set_color();
                to_stdout(&render_text(report, invocation.kube.debug));
            }
            None => {}
        }
    }
    if let Some(line) = &ending.error_line {
        to_stderr(&format!("Error: {line}\n"));
    }
}

fn set_color() {
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    colored::control::set_override(color);
}

/// A reader that went away (`helm safe-rollback --help | head`) is no reason to panic: the
/// exit code still says how the run ended.
fn to_stdout(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn to_stderr(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
