//! The incident view (`--diagnose --all`, `-A`): every release's diagnosis in one document,
//! worst first, with a summary. Pure: the pipeline diagnoses each release and hands the results
//! here.

use serde::Serialize;

use crate::domain::diagnosis::{Diagnosis, Severity};
use crate::domain::report::SCHEMA_VERSION;

/// One release of the view: its diagnosis, or why it could not be read.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Entry {
    Diagnosed(Box<Diagnosis>),
    Unreadable {
        release: String,
        namespace: String,
        /// The one line that says why (helm's or the API server's words).
        unreadable: String,
    },
}

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub releases: usize,
    /// Releases with at least one error finding.
    pub with_errors: usize,
    /// Releases whose findings are warnings only.
    pub with_warnings: usize,
    pub healthy: usize,
    pub unreadable: usize,
}

#[derive(Debug, Serialize)]
pub struct Incident {
    pub kind: &'static str,
    pub schema_version: u32,
    /// The namespace looked at; `null` for every namespace (`-A`).
    pub namespace: Option<String>,
    pub releases: Vec<Entry>,
    pub summary: Summary,
    /// Namespaces or lists that could not be read, and why.
    pub not_checked: Vec<String>,
    pub healthy: bool,
    pub exit_code: i32,
    pub duration_ms: u128,
}

/// How bad an entry is: errors first, then a release that could not be read (nobody knows), then
/// warnings, then healthy ones.
fn badness(entry: &Entry) -> u8 {
    match entry {
        Entry::Diagnosed(d) if d.findings.iter().any(|f| f.severity == Severity::Error) => 3,
        Entry::Unreadable { .. } => 2,
        Entry::Diagnosed(d) if !d.findings.is_empty() => 1,
        Entry::Diagnosed(_) => 0,
    }
}

fn name_of(entry: &Entry) -> (&str, &str) {
    match entry {
        Entry::Diagnosed(d) => (&d.namespace, &d.release),
        Entry::Unreadable {
            release, namespace, ..
        } => (namespace, release),
    }
}

/// The view: entries worst first (then by namespace and name), counted. Healthy only when every
/// release was read and has no finding.
pub fn assemble(
    mut releases: Vec<Entry>,
    namespace: Option<String>,
    not_checked: Vec<String>,
) -> Incident {
    releases.sort_by(|a, b| {
        badness(b)
            .cmp(&badness(a))
            .then_with(|| name_of(a).cmp(&name_of(b)))
    });
    let mut summary = Summary {
        releases: releases.len(),
        ..Summary::default()
    };
    for entry in &releases {
        match badness(entry) {
            3 => summary.with_errors += 1,
            2 => summary.unreadable += 1,
            1 => summary.with_warnings += 1,
            _ => summary.healthy += 1,
        }
    }
    let healthy = summary.healthy == summary.releases;
    Incident {
        kind: "incident",
        schema_version: SCHEMA_VERSION,
        namespace,
        releases,
        summary,
        not_checked,
        healthy,
        exit_code: 0,
        duration_ms: 0,
    }
}

#[cfg(test)]
#[path = "incident_tests.rs"]
mod tests;
