//! The corpus suite's parts (tests/e2e_corpus.rs runs them): the cluster side (cluster.rs),
//! live snapshots (snapshot.rs), the success path with its native twin (success.rs) and the
//! failing rollback (failing.rs).

pub mod cluster;
pub mod failing;
pub mod snapshot;
pub mod success;

use std::path::Path;

use crate::support::HelmMajor;

/// One row of tools/settings.tsv.
pub struct Settings {
    pub upgrade: Vec<String>,
    pub needs_job_completer: bool,
    pub helm4_flags: Vec<String>,
}

pub fn settings(corpus: &Path, name: &str) -> Settings {
    let text = std::fs::read_to_string(corpus.join("tools/settings.tsv")).unwrap();
    let line = text
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} is not in tools/settings.tsv"));
    let columns: Vec<&str> = line.split('\t').collect();
    let words = |i: usize| -> Vec<String> {
        columns
            .get(i)
            .map(|c| c.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    };
    Settings {
        upgrade: words(1),
        needs_job_completer: columns.get(2) == Some(&"yes"),
        helm4_flags: words(3),
    }
}

/// What one chart did with one helm, for the printed line and the verdict.
pub struct Line {
    pub chart: String,
    pub helm: HelmMajor,
    pub objects: usize,
    /// The native rollback to revision 1 (the twin) and ours, from the same upgraded state.
    pub native_s: Option<f64>,
    pub ours_s: Option<f64>,
    pub outcome: String,
    pub exit: Option<i32>,
    /// `same` when ours left the objects as the native twin did, else `differs`.
    pub twin: String,
    /// `ok` when `--plan` named what the native rollback did.
    pub plan: String,
    pub failing: failing::Outcome,
    /// Seconds each setup step took (install, upgrade, cleanup), to see where the time goes.
    pub steps: Vec<(&'static str, f64)>,
    /// Everything that went wrong; empty when ours behaved as native helm does.
    pub errors: Vec<String>,
}

impl Line {
    pub fn new(chart: &str, helm: HelmMajor) -> Line {
        Line {
            chart: chart.to_string(),
            helm,
            objects: 0,
            native_s: None,
            ours_s: None,
            outcome: "-".to_string(),
            exit: None,
            twin: "-".to_string(),
            plan: "-".to_string(),
            failing: failing::Outcome::default(),
            steps: Vec::new(),
            errors: Vec::new(),
        }
    }
}
