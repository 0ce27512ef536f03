//! How fast the classifier reads helm's stderr: lines per second over a large stderr built from
//! the real helm 3 and helm 4 transcripts (tests/fixtures/real-helm), repeated to 1,000,000
//! lines. Target: 1,000,000 lines in under a second (release build). Run with
//! `cargo bench --bench classify`.

use std::time::Instant;

use helm_safe_rollback::classify::classify;

const LINES: usize = 1_000_000;

fn real_lines() -> Vec<String> {
    let mut lines = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/real-helm"
    ))];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("fixtures").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "stderr") {
                let text = std::fs::read_to_string(&path).expect("transcript");
                lines.extend(text.lines().map(str::to_string));
            }
        }
    }
    lines.sort();
    lines
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this too, in a debug build,
    // where a smoke run is all that makes sense.
    let measuring = std::env::args().any(|a| a == "--bench");
    let lines = if measuring { LINES } else { 10_000 };
    let pool = real_lines();
    assert!(!pool.is_empty());
    let mut input = String::new();
    for i in 0..lines {
        input.push_str(&pool[i % pool.len()]);
        input.push('\n');
    }
    let mut seconds = Vec::new();
    for _ in 0..if measuring { 5 } else { 1 } {
        let start = Instant::now();
        let findings = classify(input.as_bytes());
        seconds.push(start.elapsed().as_secs_f64());
        assert!(!findings.is_empty());
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    if !measuring {
        println!("classify: smoke run only (use `cargo bench --bench classify` to measure)");
        return;
    }
    println!(
        "classify: {LINES} lines ({:.1} MiB) of real helm 3/4 stderr in {median:.3} s (median of 5): {:.0} lines/s",
        input.len() as f64 / (1024.0 * 1024.0),
        LINES as f64 / median
    );
}
