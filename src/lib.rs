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

/// The shape the tree keeps: files short enough to read, functions short enough that their name
/// explains them.
#[cfg(test)]
mod shape {
    use std::path::{Path, PathBuf};

    fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Each `fn` with its length in lines, from its signature to the `}` at its indentation.
    fn functions(text: &str) -> Vec<(String, usize)> {
        let lines: Vec<&str> = text.lines().collect();
        let mut found = Vec::new();
        for (start, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let indent = &line[..line.len() - code.len()];
            let signature = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn "]
                .iter()
                .find_map(|prefix| code.strip_prefix(prefix));
            let Some(rest) = signature else { continue };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // A declaration without a body (in a trait) ends with `;` before any `{`.
            let opens = lines[start..]
                .iter()
                .find(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'));
            if opens.is_none_or(|l| l.trim_end().ends_with(';')) {
                continue;
            }
            let close = format!("{indent}}}");
            let end = lines[start..].iter().position(|l| l.trim_end() == close);
            if let Some(end) = end {
                found.push((name, end + 1));
            }
        }
        found
    }

    #[test]
    fn no_file_over_500_lines_and_no_function_over_80() {
        let mut files = Vec::new();
        sources(Path::new("src"), &mut files);
        let mut too_long = Vec::new();
        // The tests' shared layer is held to the same file size.
        let mut support = Vec::new();
        sources(Path::new("tests/support"), &mut support);
        assert!(support.len() > 5, "tests/support is read");
        for file in support {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > 500 {
                too_long.push(format!("{}: {lines} lines", file.display()));
            }
        }
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.lines().count() > 500 {
                too_long.push(format!(
                    "{}: {} lines",
                    file.display(),
                    text.lines().count()
                ));
            }
            for (name, length) in functions(&text) {
                if length > 80 {
                    too_long.push(format!("{}: fn {name}: {length} lines", file.display()));
                }
            }
        }
        assert!(too_long.is_empty(), "{too_long:#?}");
    }

    /// The layers point one way: `domain` (plain data, pure decisions) names neither `io`,
    /// `pipeline` nor `cli`, and `io` names neither `pipeline` nor `cli`, so no decision can
    /// reach for a process or the cluster, flags are read once (in `cli`) into typed values,
    /// and the layers cannot form a cycle.
    #[test]
    fn layers_only_depend_downwards() {
        let mut wrong = Vec::new();
        for (layer, forbidden) in [
            (
                "src/domain",
                &["crate::io", "crate::pipeline", "crate::cli"][..],
            ),
            ("src/io", &["crate::pipeline", "crate::cli"][..]),
        ] {
            let mut files = Vec::new();
            sources(Path::new(layer), &mut files);
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for (number, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if let Some(name) = forbidden.iter().find(|f| code.contains(*f)) {
                        wrong.push(format!("{}:{}: {name}", file.display(), number + 1));
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    }
}
