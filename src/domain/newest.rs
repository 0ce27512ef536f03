//! A release's newest revision read in one process: its history row, its manifest and (helm 4)
//! its apply method, from one `helm get all --template`, where `helm history` and a revision's
//! read are two.
//!
//! For a release whose newest revision is deployed, that row is all a diagnosis takes from the
//! history: no pending revision, no failure since the last good one (the newest is it), the
//! last successful manifest is the newest one. The incident view reads releases `helm list`
//! showed as deployed this way; a row that says otherwise (the release moved on since) sends
//! the caller back to `helm history`.

use anyhow::{bail, Context, Result};

use crate::domain::model::Revision;
use crate::domain::release::StoredRevision;

/// The row as `helm history --output json` prints it: revision, status, updated (its JSON
/// time, RFC 3339 with nanoseconds), chart (`NAME-VERSION`), one per line.
const ROW: &str = "{{.Release.Version}}\n{{.Release.Info.Status}}\n\
{{.Release.Info.LastDeployed.Format \"2006-01-02T15:04:05.999999999Z07:00\"}}\n\
{{.Release.Chart.Metadata.Name}}-{{.Release.Chart.Metadata.Version}}\n";
/// helm 4 records how it applied the revision; helm 3's release has no such field (its
/// template would fail on it).
const APPLY_METHOD: &str = "{{.Release.ApplyMethod}}\n";
/// A description can span lines (a failure's message); this line ends it.
const END_OF_DESCRIPTION: &str = "\n--- end of the description ---\n";
const REST: &str = "{{.Release.Info.Description}}\n--- end of the description ---\n\
{{.Release.Manifest}}";

/// The `helm get all --template` of this helm major.
pub fn template(major: u64) -> String {
    match major {
        ..=3 => format!("{ROW}{REST}"),
        _ => format!("{ROW}{APPLY_METHOD}{REST}"),
    }
}

/// Reads what [`template`] printed.
pub fn parse(printed: &[u8], major: u64) -> Result<(Revision, StoredRevision)> {
    let printed = String::from_utf8_lossy(printed);
    let (head, manifest) = printed
        .split_once(END_OF_DESCRIPTION)
        .context("helm get all printed no end of the description")?;
    let mut lines = head.splitn(if major <= 3 { 5 } else { 6 }, '\n');
    let mut next = || lines.next().unwrap_or_default().to_string();
    let (revision, status, updated, chart) = (next(), next(), next(), next());
    let apply_method = match major {
        ..=3 => None,
        _ => Some(next()).filter(|m| !m.trim().is_empty()),
    };
    let description = next();
    let Ok(revision) = revision.trim().parse::<u64>() else {
        bail!("helm get all printed {revision:?} where the revision number belongs");
    };
    Ok((
        Revision {
            revision,
            updated,
            status,
            chart,
            description,
        },
        StoredRevision {
            manifest: manifest.to_string(),
            apply_method,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::release::parse_history;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/real-helm/newest"
    );

    /// Real output of helm 3.9.4, 3.17.3, 4.1.0 and 4.3.1 (tests/fixtures/real-helm/newest/
    /// steps.sh): the row read from the template is the newest entry of `helm history` of the
    /// same release, field for field, a failure's description included.
    #[test]
    fn the_row_is_the_newest_entry_of_helm_history() {
        for (helm, major) in [
            ("helm-v3.9.4", 3),
            ("helm-v3.17.3", 3),
            ("helm-v4.1.0", 4),
            ("helm-v4.3.1", 4),
        ] {
            for release in ["upgraded", "failed"] {
                let read = |suffix: &str| {
                    std::fs::read(format!("{FIXTURES}/{helm}/{release}.{suffix}")).unwrap()
                };
                let (row, stored) = parse(&read("get-all"), major).unwrap();
                let history = parse_history(&read("history.json")).unwrap();
                assert_eq!(Some(&row), history.last(), "{helm} {release}");
                assert!(
                    stored
                        .manifest
                        .starts_with("---\n# Source: demo/templates/all.yaml\n"),
                    "{helm}: {}",
                    stored.manifest
                );
                let expected_method = (major == 4).then_some("ssa");
                assert_eq!(stored.apply_method.as_deref(), expected_method, "{helm}");
            }
        }
    }

    /// The fixtures were made with this very template.
    #[test]
    fn the_fixtures_script_uses_this_template() {
        let steps = std::fs::read_to_string(format!("{FIXTURES}/steps.sh")).unwrap();
        for part in [ROW, REST] {
            assert!(steps.contains(part), "steps.sh lacks {part:?}");
        }
        assert!(steps.contains(APPLY_METHOD));
    }

    #[test]
    fn output_without_the_end_marker_or_a_revision_is_refused() {
        assert!(parse(b"2\ndeployed\n", 3).is_err());
        assert!(parse(b"x\ndeployed\nt\nc\nd\n--- end of the description ---\n", 3).is_err());
    }
}
