//! The classifier on arbitrary input: it never panics, never drops a non-blank line, and never
//! hides text it does not recognise. Seeded with every real transcript we hold
//! (tests/fixtures/real-helm), mutated byte by byte.

use helm_safe_rollback::classify::{classify, Class};
use proptest::prelude::*;

fn corpus() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("tests/fixtures/real-helm")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "stderr" || e == "stdout")
            {
                files.push(std::fs::read(&path).unwrap());
            }
        }
    }
    files.sort();
    assert!(files.len() > 50, "the real transcripts are there");
    files
}

/// Every non-blank input line is the first line of a finding or a continuation inside one.
fn every_line_is_accounted_for(input: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(input);
    let findings = classify(input);
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let covered = findings.iter().any(|f| f.line == index + 1)
            || findings
                .iter()
                .any(|f| f.line <= index && f.text.contains(line));
        prop_assert!(covered, "line {} dropped: {:?}", index + 1, line);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        classify(&bytes);
    }

    #[test]
    fn mutated_real_transcripts_never_panic_and_lose_no_line(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..16),
    ) {
        let corpus = corpus();
        let mut bytes = corpus[pick.index(corpus.len())].clone();
        for (at, byte, op) in edits {
            let len = bytes.len();
            match op {
                0 if len > 0 => bytes[at.index(len)] = byte,
                1 => bytes.insert(at.index(len + 1), byte),
                _ if len > 0 => { bytes.remove(at.index(len)); }
                _ => {}
            }
        }
        every_line_is_accounted_for(&bytes)?;
    }

    #[test]
    fn unrecognised_text_is_never_hidden(
        lines in prop::collection::vec("[A-Za-z0-9 ,.;()/_-]{1,80}", 1..20),
    ) {
        let markers = ["Error:", "level=", "[debug]", "skipping delete", "cleanup", "WARNING",
                       "Happy Helming", "time="];
        prop_assume!(lines.iter().all(|l| markers.iter().all(|m| !l.contains(m))));
        prop_assume!(lines.iter().all(|l| !l.trim().is_empty()));
        let input = lines.join("\n");
        let findings = classify(input.as_bytes());
        prop_assert_eq!(findings.len(), lines.len());
        for finding in &findings {
            prop_assert!(
                matches!(finding.class, Class::Primary | Class::Transient | Class::Lock),
                "hidden: {:?}", finding
            );
        }
    }
}

#[test]
fn every_real_transcript_loses_no_line() {
    for file in corpus() {
        every_line_is_accounted_for(&file).unwrap();
    }
}
